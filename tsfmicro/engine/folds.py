"""One fold of one training unit: the unit of scheduling, its files, its lock, its task.

Inside a unit directory (see tsfmicro.engine.runs)::

    folds/<fold>.pt             the fold's result: test probabilities after every epoch, curves,
                                the epoch it started from in the process that finished it
                                (``start_epoch``), its device, timing and git commit; written atomically when
                                the fold ends, so it either exists whole or not at all
    folds/<fold>.checkpoint.pt  mid-fold checkpoint (only while the fold is unfinished)
    folds/<fold>.lock           held while a process trains the fold (deleted when it is done)
    weights/<fold>.pt           final weights when kept, written before the result

Every fold seeds itself from (seed, fold index) (tsfmicro.engine.loso), so a fold's result does
not depend on which process trains it, in which order, or next to which other folds: on the CPU
the results are bit-identical whatever the executor and the number of workers.

Locks are ``flock`` locks on the lock file: the operating system releases them when the holding
process dies (killed, out of memory), so a crashed worker never leaves a fold locked, and two
``tsfmicro run`` on one runs folder never train the same fold at once.
"""
from __future__ import annotations

import fcntl
import os
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import torch

from tsfmicro.engine import checkpoint as ckpt
from tsfmicro.engine import loso
from tsfmicro.engine.provenance import device_description, git_state, now
from tsfmicro.engine.recipes import Recipe
from tsfmicro.results import file_stem

FOLDS = "folds"
# the git state of a fold result written before fold results recorded it
UNKNOWN_GIT = {"commit": "unknown", "dirty": None}


class RunFolderNotWritable(OSError):
    """The unit directory cannot be written from the process that trains a fold."""


class FoldBusy(Exception):
    """Another process holds the fold's lock (``wait=False``)."""


@dataclass(frozen=True)
class FoldResult:
    """A finished fold, as read back from ``folds/<fold>.pt``."""

    outcome: loso.FoldOutcome
    fold_index: int
    start_epoch: int  # 0: trained from the start; k: continued a checkpoint saved after epoch k
    seconds: float  # training time in the process that finished it
    device: dict  # tsfmicro.engine.provenance.device_description of that process
    git: dict  # tsfmicro.engine.provenance.git_state of that process when it trained the fold
    host: str
    run_id: str  # which `tsfmicro run` (or train) invocation finished it
    executor: str  # local or ray
    started: str
    finished: str


@dataclass(frozen=True)
class FoldTask:
    """Everything a worker needs to train one fold, except the prepared data (passed beside it).

    Plain values only, so it pickles to a Ray worker on another machine.
    """

    unit_dir: str
    unit_key: str
    unit_name: str  # for messages
    fold_index: int
    fold: object  # tsfmicro.data.Fold
    preset: str
    fusion: str
    num_classes: int
    model_options: dict  # network options the request sets (tsfmicro.options, owner model: rotary, temporal branch)
    recipe: Recipe
    image_size: int
    seed: int
    device: str  # device type the run key was made for: cpu, cuda or mps
    frame_reselection: bool
    keep_weights: bool
    checkpoint_every: int
    checkpoint_seconds: float
    run_id: str
    executor: str
    threads: int | None = None  # torch intra-op threads for this fold; None: leave as is
    arch: str = "tsfmicro"  # the network (tsfmicro.model.registry; its default)
    # fine-tuning (tsfmicro.engine.transfer): the pre-trained weights file, its fold, what is trained
    init_weights: str | None = None
    init_fold: str | None = None
    finetune: str = "all"

    @property
    def name(self) -> str:
        return str(self.fold.name)

    def describe(self) -> str:
        return f"fold {self.name} of {self.unit_name}"


@dataclass(frozen=True)
class FoldReport:
    """What a worker sends back (small: the result itself is on disk)."""

    unit_dir: str
    fold: str
    trained: bool  # False: another process had finished it
    start_epoch: int
    seconds: float
    host: str


