"""Processes left behind by a local Ray instance whose driver was killed.

A ``tsfmicro run --executor ray`` killed with SIGKILL cannot shut its Ray instance down: Ray's
``ray::DashboardAgent`` and ``ray::RuntimeEnvAgent`` outlive it (reparented to init) and hold
memory through the next run. Each local instance tsfmicro starts is recorded here (the driver's
pid and start time, the instance's session folder); the next start ends the processes of every
recorded instance whose driver is gone. A process belongs to an instance when its command line
names the session folder, or one of its open files lies in it (the agents rename themselves
"ray::...", but their logs stay open in ``<session>/logs``). Only this user's processes are
seen (/proc of another user's is unreadable), and never one of a live driver's instance.
"""
from __future__ import annotations

import json
import os
import signal
import tempfile
import time
from pathlib import Path

RECORDS = Path(tempfile.gettempdir()) / f"tsfmicro-ray-{os.getuid()}"
PROC = Path("/proc")


def _start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (tells a live driver from a new process under its pid)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 of /proc/<pid>/stat


def record(session_dir: str | os.PathLike) -> Path:
    """Record the local instance this process just started; returns the record (see forget)."""
    RECORDS.mkdir(parents=True, exist_ok=True)
    path = RECORDS / f"{os.getpid()}.json"
    path.write_text(json.dumps({"pid": os.getpid(), "start": _start_time(os.getpid()),
                                "session": str(session_dir)}))
    return path


def forget(path: Path | None) -> None:
    """The instance was shut down by its driver: nothing to end later."""
    if path is not None:
        path.unlink(missing_ok=True)


def _belongs(pid: int, session: str) -> bool:
    folder = PROC / str(pid)
    try:
        if session in (folder / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
            return True
        for descriptor in (folder / "fd").iterdir():
            try:
                if os.readlink(descriptor).startswith(session + os.sep):
                    return True
            except OSError:
                continue
    except OSError:  # gone, or another user's
        return False
    return False


def _alive(pid: int) -> bool:
    """Running (a zombie, ended but not yet reaped by its parent, is not)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def end_orphans(grace_s: float = 5.0) -> list[int]:
    """End the processes of every recorded instance whose driver is gone (SIGTERM, then SIGKILL
    after ``grace_s``); returns their pids."""
    if not RECORDS.is_dir() or not PROC.is_dir():
        return []
    ended = []
    for path in sorted(RECORDS.glob("*.json")):
        try:
            entry = json.loads(path.read_text())
            driver, started, session = int(entry["pid"]), entry.get("start"), str(entry["session"])
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)
            continue
        if _start_time(driver) is not None and _start_time(driver) == started:
            continue  # its driver runs: its instance is in use
        me = os.getpid()
        found = [int(p.name) for p in PROC.iterdir() if p.name.isdigit() and int(p.name) != me
                 and _belongs(int(p.name), session)]
        for pid in found:
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(_alive(pid) for pid in found):
            time.sleep(0.1)
        for pid in found:
            if _alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        ended += found
        path.unlink(missing_ok=True)
    return ended
