"""Datasets: official-file readers, face crops with a cache, synthetic data, splits.

Each dataset is one spec (tsfmicro.data.specs.DatasetSpec) in its module of
tsfmicro/data/datasets/; tsfmicro.data.registry derives every list from them.

Public API:
    DATASETS, TASKS, class_names(dataset, task); registry.dataset_spec(dataset) -> DatasetSpec
    load_samples(dataset, root, task, strict=False, errata="keep") -> SampleTable
    prepare(dataset, root, task, *, crop_size=224, margin=0.1, use_precropped=False,
            cache_dir=None, progress=True, reselect_frames=False, errata="keep",
            apex="annotated", shifts=(), boxes=False) -> PreparedData
    APEX_CHOICES = ("annotated", "automatic"): the apex frame (tsfmicro.data.moved_frames)
    ERRATA_CHOICES = ("keep", "owners"): the dataset owners' errata (tsfmicro.data.errata)
    loso_splits(samples), lodo_splits(samples), cross_dataset_splits(samples) -> list[Fold]
    SPLITS = {"loso", "lodo", "cross_dataset"}: name -> function(samples) -> list[Fold]
    join_for_cross_dataset(train, test) -> PreparedData: A's clips (role train), B's (role test)
    write_synthetic(layout, out, subjects=8, clips_per_subject=10, seed=0) -> Path

For megc2019, ``root`` is {"casme2": dir, "samm": dir, "smic": dir, "list": csv path} or a
folder holding casme2/, samm/, smic/ and combined_3class_gt.csv.
"""
from .annotations import load_samples
from .cache import default_cache_dir, prepare
from .errata import ERRATA_CHOICES
from .moved_frames import APEX_CHOICES
from .registry import DATASETS, TASKS, class_names
from .cross_dataset import join_for_cross_dataset
from .splits import SPLITS, Fold, cross_dataset_splits, lodo_splits, loso_splits
from .synthetic import write_synthetic
from .types import PreparedData, SampleTable

__all__ = [
    "APEX_CHOICES", "DATASETS", "ERRATA_CHOICES", "TASKS", "class_names", "load_samples", "prepare", "default_cache_dir",
    "loso_splits", "lodo_splits", "cross_dataset_splits", "SPLITS", "join_for_cross_dataset", "Fold",
    "write_synthetic", "PreparedData", "SampleTable",
]
