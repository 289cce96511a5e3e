"""OFF-ApexNet (Gan, Liong et al., Signal Processing: Image Communication 74, 2019; arXiv
1805.08699), in MEB's version: two small conv layers on the onset->apex optical flow (u, v),
then two fully connected layers.

Written from the facts of /work/shared/reference/baselines.md, section 2 ("OFF-ApexNet"): no
original code of the authors was found, and the paper's layer sizes and training could not be
verified, so we build the version MEB trains (github tvaranka/meb @f731b0a,
meb/models/me_networks.py:126-175, "MEB version" in baselines.md); no code copied.

Layers, for the (B, 3, 28, 28) flow input (u, v, strain):

- the first two channels only (u, v): MEB drops the strain (``data[:, :2]``), and the original
  OFF-ApexNet reads 28 x 28 x 2 (u, v) as well (baselines.md Sec. 2);
- Conv2d(2 -> 6, 3x3, padding 1) -> ReLU -> MaxPool(2, 2): 14 x 14;
- Conv2d(6 -> 16, 3x3, padding 1) -> ReLU -> MaxPool(2, 2): 7 x 7 (MEB reuses its first pooling
  object for both poolings; the same operation, so nothing to reproduce);
- flatten 784 -> Dropout(0.5) -> Linear(784 -> 1024) -> ReLU -> Dropout(0.5) -> Linear(1024 -> classes).

Parameters: 114 + 880 + 803,840 + 3,075 = 807,909 for 3 classes (tests/test_baseline_networks.py).
The original is larger (2.77 M by the STSTNet paper; a third-party two-stream re-implementation,
Off-TANet's, has 2,664,475): not built here, its exact layers are not verifiable.

One size only (808 k parameters on a 28 x 28 input train quickly on a CPU): the presets
``paper`` and ``tiny`` are the same network.

Recipe: the authors' training is not public, so the only recipe is MEB's (its "Table 3. Early
stopping" notebook; baselines.md Sec. 2 "MEB training recipe"), named ``authors_code`` (the
code it is trained from): Adam (L2 weight decay inside Adam, not AdamW's decoupled decay),
learning rate 1e-4, weight decay 1e-3, 3000 epochs, batch 32 (MEB's Config default), a shuffled
training loader, plain cross-entropy, no schedule, no augmentation. The recipe ``paper`` is
refused for this network (tsfmicro.engine.recipes.get_recipe says why).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tsfmicro.model.networks._common import FLOW, preset_config
from tsfmicro.model.registry import register_model


@dataclass(frozen=True)
class OffApexNetConfig:
    image_size: int = 28
    flow_channels: int = 2  # u, v: the first channels of the flow input (the strain is not read)
    widths: tuple[int, int] = (6, 16)
    hidden: int = 1024
    dropout: float = 0.5
    num_classes: int = 3


PRESETS = {"paper": OffApexNetConfig(), "tiny": OffApexNetConfig()}  # one size

RECIPES = {
    "authors_code": dict(optimizer="adam", learning_rate=1e-4, weight_decay=1e-3, batch_size=32, epochs=3000,
                         sampling="shuffle"),
}


class OffApexNet(nn.Module):
    """``model(flow)`` -> logits (B, classes); flow: (B, 3, 28, 28) u, v, strain (u, v read)."""

    inputs = FLOW  # the model contract (tsfmicro.model.registry)

    def __init__(self, config: OffApexNetConfig):
        super().__init__()
        self.config = config
        self.image_size = config.image_size
        first, second = config.widths
        self.features = nn.Sequential(
            nn.Conv2d(config.flow_channels, first, kernel_size=3, padding=1),  # (B, 6, 28, 28)
            nn.ReLU(),
            nn.MaxPool2d(2, 2),  # (B, 6, 14, 14)
            nn.Conv2d(first, second, kernel_size=3, padding=1),  # (B, 16, 14, 14)
            nn.ReLU(),
            nn.MaxPool2d(2, 2),  # (B, 16, 7, 7)
        )
        side = config.image_size // 4
        self.hidden = nn.Sequential(
            nn.Dropout(config.dropout),
            nn.Linear(second * side * side, config.hidden),  # 784 -> 1024
            nn.ReLU(),
            nn.Dropout(config.dropout),
        )
        self.classifier = nn.Linear(config.hidden, config.num_classes)  # 1024 -> classes

    def forward(self, flow: torch.Tensor) -> torch.Tensor:
        maps = self.features(flow[:, : self.config.flow_channels])  # (B, 16, 7, 7)
        return self.classifier(self.hidden(maps.flatten(1)))  # (B, classes)

    def feature_layers(self) -> dict[str, nn.Module]:
        """The second conv block's map (B, 16, 7, 7) for Grad-CAM."""
        return {"features": self.features}


@register_model("off_apexnet", recipes=RECIPES, presets=PRESETS)
def off_apexnet(preset: str, num_classes: int, fusion: str) -> OffApexNet:
    """OFF-ApexNet (MEB's version) for ``num_classes`` classes; both presets are the same network."""
    return OffApexNet(preset_config(PRESETS, preset, num_classes))
