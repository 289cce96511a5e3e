"""STSTNet (Liong et al., FG 2019, arXiv 1902.03634): three shallow parallel conv streams on the
onset->apex optical flow (u, v) and optical-strain magnitude, 28 x 28.

Written from the facts of /work/shared/reference/baselines.md, section 1 ("STSTNet"), which
cites the authors' repository (github christy1206/STSTNet @1afb56e: main.py, main.m,
STSTNet.mat) and MEB's copy (github tvaranka/meb, meb/models/me_networks.py); no code copied.

Layers (baselines.md Sec. 1 "Layers"), for a (B, 3, 28, 28) input:

- three streams on the same input, widths 3, 5 and 8; each: Conv2d(3 -> c, 3x3, stride 1,
  padding 2, bias) -> ReLU -> BatchNorm2d(c) -> MaxPool(3x3, stride 3, padding 1) -> Dropout(0.5):
  28 -> 30 (padding 2) -> 10;
- the streams' maps concatenated (16 channels, 10 x 10) -> AvgPool(2x2, stride 2) -> 5 x 5 x 16
  -> flatten 400 -> Linear(400 -> classes).

Parameters: convs 84 + 140 + 224 = 448, BatchNorms 32, classifier 1,203: 1,683 for 3 classes
(tests/test_baseline_networks.py). Quirks kept as the authors' code has them:

- ReLU BEFORE BatchNorm (also the order of the MATLAB graph's layers);
- padding 2 with a 3x3 kernel (the PyTorch port; the paper and MATLAB use "same" padding,
  28 x 28 before pooling); both give 10 x 10 after the pooling, so the parameter count is the same;
- the paper gives 1,670 parameters ("0.00167 M"), which matches neither 1,683 nor 1,651
  (without BatchNorm): not resolved, we build the code's network;
- the input channels: the authors' PyTorch loader reads the images with cv2.imread, so its
  tensor holds (strain, v, u) in 0..255 (BGR); ours is (u, v, strain) as the flow input gives it.
  The network treats its three channels alike in every stream, so only the learnt weights differ.
  Scale: the authors' PyTorch port feeds 0..255 unnormalised and MATLAB's input layer subtracts
  the mean training image ("zerocenter"); ours feeds the values the flow input holds
  (tsfmicro.data.flow), without either.

One size only: the authors' network is already tiny, so the presets ``paper`` and ``tiny`` are
the same network.

Recipes (baselines.md Sec. 1 "Training"; both: Adam, no learning-rate schedule, no augmentation,
plain cross-entropy, the last epoch's prediction):

- ``paper``: the paper's text and the MATLAB script main.m: learning rate 5e-5, 500 epochs,
  mini-batch 256. main.m sets only the solver, learning rate, epochs and mini-batch, so
  MATLAB's trainingOptions defaults hold for the rest: L2 regularisation 1e-4 (kept here as
  Adam's weight decay, an L2 term on every parameter; MATLAB's layers may exempt biases, which
  we do not reproduce) and Shuffle "once" (one shuffle before training, then the same order
  every epoch; ours: the table order every epoch, ``sampling="in_order"``);
- ``authors_code``: the PyTorch port main.py: learning rate 5e-5, batch 256, 800 epochs, no
  weight decay, a DataLoader without shuffling (``sampling="in_order"``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tsfmicro.model.networks._common import FLOW, preset_config
from tsfmicro.model.registry import register_model


@dataclass(frozen=True)
class STSTNetConfig:
    image_size: int = 28  # the authors' 28 x 28 x 3 input images
    widths: tuple[int, ...] = (3, 5, 8)  # one stream per width
    conv_padding: int = 2  # the PyTorch port's (MATLAB: "same", 1); both pool to 10 x 10 at 28 px
    dropout: float = 0.5
    num_classes: int = 3


PRESETS = {"paper": STSTNetConfig(), "tiny": STSTNetConfig()}  # already tiny: one size

RECIPES = {
    "paper": dict(optimizer="adam", learning_rate=5e-5, weight_decay=1e-4, batch_size=256, epochs=500,
                  sampling="in_order"),
    "authors_code": dict(optimizer="adam", learning_rate=5e-5, weight_decay=0.0, batch_size=256, epochs=800,
                         sampling="in_order"),
}


class Stream(nn.Sequential):
    """One stream: conv -> ReLU -> BatchNorm -> max pool -> dropout, (B, 3, S, S) -> (B, c, S', S')."""

    def __init__(self, width: int, config: STSTNetConfig):
        super().__init__(
            nn.Conv2d(3, width, kernel_size=3, stride=1, padding=config.conv_padding),  # (B, c, 30, 30)
            nn.ReLU(),
            nn.BatchNorm2d(width),  # after the ReLU, as the authors have it
            nn.MaxPool2d(kernel_size=3, stride=3, padding=1),  # (B, c, 10, 10)
            nn.Dropout(config.dropout),
        )


class STSTNet(nn.Module):
    """``model(flow)`` -> logits (B, classes); flow: (B, 3, 28, 28) u, v, strain."""

    inputs = FLOW  # the model contract (tsfmicro.model.registry)

    def __init__(self, config: STSTNetConfig):
        super().__init__()
        self.config = config
        self.image_size = config.image_size
        self.streams = nn.ModuleList(Stream(width, config) for width in config.widths)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)  # (B, 16, 10, 10) -> (B, 16, 5, 5)
        side = _pooled_side(config)
        self.classifier = nn.Linear(sum(config.widths) * side * side, config.num_classes)  # 400 -> classes

    def features(self, flow: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> the concatenated streams, (B, 16, 10, 10) at 28 px."""
        return torch.cat([stream(flow) for stream in self.streams], dim=1)

    def forward(self, flow: torch.Tensor) -> torch.Tensor:
        pooled = self.pool(self.features(flow))  # (B, 16, 5, 5)
        return self.classifier(pooled.flatten(1))  # (B, classes)

    def feature_layers(self) -> dict[str, nn.Module]:
        """Each stream's map (B, c, 10, 10) for Grad-CAM: the last maps before the streams meet."""
        return {f"stream{width}": stream for width, stream in zip(self.config.widths, self.streams)}


def _pooled_side(config: STSTNetConfig) -> int:
    conv = config.image_size + 2 * config.conv_padding - 2  # 3x3 kernel, stride 1
    pooled = (conv + 2 * 1 - 3) // 3 + 1  # max pool 3, stride 3, padding 1
    return pooled // 2  # average pool 2, stride 2


@register_model("ststnet", recipes=RECIPES, presets=PRESETS)
def ststnet(preset: str, num_classes: int, fusion: str) -> STSTNet:
    """STSTNet for ``num_classes`` classes; both presets are the authors' network."""
    return STSTNet(preset_config(PRESETS, preset, num_classes))
