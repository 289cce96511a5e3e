"""Leave-one-subject-out training of one seed, scored under both protocols.

For every fold (one held-out subject) a fresh model is trained with the recipe and evaluated on
the held-out clips after EVERY epoch. That is cheap (a handful of clips) and gives both
protocols from the same training:

* ``fixed``: the prediction after the last epoch. No choice is made on test data.
* ``oracle``: per held-out subject, the epoch whose predictions have the best macro F1 on that
  subject's own clips (ties go to the later epoch), as in the authors' code. Accuracy and
  every other number of this protocol use that same epoch; the authors pick the best-accuracy
  epoch separately, which inflates their accuracy slightly more than ours.

Class imbalance (tsfmicro.engine.imbalance): the recipe's ``loss`` is built per fold, class
weights from that fold's training clips only (never the held-out subject's), and its ``sampling``
draws each epoch's order; the defaults (plain cross-entropy, a shuffled epoch) are the authors'.
A recipe's ``supcon_weight`` above 0 adds the supervised contrastive term (tsfmicro.engine.contrastive)
on a projection head trained beside the network: in the mid-fold checkpoint, never in the fold
weights or the predictions; the curves then have ``train_supcon_loss`` and ``supcon_no_positive``
(anchors of the epoch without a positive), and ``train_loss`` stays the recipe's loss alone.

Determinism: each fold seeds torch and its own CPU generator from (seed, fold index), so a fold
does not depend on what ran before it, and a checkpoint carries the RNG states to continue a
fold mid-way. On the CPU a resumed run is bit-identical to an uninterrupted one.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm import tqdm  # text bars: no widget dependency in notebooks

from tsfmicro import metrics
from tsfmicro.data.types import PreparedData
from tsfmicro.engine import checkpoint as ckpt
from tsfmicro.engine import imbalance
from tsfmicro.engine.augment import augment_together, random_transforms, to_model_input
from tsfmicro.engine.contrastive import SupConTerm
from tsfmicro.engine.recipes import Recipe
from tsfmicro.results import fold_weights_path

EVAL_BATCH = 64
# A recipe's ``optimizer`` (tsfmicro.engine.recipes.OPTIMIZERS): Adam puts the weight decay into the
# gradient (L2), AdamW applies it to the weights directly (decoupled)
OPTIMIZERS = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}
PAIR = ("onset", "apex")  # TSFmicro's inputs (its ``inputs``, the model contract)
FLOW = "flow"  # the baselines' input (tsfmicro.data.flow)


@dataclass
class FoldOutcome:
    """Everything kept from one fold: test probabilities after each epoch and the curves."""

    name: str
    test_index: np.ndarray  # (n,) rows of PreparedData
    probabilities: np.ndarray  # (epochs, n, classes) softmax after each epoch
    curves: pd.DataFrame  # one row per epoch
    # Epochs already done when the process that finished this fold started it: 0 = trained from
    # scratch, k = continued from a mid-fold checkpoint after k epochs. Resumed runs give the same
    # numbers as uninterrupted ones, so this is what shows that finished work was not redone.
    start_epoch: int = 0

    @property
    def oracle_epoch(self) -> int:
        """0-based epoch with the best held-out macro F1; the last one on ties (authors' ``>=``)."""
        f1 = self.curves["test_f1"].to_numpy()
        return int(len(f1) - 1 - np.argmax(f1[::-1]))


class DeviceData:
    """The prepared crops as uint8 tensors on the training device, and the labels; a network's
    inputs by name (:data:`INPUTS`, what a network's ``inputs`` may name):

    * ``onset``, ``apex``: the face crops, ImageNet-normalised ``(B, 3, S, S)`` (TSFmicro's);
    * ``flow``: the onset -> apex TV-L1 flow and its strain, ``(B, 3, 28, 28)`` float in [0, 1],
      channels u, v, strain (tsfmicro.data.flow, the input of STSTNet, OFF-ApexNet and HTNet),
      whatever S is. Computed (or read from its file beside the face-crop cache) the first time a
      network asks for it, so data for networks that do not name it never computes it.

    ``frame_reselection``: training batches read the re-selected pair (``data.train_onset``,
    ``data.train_apex``, from ``prepare(..., reselect_frames=True)``); evaluation always reads
    the annotated onset and apex. Off: training reads onset and apex too. The flow input is the
    annotated pair's only (a network reading it cannot train with re-selection).
    """

    def __init__(self, data: PreparedData, device: torch.device, frame_reselection: bool = False):
        # torch.tensor copies: the cache may hand out read-only (memory-mapped) arrays.
        self.onset = torch.tensor(data.onset, dtype=torch.uint8, device=device)  # (N, H, W, 3)
        self.apex = torch.tensor(data.apex, dtype=torch.uint8, device=device)
        self.train_onset, self.train_apex = self.onset, self.apex
        self.frame_reselection = frame_reselection
        if frame_reselection:
            if data.train_onset is None or data.train_apex is None:
                raise ValueError("frame re-selection needs the re-selected training frames: "
                                 "prepare(..., reselect_frames=True)")
            self.train_onset = torch.tensor(data.train_onset, dtype=torch.uint8, device=device)
            self.train_apex = torch.tensor(data.train_apex, dtype=torch.uint8, device=device)
        labels = data.samples["class_index"].to_numpy(dtype=np.int64)
        self.labels = torch.tensor(labels, device=device)  # (N,)
        # each clip's subject as a code (N,): the contrastive loss's positives are of another subject
        codes, _ = pd.factorize(data.samples["subject"].astype(str))
        self.subjects = torch.tensor(codes, dtype=torch.long, device=device)
        self.num_classes = len(data.class_names)
        self.device = device
        self._data = data  # the crops the flow input is computed from, when a network names it
        self._flow: torch.Tensor | None = None

    INPUTS = (*PAIR, FLOW)  # the inputs the data provides

    def flow(self) -> torch.Tensor:
        """Every clip's flow input ``(N, 3, 28, 28)`` on the device (computed or read once)."""
        if self._flow is None:
            from tsfmicro.data.flow import flow_inputs

            self._flow = torch.tensor(flow_inputs(self._data), dtype=torch.float32, device=self.device)
        return self._flow

    def inputs(self, index: torch.Tensor, image_size: int, train: bool = False,
               names: tuple[str, ...] = PAIR) -> tuple[torch.Tensor, ...]:
        """The inputs ``names`` (a network's ``inputs``) of rows ``index``: onset and apex normalised
        ``(B, 3, S, S)`` each (``train``: the training pair), flow ``(B, 3, 28, 28)``."""
        frames = dict(zip(PAIR, (self.train_onset, self.train_apex) if train else (self.onset, self.apex)))
        unknown = [name for name in names if name not in self.INPUTS]
        if unknown:
            raise ValueError(f"the network reads input {', '.join(map(repr, unknown))}; the data provides "
                             f"{', '.join(self.INPUTS)} (tsfmicro.engine.loso.DeviceData)")
        if FLOW in names and train and self.frame_reselection:
            raise ValueError("the flow input is computed from the annotated onset and apex only; "
                             "train a network that reads flow without frame_reselection")
        return tuple(self.flow()[index] if name == FLOW else to_model_input(frames[name][index], image_size)
                     for name in names)


@dataclass
class FoldTrainer:
    """Trains one fold; everything the loop needs that does not change between folds."""

    data: DeviceData
    build_model: Callable[[], torch.nn.Module]
    recipe: Recipe
    image_size: int
    seed: int

    def autocast(self):
        """bf16 autocast in the recipe's ``bf16`` mode; fp32 (no autocast) otherwise, as the authors train."""
        device = self.data.device
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=self.recipe.precision == "bf16")

    def run(
        self,
        fold_index: int,
        fold,
        resume: dict | None,
        save: Callable[[dict], None],
        policy: ckpt.CheckpointPolicy,
        progress: bool,
    ) -> tuple[FoldOutcome, torch.nn.Module]:
        """Train and evaluate fold ``fold`` (a ``tsfmicro.data`` Fold); return it and the final model."""
        fold_seed = int(np.random.SeedSequence([self.seed, fold_index]).generate_state(1)[0])
        torch.manual_seed(fold_seed)
        generator = torch.Generator().manual_seed(fold_seed)
        model = self.build_model().to(self.data.device)
        # the supervised contrastive term and its projection head (training only; tsfmicro.engine.contrastive)
        supcon = (SupConTerm(model, self.recipe.supcon_weight, self.recipe.supcon_temperature, self.data.device)
                  if self.recipe.supcon_weight > 0 else None)
        parameters = list(model.parameters()) + (list(supcon.head.parameters()) if supcon is not None else [])
        optimizer = OPTIMIZERS[self.recipe.optimizer](  # AdamW (TSFmicro's), Adam (the baselines')
            parameters,
            lr=self.recipe.learning_rate,
            weight_decay=self.recipe.weight_decay,
            # one kernel for all parameters instead of a loop over them: the tiny network's AdamW step
            # takes 0.7 ms fused against 3.9 ms looped on one CPU thread (153 tensors; 7 December
            # 2026), a tenth of a 32 px training step; the same update, only the rounding may differ
            fused=self.data.device.type in ("cuda", "cpu"),
        )
        scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=self.recipe.lr_gamma)
        # Copies: a Ray worker receives the fold's index arrays read-only.
        train_index = torch.tensor(np.asarray(fold.train_index), dtype=torch.long)
        test_index = torch.tensor(np.asarray(fold.test_index), dtype=torch.long)
        loss = self.fold_loss(train_index)
        probabilities: list[torch.Tensor] = []
        curves: list[dict] = []
        if resume is not None:
            model.load_state_dict(resume["model"])
            if supcon is not None:
                supcon.head.load_state_dict(resume["projection"])
            optimizer.load_state_dict(resume["optimizer"])
            scheduler.load_state_dict(resume["scheduler"])
            ckpt.restore_rng_state(resume["rng"], generator)
            probabilities = list(resume["probabilities"])
            curves = list(resume["curves"])
        start_epoch = len(curves)

        epochs = tqdm(
            range(start_epoch, self.recipe.epochs),
            initial=start_epoch,
            total=self.recipe.epochs,
            desc=f"  fold {fold.name} epochs",
            leave=False,
            disable=not progress,
        )
        # a keyword only when on: train_epoch's callers and stand-ins without it keep working
        contrastive = {} if supcon is None else {"supcon": supcon}
        for epoch in epochs:
            learning_rate = optimizer.param_groups[0]["lr"]
            train_loss, train_accuracy = self.train_epoch(model, optimizer, train_index, generator, loss,
                                                          **contrastive)
            if epoch < self.recipe.decay_epochs:
                scheduler.step()
            epoch_probabilities, test_loss = self.predict(model, test_index)
            probabilities.append(epoch_probabilities)
            curves.append(self.curve_row(epoch, learning_rate, train_loss, train_accuracy, test_loss,
                                         epoch_probabilities, test_index))
            if supcon is not None:
                curves[-1].update(supcon.epoch_summary())
            epochs.set_postfix(loss=f"{train_loss:.3f}", test_acc=f"{curves[-1]['test_accuracy']:.2f}")
            finished_epochs = epoch + 1
            if finished_epochs < self.recipe.epochs and policy.due(finished_epochs):
                save(
                    {
                        "fold_index": fold_index,
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "rng": ckpt.rng_state(generator),
                        "probabilities": torch.stack(probabilities),
                        "curves": curves,
                        # the projection head is trained too: a resumed fold continues it
                        **({"projection": supcon.head.state_dict()} if supcon is not None else {}),
                    }
                )
        if supcon is not None:
            supcon.close()  # the fold's model leaves without the hook
        outcome = FoldOutcome(
            name=str(fold.name),
            test_index=test_index.numpy(),
            probabilities=torch.stack(probabilities).numpy(),
            curves=pd.DataFrame(curves),
            start_epoch=start_epoch,
        )
        return outcome, model

    def fold_loss(self, train_index: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """The recipe's loss for one fold; class weights (weighted cross-entropy) come from the
        labels of ``train_index`` only, the fold's training clips."""
        train_labels = self.data.labels[train_index.to(self.data.device)]
        return imbalance.make_loss(self.recipe.loss, train_labels, self.data.num_classes)

    def train_epoch(self, model, optimizer, train_index: torch.Tensor, generator: torch.Generator,
                    loss_function: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                    supcon: SupConTerm | None = None):
        """One pass over the training clips in the recipe's order (a shuffle, or class-balanced
        draws); mean loss (the recipe's loss) and accuracy. ``supcon``: the contrastive term is
        added to what is optimised (its own mean goes to the curves through ``supcon``)."""
        model.train()
        hold_frozen(model)
        device = self.data.device
        # The epoch's order and augmentations are drawn on the CPU and moved in one copy each.
        train_labels = self.data.labels[train_index.to(device)]
        order = imbalance.epoch_order(self.recipe.sampling, train_index, train_labels, generator).to(device)
        all_transforms = random_transforms(len(order), self.recipe, self.image_size, generator).to(device)
        loss_sum = torch.zeros((), device=device)  # summed on the device: no sync per step
        correct = torch.zeros((), device=device, dtype=torch.long)
        batches = zip(order.split(self.recipe.batch_size), all_transforms.split(self.recipe.batch_size))
        for batch, transforms in batches:
            # the network names its inputs (the model contract); one transform moves them all alike
            images = augment_together(self.data.inputs(batch, self.image_size, train=True, names=model.inputs),
                                      transforms)
            labels = self.data.labels[batch]
            with self.autocast():
                logits = model(*images)  # (B, classes)
            loss = loss_function(logits.float(), labels)
            total = loss if supcon is None else loss + supcon(labels, self.data.subjects[batch])
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(batch)
            correct += (logits.argmax(dim=1) == labels).sum()
        return loss_sum.item() / len(train_index), correct.item() / len(train_index)

    @torch.no_grad()
    def predict(self, model, test_index: torch.Tensor) -> tuple[torch.Tensor, float]:
        """Softmax probabilities ``(n, classes)`` on the CPU, and the mean test loss."""
        model.eval()
        outputs = []
        for batch in test_index.split(EVAL_BATCH):
            batch = batch.to(self.data.device)
            images = self.data.inputs(batch, self.image_size, names=model.inputs)
            with self.autocast():
                outputs.append(model(*images).float())
        logits = torch.cat(outputs)
        loss = F.cross_entropy(logits, self.data.labels[test_index.to(self.data.device)]).item()
        return logits.softmax(dim=1).cpu(), loss

    def curve_row(self, epoch, learning_rate, train_loss, train_accuracy, test_loss, probabilities, test_index):
        truth = self.data.labels[test_index.to(self.data.device)].cpu().numpy()
        predicted = probabilities.argmax(dim=1).numpy()
        return {
            "epoch": epoch + 1,
            "learning_rate": learning_rate,
            "train_loss": train_loss,
            "train_accuracy": train_accuracy,
            "test_loss": test_loss,
            "test_accuracy": metrics.accuracy(truth, predicted),
            # Over the classes present in this subject's truth or predictions: the authors' criterion.
            "test_f1": metrics.uf1(truth, predicted, None),
        }


def hold_frozen(model: torch.nn.Module) -> None:
    """Keep modules whose own weights are all frozen (fine-tuning, tsfmicro.engine.transfer) in
    evaluation mode while the rest trains: their BatchNorm statistics stay the pre-trained ones and
    dropout stays off, so a frozen part computes what it computed after pre-training. Nothing
    changes for a model that trains every weight."""
    for module in model.modules():
        own = list(module.parameters(recurse=False))
        if own and not any(p.requires_grad for p in own):
            module.eval()


def save_fold_weights(weights_dir: Path, fold_name: str, model: torch.nn.Module) -> Path:
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    return ckpt.save_checkpoint(fold_weights_path(weights_dir, fold_name), f"weights:{fold_name}", {"model": state})


def predictions_table(data: PreparedData, outcomes: list[FoldOutcome], seed: int) -> pd.DataFrame:
    """One row per test clip: truth, both protocols' predictions, probabilities and epochs (1-based)."""
    names = list(data.class_names)
    frames = []
    for outcome in outcomes:
        samples = data.samples.iloc[outcome.test_index]
        chosen = {"fixed": len(outcome.probabilities) - 1, "oracle": outcome.oracle_epoch}
        frame = pd.DataFrame(
            {
                "seed": seed,
                "fold": outcome.name,
                "subject": samples["subject"].astype(str).to_numpy(),
                "clip_id": samples["clip_id"].astype(str).to_numpy(),
                "sample_index": outcome.test_index,  # row of PreparedData (not the annotation row)
                "true": samples["class_index"].to_numpy(dtype=int),
                "true_label": [names[k] for k in samples["class_index"]],
            }
        )
        for protocol, epoch in chosen.items():
            probabilities = outcome.probabilities[epoch]  # (n, classes)
            predicted = probabilities.argmax(axis=1)
            frame[f"pred_{protocol}"] = predicted
            frame[f"pred_{protocol}_label"] = [names[k] for k in predicted]
            frame[f"epoch_{protocol}"] = epoch + 1
            for k, name in enumerate(names):
                frame[f"prob_{protocol}_{name}"] = probabilities[:, k]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def curves_table(outcomes: list[FoldOutcome], seed: int) -> pd.DataFrame:
    """One row per fold and epoch; ``start_epoch``: see :class:`FoldOutcome`."""
    frames = [o.curves.assign(seed=seed, fold=o.name, start_epoch=o.start_epoch) for o in outcomes]
    table = pd.concat(frames, ignore_index=True)
    return table[["seed", "fold", *[c for c in table.columns if c not in ("seed", "fold")]]]

