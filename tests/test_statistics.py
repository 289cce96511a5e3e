"""The book's statistics on hand-made predictions with known answers (issue 18, point 3): the
subject x seed bootstrap, zero-width intervals shown as "no spread" / "seeds agree", the paired
bootstrap of two runs, and one-class (degenerate) models flagged in the score tables."""
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, recall_score

from tsfmicro import metrics, report
from tsfmicro.results import Run

CLASSES = ["negative", "positive", "surprise"]


def frame(seed, subjects, true, pred) -> pd.DataFrame:
    return pd.DataFrame({"seed": seed, "subject": subjects, "true": true, "pred_fixed": pred, "pred_oracle": pred})


def run_from(predictions: pd.DataFrame, fusion="ts_late") -> Run:
    config = {"dataset": "casme2", "task": "3class", "fusion": fusion, "preset": "tiny", "recipe": "paper",
              "resolved": {"recipe": {"epochs": 1}}, "seeds": sorted(predictions["seed"].unique().tolist()),
              "data_source": "SYNTHETIC", "class_names": CLASSES}
    return Run(path=None, config=config, predictions=predictions, curves=pd.DataFrame(), provenance={},
               metrics=metrics.summarize(predictions, CLASSES, resamples=50))


def noisy(seed: int, accuracy: float, subjects: int = 8, clips: int = 9, rng_seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(rng_seed + 100 * seed)
    true = np.tile(np.arange(3), subjects * clips // 3)
    right = rng.random(len(true)) < accuracy
    pred = np.where(right, true, (true + 1 + rng.integers(0, 2, len(true))) % 3)
    return frame(seed, np.repeat([f"s{k}" for k in range(subjects)], clips), true, pred)


def test_subject_seed_bootstrap_draws_seeds_and_subjects_and_pools_their_clips():
    """Against a direct implementation: the same generator draws seeds (R, S) then subjects
    (R, G); each resample pools the clips of every drawn (seed, subject) pair and scores them once."""
    predictions = pd.concat([noisy(0, 0.6), noisy(1, 0.4), noisy(2, 0.8)], ignore_index=True)
    resamples = 25
    got = metrics.subject_seed_scores(predictions, "pred_fixed", 3, resamples=resamples, seed=7)
    rng = np.random.default_rng(7)
    seeds, subjects = sorted(predictions.seed.unique()), sorted(predictions.subject.unique())
    seed_draws = rng.integers(0, len(seeds), size=(resamples, len(seeds)))
    subject_draws = rng.integers(0, len(subjects), size=(resamples, len(subjects)))
    for r in range(resamples):
        pooled = pd.concat([predictions[(predictions.seed == seeds[s]) & (predictions.subject == subjects[g])]
                            for s in seed_draws[r] for g in subject_draws[r]])
        assert got["uf1"][r] == pytest.approx(f1_score(pooled.true, pooled.pred_fixed, labels=[0, 1, 2],
                                                       average="macro", zero_division=0))
        assert got["uar"][r] == pytest.approx(recall_score(pooled.true, pooled.pred_fixed, labels=[0, 1, 2],
                                                           average="macro", zero_division=0))


def test_seeds_are_resampled_one_right_one_wrong_spans_zero_to_one():
    """One subject, seed 0 right on every clip, seed 1 wrong on every clip: resampling subjects
    alone changes nothing, so all the spread comes from the seeds: a draw holds two right seeds
    (p = 1/4), two wrong (1/4) or one of each (1/2): accuracy 1, 0 or 0.5, a 95 % interval [0, 1]."""
    true = np.array([0, 1, 2, 0, 1, 2])
    predictions = pd.concat([frame(0, "s0", true, true), frame(1, "s0", true, (true + 1) % 3)], ignore_index=True)
    drawn = metrics.subject_seed_scores(predictions, "pred_fixed", 3, resamples=2000)
    assert set(np.round(drawn["accuracy"], 6)) == {0.0, 0.5, 1.0}
    assert np.mean(drawn["accuracy"] == 0.5) == pytest.approx(0.5, abs=0.05)  # binomial sd 0.011
    found = metrics.subject_seed_interval(predictions, "pred_fixed", 3)
    assert (found["accuracy"]["low"], found["accuracy"]["high"]) == (0.0, 1.0)
    assert found["accuracy"]["per_seed"] == [1.0, 0.0] and found["accuracy"]["mean"] == 0.5
    assert not found["accuracy"]["no_spread"]


def test_identical_seeds_with_no_spread_read_seeds_agree_never_as_a_zero_width_interval():
    """Two identical seeds of a perfect model: every resample scores 100 %; the table says so in
    words instead of [100.0, 100.0]."""
    subjects = np.repeat(["s0", "s1", "s2"], 3)
    true = np.tile([0, 1, 2], 3)
    predictions = pd.concat([frame(0, subjects, true, true), frame(1, subjects, true, true)], ignore_index=True)
    found = metrics.subject_seed_interval(predictions, "pred_fixed", 3)
    assert found["uf1"]["no_spread"] and found["uf1"]["low"] == found["uf1"]["high"] == 1.0
    long = report.scores_long({("casme2", "3class", "ts_late"): run_from(predictions)})
    wide = report.scores_wide(long)
    assert wide["UF1 %"].tolist() == ["100.0 (seeds agree; no spread in 1000 resamples)"] * 2
    assert wide["UF1 per seed %"].tolist() == ["100.0 / 100.0"] * 2
    assert set(wide["interval"]) == {"subject x seed bootstrap 95%, 1000 resamples"}
    assert not wide.apply(lambda row: row.astype(str).str.contains(r"\[100\.0, 100\.0\]")).any().any()
    # seeds that differ but whose resamples happen to be flat are not said to agree
    assert report.format_score(0.5, 0.5, 0.5, no_spread=True, per_seed=[0.4, 0.6]) == "50.0 (no spread in 1000 resamples)"
    assert report.format_score(0.5, 0.4, 0.6, per_seed=[0.4, 0.6]) == "50.0 [40.0, 60.0]"


def test_spread_is_shown_with_each_seed_beside_the_mean():
    predictions = pd.concat([noisy(0, 0.5), noisy(1, 0.7), noisy(2, 0.9)], ignore_index=True)
    long = report.scores_long({("casme2", "3class", "ts_late"): run_from(predictions)})
    uf1 = long.query("protocol == 'fixed' and metric == 'uf1'").iloc[0]
    per_seed = [f1_score(p.true, p.pred_fixed, labels=[0, 1, 2], average="macro", zero_division=0)
                for _, p in predictions.groupby("seed")]
    np.testing.assert_allclose(uf1["per_seed"], per_seed)
    assert uf1["mean"] == pytest.approx(np.mean(per_seed)) and uf1["low"] < uf1["mean"] < uf1["high"]
    assert not uf1["no_spread"] and uf1["flag"] == ""
    wide = report.scores_wide(long)
    assert wide.columns.tolist()[4:] == ["ACC %", "ACC per seed %", "UF1 %", "UF1 per seed %", "UAR %",
                                         "UAR per seed %", "interval", "flag"]
    assert wide["UF1 per seed %"].iloc[0] == " / ".join(f"{100 * v:.1f}" for v in per_seed)


def test_a_one_class_model_is_flagged_and_its_flat_uar_is_not_presented_as_certain():
    """A model predicting 'negative' for every clip: recall 1 for that class and 0 for the others in
    every resample, so UAR is 1/3 with no spread; the table flags it."""
    subjects = np.repeat(["s0", "s1", "s2", "s3"], 3)
    true = np.tile([0, 1, 2], 4)
    degenerate = pd.concat([frame(0, subjects, true, np.zeros(12, int)), frame(1, subjects, true, np.zeros(12, int))],
                           ignore_index=True)
    assert metrics.one_class_seeds(degenerate, "pred_fixed") == [0, 1]
    long = report.scores_long({("casme2", "3class", "ts_late"): run_from(degenerate)})
    uar = long.query("protocol == 'fixed' and metric == 'uar'").iloc[0]
    assert uar["mean"] == pytest.approx(1 / 3) and uar["no_spread"]
    assert uar["flag"] == "one-class model: only 'negative' (seeds 0, 1 of 2)"
    wide = report.scores_wide(long)
    assert wide["UAR %"].iloc[0] == "33.3 (seeds agree; no spread in 1000 resamples)"
    assert wide["flag"].iloc[0].startswith("one-class model")
    # one seed of two degenerate: named
    mixed = pd.concat([frame(0, subjects, true, true), frame(1, subjects, true, np.full(12, 2))], ignore_index=True)
    assert report.one_class_flag(mixed, "pred_fixed", CLASSES) == "one-class model: only 'surprise' (seed 1 of 2)"
    assert report.one_class_flag(noisy(0, 0.5), "pred_fixed", CLASSES) == ""
    assert "ts_late on casme2 3class is a degenerate model (one-class model" in report.flag_sentence(long, "fusion")


def test_paired_bootstrap_of_identical_runs_reads_no_difference():
    run = pd.concat([noisy(0, 0.6), noisy(1, 0.6)], ignore_index=True)
    found = metrics.paired_subject_seed_difference(run, run.copy(), "pred_fixed", 3)
    for name in metrics.METRICS:
        assert found[name]["difference"] == 0 and found[name]["low"] == found[name]["high"] == 0
        assert found[name]["no_spread"] and found[name]["verdict"] == "no difference"


def test_paired_bootstrap_of_a_clearly_better_run_excludes_zero_each_way():
    """Reference right on about 90 % of the clips, the other about 30 % (chance 33 %), 8 subjects x
    9 clips x 2 seeds: the paired difference is about 0.6 with a subject-level sd near 0.06, so
    the interval excludes 0 by far; swapping the runs flips the sign and the verdict."""
    good = pd.concat([noisy(0, 0.9), noisy(1, 0.9)], ignore_index=True)
    poor = pd.concat([noisy(0, 0.3, rng_seed=5), noisy(1, 0.3, rng_seed=5)], ignore_index=True)
    higher = metrics.paired_subject_seed_difference(good, poor, "pred_fixed", 3)["uf1"]
    assert higher["verdict"] == "reference higher" and higher["low"] > 0 and higher["difference"] > 0.4
    lower = metrics.paired_subject_seed_difference(poor, good, "pred_fixed", 3)["uf1"]
    assert lower["verdict"] == "reference lower" and lower["high"] < 0
    assert lower["difference"] == pytest.approx(-higher["difference"])


def test_paired_bootstrap_of_runs_that_differ_on_one_clip_each_way_is_inside_noise():
    """The other run is the reference with one subject's right clip made wrong and another
    subject's wrong clip made right: pooled difference 0, resamples on both sides of 0."""
    reference = pd.concat([noisy(0, 0.6), noisy(1, 0.6)], ignore_index=True)
    other = reference.copy()
    for seed in (0, 1):
        rows = other.index[other.seed == seed]
        part = other.loc[rows]
        right = part.index[(part.subject == "s0") & (part.true == part.pred_fixed)][0]
        wrong = part.index[(part.subject == "s1") & (part.true != part.pred_fixed)][0]
        other.loc[right, "pred_fixed"] = (other.loc[right, "true"] + 1) % 3
        other.loc[wrong, "pred_fixed"] = other.loc[wrong, "true"]
    found = metrics.paired_subject_seed_difference(reference, other, "pred_fixed", 3)["accuracy"]
    assert found["difference"] == pytest.approx(0) and found["low"] < 0 < found["high"]
    assert found["verdict"] == "inside noise"


def test_paired_differences_table_pairs_each_variant_with_the_reference():
    good = pd.concat([noisy(0, 0.9), noisy(1, 0.9)], ignore_index=True)
    poor = pd.concat([noisy(0, 0.3, rng_seed=5), noisy(1, 0.3, rng_seed=5)], ignore_index=True)
    runs = {("casme2", "3class", "ts_late"): run_from(good), ("casme2", "3class", "ts_early"): run_from(good.copy()),
            ("casme2", "3class", "spatial_only"): run_from(poor)}
    paired = report.paired_differences(runs, "fusion", "ts_late")
    assert paired["fusion"].tolist() == ["ts_early", "spatial_only"]
    assert paired["verdict"].tolist() == ["no difference", "reference higher"]
    table = report.paired_table(paired, "fusion", "ts_late")
    assert table["ts_late − variant, UF1 points"].iloc[0] == "+0.0 (no spread in 1000 resamples)"
    assert table["reading"].tolist() == ["no difference (every resample gives 0)",
                                         "ts_late higher (interval excludes 0)"]
    assert set(table["interval"]) == {"paired subject x seed bootstrap 95%, 1000 resamples"}
    # different numbers of seeds: not paired, said so
    runs[("casme2", "3class", "t_to_s")] = run_from(noisy(0, 0.5))
    assert report.paired_differences(runs, "fusion", "ts_late")["verdict"].iloc[-1] == "not paired"
    with pytest.raises(ValueError, match="as many seeds"):
        metrics.paired_subject_seed_difference(good, noisy(0, 0.5), "pred_fixed", 3)


def test_oracle_gain_is_a_paired_bootstrap_and_zero_gain_reads_no_spread():
    same = pd.concat([noisy(0, 0.6), noisy(1, 0.6)], ignore_index=True)
    gain = report.oracle_gain({("casme2", "3class", "ts_late"): run_from(same)})
    assert gain["UF1 pp"].iloc[0] == "+0.0 (no spread in 1000 resamples)"
    assert gain["interval"].iloc[0] == "paired subject x seed bootstrap 95%, 1000 resamples"
    better = same.assign(pred_oracle=same["true"])  # the oracle epoch right on every clip
    found = report.oracle_gain({("casme2", "3class", "ts_late"): run_from(better)})["ACC pp"].iloc[0]
    mean, interval = found.split(" [")
    low = float(interval.split(",")[0])
    assert float(mean) == pytest.approx(100 * (1 - np.mean(same["true"] == same["pred_fixed"])), abs=0.05) and low > 0


def test_class_recall_of_a_one_class_model_has_no_spread_and_a_flag():
    subjects, true = np.repeat(["s0", "s1", "s2"], 3), np.tile([0, 1, 2], 3)
    flat = pd.concat([frame(0, subjects, true, np.zeros(9, int)), frame(1, subjects, true, np.zeros(9, int))],
                     ignore_index=True)
    table = report.class_recall({("casme2", "3class", "ts_late"): run_from(flat)}, "fusion")
    assert table["mean"].tolist() == [1.0, 0.0, 0.0] and table["no_spread"].all()
    assert set(table["flag"]) == {"one-class model: only 'negative' (seeds 0, 1 of 2)"}
    wide = report.class_recall_wide(table, "fusion")
    assert wide["ts_late recall %"].tolist() == ["100.0 (seeds agree; no spread in 1000 resamples)",
                                                 "0.0 (seeds agree; no spread in 1000 resamples)",
                                                 "0.0 (seeds agree; no spread in 1000 resamples)"]
