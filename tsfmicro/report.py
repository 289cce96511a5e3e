"""Tables: from finished runs (tsfmicro.results) for the ``report``/``evaluate`` commands and the
book, and of plans and runs of the training engine (``plan``/``run`` commands, compute appendix).

Every table names its protocol: ``fixed`` (last epoch, no test-set selection, the default) or
``oracle`` (the authors' per-subject best epoch on its own test clips). Scores are fractions
(0-1) in the tables; :func:`format_table` prints them as percentages.

Intervals: the run summaries (``report`` command, :func:`summary_table`) give, with two or more
seeds, a 95 % Student-t interval of the mean over seeds and, with one seed, a 95 % subject-level
bootstrap interval of that seed's pooled score (column ``interval``). The book's score tables
(:func:`scores_long`) give a 95 % subject x seed bootstrap interval, each seed's value beside the
mean, a zero-width interval as "no spread" (never as certainty), and a flag on one-class models.
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


def interval_name(seeds: int, resamples: int = metrics.RESAMPLES) -> str:
    """The interval the book's score tables show, named as their ``interval`` column prints it."""
    if seeds == 1:
        return f"subject bootstrap 95%, {resamples} resamples (one seed)"
    return metrics.subject_seed_method(resamples)


def one_class_flag(predictions: pd.DataFrame, column: str, class_names: Sequence[str] | None = None) -> str:
    """"" or the flag of a degenerate model: the seeds whose predictions (``column``) are all
    one class, e.g. "one-class model: only 'other' (seeds 0, 1 of 2)"."""
    seeds = metrics.one_class_seeds(predictions, column)
    if not seeds:
        return ""
    predicted = sorted(set(predictions.loc[predictions["seed"].isin(seeds), column].astype(int)))
    names = [repr(class_names[k]) if class_names is not None and k < len(class_names) else str(k) for k in predicted]
    total = predictions["seed"].nunique()
    which = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {', '.join(map(str, seeds))}"
    return f"one-class model: only {' / '.join(names)} ({which} of {total})"


def scores_long(runs: dict[tuple[str, str, str], Run], column: str = "fusion",
                resamples: int = metrics.RESAMPLES) -> pd.DataFrame:
    """One row per run, protocol and metric: ``mean`` (over seeds), ``per_seed`` (each seed's
    pooled score, seeds sorted), ``low``, ``high`` (fractions): the 95 % subject x seed bootstrap
    interval (tsfmicro.metrics.subject_seed_interval; with one seed, subjects only), named in
    ``interval``; ``no_spread``: every resample gave one value (not certainty: see
    :func:`format_score`); ``flag``: :func:`one_class_flag` of the run and protocol. ``runs`` are
    keyed by (dataset, task, X), X in column ``column``: the fusion variant, or a chapter's
    variant (a temporal branch, an imbalance option)."""
    rows = []
    for key, run in runs.items():
        who = describe(run)
        for protocol in PROTOCOLS:
            predicted = f"pred_{protocol}"
            found = metrics.subject_seed_interval(run.predictions, predicted, len(run.class_names),
                                                  resamples=resamples)
            flag = one_class_flag(run.predictions, predicted, run.class_names)
            for metric in METRIC_NAMES:
                entry = found[metric]
                rows.append({"dataset": who["dataset"], "task": who["task"], column: key[2], "protocol": protocol,
                             "seeds": who["seeds"], "interval": interval_name(who["seeds"], resamples),
                             "metric": metric, "mean": entry["mean"], "low": entry["low"], "high": entry["high"],
                             "per_seed": tuple(entry["per_seed"]), "no_spread": entry["no_spread"],
                             "resamples": resamples, "flag": flag})
    return pd.DataFrame(rows, columns=["dataset", "task", column, "protocol", "seeds", "interval", "metric", "mean",
                                       "low", "high", "per_seed", "no_spread", "resamples", "flag"])


