"""Supervised contrastive loss beside cross-entropy: a recipe option against the identity shortcut.

Source: P. Khosla, P. Teterwak, C. Wang, A. Sarna, Y. Tian, P. Isola, A. Maschinot, C. Liu and
D. Krishnan, "Supervised Contrastive Learning", NeurIPS 2020 (arXiv 2004.11362), eq. 2, the
``L_out`` form (the mean over positives taken outside the log, the one the authors recommend)::

    L_out = sum_{i in I}  -1/|P(i)|  sum_{p in P(i)}  log( exp(z_i . z_p / tau) / sum_{a in A(i)} exp(z_i . z_a / tau) )

``z``: the L2-normalised projections of the batch's clips, ``tau`` the temperature, ``A(i)`` every
clip of the batch but ``i``, ``P(i)`` the positives of anchor ``i``. We average over the anchors
that have a positive instead of summing (the authors' code averages too; a mean keeps the weight
independent of the batch size).

Our choices (the paper's conclusion asks for contrastive learning against the cross-cultural
drop; micro-expression datasets have few subjects, so a network can score by recognising the
person rather than the movement):

- Positives are clips of the same class AND another subject: ``P(i) = {p != i: y_p = y_i,
  s_p != s_i}``. A clip of the anchor's own subject is never a positive, so pulling clips of one
  person together cannot lower the loss: identity is not a shortcut.
- The denominator ``A(i)`` stays Khosla's, every other clip of the batch, the anchor's own
  subject's included (whatever their class). Left in, a same-subject clip close to the anchor
  raises the denominator and the loss, so the loss pushes against clustering by person; taken
  out, closeness to one's own subject's clips would be free.
- An anchor with no positive in the batch (its class's other clips all of its own subject, or
  none) contributes nothing: it is left out of the mean and counted (``no_positive``), never a
  NaN. A batch with no anchor at all gives a loss of 0 (with a graph, so backward still runs).

The total training loss is ``recipe loss (cross-entropy, ...) + supcon_weight * L``. The
projection head (:class:`ProjectionHead`: Linear-ReLU-Linear to 128 dimensions, as Khosla et al.)
reads the fused features, the input of the network's ``classifier`` (the model contract,
tsfmicro.model.registry), taken by a forward pre-hook (:class:`ClassifierInput`), so it works for
every registered network. It is used in training only: predictions never pass through it, and the
fold weights hold the network alone; the mid-fold checkpoint holds it, so a resumed fold equals an
uninterrupted one. The run options are ``supcon_weight`` (0: off, the default) and
``supcon_temperature`` (0.1, the value Khosla et al. found best), tsfmicro.options.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PROJECTION_DIM = 128  # Khosla et al.'s projection size


class ProjectionHead(nn.Module):
    """Fused features ``(B, d)`` -> L2-normalised projections ``(B, 128)``: Linear d -> d, ReLU,
    Linear d -> 128 (Khosla et al.'s projection network, its hidden width the feature's)."""

    def __init__(self, features: int, out: int = PROJECTION_DIM):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(features, features), nn.ReLU(), nn.Linear(features, out))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.layers(features.flatten(1)), dim=1)


class ClassifierInput:
    """The input of ``model.classifier`` (the fused features, ``(B, d)``) at each forward pass,
    in the autograd graph: a forward pre-hook, removed on :meth:`close`."""

    def __init__(self, model: nn.Module):
        self.features: torch.Tensor | None = None
        self._handle = model.classifier.register_forward_pre_hook(self._keep)

    def _keep(self, module, inputs) -> None:
        self.features = inputs[0]

    def take(self) -> torch.Tensor:
        """The features of the last forward pass (and forget them: no batch is used twice)."""
        if self.features is None:
            raise RuntimeError("the network's forward pass did not reach model.classifier (the model contract)")
        features, self.features = self.features, None
        return features

    def close(self) -> None:
        self._handle.remove()


def supcon_loss(projections: torch.Tensor, labels: torch.Tensor, subjects: torch.Tensor,
                temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Khosla et al.'s ``L_out`` (module docstring) of ``projections`` ``(B, k)`` (normalised here),
    positives of the same class and another subject: the mean over the anchors with a positive
    (0 when none has one), and the number of anchors without one (a 0-d tensor: training reads it
    once an epoch, so a GPU step waits for nothing)."""
    batch = len(projections)
    if batch < 2:  # a last batch of one clip: no pair at all (and A(i) would be empty)
        return projections.sum() * 0.0, torch.tensor(batch, device=projections.device)
    z = F.normalize(projections.float(), dim=1)
    similarity = z @ z.T / temperature  # (B, B)
    others = ~torch.eye(batch, dtype=torch.bool, device=z.device)  # A(i): every clip but i
    positive = (labels[:, None] == labels[None, :]) & (subjects[:, None] != subjects[None, :])  # never i itself
    # log of each a's share of i's denominator; the diagonal is left out of the sum
    log_prob = similarity - torch.logsumexp(similarity.masked_fill(~others, float("-inf")), dim=1, keepdim=True)
    counts = positive.sum(dim=1)
    has_positive = counts > 0
    per_anchor = -(log_prob * positive).sum(dim=1) / counts.clamp(min=1)  # 0 for an anchor without a positive
    loss = (per_anchor * has_positive).sum() / has_positive.sum().clamp(min=1)  # their mean; 0 if none
    return loss, batch - has_positive.sum()


