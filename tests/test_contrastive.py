"""Supervised contrastive loss (tsfmicro.engine.contrastive): the value by hand, zero gradient at
identical embeddings, positives of another subject only, every network's fused features, a resumed
fold equal to an uninterrupted one, and the run options' checks."""
import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch

from test_engine_loop import make_trainer, random_prepared, read_outcomes, subject_folds, train_folds
from tsfmicro.cli import main
from tsfmicro.engine import _cli, runs
from tsfmicro.engine import checkpoint as ckpt
from tsfmicro.engine import folds as fold_store
from tsfmicro.engine.contrastive import PROJECTION_DIM, SupConTerm, supcon_loss
from tsfmicro.engine.recipes import get_recipe
from tsfmicro.model import MODELS, model_from_config


def test_the_loss_of_a_four_clip_batch_is_the_hand_computed_value():
    # z1 = (1, 0), z2 = (0.6, 0.8), z3 = (0, 1), z4 = (-1, 0) (unit length); classes 0, 0, 0, 1;
    # subjects a, a, b, b; tau = 0.5, so s_ij = z_i . z_j / tau:
    #   s12 = 1.2, s13 = 0, s14 = -2, s23 = 1.6, s24 = -1.2, s34 = 0.
    # Positives (same class, other subject): P(1) = {3} (z2 is z1's own subject), P(2) = {3},
    # P(3) = {1, 2}, P(4) = {} (no other clip of class 1): anchor 4 is left out and counted.
    #   L1 = -(s13 - log(e^1.2 + e^0 + e^-2))  = log(3.320117 + 1 + 0.135335)         = 1.494129
    #   L2 = -(s23 - log(e^1.2 + e^1.6 + e^-1.2)) = log(3.320117 + 4.953032 + 0.301194) - 1.6 = 0.548774
    #   L3 = -1/2 (s31 + s32 - 2 log(e^0 + e^1.6 + e^0)) = log(6.953032) - 0.8            = 1.139178
    #   L = (L1 + L2 + L3) / 3 = 1.060694
    # (Khosla's rule, any subject, would give P(1) = {2, 3}, P(2) = {1, 3} and L = 0.927360.)
    z = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-1.0, 0.0]])
    loss, no_positive = supcon_loss(z, torch.tensor([0, 0, 0, 1]), torch.tensor([0, 0, 1, 1]), temperature=0.5)
    assert loss.item() == pytest.approx(1.060694, abs=1e-6)
    assert int(no_positive) == 1
    # the projections are normalised inside: a longer vector is the same direction
    longer, _ = supcon_loss(z * torch.tensor([[3.0], [1.0], [0.5], [7.0]]), torch.tensor([0, 0, 0, 1]),
                            torch.tensor([0, 0, 1, 1]), temperature=0.5)
    assert longer.item() == pytest.approx(1.060694, abs=1e-6)


def test_identical_embeddings_give_a_constant_loss_and_zero_gradient():
    # every s_ij = 1 / tau: each anchor's term is -(1/tau - log((B-1) e^(1/tau))) = log(B - 1)
    x = torch.tensor([[0.3, -1.2, 2.0]]).repeat(6, 1).requires_grad_()
    labels, subjects = torch.tensor([0, 0, 1, 1, 2, 2]), torch.tensor([0, 1, 0, 1, 0, 1])
    loss, no_positive = supcon_loss(x, labels, subjects, temperature=0.1)
    assert loss.item() == pytest.approx(math.log(5), abs=1e-5) and int(no_positive) == 0
    loss.backward()
    torch.testing.assert_close(x.grad, torch.zeros_like(x), atol=1e-6, rtol=0)


def test_a_same_class_partner_of_the_same_subject_is_no_positive():
    z = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]], requires_grad=True)
    labels = torch.tensor([0, 0, 1])
    loss, no_positive = supcon_loss(z, labels, torch.tensor([0, 0, 1]), temperature=0.1)
    assert int(no_positive) == 3 and loss.item() == 0.0 and not torch.isnan(loss)
    loss.backward()  # nothing to learn, but a graph: training steps on
    assert torch.count_nonzero(z.grad) == 0
    other_subject, _ = supcon_loss(z, labels, torch.tensor([0, 1, 2]), temperature=0.1)  # the pair is a positive
    assert other_subject.item() > 0
    single, none = supcon_loss(z[:1], labels[:1], torch.tensor([0]), temperature=0.1)  # a last batch of one clip
    assert single.item() == 0.0 and int(none) == 1


