"""Class-imbalance options: weights from the fold's training clips, focal loss, balanced epochs."""
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from sklearn.utils.class_weight import compute_class_weight

from tsfmicro.engine import imbalance


def test_class_weights_are_inverse_frequency_like_scikit_learn():
    labels = torch.tensor([0] * 8 + [1] * 2 + [2] * 6)
    got = imbalance.class_weights(labels, 3).numpy()
    want = compute_class_weight("balanced", classes=np.arange(3), y=labels.numpy())  # n / (k * n_c)
    np.testing.assert_allclose(got, want / want.mean(), rtol=1e-6)
    assert got[1] > got[2] > got[0]
    # a class absent from the training clips gets no weight, the others average 1
    absent = imbalance.class_weights(torch.tensor([0, 0, 2]), 3)
    assert absent[1] == 0 and torch.isclose(absent[[0, 2]].mean(), torch.tensor(1.0))


def test_weighted_loss_uses_only_the_labels_it_is_given():
    train = torch.tensor([0, 0, 0, 1])
    loss = imbalance.make_loss("weighted_cross_entropy", train, 2)
    logits, labels = torch.randn(5, 2), torch.tensor([0, 1, 1, 0, 1])
    weight = torch.tensor([0.5, 1.5])  # 1/3 and 1/1, scaled to mean 1
    torch.testing.assert_close(loss(logits, labels), F.cross_entropy(logits, labels, weight=weight))
    assert imbalance.make_loss("cross_entropy", train, 2) is F.cross_entropy


def test_focal_loss_definition_and_gamma_zero_is_cross_entropy():
    logits, labels = torch.randn(6, 3), torch.tensor([0, 1, 2, 2, 1, 0])
    p = logits.softmax(1)[torch.arange(6), labels]
    torch.testing.assert_close(imbalance.focal_loss(logits, labels), (-(1 - p) ** 2 * p.log()).mean())
    torch.testing.assert_close(imbalance.focal_loss(logits, labels, gamma=0.0), F.cross_entropy(logits, labels))


def test_class_balanced_epochs_draw_each_class_equally_often():
    labels = torch.tensor([0] * 90 + [1] * 10)
    index = torch.arange(100, 200)
    drawn = torch.cat([imbalance.epoch_order("class_balanced", index, labels, torch.Generator().manual_seed(s))
                       for s in range(30)])
    assert len(drawn) == 3000 and drawn.min() >= 100 and drawn.max() < 200
    share = (drawn >= 190).float().mean().item()  # rows of the rare class
    assert 0.45 < share < 0.55, share
    shuffled = imbalance.epoch_order("shuffle", index, labels, torch.Generator().manual_seed(0))
    assert sorted(shuffled.tolist()) == index.tolist()  # a permutation: every clip once


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="cross_entropy, weighted_cross_entropy, focal"):
        imbalance.make_loss("dice", torch.tensor([0]), 2)
    with pytest.raises(ValueError, match="shuffle, class_balanced"):
        imbalance.epoch_order("oversample", torch.arange(3), torch.tensor([0, 1, 1]), torch.Generator())


# --- the options in a recipe, a run's key and a fold's training -------------------------------------
import dataclasses  # noqa: E402

import test_engine_loop as loop  # noqa: E402  (its random PreparedData and folds; module import: not re-collected)
from tsfmicro.engine import checkpoint as ckpt  # noqa: E402
from tsfmicro.engine import loso, runs  # noqa: E402
from tsfmicro.engine.recipes import get_recipe  # noqa: E402


