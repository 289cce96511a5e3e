"""Chapter 09, Class imbalance: training options against class imbalance (``imbalance: options``;
cross_entropy is the paper's) on each dataset/task of ``imbalance: tasks``, T-S late; the paper's
option is the main results' run."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tsfmicro import metrics, report
from tsfmicro.chapters import Chapter, ScoresPage, Truth, apart_recovered, paired_recovered, register
from tsfmicro.results import Run
from tsfmicro.sections import PlannedRun, main_datasets, names, run_options, seeds, setting

COLUMN = "option"
NOT_CONFIGURED = "These parameters do not configure this chapter (no imbalance: section), so it shows nothing."


def _options():
    from tsfmicro.engine.imbalance import OPTIONS

    return tuple(OPTIONS)


def _tasks(tasks, key, params) -> list[str]:
    """"dataset/task" entries of ``datasets:``, each once."""
    datasets = main_datasets(params)
    if not isinstance(tasks, list) or not tasks:
        return [f"{key}: {tasks!r} must be a non-empty list of dataset/task, e.g. [samm/5class]"]
    problems = []
    for entry in tasks:
        dataset, _, task = str(entry).partition("/")
        if not (isinstance(entry, str) and dataset and task):
            problems.append(f"{key}: {entry!r} is not dataset/task, e.g. samm/5class")
        elif isinstance(datasets.get(dataset), list) and task in datasets[dataset]:
            continue
        else:
            planned = ", ".join(f"{name}/{t}" for name, ts in datasets.items() if isinstance(ts, list)
                                for t in ts) or "none"
            problems.append(f"{key}: {entry} is not in datasets: ({planned}); list only tasks "
                            f"of datasets: (the paper's option is their main-results run), add it there, "
                            f"or leave the chapter out: imbalance: null")
    repeated = sorted({str(entry) for entry in tasks if tasks.count(entry) > 1})
    if repeated:
        problems.append(f"{key}: {', '.join(repeated)} listed more than once")
    return problems


@dataclass(frozen=True)
class Section:
    """``imbalance:`` (optional; null or left out: no such chapter)."""

    tasks: tuple[str, ...] = setting(_tasks)  # "dataset/task"
    options: tuple[str, ...] = setting(names(_options))
    seeds: tuple[int, ...] | None = setting(seeds(), default=None)  # None: the parameters' seeds


def reference(params=None) -> str:
    """The class-imbalance option of the paper's training (plain cross-entropy, shuffled epochs)."""
    return next(iter(_options()))


def tasks(params) -> list[tuple[str, str]]:
    """``imbalance: tasks:`` as (dataset, task) pairs; [] when the section is absent."""
    section = params.section("imbalance")
    return [tuple(str(entry).split("/", 1)) for entry in (section.tasks if section is not None else ())]


def options(params) -> dict[str, dict]:
    """``imbalance: options:`` -> the RunConfig options (loss, sampling) of each; the paper's
    (cross_entropy) sets none: its run is the main results' run."""
    from tsfmicro.engine.imbalance import option_settings

    section = params.section("imbalance")
    return {name: option_settings(name) for name in (section.options if section is not None else ())}


def runs(params) -> dict:
    """(dataset, task, option) -> T-S late with each option on each of the section's tasks."""
    seeds = tuple(params.section_seeds("imbalance"))
    return {(dataset, task, option): PlannedRun(dataset, task, "ts_late", seeds, run_options(**settings))
            for dataset, task in tasks(params) for option, settings in options(params).items()}


class ImbalancePage(ScoresPage):
    column = COLUMN

    @property
    def tasks(self) -> list[tuple[str, str]]:
        return tasks(self.parameters)

    @property
    def reference(self) -> str:
        return reference(self.parameters)

    @functools.cached_property
    def samples(self) -> pd.DataFrame:
        """The sample tables of the chapter's tasks (Study.all_samples)."""
        return self.study.all_samples(self.tasks)

    @functools.cached_property
    def distribution(self) -> pd.DataFrame:
        return report.class_distribution(self.samples)

    @property
    def table(self) -> pd.DataFrame:
        return report.scores_wide(self.scores, column=COLUMN)

    @property
    def classes(self) -> dict[tuple[str, str], int]:
        return {key[:2]: len(run.class_names) for key, run in self.runs.items()}

    @functools.cached_property
    def recall(self) -> pd.DataFrame:
        return report.class_recall(self.runs, COLUMN)

    @property
    def recall_table(self) -> pd.DataFrame:
        return report.class_recall_wide(self.recall, COLUMN)

    def summary(self) -> str:
        if not self.runs:
            return NOT_CONFIGURED
        return " ".join(text for text in [report.variant_conclusion(self.scores, COLUMN, self.reference, "options"),
                                          rare_class_sentence(self.recall, COLUMN),
                                          report.flag_sentence(self.scores, COLUMN)] if text)

    def truths(self) -> list[Truth]:
        """Per task: plain cross-entropy recalls the rarest class less than the largest, and the
        weighted loss raises the rarest class's recall (paired, :func:`rare_recall_truth`)."""
        truths = []
        for dataset, task in self.tasks:
            reference = self.runs.get((dataset, task, self.reference))
            if reference is None:
                continue
            recall = self.recall[(self.recall["dataset"] == dataset) & (self.recall["task"] == task)]
            truths.append(rare_versus_largest_truth(recall[recall[COLUMN] == self.reference], dataset, task,
                                                    self.reference))
            truths += [rare_recall_truth(reference, run, option, self.reference, dataset, task)
                       for (d, t, option), run in self.runs.items()
                       if (d, t) == (dataset, task) and option != self.reference]
        return truths

    def caveat(self) -> str:
        if not (self.runs and self.study.source == "SYNTHETIC"):
            return ""
        ratio = self.distribution["largest / smallest"].max()
        return (f"These runs are on SYNTHETIC data, whose largest class has at most {ratio:g} times the clips of "
                f"its smallest, with a small network and few epochs: they show the options working, not how they "
                f"cope with the real datasets' imbalance; run params/paper.yaml for that.")


