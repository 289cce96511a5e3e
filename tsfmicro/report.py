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
            summary = run.metrics["protocols"][protocol]
            row = {**describe(run), "protocol": protocol}
            one_seed = len(summary["per_seed"]) == 1
            for name in METRICS:
                low, high = (summary["per_seed"][0]["bootstrap95"][name] if one_seed
                             else summary["seed_ci95"][name])
                row.update({name: summary["mean"][name], f"{name}_low": _number(low), f"{name}_high": _number(high)})
            row["interval"] = "subject bootstrap 95%" if one_seed else f"t over {len(summary['per_seed'])} seeds 95%"
            rows.append(row)
    return pd.DataFrame(rows)


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
    return pd.DataFrame(run.metrics["protocols"][_check(protocol)]["per_class"]).assign(protocol=protocol)


def confusion_table(run: RunLike, protocol: str = "fixed", normalize: bool = False) -> pd.DataFrame:
    """Confusion matrix (rows true, columns predicted), all seeds pooled; ``normalize``: rows sum to 1."""
    (run,) = as_runs(run)
    matrix = np.asarray(run.metrics["protocols"][_check(protocol)]["confusion"], dtype=float)
    if normalize:
        matrix = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    names = run.class_names
    return pd.DataFrame(matrix, index=pd.Index(names, name="true"), columns=pd.Index(names, name="predicted"))


def per_subject_table(run: RunLike, protocol: str = "fixed") -> pd.DataFrame:
    """Per held-out subject, mean over seeds; each subject scored over the classes it shows."""
    (run,) = as_runs(run)
    column = f"pred_{_check(protocol)}"
    per_seed = [
        metrics.scores_by(part, "subject", "true", column).assign(seed=seed)
        for seed, part in run.predictions.groupby("seed")
    ]
    table = pd.concat(per_seed).groupby("subject", sort=False)[["samples", *METRICS]].mean().reset_index()
    table["samples"] = table["samples"].astype(int)
    epochs = run.predictions.groupby("subject")[f"epoch_{protocol}"].mean().rename("mean_epoch")
    return table.merge(epochs, on="subject").assign(protocol=protocol)


def evaluate(run: RunLike, protocols: Sequence[str] = PROTOCOLS) -> dict:
    """Recompute a run's metrics from its predictions.csv (what ``tsfmicro evaluate`` prints)."""
    (run,) = as_runs(run)
    summary = metrics.summarize(run.predictions, run.class_names)
    summary["protocols"] = {p: summary["protocols"][_check(p)] for p in protocols}
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