@pytest.mark.parametrize("arch", sorted(MODELS))
def test_the_projection_head_reads_the_fused_features_of_every_registered_network(arch):
    torch.manual_seed(0)
    model = model_from_config({"preset": "tiny", "arch": arch}, 3)
    term = SupConTerm(model, weight=0.5, temperature=0.1, device=torch.device("cpu"))
    side = model.image_size
    inputs = [torch.randn(4, 3, side, side) for _ in model.inputs]
    logits = model(*inputs)
    assert logits.shape == (4, 3)
    weighted = term(torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 0, 1]))
    (logits.sum() * 0 + weighted).backward()
    assert term.head.layers[0].in_features == model.classifier.in_features
    assert term.head.layers[-1].out_features == PROJECTION_DIM
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for name, p in model.named_parameters()
               if not name.startswith("classifier") and ".classifier." not in name)  # reaches the network
    assert model.classifier.weight.grad.abs().sum() == 0  # the contrastive term does not pass the classifier
    summary = term.epoch_summary()
    assert summary["supcon_no_positive"] == 0 and summary["train_supcon_loss"] == pytest.approx(2 * weighted.item())
    term.close()
    assert not model.classifier._forward_pre_hooks


def supcon_trainer(data, epochs=3):
    trainer = make_trainer(data, epochs=epochs)
    return dataclasses.replace(trainer, recipe=dataclasses.replace(trainer.recipe, supcon_weight=0.5, batch_size=4))


def test_a_fold_with_the_contrastive_loss_resumed_mid_fold_equals_an_uninterrupted_one(tmp_path, one_torch_thread):
    data = random_prepared(subjects=3, clips=4)
    data.samples["class_index"] = [0, 1, 2, 0] * 3  # every class in every subject: positives exist
    folds = subject_folds(data)[:1]
    train_folds(supcon_trainer(data), folds, tmp_path / "a", ckpt.CheckpointPolicy(1, 0), keep_weights=True)
    reference = read_outcomes(tmp_path / "a", folds)[0]
    assert {"train_supcon_loss", "supcon_no_positive"} <= set(reference.curves)
    assert reference.curves["train_supcon_loss"].gt(0).all()
    plain = read_outcomes_of(make_trainer(data, epochs=3), folds, tmp_path / "plain")
    assert not np.array_equal(plain.probabilities, reference.probabilities)  # the term changes training

    # killed after the checkpoint of epoch 2 (the second save), as tests/test_engine_loop.py does
    saves, original = [], ckpt.save_checkpoint

    def crash_after_save(*args, **kwargs):
        original(*args, **kwargs)
        saves.append(1)
        if len(saves) == 2:
            raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ckpt, "save_checkpoint", crash_after_save)
        with pytest.raises(KeyboardInterrupt):
            train_folds(supcon_trainer(data), folds, tmp_path / "b", ckpt.CheckpointPolicy(1, 0))
    state = ckpt.load_checkpoint(fold_store.checkpoint_path(tmp_path / "b", folds[0].name), "unit/fold/s0")
    assert len(state["curves"]) == 2 and "projection" in state  # the head's weights are in the checkpoint
    torch.manual_seed(1234)  # whatever the process did since must not matter
    train_folds(supcon_trainer(data), folds, tmp_path / "b", ckpt.CheckpointPolicy(1, 0), keep_weights=True)
    resumed = read_outcomes(tmp_path / "b", folds)[0]
    assert resumed.start_epoch == 2
    np.testing.assert_array_equal(reference.probabilities, resumed.probabilities)
    pd.testing.assert_frame_equal(reference.curves, resumed.curves)
    # the fold's weights are the network's alone: the head is training-only
    weights = ckpt.load_checkpoint(tmp_path / "b" / "weights" / "s0.pt", "weights:s0")["model"]
    assert set(weights) == set(make_trainer(data).build_model().state_dict())


def read_outcomes_of(trainer, folds, unit_dir):
    train_folds(trainer, folds, unit_dir, ckpt.CheckpointPolicy(1, 0))
    return read_outcomes(unit_dir, folds)[0]


