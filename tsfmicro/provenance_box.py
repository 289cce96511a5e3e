"""The provenance box at the top of every notebook: where its numbers come from (SYNTHETIC in
large type, or the real datasets) with commit, device and date on one line; the parameters,
duration and the runs it read behind a toggle (an HTML ``<details>``)."""
from __future__ import annotations

import datetime as _dt
import html
import json
import os
import platform
import subprocess
import time
from pathlib import Path

from tsfmicro.params import SYNTHETIC


PACKAGE_DIR = Path(__file__).resolve().parent


def git_commit(folder: Path | None = None) -> str:
    """Short commit of the checkout tsfmicro runs from (default: the installed package's folder,
    as provenance.json records it; a parameters file or notebook outside the repository does not
    change it) plus "+ uncommitted changes" when the tree is dirty."""
    folder = folder or PACKAGE_DIR

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True,
                              timeout=20).stdout.strip()
    try:
        if git("rev-parse", "--is-inside-work-tree") != "true":
            return f"unknown ({folder} is not in a git checkout)"
        commit = git("rev-parse", "--short=12", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return "unknown (git not available)"
    if not commit:
        return "no commit yet"
    return commit + (" + uncommitted changes" if dirty else "")


def describe_device(requested: str) -> str:
    """The device asked for, with what it is on this machine."""
    try:
        import torch
        cuda = torch.cuda.is_available()
        gpu = torch.cuda.get_device_name(0) if cuda else None
    except Exception:  # pragma: no cover - torch is a dependency
        cuda, gpu = False, None
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if requested in ("cuda", "auto") and gpu:
        return f"{requested}: {gpu}"
    return f"{requested}: {cpu}, {cores} cores"


class ProvenanceBox:
    """The box at the top of every notebook. Shown when the notebook starts; ``finish()``
    updates the same output with the duration and the runs used."""

    def __init__(self, study, title: str):  # study: a tsfmicro.study.Study
        self.study = study
        self.title = title
        self.started = time.time()
        self.date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        self.commit = git_commit()  # the code's checkout, wherever the parameters file is
        self.device = describe_device(study.params["device"])
        self.duration: float | None = None
        self._handle = None

    def fields(self) -> dict[str, str]:
        study = self.study
        shown = {key: value for key, value in study.params.items() if key != "paths"}
        runs = study.runs_used()
        return {
            "data source": study.source,
            "parameters": f"{_relative(study.parameters.params_file, study.parameters.project_root)}",
            "values": "\n".join(f"{key}: {json.dumps(value, default=str)}"
                                for key, value in shown.items()),
            "commit": self.commit,
            "device": self.device,
            "date": self.date,
            "duration": (f"{self.duration:.0f} s (notebook, including training of runs not "
                         f"already in {_relative(study.parameters.path('runs'), study.parameters.project_root)})"
                         if self.duration is not None else "running…"),
            "runs": ", ".join(_run_name(run) for run in runs) if runs else "none",
        }

    # shown on the one line under the data source; the rest (parameters, duration, runs) sits
    # behind a toggle so the page's results come first (issue 20: ~30 lines before any result)
    HEADLINE = ("commit", "device", "date")

    def _repr_html_(self) -> str:
        fields = self.fields()
        synthetic = fields["data source"] == SYNTHETIC
        colour = "#b3261e" if synthetic else "#1b5e20"
        note = ("Generated data in the official layouts: these numbers show the pipeline "
                "working, they are <b>not</b> results on the paper's datasets. With few clips and "
                "epochs (as in the demo), scores are noisy."
                if synthetic else "Real dataset files, read from the folders given in the parameters.")
        headline = " · ".join(f"{name} <code>{html.escape(fields[name])}</code>" for name in self.HEADLINE)
        rows = "".join(
            f"<tr><th style='text-align:left;padding:2px 10px 2px 0;vertical-align:top'>"
            f"{html.escape(name)}</th><td style='text-align:left;font-family:monospace;"
            f"font-size:0.85em;white-space:pre-wrap;word-break:break-word'>{html.escape(value)}</td></tr>"
            for name, value in fields.items() if name != "data source" and name not in self.HEADLINE)
        return (
            f"<div class='tsfmicro-provenance' style='border:3px solid {colour};border-radius:6px;"
            f"padding:6px 14px;margin:6px 0'>"
            f"<div style='display:flex;flex-wrap:wrap;align-items:baseline;gap:4px 16px'>"
            f"<span class='tsfmicro-source' style='font-size:2.2em;font-weight:800;color:{colour};"
            f"line-height:1.2'>{html.escape(fields['data source'])}</span>"
            f"<span class='tsfmicro-headline' style='font-size:0.9em;color:#444'>{headline}</span></div>"
            f"<div style='margin:2px 0 4px 0;font-size:0.9em'>{note}</div>"
            f"<details class='tsfmicro-details'><summary style='cursor:pointer;font-size:0.9em'>"
            f"{html.escape(self.title)}: parameters, duration and runs</summary>"
            f"<table style='border:none;margin:0'>{rows}</table></details></div>"
        )

    def __repr__(self) -> str:  # plain-text fallback (terminal, text exports)
        return "\n".join(f"{name}: {value}" for name, value in self.fields().items())

    def show(self) -> None:
        from IPython.display import display

        self._handle = display(self, display_id=True)

    def finish(self) -> None:
        """Record the duration and update the box at the top of the notebook."""
        self.duration = time.time() - self.started
        if self._handle is not None:
            self._handle.update(self)

    @property
    def seconds(self) -> float:
        return self.duration if self.duration is not None else time.time() - self.started


def _relative(path: Path, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root))
    except ValueError:
        return str(path)


def _run_name(run) -> str:
    """Run folder name, its options beyond the parameters (a chapter's variant) and how long its
    training took (when it was trained, maybe earlier)."""
    path = getattr(run, "path", None)
    name = Path(path).name if path else repr(run)
    options = getattr(run, "options", None) or {}
    if options:
        name += " [" + ", ".join(f"{key}={value}" for key, value in options.items()) + "]"
    seconds = (getattr(run, "provenance", None) or {}).get("duration_seconds")
    return f"{name} (trained in {seconds:.0f} s)" if isinstance(seconds, (int, float)) else name

