"""Chapter 09, Class imbalance: training options against class imbalance (``imbalance: options``;
cross_entropy is the paper's) on each dataset/task of ``imbalance: tasks``, T-S late; the paper's
option is the main results' run."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import pandas as pd

from tsfmicro import report
from tsfmicro.chapters import Chapter, Page, register
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


class ImbalancePage(Page):
    column = COLUMN

    @property
    def tasks(self) -> list[tuple[str, str]]:
        return tasks(self.parameters)

    @property
    def reference(self) -> str:
        return reference(self.parameters)

    @property
    def seeds(self) -> list[int]:
        return list(self.parameters.section_seeds("imbalance"))

    @functools.cached_property
    def samples(self) -> pd.DataFrame:
        """The sample tables of the chapter's tasks (Study.all_samples)."""
        return self.study.all_samples(self.tasks)

    @functools.cached_property
    def distribution(self) -> pd.DataFrame:
        return report.class_distribution(self.samples)

    @functools.cached_property
    def scores(self) -> pd.DataFrame:
        return report.scores_long(self.runs, column=COLUMN)

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

    def caveat(self) -> str:
        if not (self.runs and self.study.source == "SYNTHETIC"):
            return ""
        ratio = self.distribution["largest / smallest"].max()
        return (f"These runs are on SYNTHETIC data, whose largest class has at most {ratio:g} times the clips of "
                f"its smallest, with a small network and few epochs: they show the options working, not how they "
                f"cope with the real datasets' imbalance; run params/paper.yaml for that.")


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