def test_recipe_options_default_to_the_papers_and_are_checked():
    paper = get_recipe("paper", "samm", "5class")
    assert (paper.loss, paper.sampling) == ("cross_entropy", "shuffle")
    focal = get_recipe("paper", "samm", "5class", loss="focal", sampling="class_balanced")
    assert (focal.loss, focal.sampling) == ("focal", "class_balanced")
    assert dataclasses.replace(focal, loss="cross_entropy", sampling="shuffle") == paper
    with pytest.raises(ValueError, match="unknown loss 'dice'; choose one of cross_entropy, weighted_cross_entropy, focal"):
        get_recipe("paper", "samm", "5class", loss="dice")
    with pytest.raises(ValueError, match="unknown sampling 'oversample'; choose one of shuffle, class_balanced"):
        get_recipe("paper", "samm", "5class", sampling="oversample")


def test_the_options_enter_the_run_key_only_when_not_the_papers(tmp_path, monkeypatch):
    import tsfmicro.data

    monkeypatch.setattr(tsfmicro.data, "prepare", lambda *args, **kwargs: loop.random_prepared())
    base = runs.RunConfig(dataset="samm", root=str(tmp_path), task="5class", preset="tiny", device="cpu")
    default = runs.resolve_request(base, progress=False)
    # the key as computed before the options existed: the recipe's fields without loss and sampling
    # (nor the optimizer field, added later for the baseline networks, nor the contrastive loss's options)
    before = {name: value for name, value in dataclasses.asdict(default.recipe).items()
              if name not in ("loss", "sampling", "optimizer", "supcon_weight", "supcon_temperature")}
    assert default.identity["recipe"] == before
    assert default.key == runs._hash({**default.identity, "recipe": before, "seeds": [0]})
    named = runs.resolve_request(dataclasses.replace(base, loss="cross_entropy", sampling="shuffle"), progress=False)
    assert named.key == default.key and named.unit_key(0) == default.unit_key(0)
    keys = {default.unit_key(0)}
    for options in ({"loss": "weighted_cross_entropy"}, {"loss": "focal"}, {"sampling": "class_balanced"}):
        request = runs.resolve_request(dataclasses.replace(base, **options), progress=False)
        assert {name: request.identity["recipe"][name] for name in options} == options
        assert runs.config_options(request.config) == options  # the plan's options column
        keys.add(request.unit_key(0))
    assert len(keys) == 4
    assert runs.config_options(named.config) == {}  # the paper's values named explicitly: no option
    with pytest.raises(ValueError, match="unknown loss 'dice'; choose one of cross_entropy, weighted_cross_entropy"):
        runs.validate(dataclasses.replace(base, loss="dice"))
    with pytest.raises(ValueError, match="unknown sampling 'smote'; choose one of shuffle, class_balanced"):
        runs.validate(dataclasses.replace(base, sampling="smote"))


def trainer_with(data, loss="cross_entropy", sampling="shuffle", epochs=1):
    trainer = loop.make_trainer(data, epochs=epochs)
    return dataclasses.replace(trainer, recipe=dataclasses.replace(trainer.recipe, loss=loss, sampling=sampling))


def test_class_weights_come_from_the_folds_training_clips_only():
    data = loop.random_prepared(subjects=3, clips=6)
    fold = loop.subject_folds(data)[0]
    # the same clips, the held-out subject's labels all changed to class 2
    other = loop.random_prepared(subjects=3, clips=6)
    other.samples.loc[fold.test_index, "class_index"] = 2
    logits, labels = torch.randn(7, 3), torch.tensor([0, 1, 2, 2, 1, 0, 1])
    train_index = torch.tensor(fold.train_index)
    losses = [trainer_with(d, "weighted_cross_entropy").fold_loss(train_index)(logits, labels) for d in (data, other)]
    torch.testing.assert_close(losses[0], losses[1])  # the held-out labels do not matter
    train_labels = torch.tensor(data.samples["class_index"].to_numpy()[fold.train_index])
    weight = imbalance.class_weights(train_labels, 3)
    torch.testing.assert_close(losses[0], F.cross_entropy(logits, labels, weight=weight))
    everyone = imbalance.class_weights(torch.tensor(other.samples["class_index"].to_numpy()), 3)
    assert not torch.allclose(weight, everyone)  # weights over every clip would differ
    assert trainer_with(data).fold_loss(train_index) is F.cross_entropy
    assert trainer_with(data, "focal").fold_loss(train_index) is imbalance.focal_loss


