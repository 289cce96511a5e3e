"""Parameters files (``params/*.yaml``): the keys they hold, how overrides change them, the
checks run before any work starts, and what they resolve to: dataset folders, run folders and
the engine's training requests (:class:`Params`; :class:`tsfmicro.study.Study` holds one).

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

The chapters' sections (``ablation:``, ``gradcam:`` required; ``composite:``,
``cross_dataset:``, ``temporal_branch:``, ``annotation:``, ``imbalance:`` optional: absent or
``null``, the chapter plans no runs and says it is not configured) are each defined, checked
and planned by their chapter's module (tsfmicro.chapters: the ``Section`` dataclass documents
the keys); this module checks the rest with the same messages and asks every chapter for its
runs (:meth:`Params.planned_runs`).

``plugins:`` (optional) lists Python files outside the package that register networks
(:func:`import_plugins`; the book page "Add your own method"): they are imported first, so the
chapters' checks know their names.

Every problem found is reported at once, in one ValueError naming the key and its valid
values.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from tsfmicro._yaml import load_mapping

from tsfmicro.options import OPTIONS, option

from tsfmicro.sections import PlannedRun, PlannedUnit, run_options  # noqa: F401  (planned runs: defined beside the sections)
from tsfmicro.sections import is_int as _is_int
from tsfmicro.sections import key_problems as _key_problems
from tsfmicro.sections import name_list as _name_list
from tsfmicro.sections import section_key_problems, section_value_problems
from tsfmicro.sections import seed_list as _seed_list
from tsfmicro.sections import valid_values as _valid

# Top-level keys of the parameters themselves; the chapters' sections (ablation, gradcam,
# composite, ...) join them from the chapter registry (tsfmicro.chapters): see REQUIRED, OPTIONAL.
CORE_REQUIRED = ("data_source", "datasets")  # ... then the required chapter sections, then:
CORE_REQUIRED_AFTER = ("preset", "recipe", "seeds", "device", "paths")
CORE_OPTIONAL = ("epochs", "batch_size", "precision", "rotary", "cpu_threads", "crop_size",
                 "frame_reselection", "errata", "progress", "synthetic", "roots", "checkpoint_every",
                 "checkpoint_seconds", "plugins")  # ... then the optional chapter sections
# Run options set for every planned run (tsfmicro.options, ``params``): each one a top-level key.
PARAMS_OPTIONS = tuple(row for row in OPTIONS if row.params)
# Keys of the nested mappings that are not a chapter's section: (required, optional).
NESTED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "synthetic": ((), ("subjects", "clips_per_subject", "seed", "composite_subjects", "composite_clips_per_subject")),
    "paths": (("synthetic", "prepared", "runs"), ()),
}
COMPOSITE = ("megc2019", "3class")  # the composite chapter's dataset and task (and LODO's)
REPLACED_MAPPINGS = ("datasets",)  # replaced whole by an override, so it can narrow the plan
DATA_SOURCES = ("synthetic", "real")
# Optional numbers: null (the default) or a positive integer.
POSITIVE_OR_NULL = ("epochs", "batch_size", "image_size", "cpu_threads", "crop_size", "checkpoint_every")
FLAGS = ("frame_reselection", "progress")


def required_keys() -> tuple[str, ...]:
    """Top-level keys every parameters file has (the required chapter sections among them)."""
    from tsfmicro import chapters

    return (*CORE_REQUIRED, *(c.name for c in chapters.sectioned() if c.required), *CORE_REQUIRED_AFTER)


def optional_keys() -> tuple[str, ...]:
    """Top-level keys a parameters file may leave out (the optional chapter sections and the run
    options of tsfmicro.options among them)."""
    from tsfmicro import chapters

    keys = (*CORE_OPTIONAL, *(c.name for c in chapters.sectioned() if not c.required))
    return keys + tuple(row.name for row in PARAMS_OPTIONS if row.name not in keys)


def optional_sections() -> tuple[str, ...]:
    """Mappings that ``null`` leaves out, as if absent: ``synthetic`` and the optional chapter sections."""
    from tsfmicro import chapters

    return ("synthetic", *(c.name for c in chapters.sectioned() if not c.required))


def __getattr__(name: str):
    # REQUIRED and OPTIONAL read the chapter registry, which imports this module: computed when asked for
    if name == "REQUIRED":
        return required_keys()
    if name == "OPTIONAL":
        return optional_keys()
    if name == "OPTIONAL_SECTIONS":
        return optional_sections()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


def check(params: Any, origin: str, project_root: Path | None = None) -> None:
    """Raise one ValueError listing every invalid, unknown or missing parameter.

    ``origin`` names where the parameters came from (the file, and whether overrides were
    applied) and starts the message. ``project_root``: where relative ``plugins:`` files are read
    (their networks are registered first, so the names they add are valid everywhere below).
    """
    problems = import_plugins(params, project_root or Path.cwd()) if isinstance(params, Mapping) else []
    problems += _problems(params)
    if problems:
        lines = "\n".join(f"  - {problem}" for problem in problems)
        raise ValueError(f"{origin}: invalid parameters (nothing was run):\n{lines}")


# --------------------------------------------------------------------------------- checks
def _problems(params: Any) -> list[str]:
    if not isinstance(params, Mapping):
        return [f"the parameters must be a mapping of keys, got {type(params).__name__}"]
    from tsfmicro import chapters
    from tsfmicro.data import DATASETS, TASKS
    from tsfmicro.engine import RECIPES
    from tsfmicro.engine.runs import DEVICES
    from tsfmicro.model import PRESETS

    optional = optional_sections()
    sectioned = [chapter for chapter in chapters.sectioned()
                 if chapter.name in params and not (chapter.name in optional and params[chapter.name] is None)]
    problems = _key_problems(params, "", required_keys(), optional_keys())
    for chapter in sectioned:  # each chapter's section: its keys (tsfmicro.sections)
        problems += section_key_problems(chapter.section, params[chapter.name], chapter.name)
    for key, (required, optional_nested) in NESTED.items():
        if key in params and not (key in optional and params[key] is None):
            problems += _key_problems(params[key], f"{key}.", required, optional_nested)

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

    for chapter in sectioned:  # each chapter's section: its values
        problems += section_value_problems(chapter.section, params[chapter.name], chapter.name, params)

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
        from tsfmicro.data.datasets import LONG_VIDEO_SPECS

        known = (*DATASETS, *(spec.name for spec in LONG_VIDEO_SPECS))  # long videos: chapter 13's datasets
        problems += [f"roots.{name}: unknown dataset{_valid(name, known)}" for name in roots if name not in known]
    return problems


def import_plugins(params: Mapping, project_root: Path) -> list[str]:
    """``plugins:``: Python files outside the package that register networks
    (tsfmicro.model.register_model), imported in this process before the other keys are checked,
    so a chapter can name their networks (``baselines: {networks: [...]}``); relative paths are
    read from the project folder, as ``paths:``. Returns the problems (a missing file, one that
    registers no network or fails to import), one line each."""
    from tsfmicro.model.registry import import_network_file

    files = params.get("plugins")
    if files is None:
        return []
    if not isinstance(files, list) or not all(isinstance(entry, str) and entry for entry in files):
        return [f"plugins: {files!r} must be a list of Python files, e.g. [examples/own_method/my_network.py]"]
    problems = []
    for entry in files:
        file = Path(os.path.expanduser(entry))
        file = file if file.is_absolute() else project_root / file
        if not file.is_file():
            problems.append(f"plugins: {entry}: no such file ({file}; relative paths are read from the "
                            f"project folder, {project_root})")
            continue
        try:
            import_network_file(file)
        except Exception as error:  # the user's file: say which and why, in one line
            problems.append(f"plugins: {entry}: {type(error).__name__}: {error}")
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
@dataclass
class Params:
    """A checked parameters file and the project folder: where each dataset is, where runs go,
    and which training requests (RunConfig) the book needs."""

    params: dict[str, Any]
    params_file: Path
    project_root: Path
    _sections: dict = field(default_factory=dict, repr=False, compare=False)

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
        check(params, f"{path}" + (" with overrides" if overrides else ""), project_root)
        params["seeds"] = [int(seed) for seed in params["seeds"]]
        # (``cpu_threads`` is applied where work starts in this process: tsfmicro.study.Study.load)
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
        """Size of the cached face crops: the parameter, else the network's input size (``image_size``,
        else the preset's: the engine's default, so notebooks and training share one cache)."""
        if self.params.get("crop_size"):
            return int(self.params["crop_size"])
        if self.params.get("image_size"):
            return int(self.params["image_size"])
        from tsfmicro.model import PRESETS

        return PRESETS[self.params["preset"]].image_size

    @property
    def errata(self) -> str:
        """``errata:`` of the parameters: keep (default, as the authors' code) or owners."""
        return str(self.params.get("errata") or "keep")

    def section(self, name: str):
        """A chapter's section of the parameters as its typed value (a frozen dataclass of
        tsfmicro.chapters), or None when these parameters leave the chapter out."""
        if name not in self._sections:
            from tsfmicro import chapters
            from tsfmicro.sections import parse_section

            chapter = chapters.get(name)
            raw = self.params.get(name)
            self._sections[name] = None if raw is None or chapter.section is None else parse_section(
                chapter.section, raw)
        return self._sections[name]

    def section_seeds(self, section: str) -> tuple[int, ...]:
        """``seeds`` of a chapter section, else the parameters' ``seeds``."""
        return tuple(int(s) for s in (self.params.get(section) or {}).get("seeds") or self.seeds)

    def planned_runs(self) -> list["PlannedRun"]:
        """Every run the notebooks of these parameters ask for, each once (a run two chapters
        share, such as T-S late seed 0 of the main results and the fusion ablation, is listed
        once): the runs of every chapter (tsfmicro.chapters), in book order."""
        from tsfmicro import chapters

        return list(dict.fromkeys(run for chapter in chapters.chapters() for run in chapter.runs(self).values()))

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
        if options.get("pretrained") and "source_root" not in options:  # fine-tuning: the source's folder
            from tsfmicro.engine.transfer import COMPOSITE, COMPOSITE_DATASET

            source = COMPOSITE_DATASET if options["pretrained"] == COMPOSITE else options["pretrained"]
            options["source_root"] = root if root == "" else str(self.root(source))
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
        settings = {**settings, **options}
        if settings.get("arch") not in (None, option("arch").default):
            from tsfmicro.model.registry import model_entry

            # the parameters' network options (rotary) are TSFmicro's: not set on a network that takes none
            takes = model_entry(settings["arch"]).options
            for row in PARAMS_OPTIONS:
                if row.owner == "model" and row.name != "arch" and row.name not in options and row.name not in takes:
                    settings[row.name] = row.field_default
        return RunConfig(**settings)

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
