"""Evaluation splits, by name (``SPLITS``): how a request's samples become folds.

* ``loso`` (the default, the paper's): one fold per subject, trained on every other subject.
* ``lodo``: one fold per dataset of a composite (MEGC2019: CASME II, SAMM, SMIC), trained on
  the other datasets.
* ``cross_dataset``: one fold, trained on every clip of one dataset and tested on every clip of
  another (samples joined by tsfmicro.data.cross_dataset, whose ``role`` column says which).

Each maps a sample table to its folds. Folds hold row positions (0..N-1) into the sample
table, so they index the prepared arrays directly.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from .cross_dataset import ROLE_COLUMN, TEST, TRAIN


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


class TooFewSubjects(ValueError):
    """Leave-one-subject-out on fewer than 2 subjects: no fold would have training clips."""

    def __init__(self, subjects: list[str]):
        self.subjects = subjects
        super().__init__(f"LOSO needs at least 2 subjects; the samples have {len(subjects)}"
                         + (f" ({', '.join(subjects)})" if subjects else ""))


def loso_splits(samples: pd.DataFrame) -> list[Fold]:
    """One fold per subject, in natural order (sub2 before sub10)."""
    keys = subject_keys(samples)
    if keys.nunique() < 2:  # else a fold trains on nothing and fails deep inside the model
        raise TooFewSubjects(sorted(keys.unique()))
    return _leave_one_out(keys)


def lodo_splits(samples: pd.DataFrame) -> list[Fold]:
    """One fold per dataset of a composite: train on the others, test on it."""
    datasets = samples["dataset"].astype(str).reset_index(drop=True)
    if datasets.nunique() < 2:
        raise ValueError(f"leave-one-dataset-out needs at least 2 datasets; found {sorted(datasets.unique())}")
    return _leave_one_out(datasets)


def cross_dataset_splits(samples: pd.DataFrame) -> list[Fold]:
    """One fold named after the test dataset: train on the ``role == "train"`` rows (all of
    dataset A), test on the ``role == "test"`` rows (all of dataset B)."""
    if ROLE_COLUMN not in samples:
        raise ValueError("cross-dataset split: the samples have no 'role' column; join the two datasets with "
                         "tsfmicro.data.cross_dataset.join_for_cross_dataset")
    roles = samples[ROLE_COLUMN].astype(str).to_numpy()
    unknown = sorted(set(roles) - {TRAIN, TEST})
    if unknown:
        raise ValueError(f"cross-dataset split: unknown role(s) {unknown}; expected {TRAIN} or {TEST}")
    test = roles == TEST
    if test.all() or not test.any():
        raise ValueError(f"cross-dataset split: needs rows of both roles; found {sorted(set(roles))}")
    tested = sorted(set(samples["dataset"].astype(str).to_numpy()[test]))
    return [Fold("+".join(tested), np.flatnonzero(~test), np.flatnonzero(test))]


# The named splits a training request may ask for (RunConfig.split); each maps samples to folds.
SPLITS: dict[str, Callable[[pd.DataFrame], list[Fold]]] = {
    "loso": loso_splits,
    "lodo": lodo_splits,
    "cross_dataset": cross_dataset_splits,
}


def _leave_one_out(groups: pd.Series) -> list[Fold]:
    values = groups.to_numpy()
    folds = []
    for name in sorted(groups.unique(), key=_natural_key):
        test = values == name
        folds.append(Fold(str(name), np.flatnonzero(~test), np.flatnonzero(test)))
    return folds


def _natural_key(text: str) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", str(text))]
