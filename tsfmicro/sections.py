"""A chapter's section of a parameters file as a typed value, and the one validator that checks
every section (tsfmicro.params checks the rest of the file with the same messages).

A section is a frozen dataclass; each field is one key of the section, made with
:func:`setting`: a field without a default is a required key, one with a default an optional
key (the keys' order is the fields' order, as the messages list them). A field's ``check``
says what its value must be (:func:`names`, :func:`seeds`, :func:`flag`, or any function
``(value, key, params) -> problems``); a section's ``problems(raw, name, params)`` classmethod,
when it has one, checks what spans keys (e.g. "dataset/task must be one of ``datasets:``").

:func:`section_problems` reports every problem of one section as the lines of
tsfmicro.params.check ("ablation.fusions: unknown 'late' (did you mean 'ts_late'?); valid:
..."); :func:`parse_section` builds the dataclass from a checked mapping (lists become tuples,
so a section is hashable and cannot be changed by accident).

Also here, because the chapters plan with them: :class:`PlannedRun`, :class:`PlannedUnit` and
:func:`run_options` (tsfmicro.params re-exports them).
"""
from __future__ import annotations

import dataclasses
import difflib
from typing import Any, Callable, Iterable, Mapping, NamedTuple

Check = Callable[[Any, str, Mapping], list]  # (value, "section.key", the whole parameters) -> problems


# --------------------------------------------------------------------------------- planned runs
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


