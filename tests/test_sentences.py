"""Generated sentences checked against the numbers they cite (issue 18, point 4): for each
sentence generator of the chapters, hand-made tables where the comparison goes each way, and the
comparison word must follow the sign (no training)."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from tsfmicro import chapters, report
from tsfmicro.chapters import ablation, composite, cross_dataset, temporal_branch
from tests.test_statistics import frame, noisy, run_from


# ----------------------------------------------------------------------------- 06 cross-dataset
def matrix(worst: float, loso: float, loso_flag: str = "") -> pd.DataFrame:
    """casme2 <-> samm: the casme2 -> samm cell scores ``worst`` (the lowest off the diagonal),
    samm's own LOSO ``loso``."""
    rows = [("casme2", "casme2", True, 0.9, ""), ("casme2", "samm", False, worst, ""),
            ("samm", "casme2", False, 0.95, ""), ("samm", "samm", True, loso, loso_flag)]
    return pd.DataFrame([{"train": a, "test": b, "own": own, "metric": "uf1", "protocol": "fixed", "mean": m,
                          "low": m - 0.05, "high": m + 0.05, "flag": flag} for a, b, own, m, flag in rows])


def test_transfer_sentence_says_below_when_transfer_loses():
    text = cross_dataset.transfer_sentence(matrix(0.30, 0.70))
    assert "tested on SAMM: UF1 30.0 %, 40.0 points below SAMM trained on its own subjects (LOSO, 70.0 %)." in text
    assert "above" not in text and "no loss" not in text


def test_transfer_sentence_says_above_and_no_loss_when_transfer_beats_loso():
    """The issue's case: the worst direction at 40.1 % against a LOSO of 24.2 % must not read
    "points more" after "transfers worst" as if it were a loss."""
    text = cross_dataset.transfer_sentence(matrix(0.401, 0.242))
    assert ("UF1 40.1 %, 15.9 points above SAMM trained on its own subjects (LOSO, 24.2 %): these runs show no "
            "loss from changing dataset in this direction.") in text
    assert "below" not in text and "less" not in text


def test_transfer_sentence_says_the_same_at_the_printed_precision():
    text = cross_dataset.transfer_sentence(matrix(0.50004, 0.5))
    assert "the same as SAMM trained on its own subjects (LOSO, 50.0 %)" in text
    assert "above" not in text and "below" not in text


def test_transfer_sentence_names_a_one_class_loso_cell():
    text = cross_dataset.transfer_sentence(matrix(0.401, 1 / 3, "one-class model: only 'negative' (seeds 0, 1 of 2)"))
    assert ("The LOSO cell of SAMM is a degenerate model (one-class model: only 'negative' (seeds 0, 1 of 2)): "
            "its 33.3 % is what predicting one class scores") in text


# ----------------------------------------------------------------------------- 05 composite
def parts(fixed: float, oracle: float, flag: str = "") -> pd.DataFrame:
    return pd.DataFrame([{"part": report.WHOLE, "protocol": protocol, "metric": "uf1", "mean": value,
                          "low": value - 0.1, "high": value + 0.1, "flag": flag}
                         for protocol, value in (("fixed", fixed), ("oracle", oracle))])


def test_composite_sentence_calls_the_oracle_an_upper_bound_only_when_it_is_higher():
    higher = composite.composite_sentence(parts(0.5, 0.6))
    assert "gives 60.0 % (+10.0 points): an upper bound, not an estimate." in higher
    lower = composite.composite_sentence(parts(0.6, 0.5))
    assert "gives 50.0 % (-10.0 points): lower than the fixed protocol" in lower and "upper bound" not in lower
    same = composite.composite_sentence(parts(0.5, 0.50001))
    assert "(+0.0 points): no higher than the fixed protocol" in same and "upper bound" not in same


def test_composite_sentence_names_a_one_class_model():
    text = composite.composite_sentence(parts(1 / 3, 0.4, "one-class model: only 'negative' (seed 0 of 1)"))
    assert text.endswith("The fixed-protocol model is degenerate (one-class model: only 'negative' (seed 0 of 1)).")
    part = pd.concat([parts(0.5, 0.6), parts(1 / 3, 0.4, "one-class model: only 'negative' (seed 0 of 1)").assign(
        part="casme2")], ignore_index=True)
    assert composite.composite_sentence(part).endswith(
        "On its CASME II clips the fixed-protocol model predicts one class (one-class model: only 'negative' "
        "(seed 0 of 1)).")


