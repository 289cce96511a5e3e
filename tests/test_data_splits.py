"""Leave-one-subject-out and leave-one-dataset-out splits."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tsfmicro.data import load_samples, lodo_splits, loso_splits


def test_loso_holds_out_each_subject_once(synthetic_casme2_root):
    samples = load_samples("casme2", synthetic_casme2_root, "5class").samples
    folds = loso_splits(samples)
    assert [fold.name for fold in folds] == ["sub01", "sub02", "sub03", "sub04"]
    tested = np.concatenate([fold.test_index for fold in folds])
    assert sorted(tested) == list(range(len(samples)))
    for fold in folds:
        assert set(fold.train_index).isdisjoint(fold.test_index)
        assert len(fold.train_index) + len(fold.test_index) == len(samples)
        assert set(samples["subject"].iloc[fold.test_index]) == {fold.name}
        assert fold.name not in set(samples["subject"].iloc[fold.train_index])


def test_loso_natural_order_and_positions_not_labels():
    samples = pd.DataFrame({"dataset": "casme2", "subject": ["sub10", "sub2", "sub2", "sub1"]}, index=[7, 8, 9, 3])
    folds = loso_splits(samples)
    assert [fold.name for fold in folds] == ["sub1", "sub2", "sub10"]
    assert folds[1].test_index.tolist() == [1, 2]


def test_subjects_unique_across_datasets():
    samples = pd.DataFrame({"dataset": ["casme2", "samm", "samm"], "subject": ["006", "006", "007"]})
    assert [fold.name for fold in loso_splits(samples)] == ["007", "casme2/006", "samm/006"]


def test_composite_loso_and_lodo(synthetic_megc_root):
    samples = load_samples("megc2019", synthetic_megc_root, "3class").samples
    folds = loso_splits(samples)
    assert len(folds) == samples["subject"].nunique() == 6
    by_dataset = {fold.name: fold for fold in lodo_splits(samples)}
    assert set(by_dataset) == {"casme2", "samm", "smic"}
    for name, fold in by_dataset.items():
        assert set(samples["dataset"].iloc[fold.test_index]) == {name}
        assert name not in set(samples["dataset"].iloc[fold.train_index])


def test_lodo_needs_two_datasets(synthetic_casme2_root):
    samples = load_samples("casme2", synthetic_casme2_root, "5class").samples
    with pytest.raises(ValueError, match="at least 2 datasets"):
        lodo_splits(samples)


def test_splits_by_name_and_the_cross_dataset_fold():
    from tsfmicro.data import SPLITS, cross_dataset_splits

    assert set(SPLITS) == {"loso", "lodo", "cross_dataset"}
    samples = pd.DataFrame({"dataset": ["samm", "samm", "casme2", "samm", "casme2"],
                            "subject": ["samm/006", "samm/007", "casme2/sub01", "samm/006", "casme2/sub02"],
                            "role": ["train", "train", "test", "train", "test"]})
    (fold,) = SPLITS["cross_dataset"](samples)
    assert fold.name == "casme2"
    assert fold.train_index.tolist() == [0, 1, 3] and fold.test_index.tolist() == [2, 4]
    assert [f.name for f in SPLITS["loso"](samples)] == ["casme2/sub01", "casme2/sub02", "samm/006", "samm/007"]
    assert [f.name for f in SPLITS["lodo"](samples)] == ["casme2", "samm"]
    with pytest.raises(ValueError, match="no 'role' column"):
        cross_dataset_splits(samples.drop(columns="role"))
    with pytest.raises(ValueError, match="needs rows of both roles"):
        cross_dataset_splits(samples.assign(role="train"))
    with pytest.raises(ValueError, match=r"unknown role\(s\) \['valid'\]"):
        cross_dataset_splits(samples.assign(role=["train", "valid", "test", "train", "test"]))
