"""Tables and conclusions of the chapters beyond the paper (temporal branch, class imbalance):
scores of runs keyed by a variant, per-class recall with intervals, class distributions, model
sizes per temporal branch, and the conclusion sentences built from the numbers."""
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import recall_score

from tsfmicro import metrics, report
from tsfmicro.chapters import imbalance, temporal_branch
from tsfmicro.results import Run

CLASSES = ["anger", "happiness", "other"]


def run_from(predictions: pd.DataFrame, options=None) -> Run:
    """A finished run as tsfmicro.results.load_run gives it, from its predictions."""
    resolved = {"recipe": {"epochs": 3, **(options or {})}}
    config = {"dataset": "samm", "task": "5class", "fusion": "ts_late", "preset": "tiny", "recipe": "paper",
              "resolved": resolved, "seeds": sorted(predictions["seed"].unique().tolist()),
              "data_source": "SYNTHETIC", "class_names": CLASSES}
    return Run(path=None, config=config, predictions=predictions, curves=pd.DataFrame(), provenance={},
               metrics=metrics.summarize(predictions, CLASSES, resamples=200))


def predictions(seed: int, accuracy: float, subjects=6, clips=10, rng_seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(rng_seed + seed)
    n = subjects * clips
    true = rng.integers(0, 3, n)
    right = rng.random(n) < accuracy
    predicted = np.where(right, true, (true + 1 + rng.integers(0, 2, n)) % 3)
    return pd.DataFrame({"seed": seed, "subject": np.repeat([f"s{k}" for k in range(subjects)], clips),
                         "true": true, "pred_fixed": predicted, "pred_oracle": predicted})


def test_scores_of_runs_keyed_by_a_variant():
    runs = {("samm", "5class", "cross_entropy"): run_from(predictions(0, 0.5)),
            ("samm", "5class", "focal"): run_from(predictions(0, 0.9), {"loss": "focal"})}
    long = report.scores_long(runs, column="option")
    assert list(dict.fromkeys(long["option"])) == ["cross_entropy", "focal"] and len(long) == 2 * 2 * 3
    focal = long.query("option == 'focal' and protocol == 'fixed' and metric == 'accuracy'").iloc[0]
    assert focal["mean"] == pytest.approx(runs[("samm", "5class", "focal")].metrics["protocols"]["fixed"]["mean"]["accuracy"])
    assert focal["interval"] == "subject bootstrap 95%, 1000 resamples (one seed)" and focal["low"] <= focal["mean"] <= focal["high"]
    wide = report.scores_wide(long, column="option")
    assert list(wide.columns[:4]) == ["dataset", "task", "option", "protocol"] and "UF1 %" in wide
    assert runs[("samm", "5class", "focal")].options == {"loss": "focal"}
    assert runs[("samm", "5class", "cross_entropy")].options == {}


def test_class_recall_matches_scikit_learn_with_intervals_by_seed_count():
    one = predictions(0, 0.7)
    run = run_from(one)
    table = report.class_recall({("samm", "5class", "focal"): run}, "option")
    want = recall_score(one["true"], one["pred_fixed"], average=None, labels=range(3))
    np.testing.assert_allclose(table["mean"], want)
    assert (table["low"] <= table["mean"]).all() and (table["mean"] <= table["high"]).all()
    assert set(table["interval"]) == {"subject bootstrap 95%, 1000 resamples (one seed)"}
    assert table["support"].tolist() == np.bincount(one["true"], minlength=3).tolist()
    # two seeds: the mean of the seeds' recalls, each seed beside it, a subject x seed bootstrap interval
    two = pd.concat([one, predictions(1, 0.4)], ignore_index=True)
    table = report.class_recall({("samm", "5class", "focal"): run_from(two)}, "option")
    per_seed = [recall_score(p["true"], p["pred_fixed"], average=None, labels=range(3)) for _, p in two.groupby("seed")]
    np.testing.assert_allclose(table["mean"], np.mean(per_seed, axis=0))
    np.testing.assert_allclose(np.stack(table["per_seed"].tolist()), np.array(per_seed).T)
    assert set(table["interval"]) == {"subject x seed bootstrap 95%, 1000 resamples"}
    assert (table["low"] < table["high"]).all()
    wide = report.class_recall_wide(table, "option")
    assert wide.columns.tolist() == ["dataset", "task", "class", "clips", "focal recall %", "focal per seed %",
                                     "interval"]
    assert wide["focal per seed %"].iloc[0] == " / ".join(f"{100 * r[0]:.1f}" for r in per_seed)


def test_bootstrap_class_recall_resamples_subjects():
    true = np.array([0, 0, 1, 1, 2, 2] * 4)
    predicted = np.array([0, 0, 1, 0, 0, 0] * 4)  # class 0 always right, class 1 half, class 2 never
    groups = np.repeat(["a", "b", "c", "d"], 6)
    bounds = metrics.bootstrap_class_recall(true, predicted, groups, 4, resamples=100)
    np.testing.assert_allclose(bounds[[0, 2]], [[1, 1], [0, 0]])
    np.testing.assert_allclose(bounds[1], [0.5, 0.5])  # every subject has the same half
    assert np.isnan(bounds[3]).all()  # no clip of class 3


def test_class_distribution_counts_shares_and_ratio():
    samples = pd.DataFrame({"dataset": "samm", "task": "5class", "class_index": [0] * 6 + [1] * 3 + [2],
                            "class_name": ["anger"] * 6 + ["happiness"] * 3 + ["other"]})
    table = report.class_distribution(samples)
    assert table["clips"].tolist() == [6, 3, 1] and table["class_name"].tolist() == CLASSES
    np.testing.assert_allclose(table["share"], [0.6, 0.3, 0.1])
    assert set(table["largest / smallest"]) == {6.0}


def test_temporal_branch_sizes_count_each_network():
    from tsfmicro.model import build_model, count_parameters

    sizes = report.temporal_branch_sizes("tiny", ["retention", "conv"], num_classes=3)
    assert sizes["temporal branch"].tolist() == ["retention", "conv"] and set(sizes["input"]) == {"64 px"}
    conv = count_parameters(build_model("tiny", num_classes=3, temporal_branch="conv"))
    assert sizes.loc[1, "parameters (M)"] == round(conv / 1e6, 3)
    assert sizes.loc[1, "forward GFLOPs / sample"] < sizes.loc[0, "forward GFLOPs / sample"]  # no attention
    sentence = temporal_branch.size_sentence(sizes, "temporal branch", "retention")
    retention = count_parameters(build_model("tiny", num_classes=3))
    assert sentence.startswith(f"At 64 px (tiny preset), retention (the paper's) has {retention / 1e6:.3g} M parameters")
    ratio = sizes.loc[1, "forward GFLOPs / sample"] / sizes.loc[0, "forward GFLOPs / sample"]
    assert f"; conv {conv / 1e6:.3g} M parameters" in sentence and f"({ratio:.2g}x the FLOPs)" in sentence


def long_scores(rows) -> pd.DataFrame:
    """scores_long-shaped rows: (variant, mean, low, high) of UF1, fixed protocol."""
    return pd.DataFrame([{"dataset": "casme2", "task": "5class", "variant": v, "protocol": "fixed",
                          "metric": "uf1", "mean": m, "low": lo, "high": hi} for v, m, lo, hi in rows])


def test_conclusion_says_when_intervals_do_not_separate_the_variants():
    long = long_scores([("retention", 0.40, 0.30, 0.50), ("transformer", 0.45, 0.33, 0.55),
                        ("conv", 0.35, 0.25, 0.46)])
    text = report.variant_conclusion(long, "variant", "retention", "temporal branches")
    assert text.startswith("On casme2 5class (fixed protocol), the highest mean of the 3 temporal branches is "
                           "transformer at UF1 45.0 [33.0, 55.0] %.")
    assert "Against retention (the paper's, UF1 40.0 [30.0, 50.0] %), in UF1 points: transformer +5.0, conv -5.0." in text
    assert text.endswith("Every interval overlaps retention's, so these runs do not separate the temporal branches: "
                         "the order of the means is inside noise.")


def test_conclusion_names_a_variant_whose_interval_lies_outside_the_references():
    long = long_scores([("retention", 0.60, 0.55, 0.65), ("transformer", 0.58, 0.50, 0.66),
                        ("conv", 0.30, 0.20, 0.40)])
    text = report.variant_conclusion(long, "variant", "retention", "temporal branches")
    assert "the highest mean of the 3 temporal branches is retention (the paper's) at UF1 60.0 [55.0, 65.0] %. Against it, " \
           "in UF1 points: transformer -2.0, conv -30.0." in text
    assert text.endswith("Conv lies wholly below it (95 % intervals); the 1 other(s) overlap it.")
    compared = report.compare_to_reference(long, "variant", "retention")
    assert compared["relation"].tolist() == ["reference", "overlaps", "below"]
    np.testing.assert_allclose(compared["difference"], [0.0, -0.02, -0.30])


def test_conclusion_without_the_reference_or_with_one_variant():
    text = report.variant_conclusion(long_scores([("conv", 0.3, 0.2, 0.4), ("transformer", 0.5, 0.4, 0.6)]),
                                     "variant", "retention", "temporal branches")
    assert "is transformer" in text and text.endswith("retention (the paper's) was not run with these parameters, "
                                                      "so nothing is compared with it.")
    alone = report.variant_conclusion(long_scores([("retention", 0.3, np.nan, np.nan)]), "variant", "retention",
                                      "temporal branches")
    assert alone == "On casme2 5class (fixed protocol), only retention was run: UF1 30.0 %."
    assert report.variant_conclusion(long_scores([]).reindex(columns=["dataset", "task", "variant", "protocol",
                                                                      "metric", "mean", "low", "high"]),
                                     "variant", "retention", "temporal branches") == \
        "No temporal branches were run with these parameters."


def test_rare_class_sentence_names_the_rarest_class_and_its_recall_per_option():
    recall = pd.DataFrame([
        {"dataset": "samm", "task": "5class", "option": option, "class_name": name, "support": support,
         "mean": mean, "low": mean - 0.1, "high": mean + 0.1}
        for option, shift in (("cross_entropy", 0.0), ("focal", 0.2))
        for name, support, mean in (("anger", 9, 0.5), ("contempt", 2, 0.1 + shift), ("other", 2, 0.4))])
    assert imbalance.rare_class_sentence(recall, "option") == (
        "The rarest class of samm 5class, contempt (2 of 13 clips; as few as other), is recalled 10.0 [0.0, 20.0] % "
        "with cross_entropy, 30.0 [20.0, 40.0] % with focal.")
    alone = recall[recall["class_name"] != "other"]
    assert imbalance.rare_class_sentence(alone, "option").startswith("The rarest class of samm 5class, contempt (2 of 11 clips), ")