# ----------------------------------------------------------------------------- 02 and 07 paired comparisons
def paired_rows(*rows) -> pd.DataFrame:
    return pd.DataFrame([{"dataset": "casme2", "task": "5class", "fusion": name, "metric": "uf1",
                          "protocol": "fixed", "difference": d, "low": lo, "high": hi,
                          "no_spread": lo == hi, "verdict": verdict, "flag": flag}
                         for name, d, lo, hi, verdict, flag in rows])


def test_paired_sentence_says_higher_or_lower_only_where_the_interval_excludes_zero():
    text = report.paired_sentence(paired_rows(
        ("ts_early", 0.10, 0.04, 0.16, "reference higher", ""),
        ("t_to_s", -0.08, -0.14, -0.02, "reference lower", ""),
        ("s_to_t", 0.02, -0.05, 0.09, "inside noise", ""),
        ("temporal_only", 0.0, 0.0, 0.0, "no difference", "")), "fusion", "ts_late", "fusion variants")
    assert "ts_late is higher than ts_early (+10.0 [+4.0, +16.0] points), the interval excluding 0" in text
    assert "ts_late is lower than t_to_s (-8.0 [-14.0, -2.0] points), the interval excluding 0" in text
    assert "s_to_t: the interval contains 0, so these runs do not separate it from ts_late" in text
    assert "temporal_only: no difference in any resample" in text
    assert "best" not in text  # no ranking: nothing is planted about which variant is best


def test_paired_sentence_inside_noise_never_claims_an_order_and_names_degenerate_variants():
    text = report.paired_sentence(paired_rows(
        ("ts_early", 0.05, -0.02, 0.12, "inside noise", ""),
        ("spatial_only", 0.3, -0.1, 0.5, "inside noise", "one-class model: only 'other' (seed 0 of 2)")),
        "fusion", "ts_late", "fusion variants")
    assert "higher than" not in text and "lower than" not in text
    assert "ts_early, spatial_only: the interval contains 0, so these runs do not separate them" in text
    assert "spatial_only is a degenerate model (one-class model: only 'other' (seed 0 of 2))" in text
    assert report.paired_sentence(paired_rows(), "fusion", "ts_late", "fusion variants").startswith("No fusion")


def page(module, name: str, runs: dict, section: dict, preset: str = "tiny"):
    """A chapter page over hand-made runs (no study, no training)."""
    parameters = SimpleNamespace(section=lambda _: SimpleNamespace(**section), params={"preset": preset},
                                 section_seeds=lambda _: [0, 1], seeds=[0, 1])
    built = module.CHAPTER.page(SimpleNamespace(parameters=parameters, source="SYNTHETIC"), chapters.get(name))
    built.__dict__["runs"] = runs
    return built


def test_ablation_summary_reports_what_the_paired_intervals_support_each_way():
    good = pd.concat([noisy(0, 0.9), noisy(1, 0.9)], ignore_index=True)
    poor = pd.concat([noisy(0, 0.3, rng_seed=5), noisy(1, 0.3, rng_seed=5)], ignore_index=True)
    key = ("casme2", "3class")
    section = {"dataset": "casme2", "task": "3class", "fusions": ("ts_late", "spatial_only"), "seeds": None}
    above = page(ablation, "ablation", {(*key, "ts_late"): run_from(good), (*key, "spatial_only"): run_from(poor)},
                 section).summary()
    assert "ts_late is higher than spatial_only" in above and "lower than" not in above
    below = page(ablation, "ablation", {(*key, "ts_late"): run_from(poor), (*key, "spatial_only"): run_from(good)},
                 section).summary()
    assert "ts_late is lower than spatial_only" in below and "higher than" not in below
    assert "best" not in above + below
    same = page(ablation, "ablation", {(*key, "ts_late"): run_from(good), (*key, "spatial_only"): run_from(good)},
                section).summary()
    assert "spatial_only: no difference in any resample" in same
    # a one-class ts_late is named
    subjects, true = np.repeat(["s0", "s1", "s2"], 3), np.tile([0, 1, 2], 3)
    flat = pd.concat([frame(0, subjects, true, np.zeros(9, int)), frame(1, subjects, true, np.zeros(9, int))])
    flagged = page(ablation, "ablation", {(*key, "ts_late"): run_from(flat)}, section).summary()
    assert "ts_late is a degenerate model (one-class model: only 'negative' (seeds 0, 1 of 2))" in flagged


