"""What the baseline networks share: their input and how a run's preset picks their size."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

# The flow input: (B, 3, 28, 28) onset->apex optical flow u, v and optical-strain magnitude
# (baselines.md Sec. 1 "Input"), given by the data under this name (tsfmicro.engine.loso.DeviceData).
FLOW = ("flow",)


def preset_config(presets: dict[str, Any], preset: str, num_classes: int):
    """The network's config of the run's ``preset`` (``paper``: the authors' size), for ``num_classes``."""
    if preset not in presets:
        raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(presets)}")
    return replace(presets[preset], num_classes=num_classes)
