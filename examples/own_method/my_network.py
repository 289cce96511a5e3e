"""A network of your own, trained and scored by tsfmicro beside TSFmicro and the baselines
(book page "Add your own method"). The parameters key ``plugins:`` names this file; tsfmicro
imports it before checking the parameters, so ``@register_model`` below registers ``my_flownet``."""
from dataclasses import dataclass, replace

from torch import nn

from tsfmicro.model import register_model


@dataclass(frozen=True)
class MyFlowNetConfig:
    image_size: int = 28  # the flow input is 28 x 28 (tsfmicro.data.flow)
    width: int = 8  # channels of the first convolution
    num_classes: int = 3  # replaced by the task's number of classes


PRESETS = {"paper": MyFlowNetConfig(width=32), "tiny": MyFlowNetConfig()}
# the settings it trains with, as data (tsfmicro.engine.recipes.Recipe fields); the baselines
# chapter trains every network with the recipe it calls "authors_code"
RECIPES = {"authors_code": dict(optimizer="adam", learning_rate=1e-3, weight_decay=1e-4, batch_size=32,
                                epochs=100)}


class MyFlowNet(nn.Module):
    inputs = ("flow",)  # onset -> apex optical flow u, v and strain: (B, 3, 28, 28) in [0, 1]

    def __init__(self, config: MyFlowNetConfig):
        super().__init__()
        self.image_size = config.image_size
        width = config.width
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU())  # (B, 2w, 14, 14)
        self.classifier = nn.Linear(2 * width, config.num_classes)

    def forward(self, flow):
        return self.classifier(self.body(flow).mean(dim=(2, 3)))  # global average pool -> logits

    def feature_layers(self):
        return {"body": self.body}  # its last map, for Grad-CAM


@register_model("my_flownet", recipes=RECIPES, presets=PRESETS)
def my_flownet(preset: str, num_classes: int, fusion: str) -> MyFlowNet:
    return MyFlowNet(replace(PRESETS[preset], num_classes=num_classes))
