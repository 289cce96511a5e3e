"""Class-imbalance options: weights from the fold's training clips, focal loss, balanced epochs."""
import numpy as np
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
