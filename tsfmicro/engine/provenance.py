"""Where a result came from: code version, packages, device, time, data."""
from __future__ import annotations

import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import torch

PACKAGES = ("tsfmicro", "torch", "torchvision", "numpy", "pandas", "scikit-learn", "scipy", "timm")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def git_state(folder: Path | None = None) -> dict:
    """Commit and dirty flag of the repository holding this package ("unknown" outside git)."""
    folder = folder or Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit or "unknown", "dirty": None if status is None else bool(status)}


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def device_description(device: torch.device) -> dict:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    elif device.type == "mps":
        name = "Apple MPS"
    else:
        name = _cpu_model() or platform.processor() or platform.machine()
    return {"type": device.type, "name": name, "torch_threads": torch.get_num_threads()}


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def numerics(device: torch.device, precision: str) -> dict:
    """The arithmetic a run used: its precision mode and PyTorch's TF32 switches on CUDA."""
    record = {"precision": precision}
    if device.type == "cuda":
        record["cudnn_allow_tf32"] = torch.backends.cudnn.allow_tf32  # convolutions (default on)
        record["matmul_allow_tf32"] = torch.backends.cuda.matmul.allow_tf32  # matrix products (default off)
    return record


def collect(device: torch.device, seeds: list[int], data, started: str, finished: str, seconds: float,
            precision: str = "fp32") -> dict:
    """The provenance record of one training unit (``data``: the PreparedData trained on)."""
    return {
        "git": git_state(),
        "packages": package_versions(),
        "platform": platform.platform(),
        "device": device_description(device),
        "numerics": numerics(device, precision),
        "started": started,
        "finished": finished,
        "duration_seconds": round(seconds, 3),
        "seeds": list(seeds),
        "data": {
            "dataset": data.dataset,
            "task": data.task,
            "source": data.source,
            "synthetic": data.is_synthetic,
            "cache_key": data.cache_key,
            "samples": len(data.samples),
            "excluded": len(data.excluded),
            "corrected": len(data.corrections),
        },
    }
