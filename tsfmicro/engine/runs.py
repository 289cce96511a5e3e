"""Run directories: what a training request is, where its results live, and reuse.

Layout under ``config.out``::

    units/<dataset>_<task>_<fusion>_<preset>_<recipe>_seed<S>_<key>/   one seed, trained once
                             (cross-dataset: <dataset>_to_<test dataset>_...; a split other than
                             LOSO: <task>_<split>, e.g. megc2019_3class_lodo_...; a network other
                             than TSFmicro: its arch in place of <fusion>)
        config.yaml  provenance.json  predictions.csv  curves.csv  metrics.json
        folds/<fold>.pt      each fold's result, written as soon as the fold ends (tsfmicro.engine.folds);
                             the five files above are assembled from them when every fold is there
        weights/<fold>.pt    (final weights of every fold, kept for a request's first seed)
    <dataset>_<task>_<fusion>_<preset>_<recipe>_<key>/               a request (one or more seeds)
        the same five files, covering all its seeds, and the list of its units in config.yaml

A unit's key hashes everything that changes its numbers: the engine version, dataset, task,
fusion, preset, the resolved recipe (epochs included), crop size, the seed, the prepared data's
cache key, the device type (GPU and CPU arithmetic differ), the precision (in the recipe) and
the run options of tsfmicro.options, each only when it differs from its default (the preset's,
the recipe's or RunConfig's), so keys made before an option existed hold: the network (arch),
the model options (rotary form, temporal branch), the training-time frame re-selection, the
owners' errata choice, the automatic apex, the recipe's class-imbalance options (loss, sampling;
inside the recipe), the evaluation split (when not LOSO) and a cross-dataset request's test
dataset with its cache key, and a fine-tuning request's pre-training request (its identity hashed:
tsfmicro.engine.transfer) with the fine-tuning recipe inside the recipe. Paths, progress bars,
checkpoint timing, the executor and the number of workers are not part of it. A request's key hashes the same without the seed, plus its list of
seeds. A finished unit or request (``metrics.json`` written last) is loaded instead of retrained,
so a multi-seed request reuses seeds trained before. Planning and training live in
tsfmicro.engine.plan and tsfmicro.engine.execute.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, make_dataclass
from pathlib import Path

import pandas as pd
import torch
import yaml

from tsfmicro import _io, metrics
from tsfmicro.engine import loso, provenance, recipes, transfer
from tsfmicro.engine import folds as fold_files
from tsfmicro.engine.contrastive import check_settings as check_supcon
from tsfmicro.engine.folds import FoldResult
from tsfmicro.engine.excluded import write_excluded
from tsfmicro.engine.integrity import write_metrics_last
from tsfmicro.engine.recipes import RECIPES, Recipe, get_recipe
from tsfmicro.model.registry import DEFAULT_ARCH, check_network, network_name
from tsfmicro.options import NOT_DEFAULT, OPTIONS, PRESET, RECIPE, model_options
from tsfmicro.results import load_run

# bump when a code change alters results, so older runs are not reused
# 3: the authors' flat rotary in the presets, fp32 by default on CUDA, T-to-S head init
ENGINE_VERSION = 3
DEVICES = ("auto", "cuda", "mps", "cpu")


class _RunConfigChecks:
    """RunConfig's normalisation; its fields are declared below, the options' from tsfmicro.options."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", str(self.root))
        object.__setattr__(self, "out", str(self.out))
        for name in ("test_root", "source_root"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, str(getattr(self, name)))
        if self.split == ("cross_dataset" if self.test_dataset is not None else "loso"):
            object.__setattr__(self, "split", None)  # the default split, named or not, is one request
        if self.cache_dir is not None:
            object.__setattr__(self, "cache_dir", str(self.cache_dir))
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        for row in OPTIONS:
            value = getattr(self, row.name)
            if row.type is bool:
                object.__setattr__(self, row.name, bool(value))
            elif row.type is float and isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, row.name, float(value))  # 1 and 1.0 are one request, one key
        if not self.seeds:
            raise ValueError("give at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds repeat: {list(self.seeds)}")
        if self.checkpoint_every < 1 or self.checkpoint_seconds < 0:
            raise ValueError("checkpoint_every must be at least 1 and checkpoint_seconds at least 0")


