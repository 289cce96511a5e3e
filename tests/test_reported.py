"""The paper's reported numbers: one file, a source per value, missing means missing."""
from __future__ import annotations

import math

import pytest

from tsfmicro import reported

MAIN_GRID = [("casme2", "5class"), ("casme2", "3class"), ("samm", "5class"),
             ("samm", "3class"), ("casme3", "7class"), ("casme3", "4class")]


def test_file_has_a_source_for_every_cell_and_unique_keys():
    table = reported.reported()
    assert list(table.columns) == list(reported.COLUMNS)
    assert not table.duplicated(["dataset", "task", "fusion", "metric"]).any()
    assert (table.source.str.len() > 0).all()
    assert set(table.metric) == set(reported.METRICS)
    filled = table.dropna(subset=["value"])
    assert filled.value.between(0, 100).all()
    assert filled.source.str.contains("2505.16372").all()
    assert filled.source.str.contains("table").all(), "a filled value must name the paper's table"
    assert table[table.value.isna()].source.str.contains("not in our copy").all()


def test_only_the_two_values_we_have_are_filled():
    table = reported.reported().dropna(subset=["value"])
    values = {(r.dataset, r.task, r.fusion, r.metric): r.value for r in table.itertuples()}
    assert values == {("casme2", "5class", "ts_late", "acc"): 87.50,
                      ("casme2", "5class", "ts_early", "acc"): 82.25}


def test_every_cell_of_the_main_table_and_the_ablation_is_present():
    table = reported.reported()
    keys = set(zip(table.dataset, table.task, table.fusion, table.metric))
    for dataset, task in MAIN_GRID:
        for metric in reported.METRICS:
            assert (dataset, task, "ts_late", metric) in keys
    for fusion in ("ts_early", "t_to_s", "s_to_t", "ts_late"):
        for metric in reported.METRICS:
            assert ("casme2", "5class", fusion, metric) in keys


def test_lookup_returns_nan_for_missing_never_a_guess():
    assert reported.lookup("casme2", "5class", "ts_late", "accuracy") == pytest.approx(87.50)
    assert reported.lookup("casme2", "5class", "ts_early", "ACC") == pytest.approx(82.25)
    assert math.isnan(reported.lookup("samm", "5class", "ts_late", "uf1"))
    assert math.isnan(reported.lookup("smic", "3class", "ts_late", "uar"))  # not in the file at all
    assert reported.format_value(float("nan")) == "n/a"
    assert reported.format_value(87.5) == "87.50"
    with pytest.raises(KeyError):
        reported.lookup("casme2", "5class", "ts_late", "auc")


def test_wide_table_keeps_missing_cells_missing():
    wide = reported.reported_wide([("casme2", "5class"), ("samm", "3class")], fusions=("ts_late", "ts_early"))
    casme2 = wide.set_index(["dataset", "task", "fusion"]).loc[("casme2", "5class", "ts_late")]
    assert casme2["acc"] == pytest.approx(87.50) and math.isnan(casme2["uf1"])
    assert "fusion ablation table" in casme2["source"]
    samm = wide.set_index(["dataset", "task", "fusion"]).loc[("samm", "3class", "ts_late")]
    assert samm[["acc", "uf1", "uar"]].isna().all()
    assert samm["source"] == "not in our copy of the paper"


def test_field_numbers_are_sourced_and_say_how_epochs_were_chosen():
    table = reported.field_reported()
    assert list(table.columns) == list(reported.FIELD_COLUMNS)
    assert not table.duplicated(["method", "part", "metric", "selection"]).any()
    assert table.value.between(0, 100).all() and (table.source.str.len() > 0).all()
    assert table.selects_on_test.isin([True, False]).all()
    # the facts of field.md, spot-checked: MEB's same network with and without test-set selection
    ststnet = table[(table.method.str.startswith("STSTNet")) & (table.part == "composite")]
    assert dict(zip(ststnet.selects_on_test, ststnet.value)) == {False: 71.27, True: 77.40}
    causal = table[(table.method.str.startswith("CausalNet")) & (table.part == "composite")]
    assert dict(zip(causal.metric, causal.value)) == {"uf1": 89.76, "uar": 90.20, "acc": 91.18}
    assert causal.selects_on_test.all()
    rough = table[table.note.str.len() > 0]
    assert list(rough.value) == [59.0] and "about" in rough.note.iloc[0]
