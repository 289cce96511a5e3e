"""A study: what a notebook of the book works with: one parameters file (tsfmicro.params) with
its datasets, its finished training runs and its plan, and the provenance box.

Every notebook of the book starts the same way::

    study = Study.load(params_file, roots=..., overrides=...)
    page = study.chapter("main_results")  # tsfmicro/chapters/main_results.py
    box = study.provenance_box(page.title)

and then shows what its chapter's page reads (``page.runs``, its tables and sentences), or asks
the study directly: ``study.data(dataset, task)`` for face crops, ``study.run(dataset, task,
fusion)`` for a finished training run, ``study.plan()`` for what was trained. The parameters
themselves are ``study.parameters`` (tsfmicro.params.Params; ``study.params`` is their mapping). A run is identified by its configuration (dataset, task, fusion, preset, recipe,
epochs, seeds, ...); the engine stores it under the run folder of the parameters, so each run is
trained once and shared by every notebook. Under `make book` and `make reproduce`, `tsfmicro run`
has trained them all before the notebooks start; a notebook opened with a run missing trains it
on demand (in this process, fold by fold). The book tests give the training step and the
notebooks a run folder of their own (``overrides: {paths: {runs: ...}}``), so they always train.

The data flow and the module of each step: parameters (tsfmicro.params) -> plan
(tsfmicro.engine.plan) -> run (tsfmicro.engine.execute) -> read (tsfmicro.results) -> display
(tsfmicro.report, tsfmicro.plots, tsfmicro.provenance_box), one chapter per notebook
(tsfmicro.chapters). This module only composes them.
"""
from __future__ import annotations

import functools
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tsfmicro.data.registry import display_name
from tsfmicro.params import SYNTHETIC, DatasetRootMissing, Params, root_variable
from tsfmicro.provenance_box import ProvenanceBox

__all__ = ["Study", "ProvenanceBox", "DatasetRootMissing", "root_variable", "SYNTHETIC"]

# tqdm.auto (used while building caches) warns in kernels without ipywidgets; the notebooks
# run with progress bars off, so the warning would only add a stderr cell to the book.
warnings.filterwarnings("ignore", message="IProgress not found")


