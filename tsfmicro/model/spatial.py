"""Spatial branch (the "where"): a shallow transformer on the onset frame.

The onset frame is shrunk to the final grid (14x14 for 224 px), each pixel becomes a
token through a 1x1 conv, and two pre-norm transformer blocks (timm's ViT ``Block``)
relate the positions. Only two blocks on purpose: the paper argues that deeper stacks
pick up identity rather than where the motion happens.
"""

from __future__ import annotations

from functools import partial
from itertools import pairwise

import torch
import torch.nn.functional as F
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block
from torch import nn

from .config import ModelConfig


class SpatialBranch(nn.Module):
    """Onset frame (B, 3, S, S) -> position map (B, dim, S/16, S/16).

    ``final_norm=False`` leaves the final LayerNorm to the caller: T-to-S fusion adds the
    temporal tokens between the blocks and that norm, and the branch output (the
    Grad-CAM target) must be the spatial map before fusion.
    """

    def __init__(self, config: ModelConfig, final_norm: bool = True):
        super().__init__()
        dim, self.grid = config.spatial_dim, config.grid_size
        self.proj = nn.Conv2d(3, dim, 1)  # patch size 1 on the shrunk image
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid * self.grid, dim))
        trunc_normal_(self.pos_embed, std=0.02)
        norm_layer = partial(nn.LayerNorm, eps=1e-6)
        self.blocks = nn.Sequential(
            *(
                Block(dim, config.spatial_heads, config.spatial_mlp_ratio, qkv_bias=True, norm_layer=norm_layer)
                for _ in range(config.spatial_depth)
            )
        )
        self.norm = norm_layer(dim) if final_norm else nn.Identity()
        self.features = nn.Identity()  # Grad-CAM target: the branch output, channels-first

    def forward(self, onset: torch.Tensor) -> torch.Tensor:
        B = onset.shape[0]
        # antialiased bilinear, as torchvision's Resize([14, 14]) in the authors' code
        x = F.interpolate(onset, size=(self.grid, self.grid), mode="bilinear", align_corners=False, antialias=True)
        x = self.proj(x).flatten(2).transpose(1, 2) + self.pos_embed  # (B, N, dim), N = grid**2
        x = self.norm(self.blocks(x))  # (B, N, dim)
        return self.features(x.transpose(1, 2).reshape(B, -1, self.grid, self.grid))  # (B, dim, g, g)


class SpatialUpsampler(nn.Module):
    """S-to-T fusion: three k4 s2 p1 transposed convs, (B, C3, g, g) -> (B, C0, 8g, 8g).

    512 -> 256 -> 128 -> 64 for the paper widths, i.e. back up the temporal widths, so the
    spatial map can be added to the temporal stem output. No norm or activation between
    them, as in the authors' code.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        widths = config.embed_dims[::-1]
        self.layers = nn.Sequential(*(nn.ConvTranspose2d(a, b, 4, stride=2, padding=1) for a, b in pairwise(widths)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)  # (B, C0, 8g, 8g)
