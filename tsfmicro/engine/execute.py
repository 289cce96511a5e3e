"""Training a plan fold by fold, in this process or on a Ray cluster.

``execute(plan, executor)`` sends every fold that has no result yet to the executor, writes each
unit's files as soon as its last fold is in, then each request's files. Finished folds and units
are never trained again, so after Ctrl-C, a killed driver or a failed fold the same command
continues where it stopped.

Executors:

* ``LocalExecutor``: one fold after another in this process (no Ray needed).
* ``RayExecutor``: each fold a Ray task. Without an address it starts a Ray instance on this
  machine (``workers`` folds at once); with ``address="auto"`` or ``"ray://host:port"`` it joins a
  running cluster (``ray start --head`` on one node, ``ray start --address=HEAD:6379`` on the
  others). The runs folder must be on a filesystem every worker sees: a worker that cannot write
  there fails with that message. A worker that dies (killed, out of memory) has its fold retried
  by Ray up to ``max_retries`` times, from the fold's last mid-fold checkpoint.

Units run in waves (``Plan.waves``): a fine-tuning unit's folds are sent only after the wave
holding its pre-training unit has finished (tsfmicro.engine.transfer), on either executor.

Whatever the executor, the number of workers and the order in which folds finish, the results
are the same (bit-identical on the CPU): each fold seeds itself, and units are assembled in fold
order from the folds' files.
"""
from __future__ import annotations

import logging
import os
import socket
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from tqdm import tqdm

from tsfmicro._checksums import damage
from tsfmicro._io import NoSpaceLeft
from tsfmicro.engine import folds as fold_files
from tsfmicro.engine import ray_orphans
from tsfmicro.engine.folds import FoldBusy, FoldReport, FoldTask, RunFolderNotWritable, run_fold_task
from tsfmicro.engine.excluded import check_strict
from tsfmicro.engine.integrity import check_plan
from tsfmicro.engine.plan import Plan, UnitPlan, make_plan
from tsfmicro.engine.provenance import now
from tsfmicro.engine.runs import RunConfig, model_overrides, write_request, write_unit
from tsfmicro.engine.transfer import source_fold
from tsfmicro.results import Run, is_finished, load_run

EXECUTORS = ("local", "ray")
RAY_INSTALL = "the ray executor needs Ray: pip install 'tsfmicro[ray]' (or: pip install ray==2.60.0)"
CONNECT_TIMEOUT_S = 45  # joining a cluster: give up after this long (the CLI promises an error within 60 s)


class ExecutorError(RuntimeError):
    """A problem with the executor's settings or cluster, reported as one line (exit code 2)."""