# ----------------------------------------------------------------------------- truths
# The option PLANTED expects to raise the rarest class's recall (a loss weighted by inverse class
# frequency); the others are shown, but nothing is planted about them.
WEIGHTED = "weighted_cross_entropy"


def rare_versus_largest_truth(recall: pd.DataFrame, dataset: str, task: str, reference: str) -> Truth:
    """The reference option's :func:`tsfmicro.report.class_recall` rows of one task: the rarest
    class's recall below the largest class's. Different clips, so not paired: recovered when the
    two 95 % intervals do not overlap, "no" when the rarest's lies wholly above, else not decided."""
    rare, large = recall.loc[recall["support"].idxmin()], recall.loc[recall["support"].idxmax()]
    measured = (f"{rare['class_name']} ({rare['support']} clips) {report.format_row(rare)} %, "
                f"{large['class_name']} ({large['support']} clips) {report.format_row(large)} %")
    if rare.get("flag", ""):  # a one-class model recalls its one class fully and no other
        recovered, note = None, f"not decided: a degenerate model ({rare['flag']})"
    else:
        recovered = apart_recovered((rare["low"], rare["high"]), (large["low"], large["high"]))
        note = {True: "the intervals do not overlap",
                False: "the rarest class's interval lies above the largest's",
                None: "not decided: the two intervals overlap (different clips, so no paired test)"}[recovered]
    return Truth(truth=f"{dataset} {task}, {reference}: rarest class recalled less than the largest",
                 expected="rarest class's recall below the largest's", measured=measured, recovered=recovered,
                 note=note if rare.get("flag", "") else f"{note} ({rare['interval']})")


def rare_recall_truth(reference: Run, option: Run, name: str, reference_name: str, dataset: str,
                      task: str) -> Truth:
    """``option`` minus ``reference`` in the recall of the task's rarest class (fewest clips):
    the recall of a class is the accuracy on its clips, so both runs' predictions of those clips
    go to the paired subject x seed bootstrap (tsfmicro.metrics.paired_subject_seed_difference;
    the subjects drawn are those with a clip of the class). Recovered for the weighted loss when
    the interval lies above 0; for another option nothing is planted (not decided)."""
    column = "pred_fixed"
    names = reference.class_names
    first = reference.predictions[reference.predictions["seed"] == reference.predictions["seed"].min()]
    support = np.bincount(first["true"].astype(int), minlength=len(names))
    rarest = int(np.argmin(support))  # the first in class order on ties
    truth = f"{dataset} {task}: {name} raises the recall of the rarest class, {names[rarest]} ({support[rarest]} clips)"
    expected = f"higher than {reference_name}" if name == WEIGHTED else "no truth planted about this option"
    a = option.predictions[option.predictions["true"] == rarest]
    b = reference.predictions[reference.predictions["true"] == rarest]
    if a["seed"].nunique() != b["seed"].nunique():
        return Truth(truth=truth, expected=expected, measured="not paired (different numbers of seeds)",
                     recovered=None, note="not decided: a paired comparison needs as many seeds in both runs")
    found = metrics.paired_subject_seed_difference(a, b, column, len(names))["accuracy"]
    measured = (f"{name} − {reference_name}: "
                + report.format_interval(found["difference"], found["low"], found["high"], 1, "+") + " points")
    reading = report.VERDICTS[found["verdict"]].format(reference=name)
    interval = f"paired {report.interval_name(a['seed'].nunique())}"
    if name != WEIGHTED:
        return Truth(truth=truth, expected=expected, measured=measured, recovered=None,
                     note=f"PLANTED expects this of {WEIGHTED} only; the paired interval reads: {reading}")
    return Truth(truth=truth, expected=expected, measured=measured,
                 recovered=paired_recovered(found["verdict"]), note=f"{reading} ({interval})")


# ----------------------------------------------------------------------------- sentences
def rare_class_sentence(recall: pd.DataFrame, column: str) -> str:
    """Per dataset/task of a :func:`class_recall` table: its rarest class (fewest clips; the first
    in class order on ties) and that class's recall under each variant, in words."""
    sentences = []
    for (dataset, task), part in recall.groupby(["dataset", "task"], sort=False):
        support = part.groupby("class_name", sort=False)["support"].first()
        rarest = support.idxmin()
        tied = [name for name in support.index if support[name] == support[rarest] and name != rarest]
        rows = part[part["class_name"] == rarest]
        scores = ", ".join(f"{report.format_row(r)} % with {r[column]}"
                           for _, r in rows.iterrows())
        ties = f"; as few as {', '.join(tied)}" if tied else ""
        sentences.append(f"The rarest class of {dataset} {task}, {rarest} ({support[rarest]} of "
                         f"{support.sum()} clips{ties}), is recalled {scores}.")
    return " ".join(sentences)


CHAPTER = register(Chapter(name="imbalance", notebook="09_class_imbalance", title="Class imbalance", runs=runs,
                           page=ImbalancePage, section=Section))
