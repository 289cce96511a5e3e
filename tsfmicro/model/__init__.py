"""The TSFmicro network (temporal retention branch + spatial transformer + fusion + head)."""

from .complexity import count_flops, count_parameters
from .config import FUSIONS, PRESETS, TEMPORAL_BRANCHES, ModelConfig, make_config
from .network import TSFmicro, build_model
from .registry import MODELS, model_from_config, register_model
from . import networks  # noqa: E402,F401  registers every network module of tsfmicro/model/networks/
from .retention import ManhattanSelfAttention, decay_1d, decay_gammas, manhattan_decay_2d

__all__ = [
    "FUSIONS",
    "MODELS",
    "PRESETS",
    "TEMPORAL_BRANCHES",
    "ManhattanSelfAttention",
    "ModelConfig",
    "TSFmicro",
    "build_model",
    "count_flops",
    "count_parameters",
    "decay_1d",
    "decay_gammas",
    "make_config",
    "manhattan_decay_2d",
    "model_from_config",
    "register_model",
]
