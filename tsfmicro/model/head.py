"""Classifier head on the fused tokens."""

from __future__ import annotations

import torch
from torch import nn


class ClassifierHead(nn.Module):
    """(B, N, dim) tokens -> (B, num_classes) logits.

    Per-token Linear dim -> hidden, BatchNorm over the hidden features (statistics over
    the batch and all tokens, like the authors' BatchNorm2d on the map), Swish, mean over
    the tokens, Linear hidden -> classes.
    """

    def __init__(self, dim: int, hidden: int, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(dim, hidden)
        self.norm = nn.BatchNorm1d(hidden)
        self.act = nn.SiLU()  # Swish: x * sigmoid(x)
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.fc(tokens).transpose(1, 2)  # (B, hidden, N)
        x = self.act(self.norm(x)).mean(dim=2)  # (B, hidden)
        return self.classifier(x)  # (B, num_classes)
