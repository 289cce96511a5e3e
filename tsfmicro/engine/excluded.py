"""The annotation rows a run leaves out, never silently: ``excluded.csv`` beside the run (one
row per left-out row: file, row, subject, clip, reason), a console line per run, and
``--strict`` to stop before any training when a row is unusable.

Three kinds of left-out rows, told apart because only one is a problem with the data:
unusable (unreadable frames, bad numbers, duplicate rows, missing frames: the dataset readers'
report, and frames the face cropper could not read), not in the task (a label the task's class
map leaves out, e.g. fear in CASME II 5class), and removed by the choice ``errata: owners``.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from tsfmicro import _io
from tsfmicro.results import EXCLUDED, excluded_kinds


def write_excluded(folder: Path, data) -> None:
    """``excluded.csv`` of a unit or request directory: the prepared data's excluded rows."""
    _io.write_csv(Path(folder) / EXCLUDED, data.excluded)


def check_strict(plan) -> None:
    """``--strict``: stop before any training when a request's data left out an unusable row
    (ValueError naming the first one, the count and the full report)."""
    for request in plan.requests:
        data = request.data
        kinds = excluded_kinds(data.excluded)
        unusable = data.excluded[kinds == "unusable"]
        if unusable.empty:
            continue
        report = Path(str(data.cache_path).removesuffix(".npz") + f"_{data.task}_unusable.csv")
        _io.write_csv(report, unusable)
        first = unusable.iloc[0]
        where = f"{first['file']}, row {first['row']}" if not pd.isna(first["row"]) else f"{first['file']}"
        total = len(data.samples) + len(data.excluded)
        raise ValueError(f"--strict: {len(unusable)} of {total} rows of {data.dataset} {data.task} are unusable "
                         f"(first: {where}: {first['reason']}); all of them: {report}. Mend them, or run without "
                         "--strict to leave them out")
