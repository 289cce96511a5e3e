"""Run options: one row each, the one place an option is declared.

A run option is a setting beyond the paper's run that a request may change (a RunConfig field,
a ``tsfmicro train`` flag and, for some, a key of parameters files). Every user derives what it
needs from :data:`OPTIONS`:

- ``tsfmicro.engine.runs``: RunConfig's option fields (type and default), their validation, the
  run key's rule (an option enters the key only when it differs from its default, so keys made
  before the option existed hold), ``config_options`` (the plan's "options" column);
- ``tsfmicro.engine.recipes``: ``Recipe.as_dict`` (recipe options hashed into the key);
- ``tsfmicro.results``: ``Run.options``;
- ``tsfmicro.engine._cli``: the flags of ``tsfmicro train``;
- ``tsfmicro.params``: the parameters keys that set an option for every planned run;
- ``tsfmicro.model.registry``: which options a network is built with (owner ``model``).

Owners: ``model`` (the network: a ModelConfig field or the network itself, ``arch``),
``recipe`` (a field of tsfmicro.engine.recipes.Recipe: the key holds it inside the recipe),
``data`` (how the prepared data is read), ``split`` (how the data becomes folds; the run's
directory name says it, so ``Run.options`` leaves it out), ``transfer`` (pre-training and
fine-tuning: tsfmicro.engine.transfer).

Defaults: a value, or :data:`PRESET` / :data:`RECIPE` (RunConfig holds None, meaning the model
preset's or the recipe's own value; the engine resolves it).

This module is layer 0 and imports nothing of tsfmicro: ``choices`` name the module that owns
them (``"tsfmicro.engine.imbalance:LOSSES"``) and are looked up only when asked for, by the
engine, the command line or the parameters check (layers 2 and up).
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PRESET = "the preset's"  # RunConfig holds None: the model preset's value (tsfmicro.model.PRESETS)
RECIPE = "the recipe's"  # RunConfig holds None: the recipe's value (tsfmicro.engine.recipes)
OWNERS = ("model", "recipe", "data", "split", "transfer")
# How an option enters a run key
NOT_DEFAULT = "when not default"  # only when it differs from its (resolved) default
ALWAYS = "always"  # every key holds it (a recipe option inside the recipe; image_size resolved)
BY_SPLIT = "by the split"  # tsfmicro.engine.runs.request_identity: the split a request uses, its test dataset
ARCH = "arch"  # the option that picks the network (tsfmicro.model.registry)


@dataclass(frozen=True)
class Option:
    name: str  # RunConfig field and parameters key
    owner: str  # OWNERS
    default: Any  # RunConfig's default, or PRESET / RECIPE
    help: str  # the flag's help text
    choices: str | tuple | None = None  # "module:NAME" (looked up when asked), a tuple, or None: any `type`
    type: type = str  # str (a choice), int, float (a number), bool (a switch)
    key: str = NOT_DEFAULT
    variant: bool = True  # a chapter's variant: in the plan's options column and Run.options
    params: bool = False  # a top-level key of parameters files, applied to every planned run
    label: str | None = None  # its name in messages, when not `name`
    flag: str | None = None  # default: --name-with-dashes

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def what(self) -> str:
        return self.label or self.name

    @property
    def field_default(self) -> Any:
        """RunConfig's default: None for an option whose default is the preset's or the recipe's."""
        return None if self.default in (PRESET, RECIPE) else self.default

    def resolve_choices(self) -> tuple | None:
        """The valid values (the keys of a mapping), looked up in the owning module now."""
        choices = self.choices
        if isinstance(choices, str):
            module, _, name = choices.partition(":")
            choices = getattr(importlib.import_module(module), name)
        return None if choices is None else tuple(choices)