# The settings every request has; the run options (tsfmicro.options.OPTIONS) follow them.
_CORE_FIELDS = [
    ("dataset", str),
    ("root", str),
    ("task", str),
    ("fusion", str, field(default="ts_late")),  # the network's variant (TSFmicro's FUSIONS)
    ("preset", str, field(default="paper")),
    ("recipe", str, field(default="paper")),
    ("seeds", tuple, field(default=(0,))),  # trained one after another, each as its own unit
    ("device", str, field(default="auto")),  # auto = cuda, then mps, then cpu
    ("out", str, field(default="runs")),
    ("crop_size", "int | None", field(default=None)),  # size of the cached crops; None: the preset's image size
    ("cache_dir", "str | None", field(default=None)),  # where tsfmicro.data.prepare keeps its cache; None: its default
    # mid-fold checkpoints every N epochs (a checkpoint also ends each fold), at least S seconds apart
    ("checkpoint_every", int, field(default=5)),
    ("checkpoint_seconds", float, field(default=60.0)),
    ("test_root", "str | None", field(default=None)),  # the test dataset's folder (with test_dataset)
    ("source_root", "str | None", field(default=None)),  # the pre-training source's folder (with pretrained)
]

RunConfig = make_dataclass(
    "RunConfig",
    _CORE_FIELDS + [(row.name, f"{row.type.__name__} | None", field(default=row.field_default)) for row in OPTIONS],
    bases=(_RunConfigChecks,),
    frozen=True,
    namespace={"__module__": __name__, "__doc__": (
        "One training request. ``seeds`` are trained one after another, each as its own unit. Beyond "
        "the settings every request has, one field per run option of tsfmicro.options.OPTIONS (None: "
        "the preset's or the recipe's value)."
    )},
)


def resolve_device(name: str) -> torch.device:
    if name not in DEVICES:
        raise ValueError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda requested but torch sees no CUDA device")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device mps requested but it is not available")
    return torch.device(name)


def request_split(config: RunConfig) -> str:
    """The split a request uses: its ``split``, else cross_dataset with a test dataset, else loso."""
    return config.split or ("cross_dataset" if config.test_dataset is not None else "loso")


def validate(config: RunConfig) -> None:
    """Clear errors for unknown names and missing folders, before any work starts."""
    from tsfmicro.data import DATASETS, SPLITS, TASKS
    from tsfmicro.model import PRESETS

    _check_choice("dataset", config.dataset, DATASETS)
    _check_choice("split", request_split(config), SPLITS)
    if config.test_dataset is not None or config.test_root is not None:
        _validate_cross_dataset(config)
    elif request_split(config) == "cross_dataset":
        raise ValueError("split cross_dataset needs a test dataset and its folder (test_dataset and test_root; "
                         "tsfmicro train --test-dataset NAME --test-root FOLDER)")
    _check_choice(f"task for {config.dataset}", config.task, TASKS[config.dataset])
    if request_split(config) == "lodo":
        _validate_lodo(config)
    _check_choice("preset", config.preset, PRESETS)
    _check_choice("recipe", config.recipe, RECIPES)
    for row in OPTIONS:  # every option with named choices; None: the default (the preset's, the recipe's)
        value = getattr(config, row.name)
        if value is not None and row.choices is not None:
            _check_choice(row.what, value, row.resolve_choices())
        if (row.owner == "model" and row.type is int and value is not None  # counts (spatial_depth: blocks)
                and (isinstance(value, bool) or not isinstance(value, int) or value < 1)):
            raise ValueError(f"{row.what} must be a whole number of at least 1, got {value!r}")
    for row in OPTIONS:  # numbers: a string from a parameters file or Python is named here, not deep in training
        value = getattr(config, row.name)
        if row.type is float and value is not None and (isinstance(value, bool) or not isinstance(value, float)):
            raise ValueError(f"{row.what} must be a number, got {value!r}")
    check_supcon(config.supcon_weight, config.supcon_temperature)
    check_network(config.arch, config.fusion, model_options(config))  # the one check of fusion
    transfer.check_config(config)  # pretrained, finetune, finetune_recipe, source_root
    recipes.check_network_recipe(config.recipe, config.arch)  # a network with its own recipes: one of them
    if config.apex != "annotated" and config.frame_reselection:
        raise ValueError("frame_reselection re-selects frames around the annotated apex; it cannot be combined "
                         f"with apex {config.apex!r}")
    if not Path(config.root).exists():
        raise FileNotFoundError(f"dataset root {config.root} does not exist")
    if config.epochs is not None and config.epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {config.epochs}")
    if config.image_size is not None and (config.image_size < 16 or config.image_size % 16):
        raise ValueError(f"image_size must be a positive multiple of 16 (the network's stride), got {config.image_size}")


