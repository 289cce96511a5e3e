"""Chapter 03, Confusion matrices: of the main results' runs, and their per-class scores."""
from __future__ import annotations

import functools

from tsfmicro import report
from tsfmicro.chapters import Chapter, Page, main_results, register


class ConfusionPage(Page):
    @functools.cached_property
    def per_class(self):
        return report.per_class_by_run(self.runs, "fixed")


CHAPTER = register(Chapter(name="confusion_matrices", paper="beyond the paper (the paper reports no confusion matrix we can read)", notebook="03_confusion_matrices", title="Confusion matrices",
                           runs=main_results.runs, page=ConfusionPage))
