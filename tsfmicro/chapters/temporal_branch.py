"""Chapter 07, Temporal branch: the temporal branch's token mixer (retention, the paper's, against
the variants of ``temporal_branch:``), T-S late on one dataset/task of ``datasets:``; the paper's
retention is the main results' run."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import pandas as pd

from tsfmicro import report
from tsfmicro.chapters import Chapter, ScoresPage, Truth, register
from tsfmicro.sections import OnMainResultsTask, PlannedRun, names, run_options, seeds, setting

COLUMN = "temporal branch"
NOT_CONFIGURED = "These parameters do not configure this chapter (no temporal_branch: section), so it shows nothing."


def _branches():
    from tsfmicro.model.config import TEMPORAL_BRANCHES

    return TEMPORAL_BRANCHES


@dataclass(frozen=True)
class Section(OnMainResultsTask):
    """``temporal_branch:`` (optional; null or left out: no such chapter)."""

    dataset: str = setting()
    task: str = setting()
    variants: tuple[str, ...] = setting(names(_branches))
    seeds: tuple[int, ...] | None = setting(seeds(), default=None)  # None: the parameters' seeds

    leave_out = ", or leave the chapter out: temporal_branch: null"


def reference(params) -> str:
    """The preset's temporal branch: the paper's retention, the one the others are compared with."""
    from tsfmicro.model import PRESETS

    return PRESETS[params.params["preset"]].temporal_branch


def variants(params) -> dict[str, dict]:
    """``temporal_branch: variants:`` -> the RunConfig options of each (the preset's own token
    mixer, the paper's retention, sets none: its run is the main results' run)."""
    section = params.section("temporal_branch")
    preset = reference(params)
    return {variant: {"temporal_branch": None if variant == preset else variant}
            for variant in (section.variants if section is not None else ())}


def runs(params) -> dict:
    """(dataset, task, variant) -> T-S late with each token mixer on the section's dataset/task."""
    section = params.section("temporal_branch")
    if section is None:
        return {}
    seeds = tuple(params.section_seeds("temporal_branch"))
    return {(section.dataset, section.task, variant): PlannedRun(section.dataset, section.task, "ts_late", seeds,
                                                                 run_options(**options))
            for variant, options in variants(params).items()}


class TemporalBranchPage(ScoresPage):
    column = COLUMN

    @property
    def reference(self) -> str:
        return reference(self.parameters)

    @functools.cached_property
    def sizes(self) -> pd.DataFrame:
        """Parameters and FLOPs of the network with each variant, at the input size it was trained at
        (no training)."""
        return report.temporal_branch_sizes(self.parameters.params["preset"], [key[2] for key in self.runs],
                                            num_classes=self.classes,
                                            image_size=self.parameters.params.get("image_size"))

    @functools.cached_property
    def table(self) -> pd.DataFrame:
        return report.scores_wide(self.scores, column=COLUMN).merge(
            self.sizes[[COLUMN, "parameters (M)", "forward GFLOPs / sample"]], on=COLUMN)

    @functools.cached_property
    def paired(self) -> pd.DataFrame:
        """The paper's retention minus each other temporal branch, UF1 under the fixed protocol,
        with a paired subject x seed bootstrap interval (:func:`tsfmicro.report.paired_differences`)."""
        return report.paired_differences(self.runs, COLUMN, self.reference)

    @functools.cached_property
    def paired_table(self) -> pd.DataFrame:
        return report.paired_table(self.paired, COLUMN, self.reference)

    def summary(self) -> str:
        """What the paired intervals support (no ranking: nothing is planted about which temporal
        branch is best), the reference's one-class flag if any, and the sizes."""
        if not self.runs:
            return NOT_CONFIGURED
        scores = self.scores
        fixed = scores[(scores.protocol == "fixed") & (scores.metric == "uf1")].set_index(COLUMN)
        if self.reference in fixed.index:
            text = report.paired_sentence(self.paired, COLUMN, self.reference, "temporal branches")
            flag = fixed.loc[self.reference, "flag"]
            if flag:
                text += f" {self.reference} itself is a degenerate model ({flag}): no comparison with it means much."
        else:
            text = (f"{self.reference} (the paper's) was not run with these parameters, so nothing is compared "
                    f"with it.")
        return text + " " + size_sentence(self.sizes, COLUMN, self.reference)

    def truths(self) -> list[Truth]:
        """Every token mixer sees the planted movement, so each scores above chance; nothing is
        planted about which is best: the paired comparisons are "no truth planted" rows."""
        from tsfmicro.chapters.ablation import paired_truth
        from tsfmicro.chapters.main_results import chance_truths

        if not self.runs:
            return []
        fixed = self.scores[self.scores["protocol"] == "fixed"]
        classes = {key[:2]: len(run.class_names) for key, run in self.runs.items()}
        return (chance_truths(fixed, classes, COLUMN)
                + [paired_truth(row, COLUMN, self.reference) for _, row in self.paired.iterrows()])

    def caveat(self) -> str:
        return ("These runs are on SYNTHETIC data (generated clips, a small network, few epochs): they show the "
                "comparison working, not which temporal branch is better on real faces; run params/paper.yaml for "
                "that." if self.runs and self.study.source == "SYNTHETIC" else "")


# ----------------------------------------------------------------------------- sentences
def size_sentence(sizes: pd.DataFrame, column: str, reference: str) -> str:
    """Parameters and forward FLOPs of each variant (a :func:`temporal_branch_sizes` table, the
    variant in ``column``) against the ``reference``'s, in words."""
    rows = sizes.set_index(column)
    def size(name):
        return (f"{rows.loc[name, 'parameters (M)']:.3g} M parameters and "
                f"{rows.loc[name, 'forward GFLOPs / sample']:.3g} GFLOPs per clip")
    if reference not in rows.index:
        return "; ".join(f"{name}: {size(name)}" for name in rows.index) + "."
    base = rows.loc[reference, "forward GFLOPs / sample"]
    others = [f"{name} {size(name)} ({rows.loc[name, 'forward GFLOPs / sample'] / base:.2g}x the FLOPs)"
              for name in rows.index if name != reference]
    return (f"At {rows['input'].iloc[0]} ({rows['preset'].iloc[0]} preset), {reference} (the paper's) has "
            f"{size(reference)}" + (f"; {'; '.join(others)}" if others else "") + ".")


CHAPTER = register(Chapter(name="temporal_branch", notebook="07_temporal_branch", title="Temporal branch", runs=runs,
                           page=TemporalBranchPage, section=Section))
