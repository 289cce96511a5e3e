"""Tables: from finished runs (tsfmicro.results) for the ``report``/``evaluate`` commands and the
book, and of plans and runs of the training engine (``plan``/``run`` commands, compute appendix).

Every table names its protocol: ``fixed`` (last epoch, no test-set selection, the default) or
``oracle`` (the authors' per-subject best epoch on its own test clips). Scores are fractions
(0-1) in the tables; :func:`format_table` prints them as percentages.

Intervals: with two or more seeds, a 95 % Student-t interval of the mean over seeds; with one
seed, a 95 % subject-level bootstrap interval of that seed's pooled score (column ``interval``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from tsfmicro import metrics
from tsfmicro.results import Run, load_run
from tsfmicro.metrics import METRICS, PROTOCOLS

RunLike = Run | str | Path
IDENTITY = ("dataset", "task", "fusion", "preset", "recipe")


def as_runs(runs: RunLike | Iterable[RunLike]) -> list[Run]:
    """Runs or run directories -> loaded runs."""
    if isinstance(runs, (Run, str, Path)):
        runs = [runs]
    return [run if isinstance(run, Run) else load_run(run) for run in runs]


def describe(run: Run) -> dict:
    """The columns that say what a run is."""
    config = run.config
    return {
        **{name: config[name] for name in IDENTITY},
        "epochs": config["resolved"]["recipe"]["epochs"],
        "seeds": len(config["seeds"]),
        "source": config["data_source"],
    }


def summary_table(runs, protocols: Sequence[str] = PROTOCOLS) -> pd.DataFrame:
    """One row per run and protocol: ACC, UF1, UAR with their 95 % interval bounds."""
    rows = []
    for run in as_runs(runs):
        for protocol in protocols:
            rows.append({**describe(run), "protocol": protocol, **scores_row(run.metrics["protocols"][protocol])})
    return pd.DataFrame(rows)


def scores_row(summary: dict) -> dict:
    """One protocol's block of metrics.json (tsfmicro.metrics.summarize) as columns: each metric's
    mean and interval (t over seeds, or the subject bootstrap with one seed) and which interval."""
    one_seed = len(summary["per_seed"]) == 1
    row = {}
    for name in METRICS:
        low, high = summary["per_seed"][0]["bootstrap95"][name] if one_seed else summary["seed_ci95"][name]
        row.update({name: summary["mean"][name], f"{name}_low": _number(low), f"{name}_high": _number(high)})
    row["interval"] = "subject bootstrap 95%" if one_seed else f"t over {len(summary['per_seed'])} seeds 95%"
    return row


def difference_table(runs) -> pd.DataFrame:
    """One row per run: oracle minus fixed for each score, mean over seeds and t interval."""
    rows = []
    for run in as_runs(runs):
        difference = run.metrics["oracle_minus_fixed"]
        row = describe(run)
        for name in METRICS:
            low, high = difference["seed_ci95"][name]
            row.update({name: difference["mean"][name], f"{name}_low": _number(low), f"{name}_high": _number(high)})
        rows.append(row)
    return pd.DataFrame(rows)


def seed_table(run: RunLike) -> pd.DataFrame:
    """One row per seed and protocol: the pooled scores of that seed and its bootstrap interval."""
    (run,) = as_runs(run)
    rows = []
    for protocol in PROTOCOLS:
        for entry in run.metrics["protocols"][protocol]["per_seed"]:
            row = {"protocol": protocol, "seed": entry["seed"]}
            for name in METRICS:
                low, high = entry["bootstrap95"][name]
                row.update({name: entry[name], f"{name}_low": low, f"{name}_high": high})
            rows.append(row)
    return pd.DataFrame(rows)


def per_class_table(run: RunLike, protocol: str = "fixed") -> pd.DataFrame:
    """Per class, all seeds pooled: support, predictions, precision, recall, F1."""
    (run,) = as_runs(run)
    return pd.DataFrame(run.metrics["protocols"][check_protocol(protocol)]["per_class"]).assign(protocol=protocol)


def confusion_table(run: RunLike, protocol: str = "fixed", normalize: bool = False) -> pd.DataFrame:
    """Confusion matrix (rows true, columns predicted), all seeds pooled; ``normalize``: rows sum to 1."""
    (run,) = as_runs(run)
    matrix = np.asarray(run.metrics["protocols"][check_protocol(protocol)]["confusion"], dtype=float)
    if normalize:
        matrix = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    names = run.class_names
    return pd.DataFrame(matrix, index=pd.Index(names, name="true"), columns=pd.Index(names, name="predicted"))


def per_subject_table(run: RunLike, protocol: str = "fixed") -> pd.DataFrame:
    """Per held-out subject, mean over seeds; each subject scored over the classes it shows."""
    (run,) = as_runs(run)
    column = f"pred_{check_protocol(protocol)}"
    per_seed = [
        metrics.scores_by(part, "subject", "true", column).assign(seed=seed)
        for seed, part in run.predictions.groupby("seed")
    ]
    table = pd.concat(per_seed).groupby("subject", sort=False)[["samples", *METRICS]].mean().reset_index()
    table["samples"] = table["samples"].astype(int)
    epochs = run.predictions.groupby("subject")[f"epoch_{protocol}"].mean().rename("mean_epoch")
    return table.merge(epochs, on="subject").assign(protocol=protocol)


def per_subject_wide(run: RunLike, digits: int = 1) -> pd.DataFrame:
    """Per held-out subject (rows in the order of the folds): clips, UF1 and ACC (%) under both
    protocols (mean over seeds), and the epoch the oracle protocol kept (mean over seeds)."""
    fixed = per_subject_table(run, "fixed").set_index("subject")
    oracle = per_subject_table(run, "oracle").set_index("subject")
    percent = lambda values: (100 * values).round(digits)
    return pd.DataFrame({
        "clips": fixed["samples"],
        "UF1 fixed %": percent(fixed["uf1"]), "ACC fixed %": percent(fixed["accuracy"]),
        "UF1 oracle %": percent(oracle["uf1"]), "ACC oracle %": percent(oracle["accuracy"]),
        "oracle epoch": oracle["mean_epoch"].round(1),
    }).reset_index()


def evaluate(run: RunLike, protocols: Sequence[str] = PROTOCOLS) -> dict:
    """Recompute a run's metrics from its predictions.csv (what ``tsfmicro evaluate`` prints)."""
    (run,) = as_runs(run)
    summary = metrics.summarize(run.predictions, run.class_names)
    summary["protocols"] = {p: summary["protocols"][check_protocol(p)] for p in protocols}
    return summary


