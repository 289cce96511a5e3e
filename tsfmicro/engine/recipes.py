"""Training recipes: the paper's text and the authors' code, as named presets.

Both share the optimiser (AdamW, lr 8e-4, batch 32, cross-entropy) and the values the paper
leaves out but the authors' code sets: weight decay 0.6 (0.7 for the 3-class scripts) and
ExponentialLR gamma 0.987. They differ in length:

* ``paper``: 50 epochs, the learning rate decays every epoch (the paper's text), for every
  dataset, task and fusion.
* ``authors_code``: the number of epochs of the script the authors run for that model, with
  the decay stepped only during the first 50 epochs (then the rate stays at 8e-4 * 0.987**50).
  The ``classes/`` scripts train T-S late (``ts_late``, the paper's method); the ``fusion/``
  scripts train the other fusion variants (the model is chosen inside the script):

  ==========  ========  ==================  ==============================  ======
  dataset     task      fusion              authors' script                 epochs
  ==========  ========  ==================  ==============================  ======
  casme2      5class    ts_late             ``classes/cas2/train_c5.py``    174
  casme2      5class    any other           ``fusion/cas2/train_c5.py``     199
  casme2      3class    ts_late             none in ``classes/``; the only  199
                                            CASME II 3-class script is
                                            ``fusion/cas2/train_c3.py``
  casme2      3class    any other           ``fusion/cas2/train_c3.py``     199
  samm        5class    ts_late             ``classes/samm/train_c5.py``    199
  samm        3class    ts_late             ``classes/samm/train_c3.py``    199
  samm        5class    any other           ``fusion/samm/train_c5.py``     199
  samm        3class    any other           ``fusion/samm/train_c3.py``     199
  casme3      7class    ts_late             ``classes/cas3/train_c7.py``    199
  casme3      4class    ts_late             ``classes/cas3/train_c4.py``    199
  casme3      any       any other           none (``fusion/`` has no        199
                                            CAS(ME)^3 script)
  smic,       3class    any                 none                            199
  megc2019
  ==========  ========  ==================  ==============================  ======

  Scripts are those of github Cross-Innovation-Lab/TSFmicro. Where the authors have no
  script, 199 (the count of all their scripts but one) is our choice.

Precision: ``fp32`` in both (the authors train without autocast). PyTorch's defaults stay
as they are: on Ampere and newer GPUs cuDNN may run convolutions in TF32
(``torch.backends.cudnn.allow_tf32``, on by default) while matrix products stay full fp32
(``torch.backends.cuda.matmul.allow_tf32``, off by default); both flags are recorded in each
run's provenance. ``bf16`` is an opt-in speed mode (``precision="bf16"``): bf16 autocast for
projections and convolutions, with the decay, rotary and softmax of the attention still in
fp32 (tsfmicro/model/retention.py), so the Manhattan decay keeps fp32 accuracy.

Class imbalance (tsfmicro.engine.imbalance): both train with plain cross-entropy over a
shuffled epoch (``loss="cross_entropy"``, ``sampling="shuffle"``), as the authors do. Class-
weighted cross-entropy, focal loss and class-balanced epochs are named options (``loss=``,
``sampling=``); they enter a recipe's :meth:`Recipe.as_dict` (hashed into every run key) only
when set, so the keys of runs trained before the options existed hold.

Other networks (tsfmicro.model.networks: STSTNet, OFF-ApexNet, HTNet) train with their own
authors' settings, declared as data in their modules (``register_model(..., recipes=...)``: per
recipe name the optimiser, learning rate, weight decay, batch, epochs and epoch order) and built
here by ``get_recipe(name, ..., arch=...)``; a network declares only the recipe names its sources
support (the others are refused, naming the ones it has). Their authors train without a
learning-rate schedule and without augmentation, so a network recipe has none unless it says
so (:data:`NETWORK_RECIPE_DEFAULTS`). Their optimiser is Adam (``optimizer="adam"``: weight
decay as an L2 term inside Adam, PyTorch's ``Adam``), TSFmicro's AdamW (decoupled decay); the
field enters the run key only when it is not AdamW, so TSFmicro's keys hold.

Augmentation (same for both, from the authors' scripts): horizontal flip p=0.5, rotation up
to 3 degrees, random crop with 15 px padding at 224 px; the 3-class scripts use 4 degrees and
4 px (and weight decay 0.7). The shared 3-class task of the cross-dataset chapter
(``3class_megc``, the MEGC2019 grouping) takes the 3-class values too. Padding is given at 224 px and scaled with the image size (4 px at the tiny preset's 64).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from tsfmicro.engine.contrastive import check_settings as check_supcon
from tsfmicro.engine.imbalance import LOSSES, SAMPLINGS
from tsfmicro.options import NOT_DEFAULT, OPTIONS

RECIPES = ("paper", "authors_code")
THREE_CLASS_TASKS = ("3class", "3class_megc")  # trained with the authors' 3-class scripts' values
PRECISIONS = ("fp32", "bf16")
OPTIMIZERS = ("adamw", "adam")  # torch.optim.AdamW (TSFmicro's authors), torch.optim.Adam (the baselines')
REFERENCE_SIZE = 224  # the image size the authors' augmentation numbers refer to
AUTHORS_LATE_FUSION = "ts_late"  # the model of the authors' ``classes/`` scripts
DEFAULT_LOSS, DEFAULT_SAMPLING = LOSSES[0], SAMPLINGS[0]  # cross_entropy, shuffle: the authors'


@dataclass(frozen=True)
class Recipe:
    name: str
    epochs: int
    learning_rate: float
    batch_size: int
    weight_decay: float
    lr_gamma: float
    decay_epochs: int  # ExponentialLR steps after each of the first ``decay_epochs`` epochs only
    flip_probability: float
    rotation_degrees: float
    crop_padding: int  # pixels at REFERENCE_SIZE
    precision: str = "fp32"  # "fp32" (the authors') or "bf16" (autocast; attention decay kept in fp32)
    loss: str = DEFAULT_LOSS  # tsfmicro.engine.imbalance.LOSSES; the authors': plain cross-entropy
    sampling: str = DEFAULT_SAMPLING  # tsfmicro.engine.imbalance.SAMPLINGS; the authors': a shuffled epoch
    optimizer: str = OPTIMIZERS[0]  # OPTIMIZERS; TSFmicro's authors': AdamW
    # supervised contrastive loss beside the recipe's loss (tsfmicro.engine.contrastive): 0 = off, the authors'
    supcon_weight: float = 0.0
    supcon_temperature: float = 0.1  # Khosla et al.'s best value; used only with a weight above 0

    def as_dict(self) -> dict:
        """The recipe's fields, hashed into run keys: a recipe option keyed "when not default"
        (tsfmicro.options: loss, sampling) and a field of :data:`KEYED_WHEN_SET` only when not the
        field's default, the authors' (runs trained before it existed keep their keys)."""
        values = asdict(self)
        defaults = {f.name: f.default for f in fields(self)}
        optional = [row.name for row in OPTIONS if row.owner == "recipe" and row.key == NOT_DEFAULT]
        for name in [*optional, *KEYED_WHEN_SET]:
            if values[name] == defaults[name]:
                del values[name]
        return values

    def padding_at(self, image_size: int) -> int:
        """Crop padding in pixels for images of ``image_size`` (same fraction of the image)."""
        return round(self.crop_padding * image_size / REFERENCE_SIZE)


# Recipe fields that are not run options but, like them, enter the key only when not the default
KEYED_WHEN_SET = ("optimizer",)
# A network's declared recipe (register_model(..., recipes=...)) gets these unless it says otherwise:
# the baselines' authors train with a constant learning rate and no augmentation.
NETWORK_RECIPE_DEFAULTS = dict(lr_gamma=1.0, decay_epochs=0, flip_probability=0.0, rotation_degrees=0.0,
                               crop_padding=0)


def authors_epochs(dataset: str, task: str, fusion: str) -> int:
    """Epochs of the authors' script for this model (module docstring table): 174 only in
    ``classes/cas2/train_c5.py`` (T-S late, CASME II 5-class), 199 in every other script."""
    return 174 if (dataset, task, fusion) == ("casme2", "5class", AUTHORS_LATE_FUSION) else 199


def get_recipe(
    name: str,
    dataset: str,
    task: str,
    fusion: str = "ts_late",
    epochs: int | None = None,
    batch_size: int | None = None,
    precision: str | None = None,
    loss: str | None = None,
    sampling: str | None = None,
    arch: str | None = None,
    **options,
) -> Recipe:
    """The recipe ``name`` for one dataset, task and fusion variant; ``epochs``, ``batch_size``,
    ``precision``, ``loss``, ``sampling`` and any other recipe option of tsfmicro.options
    (``options``) override it (None: the recipe's own). ``fusion`` matters only for
    ``authors_code`` (see the table in the module docstring).

    A smaller batch gives more optimiser steps per epoch: on the tiny CPU demo sets (a couple
    of dozen training clips) batch 32 means one step an epoch, too few for BatchNorm's running
    statistics to settle, so the demo trains with batch 8.

    With ``paper`` and an override, the decay still runs every epoch; with ``authors_code`` it
    still stops after epoch 50 (or at the end, if sooner).

    ``arch``: the network (default TSFmicro); a network that declares its own recipes
    (tsfmicro.model.registry, ``register_model(..., recipes=...)``) gets the one named ``name``,
    the same for every dataset and task, with the same overrides.
    """
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    from tsfmicro.model.registry import DEFAULT_ARCH, check_fusion, model_entry

    arch = arch or DEFAULT_ARCH
    check_fusion(fusion, arch)
    declared = model_entry(arch).recipes
    if declared:
        recipe = network_recipe(arch, name, declared)
    else:
        three_class = task in THREE_CLASS_TASKS
        default_epochs = 50 if name == "paper" else authors_epochs(dataset, task, fusion)
        recipe = Recipe(
            name=name,
            epochs=default_epochs,
            learning_rate=8e-4,
            batch_size=32,
            weight_decay=0.7 if three_class else 0.6,
            lr_gamma=0.987,
            decay_epochs=default_epochs if name == "paper" else 50,
            flip_probability=0.5,
            rotation_degrees=4.0 if three_class else 3.0,
            crop_padding=4 if three_class else 15,
        )
    if epochs is not None:
        if epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {epochs}")
        # paper: the decay runs every epoch; authors_code and a network's: it stops where it stopped
        decay = epochs if name == "paper" and not declared else min(recipe.decay_epochs, epochs)
        recipe = replace(recipe, epochs=epochs, decay_epochs=decay)
    if batch_size is not None:
        if batch_size < 2:
            raise ValueError(f"batch_size must be at least 2 (BatchNorm needs two clips), got {batch_size}")
        recipe = replace(recipe, batch_size=batch_size)
    named = {"precision": precision, "loss": loss, "sampling": sampling, **options}
    for row in OPTIONS:  # the recipe options with named choices (tsfmicro.options)
        if row.owner != "recipe" or row.choices is None:
            continue
        value = named.pop(row.name, None)
        if value is not None:
            choices = row.resolve_choices()
            if value not in choices:
                raise ValueError(f"unknown {row.what} {value!r}; choose one of {', '.join(choices)}")
            recipe = replace(recipe, **{row.name: value})
    weight, temperature = named.pop("supcon_weight", None), named.pop("supcon_temperature", None)
    check_supcon(weight, temperature)
    if weight is not None:
        recipe = replace(recipe, supcon_weight=float(weight))
    if temperature is not None:
        recipe = replace(recipe, supcon_temperature=float(temperature))
    if named:
        raise ValueError(f"get_recipe: no recipe option {', '.join(named)}")
    return recipe


def check_network_recipe(name: str, arch: str) -> None:
    """A network that declares its own recipes has ``name`` among them (run settings are checked
    before any work: tsfmicro.engine.runs.validate)."""
    from tsfmicro.model.registry import model_entry

    declared = model_entry(arch).recipes
    if declared and name not in declared:
        raise ValueError(f"network {arch} has no recipe {name!r} (tsfmicro.model.networks.{arch} says why); "
                         f"choose one of {', '.join(declared)}")


def network_recipe(arch: str, name: str, declared) -> Recipe:
    """The recipe ``name`` a network declares (its module says where each value comes from)."""
    check_network_recipe(name, arch)
    values = {**NETWORK_RECIPE_DEFAULTS, **declared[name]}
    known = {f.name for f in fields(Recipe)} - {"name"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"network {arch}'s recipe {name!r} sets unknown Recipe field(s) {', '.join(unknown)}")
    if values.get("optimizer", OPTIMIZERS[0]) not in OPTIMIZERS:
        raise ValueError(f"network {arch}'s recipe {name!r}: unknown optimizer {values['optimizer']!r}; "
                         f"choose one of {', '.join(OPTIMIZERS)}")
    return Recipe(name=name, **values)
