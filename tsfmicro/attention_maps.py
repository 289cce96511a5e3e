"""Where each branch attends: attention of one query token, beside Grad-CAM.

Grad-CAM says which regions of a branch's output map drive the predicted class. These maps
say, for one position (the Grad-CAM peak, say), which positions that token reads from:

- ``spatial``: the last transformer block of the spatial branch (timm's ``Attention``);
- ``temporal``: the last block of the temporal branch's last stage, the full 2-D Manhattan
  self-attention with its decay (or, for the ``transformer`` ablation, plain attention;
  the ``conv`` ablation has no attention and gives no map).

Both grids are the final g x g grid (14 x 14 for the ``paper`` preset), averaged over heads.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


def grid_cell(peak_yx: tuple[int, int], image_size: int, grid: int) -> tuple[int, int]:
    """The grid cell (row, column) holding pixel ``peak_yx`` of an ``image_size`` image."""
    y, x = peak_yx
    return min(int(y) * grid // image_size, grid - 1), min(int(x) * grid // image_size, grid - 1)


def cam_peak(cam: np.ndarray) -> tuple[int, int]:
    """(row, column) of a CAM's maximum."""
    return tuple(int(i) for i in np.unravel_index(np.argmax(cam), cam.shape))


def attention_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The attention modules the maps are read from, per branch (only branches that have one)."""
    layers = {}
    if model.spatial is not None:
        layers["spatial"] = model.spatial.blocks[-1].attn
    if model.temporal is not None:
        mixer = model.temporal.stages[-1].blocks[-1].attn
        if hasattr(mixer, "attention_weights"):
            layers["temporal"] = mixer
    return layers


def _timm_attention_weights(attn: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """timm ``Attention`` weights (B, heads, N, N) from its input tokens (B, N, C)."""
    B, N, C = tokens.shape
    qkv = attn.qkv(tokens).reshape(B, N, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q, k = attn.q_norm(qkv[0]), attn.k_norm(qkv[1])  # (B, heads, N, d)
    return (q * attn.scale @ k.transpose(-1, -2)).softmax(dim=-1)


@torch.no_grad()
def attention_maps(model: nn.Module, onset: torch.Tensor, apex: torch.Tensor,
                   queries: list[tuple[int, int]]) -> dict[str, np.ndarray]:
    """Per branch, the attention of query cell ``queries[b]`` of clip b: ``(B, g, g)`` arrays.

    onset, apex: ``(B, 3, S, S)`` model inputs; ``queries``: one (row, column) grid cell per
    clip (``grid_cell(cam_peak(cam), S, g)``). Each map sums to 1 over the grid.
    """
    model.eval()
    layers = attention_layers(model)
    inputs: dict[str, torch.Tensor] = {}
    handles = [layer.register_forward_pre_hook(lambda module, args, name=name: inputs.__setitem__(name, args[0]))
               for name, layer in layers.items()]
    try:
        model(onset, apex)
    finally:
        for handle in handles:
            handle.remove()
    grid = model.config.grid_size
    rows = torch.tensor([r * grid + c for r, c in queries], device=onset.device)
    maps = {}
    for name, layer in layers.items():
        x = inputs[name]
        weights = layer.attention_weights(x) if name == "temporal" else _timm_attention_weights(layer, x.float())
        mean = weights.mean(dim=1)  # (B, N, N), over heads
        picked = mean[torch.arange(len(rows)), rows]  # (B, N)
        maps[name] = picked.reshape(-1, grid, grid).cpu().numpy()
    return maps


def attention_summary(panels: list[dict]) -> str:
    """What the attention panels (tsfmicro.gradcam.explain_predictions(..., attention=True)) show,
    from their numbers: per branch, in how many clips the query token at the Grad-CAM peak
    attends most to its own grid cell, and how peaked its attention is (its maximum against
    uniform attention), for correct and wrong predictions."""
    parts = []
    for branch in ("temporal", "spatial"):
        maps = [(panel["outcome"], panel[f"{branch}_query"], panel[f"{branch}_attention"]) for panel in panels
                if panel.get(f"{branch}_attention") is not None]
        if not maps:
            parts.append(f"the {branch} branch has no attention map here")
            continue
        own = sum(cam_peak(attention) == tuple(query) for _, query, attention in maps)
        peak = {outcome: [float(attention.max() * attention.size) for kind, _, attention in maps if kind == outcome]
                for outcome in ("correct", "wrong")}
        peaks = ", ".join(f"{outcome} {np.mean(values):.1f}x" for outcome, values in peak.items() if values)
        parts.append(f"in the {branch} branch the query token attends most to its own cell in {own} of {len(maps)} "
                     f"clips, and its strongest weight is on average {peaks} the uniform weight")
    return "At the Grad-CAM peak, " + "; ".join(parts) + "."