@dataclass
class Study:
    """A checked parameters file (``parameters``: tsfmicro.params.Params) with the data and runs
    a notebook reads (training a missing run on demand) and its chapters' pages."""

    parameters: Params
    _runs: dict = field(default_factory=dict, repr=False)
    _data: dict = field(default_factory=dict, repr=False)
    _pages: dict = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, params_file: str | os.PathLike = "params/demo.yaml", *,
             roots: dict[str, str | None] | None = None,
             overrides: dict[str, Any] | None = None) -> "Study":
        """Params.load (same arguments, same checks), then ``cpu_threads`` for the work this
        process does (training, Grad-CAM, evaluations)."""
        parameters = Params.load(params_file, roots=roots, overrides=overrides)
        if parameters.params.get("cpu_threads"):
            # PyTorch's intra-op threads in this process (training runs in it). On a small
            # shared CPU one thread is often faster: spinning OpenMP threads compete with
            # every other busy process.
            import torch

            torch.set_num_threads(int(parameters.params["cpu_threads"]))
        return cls(parameters)

    # ------------------------------------------------------------------ the parameters
    @property
    def params(self) -> dict[str, Any]:
        """The checked parameters as a mapping (``study.params["preset"]``)."""
        return self.parameters.params

    @property
    def seeds(self) -> list[int]:
        return self.parameters.seeds

    def dataset_tasks(self) -> list[tuple[str, str]]:
        """(dataset, task) pairs of the main results, in the order of the parameters."""
        return self.parameters.dataset_tasks()

    @property
    def errata(self) -> str:
        return self.parameters.errata

    def chapter(self, name: str):
        """What chapter ``name``'s notebook reads (tsfmicro.chapters: its runs, tables and
        sentences), one page per chapter and study."""
        if name not in self._pages:
            from tsfmicro import chapters

            chapter = chapters.get(name)
            if not self._pages:  # the notebook's own chapter: number its figures and tables
                self._number_exhibits(chapter)
            self._pages[name] = chapter.page(self, chapter)
        return self._pages[name]

    def _number_exhibits(self, chapter) -> None:
        """Figures and tables of this notebook numbered "<chapter>.<n>" (book order of the
        chapter registry), each with what it re-derives and the command that regenerates it."""
        from tsfmicro import chapters, plots

        params = _relative_path(self.parameters.params_file, self.parameters.project_root)
        command = (f"tsfmicro run {params} && papermill notebooks/{chapter.notebook}.ipynb "
                   f"book/notebooks/{chapter.notebook}.ipynb -p params_file {params}")
        plots.number_exhibits(chapters.chapters().index(chapter), chapter.paper, command)

    # ------------------------------------------------------------------ names
    @property
    def source(self) -> str:
        """What the book prints in large type: SYNTHETIC, or the names of the real datasets
        read so far (before any: those of the parameters). A folder written by the
        synthetic writer (it carries a marker file) makes the source SYNTHETIC whatever
        the parameters say."""
        if self.parameters.synthetic or any(str(data.source).upper().startswith(SYNTHETIC)
                                 for data in self._data.values()) or self._synthetic_roots:
            return SYNTHETIC
        used = list(dict.fromkeys(dataset for dataset, _ in self._data)) or list(self.params["datasets"])
        return ", ".join(display_name(name) for name in used)

    @functools.cached_property
    def _synthetic_roots(self) -> bool:
        """Whether a given dataset folder was written by the synthetic writer (a page that reads
        no data, such as the compute appendix, still says SYNTHETIC over a synthetic root).
        Looked up once: every table's foot line asks for the source."""
        from tsfmicro.data.annotations import is_synthetic_root

        for dataset in self.params["datasets"]:
            try:
                root = self.parameters.root(dataset)
            except DatasetRootMissing:
                continue
            if is_synthetic_root(root) or any(is_synthetic_root(part) for part in root.iterdir() if part.is_dir()):
                return True
        return False

    def label(self, protocol: str | None = None, seeds: list[int] | None = None, split: str = "LOSO") -> str:
        """One line for the foot of every table and figure: data, protocol, seeds, split."""
        seeds = self.seeds if seeds is None else seeds
        parts = [f"data: {self.source}", f"model: {self.params['preset']}",
                 f"recipe: {self.params['recipe']}"
                 + (f", {self.params['epochs']} epochs" if self.params.get("epochs") else ""),
                 f"seeds: {', '.join(map(str, seeds))}", split]
        if protocol:
            parts.insert(1, f"protocol: {protocol}")
        if self.errata != "keep":  # the default (the authors' choice) goes unsaid
            parts.append(f"errata: {self.errata}")
        return " | ".join(parts)

    # ------------------------------------------------------------------ data
    def samples(self, dataset: str, task: str):
        """The sample table (with the excluded-rows report) read from the official files."""
        from tsfmicro.data import load_samples

        return load_samples(dataset, self.parameters.root(dataset), task, errata=self.errata)

    def data(self, dataset: str, task: str):
        """Face crops of one task (tsfmicro.data.prepare; cached on disk and in memory)."""
        from tsfmicro.data import prepare

        key = (dataset, task)
        if key not in self._data:
            self._data[key] = self.prepared(dataset, task)
        return self._data[key]

    def prepared(self, dataset: str, task: str, **options):
        """tsfmicro.data.prepare of one task with the parameters' crop size, cache and errata,
        not kept in memory; ``options``: prepare's own (``shifts=``, ``apex="automatic"``: their
        own cache files, rebuilt only when their frames change)."""
        from tsfmicro.data import prepare

        return prepare(dataset, self.parameters.root(dataset), task, crop_size=self.parameters.crop_size,
                       cache_dir=self.parameters.path("prepared"), progress=bool(self.params.get("progress", False)),
                       errata=self.errata, **options)

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

    def all_samples(self, pairs: list[tuple[str, str]] | None = None):
        """The sample tables of every (dataset, task) (``pairs``: these only), stacked, with
        ``task`` and ``class_name`` (the task's class, in its fixed order) columns."""
        import pandas as pd

        parts = []
        for dataset, task in pairs if pairs is not None else self.dataset_tasks():
            prepared = self.data(dataset, task)
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
    def run(self, dataset: str, task: str, fusion: str = "ts_late",
            seeds: list[int] | None = None, **options):
        """A finished run (tsfmicro.results.Run): reused from the run folder, or trained now when
        missing. The engine trains each seed as its own unit, so a run with seeds [0] reuses seed 0
        of a run with seeds [0, 1] and the other way round. ``options``: RunConfig fields a
        chapter sets beyond the parameters (None: the default), as in tsfmicro.params.PlannedRun."""
        from tsfmicro.engine import train
        from tsfmicro.params import run_options

        seeds = tuple(self.seeds if seeds is None else seeds)
        options = run_options(**options)
        key = (dataset, task, fusion, seeds, options)
        if key not in self._runs:
            self.data(dataset, task)  # builds the face-crop cache quietly; train() reuses it
            if dict(options).get("test_dataset"):
                self.data(dict(options)["test_dataset"], task)
            self._runs[key] = train(self.parameters.run_config(dataset, task, fusion, list(seeds), **dict(options)),
                                    progress=bool(self.params.get("progress", False)))
        return self._runs[key]

    def planned(self, run) -> Any:
        """The finished run of a tsfmicro.params.PlannedRun (:meth:`run`)."""
        return self.run(run.dataset, run.task, run.fusion, list(run.seeds), **dict(run.options))

    def runs_used(self) -> list:
        return list(self._runs.values())

    # ------------------------------------------------------------------ plan
    def engine_plan(self, device=None, progress: bool = False):
        """tsfmicro.engine.plan.Plan of every planned run (prepares the data, as training would;
        a missing real dataset folder raises DatasetRootMissing). ``device``: the training
        device when not this machine's (a cluster's GPUs)."""
        from tsfmicro.engine.plan import make_plan

        available, _ = self.parameters.run_configs()
        return make_plan(available, progress=progress, device=device)

    def plan(self):
        """One row per training unit the notebooks need (tsfmicro.engine.plan.plan_table): folds,
        training clips per fold, epochs, estimated compute and time, state (done / partial: k of
        n folds / to do) and, for finished units, how long they trained, on which device, with
        which executor. A real dataset whose folder is not given is planned from its published
        size (state "no data"). Planning trains nothing, so a cuda plan is made on any machine."""
        import torch

        from tsfmicro.engine.plan import plan_table

        requested = self.params["device"]
        available, missing = self.parameters.run_configs(missing_roots=True)
        return plan_table(available, missing, device=None if requested == "auto" else torch.device(requested))

    def train_all(self) -> list:
        """Train (or reuse) every run the notebooks need, fold by fold in this process (what
        `tsfmicro run PARAMS` does with the local executor); the finished runs."""
        from tsfmicro.engine import execute, load_run

        progress = bool(self.params.get("progress", False))
        plan = self.engine_plan(progress=progress)
        execute.execute(plan, execute.LocalExecutor(), progress=progress, messages=progress)
        return [load_run(request.path) for request in plan.requests]

    # ------------------------------------------------------------------ provenance
    def provenance_box(self, title: str, show: bool = True) -> ProvenanceBox:
        box = ProvenanceBox(self, title)
        if show:
            box.show()
        return box


def _relative_path(path: Path, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root))
    except ValueError:
        return str(path)
