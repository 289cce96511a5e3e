"""What a finished run directory held when it was written (``checksums.json``: each file's size,
SHA-256 and, for a CSV, its row count), so a file cut short or edited later is found and named
instead of being read as if it were whole (a report of 10 clips where 46 were tested)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

RECORD = "checksums.json"


def describe(data: bytes, name: str) -> dict:
    entry = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    if name.endswith(".csv"):
        entry["rows"] = max(data.count(b"\n") - 1, 0)  # the header line is not a row
    return entry


def record_text(folder: Path, names: list[str], pending: dict[str, bytes]) -> str:
    """``checksums.json`` for the files ``names`` in ``folder`` and those about to be written
    (``pending``: name -> bytes), so the record can be written before the file that marks the
    directory finished."""
    entries = {name: describe((folder / name).read_bytes(), name) for name in names}
    entries.update({name: describe(data, name) for name, data in pending.items()})
    return json.dumps({"files": dict(sorted(entries.items()))}, indent=2) + "\n"


def damage(folder: str | Path) -> list[str]:
    """What differs from the record, one phrase per file (``predictions.csv has 10 rows, 46 when
    written``); [] when intact or when no record was written (a run of an earlier version)."""
    folder = Path(folder)
    try:
        recorded = json.loads((folder / RECORD).read_text(encoding="utf-8"))["files"]
    except FileNotFoundError:
        return []
    except (ValueError, KeyError, TypeError):
        return [f"{RECORD} is unreadable"]
    problems = []
    for name, expected in recorded.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} is missing")
            continue
        found = describe(path.read_bytes(), name)
        if found["sha256"] == expected["sha256"]:
            continue
        if "rows" in expected and found["rows"] != expected["rows"]:
            problems.append(f"{name} has {found['rows']} rows, {expected['rows']} when written")
        else:
            problems.append(f"{name} changed since it was written ({found['bytes']} bytes, "
                            f"{expected['bytes']} when written)")
    return problems