def format_table(table: pd.DataFrame) -> str:
    """Scores as percentages with their interval, e.g. ``87.5 [85.1, 89.9]``."""
    shown = table.drop(columns=[c for c in table.columns if c.endswith(("_low", "_high"))])
    for name in METRICS:
        if name in table:
            shown[name.upper() if name != "accuracy" else "ACC"] = [
                format_interval(m, lo, hi) for m, lo, hi in zip(table[name], table.get(f"{name}_low", table[name] * np.nan),
                                                          table.get(f"{name}_high", table[name] * np.nan))
            ]
            shown = shown.drop(columns=name)
    return shown.to_string(index=False)


def text_report(runs) -> str:
    """The ``report`` command's output: both protocols side by side, then their difference."""
    runs = as_runs(runs)
    parts = [
        "Scores in % (95% interval). fixed = last epoch; oracle = per-subject best epoch on its own "
        "test clips (the authors' selection, optimistic).",
        format_table(summary_table(runs)),
        "",
        "oracle - fixed (percentage points, t interval over seeds):",
        format_table(difference_table(runs)),
    ]
    synthetic = [str(run.path) for run in runs if str(run.config["data_source"]).upper().startswith("SYNTHETIC")]
    if synthetic:
        parts.append(f"\nSYNTHETIC data: {len(synthetic)} of {len(runs)} runs; these numbers say nothing about real faces.")
    return "\n".join(parts)


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    return protocol


def _number(value) -> float:
    return float("nan") if value is None else float(value)


# ----------------------------------------------------------------------------- the book's result tables
# Shapes of the tables above for the notebooks (runs keyed by (dataset, task, fusion)); nothing is
# recomputed here.
METRIC_NAMES = {"accuracy": "ACC", "uf1": "UF1", "uar": "UAR"}


