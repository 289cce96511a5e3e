"""Token mixers that replace Manhattan self-attention in the temporal-branch ablation.

The paper's temporal branch mixes tokens with RMT's decayed attention (retention.py). To ask
whether that choice matters, ``ModelConfig.temporal_branch`` swaps the mixer inside otherwise
identical stages (same widths, depths, resolutions, stem, downsampling and drop path):

- ``retention`` (the paper): ManhattanSelfAttention with the decay.
- ``retention_no_decay``: the same module with the decay switched off (a plain softmax
  attention with the same rotary code, forms and LePE) - see ManhattanSelfAttention(decay=False).
- ``transformer``: ``PlainSelfAttention`` inside a standard pre-norm block with a plain MLP:
  global multi-head attention over all H*W tokens, no decay, no rotary, no LePE.
- ``conv``: ``DepthwiseConvMixer``: no attention at all; a 5x5 depthwise conv mixes each
  token with its neighbours.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PlainSelfAttention(nn.Module):
    """Standard multi-head self-attention over all H*W tokens of a grid (B, H, W, C)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    @torch.no_grad()
    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """Attention weights (B, heads, HW, HW) of a grid (B, H, W, C), for figures."""
        B, H, W, C = x.shape
        n = self.num_heads
        q, k, _ = self.qkv(x.float()).reshape(B, H * W, 3, n, C // n).permute(2, 0, 3, 1, 4)  # each (B, n, HW, d)
        return (q @ k.transpose(-1, -2) / (C // n) ** 0.5).softmax(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = x.shape
        n = self.num_heads
        q, k, v = self.qkv(x).reshape(B, H * W, 3, n, C // n).permute(2, 0, 3, 1, 4)  # each (B, n, HW, d)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, n, HW, d)
        return self.proj(out.transpose(1, 2).reshape(B, H, W, C))


class DepthwiseConvMixer(nn.Module):
    """Attention-free mixer: Linear -> 5x5 depthwise conv -> Linear on a grid (B, H, W, C).

    The 5x5 window matches the reach of the LePE term; the two Linear layers stand where
    the attention's value and output projections were.
    """

    def __init__(self, dim: int, kernel_size: int = 5):
        super().__init__()
        self.value = nn.Linear(dim, dim)
        self.conv = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.value(x).permute(0, 3, 1, 2)  # (B, C, H, W)
        return self.proj(self.conv(v).permute(0, 2, 3, 1))  # (B, H, W, C)


class PlainMlp(nn.Module):
    """fc1 -> GELU -> fc2: the transformer's feed-forward (no depthwise conv inside)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))  # (B, H, W, dim)