# ----------------------------------------------------------------------------- paths
def result_path(unit_dir: str | Path, fold_name: str) -> Path:
    return Path(unit_dir) / FOLDS / f"{file_stem(fold_name)}.pt"


def checkpoint_path(unit_dir: str | Path, fold_name: str) -> Path:
    return Path(unit_dir) / FOLDS / f"{file_stem(fold_name)}.checkpoint.pt"


def lock_path(unit_dir: str | Path, fold_name: str) -> Path:
    return Path(unit_dir) / FOLDS / f"{file_stem(fold_name)}.lock"


def is_done(unit_dir: str | Path, fold_name: str) -> bool:
    return result_path(unit_dir, fold_name).exists()


def _fold_key(unit_key: str, fold_name: str) -> str:
    return f"{unit_key}/fold/{fold_name}"


# ----------------------------------------------------------------------------- results
def write_result(unit_dir, unit_key: str, fold_index: int, outcome: loso.FoldOutcome, *, seconds: float,
                 device: dict, run_id: str, executor: str, started: str, git: dict | None = None) -> Path:
    """``git``: the code's git state when the fold was trained (default: this process's now)."""
    state = {
        "name": outcome.name,
        "fold_index": fold_index,
        "test_index": torch.from_numpy(np.asarray(outcome.test_index)),
        "probabilities": torch.from_numpy(np.asarray(outcome.probabilities)),
        "curves": outcome.curves.to_dict(orient="list"),
        "start_epoch": int(outcome.start_epoch),
        "seconds": float(seconds),
        "device": device,
        "git": dict(git) if git is not None else git_state(),
        "host": socket.gethostname(),
        "run_id": run_id,
        "executor": executor,
        "started": started,
        "finished": now(),
    }
    return ckpt.save_checkpoint(result_path(unit_dir, outcome.name), _fold_key(unit_key, outcome.name), state)


def read_result(unit_dir, unit_key: str, fold_name: str) -> FoldResult:
    state = ckpt.load_checkpoint(result_path(unit_dir, fold_name), _fold_key(unit_key, fold_name))
    outcome = loso.FoldOutcome(
        name=state["name"],
        test_index=state["test_index"].numpy(),
        probabilities=state["probabilities"].numpy(),
        curves=pd.DataFrame(state["curves"]),
        start_epoch=int(state["start_epoch"]),
    )
    return FoldResult(outcome, int(state["fold_index"]), int(state["start_epoch"]), float(state["seconds"]),
                      dict(state["device"]), dict(state.get("git") or UNKNOWN_GIT), str(state["host"]), str(state["run_id"]), str(state["executor"]),
                      str(state["started"]), str(state["finished"]))


# ----------------------------------------------------------------------------- locks
def check_writable(folder: str | Path) -> None:
    """Create ``folder`` and a file in it, or fail with a message saying where and why."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{socket.gethostname()}-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise RunFolderNotWritable(
            f"cannot write to the run folder {folder} on host {socket.gethostname()} "
            f"({error.__class__.__name__}: {error.strerror or error}); the runs folder must be writable and, "
            "with Ray, on a filesystem every worker sees (shared storage)"
        ) from error


@contextmanager
def fold_lock(unit_dir, fold_name: str, wait: bool = True,
              on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the fold's lock. Busy: raise FoldBusy (``wait=False``) or wait for it, after
    calling ``on_wait`` with who holds it."""
    path = lock_path(unit_dir, fold_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 200, 0).decode(errors="replace").strip() or "another process"
            if not wait:
                raise FoldBusy(holder) from None
            if on_wait is not None:
                on_wait(holder)
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"pid {os.getpid()} on host {socket.gethostname()}".encode(), 0)
        yield
    finally:
        os.close(descriptor)  # releases the lock


