"""Grad-CAM content: on a model whose prediction depends on one known patch per branch, each
branch's map lies on its own patch (shape and value checks of the real network's maps are in
test_book.py)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from tsfmicro.gradcam import branch_cams

SIZE, STRIDE = 64, 4  # 64 px inputs, 16 x 16 feature maps as in the tiny preset's first stage
TEMPORAL_PATCH = (slice(2, 5), slice(9, 13))  # feature-map cells (rows, columns) the head can see
SPATIAL_PATCH = (slice(10, 14), slice(3, 6))


class Gate(nn.Module):
    """Multiplies a feature map by a fixed 0/1 mask: everything outside the patch is zero."""

    def __init__(self, patch):
        super().__init__()
        mask = torch.zeros(1, 1, SIZE // STRIDE, SIZE // STRIDE)
        mask[(..., *patch)] = 1
        self.register_buffer("mask", mask)

    def forward(self, features):
        return features * self.mask


class PatchModel(nn.Module):
    """TSFmicro's interface (``model(onset, apex)``, ``feature_layers()``) with one patch per branch.

    temporal: a strided conv of apex - onset; spatial: of apex. Each branch's output (its
    Grad-CAM target layer) is gated to its patch and averaged; the head adds the branches'
    channels for class 0 and subtracts them for class 1. So the prediction depends on the
    temporal patch of the difference and the spatial patch of the apex, and on nothing else.
    """

    def __init__(self):
        super().__init__()
        generator = torch.Generator().manual_seed(0)

        def branch(patch):
            conv = nn.Conv2d(3, 4, STRIDE, STRIDE)
            with torch.no_grad():
                conv.weight.copy_(0.1 * torch.randn(conv.weight.shape, generator=generator))
                conv.bias.fill_(1.0)  # positive activations in the whole patch
            return nn.Sequential(conv, nn.ReLU(), Gate(patch))

        self.temporal = branch(TEMPORAL_PATCH)
        self.spatial = branch(SPATIAL_PATCH)
        self.head = nn.Linear(8, 2)
        with torch.no_grad():
            self.head.weight.copy_(torch.stack([torch.ones(8), -torch.ones(8)]))
            self.head.bias.zero_()

    def feature_layers(self):
        return {"temporal": self.temporal, "spatial": self.spatial}

    def forward(self, onset, apex):  # (B, 3, S, S) each -> (B, 2)
        temporal = self.temporal(apex - onset).mean(dim=(2, 3))  # (B, 4)
        spatial = self.spatial(apex).mean(dim=(2, 3))
        return self.head(torch.cat([temporal, spatial], dim=1))


def pixel_mask(patch, margin: int = STRIDE) -> np.ndarray:
    """The image pixels of feature cells ``patch``, widened by ``margin`` (the upsampling blurs edges)."""
    rows, columns = patch
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    mask[max(0, rows.start * STRIDE - margin): rows.stop * STRIDE + margin,
         max(0, columns.start * STRIDE - margin): columns.stop * STRIDE + margin] = True
    return mask


def test_each_branch_map_peaks_on_the_patch_its_prediction_depends_on():
    model = PatchModel().eval()
    generator = torch.Generator().manual_seed(1)
    onset, apex = torch.randn(3, 3, SIZE, SIZE, generator=generator), torch.randn(3, 3, SIZE, SIZE, generator=generator)
    # The premise: changing the apex outside both patches does not change the prediction.
    outside = torch.from_numpy(~(pixel_mask(TEMPORAL_PATCH, 0) | pixel_mask(SPATIAL_PATCH, 0)))
    changed = torch.where(outside, apex + 5 * torch.randn(apex.shape, generator=generator), apex)
    with torch.no_grad():
        torch.testing.assert_close(model(onset, changed), model(onset, apex))

    cams = branch_cams(model, onset, apex, target_classes=[0, 0, 0])
    for branch, patch, other in (("temporal", TEMPORAL_PATCH, SPATIAL_PATCH), ("spatial", SPATIAL_PATCH, TEMPORAL_PATCH)):
        maps = cams[branch]
        assert maps.shape == (3, SIZE, SIZE)
        inside, elsewhere = pixel_mask(patch), pixel_mask(other, 0)
        for k, cam in enumerate(maps):
            where = f"{branch} map of clip {k}"
            assert cam.max() > 0 and cam.std() > 0.1, f"{where} is empty or uniform"
            row, column = np.unravel_index(np.argmax(cam), cam.shape)
            assert inside[row, column], f"{where} peaks at ({row}, {column}), outside its patch"
            assert cam[inside].sum() >= 0.95 * cam.sum(), f"{where}: weight outside the patch"
            assert cam[elsewhere].max() < 0.05, f"{where} lights up the other branch's patch"
