"""tsfmicro: reproducible TSFmicro micro-expression recognition (arXiv 2505.16372).

The public API, imported lazily so ``import tsfmicro`` stays fast (torch and timm load on
first use):

- ``build_model(preset, num_classes, fusion)`` the network; ``FUSIONS``, ``PRESETS``
- ``load_samples(dataset, root, task)`` the sample table and excluded-rows report
- ``prepare(dataset, root, task)`` face crops from the preprocessing cache
- ``write_synthetic(layout, out)`` a synthetic dataset in an official layout
- ``RunConfig``, ``train(config)``, ``load_run(path)`` leave-one-subject-out training and its runs
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_PUBLIC = {
    "build_model": "tsfmicro.model",
    "FUSIONS": "tsfmicro.model",
    "PRESETS": "tsfmicro.model",
    "DATASETS": "tsfmicro.data",
    "TASKS": "tsfmicro.data",
    "load_samples": "tsfmicro.data",
    "prepare": "tsfmicro.data",
    "write_synthetic": "tsfmicro.data",
    "RunConfig": "tsfmicro.engine",
    "train": "tsfmicro.engine",
    "load_run": "tsfmicro.engine",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'tsfmicro' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
