"""Save and load training state so a killed run continues exactly where it stopped.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, so it loads with
``torch.load(weights_only=True)`` (no pickled code runs). It carries a format tag and the
identity of the training unit (or fold) it belongs to; anything else is refused with a clear
error rather than silently reused. The file format is tsfmicro._io's tagged torch file (the
reader of run directories opens fold weights with it too); files are written atomically, so a
kill during a save leaves the previous checkpoint intact.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tsfmicro._io import TAGGED_FORMAT as FORMAT  # noqa: F401 (the tag every checkpoint carries)
from tsfmicro._io import TAGGED_VERSION as VERSION  # noqa: F401 (its format version)
from tsfmicro._io import load_tagged, save_tagged


@dataclass
class CheckpointPolicy:
    """When to write a checkpoint inside a fold (one is always written when a fold ends).

    Every ``every_epochs`` epochs, but not sooner than ``min_seconds`` after the previous
    checkpoint: a mid-fold checkpoint of the paper preset (model + AdamW state) is ~150 MB,
    while on a GPU an epoch takes well under a second, so epochs alone would make saving
    cost more than what a crash could lose.
    """

    every_epochs: int = 5
    min_seconds: float = 60.0
    last_save: float = field(default_factory=time.monotonic)

    def due(self, finished_epochs: int) -> bool:
        return finished_epochs % self.every_epochs == 0 and time.monotonic() - self.last_save >= self.min_seconds

    def saved(self) -> None:
        self.last_save = time.monotonic()


def save_checkpoint(path: str | Path, unit_key: str, state: dict[str, Any]) -> Path:
    """Write ``state`` (plain types and tensors only) tagged with ``unit_key`` (tsfmicro._io.save_tagged)."""
    return save_tagged(path, unit_key, state)


def load_checkpoint(path: str | Path, unit_key: str) -> dict[str, Any]:
    """The state saved by :func:`save_checkpoint` for ``unit_key``; ValueError if it is not one."""
    return load_tagged(path, unit_key)


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """The random states training draws from: torch's CPU and CUDA states and our generator."""
    state = {"torch": torch.get_rng_state(), "generator": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["generator"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
