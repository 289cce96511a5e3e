"""Every metric is checked against scikit-learn on random predictions, including the awkward cases."""
import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as sk

from tsfmicro import metrics

NUM_CLASSES = 5


def random_predictions(seed: int, samples: int = 200):
    """Random labels where class 4 never occurs in the truth of folds 0-2 and class 3 is never predicted."""
    generator = np.random.default_rng(seed)
    y_true = generator.integers(0, NUM_CLASSES, samples)
    y_pred = np.where(generator.random(samples) < 0.5, y_true, generator.integers(0, NUM_CLASSES, samples))
    y_pred[y_pred == 3] = 0  # class 3 is never predicted
    fold = generator.integers(0, 8, samples)
    y_true[(fold < 3) & (y_true == 4)] = 1  # class 4 missing from folds 0, 1, 2
    return y_true, y_pred, fold


@pytest.mark.parametrize("seed", range(5))
def test_pooled_scores_match_sklearn_with_all_classes(seed):
    y_true, y_pred, _ = random_predictions(seed)
    labels = list(range(NUM_CLASSES))
    got = metrics.scores(y_true, y_pred, NUM_CLASSES)
    assert got["accuracy"] == pytest.approx(sk.accuracy_score(y_true, y_pred))
    assert got["uf1"] == pytest.approx(sk.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))
    assert got["uar"] == pytest.approx(
        sk.recall_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    )


@pytest.mark.parametrize("seed", range(5))
def test_per_fold_scores_match_sklearn_over_present_classes(seed):
    y_true, y_pred, fold = random_predictions(seed)
    frame = pd.DataFrame({"fold": fold, "true": y_true, "pred": y_pred})
    table = metrics.scores_by(frame, "fold", "true", "pred").set_index("fold")
    for name, part in frame.groupby("fold"):
        t, p = part["true"], part["pred"]
        assert table.loc[name, "samples"] == len(part)
        assert table.loc[name, "accuracy"] == pytest.approx(sk.accuracy_score(t, p))
        # labels=None: scikit-learn averages over the classes present in truth or predictions.
        assert table.loc[name, "uf1"] == pytest.approx(sk.f1_score(t, p, average="macro", zero_division=0))
        assert table.loc[name, "uar"] == pytest.approx(sk.recall_score(t, p, average="macro", zero_division=0))


def test_class_missing_from_truth_counts_as_zero_in_pooled_scores():
    y_true = np.array([0, 0, 1, 1])
    y_pred = np.array([0, 0, 1, 2])  # class 2 predicted but never true, class 3 absent entirely
    got = metrics.scores(y_true, y_pred, 4)
    assert got["uar"] == pytest.approx((1 + 0.5 + 0 + 0) / 4)
    assert got["uf1"] == pytest.approx((1 + 2 / 3 + 0 + 0) / 4)
    present = metrics.scores(y_true, y_pred, None)
    assert present["uf1"] == pytest.approx((1 + 2 / 3 + 0) / 3)


@pytest.mark.parametrize("seed", range(3))
def test_per_class_and_confusion_match_sklearn(seed):
    y_true, y_pred, _ = random_predictions(seed)
    labels = list(range(NUM_CLASSES))
    table = metrics.per_class(y_true, y_pred, NUM_CLASSES, [f"c{k}" for k in labels])
    precision, recall, f1, support = sk.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    np.testing.assert_allclose(table["precision"], precision)
    np.testing.assert_allclose(table["recall"], recall)
    np.testing.assert_allclose(table["f1"], f1)
    np.testing.assert_array_equal(table["support"], support)
    assert table.loc[3, "predicted"] == 0 and table.loc[3, "f1"] == 0  # the never-predicted class
    np.testing.assert_array_equal(
        metrics.confusion_matrix(y_true, y_pred, NUM_CLASSES), sk.confusion_matrix(y_true, y_pred, labels=labels)
    )


def test_t_interval_matches_scipy_and_one_value_has_no_interval():
    from scipy import stats

    values = [0.61, 0.64, 0.58, 0.66]
    mean, low, high = metrics.t_interval(values)
    expected = stats.t.interval(0.95, df=3, loc=np.mean(values), scale=stats.sem(values))
    assert mean == pytest.approx(np.mean(values))
    assert (low, high) == pytest.approx(expected)
    mean, low, high = metrics.t_interval([0.5])
    assert mean == 0.5 and np.isnan(low) and np.isnan(high)


def test_score_intervals_are_clipped_to_the_possible_range():
    values = [0.05, 0.95]  # two seeds: the raw t interval spans far below 0 and above 1
    mean, low, high = metrics.t_interval(values)
    assert low < 0 and high > 1
    mean, low, high = metrics.t_interval(values, bounds=(0.0, 1.0))
    assert (mean, low, high) == pytest.approx((0.5, 0.0, 1.0))


