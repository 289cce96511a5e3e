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