def format_score(mean, low, high, *, no_spread: bool = False, per_seed: Sequence[float] = (),
                 resamples: int = metrics.RESAMPLES, digits: int = 1) -> str:
    """A score and its interval as percent text, "45.2 [31.0, 59.4]"; a zero-width interval is
    never printed as [x, x]: "40.2 (seeds agree; no spread in 1000 resamples)" when the seeds
    gave one value, else "33.3 (no spread in 1000 resamples)"."""
    if not no_spread:
        return format_interval(mean, low, high, digits)
    text = format_interval(mean, None, None, digits)
    agree = len(per_seed) > 1 and np.allclose(per_seed, per_seed[0], rtol=0, atol=1e-12)
    return f"{text} ({'seeds agree; ' if agree else ''}no spread in {resamples} resamples)"


NO_FLAG = "none (every seed predicts 2+ classes)"


def flag_cell(flag: str) -> str:
    """A table's ``flag`` cell: the one-class flag, or :data:`NO_FLAG` (an empty cell would read
    as "not checked")."""
    return flag if isinstance(flag, str) and flag else NO_FLAG


def format_seeds(per_seed: Sequence[float], digits: int = 1) -> str:
    """Each seed's score in percent, "40.2 / 38.1 / 44.0" (seeds sorted)."""
    return " / ".join("n/a" if pd.isna(value) else f"{100 * value:.{digits}f}" for value in per_seed)


def scores_wide(long: pd.DataFrame, reported: pd.DataFrame | None = None, digits: int = 1,
                keys: Sequence[str] | None = None, column: str = "fusion") -> pd.DataFrame:
    """Display table: one row per run and protocol (``keys``; default dataset, task, ``column``,
    protocol, ``column`` as in :func:`scores_long`), each metric as "mean [low, high]" in
    percent; with ``reported`` (tsfmicro.reported.reported()), the paper's values beside, "n/a"
    where the paper's value is not available."""
    if "no_spread" in long.columns:
        values = [format_score(row.mean, row.low, row.high, no_spread=row.no_spread, per_seed=row.per_seed,
                               resamples=row.resamples, digits=digits) for row in long.itertuples(index=False)]
    else:  # rows built by hand (mean, low, high only)
        values = [format_interval(m, lo, hi, digits) for m, lo, hi in zip(long["mean"], long["low"], long["high"])]
    table = long.assign(value=values)
    keys = list(keys) if keys is not None else ["dataset", "task", column, "protocol"]
    wide = table.pivot_table(index=keys, columns="metric", values="value", aggfunc="first",
                             sort=False)
    present = [m for m in METRIC_NAMES if m in wide.columns]
    wide = wide[present]
    wide.columns = [f"{METRIC_NAMES[m]} %" for m in wide.columns]
    if "per_seed" in long.columns:  # each seed's value beside the mean
        seeds = table.assign(seeds_text=[format_seeds(v, digits) for v in table["per_seed"]]).pivot_table(
            index=keys, columns="metric", values="seeds_text", aggfunc="first", sort=False)
        for metric in reversed(present):
            place = list(wide.columns).index(f"{METRIC_NAMES[metric]} %") + 1
            wide.insert(place, f"{METRIC_NAMES[metric]} per seed %", seeds[metric])
    wide = wide.reset_index()
    for extra in ("interval", "flag"):
        if extra in long.columns:
            found = long.drop_duplicates(keys).set_index(keys)[extra]
            wide[extra] = [found.get(tuple(row)) for row in wide[keys].itertuples(index=False)]
    if "flag" in wide.columns:
        wide["flag"] = wide["flag"].map(flag_cell)
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


