"""Chapter 06, Cross-dataset generalisation: on the shared 3-class task, every ordered pair of
``cross_dataset: datasets`` trained on one and tested on the other (the diagonal: the dataset's
own LOSO) and, with ``lodo: true``, leave one dataset of the composite out."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import pandas as pd

from tsfmicro import metrics, report
from tsfmicro.chapters import Chapter, Page, Truth, apart_recovered, paired_recovered, register
from tsfmicro.params import COMPOSITE
from tsfmicro.report import METRIC_NAMES, WHOLE, check_protocol, part_name
from tsfmicro.results import Run
from tsfmicro.sections import PlannedRun, flag, name_list, run_options, seeds, setting

NOT_CONFIGURED = ("These parameters do not configure the cross-dataset chapter (no `cross_dataset:` section): "
                  "there is nothing to show.")


def _datasets(value, key, params) -> list[str]:
    """At least two distinct datasets that have the shared task."""
    from tsfmicro.data import DATASETS, TASKS
    from tsfmicro.data.registry import SHARED_TASK

    shared = tuple(name for name in DATASETS if SHARED_TASK in TASKS[name])
    found = name_list(value, key, shared)
    if not found and len(value) < 2:
        found = [f"{key}: {value!r} names one dataset; give at least two "
                 f"(each is trained on and tested on the others, task {SHARED_TASK}); valid: {', '.join(shared)}"]
    return found


@dataclass(frozen=True)
class Section:
    """``cross_dataset:`` (optional; null or left out: no such chapter)."""

    datasets: tuple[str, ...] = setting(_datasets)
    lodo: bool = setting(flag(), default=False)
    seeds: tuple[int, ...] | None = setting(seeds(), default=None)  # None: the parameters' seeds


def pairs(params) -> list[tuple[str, str]]:
    """(trained on, tested on) for every ordered pair of ``cross_dataset: datasets``, the
    diagonal (A, A: A's own LOSO) included, row by row; [] without the section."""
    section = params.section("cross_dataset")
    datasets = section.datasets if section is not None else ()
    return [(train, test) for train in datasets for test in datasets]


def planned(params, train: str, test: str) -> PlannedRun:
    """The run of one cell of the cross-dataset matrix (the diagonal: LOSO on ``train``)."""
    from tsfmicro.data.registry import SHARED_TASK

    return PlannedRun(train, SHARED_TASK, "ts_late", params.section_seeds("cross_dataset"),
                      run_options(test_dataset=test if test != train else None))


def lodo_planned(params) -> PlannedRun | None:
    """Leave-one-dataset-out on the composite, when ``cross_dataset: lodo`` is true."""
    section = params.section("cross_dataset")
    if section is None or not section.lodo:
        return None
    dataset, task = COMPOSITE
    return PlannedRun(dataset, task, "ts_late", params.section_seeds("cross_dataset"), run_options(split="lodo"))


def runs(params) -> dict:
    """(trained on, tested on) -> run for every cell of the matrix, then "lodo" -> the LODO run."""
    cells = {(train, test): planned(params, train, test) for train, test in pairs(params)}
    lodo = lodo_planned(params)
    return {**cells, **({"lodo": lodo} if lodo else {})}


class CrossDatasetPage(Page):
    @property
    def pairs(self) -> list[tuple[str, str]]:
        return pairs(self.parameters)

    @property
    def datasets(self) -> list[str]:
        return list(dict.fromkeys(train for train, _ in self.pairs))

    @functools.cached_property
    def class_maps(self) -> pd.DataFrame | None:
        return class_maps(self.datasets, "3class_megc") if self.pairs else None

    @functools.cached_property
    def runs(self) -> dict:
        """(trained on, tested on) -> run, for every cell of the matrix (LODO: :attr:`lodo`)."""
        return {key: self.study.planned(run) for key, run in self.planned.items() if key != "lodo"}

    @functools.cached_property
    def matrix(self) -> pd.DataFrame:
        return cross_dataset_matrix(self.runs, "uf1", "fixed")

    @property
    def table(self) -> pd.DataFrame | None:
        return cross_dataset_table(self.runs) if self.runs else None

    def summary(self) -> str:
        return transfer_sentence(self.matrix) if self.runs else NOT_CONFIGURED

    def truths(self) -> list[Truth]:
        """Planted domain shift: every transfer cell below its test dataset's own LOSO (UF1,
        fixed protocol), paired on the test dataset's clips (:func:`transfer_truth`)."""
        return [transfer_truth(self.runs[(train, test)], self.runs[(test, test)], train, test)
                for train, test in self.pairs if train != test and (test, test) in self.runs]

    def caveat(self) -> str:
        return ("These numbers come from SYNTHETIC data (generated faces in the official layouts, a tiny model, "
                "few epochs, a few subjects): they show that every step runs, not how a model trained on one real "
                "population does on another." if self.study.source == "SYNTHETIC" and self.runs else "")

    @functools.cached_property
    def lodo(self) -> Run | None:
        """The leave-one-dataset-out run (``cross_dataset: lodo``), or None."""
        run = self.planned.get("lodo")
        return self.study.planned(run) if run else None

    @functools.cached_property
    def lodo_table(self) -> pd.DataFrame | None:
        """LODO per held-out part beside the composite chapter's LOSO run of the same clips."""
        if not self.lodo:
            return None
        loso = self.study.chapter("composite").runs.get((*COMPOSITE, "ts_late"))
        return lodo_table(report.part_scores(self.lodo, ("fixed",)),
                          report.part_scores(loso, ("fixed",)) if loso is not None else None)

    def lodo_status(self) -> str:
        return "" if self.lodo else ("These parameters do not train leave-one-dataset-out "
                                     "(`cross_dataset: lodo` is not true).")


# ----------------------------------------------------------------------------- tables and sentences
def class_maps(datasets: Sequence[str], task: str) -> pd.DataFrame:
    """One row per dataset and class of ``task``: the dataset's labels grouped into that class,
    the labels the task leaves out, and the map's source (tsfmicro/data/registry.py)."""
    from tsfmicro.data.registry import dataset_info, task_info

    rows = []
    for dataset in datasets:
        info, mapping = dataset_info(dataset), task_info(dataset, task)
        dropped = [label for label in info.labels if label not in mapping.label_to_class]
        for name in mapping.class_names:
            rows.append({"dataset": info.display_name, "class": name,
                         "labels": ", ".join(label for label, target in mapping.label_to_class.items()
                                             if target == name),
                         "left out": ", ".join(dropped) or "none", "source": mapping.source})
    return pd.DataFrame(rows)


def cross_dataset_table(runs: dict[tuple[str, str], Run], protocol: str = "fixed", digits: int = 1) -> pd.DataFrame:
    """The cross-dataset matrix as a table: one row per (trained on, tested on), UF1 and UAR in
    percent with their interval; the diagonal rows (LOSO on the dataset) say so."""
    from tsfmicro.data.registry import dataset_info

    matrices = {metric: cross_dataset_matrix(runs, metric, protocol) for metric in ("uf1", "uar")}
    first = matrices["uf1"]
    table = pd.DataFrame({
        "trained on": [dataset_info(d).display_name for d in first["train"]],
        "tested on": [dataset_info(d).display_name for d in first["test"]],
        "evaluation": ["LOSO on the dataset" if own else "all of one dataset, tested on all of the other"
                       for own in first["own"]]})
    for metric, matrix in matrices.items():
        table[f"{METRIC_NAMES[metric]} %"] = [
            report.format_score(row.mean, row.low, row.high, no_spread=row.no_spread, per_seed=row.per_seed,
                                resamples=row.resamples, digits=digits) for row in matrix.itertuples()]
        table[f"{METRIC_NAMES[metric]} per seed %"] = [report.format_seeds(v, digits) for v in matrix["per_seed"]]
    table["flag"] = first["flag"].map(report.flag_cell).to_numpy()
    table["interval"] = first["interval"].to_numpy()
    table["test clips"] = first["test clips"].to_numpy()
    return table


def cross_dataset_matrix(runs: dict[tuple[str, str], Run], metric: str = "uf1",
                         protocol: str = "fixed") -> pd.DataFrame:
    """One row per (trained on, tested on) cell: ``mean`` (over seeds), ``per_seed``, ``low``,
    ``high`` of ``metric`` under ``protocol`` (fractions; 95 % subject x seed bootstrap, as
    :func:`tsfmicro.report.scores_long`), ``no_spread``, ``flag`` (a one-class model), ``own``: the
    diagonal (A's own LOSO). ``runs``: the page's runs (study.chapter("cross_dataset").runs)."""
    rows = []
    for (train, test), run in runs.items():
        column = f"pred_{check_protocol(protocol)}"
        found = metrics.subject_seed_interval(run.predictions, column, len(run.class_names))[metric]
        seeds = run.predictions["seed"].nunique()
        rows.append({"train": train, "test": test, "own": train == test, "metric": metric, "protocol": protocol,
                     "mean": found["mean"], "low": found["low"], "high": found["high"],
                     "per_seed": tuple(found["per_seed"]), "no_spread": found["no_spread"],
                     "resamples": metrics.RESAMPLES, "flag": report.one_class_flag(run.predictions, column,
                                                                                   run.class_names),
                     "interval": report.interval_name(seeds), "test clips": run.metrics["clips"]})
    return pd.DataFrame(rows, columns=["train", "test", "own", "metric", "protocol", "mean", "low", "high", "per_seed",
                                       "no_spread", "resamples", "flag", "interval", "test clips"])


def lodo_table(lodo: pd.DataFrame, loso: pd.DataFrame | None = None, digits: int = 1) -> pd.DataFrame:
    """Leave-one-dataset-out per held-out part (``lodo``: :func:`part_scores` of the LODO run;
    the WHOLE row pools the three held-out parts) beside the same part's clips scored by the
    composite's LOSO run (``loso``: its :func:`part_scores`), fixed protocol, in percent."""
    rows = []
    for part in dict.fromkeys(lodo["part"]):
        row = {"held-out part": part_name(part) if part != WHOLE else "all parts (pooled)"}
        for label, table in (("LODO", lodo), ("LOSO on the composite", loso)):
            if table is None:
                continue
            hits = table[(table["part"] == part) & (table["protocol"] == "fixed")].set_index("metric")
            for metric in ("uf1", "uar"):
                row[f"{label} {METRIC_NAMES[metric]} %"] = (
                    report.format_row(hits.loc[metric], digits) if metric in hits.index else "n/a")
            if "flag" in hits.columns and len(hits):
                row[f"{label} flag"] = report.flag_cell(hits["flag"].iloc[0])
        row["clips"] = int(lodo.loc[lodo["part"] == part, "clips"].iloc[0])
        rows.append(row)
    return pd.DataFrame(rows)


def transfer_truth(transfer: Run, loso: Run, train: str, test: str, protocol: str = "fixed") -> Truth:
    """Trained on ``train``, tested on all of ``test`` (``transfer``) against ``test``'s own LOSO
    (``loso``), UF1: both runs predict every clip of ``test`` once per seed, so they are compared
    by the paired subject x seed bootstrap (the same subjects and seeds drawn for both;
    tsfmicro.metrics.paired_subject_seed_difference); recovered when LOSO − transfer lies above 0.
    Not paired (other seeds or clips): the two runs' own intervals, recovered when they do not
    overlap. A one-class LOSO run is no baseline: not decided. A direction without a planted gap
    (:func:`planted_gap`) is shown with its interval and decides nothing."""
    from tsfmicro.data.registry import dataset_info

    column = f"pred_{check_protocol(protocol)}"
    name = {d: dataset_info(d).display_name for d in (train, test)}
    planted = planted_gap(train, test)
    truth = (f"trained on {name[train]}, tested on {name[test]}: UF1 below {name[test]}'s own LOSO" if planted else
             f"trained on {name[train]}, tested on {name[test]}, against {name[test]}'s own LOSO")
    expected = "below LOSO (planted domain shift)" if planted else "no gap planted in this direction"
    num_classes = len(loso.class_names)
    flag = report.one_class_flag(loso.predictions, column, loso.class_names)
    moved = transfer.predictions.assign(subject=[str(s).removeprefix(f"{test}/")  # joined runs prefix subjects
                                                 for s in transfer.predictions["subject"]])

    def clips(predictions):
        first = predictions[predictions["seed"] == predictions["seed"].min()]
        return set(zip(first["subject"].astype(str), first["clip_id"].astype(str)))

    paired = (moved["seed"].nunique() == loso.predictions["seed"].nunique()
              and clips(moved) == clips(loso.predictions))
    if paired:
        found = metrics.paired_subject_seed_difference(loso.predictions, moved, column, num_classes)["uf1"]
        measured = (f"LOSO − transfer {report.format_interval(found['difference'], found['low'], found['high'], 1, '+')}"
                    " points")
        recovered = paired_recovered(found["verdict"])
        note = {"reference higher": "the paired interval lies above 0",
                "reference lower": "the paired interval lies below 0: transfer scores higher",
                "inside noise": "not decided: the paired interval contains 0",
                "no difference": "not decided: no difference in any resample"}[found["verdict"]]
        note += f" (paired {report.interval_name(moved['seed'].nunique())})"
    else:
        a = metrics.subject_seed_interval(moved, column, num_classes)["uf1"]
        b = metrics.subject_seed_interval(loso.predictions, column, num_classes)["uf1"]
        measured = (f"transfer {report.format_interval(a['mean'], a['low'], a['high'])} %, "
                    f"LOSO {report.format_interval(b['mean'], b['low'], b['high'])} %")
        recovered = apart_recovered((a["low"], a["high"]), (b["low"], b["high"]))
        note = ("not paired (the runs differ in seeds or clips): " +
                {True: "the intervals do not overlap", False: "transfer's interval lies above LOSO's",
                 None: "not decided: the intervals overlap"}[recovered])
    if flag:
        return Truth(truth=truth, expected=expected, measured=measured, recovered=None,
                     note=f"not decided: {name[test]}'s LOSO run is a degenerate model ({flag}), no baseline")
    if not planted:
        return Truth(truth=truth, expected=expected, measured=measured, recovered=None,
                     note=f"nothing is planted about this direction (tsfmicro.data.synthetic.PLANTED); {note}")
    return Truth(truth=truth, expected=expected, measured=measured, recovered=recovered, note=note)


def planted_gap(train: str, test: str) -> bool:
    """Whether the synthetic data plant a transfer gap from ``train`` to ``test``: the
    cross-dataset row of tsfmicro.data.synthetic.PLANTED (``gaps``, by dataset name)."""
    from tsfmicro.data.synthetic import PLANTED

    return any((train, test) in row.get("gaps", ()) for row in PLANTED)


def transfer_sentence(matrix: pd.DataFrame) -> str:
    """Which direction transfers worst, from :func:`cross_dataset_matrix`: the lowest score
    off the diagonal, against the test dataset's own LOSO score, the comparison word following
    the sign (below / above / the same as); one-class cells named, as no baseline; "" without
    two datasets."""
    from tsfmicro.data.registry import dataset_info

    pairs = matrix[~matrix["own"]].sort_values("mean", kind="stable")
    if pairs.empty:
        return ""
    own = matrix[matrix["own"]].set_index("test")
    metric = METRIC_NAMES[str(pairs["metric"].iloc[0])]
    name = {d: dataset_info(d).display_name for d in set(matrix["train"]) | set(matrix["test"])}
    worst = pairs.iloc[0]
    text = (f"The direction that transfers worst here is trained on {name[worst['train']]}, tested on "
            f"{name[worst['test']]}: {metric} {100 * worst['mean']:.1f} %")
    if worst["test"] in own.index:
        loso = float(own.loc[worst["test"], "mean"])
        gap = round(100 * (worst["mean"] - loso), 1)  # compared at the precision printed
        where = (f"{name[worst['test']]} trained on its own subjects (LOSO, {100 * loso:.1f} %)")
        if gap < 0:
            text += f", {-gap:.1f} points below {where}"
        elif gap > 0:
            text += (f", {gap:.1f} points above {where}: these runs show no loss from changing dataset in this "
                     f"direction")
        else:
            text += f", the same as {where}: these runs show no loss from changing dataset in this direction"
    text += "."
    if len(pairs) > 1:
        best = pairs.iloc[-1]
        text += (f" The highest-scoring of the {len(pairs)} directions is {name[best['train']]} to {name[best['test']]} "
                 f"({100 * best['mean']:.1f} %).")
    if "flag" in matrix.columns:
        for _, cell in matrix[matrix["flag"].fillna("") != ""].iterrows():
            what = (f"the LOSO cell of {name[cell['test']]}" if cell["own"] else
                    f"the cell trained on {name[cell['train']]}, tested on {name[cell['test']]}")
            meaning = "no baseline to compare with" if cell["own"] else "not a measure of transfer"
            text += (f" {what[0].upper()}{what[1:]} is a degenerate model ({cell['flag']}): its "
                     f"{100 * cell['mean']:.1f} % is what predicting one class scores, {meaning}.")
    return text


CHAPTER = register(Chapter(name="cross_dataset", notebook="06_cross_dataset", title="Cross-dataset generalisation",
                           runs=runs, page=CrossDatasetPage, section=Section))