def test_bootstrap_interval_equals_resampling_subjects_one_by_one():
    y_true, y_pred, fold = random_predictions(0, samples=400)
    resamples = 200
    got = metrics.bootstrap_interval(y_true, y_pred, fold, NUM_CLASSES, resamples=resamples, seed=3)
    # The same subject draws, scored the slow way with scikit-learn.
    subjects = np.unique(fold)
    draws = np.random.default_rng(3).integers(0, len(subjects), size=(resamples, len(subjects)))
    values = {name: [] for name in metrics.METRICS}
    labels = list(range(NUM_CLASSES))
    for chosen in draws:
        index = np.concatenate([np.flatnonzero(fold == subjects[k]) for k in chosen])
        t, p = y_true[index], y_pred[index]
        values["accuracy"].append(sk.accuracy_score(t, p))
        values["uf1"].append(sk.f1_score(t, p, labels=labels, average="macro", zero_division=0))
        values["uar"].append(sk.recall_score(t, p, labels=labels, average="macro", zero_division=0))
    for name in metrics.METRICS:
        assert got[name] == pytest.approx(tuple(np.percentile(values[name], [2.5, 97.5])))
    point = metrics.scores(y_true, y_pred, NUM_CLASSES)["accuracy"]
    assert got["accuracy"][0] < point < got["accuracy"][1]


def test_mismatched_lengths_are_rejected():
    with pytest.raises(ValueError, match="3 true labels but 2 predictions"):
        metrics.accuracy([0, 1, 2], [0, 1])


# --- metrics.json: summarize, field by field, against an independent computation ----------------


def three_seed_predictions() -> pd.DataFrame:
    """5 subjects x 12 clips, 4 classes (class 3 rare and never predicted), 3 seeds far apart (about
    95 %, 10 % and 70 % of the fixed predictions right, so the raw t interval crosses both 0 and 1),
    and the oracle ahead of fixed by +2, -5 and +6 clips: a positive mean whose interval reaches below 0."""
    generator = np.random.default_rng(7)
    subjects = np.repeat([f"sub{k:02d}" for k in range(5)], 12)
    true = generator.choice(4, len(subjects), p=[0.3, 0.3, 0.34, 0.06])
    frames = []
    for seed, right, oracle_gain in ((0, 0.95, 2), (1, 0.1, -5), (2, 0.7, 6)):
        wrong = (true + generator.integers(1, 3, len(true))) % 3  # never class 3, never the truth
        candidates = generator.permutation(np.flatnonzero(true != 3))
        fixed = wrong.copy()
        chosen = candidates[: round(right * len(candidates))]
        fixed[chosen] = true[chosen]
        oracle = fixed.copy()
        if oracle_gain > 0:  # the oracle epoch got some wrong ones right
            index = [k for k in candidates if fixed[k] != true[k]][:oracle_gain]
            oracle[index] = true[index]
        else:  # ... or spoilt some right ones
            index = chosen[:-oracle_gain]
            oracle[index] = wrong[index]
        frames.append(pd.DataFrame({"seed": seed, "subject": subjects, "true": true, "pred_fixed": fixed,
                                    "pred_oracle": oracle}))
    return pd.concat(frames, ignore_index=True)


def test_summarize_matches_an_independent_computation_of_every_field():
    import json

    from independent_metrics import assert_summary_matches, expected_summary

    predictions = three_seed_predictions()
    names = ["negative", "positive", "surprise", "others"]
    summary = metrics.summarize(predictions, names, resamples=40)
    assert json.loads(json.dumps(summary, allow_nan=False)) == summary  # what metrics.json holds
    expected = expected_summary(predictions, names, resamples=40)
    assert_summary_matches(summary, expected)
    # what the construction promises, so the comparison above covers the awkward cases
    fixed, oracle = summary["protocols"]["fixed"], summary["protocols"]["oracle"]
    assert fixed["per_class"][3]["predicted"] == 0 and fixed["per_class"][3]["f1"] == 0
    assert fixed["seed_ci95"]["accuracy"] == [0.0, 1.0]  # clipped at both ends
    gain = summary["oracle_minus_fixed"]
    assert gain["mean"]["accuracy"] == pytest.approx((2 - 5 + 6) / 3 / 60)  # oracle minus fixed, not the reverse
    assert gain["mean"]["accuracy"] == pytest.approx(oracle["mean"]["accuracy"] - fixed["mean"]["accuracy"])
    assert gain["seed_ci95"]["accuracy"][0] < 0 < gain["seed_ci95"]["accuracy"][1]  # not clipped to 0..1


def test_summarize_of_one_seed_has_no_seed_interval():
    from independent_metrics import assert_summary_matches, expected_summary

    predictions = three_seed_predictions().query("seed == 2")
    names = ["a", "b", "c", "d"]
    summary = metrics.summarize(predictions, names, resamples=30)
    assert_summary_matches(summary, expected_summary(predictions, names, resamples=30))
    assert summary["seeds"] == [2] and summary["clips"] == 60
    assert summary["protocols"]["fixed"]["seed_ci95"]["uf1"] == [None, None]
    assert summary["oracle_minus_fixed"]["seed_ci95"]["uar"] == [None, None]
