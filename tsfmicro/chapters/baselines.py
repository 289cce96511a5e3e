"""Chapter 11, Baselines: TSFmicro beside STSTNet, OFF-ApexNet and HTNet, every network trained by
this engine under one protocol: the same LOSO folds, both protocols (fixed: the last epoch; oracle:
each subject's best epoch on its own test clips), the same pooled UF1/UAR, seeds and intervals.

Each network reads the flow input (tsfmicro.data.flow: TV-L1 onset -> apex flow u, v and its
strain, 28 x 28) and trains with its authors' recipe (the ``authors_code`` recipe the network
registers; the parameters' ``epochs``/``batch_size`` overrides apply to it as to every run, and the
section's ``epochs`` overrides the epochs for the baselines alone). TSFmicro is
T-S late, the main results' run (shared, not retrained). The published numbers of each network are
shown beside, each with how its epoch was chosen (tsfmicro.reported.baselines_reported, and MEB's
re-runs from tsfmicro.reported.field_reported).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tsfmicro import report, reported
from tsfmicro.chapters import Chapter, ScoresPage, register
from tsfmicro.params import COMPOSITE
from tsfmicro.sections import PlannedRun, flag, is_int, main_datasets, names, run_options, seeds, setting

COLUMN = "method"
REFERENCE = "tsfmicro"  # TSFmicro, T-S late: the main results' run
RECIPE = "authors_code"  # the recipe every baseline network declares: its authors' code (tsfmicro.model.networks)
NOT_CONFIGURED = "These parameters do not configure this chapter (no baselines: section), so it shows nothing."
DISPLAY = {"tsfmicro": "TSFmicro (T-S late)", "ststnet": "STSTNet", "off_apexnet": "OFF-ApexNet (MEB's)",
           "htnet": "HTNet"}
# MEB's re-runs in tsfmicro.reported.field_reported, by network
MEB = {"STSTNet (MEB toolkit)": "ststnet", "OffApexNet (MEB toolkit)": "off_apexnet"}


def _networks():
    from tsfmicro.model import MODELS
    from tsfmicro.model.registry import DEFAULT_ARCH

    return tuple(name for name in MODELS if name != DEFAULT_ARCH)


def _tasks(tasks, key, params) -> list[str]:
    """"dataset/task" entries of ``datasets:`` (TSFmicro's run is their main-results run), or the
    MEGC2019 composite (megc2019/3class), each once."""
    datasets = main_datasets(params)
    composite = "/".join(COMPOSITE)
    if not isinstance(tasks, list) or not tasks:
        return [f"{key}: {tasks!r} must be a non-empty list of dataset/task, e.g. [casme2/5class]"]
    problems = []
    for entry in tasks:
        dataset, _, task = str(entry).partition("/")
        if not (isinstance(entry, str) and dataset and task):
            problems.append(f"{key}: {entry!r} is not dataset/task, e.g. casme2/5class")
        elif entry != composite and not (isinstance(datasets.get(dataset), list) and task in datasets[dataset]):
            planned = ", ".join(f"{name}/{t}" for name, ts in datasets.items() if isinstance(ts, list)
                                for t in ts)
            problems.append(f"{key}: {entry} is not in datasets: ({planned or 'none'}) nor the composite "
                            f"({composite}); list one of those, or leave the chapter out: baselines: null")
    repeated = sorted({str(entry) for entry in tasks if tasks.count(entry) > 1})
    if repeated:
        problems.append(f"{key}: {', '.join(repeated)} listed more than once")
    return problems


def _positive(value, key, params) -> list[str]:
    return [] if is_int(value) and value > 0 else [f"{key}: {value!r} must be a positive whole number or null"]


@dataclass(frozen=True)
class Section:
    """``baselines:`` (optional; null or left out: no such chapter)."""

    networks: tuple[str, ...] = setting(names(_networks))  # registered networks (arch) besides TSFmicro
    tasks: tuple[str, ...] | None = setting(_tasks, default=None, null_ok=True)  # "dataset/task"; None: all of datasets:
    composite: bool = setting(flag(), default=False)  # also the MEGC2019 composite (megc2019/3class)
    seeds: tuple[int, ...] | None = setting(seeds(), default=None)  # None: the parameters' seeds
    epochs: int | None = setting(_positive, default=None, null_ok=True)  # None: as every run (the recipe's)


def tasks(params) -> list[tuple[str, str]]:
    """The (dataset, task) pairs the section compares on: its ``tasks`` (default: every dataset/task
    of ``datasets:``, so an override that narrows ``datasets:`` narrows this chapter too), and the
    composite with ``composite: true``; [] without the section."""
    section = params.section("baselines")
    if section is None:
        return []
    pairs = ([tuple(str(entry).split("/", 1)) for entry in section.tasks] if section.tasks is not None
             else list(params.dataset_tasks()))
    return list(dict.fromkeys(pairs + ([COMPOSITE] if section.composite else [])))


def runs(params) -> dict:
    """(dataset, task, method) -> TSFmicro's T-S late run (method "tsfmicro", shared with the main
    results) and each network of the section, on each of the section's tasks, with the section's seeds."""
    section = params.section("baselines")
    if section is None:
        return {}
    seeds = tuple(params.section_seeds("baselines"))
    planned = {}
    for dataset, task in tasks(params):
        planned[(dataset, task, REFERENCE)] = PlannedRun(dataset, task, "ts_late", seeds)
        for network in section.networks:
            planned[(dataset, task, network)] = PlannedRun(dataset, task, "ts_late", seeds,
                                                           run_options(arch=network, recipe=RECIPE,
                                                                       epochs=section.epochs))
    return planned


def display_name(method: str) -> str:
    """How the book names a method (its ``arch``: TSFmicro is T-S late)."""
    return DISPLAY.get(method, method)


class BaselinesPage(ScoresPage):
    column = COLUMN
    reference = REFERENCE
    display_name = staticmethod(display_name)

    @property
    def tasks(self) -> list[tuple[str, str]]:
        return tasks(self.parameters)

    @property
    def networks(self) -> list[str]:
        return list(self.section.networks) if self.section is not None else []

    @functools.cached_property
    def sizes(self) -> pd.DataFrame:
        """Parameters, FLOPs and input of each method at the parameters' preset (no training)."""
        if not self.runs:
            return pd.DataFrame(columns=[COLUMN, "preset", "input", "parameters", "forward GFLOPs / sample"])
        classes = len(next(iter(self.runs.values())).class_names)
        return report.network_sizes(self.parameters.params["preset"], [REFERENCE, *self.networks], classes,
                                    column=COLUMN)

    @functools.cached_property
    def table(self) -> pd.DataFrame:
        """Both protocols' scores per task and method, with the method's size."""
        wide = report.scores_wide(self.scores, column=COLUMN)
        return wide.merge(self.sizes[[COLUMN, "input", "parameters", "forward GFLOPs / sample"]], on=COLUMN,
                          how="left").assign(**{COLUMN: lambda t: t[COLUMN].map(display_name)})

    @functools.cached_property
    def paired(self) -> pd.DataFrame:
        """TSFmicro minus each network, UF1 under the fixed protocol, with a paired subject x seed
        bootstrap interval (the same subjects and seeds drawn for both)."""
        return report.paired_differences(self.runs, COLUMN, REFERENCE)

    @functools.cached_property
    def paired_table(self) -> pd.DataFrame:
        return report.paired_table(self._named(self.paired), COLUMN, display_name(REFERENCE))

    @staticmethod
    def _named(table: pd.DataFrame) -> pd.DataFrame:
        return table.assign(**{COLUMN: table[COLUMN].map(display_name)})

    @functools.cached_property
    def published(self) -> pd.DataFrame:
        """The networks' published MEGC2019 composite numbers (their papers, ports, MEB's re-runs)."""
        return published_table(self.networks)

    def summary(self) -> str:
        """What the paired intervals support (no ranking: nothing is planted about which method is
        best), and TSFmicro's own one-class flag if any."""
        if not self.runs:
            return NOT_CONFIGURED
        text = report.paired_sentence(self._named(self.paired), COLUMN, display_name(REFERENCE), "networks")
        scores = self.scores
        flagged = scores[(scores[COLUMN] == REFERENCE) & (scores["protocol"] == "fixed") & (scores["flag"] != "")]
        for _, row in flagged.drop_duplicates(["dataset", "task"]).iterrows():
            text += (f" On {row['dataset']} {row['task']} TSFmicro itself is a degenerate model ({row['flag']}): no "
                     f"comparison with it means much there.")
        return text

    def truths(self) -> list:
        """PLANTED (baselines): every network that sees the motion (the flow of onset -> apex, or the
        pair) must score above chance (fixed-protocol UF1 interval above 1 / classes); nothing is
        planted about which method is best (the paired rows say "no truth planted")."""
        from tsfmicro.chapters.ablation import paired_truth
        from tsfmicro.chapters.main_results import chance_truths

        if not self.runs:
            return []
        fixed = self.scores[self.scores["protocol"] == "fixed"].assign(
            **{COLUMN: lambda t: t[COLUMN].map(display_name)})
        classes = {key[:2]: len(run.class_names) for key, run in self.runs.items()}
        return (chance_truths(fixed, classes, COLUMN)
                + [paired_truth(row, COLUMN, display_name(REFERENCE)) for _, row in self._named(self.paired).iterrows()])

    def recovered(self) -> str:
        """On SYNTHETIC data (the class planted in the onset -> apex movement): which methods recover
        it, i.e. whose fixed-protocol UF1 interval lies above chance (1 / classes), per task; ""
        on real data or without runs."""
        if not self.runs or self.study.source != "SYNTHETIC":
            return ""
        scores = self.scores
        fixed = scores[(scores["protocol"] == "fixed") & (scores["metric"] == "uf1")]
        sentences = []
        for (dataset, task), group in fixed.groupby(["dataset", "task"], sort=False):
            run = self.runs[(dataset, task, group[COLUMN].iloc[0])]
            chance = 1 / len(run.class_names)

            def listed(rows):
                return ", ".join(f"{display_name(row[COLUMN])} ({report.format_interval(row['mean'], row['low'], row['high'])})"
                                 for _, row in rows.iterrows())

            above = group[(group["low"] > chance) & (group["flag"] == "")]
            below = group.drop(above.index)
            text = (f"On {dataset} {task} the class is planted in the onset-to-apex movement (SYNTHETIC data); "
                    f"chance is {100 * chance:.0f} % UF1.")
            if len(above):
                text += f" Recovered (fixed-protocol UF1 interval above chance): {listed(above)}."
            if len(below):
                text += f" Not shown to recover it (interval reaching chance, or one class predicted): {listed(below)}."
            sentences.append(text)
        return " ".join(sentences)

    def caveat(self) -> str:
        if not self.runs:
            return ""
        text = ("Every network here was trained by this book's engine on the same folds and scored the same "
                "way, so the rows compare; the published numbers below were not (other data preparation, "
                "other flow code, and several choose each subject's epoch on its test clips).")
        if self.study.source == "SYNTHETIC":
            text += (" These runs are on SYNTHETIC data (generated clips, small networks, few epochs): they show "
                     "the comparison working, not which method is better on real faces; run params/paper.yaml "
                     "for that. The published numbers were measured on the real MEGC2019 composite.")
        return text

    def flow_examples(self, per_class: int = 1):
        """(onset crops, apex crops, flow maps, titles) of ``per_class`` clips of each class of the
        first task, for plots.flow_maps: the input the baselines read."""
        from tsfmicro.data.flow import flow_inputs

        dataset, task = self.tasks[0]
        data = self.study.data(dataset, task)
        rows = (data.samples.reset_index(drop=True).groupby("class_index", sort=True).head(per_class).index
                .to_numpy())
        flow = flow_inputs(data)[rows]
        titles = [f"{data.class_names[data.samples['class_index'].iloc[row]]}\n{data.samples['clip_id'].iloc[row]}"
                  for row in rows]
        return data.onset[rows], data.apex[rows], flow, titles


