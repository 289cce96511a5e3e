"""Datasets, tasks and class maps: the one place that says which label goes to which class.

Labels are compared after ``normalise_label`` (trimmed, lower case, dataset aliases applied),
so SAMM's ``Other``/``Others`` and CAS(ME)^3's ``others``/``Others`` fall together.
Three-class tasks always use the MEGC order negative, positive, surprise (0, 1, 2).

``3class_megc`` is the task every dataset shares, for training on one dataset and testing on
another (cross-dataset, leave-one-dataset-out): the MEGC2019 grouping for CASME II, SAMM and
SMIC, and the same grouping for CAS(ME)^3 with ``others`` dropped. Each task names its source.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

MARKER_FILE = "TSFMICRO_SYNTHETIC.txt"  # written by the synthetic writer; makes results say SYNTHETIC
SYNTHETIC_SOURCE = "SYNTHETIC"


@dataclass(frozen=True)
class Task:
    class_names: tuple[str, ...]
    label_to_class: Mapping[str, str]  # normalised annotation label -> class name
    source: str = ""  # where the grouping comes from


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    display_name: str
    labels: tuple[str, ...]  # every normalised label the official annotation may carry
    tasks: Mapping[str, Task]
    aliases: Mapping[str, str] = field(default_factory=dict)
    parts: tuple[str, ...] = ()  # a composite's datasets (leave-one-dataset-out holds out each)


def _identity_task(names: tuple[str, ...], source: str = "the dataset's own labels") -> Task:
    return Task(names, {name: name for name in names}, source)


def _three_class(negative: tuple[str, ...], positive: tuple[str, ...], surprise: tuple[str, ...],
                 extra: tuple[str, ...] = (), source: str = "") -> Task:
    """Group emotions into MEGC-style classes; ``extra`` classes keep their own name."""
    mapping = {label: "negative" for label in negative}
    mapping.update({label: "positive" for label in positive})
    mapping.update({label: "surprise" for label in surprise})
    mapping.update({label: label for label in extra})
    return Task(("negative", "positive", "surprise") + extra, mapping, source)


MEGC2019_SOURCE = ("MEGC2019 composite 3-class grouping (See et al., FG 2019; the official "
                   "combined_3class_gt.csv)")
SHARED_TASK = "3class_megc"  # the task every dataset has, for cross-dataset protocols


_REGISTRY: dict[str, DatasetInfo] = {
    "casme2": DatasetInfo(
        name="casme2",
        display_name="CASME II",
        labels=("happiness", "surprise", "disgust", "repression", "others", "fear", "sadness"),
        tasks={
            "5class": _identity_task(("happiness", "surprise", "disgust", "repression", "others")),
            # The authors' code puts fear and sadness into negative (the MEGC list does not).
            "3class": _three_class(("disgust", "repression", "fear", "sadness"), ("happiness",), ("surprise",),
                                   source="the TSFmicro authors' code (Cross-Innovation-Lab/TSFmicro)"),
            # MEGC2019: negative = disgust + repression; fear, sadness and others dropped
            SHARED_TASK: _three_class(("disgust", "repression"), ("happiness",), ("surprise",), source=MEGC2019_SOURCE),
        },
    ),
    "samm": DatasetInfo(
        name="samm",
        display_name="SAMM",
        labels=("anger", "contempt", "happiness", "surprise", "other", "disgust", "fear", "sadness"),
        aliases={"others": "other"},
        tasks={
            "5class": _identity_task(("anger", "contempt", "happiness", "surprise", "other")),
            "3class": _three_class(("anger", "contempt", "disgust", "fear", "sadness"), ("happiness",), ("surprise",),
                                   source="the TSFmicro authors' code, equal to MEGC2019's"),
            SHARED_TASK: _three_class(("anger", "contempt", "disgust", "fear", "sadness"), ("happiness",),
                                      ("surprise",), source=MEGC2019_SOURCE),
        },
    ),
    "casme3": DatasetInfo(
        name="casme3",
        display_name="CAS(ME)^3 Part A",
        labels=("anger", "disgust", "fear", "happy", "sad", "surprise", "others"),
        tasks={
            "7class": _identity_task(("anger", "disgust", "fear", "happy", "sad", "surprise", "others")),
            "4class": _three_class(("anger", "disgust", "fear", "sad"), ("happy",), ("surprise",), extra=("others",),
                                   source="the TSFmicro authors' code (CAS(ME)^3 4-class)"),
            # the MEGC grouping applied to CAS(ME)^3's labels, ``others`` dropped (our choice, stated)
            SHARED_TASK: _three_class(("anger", "disgust", "fear", "sad"), ("happy",), ("surprise",),
                                      source="MEGC2019 grouping applied to CAS(ME)^3 by tsfmicro (others dropped)"),
        },
    ),
    "smic": DatasetInfo(
        name="smic",
        display_name="SMIC-HS",
        labels=("negative", "positive", "surprise"),
        tasks={"3class": _identity_task(("negative", "positive", "surprise"), source="SMIC-HS folders"),
               SHARED_TASK: _identity_task(("negative", "positive", "surprise"), source=MEGC2019_SOURCE)},
    ),
    "megc2019": DatasetInfo(
        name="megc2019",
        display_name="MEGC2019 composite",
        labels=("negative", "positive", "surprise"),
        tasks={"3class": _identity_task(("negative", "positive", "surprise"), source=MEGC2019_SOURCE)},
        parts=("casme2", "samm", "smic"),
    ),
}

DATASETS: tuple[str, ...] = tuple(_REGISTRY)
TASKS: dict[str, tuple[str, ...]] = {name: tuple(info.tasks) for name, info in _REGISTRY.items()}


def dataset_info(dataset: str) -> DatasetInfo:
    try:
        return _REGISTRY[dataset]
    except KeyError:
        raise KeyError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}") from None


def task_info(dataset: str, task: str) -> Task:
    info = dataset_info(dataset)
    try:
        return info.tasks[task]
    except KeyError:
        raise KeyError(f"unknown task {task!r} for {dataset}; known: {', '.join(info.tasks)}") from None


def class_names(dataset: str, task: str) -> list[str]:
    """Class names of a task in class-index order."""
    return list(task_info(dataset, task).class_names)


def unmapped_classes(dataset: str, task: str) -> list[str]:
    """Classes of ``task`` that no label of ``dataset`` maps to: a class map that would leave
    them empty whatever the data (a request that trains or tests on it is refused)."""
    info, task_map = dataset_info(dataset), task_info(dataset, task)
    reached = {task_map.label_to_class[label] for label in info.labels if label in task_map.label_to_class}
    return [name for name in task_map.class_names if name not in reached]


def shared_tasks(*datasets: str) -> list[str]:
    """Tasks every one of ``datasets`` has (in the first one's order)."""
    return [task for task in TASKS[datasets[0]] if all(task in TASKS[d] for d in datasets[1:])]


def normalise_label(dataset: str, label: object) -> str:
    text = str(label).strip().lower()
    return dataset_info(dataset).aliases.get(text, text)


def published_size(dataset: str, task: str) -> dict[str, int]:
    """Clips and subjects of a real dataset's task as published (``published_sizes.csv``), for
    planning before the dataset's folder is given."""
    path = Path(__file__).with_name("published_sizes.csv")
    with path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(line for line in handle if not line.startswith("#")):
            if (row["dataset"], row["task"]) == (dataset, task):
                return {"clips": int(row["clips"]), "subjects": int(row["subjects"])}
    raise KeyError(f"no published size for {dataset} {task} in {path}")
