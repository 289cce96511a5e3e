"""Two prepared datasets as one, for training on all of one and testing on all of the other.

``join_for_cross_dataset(train, test)`` stacks the face crops of dataset A (``train``) and
dataset B (``test``), prepared on the same task (the shared ``3class_megc``), into one
:class:`~tsfmicro.data.PreparedData` whose ``samples`` say, in the ``role`` column, which rows
are trained on (``"train"``: every clip of A) and which are tested (``"test"``: every clip of B).
``tsfmicro.data.splits.cross_dataset_splits`` turns that into the request's one fold, so the
training engine needs nothing else: one fold trains on A's rows and scores B's rows after every
epoch.

Subjects never appear on both sides: A and B are different datasets, and every subject id is
prefixed with its dataset ("samm/006", "casme2/sub01") so that two datasets' subject names (both
could have a "1") cannot meet; the join checks that no prefixed id is on both sides.

Clear errors, before any training: the two datasets are the same, their tasks differ, or a class
of the task has no clip on one side (a model trained without a class cannot predict it; a test
set without a class makes its F1 and recall zero by the scoring convention, tsfmicro.metrics).
"""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from .types import PreparedData

ROLE_COLUMN = "role"
TRAIN, TEST = "train", "test"


def join_for_cross_dataset(train: PreparedData, test: PreparedData) -> PreparedData:
    """A's clips (role ``train``) followed by B's (role ``test``), subjects prefixed by dataset."""
    if train.dataset == test.dataset:
        raise ValueError(f"cross-dataset: the test dataset is the training dataset ({train.dataset}); "
                         "train on one dataset and test on another (for LOSO on one dataset, give no test dataset)")
    if train.task != test.task or list(train.class_names) != list(test.class_names):
        raise ValueError(f"cross-dataset: {train.dataset} {train.task} has classes {list(train.class_names)} but "
                         f"{test.dataset} {test.task} has {list(test.class_names)}; both must be prepared on the "
                         "same task (the shared 3class_megc)")
    for data, side in ((train, "training"), (test, "test")):
        missing = empty_classes(data)
        if missing:
            raise ValueError(f"cross-dataset: {data.dataset} {data.task} has no clip of class(es) "
                             f"{', '.join(missing)}, so the {side} set would leave them empty "
                             f"({len(data.samples)} clips in {data.source}); UF1 and UAR average over every class")
    samples = pd.concat([_side(train, TRAIN), _side(test, TEST)], ignore_index=True)
    both = set(samples.loc[samples[ROLE_COLUMN] == TRAIN, "subject"]) & set(
        samples.loc[samples[ROLE_COLUMN] == TEST, "subject"])
    if both:  # cannot happen with two different datasets; checked so that it never does silently
        raise ValueError(f"cross-dataset: subject id(s) {sorted(both)} on both sides")
    train_onset, train_apex = _stacked_training_pair(train, test)
    return PreparedData(
        dataset=f"{train.dataset}_to_{test.dataset}",
        task=train.task,
        samples=samples,
        onset=np.concatenate([train.onset, test.onset]),
        apex=np.concatenate([train.apex, test.apex]),
        class_names=list(train.class_names),
        excluded=pd.concat([train.excluded, test.excluded], ignore_index=True),
        source=_source(train, test),
        cache_key=hashlib.sha256(f"{train.cache_key}+{test.cache_key}".encode()).hexdigest()[:16],
        cache_path=None,
        train_onset=train_onset,
        train_apex=train_apex,
        corrections=pd.concat([train.corrections, test.corrections], ignore_index=True),
    )


def empty_classes(data: PreparedData) -> list[str]:
    """Class names of ``data``'s task that no clip has."""
    present = set(data.samples["class_index"].astype(int))
    return [name for index, name in enumerate(data.class_names) if index not in present]


def _side(data: PreparedData, role: str) -> pd.DataFrame:
    samples = data.samples.reset_index(drop=True).copy()
    # a composite already writes "casme2/sub01"; anything else gets its dataset in front
    samples["subject"] = [subject if subject.startswith(f"{dataset}/") else f"{dataset}/{subject}"
                          for subject, dataset in zip(samples["subject"].astype(str), samples["dataset"].astype(str))]
    samples[ROLE_COLUMN] = role
    return samples


def _stacked_training_pair(train: PreparedData, test: PreparedData):
    """The re-selected training frames of both sides, or None when they were not prepared."""
    if train.train_onset is None or test.train_onset is None:
        return None, None
    return (np.concatenate([train.train_onset, test.train_onset]),
            np.concatenate([train.train_apex, test.train_apex]))


def _source(train: PreparedData, test: PreparedData) -> str:
    if train.is_synthetic or test.is_synthetic:
        return train.source if train.is_synthetic else test.source
    return f"{train.source} + {test.source}"
