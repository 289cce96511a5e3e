"""Scores for micro-expression recognition: accuracy, UF1, UAR and their intervals.

Conventions (the MEGC convention, computed correctly; see paper.md "How the authors' code scores"):

* Pooled scores: the predictions of all leave-one-subject-out folds are put together first and
  scored once. UF1 is the unweighted mean over classes of per-class F1; UAR is the unweighted
  mean over classes of per-class recall (not precision, which is what the authors' code prints).
* Pooled scores average over **all classes of the task** (``labels = range(num_classes)``), with
  ``zero_division = 0``: a class with no true samples (only possible on toy data or a subset of
  folds) contributes recall 0 and F1 0. This is scikit-learn's ``labels=all, zero_division=0``.
* Per-subject and per-fold scores average over the classes **present in that group's truth or
  predictions** (scikit-learn's default ``labels=None``), exactly as the authors' per-subject F1
  that drives the oracle epoch choice. Averaging a subject that shows one class over all five
  classes would cap its UF1 at 0.2 and say nothing about that subject.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

METRICS = ("accuracy", "uf1", "uar")
PROTOCOLS = ("fixed", "oracle")  # columns pred_fixed / pred_oracle of a run's predictions.csv


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> np.ndarray:
    """Counts ``(num_classes, num_classes)``: row = true class, column = predicted class."""
    y_true, y_pred = _as_labels(y_true, y_pred)
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def per_class(y_true, y_pred, num_classes: int, class_names: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per class: support (true count), predicted count, TP, precision, recall, F1."""
    matrix = confusion_matrix(y_true, y_pred, num_classes)
    true_positives = np.diag(matrix).astype(float)
    support = matrix.sum(axis=1).astype(float)
    predicted = matrix.sum(axis=0).astype(float)
    precision = _safe_divide(true_positives, predicted)
    recall = _safe_divide(true_positives, support)
    f1 = _safe_divide(2 * true_positives, support + predicted)  # = 2PR/(P+R), 0 when undefined
    names = list(class_names) if class_names is not None else [str(k) for k in range(num_classes)]
    return pd.DataFrame(
        {
            "class_index": np.arange(num_classes),
            "class_name": names,
            "support": support.astype(int),
            "predicted": predicted.astype(int),
            "true_positives": true_positives.astype(int),
            "precision": precision,
            "recall": recall,
            "f1": f1,
        }
    )


def accuracy(y_true, y_pred) -> float:
    y_true, y_pred = _as_labels(y_true, y_pred)
    return float(np.mean(y_true == y_pred)) if len(y_true) else float("nan")


def uf1(y_true, y_pred, num_classes: int | None = None) -> float:
    """Unweighted (macro) F1. ``num_classes`` given: over all classes; None: over present classes."""
    return float(per_class_subset(y_true, y_pred, num_classes)["f1"].mean())


def uar(y_true, y_pred, num_classes: int | None = None) -> float:
    """Unweighted average recall (macro recall); classes chosen as in :func:`uf1`."""
    return float(per_class_subset(y_true, y_pred, num_classes)["recall"].mean())


def per_class_subset(y_true, y_pred, num_classes: int | None) -> pd.DataFrame:
    """:func:`per_class` restricted to all classes (``num_classes``) or to the present ones (None)."""
    y_true, y_pred = _as_labels(y_true, y_pred)
    if num_classes is not None:
        return per_class(y_true, y_pred, num_classes)
    present = np.union1d(y_true, y_pred)
    size = int(present.max()) + 1 if len(present) else 0
    return per_class(y_true, y_pred, size).iloc[present]


def scores(y_true, y_pred, num_classes: int | None = None) -> dict[str, float]:
    """``{"accuracy", "uf1", "uar"}``; ``num_classes`` as in :func:`uf1`."""
    table = per_class_subset(y_true, y_pred, num_classes)
    return {
        "accuracy": accuracy(y_true, y_pred),
        "uf1": float(table["f1"].mean()),
        "uar": float(table["recall"].mean()),
    }


def scores_by(frame: pd.DataFrame, group: str, true_column: str, pred_column: str) -> pd.DataFrame:
    """Scores of each group (e.g. ``subject`` or ``fold``) over the classes present in that group."""
    rows = []
    for name, part in frame.groupby(group, sort=True):
        row = {group: name, "samples": len(part)}
        row.update(scores(part[true_column], part[pred_column], None))
        rows.append(row)
    return pd.DataFrame(rows, columns=[group, "samples", *METRICS])


