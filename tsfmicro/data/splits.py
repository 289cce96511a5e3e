"""Evaluation splits: leave one subject out (LOSO) and leave one dataset out (LODO).

Folds hold row positions (0..N-1) into the sample table, so they index the prepared
arrays directly.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Fold:
    name: str  # the held-out subject (or dataset)
    train_index: np.ndarray
    test_index: np.ndarray


def subject_keys(samples: pd.DataFrame) -> pd.Series:
    """Subject ids that are unique across datasets.

    The composite already writes "casme2/sub01"; otherwise a subject name that occurs
    in more than one dataset is prefixed with its dataset.
    """
    subjects = samples["subject"].astype(str)
    if "dataset" not in samples:
        return subjects.reset_index(drop=True)
    datasets = samples["dataset"].astype(str)
    shared = subjects.groupby(subjects).transform(lambda group: datasets[group.index].nunique() > 1)
    keys = subjects.where(~shared.astype(bool), datasets + "/" + subjects)
    return keys.reset_index(drop=True)


def loso_splits(samples: pd.DataFrame) -> list[Fold]:
    """One fold per subject, in natural order (sub2 before sub10)."""
    return _leave_one_out(subject_keys(samples))


def lodo_splits(samples: pd.DataFrame) -> list[Fold]:
    """One fold per dataset of a composite: train on the others, test on it."""
    datasets = samples["dataset"].astype(str).reset_index(drop=True)
    if datasets.nunique() < 2:
        raise ValueError(f"leave-one-dataset-out needs at least 2 datasets; found {sorted(datasets.unique())}")
    return _leave_one_out(datasets)


def _leave_one_out(groups: pd.Series) -> list[Fold]:
    values = groups.to_numpy()
    folds = []
    for name in sorted(groups.unique(), key=_natural_key):
        test = values == name
        folds.append(Fold(str(name), np.flatnonzero(~test), np.flatnonzero(test)))
    return folds


def _natural_key(text: str) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", str(text))]
