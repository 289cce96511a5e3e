"""Networks by name (``arch``), in the style of timm's ``register_model``, and the one function
that builds a run's network.

A network is registered by decorating its builder::

    @register_model("tsfmicro", fusions=FUSIONS, options=("image_size", "rotary", "temporal_branch", "spatial_depth"))
    def tsfmicro(preset, num_classes, fusion, **options) -> nn.Module: ...

``fusions``: the network's variants (RunConfig's ``fusion``; the first is the default); a network
without variants has none and keeps RunConfig's default fusion. ``options``: the run options
of owner ``model`` it is built with (tsfmicro.options), passed to the builder only when set.
``recipes``: a network trained with its own authors' settings declares them here as data, one
mapping per recipe name (``paper``, ``authors_code``) of tsfmicro.engine.recipes.Recipe field
values; the engine's ``get_recipe(name, ..., arch=...)`` builds that recipe (a network without
``recipes`` trains with TSFmicro's, as a toy network would). ``presets``: the network's configs by
preset name, whose fields are its model options' defaults (an option set to its network's default
stays out of the run key); without them, TSFmicro's presets give the defaults.

The model contract (what the engine, the plan and the figures rely on):

- ``model.inputs``: the names of its inputs, in the order ``forward`` takes them (TSFmicro:
  ``("onset", "apex")``); the engine asks the data for these (tsfmicro.engine.loso.DeviceData),
  each an ImageNet-normalised ``(B, 3, S, S)`` float tensor;
- ``model.image_size``: S, the side its inputs are resized to (the preset's);
- ``model(*inputs)`` -> logits ``(B, num_classes)``;
- ``model.classifier``: the final ``nn.Linear`` (hidden -> classes), for the plan's FLOPs per class;
- ``model.feature_layers() -> {name: nn.Module}``: modules whose output is a channels-first map
  ``(B, C, h, w)``, for Grad-CAM.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable

from tsfmicro.options import ARCH, model_options, option

DEFAULT_ARCH = option(ARCH).default  # "tsfmicro": absent from run keys, so earlier keys hold
DEFAULT_FUSION = "ts_late"  # RunConfig's default; the paper's method


@dataclass(frozen=True)
class ModelEntry:
    name: str
    build: Callable[..., Any]  # build(preset, num_classes, fusion, **options) -> nn.Module
    fusions: tuple[str, ...]  # its variants; () for none
    options: tuple[str, ...]  # run options of owner "model" it takes
    # recipe name -> Recipe field values (tsfmicro.engine.recipes); empty: TSFmicro's recipes
    recipes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # preset name -> the network's config (its model options' defaults); empty: TSFmicro's PRESETS
    presets: Mapping[str, Any] = field(default_factory=dict)


MODELS: dict[str, ModelEntry] = {}


def register_model(name: str | None = None, *, fusions: tuple[str, ...] = (), options: tuple[str, ...] = (),
                   recipes: Mapping[str, Mapping[str, Any]] | None = None, presets: Mapping[str, Any] | None = None):
    """Decorator: register a network builder under ``name`` (default: the function's name)."""

    def decorate(build: Callable[..., Any]) -> Callable[..., Any]:
        arch = name or build.__name__
        MODELS[arch] = ModelEntry(arch, build, tuple(fusions), tuple(options), dict(recipes or {}),
                                  dict(presets or {}))
        return build

    return decorate


def model_entry(arch: str) -> ModelEntry:
    if arch not in MODELS:
        raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(MODELS)}")
    return MODELS[arch]


def check_fusion(fusion: str, arch: str = DEFAULT_ARCH) -> None:
    """The one check of ``fusion`` for a run: one of the network's variants, or the default for a
    network that has none."""
    entry = model_entry(arch)
    if entry.fusions and fusion not in entry.fusions:
        raise ValueError(f"unknown fusion {fusion!r}; choose one of {', '.join(entry.fusions)}")
    if not entry.fusions and fusion != DEFAULT_FUSION:
        raise ValueError(f"network {arch} has no fusion variants; leave fusion at its default ({DEFAULT_FUSION})")


def check_network(arch: str, fusion: str, options: dict) -> None:
    """``arch`` registered, ``fusion`` one of its variants, ``options`` (model options set) ones it takes."""
    check_fusion(fusion, arch)
    entry = MODELS[arch]
    unused = [name for name in options if name not in entry.options]
    if unused:
        raise ValueError(f"network {arch} takes no option {', '.join(unused)} "
                         f"(it takes: {', '.join(entry.options) or 'none'})")


def network_name(arch: str, fusion: str) -> str:
    """The network in run directory names: the fusion for TSFmicro (names made before ``arch``
    existed hold), the arch for a network without variants, else both."""
    if arch == DEFAULT_ARCH:
        return fusion
    return f"{arch}_{fusion}" if model_entry(arch).fusions else arch


def model_from_config(settings: Any, num_classes: int):
    """The network of a run: ``settings`` is a RunConfig, a run's config.yaml mapping or a mapping
    with ``preset`` and optionally ``arch``, ``fusion`` and model options (``temporal_branch``...).
    Every place that builds a run's network calls this."""
    get = settings.get if isinstance(settings, Mapping) else lambda name: getattr(settings, name, None)
    arch = get(ARCH) or DEFAULT_ARCH
    fusion = get("fusion") or DEFAULT_FUSION
    options = model_options(settings)
    check_network(arch, fusion, options)
    return MODELS[arch].build(get("preset"), num_classes, fusion, **options)


# A network written outside the package: its file, imported once per process (keyed by its resolved
# path, so loading the same parameters twice does not register it twice), and the networks it registered.
_NETWORK_FILES: dict[str, tuple[str, ...]] = {}


def import_network_file(path) -> tuple[str, ...]:
    """Import the Python file ``path`` (a module outside tsfmicro whose ``@register_model`` builders
    register its networks) and return the names it registered. Raises FileNotFoundError for a
    missing file and ValueError for a file that registers no network; its own errors propagate."""
    import hashlib
    import importlib.util
    import sys
    from pathlib import Path

    file = Path(path).expanduser().resolve()
    if str(file) in _NETWORK_FILES:
        return _NETWORK_FILES[str(file)]
    if not file.is_file():
        raise FileNotFoundError(f"no such file: {file}")
    before = {name: entry.build for name, entry in MODELS.items()}
    # its own module name (not the bare stem), so a user file called e.g. "network.py" cannot
    # shadow a module of the same name elsewhere
    module_name = f"tsfmicro_network_file_{hashlib.sha1(str(file).encode()).hexdigest()[:8]}_{file.stem}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise ValueError(f"{file} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    added = tuple(name for name, entry in MODELS.items() if before.get(name) is not entry.build)
    if not added:
        raise ValueError(f"{file} registers no network (decorate its builder with "
                         "@tsfmicro.model.register_model(NAME, ...))")
    _NETWORK_FILES[str(file)] = added
    return added
