"""The plan: every training unit a set of requests needs, its folds, cost and state.

A unit is one seed of one (dataset, task, fusion, preset, recipe) request; units shared by
several requests (T-S late seed 0 is in the main results and in the fusion ablation) appear
once. Each unit has the folds of its request's split (tsfmicro.data.SPLITS): one per held-out
subject (LOSO, the default), one per held-out dataset of a composite (LODO), or one trained on
all of a dataset and tested on all of another (cross-dataset); the fold is what executors
schedule.

Compute estimate per unit: forward FLOPs per clip (tsfmicro.model.count_flops) x 3 (forward
and backward) x training clips x epochs, summed over folds, plus one forward pass over each
fold's test clips per epoch (the held-out subject is scored after every epoch). Time estimate:
the measured training throughput of the device type and preset (``throughput.csv`` beside
this file, written by ``bench/bench_run.py``), scaled by the fusion's FLOPs; "unknown" when
that device type and preset were never measured.
"""
from __future__ import annotations

import csv
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from tsfmicro.engine import folds as fold_files
from tsfmicro.engine.runs import Request, RunConfig, config_options, request_split, resolve_request
from tsfmicro.options import option, owned_by
from tsfmicro.results import is_finished

THROUGHPUT_FILE = Path(__file__).with_name("throughput.csv")

STATE_DONE, STATE_TODO = "done", "to do"
STATE_NO_DATA = "no data"  # a real dataset's folder was not given: planned from its published size


@dataclass
class UnitPlan:
    """One unit of a plan: a request's seed, its folds, and whether its fold weights are kept."""

    request: Request
    seed: int
    folds: list  # tsfmicro.data.Fold
    keep_weights: bool
    # fine-tuning (tsfmicro.engine.transfer): the pre-training unit this unit needs finished first
    needs: "UnitPlan | None" = None

    @property
    def init_weights(self) -> Path | None:
        """The pre-trained weights every fold of a fine-tuning unit starts from (None: from scratch)."""
        if self.needs is None:
            return None
        from tsfmicro.engine.transfer import source_fold
        from tsfmicro.results import fold_weights_path

        return fold_weights_path(self.needs.path / "weights", source_fold(self.request.config))

    @property
    def path(self) -> Path:
        return self.request.unit_path(self.seed)

    @property
    def key(self) -> str:
        return self.request.unit_key(self.seed)

    @property
    def label(self) -> str:
        c = self.request.config
        options = options_text(c)
        return f"{c.dataset} {c.task} {c.fusion} {c.preset} {c.recipe}{' ' + options if options else ''} seed {self.seed}"

    @property
    def finished(self) -> bool:
        return is_finished(self.path)

    def done_folds(self) -> list[str]:
        if self.finished:
            return [str(f.name) for f in self.folds]
        return [str(f.name) for f in self.folds if fold_files.is_done(self.path, f.name)]

    def state(self) -> str:
        if self.finished:
            return STATE_DONE
        done = len(self.done_folds())
        return f"partial: {done} of {len(self.folds)} folds" if done else STATE_TODO


@dataclass
class Plan:
    requests: list[Request]
    units: list[UnitPlan] = field(default_factory=list)

    @property
    def folds(self) -> int:
        return sum(len(u.folds) for u in self.units)

    def waves(self) -> list[list[UnitPlan]]:
        """The units in waves: the first needs nothing, each later one needs units of earlier waves
        only (a fine-tuning unit after its pre-training unit); units keep their plan order."""
        depth: dict[int, int] = {}

        def wave(unit: UnitPlan) -> int:
            if id(unit) not in depth:
                depth[id(unit)] = 0 if unit.needs is None else 1 + wave(unit.needs)
            return depth[id(unit)]

        waves: list[list[UnitPlan]] = [[] for _ in range(1 + max(map(wave, self.units), default=-1))]
        for unit in self.units:
            waves[wave(unit)].append(unit)
        return waves

    def table(self) -> pd.DataFrame:
        """One row per unit: what it is, its folds, compute and time estimates, its state."""
        return pd.DataFrame([unit_row(u) for u in self.units], columns=COLUMNS)