# ----------------------------------------------------------------------------- training
def train_fold(trainer: loso.FoldTrainer, fold_index: int, fold, unit_dir, unit_key: str,
               policy: ckpt.CheckpointPolicy, *, keep_weights: bool, run_id: str, executor: str = "local",
               wait: bool = True,
               on_wait: Callable[[str], None] | None = None, progress: bool = False) -> FoldReport:
    """Train one fold under its lock, continuing its mid-fold checkpoint if there is one, and
    write its result. A fold already finished (by any process) is not trained again."""
    name = str(fold.name)
    clock = time.perf_counter()
    with fold_lock(unit_dir, name, wait=wait, on_wait=on_wait):
        if is_done(unit_dir, name):
            checkpoint_path(unit_dir, name).unlink(missing_ok=True)  # left if a kill came right after the result
            previous = read_result(unit_dir, unit_key, name)
            return FoldReport(str(unit_dir), name, False, previous.start_epoch, 0.0, previous.host)
        started = now()
        checkpoint = checkpoint_path(unit_dir, name)
        resume = ckpt.load_checkpoint(checkpoint, _fold_key(unit_key, name)) if checkpoint.exists() else None
        if resume is not None and resume.get("fold_index") != fold_index:
            raise ValueError(f"checkpoint {checkpoint} was written for another fold; delete it")

        def save(state: dict) -> None:
            ckpt.save_checkpoint(checkpoint, _fold_key(unit_key, name), state)
            policy.saved()

        outcome, model = trainer.run(fold_index, fold, resume, save, policy, progress)
        if keep_weights:  # before the result: a finished fold always has its weights
            loso.save_fold_weights(Path(unit_dir) / "weights", name, model)
        seconds = time.perf_counter() - clock
        write_result(unit_dir, unit_key, fold_index, outcome, seconds=seconds,
                     device=device_description(trainer.data.device), run_id=run_id, executor=executor,
                     started=started)
        checkpoint.unlink(missing_ok=True)
        lock_path(unit_dir, name).unlink(missing_ok=True)  # still held: a waiter then finds the result
    return FoldReport(str(unit_dir), name, True, outcome.start_epoch, seconds, socket.gethostname())


_DEVICE_DATA: dict = {}  # one prepared set on the device per worker process, reused by its next folds


def run_fold_task(task: FoldTask, data, wait: bool = True, on_wait: Callable[[str], None] | None = None,
                  progress: bool = False) -> FoldReport:
    """The body of a fold task, in whatever process runs it (this one, or a Ray worker).

    ``data``: the unit's tsfmicro.data.PreparedData.
    """
    from tsfmicro.model import model_from_config

    check_writable(Path(task.unit_dir) / FOLDS)
    if task.threads:
        torch.set_num_threads(task.threads)
    device = torch.device(task.device)
    key = (data.dataset, data.task, data.cache_key, str(device), task.frame_reselection)
    if key not in _DEVICE_DATA:
        _DEVICE_DATA.clear()
        _DEVICE_DATA[key] = loso.DeviceData(data, device, task.frame_reselection)
    def build_model():
        model = model_from_config({"arch": task.arch, "preset": task.preset, "fusion": task.fusion,
                                   **task.model_options}, task.num_classes)
        if task.init_weights is None:
            return model
        from tsfmicro.engine.transfer import initialise

        return initialise(model, task.init_weights, task.init_fold, task.finetune)

    trainer = loso.FoldTrainer(
        data=_DEVICE_DATA[key],
        build_model=build_model,
        recipe=task.recipe,
        image_size=task.image_size,
        seed=task.seed,
    )
    policy = ckpt.CheckpointPolicy(task.checkpoint_every, task.checkpoint_seconds)
    return train_fold(trainer, task.fold_index, task.fold, task.unit_dir, task.unit_key, policy,
                      keep_weights=task.keep_weights, run_id=task.run_id, executor=task.executor, wait=wait,
                      on_wait=on_wait or (lambda holder: print(f"{task.describe()} is being trained by {holder}; "
                                                               "waiting for it", flush=True)),
                      progress=progress)