def _check(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    return protocol


def _number(value) -> float:
    return float("nan") if value is None else float(value)


# ----------------------------------------------------------------------------- the book's result tables
# Shapes of the tables above for the notebooks (runs keyed by (dataset, task, fusion)); nothing is
# recomputed here.
METRIC_NAMES = {"accuracy": "ACC", "uf1": "UF1", "uar": "UAR"}


def scores_long(runs: dict[tuple[str, str, str], Run]) -> pd.DataFrame:
    """One row per run, protocol and metric: ``mean``, ``low``, ``high`` (fractions) from
    :func:`summary_table` (95 % t interval over seeds; a subject bootstrap
    interval when there is one seed)."""
    wide = summary_table(list(runs.values()))
    keys = ["dataset", "task", "fusion", "protocol", "seeds", "interval"]
    parts = [wide[keys].assign(metric=metric, mean=wide[metric], low=wide[f"{metric}_low"],
                               high=wide[f"{metric}_high"]) for metric in METRIC_NAMES]
    return pd.concat(parts, ignore_index=True)


def scores_wide(long: pd.DataFrame, reported: pd.DataFrame | None = None, digits: int = 1) -> pd.DataFrame:
    """Display table: one row per run and protocol, each metric as "mean [low, high]" in
    percent; with ``reported`` (tsfmicro.reported.reported()), the paper's values beside,
    "n/a" where the paper's value is not available."""
    table = long.assign(value=[format_interval(m, lo, hi, digits)
                               for m, lo, hi in zip(long["mean"], long["low"], long["high"])])
    keys = ["dataset", "task", "fusion", "protocol"]
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
            wide[f"paper {name} %"] = [
                format_value(lookup.get((d, t, f), float("nan")))
                for d, t, f in zip(wide.dataset, wide.task, wide.fusion)]
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


def shift_table(scores: pd.DataFrame, digits: int = 1) -> pd.DataFrame:
    """Shifted annotations (tsfmicro.sensitivity.shift_scores) for display: one row per kind and
    shift, UF1/UAR in percent with their subject-bootstrap interval, the change of each from shift
    0 in percentage points with its paired subject-bootstrap interval."""
    shown = pd.DataFrame({
        "moved": scores["kind"], "shift %": scores["percent"].map(lambda p: f"{p:+g}" if p else "0"),
        "frames moved (median)": scores["median_frames_moved"].map(lambda v: f"{v:g}"),
        "clips moved": [f"{m} of {n}" for m, n in zip(scores["clips_moved"], scores["clips"])],
    })
    for metric in ("uf1", "uar"):
        name = METRIC_NAMES[metric]
        shown[f"{name} %"] = [format_interval(m, lo, hi, digits) for m, lo, hi in
                              zip(scores[metric], scores[f"{metric}_low"], scores[f"{metric}_high"])]
        shown[f"{name} change pp"] = [format_interval(m, lo, hi, digits, "+") for m, lo, hi in zip(
            scores[f"delta_{metric}"], scores[f"delta_{metric}_low"], scores[f"delta_{metric}_high"])]
    return shown


def apex_comparison_table(runs: dict[str, Run], difference: pd.DataFrame, protocol: str = "fixed",
                          digits: int = 1) -> pd.DataFrame:
    """The runs with the annotated and the automatic apex (``runs``: apex -> Run) and their
    difference (tsfmicro.sensitivity.apex_difference), ACC/UF1/UAR in percent with intervals."""
    summary = summary_table(list(runs.values()), protocols=[protocol])
    rows = []
    for apex, (_, row) in zip(runs, summary.iterrows()):
        rows.append({"apex": apex, **{f"{name} %": format_interval(row[metric], row[f"{metric}_low"],
                                                                    row[f"{metric}_high"], digits)
                                      for metric, name in METRIC_NAMES.items()}, "interval": row["interval"]})
    change = difference.set_index("metric")
    rows.append({"apex": "automatic − annotated (pp)",
                 **{f"{name} %": format_interval(change.loc[metric, "difference"], change.loc[metric, "low"],
                                                 change.loc[metric, "high"], digits, "+")
                    for metric, name in METRIC_NAMES.items()},
                 "interval": change["interval"].iloc[0]})
    return pd.DataFrame(rows)


def per_class_by_run(runs: dict[tuple[str, str, str], Run], protocol: str = "fixed") -> pd.DataFrame:
    """Per-class support, precision, recall and F1 of each run, all seeds pooled
    (:func:`per_class_table` of each, with the run's dataset, task and fusion)."""
    parts = [per_class_table(run, protocol).assign(dataset=dataset, task=task, fusion=fusion)
             for (dataset, task, fusion), run in runs.items()]
    table = pd.concat(parts, ignore_index=True)
    first = ["dataset", "task", "fusion", "class_name", "support", "predicted",
             "precision", "recall", "f1"]
    return table[[c for c in first if c in table.columns]]


def model_sizes(presets=("paper", "tiny"), fusions=None, num_classes: int = 5) -> pd.DataFrame:
    """Parameters and forward GFLOPs per sample of each preset and fusion variant
    (tsfmicro.model.count_parameters / count_flops; no training involved)."""
    from tsfmicro.model import FUSIONS, PRESETS, build_model, count_flops, count_parameters

    rows = []
    for preset in presets:
        for fusion in fusions or FUSIONS:
            model = build_model(preset, num_classes=num_classes, fusion=fusion)
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
