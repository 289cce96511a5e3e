"""Pre-training on a source, then fine-tuning under the target's LOSO folds.

A fine-tuning request is a LOSO request on the target dataset with the run option ``pretrained``
(tsfmicro.options): every fold starts from weights trained on all clips of the source, which no
subject of the target ever enters, so a held-out subject is never seen in either stage.

The pre-training stage is an ordinary run, derived from the fine-tuning request by
:func:`pretraining_config` (never typed), so it is cached, resumable and priced like any other:

* ``pretrained: <dataset>``: the cross-dataset run ``<dataset> -> <target>`` (one fold, trained
  on all of the source, named after the target), the very run of the cross-dataset chapter when
  the options agree; its fold weights are kept for every seed a fine-tuning request needs.
* ``pretrained: composite``: the MEGC2019 composite's leave-one-dataset-out run, whose fold that
  holds the target out is trained on the other parts only (the composite without the target).
  The target must be a part of the composite, on the composite's 3-class grouping (3class_megc):
  a target outside the composite could share people with it in ways the list does not say, and
  is refused.

The plan (tsfmicro.engine.plan) lists the pre-training units as what the fine-tuning units need;
the executor trains them first (tsfmicro.engine.execute: waves).

What fine-tuning trains (``finetune``): ``all`` (every weight), ``head`` (the final classifier,
``model.classifier`` of the model contract, so it works for every network; the rest frozen, its
normalisation statistics too) or ``frozen_spatial`` (TSFmicro's spatial branch frozen, the
temporal branch and head trained: the identity-prone appearance branch keeps what the source
taught it).

The fine-tuning recipe (``finetune_recipe``): ``short``, a tenth of the run recipe's learning
rate, as R-CNN fine-tuned its pre-trained network ("a learning rate of 0.001 (1/10th of the
initial pre-training rate)", Girshick et al., CVPR 2014, section 2.3), for a quarter of its epochs
(rounded up; our choice, for the budget: the weights start close to a solution); ``full``: the
run's own recipe, as training from scratch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from tsfmicro.data import DATASETS

COMPOSITE = "composite"  # the source "the MEGC2019 composite without the target"
COMPOSITE_DATASET, COMPOSITE_TASK = "megc2019", "3class"  # the composite and its task
SHARED_TASK = "3class_megc"  # the composite's grouping, as each part's task
SOURCES = (*DATASETS, COMPOSITE)
FINETUNE_MODES = ("all", "head", "frozen_spatial")


@dataclass(frozen=True)
class FinetuneRecipe:
    """How the fine-tuning stage changes the run's recipe."""

    epochs_fraction: float
    learning_rate_factor: float


FINETUNE_RECIPES = {
    "short": FinetuneRecipe(epochs_fraction=0.25, learning_rate_factor=0.1),
    "full": FinetuneRecipe(epochs_fraction=1.0, learning_rate_factor=1.0),
}


class SubjectLeak(ValueError):
    """A pre-training fold would train on a clip of one of the fine-tuning target's subjects."""


def finetune_recipe(recipe, name: str):
    """``recipe`` (tsfmicro.engine.recipes.Recipe) turned into the fine-tuning stage's."""
    rule = FINETUNE_RECIPES[name]
    epochs = max(1, math.ceil(recipe.epochs * rule.epochs_fraction))
    return replace(recipe, epochs=epochs, decay_epochs=min(recipe.decay_epochs, epochs),
                   learning_rate=recipe.learning_rate * rule.learning_rate_factor)


