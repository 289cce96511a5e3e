"""Chapter 10, Compute: every training unit of the plan, how much it costs and how it was trained.
It reads the plan (tsfmicro.engine.plan), not runs."""
from __future__ import annotations

import functools

from tsfmicro import report
from tsfmicro.chapters import Chapter, Page, register


class ComputePage(Page):
    @functools.cached_property
    def plan(self):
        """One row per training unit (tsfmicro.study.Study.plan)."""
        return self.study.plan()

    @functools.cached_property
    def table(self):
        return report.plan_table(self.plan)

    def summary(self) -> dict[str, str]:
        return report.plan_summary(self.plan)


CHAPTER = register(Chapter(name="compute", paper="beyond the paper (our measured sizes and times)", notebook="10_compute", title="Compute", runs=lambda params: {},
                           page=ComputePage))