def published_table(networks, digits: int = 2) -> pd.DataFrame:
    """One row per published method and epoch selection of ``networks``: UF1 of the composite and
    each part, the composite's UAR, how the epoch was chosen, the source and what is known to be
    wrong or unverified (``note``); "n/a" where a source gives no value."""
    from tsfmicro.reported import FIELD_PARTS, format_value

    own = reported.baselines_reported()
    meb = reported.field_reported()
    meb = meb[meb["method"].isin(MEB)].assign(network=lambda t: t["method"].map(MEB))
    table = pd.concat([own, meb[own.columns]], ignore_index=True)
    table = table[table["network"].isin(list(networks))]
    rows = []
    for (network, method, selection), group in table.groupby(["network", "method", "selection"], sort=False):
        values = group.set_index(["part", "metric"])["value"]
        on_test = group["selects_on_test"].iloc[0]
        row = {"network": display_name(network), "published as": method, "selection": selection,
               "selects on test": "not stated" if pd.isna(on_test) else bool(on_test)}
        row.update({f"{report.part_name(part)} UF1 %": format_value(values.get((part, "uf1"), np.nan), digits)
                    for part in FIELD_PARTS})
        row["composite UAR %"] = format_value(values.get(("composite", "uar"), np.nan), digits)
        row["note"] = "; ".join(note for note in dict.fromkeys(group["note"]) if note)
        row["source"] = "; ".join(dict.fromkeys(group["source"]))
        rows.append(row)
    return pd.DataFrame(rows)


CHAPTER = register(Chapter(name="baselines", notebook="11_baselines",
                           title="TSFmicro beside STSTNet, OFF-ApexNet and HTNet", runs=runs, page=BaselinesPage,
                           section=Section))
