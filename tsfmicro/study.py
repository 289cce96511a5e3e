"""A study: one parameters file turned into datasets, training runs and a provenance box.

Every notebook of the book starts the same way::

    study = Study.load(params_file, roots=..., overrides=...)
    box = study.provenance_box("Main results")

and then asks the study for what it shows: ``study.data(dataset, task)`` for face crops,
``study.run(dataset, task, fusion)`` for a finished training run. A run is identified by
its configuration (dataset, task, fusion, preset, recipe, epochs, seeds, ...); the engine
stores it under the run folder of the parameters and reuses it when the same
configuration is asked for again, so each run is trained once and shared by every
notebook (and by `make book` and `make reproduce`; the book tests give the notebooks a run
folder of their own, ``-y "overrides: {paths: {runs: ...}}"``, so they always train).

Parameters files live in ``params/`` (``demo.yaml``, ``paper.yaml``); relative paths in
them are relative to the project folder (the one holding ``pyproject.toml``).
"""
from __future__ import annotations

import datetime as _dt
import html
import json
import os
import platform
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tsfmicro import params as parameters

# tqdm.auto (used while building caches) warns in kernels without ipywidgets; the notebooks
# run with progress bars off, so the warning would only add a stderr cell to the book.
warnings.filterwarnings("ignore", message="IProgress not found")

# Dataset names used in parameters, with what a user needs when a root is missing.
DATASET_INFO: dict[str, dict[str, str]] = {
    "casme2": {
        "name": "CASME II",
        "obtain": "Institute of Psychology, Chinese Academy of Sciences (Fu Xiaolan's lab): "
                  "fill in the CASME II request form and sign the licence agreement.",
        "layout": "CASME2/CASME2-coding-20190701.xlsx and CASME2/CASME2_RAW_selected/sub01/EP02_01f/img46.jpg "
                  "(or the pre-cropped CASME2/Cropped/sub01/EP02_01f/reg_img46.jpg)",
    },
    "samm": {
        "name": "SAMM",
        "obtain": "Manchester Metropolitan University (Moi Hoon Yap's group): sign the SAMM "
                  "licence agreement and send it as instructed on the SAMM page.",
        "layout": "SAMM/SAMM_Micro_FACS_Codes_v2.xlsx and SAMM/006/006_1_2/006_05562.jpg",
    },
    "casme3": {
        "name": "CAS(ME)^3",
        "obtain": "Institute of Psychology, Chinese Academy of Sciences: sign the CAS(ME)^3 "
                  "licence agreement (Part A is used here).",
        "layout": "CASME3/cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx and "
                  "CASME3/part_A/data/part_A_split/part_A/spNO.1/a/color/355.jpg",
    },
    "smic": {
        "name": "SMIC-HS",
        "obtain": "University of Oulu, Center for Machine Vision and Signal Analysis: sign the "
                  "SMIC licence agreement.",
        "layout": "SMIC/SMIC_all_raw/HS/s1/micro/negative/s1_ne_01/image106950.bmp",
    },
    "megc2019": {
        "name": "MEGC2019 (CASME II + SAMM + SMIC)",
        "obtain": "obtain CASME II, SAMM and SMIC-HS (see their entries) and the official "
                  "MEGC2019 list combined_3class_gt.csv.",
        "layout": "a folder holding combined_3class_gt.csv and the three dataset folders",
    },
}
SYNTHETIC_LAYOUTS = ("casme2", "samm", "casme3", "smic", "megc2019")
SYNTHETIC = "SYNTHETIC"


class DatasetRootMissing(FileNotFoundError):
    """A real dataset's folder was not given or does not exist."""


def root_variable(dataset: str) -> str:
    """The environment variable that can hold a dataset's folder, e.g. TSFMICRO_CASME2_ROOT."""
    return f"TSFMICRO_{dataset.upper()}_ROOT"


