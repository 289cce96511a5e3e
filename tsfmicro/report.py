"""Tables from finished runs, for the ``report``/``evaluate`` commands and the book.

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
from tsfmicro.engine.runs import Run, load_run
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
