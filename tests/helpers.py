"""Small helpers several test files share (tests/ is on sys.path: ``from helpers import ...``)."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path


@contextmanager
def torch_threads(threads: int | None = 1):
    """Run the block on ``threads`` torch threads (None: leave the number to the block, e.g. a
    parameters file's ``cpu_threads``), then restore the number it had: a module-scoped fixture
    that trains cannot use the function-scoped ``one_torch_thread``. On a shared 2-core machine,
    two OpenMP threads per process oversubscribe the cores and run several times slower."""
    import torch

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def write_synthetic_params(folder: Path, name: str, **changes) -> Path:
    """A small parameters file ``folder/name`` for a ``tsfmicro run`` on synthetic data: CASME II
    5-class, the tiny preset, the paper's recipe, 1 epoch, seed 0, one CPU thread, 2 subjects of 4
    clips, the ablation on T-S late only, no Grad-CAM examples, every folder under ``folder``.
    ``changes`` replace top-level keys (a section given is replaced whole)."""
    import yaml

    params = {
        "data_source": "synthetic", "datasets": {"casme2": ["5class"]}, "preset": "tiny", "recipe": "paper",
        "epochs": 1, "batch_size": 4, "seeds": [0], "device": "cpu", "cpu_threads": 1,
        "ablation": {"dataset": "casme2", "task": "5class", "fusions": ["ts_late"]},
        "gradcam": {"dataset": "casme2", "task": "5class", "examples": 0},
        "synthetic": {"subjects": 2, "clips_per_subject": 4, "seed": 0},
        "paths": {"synthetic": str(folder / "synthetic"), "prepared": str(folder / "prepared"),
                  "runs": str(folder / "runs")},
        **changes,
    }
    path = folder / name
    path.write_text(yaml.safe_dump(params))
    return path
