"""Chapter 02, Fusion ablation: every fusion variant of ``ablation:`` on its one dataset/task of
``datasets:`` (T-S late's run is the main results' one when the seeds agree), and the model sizes."""
from __future__ import annotations

import functools
from dataclasses import dataclass

from tsfmicro import report, reported
from tsfmicro.chapters import Chapter, ScoresPage, Truth, register
from tsfmicro.sections import OnMainResultsTask, PlannedRun, names, seeds, setting


def _fusions():
    from tsfmicro.model import FUSIONS

    return FUSIONS


@dataclass(frozen=True)
class Section(OnMainResultsTask):
    """``ablation:`` (required)."""

    dataset: str = setting()
    task: str = setting()
    fusions: tuple[str, ...] = setting(names(_fusions))
    seeds: tuple[int, ...] | None = setting(seeds(), default=None)  # None: the parameters' seeds



def seeds_of(params) -> list[int]:
    """Seeds of the fusion ablation: ``ablation: seeds:`` if given, else ``seeds``."""
    return [int(s) for s in params.section("ablation").seeds or params.seeds]


def runs(params) -> dict:
    """(dataset, task, fusion) -> the run of each fusion of ``ablation:``."""
    section = params.section("ablation")
    if section is None:
        return {}
    return {(section.dataset, section.task, fusion): PlannedRun(section.dataset, section.task, fusion,
                                                                tuple(seeds_of(params)))
            for fusion in section.fusions}


class AblationPage(ScoresPage):
    @property
    def seeds(self) -> list[int]:
        return seeds_of(self.parameters)


    @functools.cached_property
    def paper(self):
        """The paper's values of the ablation's dataset/task, for the bars."""
        section = self.section
        paper = reported.reported().query(f"dataset == {section.dataset!r} and task == {section.task!r}")
        return paper.assign(metric=paper.metric.replace({"acc": "accuracy"}))

    @functools.cached_property
    def paired(self):
        """ts_late minus each other fusion variant, UF1 under the fixed protocol, with a paired
        subject x seed bootstrap interval (:func:`tsfmicro.report.paired_differences`)."""
        return report.paired_differences(self.runs, "fusion", "ts_late")

    @functools.cached_property
    def paired_table(self):
        return report.paired_table(self.paired, "fusion", "ts_late")

    def summary(self) -> str:
        """The chapter's conclusion, from the numbers: what the paired intervals support about
        T-S late against each variant (no ranking: nothing is planted about which is best), the
        spatial branch alone, and any one-class model."""
        section, scores = self.section, self.scores
        fixed = scores[(scores.protocol == "fixed") & (scores.metric == "uf1")].set_index("fusion")
        summary = []
        if "ts_late" in fixed.index:
            summary.append(report.paired_sentence(self.paired, "fusion", "ts_late", "fusion variants"))
        else:
            summary.append(f"On {section.dataset} {section.task}, T-S late (ts_late, the paper's method) was not run "
                           f"with these parameters (not in the ablation's fusions), so nothing is compared with it.")
        for fusion, name in (("ts_late", "T-S late (ts_late, the paper's method)"),
                             ("spatial_only", "The spatial branch alone (spatial_only)")):
            if fusion in fixed.index:
                row = fixed.loc[fusion]
                summary.append(f"{name} reaches UF1 " + report.format_score(
                    row["mean"], row["low"], row["high"], no_spread=row["no_spread"], per_seed=row["per_seed"],
                    resamples=row["resamples"]) + f" % (per seed {report.format_seeds(row['per_seed'])}).")
            else:
                summary.append(f"{name} was not run with these parameters (not in the ablation's fusions).")
        flagged = fixed[fixed["flag"] != ""]
        if "ts_late" in fixed.index:  # the paired sentence names the other variants' flags
            flagged = flagged[flagged.index == "ts_late"]
        summary += [f"{fusion} is a degenerate model ({row['flag']}): its score says nothing about the variant."
                    for fusion, row in flagged.iterrows()]
        return " ".join(summary)

    def truths(self) -> list[Truth]:
        """Planted: the class is only in the movement, so the spatial branch alone (onset only)
        is at chance and T-S late is above it (paired); nothing about which motion-using variant
        is best: those pairs are shown as "no truth planted"."""
        if not self.runs:
            return []
        scores, chance = self.scores, 1 / self.classes
        uar = scores[(scores.protocol == "fixed") & (scores.metric == "uar")].set_index("fusion")
        truths = []
        if "spatial_only" in uar.index:
            truths.append(at_chance_truth(uar.loc["spatial_only"], chance, "spatial_only (onset only)"))
        for _, row in self.paired.iterrows():
            truths.append(paired_truth(row, "fusion", "ts_late", planted=row["fusion"] == "spatial_only"))
        return truths

    @functools.cached_property
    def sizes(self):
        """Parameters and FLOPs of every preset and fusion (no training)."""
        return report.model_sizes()


