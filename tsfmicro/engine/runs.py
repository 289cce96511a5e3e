"""Run directories: what a training request is, where its results live, and reuse.

Layout under ``config.out``::

    units/<dataset>_<task>_<fusion>_<preset>_<recipe>_seed<S>_<key>/   one seed, trained once
        config.yaml  provenance.json  predictions.csv  curves.csv  metrics.json
        checkpoint.pt        (only while training; removed when the unit is finished)
        weights/<fold>.pt    (final weights of every fold, kept for a request's first seed)
    <dataset>_<task>_<fusion>_<preset>_<recipe>_<key>/               a request (one or more seeds)
        the same five files, covering all its seeds, and the list of its units in config.yaml

A unit's key hashes everything that changes its numbers: the engine version, dataset, task,
fusion, preset, the resolved recipe (epochs included), crop size, the seed, the prepared data's
cache key, the device type (GPU and CPU arithmetic differ), the precision (in the recipe) and,
when not the preset's or the default, the model options (rotary form, temporal branch), the
training-time frame re-selection and the owners' errata choice (absent when default, so keys made
before they existed hold). Paths,
progress bars and checkpoint timing are not part of it. A request's key hashes the same
without the seed, plus its list of seeds. A finished unit or request (``metrics.json`` written
last) is loaded instead of retrained, so a multi-seed request reuses seeds trained before.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import torch
import yaml

from tsfmicro import _io, metrics
from tsfmicro.engine import checkpoint as ckpt
from tsfmicro.engine import loso, provenance
from tsfmicro.engine.recipes import PRECISIONS, RECIPES, get_recipe

# bump when a code change alters results, so older runs are not reused
# 3: the authors' flat rotary in the presets, fp32 by default on CUDA, T-to-S head init
ENGINE_VERSION = 3
DEVICES = ("auto", "cuda", "mps", "cpu")
MODEL_OPTIONS = ("rotary", "temporal_branch")  # ModelConfig fields a RunConfig may change from its preset
FILES = ("config.yaml", "provenance.json", "predictions.csv", "curves.csv", "metrics.json")


@dataclass(frozen=True)
class RunConfig:
    """One training request. ``seeds`` are trained one after another, each as its own unit."""

    dataset: str
    root: str
    task: str
    fusion: str = "ts_late"
    preset: str = "paper"
    recipe: str = "paper"
    seeds: tuple[int, ...] = (0,)
    epochs: int | None = None  # None: the recipe's own length
    batch_size: int | None = None  # None: the recipe's own (32)
    precision: str | None = None  # None: the recipe's own (fp32); "bf16": autocast speed mode
    rotary: str | None = None  # None: the preset's (flat, the authors'); "axial": our option
    temporal_branch: str | None = None  # None: the preset's (retention, the paper's); else an ablation
    device: str = "auto"  # auto = cuda, then mps, then cpu
    out: str = "runs"
    crop_size: int | None = None  # size of the cached crops; None: the preset's image size
    cache_dir: str | None = None  # where tsfmicro.data.prepare keeps its cache; None: its default
    checkpoint_every: int = 5  # epochs between mid-fold checkpoints (a checkpoint also ends each fold) ...
    checkpoint_seconds: float = 60.0  # ... and at least this long after the previous one
    frame_reselection: bool = False  # train on the re-selected (onset+i, apex-j) pair (paper.md); tests: annotated
    errata: str = "keep"  # "owners": leave out the clips the dataset's owners would remove (tsfmicro.data.errata)

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", str(self.root))
        object.__setattr__(self, "out", str(self.out))
        if self.cache_dir is not None:
            object.__setattr__(self, "cache_dir", str(self.cache_dir))
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        object.__setattr__(self, "frame_reselection", bool(self.frame_reselection))
        if not self.seeds:
            raise ValueError("give at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds repeat: {list(self.seeds)}")
        if self.checkpoint_every < 1 or self.checkpoint_seconds < 0:
            raise ValueError("checkpoint_every must be at least 1 and checkpoint_seconds at least 0")


@dataclass
class Run:
    """A finished run or unit directory, loaded. Every table names its protocol in its columns."""

    path: Path
    config: dict  # config.yaml: the request plus what it resolved to (recipe, device, data, units)
    predictions: pd.DataFrame  # one row per test clip and seed
    metrics: dict  # metrics.json, see tsfmicro.metrics.summarize
    curves: pd.DataFrame  # one row per seed, fold and epoch
    provenance: dict
    _models: dict = field(default_factory=dict, repr=False)

    @property
    def class_names(self) -> list[str]:
        return list(self.config["class_names"])

    def fold_model(self, subject: str) -> torch.nn.Module:
        """The model trained without ``subject`` (its final weights), in eval mode, on the CPU."""
        subject = str(subject)
        folds = self.predictions.loc[self.predictions["subject"].astype(str) == subject, "fold"].unique()
        if len(folds) == 0:
            raise KeyError(f"subject {subject!r} is not in run {self.path}")
        fold = str(folds[0])
        for unit in self.config["units"]:
            path = loso.fold_weights_path(self.path / unit / "weights", fold)
            if path.exists():
                return self._load_model(path, fold)
        raise FileNotFoundError(
            f"no saved weights for fold {fold} in {self.path}: weights are kept for the first seed of the "
            "request that trained a unit; train a request whose first seed is this run's first seed"
        )

    def _load_model(self, path: Path, fold: str) -> torch.nn.Module:
        from tsfmicro.model import build_model

        state = ckpt.load_checkpoint(path, f"weights:{fold}")
        overrides = {name: self.config[name] for name in MODEL_OPTIONS if self.config.get(name) is not None}
        model = build_model(self.config["preset"], num_classes=len(self.class_names), fusion=self.config["fusion"],
                            **overrides)
        model.load_state_dict(state["model"])
        return model.eval()


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


def validate(config: RunConfig) -> None:
    """Clear errors for unknown names and missing folders, before any work starts."""
    from tsfmicro.data import DATASETS, ERRATA_CHOICES, TASKS
    from tsfmicro.model import FUSIONS, PRESETS
    from tsfmicro.model.config import TEMPORAL_BRANCHES
    from tsfmicro.model.retention import ROTARY

    _check_choice("dataset", config.dataset, DATASETS)
    _check_choice(f"task for {config.dataset}", config.task, TASKS[config.dataset])
    _check_choice("fusion", config.fusion, FUSIONS)
    _check_choice("preset", config.preset, PRESETS)
    _check_choice("recipe", config.recipe, RECIPES)
    if config.precision is not None:
        _check_choice("precision", config.precision, PRECISIONS)
    if config.rotary is not None:
        _check_choice("rotary", config.rotary, ROTARY)
    if config.temporal_branch is not None:
        _check_choice("temporal_branch", config.temporal_branch, TEMPORAL_BRANCHES)
    _check_choice("errata choice", config.errata, ERRATA_CHOICES)
    if not Path(config.root).exists():
        raise FileNotFoundError(f"dataset root {config.root} does not exist")
    if config.epochs is not None and config.epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {config.epochs}")


@dataclass
class _Request:
    """A validated request with everything resolved: what the units of one train() call share."""

    config: RunConfig
    device: torch.device
    image_size: int
    data: object  # tsfmicro.data.PreparedData
    recipe: object  # tsfmicro.engine.recipes.Recipe
    identity: dict  # what a unit's key hashes, without the seed

    @property
    def stem(self) -> str:
        c = self.config
        return f"{c.dataset}_{c.task}_{c.fusion}_{c.preset}_{c.recipe}"


def train(config: RunConfig, progress: bool = True) -> Run:
    """Train ``config`` (or reuse it when finished before) and return the loaded run."""
    from tsfmicro.data import loso_splits

    request = _resolve(config, progress)
    out = Path(config.out)
    run_key = _hash({**request.identity, "seeds": list(config.seeds)})
    run_dir = out / f"{request.stem}_{run_key}"
    if is_finished(run_dir):
        return load_run(run_dir)

    unit_dirs = [out / "units" / f"{request.stem}_seed{seed}_{_unit_key(request, seed)}" for seed in config.seeds]
    device_data = folds = None
    for position, (seed, unit_dir) in enumerate(zip(config.seeds, unit_dirs)):
        if is_finished(unit_dir):
            continue
        if device_data is None:  # only when something must be trained
            folds = loso_splits(request.data.samples)
            device_data = loso.DeviceData(request.data, request.device, config.frame_reselection)
        # Fold weights are kept for the request's first seed only (the paper preset is ~50 MB a fold).
        _train_unit(request, device_data, folds, seed, unit_dir, keep_weights=position == 0, progress=progress)

    _write_run(run_dir, run_key, request, unit_dirs)
    return load_run(run_dir)


def _resolve(config: RunConfig, progress: bool) -> _Request:
    from tsfmicro.data import prepare
    from tsfmicro.model import PRESETS

    validate(config)
    device = resolve_device(config.device)
    image_size = PRESETS[config.preset].image_size
    crop_size = config.crop_size or image_size
    data = prepare(config.dataset, config.root, config.task, crop_size=crop_size, cache_dir=config.cache_dir,
                   progress=progress, reselect_frames=config.frame_reselection, errata=config.errata)
    recipe = get_recipe(config.recipe, config.dataset, config.task, fusion=config.fusion, epochs=config.epochs,
                        batch_size=config.batch_size, precision=config.precision)
    identity = {
        "engine_version": ENGINE_VERSION,
        "dataset": config.dataset,
        "task": config.task,
        "fusion": config.fusion,
        "preset": config.preset,
        "recipe": recipe.as_dict(),
        "crop_size": crop_size,
        "image_size": image_size,
        "data_cache_key": data.cache_key,
        "device_type": device.type,
    }
    if config.frame_reselection:  # only when on: runs trained before the option existed keep their keys
        identity["frame_reselection"] = True
    for name, value in _model_overrides(config).items():  # only when not the preset's: earlier keys hold
        if value != getattr(PRESETS[config.preset], name):
            identity[name] = value
    if config.errata != "keep":  # likewise: the default keeps the keys of earlier runs
        identity["errata"] = config.errata
    return _Request(config, device, image_size, data, recipe, identity)


def _model_overrides(config: RunConfig) -> dict:
    """ModelConfig fields the request sets (``MODEL_OPTIONS`` that are not None)."""
    return {name: getattr(config, name) for name in MODEL_OPTIONS if getattr(config, name) is not None}


def _unit_key(request: _Request, seed: int) -> str:
    return _hash({**request.identity, "seed": seed})


def _train_unit(request: _Request, device_data, folds, seed: int, unit_dir: Path, keep_weights: bool,
                progress: bool) -> None:
    """Train (or finish training) one seed and write its unit directory."""
    from tsfmicro.model import build_model

    config, data = request.config, request.data
    unit_key = _unit_key(request, seed)
    started, clock = provenance.now(), time.perf_counter()
    trainer = loso.FoldTrainer(
        data=device_data,
        build_model=lambda: build_model(config.preset, num_classes=len(data.class_names), fusion=config.fusion,
                                        **_model_overrides(config)),
        recipe=request.recipe,
        image_size=request.image_size,
        seed=seed,
    )
    checkpoint_path = unit_dir / "checkpoint.pt"
    resumed = checkpoint_path.exists()  # an earlier process stopped part-way
    outcomes = loso.train_loso(
        trainer,
        folds,
        unit_key,
        checkpoint_path,
        ckpt.CheckpointPolicy(config.checkpoint_every, config.checkpoint_seconds),
        weights_dir=unit_dir / "weights" if keep_weights else None,
        progress=progress,
    )
    predictions = loso.predictions_table(data, outcomes, seed)
    _io.write_csv(unit_dir / "predictions.csv", predictions)
    _io.write_csv(unit_dir / "curves.csv", loso.curves_table(outcomes, seed))
    _io.write_text(unit_dir / "config.yaml", _config_yaml(request, [seed], ["."], unit_key))
    record = provenance.collect(request.device, [seed], data, started, provenance.now(), time.perf_counter() - clock,
                                precision=request.recipe.precision)
    record["resumed"] = resumed  # if so, started/duration cover only the process that finished it
    _io.write_json(unit_dir / "provenance.json", record)
    _io.write_json(unit_dir / "metrics.json", metrics.summarize(predictions, data.class_names))  # last: marks done
    checkpoint_path.unlink(missing_ok=True)


def _write_run(run_dir: Path, run_key: str, request: _Request, unit_dirs: list[Path]) -> None:
    """The request's files: its units' tables stacked, and metrics over all its seeds."""
    config = request.config
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
    _io.write_text(run_dir / "config.yaml", _config_yaml(request, list(config.seeds), relative, run_key))
    _io.write_json(run_dir / "provenance.json", record)
    _io.write_json(run_dir / "metrics.json", metrics.summarize(predictions, request.data.class_names))


def _config_yaml(request: _Request, seeds: list[int], units: list[str], key: str) -> str:
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


def is_finished(path: Path) -> bool:
    return (Path(path) / "metrics.json").exists()


def load_run(path: str | Path) -> Run:
    """Load a finished run or unit directory (FileNotFoundError if it is unfinished or missing)."""
    path = Path(path)
    missing = [name for name in FILES if not (path / name).exists()]
    if missing:
        raise FileNotFoundError(f"{path} is not a finished run directory (missing {', '.join(missing)})")
    config = yaml.safe_load((path / "config.yaml").read_text(encoding="utf-8"))
    predictions = pd.read_csv(path / "predictions.csv", dtype={"fold": str, "subject": str, "clip_id": str})
    return Run(
        path=path,
        config=config,
        predictions=predictions,
        metrics=json.loads((path / "metrics.json").read_text(encoding="utf-8")),
        curves=pd.read_csv(path / "curves.csv", dtype={"fold": str}),
        provenance=json.loads((path / "provenance.json").read_text(encoding="utf-8")),
    )


def _check_choice(what: str, value: str, choices) -> None:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")


def _hash(document: dict) -> str:
    text = json.dumps(document, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]

