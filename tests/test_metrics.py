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
