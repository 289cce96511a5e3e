"""Parameters files (``params/*.yaml``): the keys they hold, how overrides change them, the
checks run before any work starts, and what they resolve to: dataset folders, run folders and
the engine's training requests (:class:`Params`; :class:`tsfmicro.study.Study` builds on it).

Parameters files live in ``params/`` (``demo.yaml``, ``paper.yaml``). Relative ``paths:`` are
relative to the project folder: the nearest folder at or above the parameters file holding
``pyproject.toml`` and ``params/``, else the parameters file's own folder (a file outside the
repository keeps its runs beside it). Relative dataset folders (``roots:``, ``-p roots.X=``,
``$TSFMICRO_<DATASET>_ROOT``) are relative to the working folder, as on a command line.

Overrides (``-y "overrides: {...}"`` in papermill, ``overrides=`` in Python) follow one rule,
so that they can narrow a plan as well as change it:

- a value replaces the file's value; lists (``seeds``, ``fusions``, a dataset's tasks) are
  replaced whole, never appended to;
- the ``datasets:`` mapping is replaced whole: ``{datasets: {casme2: [5class]}}`` runs
  CASME II 5-class only;
- ``null`` removes the key (``{ablation: {seeds: null}}``: the ablation uses ``seeds``);
- any other mapping (``ablation``, ``gradcam``, ``composite``, ``cross_dataset``,
  ``temporal_branch``, ``annotation``, ``imbalance``, ``synthetic``, ``roots``, ``paths``) merges
  key by key with the file's.

Optional chapter sections (absent or ``null``: the chapter plans no runs and says it is not
configured):

- ``composite:`` (MEGC2019 composite chapter): ``fusions`` trained leave-one-subject-out on
  ``megc2019`` 3-class (default ``[ts_late]``), ``seeds`` (default ``seeds``).
- ``cross_dataset:`` (cross-dataset chapter), on the shared 3-class task ``3class_megc``:
  ``datasets`` (at least two; every ordered pair is trained on one and tested on the other, and
  each is trained LOSO for the diagonal), ``lodo`` (also leave one dataset of the composite out;
  default false), ``seeds`` (default ``seeds``).
- ``temporal_branch:`` (temporal-branch chapter): ``dataset``, ``task``, ``variants``, ``seeds``.
- ``annotation:`` (onset and apex sensitivity chapter): ``dataset`` and ``task`` (one of
  ``datasets:``), ``shifts`` (percentages of the onset-offset length), ``automatic_apex``
  (default false), ``seeds`` (default ``seeds``).
- ``imbalance:`` (class-imbalance chapter): ``tasks`` (dataset/task), ``options``, ``seeds``.

Every problem found is reported at once, in one ValueError naming the key and its valid
values.
"""
from __future__ import annotations

import copy
import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, NamedTuple

from tsfmicro._yaml import load_mapping

from tsfmicro.options import OPTIONS

# Top-level keys: those a parameters file must have, and those it may leave out.
REQUIRED = ("data_source", "datasets", "ablation", "gradcam", "preset", "recipe", "seeds",
            "device", "paths")
OPTIONAL = ("epochs", "batch_size", "precision", "rotary", "cpu_threads", "crop_size",
            "frame_reselection", "errata", "progress", "synthetic", "roots", "checkpoint_every",
            "checkpoint_seconds", "composite", "cross_dataset", "temporal_branch", "annotation", "imbalance")
# Run options set for every planned run (tsfmicro.options, ``params``): each one a top-level key.
PARAMS_OPTIONS = tuple(row for row in OPTIONS if row.params)
OPTIONAL += tuple(row.name for row in PARAMS_OPTIONS if row.name not in OPTIONAL)
# Keys of the nested mappings: (required, optional).
NESTED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "ablation": (("dataset", "task", "fusions"), ("seeds",)),
    "gradcam": (("dataset", "task", "examples"), ()),
    "temporal_branch": (("dataset", "task", "variants"), ("seeds",)),
    "imbalance": (("tasks", "options"), ("seeds",)),
    "annotation": (("dataset", "task", "shifts"), ("automatic_apex", "seeds")),
    "synthetic": ((), ("subjects", "clips_per_subject", "seed", "composite_subjects", "composite_clips_per_subject")),
    "paths": (("synthetic", "prepared", "runs"), ()),
    "composite": ((), ("fusions", "seeds")),
    "cross_dataset": (("datasets",), ("lodo", "seeds")),
}
OPTIONAL_SECTIONS = ("synthetic", "composite", "cross_dataset", "temporal_branch", "annotation", "imbalance")  # null: as if absent
COMPOSITE = ("megc2019", "3class")  # the composite chapter's dataset and task (and LODO's)
REPLACED_MAPPINGS = ("datasets",)  # replaced whole by an override, so it can narrow the plan
DATA_SOURCES = ("synthetic", "real")
# Optional numbers: null (the default) or a positive integer.
POSITIVE_OR_NULL = ("epochs", "batch_size", "cpu_threads", "crop_size", "checkpoint_every")
FLAGS = ("frame_reselection", "progress")