# --------------------------------------------------------------------------------- sections
def setting(check: Check | None = None, *, default: Any = dataclasses.MISSING, null_ok: bool = False):
    """One key of a section. No ``default``: a required key. ``null_ok``: ``null`` is accepted
    as "the default" without running ``check`` (otherwise a ``null`` value is checked too)."""
    metadata = {"check": check, "null_ok": null_ok}
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def section_keys(section: type) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(required keys, optional keys) of a section dataclass, in field order."""
    fields = dataclasses.fields(section)
    return (tuple(f.name for f in fields if _required(f)), tuple(f.name for f in fields if not _required(f)))


def section_key_problems(section: type, raw: Any, name: str) -> list[str]:
    """Missing and unknown keys of one section (or that it is not a mapping)."""
    required, optional = section_keys(section)
    return key_problems(raw, f"{name}.", required, optional)


def section_value_problems(section: type, raw: Any, name: str, params: Mapping) -> list[str]:
    """The section's own cross-key checks, then each present key's check, in field order."""
    if not isinstance(raw, Mapping):
        return []  # reported by section_key_problems
    problems = list(section.problems(raw, name, params)) if hasattr(section, "problems") else []
    for field in dataclasses.fields(section):
        check = field.metadata.get("check")
        if check is None or field.name not in raw or (raw[field.name] is None and field.metadata.get("null_ok")):
            continue
        problems += check(raw[field.name], f"{name}.{field.name}", params)
    return problems


def section_problems(section: type, raw: Any, name: str, params: Mapping) -> list[str]:
    """Every problem of one section: its keys, then its values."""
    return section_key_problems(section, raw, name) + section_value_problems(section, raw, name, params)


def parse_section(section: type, raw: Mapping):
    """The section dataclass of a checked mapping (lists as tuples; ``null`` values: the default)."""
    known = {field.name for field in dataclasses.fields(section)}
    return section(**{key: _frozen(value) for key, value in raw.items() if key in known and value is not None})


def _required(field: dataclasses.Field) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def _frozen(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_frozen(item) for item in value)
    return value


# --------------------------------------------------------------------------------- checks
def names(valid: Callable[[], Iterable[str]] | Iterable[str]) -> Check:
    """A non-empty list of distinct names, each one of ``valid`` (a function: looked up when
    checked, so that a registry filled later is seen)."""
    def check(value: Any, key: str, params: Mapping) -> list[str]:
        return name_list(value, key, tuple(valid() if callable(valid) else valid))
    return check


def seeds() -> Check:
    """A non-empty list of distinct whole numbers."""
    def check(value: Any, key: str, params: Mapping) -> list[str]:
        return seed_list(value, key)
    return check


def flag() -> Check:
    """true or false."""
    def check(value: Any, key: str, params: Mapping) -> list[str]:
        return [] if isinstance(value, bool) else [f"{key}: {value!r} is not true or false"]
    return check


def main_datasets(params: Mapping) -> Mapping:
    """``datasets:`` of the parameters when it is a mapping, else {} (reported elsewhere)."""
    datasets = params.get("datasets")
    return datasets if isinstance(datasets, Mapping) else {}


def key_problems(settings: Any, prefix: str, required: Iterable[str], optional: Iterable[str]) -> list[str]:
    """Missing and unknown keys of one mapping (``prefix``: "" or "ablation.")."""
    name = prefix.rstrip(".") or "the parameters"
    if not isinstance(settings, Mapping):
        return [f"{name}: {settings!r} is not a mapping; it holds the keys "
                f"{', '.join((*required, *optional))}"]
    valid = (*required, *optional)
    problems = [f"{prefix}{key}: missing (a required key)" for key in required if key not in settings]
    problems += [f"{prefix}{key}: unknown key{valid_values(str(key), valid)}"
                 for key in settings if key not in valid]
    return problems


def name_list(names: Any, key: str, valid: tuple[str, ...]) -> list[str]:
    """A non-empty list of distinct names, each one of ``valid``."""
    if not isinstance(names, list) or not names:
        return [f"{key}: {names!r} must be a non-empty list; valid: {', '.join(valid)}"]
    problems = [f"{key}: unknown {name!r}{valid_values(str(name), valid)}" for name in names
                if name not in valid]
    repeated = sorted({str(name) for name in names if names.count(name) > 1})
    if repeated:
        problems.append(f"{key}: {', '.join(repeated)} listed more than once")
    return problems


def seed_list(seeds: Any, key: str) -> list[str]:
    if not isinstance(seeds, list) or not seeds or not all(is_int(seed) for seed in seeds):
        return [f"{key}: {seeds!r} must be a non-empty list of whole numbers, e.g. [0, 1, 2]"]
    if len(set(seeds)) != len(seeds):
        return [f"{key}: {seeds!r} lists a seed more than once"]
    return []


class OnMainResultsTask:
    """A section about one dataset/task of ``datasets:`` (its ``dataset`` and ``task`` settings):
    its extra check is that the pair is one the main results train. ``leave_out`` is added to each
    problem (an optional chapter says how to leave it out)."""

    leave_out = ""

    @classmethod
    def problems(cls, raw, name, params) -> list[str]:
        if "dataset" in raw and "task" in raw:
            return [problem + cls.leave_out
                    for problem in in_main_results(name, raw["dataset"], raw["task"], main_datasets(params))]
        return []


def in_main_results(section: str, dataset: Any, task: Any, datasets: Mapping) -> list[str]:
    """A section that uses one dataset/task of ``datasets:`` (shared runs)."""
    if isinstance(datasets.get(dataset), list) and task in datasets[dataset]:
        return []
    planned = "; ".join(f"{name}: {', '.join(map(str, tasks)) if isinstance(tasks, list) else tasks}"
                        for name, tasks in datasets.items()) or "none"
    return [f"{section}: {dataset} {task} is not in datasets: ({planned}); set "
            f"{section}: {{dataset: ..., task: ...}} to one of them, or add it to datasets:"]


def valid_values(name: str, valid: Iterable[str]) -> str:
    """'; valid: a, b, c' with a 'did you mean' for a near miss."""
    valid = [str(v) for v in valid]
    close = difflib.get_close_matches(name, valid, n=1)
    return (f" (did you mean {close[0]!r}?)" if close else "") + f"; valid: {', '.join(valid)}"


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
