"""Class-imbalance options of a recipe: the loss and the order of the training clips.

The paper trains with plain cross-entropy over a shuffled epoch (``loss: cross_entropy``,
``sampling: shuffle``, the default of every recipe). The options the field uses against
imbalance (few negative clips in SAMM, few happy clips in CAS(ME)^3), as named alternatives:

- ``loss: weighted_cross_entropy``: cross-entropy with class weights inversely proportional
  to each class's frequency among the fold's TRAINING clips (never the held-out subject's),
  normalised so the weights average to 1 over the classes present.
- ``loss: focal``: focal loss (Lin et al., ICCV 2017) with gamma = 2 and no class weights:
  -(1 - p_t) ** 2 * log p_t, down-weighting clips the model already gets right.
- ``sampling: class_balanced``: each epoch draws as many training clips as usual, with
  replacement, each class equally likely (every clip of class c has weight 1 / n_c).

One order is not about imbalance: ``sampling: in_order`` gives the training clips in the
table's order every epoch, no shuffling, as the PyTorch code of STSTNet and HTNet trains (their
DataLoaders have no ``shuffle``; tsfmicro.model.networks declares it in their recipes).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

LOSSES = ("cross_entropy", "weighted_cross_entropy", "focal")
SAMPLINGS = ("shuffle", "class_balanced", "in_order")
FOCAL_GAMMA = 2.0  # the value Lin et al. recommend and most micro-expression code uses
# The options the class-imbalance chapter compares (``imbalance: options:`` of the parameters),
# one name each, as (loss, sampling). "cross_entropy" is the paper's training.
OPTIONS: dict[str, tuple[str, str]] = {
    "cross_entropy": ("cross_entropy", "shuffle"),
    "weighted_cross_entropy": ("weighted_cross_entropy", "shuffle"),
    "focal": ("focal", "shuffle"),
    "class_balanced": ("cross_entropy", "class_balanced"),
}


def option_settings(name: str) -> dict[str, str | None]:
    """RunConfig's ``loss`` and ``sampling`` for the chapter's option ``name``; None where it is the
    paper's, so the paper's option is the main results' run itself."""
    if name not in OPTIONS:
        raise ValueError(f"unknown class-imbalance option {name!r}; choose one of {', '.join(OPTIONS)}")
    loss, sampling = OPTIONS[name]
    return {"loss": None if loss == LOSSES[0] else loss, "sampling": None if sampling == SAMPLINGS[0] else sampling}


def class_weights(train_labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Inverse-frequency weights (num_classes,) from the training labels; 0 for an absent class."""
    counts = torch.bincount(train_labels.cpu(), minlength=num_classes).double()
    present = counts > 0
    weights = torch.zeros(num_classes, dtype=torch.float64)
    weights[present] = 1.0 / counts[present]
    weights *= present.sum() / weights.sum()  # mean 1 over the present classes
    return weights.float()


def focal_loss(logits: torch.Tensor, labels: torch.Tensor, gamma: float = FOCAL_GAMMA) -> torch.Tensor:
    """Mean focal loss of (B, classes) logits; gamma = 0 is cross-entropy."""
    log_p = F.log_softmax(logits, dim=1).gather(1, labels[:, None])[:, 0]  # (B,) log p_t
    return (-(1 - log_p.exp()) ** gamma * log_p).mean()


def make_loss(name: str, train_labels: torch.Tensor, num_classes: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The loss of one fold: ``loss(logits (B, classes) fp32, labels (B,)) -> scalar``."""
    if name == "cross_entropy":
        return F.cross_entropy
    if name == "weighted_cross_entropy":
        weight = class_weights(train_labels, num_classes).to(train_labels.device)
        return lambda logits, labels: F.cross_entropy(logits, labels, weight=weight)
    if name == "focal":
        return focal_loss
    raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")


def epoch_order(sampling: str, train_index: torch.Tensor, train_labels: torch.Tensor,
                generator: torch.Generator) -> torch.Tensor:
    """The rows of one epoch, drawn on the CPU with ``generator``: (len(train_index),) indices."""
    if sampling == "shuffle":
        return train_index[torch.randperm(len(train_index), generator=generator)]
    if sampling == "class_balanced":
        labels = train_labels.cpu()
        counts = torch.bincount(labels).double()
        weights = 1.0 / counts[labels]  # each class carries the same total weight
        draws = torch.multinomial(weights, len(train_index), replacement=True, generator=generator)
        return train_index[draws]
    if sampling == "in_order":  # no generator draw: the other orders' random streams are untouched
        return train_index.clone()
    raise ValueError(f"unknown sampling {sampling!r}; choose one of {', '.join(SAMPLINGS)}")