def oracle_gain(runs: dict[tuple[str, str, str], Run], digits: int = 1,
                resamples: int = metrics.RESAMPLES) -> pd.DataFrame:
    """oracle − fixed per run, in percentage points: the mean over seeds and its 95 % paired
    subject x seed bootstrap interval (the same subjects and seeds drawn for both protocols;
    tsfmicro.metrics.paired_subject_seed_difference), "no spread" where every resample gave one
    value; the method in ``interval``."""
    rows = []
    for (dataset, task, fusion), run in runs.items():
        predictions = run.predictions
        found = metrics.paired_subject_seed_difference(
            predictions.assign(predicted=predictions["pred_oracle"]),
            predictions.assign(predicted=predictions["pred_fixed"]), "predicted", len(run.class_names),
            resamples=resamples)
        row = {"dataset": dataset, "task": task, "fusion": fusion}
        for metric, name in METRIC_NAMES.items():
            entry = found[metric]
            row[f"{name} pp"] = (f"{format_interval(entry['difference'], None, None, digits, '+')} "
                                 f"(no spread in {resamples} resamples)"
                                 if entry["no_spread"] else
                                 format_interval(entry["difference"], entry["low"], entry["high"], digits, "+"))
        row["interval"] = f"paired {interval_name(predictions['seed'].nunique(), resamples)}"
        rows.append(row)
    return pd.DataFrame(rows, columns=["dataset", "task", "fusion", *[f"{n} pp" for n in METRIC_NAMES.values()],
                                       "interval"])


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
def class_recall(runs: dict[tuple[str, str, str], Run], column: str, protocol: str = "fixed",
                 resamples: int = metrics.RESAMPLES) -> pd.DataFrame:
    """Recall of each class of each run (keyed by (dataset, task, X), X in ``column``): one row
    per run and class with ``support`` (clips per seed), ``mean`` (over seeds), ``per_seed``,
    ``low``, ``high`` (fractions; 95 % subject x seed bootstrap, tsfmicro.metrics.
    subject_seed_class_recall), ``no_spread``, ``interval`` (the method) and ``flag`` (a one-class
    model, :func:`one_class_flag`)."""
    column_name = f"pred_{check_protocol(protocol)}"
    rows = []
    for (dataset, task, variant), run in runs.items():
        names = run.class_names
        first = run.predictions[run.predictions["seed"] == run.predictions["seed"].min()]
        support = np.bincount(first["true"].astype(int), minlength=len(names))
        found = metrics.subject_seed_class_recall(run.predictions, column_name, len(names), resamples=resamples)
        interval = interval_name(run.predictions["seed"].nunique(), resamples)
        flag = one_class_flag(run.predictions, column_name, names)
        for k, name in enumerate(names):
            entry = found[k]
            rows.append({"dataset": dataset, "task": task, column: variant, "class_name": name,
                         "support": int(support[k]), "metric": "recall", "mean": entry["mean"],
                         "per_seed": tuple(entry["per_seed"]), "low": entry["low"], "high": entry["high"],
                         "no_spread": entry["no_spread"], "resamples": resamples, "interval": interval,
                         "flag": flag, "protocol": protocol})
    return pd.DataFrame(rows)


def class_recall_wide(recall: pd.DataFrame, column: str, digits: int = 1) -> pd.DataFrame:
    """:func:`class_recall` for display: one row per dataset, task and class (with its support),
    one column per variant, "mean [low, high]" in percent."""
    table = recall.assign(value=[format_row(row, digits) for _, row in recall.iterrows()])
    index = ["dataset", "task", "class_name", "support"]
    wide = table.pivot_table(index=index, columns=column, values="value", aggfunc="first", sort=False)
    variants = list(wide.columns)
    wide.columns = [f"{name} recall %" for name in variants]
    if "per_seed" in recall.columns:  # each seed's recall beside the mean
        seeds = table.assign(text=[format_seeds(v, digits) for v in table["per_seed"]]).pivot_table(
            index=index, columns=column, values="text", aggfunc="first", sort=False)
        for name in reversed(variants):
            wide.insert(list(wide.columns).index(f"{name} recall %") + 1, f"{name} per seed %", seeds[name])
    wide = wide.reset_index().rename(columns={"class_name": "class", "support": "clips"})
    if "interval" in recall.columns:
        wide["interval"] = "; ".join(dict.fromkeys(recall["interval"]))
    return wide


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
                          fusion: str = "ts_late", image_size: int | None = None) -> pd.DataFrame:
    """Parameters and forward GFLOPs per sample of the network with each temporal branch, at
    ``image_size`` (None: the preset's) (tsfmicro.model.count_parameters / count_flops; no training)."""
    from tsfmicro.model import count_flops, count_parameters, model_from_config

    rows = []
    for branch in branches:
        model = model_from_config({"preset": preset, "fusion": fusion, "temporal_branch": branch,
                                   "image_size": image_size}, num_classes)
        rows.append({"temporal branch": branch, "preset": preset, "input": f"{model.image_size} px",
                     "parameters (M)": round(count_parameters(model) / 1e6, 3),
                     "forward GFLOPs / sample": round(count_flops(model) / 1e9, 3)})
    return pd.DataFrame(rows)