def _validate_cross_dataset(config: RunConfig) -> None:
    """A test dataset other than the training one, a task both have, a class map that fills
    every class on both sides, and the test dataset's folder."""
    from tsfmicro.data import DATASETS, TASKS
    from tsfmicro.data.registry import shared_tasks, unmapped_classes

    if config.test_dataset is None:
        raise ValueError(f"test_root {config.test_root} given without a test dataset (test_dataset / --test-dataset)")
    _check_choice("test dataset", config.test_dataset, DATASETS)
    if config.test_dataset == config.dataset:
        raise ValueError(f"test dataset {config.test_dataset} is the training dataset: a cross-dataset request trains "
                         f"on all of one dataset and tests on all of another (for LOSO on {config.dataset}, give no "
                         "test dataset)")
    if config.split not in (None, "cross_dataset"):
        raise ValueError(f"split {config.split} with a test dataset: a request with a test dataset uses the "
                         "cross_dataset split (leave split unset)")
    lacking = [name for name in (config.dataset, config.test_dataset) if config.task not in TASKS[name]]
    if lacking:
        shared = shared_tasks(config.dataset, config.test_dataset)
        raise ValueError(f"task {config.task!r} is not a task of {' and '.join(lacking)} "
                         f"({'; '.join(f'{name}: ' + ', '.join(TASKS[name]) for name in lacking)}); a cross-dataset "
                         f"request needs a task both {config.dataset} and {config.test_dataset} have: "
                         f"{', '.join(shared) if shared else 'they share none'}")
    for name in (config.dataset, config.test_dataset):
        empty = unmapped_classes(name, config.task)
        if empty:
            raise ValueError(f"the {config.task} class map of {name} maps no label to {', '.join(empty)}: that "
                             "class would be empty (tsfmicro/data/registry.py)")
    if not config.test_root:
        raise ValueError(f"give the folder of the test dataset {config.test_dataset} (test_root / --test-root)")
    if not Path(config.test_root).exists():
        raise FileNotFoundError(f"test dataset root {config.test_root} does not exist")


def _validate_lodo(config: RunConfig) -> None:
    from tsfmicro.data.registry import DATASETS, dataset_info

    if not dataset_info(config.dataset).parts:
        composites = [name for name in DATASETS if dataset_info(name).parts]
        raise ValueError(f"split lodo leaves one dataset of a composite out; {config.dataset} is one dataset "
                         f"(composites: {', '.join(composites)})")


@dataclass
class Request:
    """A validated request with everything resolved: what the units of one train() call share."""

    config: RunConfig
    device: torch.device
    image_size: int
    data: object  # tsfmicro.data.PreparedData
    recipe: object  # tsfmicro.engine.recipes.Recipe
    identity: dict  # what a unit's key hashes, without the seed
    source: "Request | None" = None  # fine-tuning (``pretrained``): the pre-training request

    @property
    def split(self) -> str:
        return request_split(self.config)

    def folds(self) -> list:
        """The request's folds (tsfmicro.data.Fold), by its split."""
        from tsfmicro.data import SPLITS
        from tsfmicro.data.splits import TooFewSubjects

        try:
            return SPLITS[self.split](self.data.samples)
        except TooFewSubjects as error:  # named with the folder, before any fold is started
            found = f" ({', '.join(error.subjects)})" if error.subjects else ""
            raise ValueError(
                f"LOSO needs at least 2 subjects; {self.config.root} has {len(error.subjects)}{found}") from None

    @property
    def stem(self) -> str:
        c = self.config
        dataset = f"{c.dataset}_to_{c.test_dataset}" if c.test_dataset else c.dataset
        if c.pretrained is not None:  # fine-tuned: named by its source too
            dataset = f"{dataset}_from_{c.pretrained}"
        # LOSO is the default and a cross-dataset request is named by its two datasets: others show
        task = c.task if self.split in ("loso", "cross_dataset") else f"{c.task}_{self.split}"
        return f"{dataset}_{task}_{network_name(c.arch, c.fusion)}_{c.preset}_{c.recipe}"

    @property
    def key(self) -> str:
        return _hash({**self.identity, "seeds": list(self.config.seeds)})

    @property
    def path(self) -> Path:
        """The request's directory."""
        return Path(self.config.out) / f"{self.stem}_{self.key}"

    def unit_key(self, seed: int) -> str:
        return _unit_key(self, seed)

    def unit_path(self, seed: int) -> Path:
        return Path(self.config.out) / "units" / f"{self.stem}_seed{seed}_{self.unit_key(seed)}"


