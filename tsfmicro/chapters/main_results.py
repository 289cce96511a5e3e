"""Chapter 01, Main results: TSFmicro (T-S late) on every dataset/task of ``datasets:``, both
protocols, beside the paper's values."""
from __future__ import annotations

import functools

from tsfmicro import report, reported
from tsfmicro.chapters import Chapter, ScoresPage, register
from tsfmicro.sections import PlannedRun


def runs(params) -> dict:
    """(dataset, task, "ts_late") -> the run, for every (dataset, task) of ``datasets:``."""
    return {(dataset, task, "ts_late"): PlannedRun(dataset, task, "ts_late", tuple(params.seeds))
            for dataset, task in params.dataset_tasks()}


class MainResultsPage(ScoresPage):
    @functools.cached_property
    def bars(self):
        """(our scores, the paper's values) for plots.metric_bars, one bar group per dataset/task."""
        summary = self.scores.assign(run=self.scores.dataset + " " + self.scores.task)
        paper = reported.reported().query("fusion == 'ts_late'").assign(
            run=lambda t: t.dataset + " " + t.task,
            metric=lambda t: t.metric.replace({"acc": "accuracy"}))
        return summary, paper

    @functools.cached_property
    def oracle_gain(self):
        return report.oracle_gain(self.runs)

    def flags(self) -> str:
        """The one-class runs among the main results, named ("" when none)."""
        return report.flag_sentence(self.scores, "fusion")

    def headline(self) -> dict[str, str]:
        """The values the book's introduction quotes (glued by the notebook)."""
        scores, (dataset, task) = self.scores, self.parameters.dataset_tasks()[0]
        uf1 = scores[(scores.dataset == dataset) & (scores.task == task)
                     & (scores.metric == "uf1")].set_index("protocol")["mean"]
        return {"data_source": self.study.source, "preset": self.parameters.params["preset"],
                "seeds": ", ".join(map(str, self.parameters.seeds)), "headline_task": f"{dataset} {task}",
                "headline_uf1_fixed": f"{100 * uf1['fixed']:.1f} %",
                "headline_uf1_oracle": f"{100 * uf1['oracle']:.1f} %"}


CHAPTER = register(Chapter(name="main_results", paper="the paper's main results table (ACC, UF1, UAR per dataset and task)", notebook="01_main_results", title="Main results",
                           runs=runs, page=MainResultsPage))
