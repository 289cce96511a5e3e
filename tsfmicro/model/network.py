"""TSFmicro: temporal branch + spatial branch + fusion + head, and ``build_model``.

Fusion variants (``ModelConfig.fusion``), each a different network:

- ``ts_late`` (the paper's method): sum of the temporal and spatial maps (B, C, g, g).
- ``ts_early``: a second conv stem on the onset frame, summed with the temporal stem
  output (B, C0, S/2, S/2), then the retention stages; no spatial transformer.
- ``s_to_t``: the spatial map, upsampled by three transposed convs, is added to the
  temporal stem output; the head reads the temporal output.
- ``t_to_s``: the temporal tokens are added to the spatial tokens after the spatial
  blocks, before the spatial final LayerNorm; the head reads that normed sum.
- ``temporal_only`` / ``spatial_only``: one branch only (ablations); the other branch is
  not built, so it has no parameters.

Initialisation follows the authors' code: every Linear truncated-normal (std 0.02), except
the classifier head of ``t_to_s``, which their T-to-S model never re-initialises, so it keeps
PyTorch's default (Kaiming-uniform weights, uniform bias).
"""

from __future__ import annotations

import torch
from timm.layers import trunc_normal_
from torch import nn

from .config import FUSIONS, ModelConfig, make_config
from .head import ClassifierHead
from .registry import register_model
from .spatial import SpatialBranch, SpatialUpsampler
from .temporal import ConvStem, TemporalBranch


class TSFmicro(nn.Module):
    """``model(onset, apex)`` -> logits (B, num_classes).

    onset, apex: (B, 3, S, S) ImageNet-normalised, S = ``config.image_size``. The
    difference frame apex - onset (the temporal input) is computed here.
    """

    inputs = ("onset", "apex")  # the model contract (tsfmicro.model.registry): what the data gives it

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        f = config.fusion
        has_temporal = f != "spatial_only"
        has_spatial = f in ("ts_late", "t_to_s", "s_to_t", "spatial_only")
        self.temporal = TemporalBranch(config) if has_temporal else None
        self.spatial = SpatialBranch(config, final_norm=f != "t_to_s") if has_spatial else None
        self.onset_stem = ConvStem(config.stem_width, config.embed_dims[0]) if f == "ts_early" else None
        self.upsampler = SpatialUpsampler(config) if f == "s_to_t" else None
        # T-to-S: the spatial branch's final norm, applied after the temporal tokens join
        self.fusion_norm = nn.LayerNorm(config.spatial_dim, eps=1e-6) if f == "t_to_s" else None
        self.head = ClassifierHead(config.embed_dims[-1], config.head_hidden, config.num_classes)
        for name, module in self.named_children():
            if not (f == "t_to_s" and name == "head"):  # the authors' T-to-S head keeps PyTorch's init
                module.apply(_init_weights)

    def forward(self, onset: torch.Tensor, apex: torch.Tensor) -> torch.Tensor:
        f = self.config.fusion
        if f == "spatial_only":
            fused = self.spatial(onset)  # (B, C, g, g); apex is not used
        else:
            diff = apex - onset  # (B, 3, S, S): the motion, on the normalised frames
            if f == "ts_late":
                fused = self.temporal(diff) + self.spatial(onset)
            elif f == "ts_early":
                fused = self.temporal(diff, stem_add=self.onset_stem(onset))
            elif f == "s_to_t":
                fused = self.temporal(diff, stem_add=self.upsampler(self.spatial(onset)))
            elif f == "t_to_s":
                fused = self.temporal(diff) + self.spatial(onset)  # spatial map is pre-norm here
            else:  # temporal_only
                fused = self.temporal(diff)
        tokens = fused.flatten(2).transpose(1, 2)  # (B, g*g, C)
        if self.fusion_norm is not None:
            tokens = self.fusion_norm(tokens)
        return self.head(tokens)

    @property
    def image_size(self) -> int:
        return self.config.image_size

    @property
    def classifier(self) -> nn.Linear:
        """The final Linear layer (hidden -> classes)."""
        return self.head.classifier

    def feature_layers(self) -> dict[str, nn.Module]:
        """Grad-CAM target layers: each module's output is a channels-first map (B, C, h, w).

        "temporal": the temporal branch output (B, C3, g, g). "spatial": the spatial branch
        output before fusion (B, C3, g, g); for ``ts_early``, the onset stem output
        (B, C0, S/2, S/2). Only the branches this variant has.
        """
        layers = {}
        if self.temporal is not None:
            layers["temporal"] = self.temporal.features
        if self.spatial is not None:
            layers["spatial"] = self.spatial.features
        elif self.onset_stem is not None:
            layers["spatial"] = self.onset_stem
        return layers


def _init_weights(m: nn.Module) -> None:
    # as the authors' code: every Linear truncated-normal std 0.02, zero bias; convs keep
    # PyTorch's default; LayerNorm/BatchNorm start as identity (PyTorch's default too)
    if isinstance(m, nn.Linear):
        trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def build_model(preset: str = "paper", num_classes: int = 5, fusion: str = "ts_late", **overrides) -> TSFmicro:
    """Build TSFmicro from a preset ("paper" or "tiny"); ``overrides`` replace ModelConfig fields.

    >>> model = build_model("tiny", num_classes=3, fusion="ts_late", image_size=48)
    """
    # unknown preset, fusion or field -> ValueError naming the valid choices
    return TSFmicro(make_config(preset, num_classes=num_classes, fusion=fusion, **overrides))


@register_model("tsfmicro", fusions=FUSIONS, options=("image_size", "rotary", "temporal_branch", "spatial_depth"))
def tsfmicro(preset: str, num_classes: int, fusion: str, **options) -> TSFmicro:
    """The paper's network; ``fusion`` picks the variant, ``options`` replace ModelConfig fields."""
    return build_model(preset, num_classes=num_classes, fusion=fusion, **options)