def resolve_request(config: RunConfig, progress: bool, device: torch.device | None = None,
                    prepared: dict | None = None) -> Request:
    """Validate ``config``, prepare its data (face-crop cache) and resolve its recipe and identity.

    ``device``: the training device when the caller resolved it (a Ray cluster's GPUs are not
    on this machine); by default ``config.device`` on this machine. ``prepared``: a dict in which
    requests of one plan share their prepared data (one copy per dataset and task). A
    cross-dataset request's data is its two datasets joined (tsfmicro.data.join_for_cross_dataset).
    """
    from tsfmicro.data import join_for_cross_dataset, prepare

    validate(config)
    device = device if device is not None else resolve_device(config.device)
    image_size = input_size(config)
    crop_size = config.crop_size or image_size
    prepared = {} if prepared is None else prepared

    def prepared_data(dataset: str, root: str):
        data_key = (dataset, root, config.task, crop_size, config.cache_dir, config.frame_reselection, config.errata,
                    config.apex)
        if data_key not in prepared:
            prepared[data_key] = prepare(dataset, root, config.task, crop_size=crop_size,
                                         cache_dir=config.cache_dir, progress=progress,
                                         reselect_frames=config.frame_reselection, errata=config.errata,
                                         apex=config.apex)
        return prepared[data_key]

    data = prepared_data(config.dataset, config.root)
    own_cache_key = data.cache_key
    reads_flow = loso.FLOW in network_inputs(config)
    if reads_flow:  # computed here once, into its file beside the crops, so no fold worker computes it
        from tsfmicro.data.flow import flow_inputs

        flow_inputs(data, progress=progress)
    test_data = None
    if config.test_dataset is not None:
        test_data = prepared_data(config.test_dataset, config.test_root)
        if reads_flow:
            from tsfmicro.data.flow import flow_inputs

            flow_inputs(test_data, progress=progress)
        join_key = ("cross_dataset", id(data), id(test_data))
        if join_key not in prepared:
            prepared[join_key] = join_for_cross_dataset(data, test_data)
        data = prepared[join_key]
    source = None
    if config.pretrained is not None:  # the pre-training request, resolved with the same prepared data
        source = resolve_request(transfer.pretraining_config(config), progress, device=device, prepared=prepared)
        fold = transfer.source_fold(config)
        (pre_fold,) = [f for f in source.folds() if str(f.name) == fold]
        transfer.check_no_leak(source.data.samples, pre_fold.train_index, data.samples, config.pretrained,
                               config.dataset)
        if list(source.data.class_names) != list(data.class_names):
            raise ValueError(f"pretrained {config.pretrained}: its classes ({', '.join(source.data.class_names)}) "
                             f"are not {config.dataset} {config.task}'s ({', '.join(data.class_names)})")
    recipe = run_recipe(config)
    identity = request_identity(config, recipe, device.type, own_cache_key,
                                test_data.cache_key if test_data is not None else None,
                                pretraining=source.identity if source is not None else None)
    return Request(config, device, image_size, data, recipe, identity, source)


def run_recipe(config: RunConfig):
    """The recipe a request trains with: its named recipe with the recipe options, and for a
    fine-tuning request (``pretrained``) its fine-tuning recipe (tsfmicro.engine.transfer)."""
    recipe = get_recipe(config.recipe, config.dataset, config.task, fusion=config.fusion, arch=config.arch,
                        **recipe_options(config))
    return recipe if config.pretrained is None else transfer.finetune_recipe(recipe, config.finetune_recipe)