def network_sizes(preset: str, archs: Sequence[str], num_classes: int = 5, column: str = "method") -> pd.DataFrame:
    """Parameters and forward GFLOPs per sample of each registered network (``arch``; TSFmicro as
    T-S late) at the ``preset``'s size, and the input it reads (tsfmicro.model.count_parameters /
    count_flops; no training)."""
    from tsfmicro.model import count_flops, count_parameters, model_from_config

    rows = []
    for arch in archs:
        model = model_from_config({"preset": preset, "arch": arch}, num_classes)
        rows.append({column: arch, "preset": preset, "input": f"{' + '.join(model.inputs)}, {model.image_size} px",
                     "parameters": count_parameters(model),
                     "forward GFLOPs / sample": round(count_flops(model) / 1e9, 4)})
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
        # "highest mean", not "best": whether the intervals separate it is said below
        sentences.append(start + f"the highest mean of the {len(group)} {what} is {best[column]}{paper} at {name} "
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
            sentences.append(f"Every interval overlaps {reference}'s, so these runs do not separate the {what}: "
                             f"the order of the means is inside noise.")
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
    """A fraction and its interval as percent text, "45.2 [31.0, 59.4]"; "n/a" when missing;
    "40.2 (no spread)" when the interval has zero width at the printed precision.

    ``sign="+"`` prints differences with their sign (oracle - fixed).
    """
    if mean is None or pd.isna(mean):
        return "n/a"

    def percent(value) -> str:  # + 0.0 turns a rounded -0.0 into 0.0 ("-0.0" reads as a loss)
        return f"{round(100 * float(value), digits) + 0.0:{sign}.{digits}f}"

    text = percent(mean)
    if not (low is None or high is None or pd.isna(low) or pd.isna(high)):
        # a zero-width interval is no certainty (seeds that agree, a one-class model): never "[x, x]"
        text += " (no spread)" if percent(low) == percent(high) else f" [{percent(low)}, {percent(high)}]"
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
    """One row per part, protocol and metric (``mean`` over seeds, ``per_seed``, ``low``, ``high``:
    fractions; ``no_spread``, ``flag``, ``interval``): first every clip of the run together (part
    WHOLE), then each dataset its clips come from (:func:`clip_parts`). Pooled within the part over
    all the task's classes, as tsfmicro.metrics.summarize; 95 % subject x seed bootstrap (subjects
    only with one seed), as :func:`scores_long`."""
    (run,) = as_runs(run)
    predictions = run.predictions.reset_index(drop=True)
    parts = clip_parts(predictions)
    groups = [(WHOLE, predictions)] + [(name, predictions[parts == name]) for name in sorted(set(parts) - {WHOLE})]
    seeds = predictions["seed"].nunique()
    rows = []
    for name, part in groups:
        clips = int((part["seed"] == part["seed"].iloc[0]).sum())
        for protocol in protocols:
            column = f"pred_{check_protocol(protocol)}"
            found = metrics.subject_seed_interval(part, column, len(run.class_names))
            flag = one_class_flag(part, column, run.class_names)
            for metric in METRIC_NAMES:
                entry = found[metric]
                rows.append({"part": name, "protocol": protocol, "metric": metric, "mean": entry["mean"],
                             "low": entry["low"], "high": entry["high"], "per_seed": tuple(entry["per_seed"]),
                             "no_spread": entry["no_spread"], "resamples": metrics.RESAMPLES, "flag": flag,
                             "interval": interval_name(seeds), "clips": clips,
                             "subjects": part["subject"].nunique()})
    return pd.DataFrame(rows)


def format_row(row, digits: int = 1) -> str:
    """:func:`format_score` of one row of :func:`scores_long` / :func:`part_scores` (a mapping or
    a pandas row); rows without ``no_spread`` are printed with their interval."""
    if "no_spread" not in row:
        return format_interval(row["mean"], row["low"], row["high"], digits)
    return format_score(row["mean"], row["low"], row["high"], no_spread=bool(row["no_spread"]),
                        per_seed=row["per_seed"], resamples=int(row["resamples"]), digits=digits)


def composite_scores(runs: dict[tuple[str, str, str], Run], protocols: Sequence[str] = PROTOCOLS) -> pd.DataFrame:
    """:func:`part_scores` of each run (keyed by (dataset, task, fusion), as
    study.chapter("composite").runs), with its ``fusion``."""
    parts = [part_scores(run, protocols).assign(fusion=fusion) for (_, _, fusion), run in runs.items()]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["part", "protocol", "metric", "mean", "low", "high", "per_seed", "no_spread", "resamples", "flag",
                 "interval", "clips", "subjects", "fusion"])


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