def check_config(config) -> None:
    """The transfer options of ``config`` (a RunConfig), before any work: one-line errors."""
    from tsfmicro.data.registry import dataset_info
    from tsfmicro.model.registry import DEFAULT_ARCH

    if config.pretrained is None:
        for name, default in (("finetune", "all"), ("finetune_recipe", "short")):
            if getattr(config, name) != default:
                raise ValueError(f"{name} {getattr(config, name)!r} is for fine-tuning: give pretrained "
                                 "(--pretrained SOURCE) too")
        return
    if config.test_dataset is not None or config.split not in (None, "loso"):
        raise ValueError("pretrained: fine-tuning runs the target's LOSO folds; give no test_dataset or split")
    if config.pretrained == config.dataset:
        raise ValueError(f"pretrained {config.pretrained} is the fine-tuning dataset itself: pre-training on all of "
                         "its clips would show every held-out subject to the model; choose another source")
    if config.pretrained == COMPOSITE:
        parts = dataset_info(COMPOSITE_DATASET).parts
        if config.dataset not in parts:
            raise SubjectLeak(f"pretrained composite: {config.dataset} is not a part of the {COMPOSITE_DATASET} "
                              f"composite ({', '.join(parts)}), so no fold of it leaves {config.dataset}'s subjects "
                              "out for certain; pre-train on a dataset instead")
        if config.task != SHARED_TASK:
            raise ValueError(f"pretrained composite: fine-tune on the composite's grouping, task {SHARED_TASK} "
                             f"(got {config.task})")
    if not config.source_root:
        raise ValueError(f"give the folder of the pre-training source {config.pretrained} (source_root / "
                         "--source-root)")
    if not Path(config.source_root).exists():
        raise FileNotFoundError(f"pre-training source root {config.source_root} does not exist")
    if config.finetune == "frozen_spatial" and (config.arch != DEFAULT_ARCH
                                                or config.fusion in ("temporal_only", "ts_early")):
        raise ValueError(f"finetune frozen_spatial freezes TSFmicro's spatial branch; {config.arch} "
                         f"{config.fusion} has none")


def pretraining_config(config):
    """The RunConfig of the pre-training run a fine-tuning ``config`` starts from: the same
    settings and options (so it is the cross-dataset chapter's run when they agree), trained on all
    of the source (the composite: its leave-one-dataset-out run), seeds as ``config``'s."""
    transfer = {"pretrained": None, "finetune": "all", "finetune_recipe": "short", "source_root": None}
    if config.pretrained == COMPOSITE:
        return replace(config, dataset=COMPOSITE_DATASET, task=COMPOSITE_TASK, root=config.source_root,
                       split="lodo", test_dataset=None, test_root=None, **transfer)
    return replace(config, dataset=config.pretrained, root=config.source_root, split=None,
                   test_dataset=config.dataset, test_root=config.root, **transfer)


def source_fold(config) -> str:
    """The fold of the pre-training unit whose weights fine-tuning starts from: the cross-dataset
    fold is named after its test dataset, the LODO fold after the held-out part; both = the target."""
    return config.dataset


def clip_people(samples, rows=None) -> set[tuple[str, str]]:
    """(dataset, subject) of the rows ``rows`` of ``samples`` (all when None); a subject id prefixed
    with its dataset (joined and composite tables, "samm/006") is read without the prefix."""
    table = samples if rows is None else samples.iloc[rows]
    return {(dataset, subject.removeprefix(f"{dataset}/"))
            for dataset, subject in zip(table["dataset"].astype(str), table["subject"].astype(str))}


def check_no_leak(source_samples, source_train_rows, target_samples, source: str, target: str) -> None:
    """Refuse when the pre-training fold's training clips hold a clip of any subject of the target."""
    shared = clip_people(source_samples, source_train_rows) & clip_people(target_samples)
    if shared:
        people = ", ".join(f"{d}/{s}" for d, s in sorted(shared)[:5])
        raise SubjectLeak(f"pretrained {source}: the pre-training clips hold {len(shared)} subject(s) of the "
                          f"fine-tuning target {target} ({people}{', ...' if len(shared) > 5 else ''}): a held-out "
                          "subject would be seen in pre-training")


def initialise(model: torch.nn.Module, weights: str | Path, fold: str, mode: str) -> torch.nn.Module:
    """Load the pre-trained ``weights`` (fold ``fold``'s, tsfmicro.engine.loso.save_fold_weights)
    into ``model`` and freeze what ``mode`` keeps fixed."""
    from tsfmicro._io import load_tagged

    if not Path(weights).exists():  # the plan trains the pre-training unit first; never start without it
        raise FileNotFoundError(f"the pre-trained weights {weights} are not there: the pre-training unit must "
                                "finish before fine-tuning starts")
    model.load_state_dict(load_tagged(weights, f"weights:{fold}")["model"])
    if mode == "head":
        trained = {id(p) for p in model.classifier.parameters()}
        for parameter in model.parameters():
            parameter.requires_grad_(id(parameter) in trained)
    elif mode == "frozen_spatial":
        model.spatial.requires_grad_(False)
    return model