def request_identity(config: RunConfig, recipe, device_type: str, data_cache_key: str,
                     test_data_cache_key: str | None = None, pretraining: dict | None = None) -> dict:
    """What a request's keys hash (without the seed): the config resolved against its recipe
    (``tsfmicro.engine.recipes.Recipe``), the training device's type and the prepared data's
    cache keys. Options enter only when they differ from the default, so keys made before an
    option existed hold (tests/fixtures/run_keys.json pins the keys of both parameters files).
    ``pretraining``: a fine-tuning request's pre-training request's identity (hashed in: other
    pre-trained weights, another key)."""
    image_size = input_size(config)
    identity = {
        "engine_version": ENGINE_VERSION,
        "dataset": config.dataset,
        "task": config.task,
        "fusion": config.fusion,
        "preset": config.preset,
        "recipe": recipe.as_dict(),  # loss and sampling only when not the authors': earlier keys hold
        "crop_size": config.crop_size or image_size,
        "image_size": image_size,
        "data_cache_key": data_cache_key,
        "device_type": device_type,
    }
    for row in OPTIONS:  # only when not the default: keys made before an option existed hold
        value = getattr(config, row.name)
        # recipe options are in the recipe (Recipe.as_dict); the split's below
        if (row.key == NOT_DEFAULT and row.owner != "recipe" and value is not None
                and value != option_default(row, config)):
            identity[row.name] = value
    split = request_split(config)  # the options keyed BY_SPLIT
    if split != "loso":  # LOSO requests keep their keys
        identity["split"] = split
    if config.test_dataset is not None:
        identity["test_dataset"] = config.test_dataset
        identity["test_data_cache_key"] = test_data_cache_key
    if pretraining is not None:
        identity["pretraining"] = _hash(pretraining)
    if loso.FLOW in network_inputs(config):  # its settings, as the crops' cache key (TSFmicro never reads flow)
        from tsfmicro.data.flow import DEFAULT_SETTINGS

        identity["flow"] = DEFAULT_SETTINGS.key()
    return identity


def input_size(config: RunConfig) -> int:
    """The network's input side: the ``image_size`` option, else the preset's. Always in the key,
    resolved (``image_size``), as it was before the option existed, so earlier keys hold."""
    from tsfmicro.model import PRESETS

    return config.image_size or PRESETS[config.preset].image_size


def network_inputs(config: RunConfig) -> tuple[str, ...]:
    """The inputs the run's network names (``model.inputs``), from a copy built on the meta device
    (no weights allocated); TSFmicro's without building it."""
    from tsfmicro.model import model_from_config

    if config.arch == DEFAULT_ARCH:
        return loso.PAIR
    with torch.device("meta"):
        return tuple(model_from_config(config, 2).inputs)


def option_default(row, config: RunConfig):
    """An option's default for ``config``: the preset's value (a model option: the network's own
    preset's, else TSFmicro's), the recipe's (a network's own recipe's value, else
    tsfmicro.engine.recipes.Recipe's field), or RunConfig's."""
    from tsfmicro.model import MODELS, PRESETS

    entry = MODELS.get(config.arch)
    if row.default == PRESET:  # the network's own preset, else TSFmicro's
        presets = entry.presets if entry is not None and entry.presets else PRESETS
        return getattr(presets.get(config.preset), row.name, None)
    if row.default == RECIPE:
        own = entry.recipes.get(config.recipe, {}) if entry is not None else {}
        return own.get(row.name, {f.name: f.default for f in fields(Recipe)}.get(row.name))
    return row.default


def config_options(config: RunConfig) -> dict:
    """The options of ``config`` that make it a variant of the parameters' run (the plan's
    "options" column): each option row with ``variant`` whose value differs from its default."""
    options = {}
    for row in OPTIONS:
        value = getattr(config, row.name)
        if row.variant and value != (option_default(row, config) if value is not None else row.field_default):
            options[row.name] = value
    return options


def recipe_options(config: RunConfig) -> dict:
    """The recipe's overrides ``config`` holds (options of owner recipe; None: the recipe's own)."""
    return {row.name: getattr(config, row.name) for row in OPTIONS if row.owner == "recipe"}


def model_overrides(config: RunConfig) -> dict:
    """The network options the request sets (owner model, except arch; not None)."""
    return model_options(config)


def _unit_key(request: Request, seed: int) -> str:
    return _hash({**request.identity, "seed": seed})