def make_plan(configs: list[RunConfig], progress: bool = False, device=None) -> Plan:
    """Resolve every request (this prepares its data: face crops are cached on first use) and
    list its units once each. A unit keeps its fold weights when it is the first seed of a request,
    or when a fine-tuning unit starts from them (its ``needs``: the pre-training unit of the same seed,
    listed before it)."""
    prepared: dict = {}
    requests = [resolve_request(config, progress, device=device, prepared=prepared) for config in configs]
    units: dict[Path, UnitPlan] = {}
    splits: dict[tuple[int, str], list] = {}

    def add(request: Request, seed: int, keep_weights: bool) -> UnitPlan:
        split_key = (id(request.data), request.split)
        if split_key not in splits:
            splits[split_key] = request.folds()
        path = request.unit_path(seed)
        if path in units:
            units[path].keep_weights |= keep_weights
        else:
            units[path] = UnitPlan(request, seed, splits[split_key], keep_weights=keep_weights)
        return units[path]

    for request in requests:
        for position, seed in enumerate(request.config.seeds):
            needs = None
            if request.source is not None:  # its pre-training unit first, keeping the weights it starts from
                needs = add(request.source, seed, keep_weights=True)
            unit = add(request, seed, keep_weights=position == 0)
            unit.needs = needs
    for unit in units.values():
        weights = unit.init_weights
        if weights is not None and not unit.finished and unit.needs.finished and not weights.exists():
            raise ValueError(f"the pre-training unit {unit.needs.path} finished without the weights of fold "
                             f"{weights.stem} (only a request's first seed keeps them): delete that unit folder to "
                             f"train it again with its weights, then fine-tune {unit.label}")
    return Plan(requests, list(units.values()))


# ----------------------------------------------------------------------------- estimates
COLUMNS = ["dataset", "task", "fusion", "options", "preset", "recipe", "precision", "seed", "folds", "train_clips_per_fold",
           "epochs", "tflops", "estimated_seconds", "state", "folds_done", "trained_seconds", "device", "executor",
           "started", "finished"]


def model_settings(config: RunConfig) -> dict:
    """The network ``config`` trains: its model options (the rows of tsfmicro.options.OPTIONS owned by
    ``model``, ``arch`` included) that are set, as one mapping. The estimates below take this mapping
    whole, so a new model option reaches the FLOPs count without an edit here."""
    return {row.name: value for row in owned_by("model") if (value := getattr(config, row.name, None)) is not None}


def forward_flops(preset: str, fusion: str, num_classes: int, model: Mapping | None = None) -> int:
    """Forward FLOPs per clip of one network: ``model`` holds its model options (:func:`model_settings`;
    an option left out or None is the preset's, ``arch`` left out is TSFmicro). Counted once per
    preset, fusion and options: the number of classes only changes the last Linear layer
    (``model.classifier``, the model contract: hidden -> classes, 2 x hidden FLOPs a class)."""
    counted, hidden, counted_classes = _counted_flops(preset, fusion, _settings_key(model))
    return counted + 2 * hidden * (num_classes - counted_classes)


def _settings_key(model: Mapping | None) -> tuple:
    """``model`` as a hashable cache key; None values dropped (None means the preset's value)."""
    return tuple(sorted((name, value) for name, value in (model or {}).items() if value is not None))


@functools.lru_cache(maxsize=None)
def _counted_flops(preset: str, fusion: str, settings: tuple, num_classes: int = 5) -> tuple[int, int, int]:
    from tsfmicro.model import count_flops, model_from_config

    network = model_from_config({**dict(settings), "preset": preset, "fusion": fusion}, num_classes)
    return count_flops(network), network.classifier.in_features, num_classes


def compute_flops(preset: str, fusion: str, num_classes: int, epochs: int, train_clips: list[int],
                  test_clips: list[int], model: Mapping | None = None) -> float:
    """Training (3 x forward per training clip) plus scoring (1 x forward per test clip), every epoch."""
    forward = forward_flops(preset, fusion, num_classes, model)
    return float(epochs) * forward * (3 * sum(train_clips) + sum(test_clips))


def _read_csv(path: Path) -> list[dict]:
    """Rows of a small csv data file whose comment lines start with #."""
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(line for line in handle if not line.startswith("#")))


def _measured_settings(model: Mapping | None) -> dict:
    """The model options throughput.csv keys its rows by (those of its columns that are model options,
    today ``image_size``), at ``model``'s values: the network a measurement for ``model`` was taken
    on. The other options are not measured apart; their cost is scaled by FLOPs."""
    if not THROUGHPUT_FILE.exists():
        return {}
    with THROUGHPUT_FILE.open(encoding="utf-8") as handle:
        header = next(csv.reader(line for line in handle if not line.startswith("#")), [])
    return {row.name: (model or {}).get(row.name) for row in owned_by("model") if row.name in header}


