"""Model configuration: one frozen dataclass and the two presets.

`paper` is the network of the authors' code (Cross-Innovation-Lab/TSFmicro, `RMT_T3` +
the 2-block position transformer) at 224x224. `tiny` keeps every structural element
(four stages, decomposed retention in stages 1-2 and full 2-D in 3-4, both branches,
the same head) with small widths and a 64x64 input so it trains on a laptop CPU.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .retention import ROTARY

# The temporal branch's token mixer (token_mixers.py): the paper's retention, and three ablations.
TEMPORAL_BRANCHES = ("retention", "retention_no_decay", "transformer", "conv")
FUSIONS = ("ts_late", "ts_early", "t_to_s", "s_to_t", "temporal_only", "spatial_only")

# The stem halves the input once and each of the three downsamples halves it again.
STRIDE = 16


@dataclass(frozen=True)
class ModelConfig:
    image_size: int = 224  # onset/apex are (B, 3, image_size, image_size)
    stem_width: int = 32  # hidden width of the conv stem; its output width is embed_dims[0]
    # temporal branch (RMT-style retention stages)
    embed_dims: tuple[int, ...] = (64, 128, 256, 512)
    depths: tuple[int, ...] = (1, 1, 2, 1)
    num_heads: tuple[int, ...] = (2, 2, 2, 2)
    mlp_ratio: float = 3.0
    drop_path_rate: float = 0.1  # rises linearly from 0 over all retention blocks
    decay_init: tuple[float, ...] = (2.0, 2.0, 2.0, 2.0)  # gamma_h = 1 - 2**(-init - range*h/heads)
    decay_range: tuple[float, ...] = (4.0, 4.0, 6.0, 6.0)
    decomposed: tuple[bool, ...] = (True, True, False, False)  # row/column form vs full 2-D
    rotary: str = "flat"  # "flat": the authors' (RMT's) rotary on r * W + c; "axial": ours, row and column
    temporal_branch: str = "retention"  # the paper's; others are ablations (TEMPORAL_BRANCHES)
    # spatial branch (shallow transformer on the onset frame); its width is embed_dims[-1]
    spatial_depth: int = 2
    spatial_heads: int = 4
    spatial_mlp_ratio: float = 4.0
    # head and task
    head_hidden: int = 1024
    num_classes: int = 5
    fusion: str = "ts_late"

    def __post_init__(self) -> None:
        if self.fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {self.fusion!r}; valid: {', '.join(FUSIONS)}")
        n = len(self.embed_dims)
        per_stage = ("depths", "num_heads", "decay_init", "decay_range", "decomposed")
        for name in per_stage:
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} needs one entry per stage ({n}), got {getattr(self, name)}")
        if n != 4:
            # the stride (16) and the S-to-T upsampler (three transposed convs) assume 4 stages
            raise ValueError(f"the network has 4 stages, got embed_dims={self.embed_dims}")
        if self.image_size % STRIDE:
            raise ValueError(f"image_size must be a multiple of {STRIDE}, got {self.image_size}")
        if self.temporal_branch not in TEMPORAL_BRANCHES:
            raise ValueError(
                f"unknown temporal_branch {self.temporal_branch!r}; valid: {', '.join(TEMPORAL_BRANCHES)}"
            )
        if self.rotary not in ROTARY:
            raise ValueError(f"unknown rotary {self.rotary!r}; valid: {', '.join(ROTARY)}")
        # rotary turns pairs of channels; the axial form splits the pairs into row and column halves
        multiple = 4 if self.rotary == "axial" else 2
        for dim, heads in zip(self.embed_dims, self.num_heads, strict=True):
            if dim % heads or (dim // heads) % multiple:
                raise ValueError(
                    f"width {dim} with {heads} heads: head dim must be a multiple of {multiple} ({self.rotary} rotary)"
                )
        if isinstance(self.spatial_depth, bool) or not isinstance(self.spatial_depth, int) or self.spatial_depth < 1:
            raise ValueError(f"spatial_depth must be a whole number >= 1 (transformer blocks), got {self.spatial_depth!r}")
        if self.embed_dims[-1] % self.spatial_heads:
            raise ValueError(f"spatial width {self.embed_dims[-1]} not divisible by {self.spatial_heads} heads")
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {self.num_classes}")

    @property
    def grid_size(self) -> int:
        """Side of the final 2-D token grid (14 for 224 px)."""
        return self.image_size // STRIDE

    @property
    def spatial_dim(self) -> int:
        """Width of the spatial branch: equal to the temporal output so the maps can be summed."""
        return self.embed_dims[-1]


PRESETS: dict[str, ModelConfig] = {
    # The authors' code: 224 px, widths 64/128/256/512, depths 1/1/2/1, 2 heads per stage,
    # flat (RMT) rotary, spatial branch 2 blocks x 4 heads x 512, head 512 -> 1024 -> classes.
    "paper": ModelConfig(),
    # Same structure, small: a 64 px face crop still shows a few-pixel local motion;
    # grids 32 -> 16 -> 8 -> 4.
    "tiny": ModelConfig(
        image_size=64,
        stem_width=8,
        embed_dims=(16, 32, 48, 64),
        num_heads=(2, 2, 2, 2),
        spatial_heads=4,
        head_hidden=128,
    ),
}


def make_config(preset: str = "paper", **overrides) -> ModelConfig:
    """The preset's config with some fields replaced (e.g. ``image_size=112``)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
    fields = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown ModelConfig field(s) {unknown}; valid: {', '.join(sorted(fields))}")
    # lists are accepted for per-stage fields; the config keeps tuples so it stays hashable
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    return dataclasses.replace(PRESETS[preset], **overrides)