def find_project_root(start: str | os.PathLike | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: the working folder) that holds
    ``pyproject.toml`` and ``params/``; a notebook opened from ``notebooks/`` finds the
    project above it. Falls back to ``start``."""
    start = Path(start or os.getcwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "params").is_dir():
            return folder
    return start


@dataclass
class Study:
    """Parameters plus the project folder; creates data and runs on demand."""

    params: dict[str, Any]
    params_file: Path
    project_root: Path
    _runs: dict = field(default_factory=dict, repr=False)
    _data: dict = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, params_file: str | os.PathLike = "params/demo.yaml", *,
             roots: dict[str, str | None] | None = None,
             overrides: dict[str, Any] | None = None) -> "Study":
        """Read a parameters file; ``roots`` (dataset -> folder, None = not given) and
        ``overrides`` (any parameter key) come from the notebook's parameters cell.
        Overrides replace lists and the ``datasets:`` mapping, ``null`` removes a key, other
        mappings merge; every parameter is checked before any work starts (ValueError naming
        the key and its valid values; see tsfmicro.params)."""
        project_root = find_project_root()
        path = Path(params_file)
        if not path.is_absolute() and not path.exists():
            path = project_root / path
        if not path.is_file():
            raise FileNotFoundError(f"parameters file not found: {params_file} "
                                    f"(looked in {os.getcwd()} and {project_root})")
        project_root = find_project_root(path.parent)
        params = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        # overrides replace lists and `datasets:`, null removes a key (tsfmicro.params)
        params = parameters.apply_overrides(params, overrides)
        given_roots = {name: folder for name, folder in (roots or {}).items() if folder}
        params["roots"] = {**(params.get("roots") or {}), **given_roots}
        parameters.check(params, f"{path}" + (" with overrides" if overrides else ""))
        params["seeds"] = [int(seed) for seed in params["seeds"]]
        if params.get("cpu_threads"):
            # PyTorch's intra-op threads in this process (training runs in it). On a small
            # shared CPU one thread is often faster: spinning OpenMP threads compete with
            # every other busy process.
            import torch

            torch.set_num_threads(int(params["cpu_threads"]))
        return cls(params=params, params_file=path.resolve(), project_root=project_root)

    # ------------------------------------------------------------------ names
    @property
    def synthetic(self) -> bool:
        return self.params["data_source"] == "synthetic"

    @property
    def source(self) -> str:
        """What the book prints in large type: SYNTHETIC, or the names of the real datasets
        read so far (before any: those of the parameters). A folder written by the
        synthetic writer (it carries a marker file) makes the source SYNTHETIC whatever
        the parameters say."""
        if self.synthetic or any(str(data.source).upper().startswith(SYNTHETIC)
                                 for data in self._data.values()):
            return SYNTHETIC
        used = list(dict.fromkeys(dataset for dataset, _ in self._data)) or list(self.params["datasets"])
        return ", ".join(DATASET_INFO.get(name, {"name": name})["name"] for name in used)

    def dataset_tasks(self) -> list[tuple[str, str]]:
        """(dataset, task) pairs of the main results, in the order of the parameters."""
        return [(dataset, task) for dataset, tasks in self.params["datasets"].items()
                for task in tasks]

    @property
    def seeds(self) -> list[int]:
        return list(self.params["seeds"])

    def path(self, name: str) -> Path:
        """A folder from ``paths:`` (synthetic, prepared, runs), relative to the project."""
        folder = Path(os.path.expanduser(str(self.params["paths"][name])))
        return folder if folder.is_absolute() else self.project_root / folder

    def label(self, protocol: str | None = None, seeds: list[int] | None = None) -> str:
        """One line for the foot of every table and figure: data, protocol, seeds."""
        seeds = self.seeds if seeds is None else seeds
        parts = [f"data: {self.source}", f"model: {self.params['preset']}",
                 f"recipe: {self.params['recipe']}"
                 + (f", {self.params['epochs']} epochs" if self.params.get("epochs") else ""),
                 f"seeds: {', '.join(map(str, seeds))}", "LOSO"]
        if protocol:
            parts.insert(1, f"protocol: {protocol}")
        if self.errata != "keep":  # the default (the authors' choice) goes unsaid
            parts.append(f"errata: {self.errata}")
        return " | ".join(parts)

    # ------------------------------------------------------------------ data
    def root(self, dataset: str) -> Path:
        """The dataset's folder. Synthetic: written into the cache the first time.
        Real: the ``-p <dataset>_root`` parameter, else $TSFMICRO_<DATASET>_ROOT, else
        ``roots:`` of the parameters file; a missing one raises DatasetRootMissing."""
        if self.synthetic:
            return self._synthetic_root(dataset)
        folder = self.params["roots"].get(dataset) or os.environ.get(root_variable(dataset))
        if not folder:
            raise DatasetRootMissing(self._missing_message(dataset, None))
        folder = Path(os.path.expanduser(str(folder)))
        if not folder.is_dir():
            raise DatasetRootMissing(self._missing_message(dataset, folder))
        return folder

    def _missing_message(self, dataset: str, folder: Path | None) -> str:
        info = DATASET_INFO.get(dataset, {"name": dataset, "obtain": "see the Datasets page",
                                          "layout": "the official layout"})
        problem = (f"the {info['name']} folder {folder} does not exist" if folder else
                   f"no folder given for {info['name']}")
        return (
            f"{problem}.\n"
            f"  Give it with papermill -p {dataset}_root /path/to/{dataset.upper()}, or "
            f"export {root_variable(dataset)}=/path/to/{dataset.upper()}, or set "
            f"roots: {{{dataset}: ...}} in {self.params_file.name}.\n"
            f"  {info['name']} is licence-restricted and not shipped with tsfmicro: "
            f"{info['obtain']}\n"
            f"  Expected layout: {info['layout']}.\n"
            f"  To run without it, use params/demo.yaml (synthetic data)."
        )

    def _synthetic_root(self, dataset: str) -> Path:
        """Synthetic data in the dataset's official layout, written once per size and seed
        (tsfmicro.data.write_synthetic writes into a staging folder and renames it, so an
        interrupted write never leaves a half dataset behind)."""
        from tsfmicro.data import write_synthetic

        if dataset not in SYNTHETIC_LAYOUTS:
            raise ValueError(f"no synthetic layout for {dataset!r}; "
                             f"synthetic layouts: {', '.join(SYNTHETIC_LAYOUTS)}")
        settings = self.params.get("synthetic", {})
        subjects = int(settings.get("subjects", 6))
        clips = int(settings.get("clips_per_subject", 8))
        seed = int(settings.get("seed", 0))
        final = self.path("synthetic") / f"{dataset}-{subjects}x{clips}-seed{seed}"
        if not final.is_dir():
            write_synthetic(dataset, final, subjects=subjects, clips_per_subject=clips, seed=seed)
        return final

    def _crop_size(self) -> int:
        """Size of the cached face crops: the parameter, else the model preset's input size
        (the engine's default, so notebooks and training share one cache)."""
        if self.params.get("crop_size"):
            return int(self.params["crop_size"])
        from tsfmicro.model import PRESETS

        return PRESETS[self.params["preset"]].image_size

    @property
    def errata(self) -> str:
        """``errata:`` of the parameters: keep (default, as the authors' code) or owners."""
        return str(self.params.get("errata") or "keep")

    def samples(self, dataset: str, task: str):
        """The sample table (with the excluded-rows report) read from the official files."""
        from tsfmicro.data import load_samples

        return load_samples(dataset, self.root(dataset), task, errata=self.errata)

    def data(self, dataset: str, task: str):
        """Face crops of one task (tsfmicro.data.prepare; cached on disk and in memory)."""
        from tsfmicro.data import prepare

        key = (dataset, task)
        if key not in self._data:
            self._data[key] = prepare(dataset, self.root(dataset), task,
                                      crop_size=self._crop_size(),
                                      cache_dir=self.path("prepared"),
                                      progress=bool(self.params.get("progress", False)),
                                      errata=self.errata)
        return self._data[key]

    def all_data(self) -> dict[tuple[str, str], Any]:
        """Prepared data of every (dataset, task) of the main results."""
        return {pair: self.data(*pair) for pair in self.dataset_tasks()}

    def dataset_overview(self):
        """One row per (dataset, task): source, clips, subjects, classes, excluded rows, and the
        clips whose apex is the onset (all-zero difference frame) or that carry an owners' erratum."""
        import pandas as pd

        rows = []
        for (dataset, task), prepared in self.all_data().items():
            rows.append({
                "dataset": dataset, "task": task, "source": prepared.source,
                "clips": len(prepared.samples),
                "subjects": prepared.samples["subject"].nunique(),
                "classes": len(prepared.class_names),
                "class names": ", ".join(prepared.class_names),
                "excluded rows": len(prepared.excluded),
                "apex = onset": int(prepared.samples["apex_is_onset"].sum()),
                "owners' errata": int((prepared.samples["erratum"] != "").sum()),
                "corrected rows": len(prepared.corrections),
            })
        return pd.DataFrame(rows)

    def all_samples(self):
        """The sample tables of every (dataset, task), stacked, with ``task`` and
        ``class_name`` (the task's class, in its fixed order) columns."""
        import pandas as pd

        parts = []
        for (dataset, task), prepared in self.all_data().items():
            names = pd.Categorical([prepared.class_names[k] for k in prepared.samples["class_index"]],
                                   categories=prepared.class_names)
            parts.append(prepared.samples.assign(dataset=dataset, task=task, class_name=names))
        return pd.concat(parts, ignore_index=True)

    def excluded_rows(self):
        """Every annotation row a loader left out, with its reason, for all (dataset, task)."""
        import pandas as pd

        parts = [prepared.excluded.assign(dataset=dataset, task=task)
                 for (dataset, task), prepared in self.all_data().items()]
        table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        if "file" in table.columns:  # the file's name; its folder is the dataset root
            table["file"] = [Path(str(f)).name for f in table["file"]]
        first = [c for c in ("dataset", "task", "file", "row", "reason") if c in table.columns]
        return table[first + [c for c in table.columns if c not in first]]

    def corrected_rows(self):
        """Every annotation value corrected while reading (the owners' published fixes), with
        file, row and reason, once per dataset (the correction does not depend on the task)."""
        import pandas as pd

        parts = {dataset: prepared.corrections for (dataset, _), prepared in self.all_data().items()}
        table = pd.concat(list(parts.values()), ignore_index=True) if parts else pd.DataFrame()
        if "file" in table.columns:
            table["file"] = [Path(str(f)).name for f in table["file"]]
        return table

    def example_clips(self, dataset: str, task: str, per_class: int = 1):
        """The first ``per_class`` clips of each class: (onset, apex, titles) for
        :func:`tsfmicro.plots.example_crops`."""
        prepared = self.data(dataset, task)
        samples = prepared.samples.reset_index(drop=True)
        rows = [int(index) for class_index in range(len(prepared.class_names))
                for index in samples.index[samples["class_index"] == class_index][:per_class]]
        titles = [f"{prepared.class_names[samples.loc[r, 'class_index']]}\n"
                  f"{samples.loc[r, 'subject']}\n{samples.loc[r, 'clip_id']}" for r in rows]
        return prepared.onset[rows], prepared.apex[rows], titles

    # ------------------------------------------------------------------ runs
    def run_config(self, dataset: str, task: str, fusion: str = "ts_late",
                   seeds: list[int] | None = None):
        """The engine's RunConfig for one (dataset, task, fusion) under these parameters
        (``seeds``: default the parameters' ``seeds``)."""
        from tsfmicro.engine import RunConfig

        return RunConfig(
            dataset=dataset, root=str(self.root(dataset)), task=task, fusion=fusion,
            preset=self.params["preset"], recipe=self.params["recipe"],
            epochs=self.params.get("epochs"), batch_size=self.params.get("batch_size"),
            precision=self.params.get("precision"), rotary=self.params.get("rotary"),
            seeds=tuple(self.seeds if seeds is None else seeds),
            device=self.params["device"], out=str(self.path("runs")),
            crop_size=self._crop_size(), cache_dir=str(self.path("prepared")),
            frame_reselection=bool(self.params.get("frame_reselection", False)),
            errata=self.errata,
        )

    def run(self, dataset: str, task: str, fusion: str = "ts_late",
            seeds: list[int] | None = None):
        """A finished run: trained now, or reused from the run folder if already there.
        The engine trains each seed as its own unit, so a run with seeds [0] reuses seed 0
        of a run with seeds [0, 1] and the other way round."""
        from tsfmicro.engine import train

        seeds = tuple(self.seeds if seeds is None else seeds)
        key = (dataset, task, fusion, seeds)
        if key not in self._runs:
            self.data(dataset, task)  # builds the face-crop cache quietly; train() reuses it
            self._runs[key] = train(self.run_config(dataset, task, fusion, list(seeds)),
                                    progress=bool(self.params.get("progress", False)))
        return self._runs[key]

    def main_runs(self) -> dict[tuple[str, str, str], Any]:
        """TSFmicro (ts_late) on every (dataset, task) of the parameters."""
        return {(dataset, task, "ts_late"): self.run(dataset, task, "ts_late")
                for dataset, task in self.dataset_tasks()}

    @property
    def ablation_seeds(self) -> list[int]:
        """Seeds of the fusion ablation: ``ablation: seeds:`` if given, else ``seeds``."""
        return [int(s) for s in self.params["ablation"].get("seeds") or self.seeds]

    def ablation_runs(self) -> dict[tuple[str, str, str], Any]:
        """Every fusion variant of ``ablation:`` on its one dataset/task."""
        ablation = self.params["ablation"]
        return {(ablation["dataset"], ablation["task"], fusion):
                self.run(ablation["dataset"], ablation["task"], fusion, self.ablation_seeds)
                for fusion in ablation["fusions"]}

    def train_all(self) -> list:
        """Train (or reuse) every run the notebooks need; for batch use before papermill."""
        return [self.run(dataset, task, fusion, list(seeds))
                for dataset, task, fusion, seeds in self.planned_runs()]

    def planned_runs(self) -> list[tuple[str, str, str, tuple[int, ...]]]:
        """Every (dataset, task, fusion, seeds) the notebooks of these parameters ask for."""
        planned = [(dataset, task, "ts_late", tuple(self.seeds))
                   for dataset, task in self.dataset_tasks()]
        ablation = self.params.get("ablation")
        if ablation:
            planned += [(ablation["dataset"], ablation["task"], fusion, tuple(self.ablation_seeds))
                        for fusion in ablation["fusions"]]
        return list(dict.fromkeys(planned))

    def planned_units(self) -> list[tuple[str, str, str, int]]:
        """Every (dataset, task, fusion, seed) trained once: the real amount of training."""
        return list(dict.fromkeys((d, t, f, seed) for d, t, f, seeds in self.planned_runs()
                                  for seed in seeds))

    def runs_used(self) -> list:
        return list(self._runs.values())

    # ------------------------------------------------------------------ provenance
    def provenance_box(self, title: str, show: bool = True) -> "ProvenanceBox":
        box = ProvenanceBox(self, title)
        if show:
            box.show()
        return box


# ---------------------------------------------------------------------- provenance box
def git_commit(folder: Path) -> str:
    """Short commit of the project plus "+ uncommitted changes" when the tree is dirty."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True,
                              timeout=20).stdout.strip()
    try:
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

    def __init__(self, study: Study, title: str):
        self.study = study
        self.title = title
        self.started = time.time()
        self.date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        self.commit = git_commit(study.project_root)
        self.device = describe_device(study.params["device"])
        self.duration: float | None = None
        self._handle = None

    def fields(self) -> dict[str, str]:
        study = self.study
        shown = {key: value for key, value in study.params.items() if key != "paths"}
        runs = study.runs_used()
        return {
            "data source": study.source,
            "parameters": f"{_relative(study.params_file, study.project_root)}",
            "values": "\n".join(f"{key}: {json.dumps(value, default=str)}"
                                for key, value in shown.items()),
            "commit": self.commit,
            "device": self.device,
            "date": self.date,
            "duration": (f"{self.duration:.0f} s (notebook, including training of runs not "
                         f"already in {_relative(study.path('runs'), study.project_root)})"
                         if self.duration is not None else "running…"),
            "runs": ", ".join(_run_name(run) for run in runs) if runs else "none",
        }

    def _repr_html_(self) -> str:
        fields = self.fields()
        synthetic = fields["data source"] == SYNTHETIC
        colour = "#b3261e" if synthetic else "#1b5e20"
        note = ("Generated data in the official layouts: these numbers show the pipeline "
                "working, they are <b>not</b> results on the paper's datasets. With few clips and "
                "epochs (as in the demo), scores are noisy."
                if synthetic else "Real dataset files, read from the folders given in the parameters.")
        rows = "".join(
            f"<tr><th style='text-align:left;padding:2px 10px 2px 0;vertical-align:top'>"
            f"{html.escape(name)}</th><td style='text-align:left;font-family:monospace;"
            f"font-size:0.85em;white-space:pre-wrap;word-break:break-word'>{html.escape(value)}</td></tr>"
            for name, value in fields.items() if name != "data source")
        return (
            f"<div class='tsfmicro-provenance' style='border:3px solid {colour};border-radius:6px;"
            f"padding:10px 14px;margin:6px 0'>"
            f"<div style='font-size:0.9em;color:#555'>{html.escape(self.title)} — data source</div>"
            f"<div class='tsfmicro-source' style='font-size:2.4em;font-weight:800;color:{colour};"
            f"line-height:1.2'>{html.escape(fields['data source'])}</div>"
            f"<div style='margin:4px 0 8px 0'>{note}</div>"
            f"<table style='border:none;margin:0'>{rows}</table></div>"
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
    """Run folder name and how long its training took (when it was trained, maybe earlier)."""
    path = getattr(run, "path", None)
    name = Path(path).name if path else repr(run)
    seconds = (getattr(run, "provenance", None) or {}).get("duration_seconds")
    return f"{name} (trained in {seconds:.0f} s)" if isinstance(seconds, (int, float)) else name


# ---------------------------------------------------------------------- result tables
# Thin shapes over tsfmicro.report (the engine's tables): nothing is recomputed here.
PROTOCOLS = ("fixed", "oracle")
METRIC_NAMES = {"accuracy": "ACC", "uf1": "UF1", "uar": "UAR"}


def scores_long(runs: dict[tuple[str, str, str], Any]):
    """One row per run, protocol and metric: ``mean``, ``low``, ``high`` (fractions) from
    :func:`tsfmicro.report.summary_table` (95 % t interval over seeds; a subject bootstrap
    interval when there is one seed)."""
    import pandas as pd

    from tsfmicro import report

    wide = report.summary_table(list(runs.values()))
    keys = ["dataset", "task", "fusion", "protocol", "seeds", "interval"]
    parts = [wide[keys].assign(metric=metric, mean=wide[metric], low=wide[f"{metric}_low"],
                               high=wide[f"{metric}_high"]) for metric in METRIC_NAMES]
    return pd.concat(parts, ignore_index=True)


def scores_wide(long, reported=None, digits: int = 1):
    """Display table: one row per run and protocol, each metric as "mean [low, high]" in
    percent; with ``reported`` (tsfmicro.reported.reported()), the paper's values beside,
    "n/a" where the paper's value is not available."""
    from tsfmicro.report import format_interval

    table = long.assign(value=[format_interval(m, lo, hi, digits)
                               for m, lo, hi in zip(long["mean"], long["low"], long["high"])])
    keys = ["dataset", "task", "fusion", "protocol"]
    wide = table.pivot_table(index=keys, columns="metric", values="value", aggfunc="first",
                             sort=False)
    wide = wide[[m for m in METRIC_NAMES if m in wide.columns]]
    wide.columns = [f"{METRIC_NAMES[m]} %" for m in wide.columns]
    wide = wide.reset_index()
    if "interval" in long.columns:
        intervals = long.drop_duplicates(keys).set_index(keys)["interval"]
        wide["interval"] = [intervals.get(tuple(row)) for row in wide[keys].itertuples(index=False)]
    if reported is not None:
        from tsfmicro.reported import format_value

        for metric, name in METRIC_NAMES.items():
            short = {"accuracy": "acc"}.get(metric, metric)
            lookup = reported[reported.metric == short].set_index(["dataset", "task", "fusion"]).value
            wide[f"paper {name} %"] = [
                format_value(lookup.get((d, t, f), float("nan")))
                for d, t, f in zip(wide.dataset, wide.task, wide.fusion)]
    return wide


def oracle_gain(runs: dict[tuple[str, str, str], Any], digits: int = 1):
    """oracle − fixed per run (:func:`tsfmicro.report.difference_table`), in percentage
    points as "mean [low, high]" over seeds."""
    from tsfmicro import report

    table = report.difference_table(list(runs.values()))
    shown = table[["dataset", "task", "fusion"]].copy()
    for metric, name in METRIC_NAMES.items():
        shown[f"{name} pp"] = [report.format_interval(m, lo, hi, digits, "+") for m, lo, hi in
                               zip(table[metric], table[f"{metric}_low"], table[f"{metric}_high"])]
    return shown


def per_class_table(runs: dict[tuple[str, str, str], Any], protocol: str = "fixed"):
    """Per-class support, precision, recall and F1 of each run, all seeds pooled
    (:func:`tsfmicro.report.per_class_table`)."""
    import pandas as pd

    from tsfmicro import report

    parts = [report.per_class_table(run, protocol).assign(dataset=dataset, task=task, fusion=fusion)
             for (dataset, task, fusion), run in runs.items()]
    table = pd.concat(parts, ignore_index=True)
    first = ["dataset", "task", "fusion", "class_name", "support", "predicted",
             "precision", "recall", "f1"]
    return table[[c for c in first if c in table.columns]]


def model_sizes(presets=("paper", "tiny"), fusions=None, num_classes: int = 5):
    """Parameters and forward GFLOPs per sample of each preset and fusion variant
    (tsfmicro.model.count_parameters / count_flops; no training involved)."""
    import pandas as pd

    from tsfmicro.model import FUSIONS, PRESETS, build_model, count_flops, count_parameters

    rows = []
    for preset in presets:
        for fusion in fusions or FUSIONS:
            model = build_model(preset, num_classes=num_classes, fusion=fusion)
            rows.append({"preset": preset, "fusion": fusion,
                         "input": f"{PRESETS[preset].image_size} px",
                         "parameters (M)": round(count_parameters(model) / 1e6, 2),
                         "forward GFLOPs / sample": round(count_flops(model) / 1e9, 3)})
    return pd.DataFrame(rows)