def scores_long(runs: dict[tuple[str, str, str], Run], column: str = "fusion") -> pd.DataFrame:
    """One row per run, protocol and metric: ``mean``, ``low``, ``high`` (fractions) from
    :func:`summary_table` (95 % t interval over seeds; a subject bootstrap
    interval when there is one seed). ``runs`` are keyed by (dataset, task, X), X in column
    ``column``: the fusion variant, or a chapter's variant (a temporal branch, an imbalance option)."""
    wide = summary_table(list(runs.values()))
    wide[column] = [key[2] for key in runs for _ in PROTOCOLS]  # summary_table: each run's protocols in turn
    keys = ["dataset", "task", column, "protocol", "seeds", "interval"]
    parts = [wide[keys].assign(metric=metric, mean=wide[metric], low=wide[f"{metric}_low"],
                               high=wide[f"{metric}_high"]) for metric in METRIC_NAMES]
    return pd.concat(parts, ignore_index=True)


def scores_wide(long: pd.DataFrame, reported: pd.DataFrame | None = None, digits: int = 1,
                keys: Sequence[str] | None = None, column: str = "fusion") -> pd.DataFrame:
    """Display table: one row per run and protocol (``keys``; default dataset, task, ``column``,
    protocol, ``column`` as in :func:`scores_long`), each metric as "mean [low, high]" in
    percent; with ``reported`` (tsfmicro.reported.reported()), the paper's values beside, "n/a"
    where the paper's value is not available."""
    table = long.assign(value=[format_interval(m, lo, hi, digits)
                               for m, lo, hi in zip(long["mean"], long["low"], long["high"])])
    keys = list(keys) if keys is not None else ["dataset", "task", column, "protocol"]
    wide = table.pivot_table(index=keys, columns="metric", values="value", aggfunc="first",
                             sort=False)
    wide = wide[[m for m in METRIC_NAMES if m in wide.columns]]
    wide.columns = [f"{METRIC_NAMES[m]} %" for m in wide.columns]
    wide = wide.reset_index()
    if "interval" in long.columns:
        intervals = long.drop_duplicates(keys).set_index(keys)["interval"]
        wide["interval"] = [intervals.get(tuple(row)) for row in wide[keys].itertuples(index=False)]
    if reported is not None:
        from tsfmicro.reported import format_value

        for metric, name in METRIC_NAMES.items():
            short = {"accuracy": "acc"}.get(metric, metric)
            lookup = reported[reported.metric == short].set_index(["dataset", "task", "fusion"]).value
            # the paper's values were obtained with the oracle selection: shown beside oracle
            # rows only, so no fixed-protocol score reads as comparable to them
            oracle = wide["protocol"] == "oracle" if "protocol" in wide else pd.Series(True, index=wide.index)
            wide[f"paper {name} %"] = [
                format_value(lookup.get((d, t, f), float("nan"))) if on_oracle else ""
                for d, t, f, on_oracle in zip(wide.dataset, wide.task, wide.fusion, oracle)]
    return wide


def oracle_gain(runs: dict[tuple[str, str, str], Run], digits: int = 1) -> pd.DataFrame:
    """oracle − fixed per run (:func:`difference_table`), in percentage points as
    "mean [low, high]" over seeds."""
    table = difference_table(list(runs.values()))
    shown = table[["dataset", "task", "fusion"]].copy()
    for metric, name in METRIC_NAMES.items():
        shown[f"{name} pp"] = [format_interval(m, lo, hi, digits, "+") for m, lo, hi in
                               zip(table[metric], table[f"{metric}_low"], table[f"{metric}_high"])]
    return shown


def per_class_by_run(runs: dict[tuple[str, str, str], Run], protocol: str = "fixed") -> pd.DataFrame:
    """Per-class support, precision, recall and F1 of each run, all seeds pooled
    (:func:`per_class_table` of each, with the run's dataset, task and fusion)."""
    parts = [per_class_table(run, protocol).assign(dataset=dataset, task=task, fusion=fusion)
             for (dataset, task, fusion), run in runs.items()]
    table = pd.concat(parts, ignore_index=True)
    first = ["dataset", "task", "fusion", "class_name", "support", "predicted",
             "precision", "recall", "f1"]
    return table[[c for c in first if c in table.columns]]