def write_unit(request: Request, seed: int, results: list[FoldResult]) -> Path:
    """Assemble a unit's five files from its folds' results (in fold order); metrics.json last."""
    data = request.data
    unit_dir, unit_key = request.unit_path(seed), request.unit_key(seed)
    outcomes = [r.outcome for r in results]
    predictions = loso.predictions_table(data, outcomes, seed)
    _io.write_csv(unit_dir / "predictions.csv", predictions)
    _io.write_csv(unit_dir / "curves.csv", loso.curves_table(outcomes, seed))
    _io.write_text(unit_dir / "config.yaml", _config_yaml(request, [seed], ["."], unit_key))
    seconds = sum(r.seconds for r in results)  # training time summed over folds (parallel folds overlap)
    record = provenance.collect(request.device, [seed], data, min(r.started for r in results),
                                max(r.finished for r in results), seconds, precision=request.recipe.precision)
    record["device"] = results[0].device  # the device of the process that trained (a Ray worker's GPU)
    # Resumed: a fold continued a checkpoint, or the folds were finished by more than one invocation.
    record["resumed"] = any(r.start_epoch > 0 for r in results) or len({r.run_id for r in results}) > 1
    record["executor"] = ", ".join(sorted({r.executor for r in results}))
    record["folds"] = {r.outcome.name: {"start_epoch": r.start_epoch, "seconds": round(r.seconds, 3),
                                        "host": r.host, "executor": r.executor, "git": r.git} for r in results}
    # "git" above is the code that assembled these files; the folds may have been trained on other
    # commits (a fold trained yesterday, the unit assembled today): each commit and its folds
    commits: dict[str, list[str]] = {}
    for r in results:
        commits.setdefault(r.git.get("commit", "unknown"), []).append(r.outcome.name)
    record["commits"] = commits
    record["mixed_commits"] = len(commits) > 1
    _io.write_json(unit_dir / "provenance.json", record)
    write_excluded(unit_dir, data)  # the rows left out, beside the run (tsfmicro.engine.excluded)
    # last (marks done), after the record of every file (damage found later: tsfmicro.engine.integrity)
    write_metrics_last(unit_dir, metrics.summarize(predictions, data.class_names))
    (unit_dir / "checkpoint.pt").unlink(missing_ok=True)  # left by an interrupted run of engine version < 3
    for result in results:  # a kill between a fold's result and the removal of its checkpoint leaves one
        fold_files.checkpoint_path(unit_dir, result.outcome.name).unlink(missing_ok=True)
        # every fold has its result: whoever takes the lock after this finds it and trains nothing
        fold_files.lock_path(unit_dir, result.outcome.name).unlink(missing_ok=True)
    return unit_dir


def write_request(request: Request) -> Path:
    """The request's files: its units' tables stacked, and metrics over all its seeds."""
    config = request.config
    run_dir = request.path
    unit_dirs = [request.unit_path(seed) for seed in config.seeds]
    units = [load_run(u) for u in unit_dirs]
    predictions = pd.concat([u.predictions for u in units], ignore_index=True)
    curves = pd.concat([u.curves for u in units], ignore_index=True)
    relative = [str(Path("..") / "units" / u.name) for u in unit_dirs]  # units/ is beside the run
    record = {
        "created": provenance.now(),
        "git": provenance.git_state(),
        "seeds": list(config.seeds),
        "data": units[0].provenance["data"],
        "numerics": units[0].provenance["numerics"],
        "units": {str(s): u.provenance for s, u in zip(config.seeds, units)},
        "duration_seconds": sum(u.provenance["duration_seconds"] for u in units),
    }
    _io.write_csv(run_dir / "predictions.csv", predictions)
    _io.write_csv(run_dir / "curves.csv", curves)
    _io.write_text(run_dir / "config.yaml", _config_yaml(request, list(config.seeds), relative, request.key))
    _io.write_json(run_dir / "provenance.json", record)
    write_excluded(run_dir, request.data)
    write_metrics_last(run_dir, metrics.summarize(predictions, request.data.class_names))
    return run_dir


def _config_yaml(request: Request, seeds: list[int], units: list[str], key: str) -> str:
    document = {
        "key": key,
        **{name: value for name, value in asdict(request.config).items() if name != "seeds"},
        "seeds": seeds,
        "resolved": request.identity,
        "class_names": list(request.data.class_names),
        "data_source": request.data.source,
        "units": units,
    }
    return yaml.safe_dump(document, sort_keys=False)


def _check_choice(what: str, value: str, choices) -> None:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")


def _hash(document: dict) -> str:
    text = json.dumps(document, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]

