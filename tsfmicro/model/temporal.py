"""Temporal branch (the "how"): conv stem on apex - onset, then RMT-style retention stages.

Inside the stages tokens stay channels-last (B, H, W, C) so LayerNorm and Linear act on
the last dimension; depthwise convs permute to channels-first and back.
"""

from __future__ import annotations

import torch
from timm.layers import DropPath
from torch import nn

from .config import ModelConfig
from .retention import ManhattanSelfAttention
from .token_mixers import DepthwiseConvMixer, PlainMlp, PlainSelfAttention


class ConvStem(nn.Module):
    """Four 3x3 convs, the first with stride 2: (B, 3, S, S) -> (B, out_dim, S/2, S/2).

    The authors' stem (RMT's, with its second stride set to 1 so that stage 1 works at
    112x112 for a 224 input): fine motion of a few pixels survives the first stage.
    """

    def __init__(self, width: int, out_dim: int):
        super().__init__()
        self.proj = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1),
            nn.BatchNorm2d(width),
            nn.GELU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.GELU(),
            nn.Conv2d(width, out_dim, 3, padding=1),
            nn.BatchNorm2d(out_dim),
            nn.GELU(),
            nn.Conv2d(out_dim, out_dim, 3, padding=1),
            nn.BatchNorm2d(out_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)  # (B, out_dim, S/2, S/2)


class Downsample(nn.Module):
    """Conv 3x3 stride 2 + BatchNorm between stages: (B, H, W, C) -> (B, H/2, W/2, out_dim)."""

    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.conv = nn.Conv2d(dim, out_dim, 3, stride=2, padding=1)
        self.norm = nn.BatchNorm2d(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.conv(x.permute(0, 3, 1, 2)))  # (B, out_dim, H/2, W/2)
        return x.permute(0, 2, 3, 1)  # (B, H/2, W/2, out_dim)


class DWConv(nn.Module):
    """Depthwise k x k conv on a channels-last grid (B, H, W, C) -> (B, H, W, C)."""

    def __init__(self, dim: int, kernel_size: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class ConvFFN(nn.Module):
    """fc1 -> GELU -> h + dwconv3x3(h) -> fc2 (RMT's FFN; the dwconv mixes neighbours).

    Not timm's Mlp: the residual depthwise conv sits inside the hidden layer.
    """

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.dwconv = DWConv(hidden, 3)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.fc1(x))  # (B, H, W, hidden)
        h = h + self.dwconv(h)
        return self.fc2(h)  # (B, H, W, dim)


class RetentionBlock(nn.Module):
    """x += dwconv3x3(x); x += drop_path(mixer(LN(x))); x += drop_path(FFN(LN(x))).

    The mixer is Manhattan self-attention and the FFN RMT's ConvFFN (the paper), unless
    ``config.temporal_branch`` names an ablation (token_mixers.py): ``retention_no_decay``
    switches the decay off; ``transformer`` uses plain global attention and a plain MLP;
    ``conv`` replaces the attention by a depthwise conv. Every variant keeps the 3x3
    depthwise positional term, the only position code the plain transformer has.
    """

    def __init__(self, config: ModelConfig, stage: int, drop_path: float):
        super().__init__()
        dim, heads, branch = config.embed_dims[stage], config.num_heads[stage], config.temporal_branch
        hidden = int(dim * config.mlp_ratio)
        self.pos = DWConv(dim, 3)  # conditional positional term, as in RMT
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        if branch in ("retention", "retention_no_decay"):
            self.attn = ManhattanSelfAttention(
                dim, heads, config.decay_init[stage], config.decay_range[stage], config.decomposed[stage],
                config.rotary, decay=branch == "retention",
            )
        elif branch == "transformer":
            self.attn = PlainSelfAttention(dim, heads)
        else:  # conv
            self.attn = DepthwiseConvMixer(dim)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.ffn = PlainMlp(dim, hidden) if branch == "transformer" else ConvFFN(dim, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos(x)  # (B, H, W, C)
        x = x + self.drop_path(self.attn(self.norm1(x)))
        x = x + self.drop_path(self.ffn(self.norm2(x)))
        return x


class RetentionStage(nn.Module):
    """``depth`` retention blocks at one resolution, then (except the last stage) a Downsample."""

    def __init__(self, config: ModelConfig, index: int, drop_paths: list[float]):
        super().__init__()
        c, i = config, index
        self.blocks = nn.Sequential(*(RetentionBlock(c, i, dp) for dp in drop_paths))
        last = i == len(c.embed_dims) - 1
        self.downsample = nn.Identity() if last else Downsample(c.embed_dims[i], c.embed_dims[i + 1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(self.blocks(x))  # (B, H, W, C) -> (B, H/2, W/2, C') or unchanged


class TemporalBranch(nn.Module):
    """Difference frame (B, 3, S, S) -> motion map (B, embed_dims[-1], S/16, S/16).

    ``stem_add`` (B, embed_dims[0], S/2, S/2) is summed onto the stem output: the hook
    for the fusions that join at the stem (T-S early, S-to-T).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.stem = ConvStem(config.stem_width, config.embed_dims[0])
        dpr = torch.linspace(0, config.drop_path_rate, sum(config.depths)).tolist()
        starts = [sum(config.depths[:i]) for i in range(len(config.depths))]
        self.stages = nn.Sequential(
            *(
                RetentionStage(config, i, dpr[start : start + depth])
                for i, (start, depth) in enumerate(zip(starts, config.depths, strict=True))
            )
        )
        self.features = nn.Identity()  # Grad-CAM target: the branch output, channels-first

    def forward(self, diff: torch.Tensor, stem_add: torch.Tensor | None = None) -> torch.Tensor:
        x = self.stem(diff)  # (B, C0, S/2, S/2)
        if stem_add is not None:
            x = x + stem_add
        x = self.stages(x.permute(0, 2, 3, 1))  # (B, S/16, S/16, C3)
        return self.features(x.permute(0, 3, 1, 2))  # (B, C3, S/16, S/16)