def t_interval(
    values: Sequence[float], confidence: float = 0.95, bounds: tuple[float, float] | None = None
) -> tuple[float, float, float]:
    """Mean and two-sided Student-t interval of the mean (e.g. over seeds).

    One value gives ``(value, nan, nan)``: one seed says nothing about seed-to-seed spread.
    ``bounds`` clips the interval to the range the quantity can take (0..1 for a score):
    with two or three seeds the t interval is wide and would otherwise show a negative
    accuracy.
    """
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    half_width = stats.t.ppf(0.5 + confidence / 2, df=len(values) - 1) * stats.sem(values)
    low, high = mean - half_width, mean + half_width
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return mean, float(low), float(high)


def bootstrap_interval(
    y_true,
    y_pred,
    groups,
    num_classes: int,
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of the pooled scores when whole subjects (``groups``) are resampled.

    Subjects, not clips, are the independent units in LOSO (clips of one person are
    correlated), so each resample draws subjects with replacement and pools all their clips.
    Returns ``{"accuracy": (low, high), "uf1": ..., "uar": ...}``.
    """
    values = bootstrap_scores(y_true, y_pred, groups, num_classes, resamples=resamples, seed=seed)
    return {name: _percentiles(values[name], confidence) for name in METRICS}


def bootstrap_scores(y_true, y_pred, groups, num_classes: int, *, resamples: int = 1000,
                     seed: int = 0) -> dict[str, np.ndarray]:
    """The pooled scores of ``resamples`` subject resamples, ``{"accuracy": (R,), ...}``.

    The draws depend only on the sorted subjects, ``resamples`` and ``seed``: two sets of
    predictions of the same clips are resampled alike (a paired bootstrap).
    """
    pooled = _resampled_counts(y_true, y_pred, groups, num_classes, resamples, seed)
    return _scores_from_counts(pooled[:, 0], pooled[:, 1], pooled[:, 2])


def paired_bootstrap_difference(y_true, pred_a, pred_b, groups, num_classes: int, *, resamples: int = 1000,
                                confidence: float = 0.95, seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """Score of ``pred_b`` minus score of ``pred_a`` on the same clips: the pooled difference and
    its percentile interval when whole subjects are resampled, the same draws for both.

    Returns ``{"accuracy": (difference, low, high), "uf1": ..., "uar": ...}``.
    """
    a = bootstrap_scores(y_true, pred_a, groups, num_classes, resamples=resamples, seed=seed)
    b = bootstrap_scores(y_true, pred_b, groups, num_classes, resamples=resamples, seed=seed)
    whole_a, whole_b = scores(y_true, pred_a, num_classes), scores(y_true, pred_b, num_classes)
    return {name: (whole_b[name] - whole_a[name], *_percentiles(b[name] - a[name], confidence)) for name in METRICS}


def _percentiles(values: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2 * 100
    return tuple(float(v) for v in np.percentile(values, [tail, 100 - tail]))


def bootstrap_class_recall(
    y_true,
    y_pred,
    groups,
    num_classes: int,
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> np.ndarray:
    """``(K, 2)``: percentile interval of each class's pooled recall when whole subjects are
    resampled (as :func:`bootstrap_interval`). A resample without a clip of the class does not
    count for it; NaN for a class with no clip at all."""
    pooled = _resampled_counts(y_true, y_pred, groups, num_classes, resamples, seed)
    hits, support = pooled[:, 0], pooled[:, 1]  # (R, K)
    recall = np.full_like(hits, np.nan)
    np.divide(hits, support, out=recall, where=support > 0)
    tail = (1 - confidence) / 2 * 100
    intervals = np.full((num_classes, 2), np.nan)
    for k in range(num_classes):
        drawn = recall[:, k][~np.isnan(recall[:, k])]
        if len(drawn):
            intervals[k] = np.percentile(drawn, [tail, 100 - tail])
    return intervals


def _resampled_counts(y_true, y_pred, groups, num_classes: int, resamples: int, seed: int) -> np.ndarray:
    """``(R, 3, K)``: pooled per-class counts (true positives, support, predictions) of ``resamples``
    draws of whole subjects with replacement."""
    y_true, y_pred = _as_labels(y_true, y_pred)
    groups = np.asarray(groups)
    names = np.unique(groups)
    # Per subject: counts of true positives, true samples and predictions per class, (G, 3, K);
    # a resample's pooled counts are then a sum of G rows, done for all resamples at once.
    per_subject = np.stack([_class_counts(y_true[groups == g], y_pred[groups == g], num_classes) for g in names])
    draws = np.random.default_rng(seed).integers(0, len(names), size=(resamples, len(names)))
    times_drawn = np.zeros((resamples, len(names)))
    np.add.at(times_drawn, (np.arange(resamples)[:, None], draws), 1)
    return np.einsum("rg,gck->rck", times_drawn, per_subject)


def _class_counts(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``(3, K)``: true positives, true samples (support) and predictions per class."""
    hits = y_true[y_true == y_pred]
    return np.stack(
        [
            np.bincount(hits, minlength=num_classes),
            np.bincount(y_true, minlength=num_classes),
            np.bincount(y_pred, minlength=num_classes),
        ]
    ).astype(float)


def _scores_from_counts(true_positives, support, predicted) -> dict[str, np.ndarray]:
    """Pooled scores over all K classes from count arrays of shape (..., K)."""
    recall = _safe_divide(true_positives, support)
    f1 = _safe_divide(2 * true_positives, support + predicted)
    return {
        "accuracy": true_positives.sum(-1) / support.sum(-1),
        "uf1": f1.mean(-1),
        "uar": recall.mean(-1),
    }


def summarize(predictions: pd.DataFrame, class_names: Sequence[str], resamples: int = 1000) -> dict:
    """The content of a run's metrics.json, from its predictions (columns seed, subject, true, pred_<protocol>).

    For each protocol: pooled scores per seed with a subject-bootstrap 95 % interval; their mean
    over seeds with a Student-t 95 % interval (null with one seed); per-class scores and the
    confusion matrix with the clips of all seeds pooled. ``oracle_minus_fixed``: the paired
    difference per seed, its mean and t interval.
    """
    num_classes = len(class_names)
    summary: dict = {
        "class_names": list(class_names),
        "seeds": sorted(int(s) for s in predictions["seed"].unique()),
        "clips": int((predictions["seed"] == predictions["seed"].iloc[0]).sum()),
        "conventions": "pooled over folds; UF1/UAR averaged over all classes with zero_division=0",
        "protocols": {},
    }
    per_seed_values = {}
    for protocol in PROTOCOLS:
        column = f"pred_{protocol}"
        per_seed = []
        for seed, part in predictions.groupby("seed", sort=True):
            row = {"seed": int(seed), **scores(part["true"], part[column], num_classes)}
            row["bootstrap95"] = bootstrap_interval(
                part["true"], part[column], part["subject"], num_classes, resamples=resamples
            )
            per_seed.append(row)
        per_seed_values[protocol] = {name: [row[name] for row in per_seed] for name in METRICS}
        intervals = {name: t_interval(per_seed_values[protocol][name], bounds=(0.0, 1.0)) for name in METRICS}
        summary["protocols"][protocol] = {
            "per_seed": per_seed,
            "mean": {name: intervals[name][0] for name in METRICS},
            "seed_ci95": {name: list(intervals[name][1:]) for name in METRICS},
            "per_class": per_class(predictions["true"], predictions[column], num_classes, class_names).to_dict(
                orient="records"
            ),
            "confusion": confusion_matrix(predictions["true"], predictions[column], num_classes).tolist(),
        }
    differences = {
        name: t_interval(np.subtract(per_seed_values["oracle"][name], per_seed_values["fixed"][name]))
        for name in METRICS
    }
    summary["oracle_minus_fixed"] = {
        "mean": {name: differences[name][0] for name in METRICS},
        "seed_ci95": {name: list(differences[name][1:]) for name in METRICS},
    }
    return _plain(summary)


def _plain(value):
    """JSON-ready copy: numpy scalars to Python, NaN to None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def _as_labels(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{len(y_true)} true labels but {len(y_pred)} predictions")
    return y_true, y_pred


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's zero_division=0)."""
    result = np.zeros_like(numerator, dtype=float)
    np.divide(numerator, denominator, out=result, where=denominator > 0)
    return result


# ----------------------------------------------------------------------------- subject x seed bootstrap
# With two or three seeds a Student-t interval over seeds is either absurdly wide or, when the
# seeds happen to agree, of zero width; neither says how much the score would move with other
# subjects or other seeds. The subject x seed bootstrap resamples both sources of variation.
RESAMPLES = 1000
BOOTSTRAP_SEED = 0  # fixed: the same predictions always give the same interval


def subject_seed_method(resamples: int = RESAMPLES, confidence: float = 0.95) -> str:
    """The interval's name as tables and captions print it."""
    return f"subject x seed bootstrap {100 * confidence:.0f}%, {resamples} resamples"


def _seed_subject_counts(predictions: pd.DataFrame, column: str, num_classes: int,
                         subjects: Sequence) -> np.ndarray:
    """``(S, G, 3, K)``: per seed (sorted) and subject (``subjects``' order) the class counts of
    :func:`_class_counts`; a subject a seed lacks counts zero."""
    seeds = sorted(predictions["seed"].unique())
    counts = np.zeros((len(seeds), len(subjects), 3, num_classes))
    index = {subject: g for g, subject in enumerate(subjects)}
    for s, seed in enumerate(seeds):
        part = predictions[predictions["seed"] == seed]
        for subject, rows in part.groupby("subject", sort=False):
            y_true, y_pred = _as_labels(rows["true"], rows[column])
            counts[s, index[subject]] = _class_counts(y_true, y_pred, num_classes)
    return counts


def _subject_seed_draws(seeds: int, subjects: int, resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """How often each seed ``(R, S)`` and each subject ``(R, G)`` is drawn in each resample
    (both with replacement); one generator, so two runs with as many seeds and subjects are
    drawn alike (the paired bootstrap)."""
    rng = np.random.default_rng(seed)
    seed_draws = rng.integers(0, seeds, size=(resamples, seeds))
    subject_draws = rng.integers(0, subjects, size=(resamples, subjects))
    times_seed, times_subject = np.zeros((resamples, seeds)), np.zeros((resamples, subjects))
    np.add.at(times_seed, (np.arange(resamples)[:, None], seed_draws), 1)
    np.add.at(times_subject, (np.arange(resamples)[:, None], subject_draws), 1)
    return times_seed, times_subject


def subject_seed_scores(predictions: pd.DataFrame, column: str, num_classes: int, *, resamples: int = RESAMPLES,
                        seed: int = BOOTSTRAP_SEED, subjects: Sequence | None = None) -> dict[str, np.ndarray]:
    """The pooled scores of ``resamples`` draws of seeds and subjects with replacement,
    ``{"accuracy": (R,), "uf1": ..., "uar": ...}``: each draw pools the predictions (column
    ``column`` of ``predictions``: seed, subject, true, ...) of every drawn (seed, subject) pair
    and scores them once over all ``num_classes`` classes (as :func:`summarize`)."""
    subjects = sorted(predictions["subject"].unique()) if subjects is None else list(subjects)
    counts = _seed_subject_counts(predictions, column, num_classes, subjects)
    times_seed, times_subject = _subject_seed_draws(counts.shape[0], counts.shape[1], resamples, seed)
    pooled = np.einsum("rs,rg,sgck->rck", times_seed, times_subject, counts)
    return _scores_from_counts(pooled[:, 0], pooled[:, 1], pooled[:, 2])


def no_spread(values: np.ndarray) -> bool:
    """Every resample gave the same value: the interval has zero width, which is not certainty
    (e.g. two seeds that predict alike, or a one-class model whose UAR is 1/K whatever is drawn)."""
    values = np.asarray(values, dtype=float)
    return bool(len(values)) and bool(np.allclose(values, values[0], rtol=0, atol=1e-12))


def subject_seed_interval(predictions: pd.DataFrame, column: str, num_classes: int, *, resamples: int = RESAMPLES,
                          confidence: float = 0.95, seed: int = BOOTSTRAP_SEED) -> dict[str, dict]:
    """Per metric: ``mean`` (the mean over seeds of each seed's pooled score, as
    :func:`summarize`), ``per_seed`` (those scores, seeds sorted), ``low``/``high`` (the percentile
    interval of :func:`subject_seed_scores`) and ``no_spread`` (every resample gave one value)."""
    drawn = subject_seed_scores(predictions, column, num_classes, resamples=resamples, seed=seed)
    per_seed = [scores(part["true"], part[column], num_classes) for _, part in predictions.groupby("seed", sort=True)]
    result = {}
    for name in METRICS:
        values = [row[name] for row in per_seed]
        low, high = _percentiles(drawn[name], confidence)
        result[name] = {"mean": float(np.mean(values)), "per_seed": values, "low": low, "high": high,
                        "no_spread": no_spread(drawn[name])}
    return result


def paired_subject_seed_difference(reference: pd.DataFrame, other: pd.DataFrame, column: str, num_classes: int, *,
                                   resamples: int = RESAMPLES, confidence: float = 0.95,
                                   seed: int = BOOTSTRAP_SEED) -> dict[str, dict]:
    """``reference`` minus ``other`` (two runs' predictions of the same clips), per metric:
    ``difference`` (mean over seeds of reference minus mean over seeds of other), ``low``/``high``
    (percentile interval when the same subjects and the same seed positions are drawn for both
    runs: a paired bootstrap), ``no_spread`` and ``verdict``: "no difference" (every resample
    gave 0), "reference higher" / "reference lower" (the interval excludes 0), "inside noise"
    (it contains 0). The runs must have as many seeds; their subjects are joined."""
    seeds_a, seeds_b = reference["seed"].nunique(), other["seed"].nunique()
    if seeds_a != seeds_b:
        raise ValueError(f"a paired bootstrap needs as many seeds in both runs; got {seeds_a} and {seeds_b}")
    subjects = sorted(set(reference["subject"]) | set(other["subject"]))
    a = subject_seed_scores(reference, column, num_classes, resamples=resamples, seed=seed, subjects=subjects)
    b = subject_seed_scores(other, column, num_classes, resamples=resamples, seed=seed, subjects=subjects)
    mean_a = {name: np.mean([scores(p["true"], p[column], num_classes)[name] for _, p in reference.groupby("seed")])
              for name in METRICS}
    mean_b = {name: np.mean([scores(p["true"], p[column], num_classes)[name] for _, p in other.groupby("seed")])
              for name in METRICS}
    result = {}
    for name in METRICS:
        drawn = a[name] - b[name]
        low, high = _percentiles(drawn, confidence)
        flat = no_spread(drawn)
        if flat and abs(drawn[0]) < 1e-12:
            verdict = "no difference"
        elif low > 0:
            verdict = "reference higher"
        elif high < 0:
            verdict = "reference lower"
        else:
            verdict = "inside noise"
        result[name] = {"difference": float(mean_a[name] - mean_b[name]), "low": low, "high": high,
                        "no_spread": flat, "verdict": verdict}
    return result


def one_class_seeds(predictions: pd.DataFrame, column: str) -> list[int]:
    """The seeds whose predictions (column ``column``) are all one class: a degenerate model,
    whose UAR is 1/K and whose UF1 is small whatever the inputs."""
    counts = predictions.groupby("seed", sort=True)[column].nunique()
    return [int(seed) for seed, distinct in counts.items() if distinct <= 1]


def subject_seed_class_recall(predictions: pd.DataFrame, column: str, num_classes: int, *,
                              resamples: int = RESAMPLES, confidence: float = 0.95,
                              seed: int = BOOTSTRAP_SEED) -> list[dict]:
    """Per class (index order): ``per_seed`` recalls (seeds sorted; NaN where a seed has no clip
    of the class), ``mean`` over seeds, ``low``/``high`` (percentile interval of the pooled recall
    over draws of seeds and subjects, as :func:`subject_seed_scores`; a draw without a clip of the
    class does not count) and ``no_spread``."""
    subjects = sorted(predictions["subject"].unique())
    counts = _seed_subject_counts(predictions, column, num_classes, subjects)  # (S, G, 3, K)
    times_seed, times_subject = _subject_seed_draws(counts.shape[0], counts.shape[1], resamples, seed)
    pooled = np.einsum("rs,rg,sgck->rck", times_seed, times_subject, counts)
    hits, support = pooled[:, 0], pooled[:, 1]
    per_seed_hits, per_seed_support = counts[:, :, 0].sum(1), counts[:, :, 1].sum(1)  # (S, K)
    result = []
    for k in range(num_classes):
        drawn = hits[support[:, k] > 0, k] / support[support[:, k] > 0, k]
        seeds = [float(h / n) if n else float("nan") for h, n in zip(per_seed_hits[:, k], per_seed_support[:, k])]
        low, high = _percentiles(drawn, confidence) if len(drawn) else (float("nan"), float("nan"))
        result.append({"per_seed": seeds, "mean": float(np.nanmean(seeds)) if not np.isnan(seeds).all() else float("nan"),
                       "low": low, "high": high, "no_spread": no_spread(drawn)})
    return result