def test_a_class_balanced_epoch_trains_on_its_draws_from_the_training_clips(monkeypatch, one_torch_thread):
    data = loop.random_prepared(subjects=3, clips=6)
    data.samples["class_index"] = [0] * 5 + [1] + [0] * 5 + [2] + [1, 2] * 3  # training: 10 of 12 clips class 0
    fold = loop.subject_folds(data)[2]
    orders, trained = [], []
    original_order, original_inputs = imbalance.epoch_order, loso.DeviceData.inputs

    def spy_order(*args):
        orders.append((args[0], original_order(*args)))
        return orders[-1][1]

    def spy_inputs(self, index, image_size, train=False, **named):  # named: the network's inputs
        if train:
            trained.append(index.clone())
        return original_inputs(self, index, image_size, train, **named)

    monkeypatch.setattr(imbalance, "epoch_order", spy_order)
    monkeypatch.setattr(loso.DeviceData, "inputs", spy_inputs)
    trainer = trainer_with(data, sampling="class_balanced", epochs=2)
    trainer.run(0, fold, None, lambda state: None, ckpt.CheckpointPolicy(5, 60.0), False)
    assert [name for name, _ in orders] == ["class_balanced", "class_balanced"]
    drawn = torch.cat([order for _, order in orders])
    torch.testing.assert_close(torch.cat(trained), drawn)  # the batches are the drawn rows, in order
    assert set(drawn.tolist()) <= set(fold.train_index.tolist())
    counts = torch.bincount(torch.tensor(data.samples["class_index"].to_numpy())[drawn], minlength=3)
    assert counts.sum() == 2 * len(fold.train_index) and counts[0] < 0.6 * counts.sum()  # 10 of 12 clips are class 0


def today_train_epoch(self, model, optimizer, train_index, generator, loss_function):
    """FoldTrainer.train_epoch before the options existed (a shuffle and plain cross-entropy),
    kept as the reference the default must reproduce bit for bit."""
    from tsfmicro.engine.augment import paired_augment, random_transforms

    model.train()
    order = train_index[torch.randperm(len(train_index), generator=generator)]
    all_transforms = random_transforms(len(order), self.recipe, self.image_size, generator)
    loss_sum, correct = torch.zeros(()), torch.zeros((), dtype=torch.long)
    for batch, transforms in zip(order.split(self.recipe.batch_size), all_transforms.split(self.recipe.batch_size)):
        onset, apex = paired_augment(*self.data.inputs(batch, self.image_size, train=True), transforms)
        labels = self.data.labels[batch]
        logits = model(onset, apex)
        loss = F.cross_entropy(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach() * len(batch)
        correct += (logits.argmax(dim=1) == labels).sum()
    return loss_sum.item() / len(train_index), correct.item() / len(train_index)


def test_the_papers_loss_and_shuffle_train_bit_for_bit_as_before(monkeypatch, one_torch_thread):
    data = loop.random_prepared(subjects=3, clips=6)
    fold = loop.subject_folds(data)[1]
    policy = ckpt.CheckpointPolicy(5, 60.0)
    outcomes = {}
    for name in ("default", "today", "weighted"):
        if name == "today":
            monkeypatch.setattr(loso.FoldTrainer, "train_epoch", today_train_epoch)
        else:
            monkeypatch.undo()
        trainer = trainer_with(data, "weighted_cross_entropy" if name == "weighted" else "cross_entropy", epochs=2)
        outcomes[name] = trainer.run(0, fold, None, lambda state: None, policy, False)[0]
    np.testing.assert_array_equal(outcomes["default"].probabilities, outcomes["today"].probabilities)
    pd.testing.assert_frame_equal(outcomes["default"].curves, outcomes["today"].curves)
    assert not np.array_equal(outcomes["default"].probabilities, outcomes["weighted"].probabilities)
