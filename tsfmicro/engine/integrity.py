"""Damaged files found before any training, so nothing is read as if it were whole.

* A finished unit or request records its files (``checksums.json``, tsfmicro._checksums) just
  before ``metrics.json``, the file that marks it finished. One found damaged (a file cut short,
  edited or missing) is named and assembled again from its fold results (a request: from its
  units), without training.
* A fold result (``folds/<fold>.pt``) that does not load is named, moved aside
  (``<fold>.pt.damaged``) and its fold trained again.
"""
from __future__ import annotations

import sys
from pathlib import Path

from tsfmicro import _io
from tsfmicro._checksums import RECORD, damage, record_text
from tsfmicro.results import EXCLUDED, FILES, is_finished

from . import folds as fold_files

METRICS = "metrics.json"


def write_metrics_last(folder: Path, metrics: dict) -> None:
    """Record every file of a run directory, then write ``metrics.json`` (it marks the directory
    finished; the record already holds its checksum, so a kill between the two leaves a directory
    that is simply unfinished)."""
    text = _io.json_text(metrics)
    names = [name for name in (*FILES, EXCLUDED) if name != METRICS and (folder / name).is_file()]
    _io.write_text(folder / RECORD, record_text(folder, names, {METRICS: text.encode("utf-8")}))
    _io.write_text(folder / METRICS, text)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _unmark(folder: Path, what: str, source: str, problems: list[str]) -> None:
    _say(f"{what} {folder} is damaged: {'; '.join(problems)}; assembling it again from {source}")
    (folder / METRICS).unlink(missing_ok=True)  # unfinished again: execute writes it anew


def check_plan(plan) -> int:
    """Before any training: every finished unit and request of ``plan`` intact (else unmarked,
    to be assembled again), every fold result of an unfinished unit loadable (else moved aside, to
    be trained again). Returns how many problems were found (each said on stderr)."""
    found = 0
    for unit in plan.units:
        if unit.finished:
            problems = damage(unit.path)
            if problems:
                found += 1
                _unmark(unit.path, "unit", f"its fold results in {unit.path / fold_files.FOLDS}", problems)
        if unit.finished:  # intact: its fold results are not read again
            continue
        for fold in unit.folds:
            path = fold_files.result_path(unit.path, fold.name)
            if not path.exists():
                continue
            try:
                fold_files.read_result(unit.path, unit.key, str(fold.name))
            except (ValueError, KeyError, TypeError, AttributeError) as error:
                found += 1
                aside = path.with_name(path.name + ".damaged")
                path.replace(aside)
                text = str(error)  # "checkpoint <path> is corrupt ... (<why>); delete it ...": keep <why>
                opened, closed = text.find(" ("), text.rfind(")")
                reason = text[opened + 2:closed] if 0 <= opened < closed else text
                _say(f"fold result {path} is damaged ({reason[:160]}); moved aside to {aside.name}, "
                     f"training fold {fold.name} again")
    for request in plan.requests:
        if is_finished(request.path):
            problems = damage(request.path)
            if problems:
                found += 1
                _unmark(request.path, "run", "its units", problems)
    return found