# ----------------------------------------------------------------------------- chapters beyond the paper
def class_recall(runs: dict[tuple[str, str, str], Run], column: str, protocol: str = "fixed") -> pd.DataFrame:
    """Recall of each class of each run (keyed by (dataset, task, X), X in ``column``): one row
    per run and class with ``support`` (clips per seed), ``mean``, ``low``, ``high`` (fractions) and
    ``interval``: a 95 % t interval over seeds, or with one seed a 95 % subject-bootstrap interval
    (tsfmicro.metrics.bootstrap_class_recall), as for the scores."""
    column_name = f"pred_{check_protocol(protocol)}"
    rows = []
    for (dataset, task, variant), run in runs.items():
        names = run.class_names
        per_seed = []
        for seed, part in run.predictions.groupby("seed", sort=True):
            table = metrics.per_class(part["true"], part[column_name], len(names), names)
            bounds = metrics.bootstrap_class_recall(part["true"], part[column_name], part["subject"], len(names))
            per_seed.append((table, bounds))
        for k, name in enumerate(names):
            recalls = [table["recall"].iloc[k] for table, _ in per_seed]
            if len(per_seed) == 1:
                mean, (low, high), interval = recalls[0], per_seed[0][1][k], "subject bootstrap 95%"
            else:
                mean, low, high = metrics.t_interval(recalls, bounds=(0.0, 1.0))
                interval = f"t over {len(per_seed)} seeds 95%"
            rows.append({"dataset": dataset, "task": task, column: variant, "class_name": name,
                         "support": int(per_seed[0][0]["support"].iloc[k]), "metric": "recall",
                         "mean": float(mean), "low": float(low), "high": float(high), "interval": interval,
                         "protocol": protocol})
    return pd.DataFrame(rows)


def class_recall_wide(recall: pd.DataFrame, column: str, digits: int = 1) -> pd.DataFrame:
    """:func:`class_recall` for display: one row per dataset, task and class (with its support),
    one column per variant, "mean [low, high]" in percent."""
    table = recall.assign(value=[format_interval(m, lo, hi, digits)
                                 for m, lo, hi in zip(recall["mean"], recall["low"], recall["high"])])
    wide = table.pivot_table(index=["dataset", "task", "class_name", "support"], columns=column, values="value",
                             aggfunc="first", sort=False)
    wide.columns = [f"{name} recall %" for name in wide.columns]
    return wide.reset_index().rename(columns={"class_name": "class", "support": "clips"})


def class_distribution(samples: pd.DataFrame) -> pd.DataFrame:
    """Clips per class of each dataset/task (``samples``: Study.all_samples-like rows with
    dataset, task, class_index, class_name), with each class's share and the ratio of the largest
    class to the smallest (how imbalanced the task is)."""
    counts = (samples.groupby(["dataset", "task", "class_index", "class_name"], observed=True, sort=False)
              .size().rename("clips").reset_index().sort_values(["dataset", "task", "class_index"], kind="stable"))
    totals = counts.groupby(["dataset", "task"], sort=False)["clips"]
    counts["share"] = counts["clips"] / totals.transform("sum")
    counts["largest / smallest"] = (totals.transform("max") / totals.transform("min")).round(1)
    return counts.drop(columns="class_index").reset_index(drop=True)


def temporal_branch_sizes(preset: str, branches: Sequence[str], num_classes: int = 5,
                          fusion: str = "ts_late") -> pd.DataFrame:
    """Parameters and forward GFLOPs per sample of the network with each temporal branch, at
    the preset's image size (tsfmicro.model.count_parameters / count_flops; no training)."""
    from tsfmicro.model import PRESETS, count_flops, count_parameters, model_from_config

    rows = []
    for branch in branches:
        model = model_from_config({"preset": preset, "fusion": fusion, "temporal_branch": branch}, num_classes)
        rows.append({"temporal branch": branch, "preset": preset, "input": f"{PRESETS[preset].image_size} px",
                     "parameters (M)": round(count_parameters(model) / 1e6, 3),
                     "forward GFLOPs / sample": round(count_flops(model) / 1e9, 3)})
    return pd.DataFrame(rows)


