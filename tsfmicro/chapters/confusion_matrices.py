"""Chapter 03, Confusion matrices: of the main results' runs, and their per-class scores."""
from __future__ import annotations

import functools

from tsfmicro import report
from tsfmicro.chapters import Chapter, Page, Truth, main_results, register


class ConfusionPage(Page):
    def truths(self) -> list[Truth]:
        """The main results' truths (the same runs): the matrices show where their errors fall."""
        classes = {key[:2]: len(run.class_names) for key, run in self.runs.items()}
        return main_results.chance_truths(report.scores_long(self.runs), classes,
                                          goal=main_results.DEMO_GOAL if self.synthetic else None)

    @functools.cached_property
    def per_class(self):
        return report.per_class_by_run(self.runs, "fixed")


CHAPTER = register(Chapter(name="confusion_matrices", paper="beyond the paper (the paper reports no confusion matrix we can read)", notebook="03_confusion_matrices", title="Confusion matrices",
                           runs=main_results.runs, page=ConfusionPage))