def _preset_value(preset: str, name: str):
    from tsfmicro.model import PRESETS

    return getattr(PRESETS[preset], name, None) if preset in PRESETS else None


def _csv_value(name: str, text: str):
    kind = option(name).type
    return text.strip().lower() in ("1", "true", "yes") if kind is bool else kind(text)


def measured_throughput(device_type: str, preset: str, precision: str = "fp32",
                        model: Mapping | None = None) -> dict | None:
    """The measured training throughput of ``preset`` in ``precision`` on ``device_type`` for the
    network of ``model`` (its model options; for each one throughput.csv has a column, e.g. the input
    side ``image_size``: None is the preset's, and so is a row's empty cell), from throughput.csv, or
    None. Sizes are not converted into one another: a small network's steps cost mostly fixed
    overhead, so FLOPs would promise a speed-up that is not there."""
    if not THROUGHPUT_FILE.exists():
        return None
    wanted = {name: value if value is not None else _preset_value(preset, name)
              for name, value in _measured_settings(model).items()}
    rows = [row for row in _read_csv(THROUGHPUT_FILE)
            if (row["device_type"], row["preset"], row["precision"]) == (device_type, preset, precision)
            and all((_csv_value(name, row[name]) if row.get(name) else _preset_value(preset, name)) == value
                    for name, value in wanted.items())]
    return rows[-1] if rows else None  # the latest measurement


def estimate_seconds(device_type: str, preset: str, precision: str, fusion: str, num_classes: int, epochs: int,
                     train_clips: list[int], test_clips: list[int], model: Mapping | None = None) -> float | None:
    """Seconds at the measured throughput (training clips per second of the T-S late network with the
    measured options, scaled by this network's FLOPs: its arch, fusion and every model option); None when
    this device type, preset and precision were never measured."""
    measured = measured_throughput(device_type, preset, precision, model)
    if measured is None:
        return None
    flops_per_second = (float(measured["train_clips_per_s"]) * 3
                        * forward_flops(preset, "ts_late", num_classes, _measured_settings(model)))
    return compute_flops(preset, fusion, num_classes, epochs, train_clips, test_clips, model) / flops_per_second


# how throughput_basis shows a measured option's value; an option not listed shows as name=value
_UNITS = {"image_size": "{} px"}


def throughput_basis(device_type: str, preset: str, precision: str = "fp32", model: Mapping | None = None) -> str:
    """One line saying what the time estimate of ``preset`` in ``precision`` on ``device_type`` (for the
    network of ``model``, its model options) rests on."""
    measured = measured_throughput(device_type, preset, precision, model)
    size = "".join(", " + _UNITS.get(name, name + "={}").format(value)
                   for name, value in _measured_settings(model).items() if value)
    if measured is None:
        return (f"{device_type}, {preset}{size}, {precision}: unknown (no measurement for this device type, preset, "
                "input size and precision; bench/bench_run.py measures it)")
    return (f"{device_type}, {preset}{size}, {precision}: {float(measured['train_clips_per_s']):.3g} training clips/s "
            f"({measured['threads']} thread(s), {measured['machine']}, {measured['measured']}, {measured['source']})")


def options_text(config: RunConfig) -> str:
    """The request's options beyond the parameters' run, e.g. "temporal_branch=transformer"; "" for none."""
    return ", ".join(f"{name}={value}" for name, value in config_options(config).items())


def unit_row(unit: UnitPlan) -> dict:
    request, config = unit.request, unit.request.config
    train_clips = [len(f.train_index) for f in unit.folds]
    test_clips = [len(f.test_index) for f in unit.folds]
    row = cost_row(config.dataset, config.task, config.fusion, config.preset, config.recipe, request.recipe.precision,
                   unit.seed, len(request.data.class_names), request.recipe.epochs, train_clips, test_clips,
                   request.device.type, unit.state(), model_settings(config))
    row["options"] = options_text(config)
    row["folds_done"] = len(unit.done_folds())
    if unit.finished:
        provenance = _read_provenance(unit.path)
        row["trained_seconds"] = provenance.get("duration_seconds")
        row["device"] = (provenance.get("device") or {}).get("name")
        row["executor"] = provenance.get("executor", "local")  # units trained before executors existed
        row["started"], row["finished"] = provenance.get("started"), provenance.get("finished")
    return row