def check_settings(weight: float | None, temperature: float | None) -> None:
    """A weight >= 0, a temperature > 0, and a temperature only with a weight above 0: one-line
    errors naming the option (tsfmicro.engine.runs.validate, get_recipe)."""
    if weight is not None and not weight >= 0:  # `not >=`: NaN is refused too
        raise ValueError(f"supcon_weight must be a number >= 0 (0: off), got {weight!r}")
    if temperature is not None and not temperature > 0:
        raise ValueError(f"supcon_temperature must be a number > 0, got {temperature!r}")
    if temperature is not None and not (weight or 0) > 0:
        raise ValueError(f"supcon_temperature {temperature!r} given without a supcon_weight above 0: the temperature "
                         "is the supervised contrastive loss's, which is off; give supcon_weight too, or leave "
                         "the temperature out")


class SupConTerm:
    """The contrastive part of one fold's training loss: the projection head on the network's fused
    features, ``weight * L_out`` of each batch (:meth:`__call__`, after the network's forward pass),
    and the epoch's mean loss and count of anchors without a positive (:meth:`epoch_summary`).

    The head runs in fp32 whatever the recipe's precision (it is small; the features are cast)."""

    def __init__(self, model: nn.Module, weight: float, temperature: float, device: torch.device):
        self.weight, self.temperature = weight, temperature
        self.head = ProjectionHead(model.classifier.in_features).to(device)
        self._features = ClassifierInput(model)
        self._reset()

    def _reset(self) -> None:
        self._loss_sum, self._clips, self._no_positive = 0.0, 0, 0

    def __call__(self, labels: torch.Tensor, subjects: torch.Tensor) -> torch.Tensor:
        """``weight * L_out`` of the batch the network has just seen (its labels and subject codes)."""
        projections = self.head(self._features.take().float())
        loss, no_positive = supcon_loss(projections, labels, subjects, self.temperature)
        self._loss_sum = self._loss_sum + loss.detach() * len(labels)  # summed on the device: no sync per step
        self._clips += len(labels)
        self._no_positive = self._no_positive + no_positive
        return self.weight * loss

    def epoch_summary(self) -> dict:
        """The curves' columns for the epoch that ended (the unweighted loss, a clip-weighted mean),
        and a fresh count for the next."""
        summary = {"train_supcon_loss": float(self._loss_sum) / max(self._clips, 1),
                   "supcon_no_positive": int(self._no_positive)}
        self._reset()
        return summary

    def close(self) -> None:
        """Take the hook off the network (the fold's model is kept and saved without it)."""
        self._features.close()