def test_temporal_branch_summary_compares_pairs_against_retention():
    good = pd.concat([noisy(0, 0.9), noisy(1, 0.9)], ignore_index=True)
    poor = pd.concat([noisy(0, 0.3, rng_seed=5), noisy(1, 0.3, rng_seed=5)], ignore_index=True)
    key = ("casme2", "3class")
    section = {"dataset": "casme2", "task": "3class", "variants": ("retention", "conv"), "seeds": None}
    built = page(temporal_branch, "temporal_branch", {(*key, "retention"): run_from(poor),
                                                      (*key, "conv"): run_from(good)}, section)
    built.__dict__["sizes"] = pd.DataFrame([
        {"temporal branch": b, "preset": "tiny", "input": "112 px", "parameters (M)": p,
         "forward GFLOPs / sample": f} for b, p, f in (("retention", 1.0, 0.2), ("conv", 0.9, 0.1))])
    text = built.summary()
    assert "retention is lower than conv" in text and "higher than" not in text
    assert "paired bootstrap over subjects and seeds" in text


# ----------------------------------------------------------------------------- 09 and 07's older conclusion
def long_scores(rows) -> pd.DataFrame:
    return pd.DataFrame([{"dataset": "samm", "task": "5class", "option": v, "protocol": "fixed", "metric": "uf1",
                          "mean": m, "low": lo, "high": hi} for v, m, lo, hi in rows])


def test_variant_conclusion_says_above_or_below_with_the_sign_and_highest_mean_not_best():
    up = report.variant_conclusion(long_scores([("cross_entropy", 0.3, 0.25, 0.35), ("weighted", 0.6, 0.5, 0.7)]),
                                   "option", "cross_entropy", "options")
    assert "in UF1 points: weighted +30.0." in up and "Weighted lies wholly above it" in up and "best" not in up
    down = report.variant_conclusion(long_scores([("cross_entropy", 0.6, 0.5, 0.7), ("weighted", 0.3, 0.25, 0.35)]),
                                     "option", "cross_entropy", "options")
    assert "in UF1 points: weighted -30.0." in down and "Weighted lies wholly below it" in down
    noise = report.variant_conclusion(long_scores([("cross_entropy", 0.5, 0.3, 0.7), ("weighted", 0.55, 0.35, 0.75)]),
                                      "option", "cross_entropy", "options")
    assert noise.endswith("the order of the means is inside noise.")


@pytest.mark.parametrize("flag, expected", [("", ""), ("one-class model: only 'other' (seed 0 of 1)",
                                                        "weighted on samm 5class is a degenerate model")])
def test_flag_sentence_names_only_flagged_runs(flag, expected):
    long = long_scores([("cross_entropy", 0.5, 0.4, 0.6), ("weighted", 0.2, 0.2, 0.2)]).assign(
        flag=["", flag])
    text = report.flag_sentence(long, "option")
    assert text.startswith(expected) and "cross_entropy" not in text


def test_rare_class_sentence_never_cites_a_zero_width_interval():
    recall = pd.DataFrame([{"dataset": "samm", "task": "5class", "option": option, "class_name": name,
                            "support": support, "mean": mean, "low": mean, "high": mean, "per_seed": (mean, mean),
                            "no_spread": True, "resamples": 1000}
                           for option in ("cross_entropy", "weighted")
                           for name, support, mean in (("anger", 2, 0.0), ("other", 9, 0.5))])
    from tsfmicro.chapters import imbalance

    text = imbalance.rare_class_sentence(recall, "option")
    assert "[0.0, 0.0]" not in text
    assert "is recalled 0.0 (seeds agree; no spread in 1000 resamples) % with cross_entropy" in text


def test_a_rounded_negative_zero_prints_as_zero():
    assert report.format_interval(-0.0001, -0.02, 0.055, 1, "+") == "+0.0 [-2.0, +5.5]"


def test_no_table_cell_prints_a_zero_width_interval():
    assert report.format_interval(0.402, 0.402, 0.402) == "40.2 (no spread)"
    assert report.format_interval(0.402, 0.4021, 0.4024) == "40.2 (no spread)"  # zero width once printed
    assert report.format_interval(0.402, 0.35, 0.45) == "40.2 [35.0, 45.0]"
