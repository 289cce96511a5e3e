"""Manhattan self-attention: the "retention" of the temporal branch.

What this is: the softmax *Manhattan self-attention* (MaSA) of RMT (Fan et al.,
"RMT: Retentive Networks Meet Vision Transformers", CVPR 2024), which the TSFmicro
authors call RetNet. For tokens at grid positions (r1, c1) and (r2, c2), head h uses

    softmax(q k^T / sqrt(d) + log(gamma_h) * (|r1 - r2| + |c1 - c2|)) v

i.e. the spatial decay gamma_h ** distance multiplies the softmax numerator (it is added
in log space before the softmax). What this is not: the causal 1-D retention of Sun et
al.'s RetNet for language, which has no softmax, a GroupNorm and a swish gate.

Two forms, as in RMT:
- full 2-D (stages 3-4): one attention over all H*W tokens with the Manhattan decay;
- decomposed (stages 1-2, where H*W is large): attend along each row with the 1-D decay
  on column distance, then along each column with the 1-D decay on row distance.

Queries and keys carry a rotary position encoding, in one of two forms (``ROTARY``):
- ``flat`` (the authors' code, RMT's ``RetNetRelPos2d`` + ``theta_shift``; the presets'):
  the grid is flattened to one index i = r * W + c (the full-grid index, in the
  decomposed stages too) and pair (2p, 2p+1) of each head turns by i * freq[p], with
  head_dim / 2 frequencies 1 / 10000 ** linspace(0, 1, head_dim / 2).
- ``axial`` (our option): half of each head's pairs turn with the row index, half with
  the column index, so q.k depends on the (row, column) offset rather than on the
  flattened one.

The decay masks and rotary tables depend only on the grid, so they are built once per
(grid, heads, device, dtype) and shared by every block and call (``attention_tables``).

Precision: in fp32 (the default, as the authors train) everything runs in fp32. Under
bf16 autocast (the opt-in speed mode) the projections and convolutions run in bf16, but
the rotary turn, the scores, the decay mask and the softmax run in fp32: a bf16 mask
would be off by up to 6 % (gamma ** distance at distance 111). What remains is the usual
bf16 rounding of q, k and v themselves (relative 2 ** -9), not of the decay or positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

ROTARY = ("flat", "axial")


def decay_gammas(num_heads: int, init: float, head_range: float) -> torch.Tensor:
    """Per-head decay rates gamma_h = 1 - 2 ** (-init - range * h / heads), shape (heads,).

    With init 2 and two heads: range 4 -> (0.75, 0.9375); range 6 -> (0.75, 0.96875).
    Heads differ so that some attend locally (small gamma) and some widely.
    """
    h = torch.arange(num_heads, dtype=torch.float64)
    return (1 - 2 ** (-init - head_range * h / num_heads)).float()


def decay_1d(length: int, gammas: torch.Tensor) -> torch.Tensor:
    """Log-space 1-D decay mask log(gamma_h) * |i - j|, shape (heads, length, length)."""
    index = torch.arange(length, device=gammas.device, dtype=gammas.dtype)
    distance = (index[:, None] - index[None, :]).abs()  # (L, L)
    return gammas.log()[:, None, None] * distance


def manhattan_decay_2d(height: int, width: int, gammas: torch.Tensor) -> torch.Tensor:
    """Log-space 2-D decay mask log(gamma_h) * (|r1 - r2| + |c1 - c2|), shape (heads, HW, HW).

    Tokens are numbered row-major (index = r * width + c), as after ``flatten``.
    """
    rows = torch.arange(height, device=gammas.device, dtype=gammas.dtype)
    cols = torch.arange(width, device=gammas.device, dtype=gammas.dtype)
    r, c = torch.meshgrid(rows, cols, indexing="ij")
    r, c = r.flatten(), c.flatten()  # (HW,)
    distance = (r[:, None] - r[None, :]).abs() + (c[:, None] - c[None, :]).abs()  # (HW, HW)
    return gammas.log()[:, None, None] * distance


def rotary_flat(height: int, width: int, head_dim: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The authors' rotary angles on the flattened index: (sin, cos), each (height, width, head_dim // 2).

    Pair p of the token at (r, c) turns by (r * width + c) * freq[p], computed in fp32 as
    in their code (the angle of the last token at 112x112 is ~12543 rad; fp32 is what they use).
    """
    freqs = 1.0 / (10000 ** torch.linspace(0, 1, head_dim // 2, device=device))  # (d/2,)
    index = torch.arange(height * width, device=device)  # row-major: r * width + c
    angle = (index[:, None] * freqs[None, :]).reshape(height, width, head_dim // 2)  # (H, W, d/2)
    return angle.sin(), angle.cos()


def rotary_axial(height: int, width: int, head_dim: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Axial 2-D rotary angles: (sin, cos), each (height, width, head_dim // 2).

    Pair p < head_dim // 4 turns by row * freq[p], the other pairs by column * freq[p'],
    with head_dim // 4 frequencies from 1 to 1/10000.
    """
    quarter = head_dim // 4
    freqs = 1.0 / (10000 ** torch.linspace(0, 1, quarter, device=device))  # (d/4,)
    row_angle = torch.arange(height, device=device)[:, None] * freqs  # (H, d/4)
    col_angle = torch.arange(width, device=device)[:, None] * freqs  # (W, d/4)
    angle = torch.cat(
        [row_angle[:, None, :].expand(height, width, quarter), col_angle[None, :, :].expand(height, width, quarter)],
        dim=-1,
    )  # (H, W, d/2)
    return angle.sin(), angle.cos()


def apply_rotary(x: torch.Tensor, sin: torch.Tensor, cos: torch.Tensor) -> torch.Tensor:
    """Rotate consecutive pairs (x[2i], x[2i+1]) of x (..., H, W, d) by the angles."""
    x1, x2 = x[..., 0::2], x[..., 1::2]  # (..., H, W, d/2)
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)


@dataclass(frozen=True)
class AttentionTables:
    """The constants of one attention layout: rotary (sin, cos) and the log-space decay masks."""

    sin: torch.Tensor  # (H, W, d/2)
    cos: torch.Tensor
    masks: tuple[torch.Tensor, ...]  # decomposed: (along rows (n, W, W), along columns (n, H, H)); full: ((n, HW, HW),)


@lru_cache(maxsize=128)
def attention_tables(
    height: int,
    width: int,
    head_dim: int,
    gammas: tuple[float, ...],
    decomposed: bool,
    rotary: str,
    device: torch.device,
    dtype: torch.dtype,
) -> AttentionTables:
    """The tables for one grid, built once and shared (the same tensors on every call).

    Built in fp32 as the authors' code does, then cast to ``dtype`` (fp32 unless the
    model itself runs in fp64). Built outside inference mode and autograd, so a table first
    made under ``torch.inference_mode`` still serves a later training step.
    """
    with torch.inference_mode(False), torch.no_grad():
        rates = torch.tensor(gammas, dtype=torch.float32, device=device)
        sin, cos = (rotary_flat if rotary == "flat" else rotary_axial)(height, width, head_dim, device=device)
        if decomposed:
            masks = (decay_1d(width, rates), decay_1d(height, rates))
        else:
            masks = (manhattan_decay_2d(height, width, rates),)
        return AttentionTables(sin.to(dtype), cos.to(dtype), tuple(m.to(dtype) for m in masks))


class ManhattanSelfAttention(nn.Module):
    """RMT's softmax Manhattan self-attention on a channels-last grid (B, H, W, C).

    ``decomposed=True``: row pass then column pass with 1-D decays (linear in H*W memory);
    ``decomposed=False``: one pass over all H*W tokens with the 2-D Manhattan decay.
    A 5x5 depthwise conv of V (LePE) adds local context before the output projection.
    ``decay=False`` (the ``retention_no_decay`` ablation): the same attention without the
    decay mask, identical to every gamma being 1.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        decay_init: float,
        decay_range: float,
        decomposed: bool,
        rotary: str = "flat",
        decay: bool = True,
    ):
        super().__init__()
        if rotary not in ROTARY:
            raise ValueError(f"unknown rotary {rotary!r}; valid: {', '.join(ROTARY)}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.decomposed = decomposed
        self.rotary = rotary
        self.decay = decay
        self.qkv = nn.Linear(dim, 3 * dim)
        self.lepe = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        self.proj = nn.Linear(dim, dim)
        # plain floats: derived from the config, a key for the shared tables, no device sync to read
        self.gammas = tuple(decay_gammas(num_heads, decay_init, decay_range).tolist())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = x.shape
        n, d = self.num_heads, self.head_dim
        q, k, v = self.qkv(x).reshape(B, H, W, 3, n, d).permute(3, 0, 4, 1, 2, 5)  # each (B, n, H, W, d)
        lepe = self.lepe(v.permute(0, 1, 4, 2, 3).reshape(B, C, H, W))  # (B, C, H, W)
        # fp32 at least from here to the softmax, also under bf16 autocast (see the module docstring)
        dtype = torch.promote_types(q.dtype, torch.float32)
        tables = attention_tables(H, W, d, self.gammas, self.decomposed, self.rotary, x.device, dtype)
        with torch.autocast(x.device.type, enabled=False):
            q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
            q, k = apply_rotary(q, tables.sin, tables.cos), apply_rotary(k, tables.sin, tables.cos)
            masks = tables.masks if self.decay else (None, None)
            if self.decomposed:
                out = self._decomposed(q, k, v, *masks)
            else:
                out = self._full(q, k, v, masks[0])
        out = out + lepe.permute(0, 2, 3, 1)  # (B, H, W, C)
        return self.proj(out)

    @torch.no_grad()
    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """The full form's attention weights (B, heads, HW, HW), decay included, for figures.

        Row i is how much token i (row-major r * W + c) reads from every token. Only the full
        2-D form has one such matrix; the decomposed form attends in two 1-D passes.
        """
        if self.decomposed:
            raise ValueError("attention weights are defined for the full 2-D form only (stages 3-4)")
        B, H, W, C = x.shape
        n, d = self.num_heads, self.head_dim
        q, k, _ = self.qkv(x.float()).reshape(B, H, W, 3, n, d).permute(3, 0, 4, 1, 2, 5)  # each (B, n, H, W, d)
        tables = attention_tables(H, W, d, self.gammas, self.decomposed, self.rotary, x.device, torch.float32)
        q, k = apply_rotary(q, tables.sin, tables.cos), apply_rotary(k, tables.sin, tables.cos)
        scores = q.reshape(B, n, H * W, d) @ k.reshape(B, n, H * W, d).transpose(-1, -2) / d**0.5  # (B, n, HW, HW)
        if self.decay:
            scores = scores + tables.masks[0]
        return scores.softmax(dim=-1)

    @staticmethod
    def _decomposed(q, k, v, mask_w: torch.Tensor | None, mask_h: torch.Tensor | None) -> torch.Tensor:
        B, n, H, W, d = q.shape
        # rows: each of the B*H rows is a sequence of W tokens, decay on column distance
        q_r, k_r, v_r = (t.permute(0, 2, 1, 3, 4).reshape(B * H, n, W, d) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q_r, k_r, v_r, attn_mask=mask_w)  # (B*H, n, W, d)
        # columns: each of the B*W columns is a sequence of H tokens, decay on row distance;
        # the values are the row-pass output, so information travels along both axes
        q_c, k_c = (t.permute(0, 3, 1, 2, 4).reshape(B * W, n, H, d) for t in (q, k))
        v_c = out.reshape(B, H, n, W, d).permute(0, 3, 2, 1, 4).reshape(B * W, n, H, d)
        out = F.scaled_dot_product_attention(q_c, k_c, v_c, attn_mask=mask_h)  # (B*W, n, H, d)
        return out.reshape(B, W, n, H, d).permute(0, 3, 1, 2, 4).reshape(B, H, W, n * d)

    @staticmethod
    def _full(q, k, v, mask: torch.Tensor | None) -> torch.Tensor:
        B, n, H, W, d = q.shape
        q_f, k_f, v_f = (t.reshape(B, n, H * W, d) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q_f, k_f, v_f, attn_mask=mask)  # (B, n, HW, d)
        return out.transpose(1, 2).reshape(B, H, W, n * d)