OPTIONS: list[Option] = [
    Option("epochs", "recipe", RECIPE, "override the recipe's number of epochs", type=int, key=ALWAYS,
           variant=False, params=True),
    Option("batch_size", "recipe", RECIPE, "override the recipe's batch size (32)", type=int, key=ALWAYS,
           variant=False, params=True),
    Option("precision", "recipe", RECIPE,
           "fp32 (the recipes' default, as the authors) or bf16 (autocast speed mode; the attention's decay and "
           "rotary stay fp32)", choices="tsfmicro.engine.recipes:PRECISIONS", key=ALWAYS, variant=False,
           params=True),
    Option("image_size", "model", PRESET,
           "the network's input side in pixels, a multiple of 16 (default: the preset's, paper 224, tiny 64); the "
           "face crops are cached at this size unless crop_size says otherwise", type=int, key=ALWAYS,
           variant=False, params=True),
    Option("rotary", "model", PRESET,
           "rotary position encoding: flat (the presets', the authors') or axial (our option)",
           choices="tsfmicro.model.retention:ROTARY", params=True),
    Option("temporal_branch", "model", PRESET,
           "the temporal branch's token mixer: retention (the paper's) or an ablation",
           choices="tsfmicro.model.config:TEMPORAL_BRANCHES"),
    Option("spatial_depth", "model", PRESET,
           "transformer blocks of the spatial branch (the paper's: 2, kept shallow against identity; a whole "
           "number >= 1)", type=int),
    Option("loss", "recipe", RECIPE,
           "training loss: cross_entropy (the recipes', the paper's), weighted_cross_entropy (inverse class "
           "frequency of each fold's training clips) or focal (gamma 2)", choices="tsfmicro.engine.imbalance:LOSSES"),
    Option("sampling", "recipe", RECIPE,
           "order of each epoch's training clips: shuffle (the recipes', the paper's), class_balanced (drawn "
           "with replacement, each class equally likely) or in_order (the table's order every epoch, no shuffling)",
           choices="tsfmicro.engine.imbalance:SAMPLINGS"),
    Option("supcon_weight", "recipe", RECIPE,
           "weight of the supervised contrastive loss beside the recipe's loss (Khosla et al. 2020; positives: "
           "same class, another subject; tsfmicro.engine.contrastive): a number >= 0, default 0 (off)", type=float),
    Option("supcon_temperature", "recipe", RECIPE,
           "temperature of the supervised contrastive loss, a number > 0 (default 0.1, Khosla et al.'s); only "
           "with --supcon-weight above 0", type=float),
    Option("frame_reselection", "data", False,
           "train on the (onset+i, apex-j) pair with the largest frame difference (the authors' optional "
           "re-selection; test clips keep the annotated frames); default: off", type=bool, params=True),
    Option("errata", "data", "keep",
           "the dataset owners' errata (CAS(ME)^3): keep the clips they would remove, as the authors' code does "
           "(default), or leave them out (owners); their corrections always apply",
           choices="tsfmicro.data:ERRATA_CHOICES", params=True, label="errata choice"),
    Option("apex", "data", "annotated",
           "the apex frame: the annotated one (default), or automatic: the frame between onset and offset whose "
           "face crop differs most from the onset's, for training and testing", choices="tsfmicro.data:APEX_CHOICES"),
    Option("split", "split", None,
           "how the data becomes folds: loso (default: one fold per subject), lodo (one fold per dataset of the "
           "megc2019 composite), cross_dataset (implied by --test-dataset)", choices="tsfmicro.data:SPLITS",
           key=BY_SPLIT),
    Option("test_dataset", "split", None,
           "cross-dataset: train on all of --dataset, test on all of this dataset (same --task)",
           choices="tsfmicro.data:DATASETS", key=BY_SPLIT, label="test dataset"),
    Option("quirks", "model", PRESET,
           "HTNet's quirks in its authors' code (transposed crop centres, one-token attention windows): authors "
           "(the network's default, reproduced) or fixed (corrected); tsfmicro.model.networks.htnet",
           choices="tsfmicro.model.networks.htnet:QUIRKS"),
    Option("pretrained", "transfer", None,
           "fine-tune from weights pre-trained on all clips of this source: a dataset (the cross-dataset run "
           "source -> this dataset) or composite (the MEGC2019 composite without this dataset: its "
           "leave-one-dataset-out fold); the pre-training run is derived, its folder is --source-root",
           choices="tsfmicro.engine.transfer:SOURCES", label="pre-training source"),
    Option("finetune", "transfer", "all",
           "with --pretrained, what fine-tuning trains: all (every weight, default), head (the final classifier "
           "only) or frozen_spatial (all but the spatial branch)", choices="tsfmicro.engine.transfer:FINETUNE_MODES",
           label="fine-tuning mode"),
    Option("finetune_recipe", "transfer", "short",
           "with --pretrained, the fine-tuning stage's recipe: short (default: a quarter of the run's epochs at a "
           "tenth of its learning rate) or full (the run's own recipe); tsfmicro.engine.transfer",
           choices="tsfmicro.engine.transfer:FINETUNE_RECIPES", label="fine-tuning recipe"),
    Option(ARCH, "model", "tsfmicro",
           "the network (tsfmicro.model.registry): tsfmicro (the paper's, default; its variants are --fusion) "
           "or another registered network", choices="tsfmicro.model.registry:MODELS", params=True),
]


def option(name: str) -> Option:
    for row in OPTIONS:
        if row.name == name:
            return row
    raise KeyError(f"no run option {name!r}; options: {', '.join(o.name for o in OPTIONS)}")


def owned_by(owner: str) -> list[Option]:
    return [row for row in OPTIONS if row.owner == owner]


def model_options(settings: Any) -> dict:
    """The network options (owner ``model``, except ``arch``) ``settings`` sets (not None):
    ``settings`` is a RunConfig or a run's config.yaml mapping."""
    get = settings.get if isinstance(settings, Mapping) else lambda name: getattr(settings, name, None)
    return {row.name: get(row.name) for row in owned_by("model")
            if row.name != ARCH and get(row.name) is not None}