# ----------------------------------------------------------------------------- paired comparisons
# Where nothing is planted about which variant is best (fusion variants, temporal branches), the
# runs are compared in pairs on the same clips: reference minus each variant, with the same
# subjects and seeds drawn for both (tsfmicro.metrics.paired_subject_seed_difference).
VERDICTS = {"no difference": "no difference (every resample gives 0)",
            "reference higher": "{reference} higher (interval excludes 0)",
            "reference lower": "{reference} lower (interval excludes 0)",
            "inside noise": "inside noise (interval contains 0)",
            "not paired": "not compared (the runs have different numbers of seeds)"}


def paired_differences(runs: dict[tuple[str, str, str], Run], column: str, reference: str, metric: str = "uf1",
                       protocol: str = "fixed", resamples: int = metrics.RESAMPLES) -> pd.DataFrame:
    """One row per dataset/task and variant other than ``reference`` (runs keyed by (dataset,
    task, variant)): ``difference`` (reference minus variant, fraction), ``low``/``high`` (95 %
    paired subject x seed bootstrap), ``no_spread``, ``verdict`` (see
    tsfmicro.metrics.paired_subject_seed_difference), ``flag`` (:func:`one_class_flag` of the
    variant), ``interval`` (the method); no rows where the reference was not run."""
    predicted = f"pred_{check_protocol(protocol)}"
    rows = []
    for (dataset, task, variant), run in runs.items():
        base = runs.get((dataset, task, reference))
        if variant == reference or base is None:
            continue
        seeds = run.predictions["seed"].nunique()
        if base.predictions["seed"].nunique() != seeds:  # e.g. a section's own seeds: nothing to pair
            found = {"difference": float("nan"), "low": float("nan"), "high": float("nan"), "no_spread": False,
                     "verdict": "not paired"}
        else:
            found = metrics.paired_subject_seed_difference(base.predictions, run.predictions, predicted,
                                                           len(run.class_names), resamples=resamples)[metric]
        rows.append({"dataset": dataset, "task": task, column: variant, "metric": metric, "protocol": protocol,
                     "difference": found["difference"], "low": found["low"], "high": found["high"],
                     "no_spread": found["no_spread"], "verdict": found["verdict"],
                     "flag": one_class_flag(run.predictions, predicted, run.class_names),
                     "interval": f"paired {interval_name(seeds, resamples)}", "resamples": resamples})
    return pd.DataFrame(rows, columns=["dataset", "task", column, "metric", "protocol", "difference", "low", "high",
                                       "no_spread", "verdict", "flag", "interval", "resamples"])


