"""metrics.json computed a second way, from a predictions table, with scikit-learn, numpy and scipy only.

Shared by test_metrics.py (on constructed predictions) and test_engine_runs.py (on a run's
files). Nothing here calls tsfmicro.metrics: a wrong sign, mean, class count or interval
there shows up as a difference from these values.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn import metrics as sk

SCORES = ("accuracy", "uf1", "uar")
PROTOCOLS = ("fixed", "oracle")


def pooled_scores(y_true, y_pred, num_classes: int) -> dict[str, float]:
    """Accuracy, macro F1 and macro recall over all classes of the task (zero_division=0)."""
    labels = list(range(num_classes))
    return {
        "accuracy": sk.accuracy_score(y_true, y_pred),
        "uf1": sk.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0),
        "uar": sk.recall_score(y_true, y_pred, labels=labels, average="macro", zero_division=0),
    }


def subject_bootstrap(part: pd.DataFrame, column: str, num_classes: int, resamples: int) -> dict[str, list]:
    """2.5 and 97.5 percentiles over ``resamples`` draws of whole subjects (the engine's draws: rng seed 0)."""
    subjects = np.unique(part["subject"].to_numpy())
    rows = {subject: np.flatnonzero(part["subject"].to_numpy() == subject) for subject in subjects}
    draws = np.random.default_rng(0).integers(0, len(subjects), size=(resamples, len(subjects)))
    values = {name: [] for name in SCORES}
    for chosen in draws:
        index = np.concatenate([rows[subjects[k]] for k in chosen])
        scores = pooled_scores(part["true"].to_numpy()[index], part[column].to_numpy()[index], num_classes)
        for name in SCORES:
            values[name].append(scores[name])
    return {name: list(np.percentile(values[name], [2.5, 97.5])) for name in SCORES}


def seed_interval(values, bounds=None) -> list:
    """Student-t 95 % interval of the mean over seeds; [None, None] for one seed."""
    if len(values) < 2:
        return [None, None]
    if stats.sem(values) == 0:  # seeds that agree exactly: no spread (scipy would give NaN)
        low = high = np.mean(values)
    else:
        low, high = stats.t.interval(0.95, df=len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    if bounds is not None:
        low, high = np.clip([low, high], *bounds)
    return [float(low), float(high)]


def expected_summary(predictions: pd.DataFrame, class_names, resamples: int | None) -> dict:
    """metrics.json of ``predictions``; ``resamples=None`` leaves the bootstrap out (it is slow here)."""
    num_classes = len(class_names)
    labels = list(range(num_classes))
    seeds = sorted(int(s) for s in predictions["seed"].unique())
    summary = {"class_names": list(class_names), "seeds": seeds,
               "clips": int((predictions["seed"] == seeds[0]).sum()), "protocols": {}}
    per_seed_values = {}
    for protocol in PROTOCOLS:
        column = f"pred_{protocol}"
        per_seed = []
        for seed in seeds:
            part = predictions[predictions["seed"] == seed]
            row = {"seed": seed, **pooled_scores(part["true"], part[column], num_classes)}
            if resamples is not None:
                row["bootstrap95"] = subject_bootstrap(part, column, num_classes, resamples)
            per_seed.append(row)
        values = {name: [row[name] for row in per_seed] for name in SCORES}
        per_seed_values[protocol] = values
        true, predicted = predictions["true"].to_numpy(), predictions[column].to_numpy()
        precision, recall, f1, support = sk.precision_recall_fscore_support(true, predicted, labels=labels,
                                                                            zero_division=0)
        confusion = sk.confusion_matrix(true, predicted, labels=labels)
        summary["protocols"][protocol] = {
            "per_seed": per_seed,
            "mean": {name: float(np.mean(values[name])) for name in SCORES},
            "seed_ci95": {name: seed_interval(values[name], bounds=(0, 1)) for name in SCORES},
            "per_class": [
                {"class_index": k, "class_name": class_names[k], "support": int(support[k]),
                 "predicted": int((predicted == k).sum()), "true_positives": int(confusion[k, k]),
                 "precision": precision[k], "recall": recall[k], "f1": f1[k]}
                for k in labels
            ],
            "confusion": confusion.tolist(),
        }
    differences = {name: np.array(per_seed_values["oracle"][name]) - np.array(per_seed_values["fixed"][name])
                   for name in SCORES}
    summary["oracle_minus_fixed"] = {
        "mean": {name: float(differences[name].mean()) for name in SCORES},
        "seed_ci95": {name: seed_interval(differences[name]) for name in SCORES},  # not clipped: may be < 0
    }
    return summary


def assert_summary_matches(actual: dict, expected: dict, path: str = "metrics") -> None:
    """Every field of ``expected`` is in ``actual`` with the same value (floats to 1e-9)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: {actual!r} is not a mapping"
        for key, value in expected.items():
            assert key in actual, f"{path}: missing {key!r}"
            assert_summary_matches(actual[key], value, f"{path}.{key}")
    elif isinstance(expected, (list, tuple)):
        assert isinstance(actual, (list, tuple)) and len(actual) == len(expected), f"{path}: {actual!r} != {expected!r}"
        for k, (left, right) in enumerate(zip(actual, expected)):
            assert_summary_matches(left, right, f"{path}[{k}]")
    elif expected is None or isinstance(expected, str):
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"
    else:
        assert actual == pytest.approx(float(expected), abs=1e-9), f"{path}: {actual!r} != {expected!r}"