class FoldFailed(RuntimeError):
    """A fold could not be trained (after Ray's retries); names the fold and the reason."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


# ----------------------------------------------------------------------------- executors
class LocalExecutor:
    """Folds one after another in this process."""

    name = "local"

    def __init__(self, threads: int | None = None):
        self.threads = threads  # torch threads per fold; None: as the process has them
        self.workers = 1

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass

    def map(self, jobs: list[tuple[FoldTask, object]], wait: bool,
            on_wait: Callable[[str], None]) -> Iterator[tuple[FoldTask, FoldReport | FoldBusy]]:
        for task, data in jobs:
            try:
                yield task, run_fold_task(task, data, wait=wait, on_wait=on_wait)
            except FoldBusy as busy:
                yield task, busy


def _ray_fold(task: FoldTask, data, wait: bool):
    """A fold on a Ray worker; a busy fold comes back as a value, not an error."""
    try:
        return run_fold_task(task, data, wait=wait)
    except FoldBusy as busy:
        return busy


@dataclass
class RayExecutor:
    """Folds as Ray tasks, on a local Ray instance or a cluster (see the module docstring)."""

    address: str | None = None
    workers: int | None = None  # folds at once; None: as many as the resources allow
    gpus_per_fold: float = 0.0  # 0.25: four folds share one GPU
    cpus_per_fold: int = 1  # Ray CPUs reserved per fold, and torch threads in it
    max_retries: int = 2  # a fold whose worker dies is tried at most 1 + max_retries times
    name: str = field(default="ray", init=False)
    _ray: object = field(default=None, init=False, repr=False)
    _record: object = field(default=None, init=False, repr=False)  # tsfmicro.engine.ray_orphans

    @property
    def threads(self) -> int:
        return self.cpus_per_fold

    def check(self) -> None:
        """Settings that need no cluster: Ray installed, sane numbers, a GPU when asked for one."""
        if not _ray_installed():
            raise ExecutorError(RAY_INSTALL)
        if self.workers is not None and self.workers < 1:
            raise ExecutorError(f"--workers must be at least 1, got {self.workers}")
        if self.cpus_per_fold < 1:
            raise ExecutorError(f"--cpus-per-fold must be at least 1, got {self.cpus_per_fold}")
        if self.gpus_per_fold < 0:
            raise ExecutorError(f"--gpus-per-fold must be at least 0, got {self.gpus_per_fold}")
        if self.max_retries < 0:
            raise ExecutorError(f"--max-retries must be at least 0, got {self.max_retries}")
        if self.gpus_per_fold > 0 and self.address is None:
            import torch

            if not torch.cuda.is_available():
                raise ExecutorError(f"--gpus-per-fold {self.gpus_per_fold:g}: torch sees no CUDA GPU on this "
                                    "machine (use --address to run on a cluster with GPUs)")

    def start(self) -> None:
        """Start a local Ray instance or join the cluster (nothing when already started)."""
        if self._ray is not None and self._ray.is_initialized():
            return
        self.check()
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no network calls at run time
        import ray

        self._ray = ray
        if self.address is None:  # this machine: its cores, or just enough for `workers` folds at once
            cpus = self.workers * self.cpus_per_fold if self.workers else (os.cpu_count() or 1)
            ray_orphans.end_orphans()  # left by an earlier local instance whose driver was killed
            # Ray enables token authentication for a local instance and says so on every run ("Token
            # authentication is enabled for this Ray cluster ..."): kept, without the warning. (Setting
            # RAY_AUTH_MODE=token here instead breaks ray.init: its native side has read the mode.)
            logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
            ray.init(num_cpus=cpus, include_dashboard=False, logging_level="WARNING")
            self._record = ray_orphans.record(ray._private.worker._global_node.get_session_dir_path())
        else:
            self._connect()
        if self.gpus_per_fold > 0 and ray.cluster_resources().get("GPU", 0) == 0:
            self.close()
            raise ExecutorError(f"--gpus-per-fold {self.gpus_per_fold:g}: the Ray cluster at {self.address} "
                                "has no GPU")

    def _connect(self) -> None:
        """Join a running cluster; an address nobody answers at is an error within a minute."""
        import threading

        ray, address = self._ray, self.address
        if address != "auto":
            _probe(address)
        outcome: dict = {}

        def connect() -> None:
            try:
                ray.init(address=address, logging_level="WARNING")
                outcome["ok"] = True
            except Exception as error:  # reported below, in the caller's thread
                outcome["error"] = error

        thread = threading.Thread(target=connect, daemon=True)
        thread.start()
        thread.join(CONNECT_TIMEOUT_S)
        if "ok" in outcome:
            return
        reason = outcome.get("error") or f"no answer within {CONNECT_TIMEOUT_S} s"
        first_line = str(reason).strip().splitlines()[0] if str(reason).strip() else type(reason).__name__
        raise ExecutorError(f"cannot join the Ray cluster at {address}: {first_line}")

    def close(self) -> None:
        if self._ray is not None and self._ray.is_initialized():
            self._ray.shutdown()
        ray_orphans.forget(self._record)
        self._record = None

    def map(self, jobs: list[tuple[FoldTask, object]], wait: bool,
            on_wait: Callable[[str], None]) -> Iterator[tuple[FoldTask, FoldReport | FoldBusy]]:
        ray = self._ray
        remote = ray.remote(_ray_fold).options(num_cpus=self.cpus_per_fold, num_gpus=self.gpus_per_fold,
                                               max_retries=self.max_retries, retry_exceptions=False)
        shared = {}  # one copy of each prepared dataset in the object store
        queue, pending = deque(jobs), {}
        limit = self.workers or len(jobs)
        while queue or pending:
            while queue and len(pending) < limit:
                task, data = queue.popleft()
                if id(data) not in shared:
                    shared[id(data)] = ray.put(data)
                pending[remote.remote(task, shared[id(data)], wait)] = task
            (ready,), _ = ray.wait(list(pending), num_returns=1)
            task = pending.pop(ready)
            try:
                yield task, ray.get(ready)
            except ray.exceptions.RayTaskError as error:  # the fold's own code raised
                cause = getattr(error, "cause", None) or error
                message = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
                for other in pending:
                    ray.cancel(other, force=True)
                code = 2 if isinstance(cause, (RunFolderNotWritable, NoSpaceLeft)) else 1  # user-side: exit 2
                raise FoldFailed(f"{task.describe()} failed: {type(cause).__name__}: {message}", code) from None
            except ray.exceptions.RayError as error:  # its worker died every time (killed, out of memory)
                for other in pending:
                    ray.cancel(other, force=True)
                raise FoldFailed(f"{task.describe()} failed: its worker died {1 + self.max_retries} time(s) "
                                 f"({type(error).__name__}: killed or out of memory); finished folds are kept, "
                                 "run the same command to continue") from None


def _ray_installed() -> bool:
    try:
        import ray  # noqa: F401 (only whether it imports)
    except ImportError:
        return False
    return True


def _probe(address: str) -> None:
    """Fail fast (10 s) when nothing listens at ``host:port`` (``ray://host:port``: Ray Client)."""
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ExecutorError(f"--address {address!r}: give auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as error:
        raise ExecutorError(f"cannot join the Ray cluster at {address}: nothing answers at {host}:{port} "
                            f"({error.strerror or error})") from None


def make_executor(name: str, address: str | None = None, workers: int | None = None, gpus_per_fold: float = 0.0,
                  cpus_per_fold: int | None = None, max_retries: int = 2):
    """An executor by name; its settings checked (not started)."""
    if name not in EXECUTORS:
        raise ExecutorError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")
    if name == "local":
        if address is not None or workers not in (None, 1) or gpus_per_fold:
            raise ExecutorError("--address, --workers and --gpus-per-fold are for --executor ray; "
                                "the local executor trains one fold after another in this process")
        if cpus_per_fold is not None and cpus_per_fold < 1:
            raise ExecutorError(f"--cpus-per-fold must be at least 1, got {cpus_per_fold}")
        return LocalExecutor(threads=cpus_per_fold)
    executor = RayExecutor(address=address, workers=workers, gpus_per_fold=gpus_per_fold,
                           cpus_per_fold=cpus_per_fold or 1, max_retries=max_retries)
    executor.check()
    return executor


# ----------------------------------------------------------------------------- the run
@dataclass
class RunSummary:
    executor: str
    workers: int | None
    units: int
    units_before: int  # finished before this run
    units_finished: int  # finished by this run
    folds: int
    folds_before: int  # had a result before this run
    folds_trained: int  # trained by this run
    folds_resumed: int  # of those, continued from a mid-fold checkpoint
    wall_seconds: float



def execute(plan: Plan, executor, progress: bool = True, messages: bool = True) -> RunSummary:
    """Train every fold of ``plan`` that has no result, assemble units and requests as they finish.

    ``progress``: one bar over all folds of the plan (stderr); ``messages``: a line per finished
    unit and per fold held by another run (stdout)."""
    started = time.perf_counter()
    run_id = f"{now()} pid {os.getpid()} on {socket.gethostname()}"
    for out in sorted({str(r.config.out) for r in plan.requests}):
        fold_files.check_writable(out)
    check_plan(plan)  # damaged run files or fold results: named, rebuilt or retrained, before any training
    units_before = sum(u.finished for u in plan.units)
    remaining: dict[Path, set[str]] = {}
    waves = []  # each wave's folds start after the previous wave's units are finished (fine-tuning)
    for wave in plan.waves():
        jobs = []
        for unit in wave:
            if unit.finished:
                continue
            done = set(unit.done_folds())
            remaining[unit.path] = {str(f.name) for f in unit.folds} - done
            for index, fold in enumerate(unit.folds):
                if str(fold.name) not in done:
                    jobs.append((_task(unit, index, fold, executor, run_id), unit.request.data))
        waves.append(jobs)
    jobs = [job for wave in waves for job in wave]
    units = {u.path: u for u in plan.units}
    bar = tqdm(total=plan.folds, initial=plan.folds - len(jobs), unit="fold", desc="folds", disable=not progress,
               smoothing=0.1, file=sys.stderr)
    say = (lambda line: tqdm.write(line, file=sys.stdout)) if messages else (lambda line: None)
    for path, left in remaining.items():  # every fold was in, the unit not yet written
        if not left:
            _finish_unit(units[path], say)
    trained = resumed = 0

    def collect(results) -> list:
        nonlocal trained, resumed
        busy = []
        for task, report in results:
            if isinstance(report, FoldBusy):
                say(f"{task.describe()} is being trained by {report}; leaving it for later")
                busy.append(task)
                continue
            if not fold_files.is_done(task.unit_dir, task.name):
                raise FoldFailed(f"{task.describe()} was trained on host {report.host} but its result is not visible "
                                 f"here ({fold_files.result_path(task.unit_dir, task.name)}): the runs folder must "
                                 "be on a filesystem every worker sees", exit_code=2)
            bar.update(1)
            trained += report.trained
            resumed += report.trained and report.start_epoch > 0
            left = remaining[Path(task.unit_dir)]
            left.discard(task.name)
            if not left:
                _finish_unit(units[Path(task.unit_dir)], say)
        return busy

    try:
        if jobs:
            executor.start()
        for wave in waves:
            if not wave:
                continue
            busy = collect(executor.map(wave, wait=False, on_wait=say))
            if busy:  # held by another `tsfmicro run`: wait for each, it is then finished by the other run
                data = {id(t): units[Path(t.unit_dir)].request.data for t in busy}
                waiting = [(t, data[id(t)]) for t in busy]
                collect(executor.map(waiting, wait=True, on_wait=lambda holder: say(f"waiting for {holder}")))
    finally:
        executor.close()
        bar.close()
    for request in plan.requests:
        if not is_finished(request.path):
            write_request(request)
    return RunSummary(executor.name, executor.workers, len(plan.units), units_before,
                      sum(u.finished for u in plan.units) - units_before, plan.folds,
                      plan.folds - len(jobs), trained, resumed, time.perf_counter() - started)


def _task(unit: UnitPlan, index: int, fold, executor, run_id: str) -> FoldTask:
    request, config = unit.request, unit.request.config
    return FoldTask(
        unit_dir=str(unit.path), unit_key=unit.key, unit_name=unit.path.name, fold_index=index, fold=fold,
        arch=config.arch, preset=config.preset, fusion=config.fusion, num_classes=len(request.data.class_names),
        model_options=model_overrides(config), recipe=request.recipe, image_size=request.image_size, seed=unit.seed,
        device=request.device.type, frame_reselection=config.frame_reselection, keep_weights=unit.keep_weights,
        checkpoint_every=config.checkpoint_every, checkpoint_seconds=config.checkpoint_seconds,
        run_id=run_id, executor=executor.name, threads=executor.threads,
        init_weights=None if unit.init_weights is None else str(unit.init_weights),
        init_fold=None if unit.needs is None else source_fold(config), finetune=config.finetune,
    )


def _finish_unit(unit: UnitPlan, say: Callable[[str], None]) -> None:
    if unit.finished:  # a concurrent run wrote it
        return
    results = [fold_files.read_result(unit.path, unit.key, str(f.name)) for f in unit.folds]
    write_unit(unit.request, unit.seed, results)
    fixed = load_run(unit.path).metrics["protocols"]["fixed"]["mean"]["uf1"]
    seconds = sum(r.seconds for r in results)
    say(f"finished {unit.label}: {len(results)} folds, {seconds:.1f} s of training, UF1 (fixed) {100 * fixed:.1f} %")


def train(config: RunConfig, progress: bool = True, strict: bool = False) -> Run:
    """Train ``config`` in this process (or reuse it when finished before) and return the loaded run.
    ``strict``: stop before training when the data left out an unusable row (tsfmicro.engine.excluded)."""
    plan = make_plan([config], progress=progress)
    if strict:
        check_strict(plan)
    (request,) = plan.requests
    if not is_finished(request.path) or any(damage(path) for path in [request.path, *(u.path for u in plan.units)]):
        execute(plan, LocalExecutor(), progress=progress, messages=progress)
    return load_run(request.path)