def compare_to_reference(long: pd.DataFrame, column: str, reference: str, metric: str = "uf1",
                         protocol: str = "fixed") -> pd.DataFrame:
    """Each variant of ``long`` (:func:`scores_long` or :func:`class_recall` rows) against the
    ``reference`` variant of the same dataset and task on one metric and protocol: ``difference``
    (fraction) and ``relation``: "reference", "above" or "below" (its 95 % interval lies wholly
    above or below the reference's), "overlaps" (the intervals overlap: these runs do not
    separate them), or "no interval"; "no reference" where the reference was not run."""
    part = long[(long["metric"] == metric) & (long["protocol"] == protocol)]
    rows = []
    for (dataset, task), group in part.groupby(["dataset", "task"], sort=False):
        base = group[group[column] == reference]
        for _, row in group.iterrows():
            entry = {"dataset": dataset, "task": task, column: row[column], "mean": row["mean"],
                     "low": row["low"], "high": row["high"]}
            if base.empty:
                entry.update(difference=float("nan"), relation="no reference")
            else:
                ref = base.iloc[0]
                entry["difference"] = row["mean"] - ref["mean"]
                if row[column] == reference:
                    entry["relation"] = "reference"
                elif any(pd.isna(v) for v in (row["low"], row["high"], ref["low"], ref["high"])):
                    entry["relation"] = "no interval"
                elif row["low"] > ref["high"]:
                    entry["relation"] = "above"
                elif row["high"] < ref["low"]:
                    entry["relation"] = "below"
                else:
                    entry["relation"] = "overlaps"
            rows.append(entry)
    return pd.DataFrame(rows)


def variant_conclusion(long: pd.DataFrame, column: str, reference: str, what: str, metric: str = "uf1",
                       protocol: str = "fixed") -> str:
    """The conclusion of a comparison of variants (temporal branches, imbalance options), from
    the numbers: per dataset/task, the best variant, the reference's score, each other variant's
    difference from it, and whether the 95 % intervals separate them. ``what`` names the
    variants in prose ("temporal branches"); ``reference`` is the paper's."""
    name = METRIC_NAMES[metric]
    compared = compare_to_reference(long, column, reference, metric, protocol)
    if compared.empty:
        return f"No {what} were run with these parameters."
    sentences = []
    for (dataset, task), group in compared.groupby(["dataset", "task"], sort=False):
        best = group.loc[group["mean"].idxmax()]
        start = f"On {dataset} {task} ({protocol} protocol), "
        if len(group) == 1:
            sentences.append(start + f"only {best[column]} was run: {name} {format_interval(best['mean'], best['low'], best['high'])} %.")
            continue
        paper = " (the paper's)" if best[column] == reference else ""
        sentences.append(start + f"the best of the {len(group)} {what} is {best[column]}{paper} at {name} "
                         f"{format_interval(best['mean'], best['low'], best['high'])} %.")
        base = group[group["relation"] == "reference"]
        if base.empty:
            sentences.append(f"{reference} (the paper's) was not run with these parameters, so nothing is "
                             f"compared with it.")
            continue
        ref = base.iloc[0]
        others = group[group["relation"] != "reference"]
        differences = ", ".join(f"{row[column]} {100 * row['difference']:+.1f}" for _, row in others.iterrows())
        against = "Against it" if paper else (f"Against {reference} (the paper's, {name} "
                                              f"{format_interval(ref['mean'], ref['low'], ref['high'])} %)")
        sentences.append(f"{against}, in {name} points: {differences}.")
        separated = others[others["relation"].isin(["above", "below"])]
        if separated.empty:
            sentences.append(f"Every interval overlaps {reference}'s, so these runs do not separate the {what}.")
        else:
            parts = [f"{row[column]} lies wholly {row['relation']} it" for _, row in separated.iterrows()]
            rest = len(others) - len(separated)
            text = " and ".join(parts)
            text = f"{text[0].upper()}{text[1:]} (95 % intervals)"
            sentences.append(text + (f"; the {rest} other(s) overlap it." if rest else "."))
    return " ".join(sentences)


def model_sizes(presets=("paper", "tiny"), fusions=None, num_classes: int = 5) -> pd.DataFrame:
    """Parameters and forward GFLOPs per sample of each preset and fusion variant
    (tsfmicro.model.count_parameters / count_flops; no training involved)."""
    from tsfmicro.model import FUSIONS, PRESETS, count_flops, count_parameters, model_from_config

    rows = []
    for preset in presets:
        for fusion in fusions or FUSIONS:
            model = model_from_config({"preset": preset, "fusion": fusion}, num_classes)
            rows.append({"preset": preset, "fusion": fusion,
                         "input": f"{PRESETS[preset].image_size} px",
                         "parameters (M)": round(count_parameters(model) / 1e6, 2),
                         "forward GFLOPs / sample": round(count_flops(model) / 1e9, 3)})
    return pd.DataFrame(rows)


