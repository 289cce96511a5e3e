"""Parameters files (``params/*.yaml``): the keys they hold, how overrides change them, and
the checks :meth:`tsfmicro.study.Study.load` runs before any work starts.

Overrides (``-y "overrides: {...}"`` in papermill, ``overrides=`` in Python) follow one rule,
so that they can narrow a plan as well as change it:

- a value replaces the file's value; lists (``seeds``, ``fusions``, a dataset's tasks) are
  replaced whole, never appended to;
- the ``datasets:`` mapping is replaced whole: ``{datasets: {casme2: [5class]}}`` runs
  CASME II 5-class only;
- ``null`` removes the key (``{ablation: {seeds: null}}``: the ablation uses ``seeds``);
- any other mapping (``ablation``, ``gradcam``, ``synthetic``, ``roots``, ``paths``) merges
  key by key with the file's.

Every problem found is reported at once, in one ValueError naming the key and its valid
values.
"""
from __future__ import annotations

import copy
import difflib
from typing import Any, Iterable, Mapping

# Top-level keys: those a parameters file must have, and those it may leave out.
REQUIRED = ("data_source", "datasets", "ablation", "gradcam", "preset", "recipe", "seeds",
            "device", "paths")
OPTIONAL = ("epochs", "batch_size", "precision", "rotary", "cpu_threads", "crop_size",
            "frame_reselection", "errata", "progress", "synthetic", "roots")
# Keys of the nested mappings: (required, optional).
NESTED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "ablation": (("dataset", "task", "fusions"), ("seeds",)),
    "gradcam": (("dataset", "task", "examples"), ()),
    "synthetic": ((), ("subjects", "clips_per_subject", "seed")),
    "paths": (("synthetic", "prepared", "runs"), ()),
}
REPLACED_MAPPINGS = ("datasets",)  # replaced whole by an override, so it can narrow the plan
DATA_SOURCES = ("synthetic", "real")
# Optional numbers: null (the default) or a positive integer.
POSITIVE_OR_NULL = ("epochs", "batch_size", "cpu_threads", "crop_size")
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
    from tsfmicro.data import DATASETS, ERRATA_CHOICES, TASKS
    from tsfmicro.engine import RECIPES
    from tsfmicro.engine.recipes import PRECISIONS
    from tsfmicro.engine.runs import DEVICES
    from tsfmicro.model import FUSIONS, PRESETS
    from tsfmicro.model.retention import ROTARY

    problems = _key_problems(params, "", REQUIRED, OPTIONAL)
    for key, (required, optional) in NESTED.items():
        if key in params:
            problems += _key_problems(params[key], f"{key}.", required, optional)

    problems += _choice(params, "data_source", DATA_SOURCES)
    problems += _choice(params, "preset", tuple(PRESETS))
    problems += _choice(params, "recipe", RECIPES)
    problems += _choice(params, "device", DEVICES)
    # optional choices: null (or left out) is the default (the authors' choice)
    for key, valid in (("precision", PRECISIONS), ("rotary", ROTARY), ("errata", ERRATA_CHOICES)):
        if params.get(key) is not None:
            problems += _choice(params, key, valid)
    problems += _seed_list(params.get("seeds"), "seeds") if "seeds" in params else []
    problems += _datasets(params.get("datasets"), DATASETS, TASKS) if "datasets" in params else []

    datasets = params.get("datasets") if isinstance(params.get("datasets"), Mapping) else {}
    for section in ("ablation", "gradcam"):
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

    for key in POSITIVE_OR_NULL:
        value = params.get(key)
        if value is not None and not (_is_int(value) and value > 0):
            problems.append(f"{key}: {value!r} is not a positive whole number or null")
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
    """The ablation and Grad-CAM use one dataset/task of ``datasets:`` (shared runs)."""
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
