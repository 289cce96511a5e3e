"""Atomic file writes: a crash never leaves a half-written file under the final name; and the
tagged torch file (checkpoints, fold results and weights) that only loads for its own tag."""
from __future__ import annotations

import errno
import json
import os
import pickle
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the same folder; rename it onto ``path`` on success.

    Same folder so the final ``os.replace`` is a rename on one file system (atomic).
    """
    path = Path(path)
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(handle)
        temporary = Path(name)
        yield temporary
        os.replace(temporary, path)
    except (OSError, RuntimeError) as error:
        full = _no_space(path, error)
        if full is None:
            raise
        raise full from error
    finally:
        if temporary is not None and temporary.exists():
            temporary.unlink()


class NoSpaceLeft(OSError):
    """A write that failed because the disk (or quota) holding its folder is full."""


# torch.save reports a short write as RuntimeError ("[enforce fail at inline_container.cc:...]
# unexpected pos ..." / "PytorchStreamWriter failed writing file ..."), without the errno.
_TORCH_WRITE_FAILED = ("unexpected pos", "PytorchStreamWriter failed writing", "file write failed")
_NEARLY_FULL = 64 * 2**20  # bytes free below which such a failure is taken for a full disk


def _no_space(path: Path, error: BaseException) -> NoSpaceLeft | None:
    """The one-line error for a write that failed for want of space; None for any other failure."""
    full = isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)
    if not full and isinstance(error, RuntimeError) and any(text in str(error) for text in _TORCH_WRITE_FAILED):
        full = free_bytes(path.parent) < _NEARLY_FULL
    if not full:
        return None
    return NoSpaceLeft(f"no space left on the device of {path.parent} (writing {path.name}); nothing was "
                       "half-written and finished work is kept: free some space and run the same command again")


def free_bytes(folder: Path) -> int:
    """Bytes an unprivileged process may still write on ``folder``'s file system."""
    try:
        usage = os.statvfs(folder)
    except OSError:
        return 1 << 62  # unknown: not taken for full
    return usage.f_bavail * usage.f_frsize


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)


def json_text(data: Any) -> str:
    """The text :func:`write_json` writes."""
    return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"


def write_json(path: str | os.PathLike, data: Any) -> Path:
    return write_text(path, json_text(data))


def write_csv(path: str | os.PathLike, frame) -> Path:
    """Write a pandas DataFrame as CSV atomically."""
    with atomic_path(path) as temporary:
        frame.to_csv(temporary, index=False)
    return Path(path)


# Tagged torch files: a plain dict of tensors, numbers, strings, lists and dicts under a format tag
# and the identity (``unit_key``) of what wrote it, loaded with weights_only=True (no pickled code runs).
TAGGED_FORMAT = "tsfmicro-checkpoint"
TAGGED_VERSION = 1


def save_tagged(path: str | os.PathLike, unit_key: str, state: dict[str, Any]) -> Path:
    """Write ``state`` (plain types and tensors only) tagged with ``unit_key``."""
    import torch

    payload = {"format": TAGGED_FORMAT, "version": TAGGED_VERSION, "unit_key": unit_key, "state": state}
    # Through a handle: given a path, torch names the archive's entries after the file (here a
    # random temporary name), so identical states gave different bytes.
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        torch.save(payload, handle)
    return Path(path)


def load_tagged(path: str | os.PathLike, unit_key: str) -> dict[str, Any]:
    """The state saved by :func:`save_tagged` for ``unit_key``; ValueError if it is not one."""
    import torch

    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, OSError) as error:
        raise ValueError(
            f"checkpoint {path} is corrupt or not a tsfmicro checkpoint ({error.__class__.__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}); delete it to train from the start"
        ) from error
    if not isinstance(payload, dict) or payload.get("format") != TAGGED_FORMAT:
        raise ValueError(f"{path} is not a tsfmicro checkpoint; delete it to train from the start")
    if payload.get("version") != TAGGED_VERSION:
        raise ValueError(f"checkpoint {path} has format version {payload.get('version')}, expected {TAGGED_VERSION}")
    if payload.get("unit_key") != unit_key:
        raise ValueError(
            f"checkpoint {path} belongs to another run (key {payload.get('unit_key')}, expected {unit_key})"
        )
    return payload["state"]