def paired_table(paired: pd.DataFrame, column: str, reference: str, digits: int = 1) -> pd.DataFrame:
    """:func:`paired_differences` for display: "reference − variant" in points with its interval
    (a zero-width one as "no spread"), the verdict in words, the flag and the method."""
    name = METRIC_NAMES[paired["metric"].iloc[0]] if len(paired) else "UF1"
    return pd.DataFrame({
        "dataset": paired["dataset"], "task": paired["task"], column: paired[column],
        f"{reference} − variant, {name} points": [
            (f"{format_interval(row.difference, None, None, digits, '+')} (no spread in {row.resamples} resamples)"
             if row.no_spread else
             format_interval(row.difference, row.low, row.high, digits, "+")) for row in paired.itertuples()],
        "reading": [VERDICTS[v].format(reference=reference) for v in paired["verdict"]],
        "flag": paired["flag"].map(flag_cell), "interval": paired["interval"]})


def paired_sentence(paired: pd.DataFrame, column: str, reference: str, what: str) -> str:
    """What the paired intervals support, and nothing more: per dataset/task, the variants that
    differ from ``reference`` (interval excluding 0, with the sign's direction), those inside
    noise, those identical; one-class variants named. No ranking: nothing is planted about which
    variant is best."""
    if paired.empty:
        return f"No {what} other than {reference} were run beside it, so nothing is compared."
    name = METRIC_NAMES[paired["metric"].iloc[0]]
    sentences = []
    for (dataset, task), group in paired.groupby(["dataset", "task"], sort=False):
        protocol = group["protocol"].iloc[0]
        start = (f"On {dataset} {task} ({protocol} protocol, {name}, {reference} minus each of the {what}, "
                 f"paired bootstrap over subjects and seeds):")
        parts = []
        for verdict, words in (("reference higher", f"{reference} is higher than"),
                               ("reference lower", f"{reference} is lower than")):
            rows = group[group["verdict"] == verdict]
            if len(rows):
                listed = ", ".join(f"{row[column]} ({format_interval(row['difference'], row['low'], row['high'], 1, '+')}"
                                   f" points)" for _, row in rows.iterrows())
                parts.append(f"{words} {listed}, the interval excluding 0")
        noise = group[group["verdict"] == "inside noise"]
        if len(noise):
            parts.append(f"{', '.join(map(str, noise[column]))}: the interval contains 0, so these runs do not "
                         f"separate {'it' if len(noise) == 1 else 'them'} from {reference}")
        same = group[group["verdict"] == "no difference"]
        if len(same):
            parts.append(f"{', '.join(map(str, same[column]))}: no difference in any resample")
        unpaired = group[group["verdict"] == "not paired"]
        if len(unpaired):
            parts.append(f"{', '.join(map(str, unpaired[column]))}: not compared (different numbers of seeds)")
        sentences.append(f"{start} {'; '.join(parts)}.")
        flagged = group[group["flag"] != ""]
        for _, row in flagged.iterrows():
            sentences.append(f"{row[column]} is a degenerate model ({row['flag']}): its score says nothing about "
                             f"the variant.")
    return " ".join(sentences)


def flag_sentence(long: pd.DataFrame, column: str, protocol: str = "fixed") -> str:
    """The degenerate (one-class) runs of a :func:`scores_long` table under ``protocol``, named
    in words; "" when there is none."""
    if "flag" not in long.columns:
        return ""
    part = long[(long["protocol"] == protocol) & (long["flag"].fillna("") != "")].drop_duplicates(
        ["dataset", "task", column])
    return " ".join(f"{row[column]} on {row['dataset']} {row['task']} is a degenerate model ({row['flag']}, "
                    f"{protocol} protocol): its score is what predicting one class gives, not a measurement of "
                    f"{row[column]}." for _, row in part.iterrows())