# ----------------------------------------------------------------------------- truths
def at_chance_truth(row, chance: float, what: str) -> Truth:
    """``what`` (a UAR row of :func:`tsfmicro.report.scores_long`) at chance: recovered when its
    95 % interval contains chance (1/classes), not when it lies wholly above or below it. UAR,
    not UF1: any predictor that ignores its input has expected UAR exactly 1/classes (each
    class's recall is the share of that prediction), while its UF1 depends on the class shares
    and lies below 1/classes on imbalanced data, so UF1 "at chance" has no one value."""
    from tsfmicro.chapters.main_results import chance_truth

    above = chance_truth(row, chance, what)  # the same measurement, read the other way
    flag = row.get("flag", "") or ""
    contains = row["low"] <= chance <= row["high"]
    note = (f"the interval ({row['interval']}) {'contains' if contains else 'excludes'} chance"
            + (f"; {flag}: predicting one class scores exactly chance on UAR" if flag else ""))
    return Truth(truth=f"{what}: UAR at chance (fixed protocol)",
                 expected=f"at chance ({100 * chance:.1f} % = 1/{round(1 / chance)}): the onset frame carries no class",
                 measured=above.measured, recovered=bool(contains), note=note)


def paired_truth(row, column: str, reference: str, planted: bool = False) -> Truth:
    """One row of :func:`tsfmicro.report.paired_differences` (reference minus a variant, UF1,
    paired bootstrap) as a truth: with ``planted`` (the variant cannot see the movement), the
    reference must be higher with the interval excluding 0; otherwise nothing is planted about
    which is better and the row says so, with the paired interval."""
    from tsfmicro.report import VERDICTS, format_interval

    measured = (f"{reference} − {row[column]}: "
                + (f"{format_interval(row['difference'], None, None, 1, '+')} points (no spread in "
                   f"{row['resamples']} resamples)" if row["no_spread"] else
                   f"{format_interval(row['difference'], row['low'], row['high'], 1, '+')} points"))
    reading = VERDICTS[row["verdict"]].format(reference=reference)
    if not planted:
        return Truth(truth=f"{reference} against {row[column]} (UF1, fixed protocol)",
                     expected="no truth planted: both see the movement", measured=measured, recovered=None,
                     note=f"nothing is planted about which is better; the paired interval reads: {reading}")
    decided = row["verdict"] != "not paired"
    return Truth(truth=f"{reference} above {row[column]} (UF1, fixed protocol, paired)",
                 expected=f"{reference} higher: only it sees the movement",
                 measured=measured, recovered=(row["verdict"] == "reference higher") if decided else None,
                 note=reading + (f" ({row['interval']})" if decided else ""))


CHAPTER = register(Chapter(name="ablation", paper="the paper's fusion ablation table", notebook="02_fusion_ablation", title="Fusion ablation", runs=runs,
                           page=AblationPage, section=Section, required=True))
