"""Published numbers, read from sourced data files: the paper's own and other methods'.

``tsfmicro/data/paper_reported.csv`` has one row per (dataset, task, fusion, metric) cell
that the paper reports, with the value in percent and where it comes from. Only values
we actually have are filled in; every other cell is present with an empty value, read
as missing (NaN) and shown as "not available", never guessed or interpolated.
"""
from __future__ import annotations

import math
from importlib import resources

import pandas as pd

METRICS = ("acc", "uf1", "uar")
COLUMNS = ("dataset", "task", "fusion", "metric", "value", "table", "source")
MISSING_TEXT = "n/a"


def reported() -> pd.DataFrame:
    """All cells the paper reports, one row each; ``value`` is a float in percent or NaN."""
    with resources.files("tsfmicro.data").joinpath("paper_reported.csv").open("r", encoding="utf-8") as handle:
        table = pd.read_csv(handle, dtype={"value": "float64"}, keep_default_na=False,
                            na_values={"value": [""]})
    missing_columns = set(COLUMNS) - set(table.columns)
    if missing_columns:
        raise ValueError(f"paper_reported.csv lacks columns {sorted(missing_columns)}")
    return table.loc[:, list(COLUMNS)]


def lookup(dataset: str, task: str, fusion: str = "ts_late", metric: str = "acc") -> float:
    """One reported value in percent, or NaN when the paper's value is not available."""
    table = reported()
    hit = table[(table.dataset == dataset) & (table.task == task)
                & (table.fusion == fusion) & (table.metric == normalise_metric(metric))]
    return float(hit.value.iloc[0]) if len(hit) else math.nan


def normalise_metric(name: str) -> str:
    """Accept the spellings used across the package: accuracy/acc, UF1/f1, UAR/recall."""
    key = name.lower().replace("-", "_")
    aliases = {"accuracy": "acc", "acc": "acc", "uf1": "uf1", "macro_f1": "uf1", "f1": "uf1",
               "uar": "uar", "macro_recall": "uar", "recall": "uar"}
    if key not in aliases:
        raise KeyError(f"unknown metric {name!r}; expected one of {METRICS}")
    return aliases[key]


def reported_wide(datasets_tasks=None, fusions=("ts_late",)) -> pd.DataFrame:
    """Reported values as a wide table: one row per (dataset, task, fusion), one column per
    metric (percent, NaN when missing), plus the distinct sources of that row's values."""
    table = reported()
    table = table[table.fusion.isin(fusions)]
    if datasets_tasks is not None:
        wanted = set(map(tuple, datasets_tasks))
        table = table[[(d, t) in wanted for d, t in zip(table.dataset, table.task)]]
    wide = table.set_index(["dataset", "task", "fusion", "metric"]).value.unstack("metric")
    wide = wide.reindex(columns=list(METRICS))
    sources = (table.dropna(subset=["value"]).groupby(["dataset", "task", "fusion"]).source
               .agg(lambda s: "; ".join(sorted(set(s)))))
    wide["source"] = sources.reindex(wide.index).fillna("not in our copy of the paper")
    return wide.reset_index()


FIELD_COLUMNS = ("method", "part", "metric", "value", "selection", "selects_on_test", "source", "note")
FIELD_PARTS = ("composite", "casme2", "samm", "smic")


def field_reported() -> pd.DataFrame:
    """Other methods' published MEGC2019 composite results (``tsfmicro/data/field_reported.csv``).

    One row per (method, part, metric, selection): the value in percent, how each held-out
    subject's epoch was chosen (``selection``; ``selects_on_test`` True when it was chosen on
    that subject's own test clips, which makes the value an upper bound), the source (public
    repository and commit) and a note (e.g. a value the source gives only roughly).
    """
    with resources.files("tsfmicro.data").joinpath("field_reported.csv").open("r", encoding="utf-8") as handle:
        table = pd.read_csv(handle, dtype={"value": "float64", "selects_on_test": str}, keep_default_na=False,
                            na_values={"value": [""]})
    missing_columns = set(FIELD_COLUMNS) - set(table.columns)
    if missing_columns:
        raise ValueError(f"field_reported.csv lacks columns {sorted(missing_columns)}")
    bad_parts = sorted(set(table.part) - set(FIELD_PARTS))
    if bad_parts:
        raise ValueError(f"field_reported.csv: unknown part(s) {bad_parts}; valid: {', '.join(FIELD_PARTS)}")
    table["selects_on_test"] = table.selects_on_test.map({"true": True, "false": False})
    return table.loc[:, list(FIELD_COLUMNS)]


BASELINE_COLUMNS = ("network", *FIELD_COLUMNS)


def baselines_reported() -> pd.DataFrame:
    """The published results of the networks the baselines chapter retrains (STSTNet, OFF-ApexNet,
    HTNet; ``tsfmicro/data/baselines_reported.csv``, facts of shared/reference/baselines.md), as
    :func:`field_reported` with ``network`` (the registered ``arch``) first. ``selects_on_test`` is
    None where the source does not say how the epoch was chosen; ``note`` says what is known to be
    wrong or unverified about a value (e.g. STSTNet's "UAR", which is a macro precision)."""
    with resources.files("tsfmicro.data").joinpath("baselines_reported.csv").open("r", encoding="utf-8") as handle:
        table = pd.read_csv(handle, dtype={"value": "float64", "selects_on_test": str}, keep_default_na=False,
                            na_values={"value": [""]})
    missing_columns = set(BASELINE_COLUMNS) - set(table.columns)
    if missing_columns:
        raise ValueError(f"baselines_reported.csv lacks columns {sorted(missing_columns)}")
    bad_parts = sorted(set(table.part) - set(FIELD_PARTS))
    if bad_parts:
        raise ValueError(f"baselines_reported.csv: unknown part(s) {bad_parts}; valid: {', '.join(FIELD_PARTS)}")
    table["selects_on_test"] = [{"true": True, "false": False}.get(value) for value in table.selects_on_test]
    return table.loc[:, list(BASELINE_COLUMNS)]


SPOTTING_COLUMNS = ("method", "dataset", "kind", "truths", "tp", "fp", "fn", "precision", "recall", "f1",
                    "protocol", "source", "note")


def spotting_reported() -> pd.DataFrame:
    """Published spotting scores on long videos (``tsfmicro/data/spotting_reported.csv``: the MDMD
    MEGC2020 baseline, shared/reference/long_videos.md section 5), one row per (method, dataset,
    kind); ``protocol`` says how they were computed (their protocol: not ours, whose spotter is only
    "MDMD-like")."""
    with resources.files("tsfmicro.data").joinpath("spotting_reported.csv").open("r", encoding="utf-8") as handle:
        table = pd.read_csv(handle, keep_default_na=False, na_values={"f1": [""]})
    missing_columns = set(SPOTTING_COLUMNS) - set(table.columns)
    if missing_columns:
        raise ValueError(f"spotting_reported.csv lacks columns {sorted(missing_columns)}")
    return table.loc[:, list(SPOTTING_COLUMNS)]


def format_value(value: float, digits: int = 2) -> str:
    """Percent with fixed digits, or ``n/a`` for a missing value."""
    return MISSING_TEXT if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.{digits}f}"