def plan_table(configs: list[RunConfig], unavailable: list[RunConfig] = (), device=None) -> pd.DataFrame:
    """:meth:`Plan.table` of ``configs``, then a row per seed of each ``unavailable`` request (a real
    dataset whose folder was not given) from the dataset's published size, state "no data"."""
    from tsfmicro.engine.transfer import pretraining_config

    table = make_plan(configs, device=device).table()
    # a fine-tuning request is priced with its pre-training run (listed first, once)
    stages = [stage for config in unavailable
              for stage in ([pretraining_config(config)] if config.pretrained is not None else []) + [config]]
    rows = [published_row(config, seed, device.type if device is not None else "cpu")
            for config in stages for seed in config.seeds]
    rows = list({tuple(row[c] for c in ("dataset", "task", "fusion", "options", "seed")): row
                 for row in rows}.values())
    return pd.concat([table, pd.DataFrame(rows, columns=COLUMNS)], ignore_index=True) if rows else table


def published_folds(config: RunConfig) -> tuple[list[float], list[float]]:
    """Training and test clips of each fold of ``config``'s split, from the published sizes
    (each dataset spec's ``published``): LOSO, subjects of equal size; LODO, parts of equal size (the
    totals are exact whatever the parts' sizes: each clip is tested once and trained on in
    every other fold); cross-dataset, one fold, all of one dataset against all of the other."""
    from tsfmicro.data.registry import dataset_info, published_size

    size = published_size(config.dataset, config.task)
    clips = size["clips"]
    groups = {"loso": size["subjects"], "lodo": len(dataset_info(config.dataset).parts)}
    split = request_split(config)
    if split == "cross_dataset":
        return [clips], [published_size(config.test_dataset, config.task)["clips"]]
    test = [clips / groups[split]] * groups[split]
    return [clips - t for t in test], test


def published_row(config: RunConfig, seed: int, device_type: str) -> dict:
    """A plan row from the published size of ``config``'s dataset (its folder was not given)."""
    from tsfmicro.data import class_names
    from tsfmicro.engine.runs import run_recipe

    train, test = published_folds(config)
    recipe = run_recipe(config)
    return cost_row(config.dataset, config.task, config.fusion, config.preset, config.recipe, recipe.precision,
                    seed, len(class_names(config.dataset, config.task)), recipe.epochs, train, test, device_type,
                    STATE_NO_DATA, model_settings(config)) | {"options": options_text(config)}


def cost_row(dataset: str, task: str, fusion: str, preset: str, recipe: str, precision: str, seed: int,
             num_classes: int, epochs: int, train_clips: list[int], test_clips: list[int], device_type: str,
             state: str, model: Mapping | None = None) -> dict:
    """A plan row from fold sizes (also used with published dataset sizes when the data is missing);
    ``model``: the network's model options (:func:`model_settings`)."""
    return {
        "dataset": dataset, "task": task, "fusion": fusion, "options": "", "preset": preset, "recipe": recipe,
        "precision": precision, "seed": seed,
        "folds": len(train_clips),
        "train_clips_per_fold": round(sum(train_clips) / max(len(train_clips), 1), 1),
        "epochs": epochs,
        "tflops": compute_flops(preset, fusion, num_classes, epochs, train_clips, test_clips, model) / 1e12,
        "estimated_seconds": estimate_seconds(device_type, preset, precision, fusion, num_classes, epochs,
                                              train_clips, test_clips, model),
        "state": state, "folds_done": 0, "trained_seconds": None, "device": None, "executor": None,
        "started": None, "finished": None,
    }


def totals(table: pd.DataFrame) -> dict:
    """Units, folds, compute and time over a plan table (time None if any unit's is unknown)."""
    estimated = table["estimated_seconds"]
    return {
        "units": len(table),
        "folds": int(table["folds"].sum()),
        "folds_done": int(table["folds_done"].sum()),
        "tflops": float(table["tflops"].sum()),
        "estimated_seconds": None if estimated.isna().any() else float(estimated.sum()),
        "done": int((table["state"] == STATE_DONE).sum()),
        "partial": int(table["state"].str.startswith("partial").sum()),
        "to_do": int((table["state"] == STATE_TODO).sum()),
        "no_data": int((table["state"] == STATE_NO_DATA).sum()),
    }


def _read_provenance(path: Path) -> dict:
    import json

    try:
        return json.loads((path / "provenance.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
