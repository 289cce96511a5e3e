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

Queries and keys carry a 2-D rotary position encoding. Ours is axial: half of each
head's rotation pairs turn with the row index, half with the column index, so q.k
depends on the (row, column) offset. RMT instead flattens the grid to one index
r * W + c and uses 1-D rotary on it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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


def rotary_2d(height: int, width: int, head_dim: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Axial 2-D rotary angles: (sin, cos), each (height, width, head_dim // 2).

    Pair p < head_dim // 4 rotates by row * freq[p], the other pairs by column * freq[p'].
    Frequencies run geometrically from 1 to 1/10000 as in RMT.
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


class ManhattanSelfAttention(nn.Module):
    """RMT's softmax Manhattan self-attention on a channels-last grid (B, H, W, C).

    ``decomposed=True``: row pass then column pass with 1-D decays (linear in H*W memory);
    ``decomposed=False``: one pass over all H*W tokens with the 2-D Manhattan decay.
    A 5x5 depthwise conv of V (LePE) adds local context before the output projection.
    """

    def __init__(self, dim: int, num_heads: int, decay_init: float, decay_range: float, decomposed: bool):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.decomposed = decomposed
        self.qkv = nn.Linear(dim, 3 * dim)
        self.lepe = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        self.proj = nn.Linear(dim, dim)
        # derived from the config, so kept out of the state dict
        self.register_buffer("gammas", decay_gammas(num_heads, decay_init, decay_range), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = x.shape
        n, d = self.num_heads, self.head_dim
        q, k, v = self.qkv(x).reshape(B, H, W, 3, n, d).permute(3, 0, 4, 1, 2, 5)  # each (B, n, H, W, d)
        lepe = self.lepe(v.permute(0, 1, 4, 2, 3).reshape(B, C, H, W))  # (B, C, H, W)
        sin, cos = (t.to(q.dtype) for t in rotary_2d(H, W, d, device=x.device))  # (H, W, d/2)
        q, k = apply_rotary(q, sin, cos), apply_rotary(k, sin, cos)

        if self.decomposed:
            # rows: each of the B*H rows is a sequence of W tokens, decay on column distance
            q_r, k_r, v_r = (t.permute(0, 2, 1, 3, 4).reshape(B * H, n, W, d) for t in (q, k, v))
            mask_w = decay_1d(W, self.gammas).to(q.dtype)  # (n, W, W)
            out = F.scaled_dot_product_attention(q_r, k_r, v_r, attn_mask=mask_w)  # (B*H, n, W, d)
            # columns: each of the B*W columns is a sequence of H tokens, decay on row distance;
            # the values are the row-pass output, so information travels along both axes
            q_c, k_c = (t.permute(0, 3, 1, 2, 4).reshape(B * W, n, H, d) for t in (q, k))
            v_c = out.reshape(B, H, n, W, d).permute(0, 3, 2, 1, 4).reshape(B * W, n, H, d)
            mask_h = decay_1d(H, self.gammas).to(q.dtype)  # (n, H, H)
            out = F.scaled_dot_product_attention(q_c, k_c, v_c, attn_mask=mask_h)  # (B*W, n, H, d)
            out = out.reshape(B, W, n, H, d).permute(0, 3, 1, 2, 4).reshape(B, H, W, C)
        else:
            q_f, k_f, v_f = (t.reshape(B, n, H * W, d) for t in (q, k, v))
            mask = manhattan_decay_2d(H, W, self.gammas).to(q.dtype)  # (n, HW, HW)
            out = F.scaled_dot_product_attention(q_f, k_f, v_f, attn_mask=mask)  # (B, n, HW, d)
            out = out.transpose(1, 2).reshape(B, H, W, C)

        out = out + lepe.permute(0, 2, 3, 1)  # (B, H, W, C)
        return self.proj(out)