def format_interval(mean, low, high, digits: int = 1, sign: str = "") -> str:
    """A fraction and its interval as percent text, "45.2 [31.0, 59.4]"; "n/a" when missing.

    ``sign="+"`` prints differences with their sign (oracle - fixed).
    """
    if mean is None or pd.isna(mean):
        return "n/a"
    text = f"{100 * mean:{sign}.{digits}f}"
    if not (low is None or high is None or pd.isna(low) or pd.isna(high)):
        text += f" [{100 * low:{sign}.{digits}f}, {100 * high:{sign}.{digits}f}]"
    return text


# ----------------------------------------------------------------------------- composite and cross-dataset
# A composite's clips belong to the dataset their subject id names ("casme2/sub01"); so do a
# cross-dataset run's test clips (tsfmicro.data.cross_dataset prefixes every subject).
WHOLE = "composite"  # the part name of every clip of a run together (the field's name, tsfmicro.reported)


def clip_parts(predictions: pd.DataFrame) -> pd.Series:
    """The dataset of each prediction row, from its subject id ("casme2/sub01" -> "casme2");
    WHOLE for subject ids without a dataset in front."""
    subjects = predictions["subject"].astype(str)
    return subjects.str.split("/").str[0].where(subjects.str.contains("/"), WHOLE)


def part_scores(run: RunLike, protocols: Sequence[str] = PROTOCOLS) -> pd.DataFrame:
    """One row per part, protocol and metric (``mean``, ``low``, ``high``: fractions; ``interval``):
    first every clip of the run together (part WHOLE), then each dataset its clips come from
    (:func:`clip_parts`). Pooled within the part over all the task's classes, as
    tsfmicro.metrics.summarize; 95 % t interval over seeds, or a subject bootstrap with one seed."""
    (run,) = as_runs(run)
    predictions = run.predictions.reset_index(drop=True)
    parts = clip_parts(predictions)
    groups = [(WHOLE, predictions)] + [(name, predictions[parts == name]) for name in sorted(set(parts) - {WHOLE})]
    rows = []
    for name, part in groups:
        summary = metrics.summarize(part, run.class_names)
        for protocol in protocols:
            scores = scores_row(summary["protocols"][check_protocol(protocol)])
            for metric in METRIC_NAMES:
                rows.append({"part": name, "protocol": protocol, "metric": metric, "mean": scores[metric],
                             "low": scores[f"{metric}_low"], "high": scores[f"{metric}_high"],
                             "interval": scores["interval"], "clips": summary["clips"],
                             "subjects": part["subject"].nunique()})
    return pd.DataFrame(rows)


def composite_scores(runs: dict[tuple[str, str, str], Run], protocols: Sequence[str] = PROTOCOLS) -> pd.DataFrame:
    """:func:`part_scores` of each run (keyed by (dataset, task, fusion), as
    study.chapter("composite").runs), with its ``fusion``."""
    parts = [part_scores(run, protocols).assign(fusion=fusion) for (_, _, fusion), run in runs.items()]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["part", "protocol", "metric", "mean", "low", "high", "interval", "clips", "subjects", "fusion"])


def part_confusions(run: RunLike, protocol: str = "fixed") -> dict[str, np.ndarray]:
    """Confusion matrix (rows true, columns predicted; every seed pooled) of each part of
    :func:`clip_parts`, the whole run first."""
    (run,) = as_runs(run)
    predictions = run.predictions.reset_index(drop=True)
    parts = clip_parts(predictions)
    column, classes = f"pred_{check_protocol(protocol)}", len(run.class_names)
    matrices = {}
    for name in [WHOLE] + sorted(set(parts) - {WHOLE}):
        rows = predictions if name == WHOLE else predictions[parts == name]
        matrices[name] = metrics.confusion_matrix(rows["true"], rows[column], classes)
    return matrices


def part_name(part: str) -> str:
    from tsfmicro.data.registry import dataset_info

    return part if part == WHOLE else dataset_info(part).display_name