def test_the_options_enter_the_key_and_the_plan_only_when_set_and_are_checked(tmp_path, capsys, monkeypatch):
    base = runs.RunConfig(dataset="casme2", root=str(tmp_path), task="5class", preset="tiny", device="cpu")
    recipe = get_recipe("paper", "casme2", "5class")
    assert (recipe.supcon_weight, recipe.supcon_temperature) == (0.0, 0.1)
    plain = runs.request_identity(base, recipe, "cpu", "<data>")
    assert not {"supcon_weight", "supcon_temperature"} & set(plain["recipe"])  # every existing key holds
    on = dataclasses.replace(base, supcon_weight=1)  # a whole number is the float: one request, one key
    assert on.supcon_weight == 1.0 and isinstance(on.supcon_weight, float)
    on_recipe = get_recipe("paper", "casme2", "5class", **runs.recipe_options(on))
    keyed = runs.request_identity(on, on_recipe, "cpu", "<data>")
    assert {k: v for k, v in keyed["recipe"].items() if plain["recipe"].get(k) != v} == {"supcon_weight": 1.0}
    warm = dataclasses.replace(on, supcon_temperature=0.2)
    assert runs.config_options(warm) == {"supcon_weight": 1.0, "supcon_temperature": 0.2}  # the plan's column
    assert runs.config_options(base) == {}
    runs.validate(warm)

    for changes, message in [
        ({"supcon_weight": -0.5}, "supcon_weight must be a number >= 0 (0: off), got -0.5"),
        ({"supcon_weight": float("nan")}, "supcon_weight must be a number >= 0 (0: off), got nan"),
        ({"supcon_weight": 0.5, "supcon_temperature": 0.0}, "supcon_temperature must be a number > 0, got 0.0"),
        ({"supcon_temperature": 0.2}, "supcon_temperature 0.2 given without a supcon_weight above 0"),
        ({"supcon_weight": 0.0, "supcon_temperature": 0.2}, "supcon_temperature 0.2 given without a supcon_weight"),
        ({"supcon_weight": "lots"}, "supcon_weight must be a number, got 'lots'"),
    ]:
        with pytest.raises(ValueError, match=f"^{message}".replace("(", r"\(").replace(")", r"\)")):
            runs.validate(dataclasses.replace(base, **changes))
    with pytest.raises(ValueError, match="supcon_temperature must be a number > 0"):
        get_recipe("paper", "casme2", "5class", supcon_weight=0.5, supcon_temperature=-1.0)

    # the command line: a value reaches the request; a bad one stops with exit code 2 and one line
    requested = []

    def stop(config, progress, strict=False):
        requested.append((config.supcon_weight, config.supcon_temperature))
        runs.validate(config)
        raise FileNotFoundError("stop here")

    monkeypatch.setattr(_cli, "train", stop)
    command = ["train", "--dataset", "casme2", "--root", str(tmp_path), "--task", "5class"]
    assert main([*command, "--supcon-weight", "0.5"]) == 2  # the stand-in stops it after the checks
    assert requested == [(0.5, None)] and "stop here" in capsys.readouterr().err
    for flags, message in [(["--supcon-weight", "-1"], "supcon_weight must be a number >= 0 (0: off), got -1.0"),
                           (["--supcon-weight", "0.5", "--supcon-temperature", "0"],
                            "supcon_temperature must be a number > 0, got 0.0"),
                           (["--supcon-temperature", "0.2"], "supcon_temperature 0.2 given without a supcon_weight")]:
        assert main([*command, *flags]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    with pytest.raises(SystemExit) as stopped:
        main([*command, "--supcon-weight", "half"])
    assert stopped.value.code == 2 and "argument --supcon-weight: invalid float value: 'half'" in capsys.readouterr().err


def test_the_term_trains_under_the_bf16_speed_mode_too(one_torch_thread):
    # under autocast the fused features are bf16; the head casts them and runs in fp32
    data = random_prepared(subjects=3, clips=4)
    data.samples["class_index"] = [0, 1, 2, 0] * 3
    trainer = supcon_trainer(data, epochs=1)
    trainer = dataclasses.replace(trainer, recipe=dataclasses.replace(trainer.recipe, precision="bf16"))
    outcome, model = trainer.run(0, subject_folds(data)[0], None, lambda state: None, ckpt.CheckpointPolicy(5, 60),
                                 False)
    assert np.isfinite(outcome.curves[["train_loss", "train_supcon_loss"]].to_numpy()).all()
    assert outcome.curves["train_supcon_loss"].iloc[0] > 0 and not model.classifier._forward_pre_hooks