def apply_overrides(params: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict:
    """``params`` changed by ``overrides`` under the rule of the module docstring."""
    if overrides is not None and not isinstance(overrides, Mapping):
        raise ValueError(f"overrides must be a mapping of parameter keys, got {overrides!r}")
    return _merge(params, overrides or {}, top_level=True)


def _merge(base: Mapping[str, Any], changes: Mapping[str, Any], top_level: bool) -> dict:
    merged = copy.deepcopy(dict(base))
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        elif (isinstance(value, Mapping) and isinstance(merged.get(key), Mapping)
              and not (top_level and key in REPLACED_MAPPINGS)):
            merged[key] = _merge(merged[key], value, top_level=False)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def check(params: Any, origin: str) -> None:
    """Raise one ValueError listing every invalid, unknown or missing parameter.

    ``origin`` names where the parameters came from (the file, and whether overrides were
    applied) and starts the message.
    """
    problems = _problems(params)
    if problems:
        lines = "\n".join(f"  - {problem}" for problem in problems)
        raise ValueError(f"{origin}: invalid parameters (nothing was run):\n{lines}")


# --------------------------------------------------------------------------------- checks
def _problems(params: Any) -> list[str]:
    if not isinstance(params, Mapping):
        return [f"the parameters must be a mapping of keys, got {type(params).__name__}"]
    from tsfmicro.data import DATASETS, TASKS
    from tsfmicro.engine import RECIPES
    from tsfmicro.engine.runs import DEVICES
    from tsfmicro.model import FUSIONS, PRESETS

    problems = _key_problems(params, "", REQUIRED, OPTIONAL)
    for key, (required, optional) in NESTED.items():
        if key in params and not (key in OPTIONAL_SECTIONS and params[key] is None):
            problems += _key_problems(params[key], f"{key}.", required, optional)

    problems += _choice(params, "data_source", DATA_SOURCES)
    problems += _choice(params, "preset", tuple(PRESETS))
    problems += _choice(params, "recipe", RECIPES)
    problems += _choice(params, "device", DEVICES)
    # optional choices: null (or left out) is the default (the authors' choice)
    for row in PARAMS_OPTIONS:  # run options with named choices (tsfmicro.options)
        if row.choices is not None and params.get(row.name) is not None:
            problems += _choice(params, row.name, row.resolve_choices())
    problems += _seed_list(params.get("seeds"), "seeds") if "seeds" in params else []
    problems += _datasets(params.get("datasets"), DATASETS, TASKS) if "datasets" in params else []

    datasets = params.get("datasets") if isinstance(params.get("datasets"), Mapping) else {}
    for section in ("ablation", "gradcam", "annotation"):
        settings = params.get(section)
        if isinstance(settings, Mapping) and "dataset" in settings and "task" in settings:
            problems += _in_main_results(section, settings["dataset"], settings["task"], datasets)
    ablation = params.get("ablation")
    if isinstance(ablation, Mapping):
        if "fusions" in ablation:
            problems += _name_list(ablation["fusions"], "ablation.fusions", FUSIONS)
        if "seeds" in ablation:
            problems += _seed_list(ablation["seeds"], "ablation.seeds")
    gradcam = params.get("gradcam")
    if isinstance(gradcam, Mapping) and "examples" in gradcam and not (
            _is_int(gradcam["examples"]) and gradcam["examples"] >= 0):
        problems.append(f"gradcam.examples: {gradcam['examples']!r} is not a whole number >= 0 "
                        f"(examples per class and outcome; 0 draws no Grad-CAM)")

    problems += _chapter_problems(params, FUSIONS)
    problems += _temporal_branch_problems(params.get("temporal_branch"), datasets)
    problems += _annotation_problems(params.get("annotation"))
    problems += _imbalance_problems(params.get("imbalance"), datasets)

    for key in POSITIVE_OR_NULL:
        value = params.get(key)
        if value is not None and not (_is_int(value) and value > 0):
            problems.append(f"{key}: {value!r} is not a positive whole number or null")
    seconds = params.get("checkpoint_seconds")
    if seconds is not None and not (isinstance(seconds, (int, float)) and not isinstance(seconds, bool)
                                    and seconds >= 0):
        problems.append(f"checkpoint_seconds: {seconds!r} is not a number of seconds >= 0 or null")
    for key in FLAGS:
        if key in params and not isinstance(params[key], bool):
            problems.append(f"{key}: {params[key]!r} is not true or false")
    synthetic = params.get("synthetic")
    if isinstance(synthetic, Mapping):
        for key, value in synthetic.items():
            if key in NESTED["synthetic"][1] and not (_is_int(value) and value >= 0):
                problems.append(f"synthetic.{key}: {value!r} is not a whole number")
    roots = params.get("roots")
    if roots is not None and not isinstance(roots, Mapping):
        problems.append(f"roots: {roots!r} is not a mapping dataset -> folder")
    elif roots:
        problems += [f"roots.{name}: unknown dataset{_valid(name, DATASETS)}"
                     for name in roots if name not in DATASETS]
    return problems


def _annotation_problems(annotation: Any) -> list[str]:
    """``annotation:`` (optional; ``null`` or left out: no such chapter): shifts are a non-empty
    list of distinct percentages in [-100, 100], automatic_apex true or false, seeds a list."""
    from tsfmicro.data.moved_frames import MAX_SHIFT_PERCENT

    if not isinstance(annotation, Mapping):
        return []  # absent or null; a non-mapping is reported by the key checks
    problems = []
    shifts = annotation.get("shifts")
    if "shifts" in annotation:
        numbers = isinstance(shifts, list) and shifts and all(
            isinstance(p, (int, float)) and not isinstance(p, bool) and abs(p) <= MAX_SHIFT_PERCENT for p in shifts)
        if not numbers:
            problems.append(f"annotation.shifts: {shifts!r} must be a non-empty list of percentages of the "
                            f"onset-offset length in [-{MAX_SHIFT_PERCENT:g}, {MAX_SHIFT_PERCENT:g}], "
                            "e.g. [-5, -2, -1, 1, 2, 5] (0 is always evaluated)")
        elif len(set(shifts)) != len(shifts):
            problems.append(f"annotation.shifts: {shifts!r} lists a shift more than once")
    if "automatic_apex" in annotation and not isinstance(annotation["automatic_apex"], bool):
        problems.append(f"annotation.automatic_apex: {annotation['automatic_apex']!r} is not true or false")
    if annotation.get("seeds") is not None:
        problems += _seed_list(annotation["seeds"], "annotation.seeds")
    return problems


def _chapter_problems(params: Mapping, fusions: tuple[str, ...]) -> list[str]:
    """The ``composite:`` and ``cross_dataset:`` sections (see the module docstring)."""
    from tsfmicro.data import DATASETS, TASKS
    from tsfmicro.data.registry import SHARED_TASK

    problems = []
    composite = params.get("composite")
    if isinstance(composite, Mapping):
        if "fusions" in composite:
            problems += _name_list(composite["fusions"], "composite.fusions", fusions)
        if "seeds" in composite:
            problems += _seed_list(composite["seeds"], "composite.seeds")
    cross = params.get("cross_dataset")
    if isinstance(cross, Mapping):
        if "datasets" in cross:
            shared = tuple(name for name in DATASETS if SHARED_TASK in TASKS[name])
            found = _name_list(cross["datasets"], "cross_dataset.datasets", shared)
            if not found and len(cross["datasets"]) < 2:
                found = [f"cross_dataset.datasets: {cross['datasets']!r} names one dataset; give at least two "
                         f"(each is trained on and tested on the others, task {SHARED_TASK}); valid: {', '.join(shared)}"]
            problems += found
        if "lodo" in cross and not isinstance(cross["lodo"], bool):
            problems.append(f"cross_dataset.lodo: {cross['lodo']!r} is not true or false")
        if "seeds" in cross:
            problems += _seed_list(cross["seeds"], "cross_dataset.seeds")
    return problems


def _temporal_branch_problems(settings: Any, datasets: Mapping) -> list[str]:
    """``temporal_branch:``: one dataset/task of ``datasets:``, token mixers, seeds."""
    from tsfmicro.model.config import TEMPORAL_BRANCHES

    if not isinstance(settings, Mapping):
        return []  # absent or null; a non-mapping is reported with the keys
    problems = []
    if "dataset" in settings and "task" in settings:
        problems += [f"{problem}, or leave the chapter out: temporal_branch: null" for problem in
                     _in_main_results("temporal_branch", settings["dataset"], settings["task"], datasets)]
    if "variants" in settings:
        problems += _name_list(settings["variants"], "temporal_branch.variants", TEMPORAL_BRANCHES)
    if "seeds" in settings:
        problems += _seed_list(settings["seeds"], "temporal_branch.seeds")
    return problems


def _imbalance_problems(settings: Any, datasets: Mapping) -> list[str]:
    """``imbalance:``: "dataset/task" entries of ``datasets:``, option names, seeds."""
    from tsfmicro.engine.imbalance import OPTIONS

    if not isinstance(settings, Mapping):
        return []
    problems = []
    tasks = settings.get("tasks")
    if "tasks" in settings:
        if not isinstance(tasks, list) or not tasks:
            problems.append(f"imbalance.tasks: {tasks!r} must be a non-empty list of dataset/task, e.g. [samm/5class]")
        else:
            for entry in tasks:
                dataset, _, task = str(entry).partition("/")
                if not (isinstance(entry, str) and dataset and task):
                    problems.append(f"imbalance.tasks: {entry!r} is not dataset/task, e.g. samm/5class")
                elif isinstance(datasets.get(dataset), list) and task in datasets[dataset]:
                    continue
                else:
                    planned = ", ".join(f"{name}/{t}" for name, ts in datasets.items() if isinstance(ts, list)
                                        for t in ts) or "none"
                    problems.append(f"imbalance.tasks: {entry} is not in datasets: ({planned}); list only tasks "
                                    f"of datasets: (the paper's option is their main-results run), add it there, "
                                    f"or leave the chapter out: imbalance: null")
            repeated = sorted({str(entry) for entry in tasks if tasks.count(entry) > 1})
            if repeated:
                problems.append(f"imbalance.tasks: {', '.join(repeated)} listed more than once")
    if "options" in settings:
        problems += _name_list(settings["options"], "imbalance.options", tuple(OPTIONS))
    if "seeds" in settings:
        problems += _seed_list(settings["seeds"], "imbalance.seeds")
    return problems


def _key_problems(settings: Any, prefix: str, required: Iterable[str],
                  optional: Iterable[str]) -> list[str]:
    """Missing and unknown keys of one mapping (``prefix``: "" or "ablation.")."""
    name = prefix.rstrip(".") or "the parameters"
    if not isinstance(settings, Mapping):
        return [f"{name}: {settings!r} is not a mapping; it holds the keys "
                f"{', '.join((*required, *optional))}"]
    valid = (*required, *optional)
    problems = [f"{prefix}{key}: missing (a required key)" for key in required if key not in settings]
    problems += [f"{prefix}{key}: unknown key{_valid(str(key), valid)}"
                 for key in settings if key not in valid]
    return problems


def _choice(params: Mapping, key: str, valid: Iterable[str]) -> list[str]:
    valid = tuple(valid)
    if key in params and params[key] not in valid:
        return [f"{key}: unknown value {params[key]!r}{_valid(str(params[key]), valid)}"]
    return []


def _datasets(datasets: Any, known: tuple[str, ...], tasks: Mapping[str, tuple[str, ...]]) -> list[str]:
    """``datasets:`` is a non-empty mapping dataset -> non-empty list of its tasks."""
    if not isinstance(datasets, Mapping) or not datasets:
        return [f"datasets: {datasets!r} must map at least one dataset to its tasks, "
                f"e.g. {{casme2: [5class]}}; valid: {', '.join(known)}"]
    problems = []
    for name, wanted in datasets.items():
        if name not in known:
            problems.append(f"datasets.{name}: unknown dataset{_valid(str(name), known)}")
        else:
            problems += _name_list(wanted, f"datasets.{name}", tasks[name])
    return problems


def _name_list(names: Any, key: str, valid: tuple[str, ...]) -> list[str]:
    """A non-empty list of distinct names, each one of ``valid``."""
    if not isinstance(names, list) or not names:
        return [f"{key}: {names!r} must be a non-empty list; valid: {', '.join(valid)}"]
    problems = [f"{key}: unknown {name!r}{_valid(str(name), valid)}" for name in names
                if name not in valid]
    repeated = sorted({str(name) for name in names if names.count(name) > 1})
    if repeated:
        problems.append(f"{key}: {', '.join(repeated)} listed more than once")
    return problems


def _seed_list(seeds: Any, key: str) -> list[str]:
    if not isinstance(seeds, list) or not seeds or not all(_is_int(seed) for seed in seeds):
        return [f"{key}: {seeds!r} must be a non-empty list of whole numbers, e.g. [0, 1, 2]"]
    if len(set(seeds)) != len(seeds):
        return [f"{key}: {seeds!r} lists a seed more than once"]
    return []


def _in_main_results(section: str, dataset: Any, task: Any, datasets: Mapping) -> list[str]:
    """The ablation, Grad-CAM and annotation sections use one dataset/task of ``datasets:`` (shared runs)."""
    if isinstance(datasets.get(dataset), list) and task in datasets[dataset]:
        return []
    planned = "; ".join(f"{name}: {', '.join(map(str, tasks)) if isinstance(tasks, list) else tasks}"
                        for name, tasks in datasets.items()) or "none"
    return [f"{section}: {dataset} {task} is not in datasets: ({planned}); set "
            f"{section}: {{dataset: ..., task: ...}} to one of them, or add it to datasets:"]


def _valid(name: str, valid: Iterable[str]) -> str:
    """'; valid: a, b, c' with a 'did you mean' for a near miss."""
    valid = [str(v) for v in valid]
    close = difflib.get_close_matches(name, valid, n=1)
    return (f" (did you mean {close[0]!r}?)" if close else "") + f"; valid: {', '.join(valid)}"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --------------------------------------------------------------------------------- datasets
# Each dataset's licence, how to obtain it and its layout are in its spec (tsfmicro/data/datasets/).
SYNTHETIC = "SYNTHETIC"


class DatasetRootMissing(FileNotFoundError):
    """A real dataset's folder was not given or does not exist."""


def root_variable(dataset: str) -> str:
    """The environment variable that can hold a dataset's folder, e.g. TSFMICRO_CASME2_ROOT."""
    from tsfmicro.data.registry import dataset_spec

    return dataset_spec(dataset).root_variable


def find_project_root(start: str | os.PathLike | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: the working folder) that holds
    ``pyproject.toml`` and ``params/``; a notebook opened from ``notebooks/`` finds the
    project above it. Falls back to ``start``."""
    start = Path(start or os.getcwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "params").is_dir():
            return folder
    return start


# --------------------------------------------------------------------------------- resolved
class PlannedRun(NamedTuple):
    """One training request a chapter needs. ``options``: RunConfig fields it sets beyond the
    parameters, as sorted (name, value) pairs (hashable, so shared runs are listed once)."""

    dataset: str
    task: str
    fusion: str = "ts_late"
    seeds: tuple[int, ...] = (0,)
    options: tuple[tuple[str, Any], ...] = ()


class PlannedUnit(NamedTuple):
    """One seed of a PlannedRun: what is trained once."""

    dataset: str
    task: str
    fusion: str
    seed: int
    options: tuple[tuple[str, Any], ...] = ()


def run_options(**options) -> tuple[tuple[str, Any], ...]:
    """``options`` as PlannedRun.options: sorted pairs, None values left out (None = the default)."""
    return tuple(sorted((name, value) for name, value in options.items() if value is not None))


@dataclass
class Params:
    """A checked parameters file and the project folder: where each dataset is, where runs go,
    and which training requests (RunConfig) the book needs."""

    params: dict[str, Any]
    params_file: Path
    project_root: Path

    @classmethod
    def load(cls, params_file: str | os.PathLike = "params/demo.yaml", *,
             roots: dict[str, str | None] | None = None,
             overrides: dict[str, Any] | None = None) -> "Params":
        """Read a parameters file; ``roots`` (dataset -> folder, None = not given) and
        ``overrides`` (any parameter key) come from the notebook's parameters cell.
        Overrides replace lists and the ``datasets:`` mapping, ``null`` removes a key, other
        mappings merge; every parameter is checked before any work starts (ValueError naming
        the key and its valid values; see tsfmicro.params)."""
        project_root = find_project_root()
        path = Path(params_file)
        if not path.is_absolute() and not path.exists():
            path = project_root / path
        if not path.is_file():
            folders = dict.fromkeys([os.getcwd(), str(project_root)])  # once each, in order
            raise FileNotFoundError(f"parameters file not found: {params_file} "
                                    f"(looked in {' and '.join(folders)})")
        project_root = find_project_root(path.parent)
        params = load_mapping(path.read_text(encoding="utf-8"), str(path))  # syntax/shape: one line, exit 2
        # overrides replace lists and `datasets:`, null removes a key (tsfmicro.params)
        params = apply_overrides(params, overrides)
        given_roots = {name: folder for name, folder in (roots or {}).items() if folder}
        params["roots"] = {**(params.get("roots") or {}), **given_roots}
        check(params, f"{path}" + (" with overrides" if overrides else ""))
        params["seeds"] = [int(seed) for seed in params["seeds"]]
        if params.get("cpu_threads"):
            # PyTorch's intra-op threads in this process (training runs in it). On a small
            # shared CPU one thread is often faster: spinning OpenMP threads compete with
            # every other busy process.
            import torch

            torch.set_num_threads(int(params["cpu_threads"]))
        return cls(params=params, params_file=path.resolve(), project_root=project_root)

    # ------------------------------------------------------------------ names
    @property
    def synthetic(self) -> bool:
        return self.params["data_source"] == "synthetic"

    def dataset_tasks(self) -> list[tuple[str, str]]:
        """(dataset, task) pairs of the main results, in the order of the parameters."""
        return [(dataset, task) for dataset, tasks in self.params["datasets"].items()
                for task in tasks]

    @property
    def seeds(self) -> list[int]:
        return list(self.params["seeds"])

    def path(self, name: str) -> Path:
        """A folder from ``paths:`` (synthetic, prepared, runs), relative to the project."""
        folder = Path(os.path.expanduser(str(self.params["paths"][name])))
        return folder if folder.is_absolute() else self.project_root / folder

    def root(self, dataset: str) -> Path:
        """The dataset's folder. Synthetic: written into the cache the first time.
        Real: the ``-p <dataset>_root`` parameter, else $TSFMICRO_<DATASET>_ROOT, else
        ``roots:`` of the parameters file; a missing one raises DatasetRootMissing."""
        if self.synthetic:
            return self._synthetic_root(dataset)
        folder = self.params["roots"].get(dataset) or os.environ.get(root_variable(dataset))
        if not folder:
            raise DatasetRootMissing(self._missing_message(dataset, None))
        folder = Path(os.path.expanduser(str(folder)))
        if not folder.is_dir():
            raise DatasetRootMissing(self._missing_message(dataset, folder))
        return folder

    def _missing_message(self, dataset: str, folder: Path | None) -> str:
        from tsfmicro.data.registry import missing_folder_help

        name, obtain, layout = missing_folder_help(dataset)
        problem = f"the {name} folder {folder} does not exist" if folder else f"no folder given for {name}"
        if folder and not folder.is_absolute():  # roots are read from the working folder
            problem += f" (a relative folder is read from the working folder, {os.getcwd()})"
        return (
            f"{problem}.\n"
            f"  Give it with export {root_variable(dataset)}=/path/to/{dataset.upper()} (read by "
            f"tsfmicro plan/run and the notebooks), or -p roots.{dataset}=/path/to/{dataset.upper()} "
            f"(tsfmicro plan/run), or papermill -p {dataset}_root /path/to/{dataset.upper()}, or set "
            f"roots: {{{dataset}: ...}} in {self.params_file.name}.\n"
            f"  {name} is licence-restricted and not shipped with tsfmicro: {obtain}\n"
            f"  Expected layout: {layout}.\n"
            f"  To run without it, use params/demo.yaml (synthetic data)."
        )

    def _synthetic_root(self, dataset: str) -> Path:
        """Synthetic data in the dataset's official layout, written once per size and seed
        (tsfmicro.data.write_synthetic writes into a staging folder and renames it, so an
        interrupted write never leaves a half dataset behind)."""
        from tsfmicro.data import write_synthetic
        from tsfmicro.data.registry import SYNTHETIC_LAYOUTS

        if dataset not in SYNTHETIC_LAYOUTS:
            raise ValueError(f"no synthetic layout for {dataset!r}; "
                             f"synthetic layouts: {', '.join(SYNTHETIC_LAYOUTS)}")
        settings = self.params.get("synthetic") or {}
        subjects = int(settings.get("subjects", 6))
        clips = int(settings.get("clips_per_subject", 8))
        if dataset == COMPOSITE[0]:  # its own size, per part (three parts: three times the folds)
            subjects = int(settings.get("composite_subjects") or subjects)
            clips = int(settings.get("composite_clips_per_subject") or clips)
        seed = int(settings.get("seed", 0))
        final = self.path("synthetic") / f"{dataset}-{subjects}x{clips}-seed{seed}"
        if not final.is_dir():
            write_synthetic(dataset, final, subjects=subjects, clips_per_subject=clips, seed=seed)
        return final

    @property
    def crop_size(self) -> int:
        """Size of the cached face crops: the parameter, else the model preset's input size
        (the engine's default, so notebooks and training share one cache)."""
        if self.params.get("crop_size"):
            return int(self.params["crop_size"])
        from tsfmicro.model import PRESETS

        return PRESETS[self.params["preset"]].image_size

    @property
    def errata(self) -> str:
        """``errata:`` of the parameters: keep (default, as the authors' code) or owners."""
        return str(self.params.get("errata") or "keep")

    @property
    def ablation_seeds(self) -> list[int]:
        """Seeds of the fusion ablation: ``ablation: seeds:`` if given, else ``seeds``."""
        return [int(s) for s in self.params["ablation"].get("seeds") or self.seeds]

    @property
    def temporal_branch_reference(self) -> str:
        """The preset's temporal branch: the paper's retention, the one the others are compared with."""
        from tsfmicro.model import PRESETS

        return PRESETS[self.params["preset"]].temporal_branch

    @property
    def imbalance_reference(self) -> str:
        """The class-imbalance option of the paper's training (plain cross-entropy, shuffled epochs)."""
        from tsfmicro.engine.imbalance import OPTIONS

        return next(iter(OPTIONS))

    def temporal_branch_variants(self) -> dict[str, dict]:
        """``temporal_branch: variants:`` -> the RunConfig options of each (the preset's own
        token mixer, the paper's retention, sets none: its run is the main results' run)."""
        settings = self.params.get("temporal_branch") or {}
        preset = self.temporal_branch_reference
        return {variant: {"temporal_branch": None if variant == preset else variant}
                for variant in settings.get("variants", [])}

    def imbalance_tasks(self) -> list[tuple[str, str]]:
        """``imbalance: tasks:`` as (dataset, task) pairs; [] when the section is absent."""
        return [tuple(str(entry).split("/", 1)) for entry in (self.params.get("imbalance") or {}).get("tasks", [])]

    def imbalance_options(self) -> dict[str, dict]:
        """``imbalance: options:`` -> the RunConfig options (loss, sampling) of each; the paper's
        (cross_entropy) sets none: its run is the main results' run."""
        from tsfmicro.engine.imbalance import option_settings

        return {name: option_settings(name) for name in (self.params.get("imbalance") or {}).get("options", [])}

    def planned_runs(self) -> list["PlannedRun"]:
        """Every run the notebooks of these parameters ask for, each once (a run two chapters
        share, such as T-S late seed 0 of the main results and the fusion ablation, is listed
        once). Each section of the parameters adds its runs in :meth:`_section_runs`."""
        return list(dict.fromkeys(run for section in self._section_runs() for run in section))

    def _section_runs(self) -> list[list["PlannedRun"]]:
        """The runs of each section of the parameters, in book order."""
        main = [PlannedRun(dataset, task, "ts_late", tuple(self.seeds)) for dataset, task in self.dataset_tasks()]
        ablation = self.params.get("ablation")
        fusions = [PlannedRun(ablation["dataset"], ablation["task"], fusion, tuple(self.ablation_seeds))
                   for fusion in ablation["fusions"]] if ablation else []
        return [main, fusions, self._composite_runs(), self._cross_dataset_runs(), self._temporal_branch_runs(),
                self._annotation_runs(), self._imbalance_runs()]

    def section_seeds(self, section: str) -> tuple[int, ...]:
        """``seeds`` of a chapter section, else the parameters' ``seeds``."""
        return tuple(int(s) for s in (self.params.get(section) or {}).get("seeds") or self.seeds)

    def _composite_runs(self) -> list["PlannedRun"]:
        """``composite:``: each fusion trained LOSO on the MEGC2019 composite (none without the section)."""
        settings = self.params.get("composite")
        if settings is None:
            return []
        dataset, task = COMPOSITE
        return [PlannedRun(dataset, task, fusion, self.section_seeds("composite"))
                for fusion in settings.get("fusions") or ["ts_late"]]

    def cross_dataset_pairs(self) -> list[tuple[str, str]]:
        """(trained on, tested on) for every ordered pair of ``cross_dataset: datasets``, the
        diagonal (A, A: A's own LOSO) included, row by row; [] without the section."""
        datasets = (self.params.get("cross_dataset") or {}).get("datasets") or []
        return [(train, test) for train in datasets for test in datasets]

    def cross_dataset_planned(self, train: str, test: str) -> "PlannedRun":
        """The run of one cell of the cross-dataset matrix (the diagonal: LOSO on ``train``)."""
        from tsfmicro.data.registry import SHARED_TASK

        return PlannedRun(train, SHARED_TASK, "ts_late", self.section_seeds("cross_dataset"),
                          run_options(test_dataset=test if test != train else None))

    def lodo_planned(self) -> "PlannedRun | None":
        """Leave-one-dataset-out on the composite, when ``cross_dataset: lodo`` is true."""
        if not (self.params.get("cross_dataset") or {}).get("lodo"):
            return None
        dataset, task = COMPOSITE
        return PlannedRun(dataset, task, "ts_late", self.section_seeds("cross_dataset"), run_options(split="lodo"))

    def _cross_dataset_runs(self) -> list["PlannedRun"]:
        runs = [self.cross_dataset_planned(train, test) for train, test in self.cross_dataset_pairs()]
        lodo = self.lodo_planned()
        return runs + ([lodo] if lodo else [])

    def _temporal_branch_runs(self) -> list["PlannedRun"]:
        """``temporal_branch:``: each token mixer on its one dataset/task (T-S late)."""
        settings = self.params.get("temporal_branch")
        if not settings:
            return []
        seeds = tuple(self.section_seeds("temporal_branch"))
        return [PlannedRun(settings["dataset"], settings["task"], "ts_late", seeds, run_options(**options))
                for options in self.temporal_branch_variants().values()]

    def _imbalance_runs(self) -> list["PlannedRun"]:
        """``imbalance:``: each option on each of its tasks (T-S late)."""
        seeds = tuple(self.section_seeds("imbalance"))
        return [PlannedRun(dataset, task, "ts_late", seeds, run_options(**options))
                for dataset, task in self.imbalance_tasks() for options in self.imbalance_options().values()]

    def _annotation_runs(self) -> list["PlannedRun"]:
        """``annotation:``: T-S late with the annotated apex (shared with the main results) and,
        with ``automatic_apex: true``, with the automatic apex, on the same seeds."""
        annotation = self.params.get("annotation")
        if not annotation:
            return []
        dataset, task, seeds = annotation["dataset"], annotation["task"], self.section_seeds("annotation")
        runs = [PlannedRun(dataset, task, "ts_late", seeds)]
        if annotation.get("automatic_apex", False):
            runs.append(PlannedRun(dataset, task, "ts_late", seeds, run_options(apex="automatic")))
        return runs

    def planned_units(self) -> list["PlannedUnit"]:
        """Every (dataset, task, fusion, seed, options) trained once: the real amount of training."""
        return list(dict.fromkeys(PlannedUnit(run.dataset, run.task, run.fusion, seed, run.options)
                                  for run in self.planned_runs() for seed in run.seeds))

    def run_config(self, dataset: str, task: str, fusion: str = "ts_late",
                   seeds: list[int] | None = None, root: str | None = None, **options):
        """The engine's RunConfig for one (dataset, task, fusion) under these parameters
        (``seeds``: default the parameters' ``seeds``; ``root``: default :meth:`root`;
        ``options``: RunConfig fields a chapter sets beyond the parameters, e.g.
        ``temporal_branch="transformer"``; with ``test_dataset``, ``test_root`` defaults to its
        folder)."""
        from tsfmicro.engine import RunConfig

        if options.get("test_dataset") and "test_root" not in options:
            # root="" plans a run whose data is missing (published sizes): its test side is missing too
            options["test_root"] = root if root == "" else str(self.root(options["test_dataset"]))
        settings = dict(
            dataset=dataset, root=str(self.root(dataset)) if root is None else root, task=task, fusion=fusion,
            preset=self.params["preset"], recipe=self.params["recipe"],
            seeds=tuple(self.seeds if seeds is None else seeds),
            device=self.params["device"], out=str(self.path("runs")),
            crop_size=self.crop_size, cache_dir=str(self.path("prepared")),
            # the run options a parameters file sets (tsfmicro.options; null or absent: the default)
            **{row.name: row.field_default if self.params.get(row.name) is None else self.params[row.name]
               for row in PARAMS_OPTIONS},
            # mid-fold checkpoints (not part of a run's identity): every N epochs, at most every S seconds
            checkpoint_every=int(self.params.get("checkpoint_every") or 5),
            checkpoint_seconds=float(60.0 if self.params.get("checkpoint_seconds") is None
                                     else self.params["checkpoint_seconds"]),
        )
        return RunConfig(**{**settings, **options})

    def _planned_config(self, run: "PlannedRun", root: str | None = None):
        return self.run_config(run.dataset, run.task, run.fusion, list(run.seeds), root=root, **dict(run.options))

    def run_configs(self, missing_roots: bool = False) -> tuple[list, list]:
        """The RunConfig of every run of :meth:`planned_runs`, as (runs whose data is there,
        runs of real datasets whose folder was not given, with root ""). Without
        ``missing_roots`` a missing folder raises DatasetRootMissing instead."""
        available, missing = [], []
        for run in self.planned_runs():
            try:
                available.append(self._planned_config(run))
            except DatasetRootMissing:
                if not missing_roots:
                    raise
                missing.append(self._planned_config(run, root=""))
        return available, missing