# ----------------------------------------------------------------------------- plans and runs
def format_seconds(seconds) -> str:
    """A duration in words a reader takes in at once: "45 s", "12.5 min", "3.2 h", "4.1 days";
    "unknown" when missing."""
    if seconds is None or pd.isna(seconds):
        return "unknown"
    seconds = float(seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def format_tflops(value: float) -> str:
    return f"{value:.3g}" if value < 100 else f"{value:,.0f}"


def plan_table(plan: pd.DataFrame) -> pd.DataFrame:
    """A plan (tsfmicro.engine.plan.Plan.table, or Study.plan) for display: one row per training
    unit, compute in TFLOPs, times in words; how finished units were trained (time summed over
    folds, device, executor)."""
    shown = pd.DataFrame({
        "dataset": plan["dataset"], "task": plan["task"], "fusion": plan["fusion"],
        "options": plan["options"].fillna(""), "preset": plan["preset"],
        "recipe": plan["recipe"], "precision": plan["precision"], "seed": plan["seed"], "folds": plan["folds"],
        "train clips/fold": plan["train_clips_per_fold"].map(lambda v: f"{v:g}"),
        "epochs": plan["epochs"], "TFLOPs": plan["tflops"].map(format_tflops),
        "est. time": plan["estimated_seconds"].map(format_seconds), "state": plan["state"],
        "trained in": plan["trained_seconds"].map(lambda v: "" if _blank(v) else format_seconds(v)),
        "device": plan["device"].map(lambda v: "" if _blank(v) else str(v)),
        "executor": plan["executor"].map(lambda v: "" if _blank(v) else str(v)),
    })
    return shown


def plan_summary(plan: pd.DataFrame) -> dict[str, str]:
    """The plan in a few words for prose: units, folds, TFLOPs, training time summed over the
    finished units' folds, the span from the first fold's start to the last fold's end, and the
    devices and executors that trained them."""
    done = plan[plan["state"] == "done"]
    span = None
    if len(done) and done["started"].notna().all() and done["finished"].notna().all():
        span = (pd.to_datetime(done["finished"]).max() - pd.to_datetime(done["started"]).min()).total_seconds()
    return {
        "units": str(len(plan)), "units_done": str(len(done)), "folds": str(int(plan["folds"].sum())),
        "tflops": format_tflops(float(plan["tflops"].sum())),
        "trained": format_seconds(done["trained_seconds"].sum() if len(done) else None),
        "span": format_seconds(span),
        "devices": ", ".join(sorted({str(d) for d in done["device"] if not _blank(d)})) or "none",
        "executors": ", ".join(sorted({str(e) for e in done["executor"] if not _blank(e)})) or "none",
    }


def plan_text(plan: pd.DataFrame, totals: dict) -> str:
    """The ``plan`` command's output: a row per unit, then the totals (``totals``:
    tsfmicro.engine.plan.totals of the same table)."""
    columns = ["dataset", "task", "fusion", "options", "preset", "recipe", "precision", "seed", "folds", "train clips/fold",
               "epochs", "TFLOPs", "est. time", "state", "trained in"]
    states = ", ".join(f"{totals[key]} {name}" for key, name in
                       (("done", "done"), ("partial", "partial"), ("to_do", "to do"), ("no_data", "no data"))
                       if totals[key])
    lines = [plan_table(plan)[columns].to_string(index=False), "",
             f"total: {totals['units']} units, {totals['folds']} folds ({totals['folds_done']} done), "
             f"{format_tflops(totals['tflops'])} TFLOPs, est. time {format_seconds(totals['estimated_seconds'])}; "
             f"{states}"]
    if totals["no_data"]:
        lines.append("no data: the dataset's folder was not given (-p roots.<dataset>=PATH or "
                     "TSFMICRO_<DATASET>_ROOT); its rows use the published number of clips and subjects")
    return "\n".join(lines)


def run_summary_text(summary) -> str:
    """The end of ``tsfmicro run``: units and folds done before and now, wall time, folds/min
    (``summary``: tsfmicro.engine.execute.RunSummary)."""
    rows = pd.DataFrame([
        {"": "units", "total": summary.units, "done before": summary.units_before, "done now": summary.units_finished},
        {"": "folds", "total": summary.folds, "done before": summary.folds_before, "done now": summary.folds_trained},
    ])
    minutes = summary.wall_seconds / 60
    rate = f"{summary.folds_trained / minutes:.2f}" if minutes > 0 else "n/a"
    return (rows.to_string(index=False) + f"\n{summary.folds_resumed} fold(s) continued a mid-fold checkpoint; "
            f"wall time {format_seconds(summary.wall_seconds)}, {rate} folds/min "
            f"(executor {summary.executor}, {summary.workers or 'all'} worker(s))")


def _blank(value) -> bool:
    return value is None or (not isinstance(value, str) and pd.isna(value))
