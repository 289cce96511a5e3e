"""The datasets tsfmicro knows, and every list derived from their specs (tsfmicro.data.specs;
one module per dataset in tsfmicro/data/datasets/): names, tasks and class maps, synthetic
layouts, published sizes, the missing-folder message.

Labels are compared after ``normalise_label`` (trimmed, lower case, dataset aliases applied),
so SAMM's ``Other``/``Others`` and CAS(ME)^3's ``others``/``Others`` fall together.
Three-class tasks always use the MEGC order negative, positive, surprise (0, 1, 2).

``3class_megc`` is the task every dataset shares, for training on one dataset and testing on
another (cross-dataset, leave-one-dataset-out): the MEGC2019 grouping for CASME II, SAMM and
SMIC, and the same grouping for CAS(ME)^3 with ``others`` dropped. Each task names its source.
"""
from __future__ import annotations

from .datasets import SPECS
from .specs import MARKER_FILE, MEGC2019_SOURCE, SHARED_TASK, SYNTHETIC_SOURCE, DatasetSpec, Task

__all__ = ["DATASETS", "TASKS", "SYNTHETIC_LAYOUTS", "DatasetSpec", "DatasetInfo", "Task", "MARKER_FILE",
           "SYNTHETIC_SOURCE", "SHARED_TASK", "MEGC2019_SOURCE", "dataset_spec", "dataset_info", "task_info",
           "class_names", "display_name", "unmapped_classes", "shared_tasks", "normalise_label", "published_size",
           "missing_folder_help"]

DatasetInfo = DatasetSpec  # the name this record had before it held a dataset's every fact

_REGISTRY: dict[str, DatasetSpec] = {spec.name: spec for spec in SPECS}

DATASETS: tuple[str, ...] = tuple(_REGISTRY)
TASKS: dict[str, tuple[str, ...]] = {name: tuple(spec.tasks) for name, spec in _REGISTRY.items()}
# Datasets with a synthetic copy: `tsfmicro synth --layout`, the demo's synthetic roots
SYNTHETIC_LAYOUTS: tuple[str, ...] = tuple(name for name, spec in _REGISTRY.items() if spec.synthetic is not None)


def dataset_spec(dataset: str) -> DatasetSpec:
    try:
        return _REGISTRY[dataset]
    except KeyError:
        raise KeyError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}") from None


dataset_info = dataset_spec


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
    return dataset_info(dataset).normalise_label(label)


def published_size(dataset: str, task: str) -> dict[str, int]:
    """Clips and subjects of a real dataset's task as published (its spec's ``published``), for
    planning before the dataset's folder is given."""
    size = dataset_info(dataset).published.get(task)
    if size is None:
        raise KeyError(f"no published size for {dataset} {task} (tsfmicro/data/datasets/{dataset}.py)")
    return {"clips": size.clips, "subjects": size.subjects}


def display_name(dataset: str) -> str:
    """The one name shown to people (the name itself for a dataset tsfmicro does not know)."""
    spec = _REGISTRY.get(dataset)
    return spec.display_name if spec else dataset


def missing_folder_help(dataset: str) -> tuple[str, str, str]:
    """(display name, licence and how to obtain it, an example of the unpacked folder) of a
    dataset, for the message when its folder is missing; an unknown name gets general advice."""
    spec = _REGISTRY.get(dataset)
    if spec is None:
        return dataset, "see the Datasets page", "the official layout"
    return spec.display_name, spec.obtain, spec.layout
