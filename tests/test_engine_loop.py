"""The engine's parts on a tiny random dataset: recipes, augmentation, checkpoints, the LOSO loop, resume."""
import dataclasses
import math
from collections import namedtuple

import numpy as np
import pandas as pd
import pytest
import torch

from tsfmicro.data.types import PreparedData
from tsfmicro.engine import checkpoint as ckpt
from tsfmicro.engine import folds as fold_store
from tsfmicro.engine import loso
from tsfmicro.engine.augment import IMAGENET_MEAN, IMAGENET_STD, paired_augment, random_transforms, to_model_input
from tsfmicro.engine.recipes import get_recipe
from tsfmicro.model import build_model

Fold = namedtuple("Fold", "name train_index test_index")
CLASSES = ["negative", "positive", "surprise"]


SIZE = 32  # the tiny preset at 32 px: these tests check the plumbing, not learning


def random_prepared(subjects=3, clips=6, size=SIZE, seed=0) -> PreparedData:
    """A PreparedData of random uint8 crops: enough to run the loop, nothing to learn."""
    generator = np.random.default_rng(seed)
    n = subjects * clips
    samples = pd.DataFrame(
        {
            "dataset": "casme2",
            "subject": np.repeat([f"s{k}" for k in range(subjects)], clips),
            "clip_id": [f"clip{k}" for k in range(n)],
            "class_index": generator.integers(0, len(CLASSES), n),
        }
    )
    samples["label"] = [CLASSES[k] for k in samples["class_index"]]
    frames = lambda: generator.integers(0, 256, (n, size, size, 3), dtype=np.uint8)  # noqa: E731
    return PreparedData("casme2", "3class", samples, frames(), frames(), CLASSES, pd.DataFrame(), "SYNTHETIC",
                        "random", None)


def subject_folds(data: PreparedData) -> list[Fold]:
    subjects = data.samples["subject"]
    return [Fold(s, np.flatnonzero(subjects != s), np.flatnonzero(subjects == s)) for s in subjects.unique()]


def make_trainer(data, epochs=3, seed=0, frame_reselection=False) -> loso.FoldTrainer:
    return loso.FoldTrainer(
        data=loso.DeviceData(data, torch.device("cpu"), frame_reselection),
        build_model=lambda: build_model("tiny", num_classes=len(CLASSES), fusion="ts_late", image_size=SIZE),
        recipe=get_recipe("paper", "casme2", "3class", epochs=epochs),
        image_size=SIZE,
        seed=seed,
    )


# --- recipes -----------------------------------------------------------------------------------


def test_recipes_follow_the_paper_and_the_authors_code():
    paper = get_recipe("paper", "casme2", "5class")
    assert (paper.epochs, paper.decay_epochs, paper.learning_rate, paper.batch_size) == (50, 50, 8e-4, 32)
    assert (paper.weight_decay, paper.lr_gamma, paper.rotation_degrees, paper.crop_padding) == (0.6, 0.987, 3, 15)
    authors = get_recipe("authors_code", "casme2", "5class")
    assert (authors.epochs, authors.decay_epochs) == (174, 50)
    assert get_recipe("authors_code", "samm", "5class").epochs == 199
    three = get_recipe("authors_code", "samm", "3class")
    assert (three.weight_decay, three.rotation_degrees, three.crop_padding) == (0.7, 4, 4)
    assert get_recipe("paper", "casme2", "5class", epochs=2).decay_epochs == 2
    assert get_recipe("authors_code", "casme2", "5class", epochs=80).decay_epochs == 50
    assert paper.padding_at(64) == 4 and paper.padding_at(224) == 15
    with pytest.raises(ValueError, match="unknown recipe 'fast'"):
        get_recipe("fast", "casme2", "5class")


@pytest.mark.parametrize("dataset, task, fusion, epochs", [
    ("casme2", "5class", "ts_late", 174),        # classes/cas2/train_c5.py
    ("casme2", "5class", "ts_early", 199),       # fusion/cas2/train_c5.py, 5-class included
    ("casme2", "5class", "t_to_s", 199),
    ("casme2", "5class", "spatial_only", 199),
    ("casme2", "3class", "ts_late", 199),
    ("casme2", "3class", "s_to_t", 199),         # fusion/cas2/train_c3.py
    ("samm", "5class", "ts_late", 199),          # classes/samm/train_c5.py
    ("samm", "3class", "temporal_only", 199),    # fusion/samm/train_c3.py
    ("casme3", "7class", "ts_late", 199),        # classes/cas3/train_c7.py
    ("casme3", "4class", "ts_early", 199),       # no authors' script
    ("smic", "3class", "ts_late", 199),
])
def test_authors_code_epochs_follow_the_script_of_each_model(dataset, task, fusion, epochs):
    recipe = get_recipe("authors_code", dataset, task, fusion=fusion)
    assert (recipe.epochs, recipe.decay_epochs) == (epochs, 50)
    assert get_recipe("paper", dataset, task, fusion=fusion).epochs == 50  # the paper's text: one length


def test_recipe_rejects_an_unknown_fusion():
    with pytest.raises(ValueError, match="unknown fusion 'ts_middle'"):
        get_recipe("authors_code", "casme2", "5class", fusion="ts_middle")


def test_batch_size_override_changes_only_the_batch_and_is_validated():
    small = get_recipe("paper", "casme2", "5class", epochs=12, batch_size=8)
    assert (small.batch_size, small.epochs, small.learning_rate) == (8, 12, 8e-4)
    with pytest.raises(ValueError, match="batch_size must be at least 2"):
        get_recipe("paper", "casme2", "5class", batch_size=1)


# --- augmentation ------------------------------------------------------------------------------


def test_model_input_is_resized_and_imagenet_normalised():
    frames = torch.full((2, 32, 32, 3), 255, dtype=torch.uint8)
    images = to_model_input(frames, 64)
    assert images.shape == (2, 3, 64, 64)
    expected = [(1 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]
    torch.testing.assert_close(images[0, :, 10, 10], torch.tensor(expected))


def test_flip_and_padded_crop_are_exact_and_identical_for_onset_and_apex():
    recipe = get_recipe("paper", "casme2", "5class")
    recipe = type(recipe)(**{**recipe.as_dict(), "rotation_degrees": 0.0})
    size, padding = 32, recipe.padding_at(32)
    onset = torch.randn(16, 3, size, size)
    apex = 2 * onset + 1
    transforms = random_transforms(16, recipe, size, torch.Generator().manual_seed(0))
    new_onset, new_apex = paired_augment(onset, apex, transforms)
    flips = shifts = 0
    for k in range(16):
        linear, offset = transforms[k, :, :2], transforms[k, :, 2:]
        flip = bool(linear[0, 0] < 0)
        dx, dy = (torch.linalg.solve(linear, offset).squeeze() * size / 2).round().int().tolist()
        assert abs(dx) <= padding and abs(dy) <= padding
        image = onset[k].flip(-1) if flip else onset[k]
        padded = torch.nn.functional.pad(image, (padding,) * 4)  # zero = the mean colour after normalising
        expected = padded[:, padding + dy : padding + dy + size, padding + dx : padding + dx + size]
        torch.testing.assert_close(new_onset[k], expected)
        inside = expected != 0
        torch.testing.assert_close(new_apex[k][inside], (2 * expected + 1)[inside])  # same warp on apex
        flips += flip
        shifts += (dx, dy) != (0, 0)
    assert 0 < flips < 16 and shifts > 8


def test_rotation_stays_within_the_recipe_angle():
    recipe = get_recipe("paper", "casme2", "5class")
    transforms = random_transforms(500, recipe, 64, torch.Generator().manual_seed(1))
    linear = transforms[:, :, :2]
    angles = torch.atan2(linear[:, 0, 1], linear[:, 1, 1].abs()).abs()
    assert angles.max() <= math.radians(recipe.rotation_degrees) + 1e-6
    assert angles.max() > math.radians(recipe.rotation_degrees) * 0.9


# --- checkpoints -------------------------------------------------------------------------------


def test_checkpoint_round_trip_and_clear_errors(tmp_path):
    path = tmp_path / "checkpoint.pt"
    generator = torch.Generator().manual_seed(5)
    state = {"epoch": 3, "weights": torch.arange(4.0), "rng": ckpt.rng_state(generator), "curves": [{"a": 1.5}]}
    ckpt.save_checkpoint(path, "unit-a", state)
    loaded = ckpt.load_checkpoint(path, "unit-a")
    assert loaded["epoch"] == 3 and loaded["curves"] == [{"a": 1.5}]
    torch.testing.assert_close(loaded["weights"], torch.arange(4.0))
    with pytest.raises(ValueError, match="belongs to another run"):
        ckpt.load_checkpoint(path, "unit-b")

    path.write_bytes(path.read_bytes()[:100])  # truncated, as by a crash outside our atomic writes
    with pytest.raises(ValueError, match="corrupt or not a tsfmicro checkpoint"):
        ckpt.load_checkpoint(path, "unit-a")
    torch.save({"model": torch.zeros(2)}, path)  # someone else's file
    with pytest.raises(ValueError, match="not a tsfmicro checkpoint"):
        ckpt.load_checkpoint(path, "unit-a")
    torch.save({"format": ckpt.FORMAT, "payload": Fold("x", 1, 2)}, path)  # needs code to unpickle
    with pytest.raises(ValueError, match="corrupt or not a tsfmicro checkpoint"):
        ckpt.load_checkpoint(path, "unit-a")


def test_mid_fold_checkpoints_need_both_the_epoch_count_and_the_time():
    assert ckpt.CheckpointPolicy(every_epochs=2, min_seconds=0).due(4)
    assert not ckpt.CheckpointPolicy(every_epochs=2, min_seconds=0).due(3)
    assert not ckpt.CheckpointPolicy(every_epochs=2, min_seconds=3600).due(4)  # saved too recently


# --- the LOSO loop -----------------------------------------------------------------------------


def test_oracle_epoch_is_the_best_held_out_f1_latest_on_ties():
    outcome = loso.FoldOutcome("s", np.arange(2), np.zeros((4, 2, 3)), pd.DataFrame({"test_f1": [0.2, 0.5, 0.5, 0.3]}))
    assert outcome.oracle_epoch == 2


def train_folds(trainer, folds, unit_dir, policy, keep_weights=False):
    """Every fold, one after another, through the per-fold store (what the local executor does)."""
    return [fold_store.train_fold(trainer, index, fold, unit_dir, "unit", policy, keep_weights=keep_weights,
                                  run_id="test") for index, fold in enumerate(folds)]


def read_outcomes(unit_dir, folds):
    return [fold_store.read_result(unit_dir, "unit", fold.name).outcome for fold in folds]


def test_loso_loop_gives_both_protocols_and_curves(tmp_path, one_torch_thread):
    data = random_prepared(clips=4)
    folds = subject_folds(data)
    reports = train_folds(make_trainer(data, epochs=2), folds, tmp_path, ckpt.CheckpointPolicy(2, 0), keep_weights=True)
    assert [(r.fold, r.trained, r.start_epoch) for r in reports] == [("s0", True, 0), ("s1", True, 0), ("s2", True, 0)]
    outcomes = read_outcomes(tmp_path, folds)
    assert [o.name for o in outcomes] == ["s0", "s1", "s2"]
    assert all(o.probabilities.shape == (2, 4, 3) for o in outcomes)
    table = loso.predictions_table(data, outcomes, seed=0)
    assert len(table) == len(data.samples) and set(table["sample_index"]) == set(range(len(data.samples)))
    assert (table["epoch_fixed"] == 2).all() and table["epoch_oracle"].between(1, 2).all()
    probabilities = table[[f"prob_fixed_{c}" for c in CLASSES]].to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(probabilities.argmax(axis=1), table["pred_fixed"])
    curves = loso.curves_table(outcomes, seed=0)
    assert len(curves) == 6 and curves["learning_rate"].tolist()[:3] == pytest.approx([8e-4, 8e-4 * 0.987, 8e-4])
    assert (curves["start_epoch"] == 0).all()
    assert sorted(p.name for p in (tmp_path / "weights").iterdir()) == ["s0.pt", "s1.pt", "s2.pt"]
    # Every fold left its result and nothing else: no checkpoint, no lock.
    assert sorted(p.name for p in (tmp_path / "folds").iterdir()) == ["s0.pt", "s1.pt", "s2.pt"]


def interrupted_at_save(data, folds, unit_dir, save_number: int) -> None:
    """Train until the ``save_number``-th checkpoint or fold result is written, then stop as a kill would."""
    saves = []
    original = ckpt.save_checkpoint

    def crash_after_save(*args, **kwargs):
        original(*args, **kwargs)
        saves.append(1)
        if len(saves) == save_number:
            raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ckpt, "save_checkpoint", crash_after_save)
        with pytest.raises(KeyboardInterrupt):
            train_folds(make_trainer(data, epochs=3), folds, unit_dir, ckpt.CheckpointPolicy(1, 0))


def resume_counting_work(data, folds, unit_dir, monkeypatch):
    """Resume in ``unit_dir``; the fold reports, the folds ``FoldTrainer.run`` was called for and the epochs trained."""
    runs, epochs = [], []
    run, train_epoch = loso.FoldTrainer.run, loso.FoldTrainer.train_epoch

    def counted_run(self, fold_index, *args, **kwargs):
        runs.append(fold_index)
        return run(self, fold_index, *args, **kwargs)

    def counted_epoch(self, *args, **kwargs):
        epochs.append(runs[-1])
        return train_epoch(self, *args, **kwargs)

    monkeypatch.setattr(loso.FoldTrainer, "run", counted_run)
    monkeypatch.setattr(loso.FoldTrainer, "train_epoch", counted_epoch)
    torch.manual_seed(1234)  # whatever the process did since must not matter
    reports = train_folds(make_trainer(data, epochs=3), folds, unit_dir, ckpt.CheckpointPolicy(1, 0))
    monkeypatch.undo()
    return reports, runs, epochs


# With 3 epochs and a checkpoint after every epoch, the saves of fold s0 are: epoch 1, epoch 2,
# its result (3); those of fold s1: epoch 1 (4), epoch 2 (5), its result (6).
@pytest.mark.parametrize(
    "save_number, finished, current_epochs, expected_runs, expected_epochs, start_epochs",
    [
        (3, 1, None, [1], [1, 1, 1], [0, 0]),  # killed between folds: s0 is not retrained
        (4, 1, 1, [1], [1, 1], [0, 1]),  # killed inside s1 after its first epoch: s1 continues at epoch 2
        (2, 0, 2, [0, 1], [0] + [1, 1, 1], [2, 0]),  # killed inside s0 after 2 epochs
    ],
    ids=["between-folds", "mid-fold", "mid-first-fold"],
)
def test_resume_skips_finished_work_and_matches_an_uninterrupted_run(
    tmp_path, one_torch_thread, monkeypatch, save_number, finished, current_epochs, expected_runs, expected_epochs,
    start_epochs,
):
    # Every fold re-seeds from (seed, fold index): retraining from scratch would give the same
    # numbers, so the test counts the work done after the interruption, not only the results.
    data = random_prepared(subjects=2, clips=5)
    folds = subject_folds(data)
    train_folds(make_trainer(data, epochs=3), folds, tmp_path / "a", ckpt.CheckpointPolicy(1, 0))
    reference = read_outcomes(tmp_path / "a", folds)
    assert [o.start_epoch for o in reference] == [0, 0]

    interrupted_at_save(data, folds, tmp_path / "b", save_number)
    assert [fold_store.is_done(tmp_path / "b", f.name) for f in folds] == [k < finished for k in range(2)]
    current = fold_store.checkpoint_path(tmp_path / "b", folds[finished].name)
    if current_epochs is None:
        assert not current.exists()
    else:
        state = ckpt.load_checkpoint(current, f"unit/fold/{folds[finished].name}")
        assert state["fold_index"] == finished and len(state["curves"]) == current_epochs

    reports, runs, epochs = resume_counting_work(data, folds, tmp_path / "b", monkeypatch)
    assert runs == expected_runs, "FoldTrainer.run was called for a fold that was finished"
    assert epochs == expected_epochs, "epochs the checkpoint held were trained again"
    assert [r.trained for r in reports] == [k in expected_runs for k in range(2)]
    resumed = read_outcomes(tmp_path / "b", folds)
    assert [o.start_epoch for o in resumed] == [r.start_epoch for r in reports] == start_epochs
    assert not list((tmp_path / "b" / "folds").glob("*.checkpoint.pt"))
    for left, right in zip(reference, resumed):
        np.testing.assert_array_equal(left.probabilities, right.probabilities)
        pd.testing.assert_frame_equal(left.curves, right.curves)
    table = loso.curves_table(resumed, seed=0)
    assert table.groupby("fold")["start_epoch"].first().tolist() == start_epochs


def test_a_checkpoint_of_another_fold_or_another_format_version_is_refused(tmp_path, one_torch_thread):
    data = random_prepared(subjects=2, clips=5)
    folds = subject_folds(data)
    interrupted_at_save(data, folds, tmp_path, 4)  # s0 finished, s1 checkpointed after its first epoch
    s0_checkpoint, s1_checkpoint = (fold_store.checkpoint_path(tmp_path, f.name) for f in folds)
    s1_checkpoint.rename(s0_checkpoint)  # s1's state where s0's would be
    (tmp_path / "folds" / "s0.pt").unlink()
    with pytest.raises(ValueError, match="belongs to another run"):
        train_folds(make_trainer(data, epochs=3), folds, tmp_path, ckpt.CheckpointPolicy(1, 0))
    s0_checkpoint.rename(s1_checkpoint)
    payload = torch.load(s1_checkpoint, weights_only=True)
    torch.save({**payload, "version": ckpt.VERSION - 1}, s1_checkpoint)
    with pytest.raises(ValueError, match=f"has format version {ckpt.VERSION - 1}, expected {ckpt.VERSION}"):
        train_folds(make_trainer(data, epochs=3), folds, tmp_path, ckpt.CheckpointPolicy(1, 0))


def test_frame_reselection_trains_on_the_train_pair_and_tests_on_the_annotated_pair(tmp_path, one_torch_thread):
    base = random_prepared(subjects=2, clips=5)
    other = random_prepared(subjects=2, clips=5, seed=1)  # other random frames: the "re-selected" pair
    data = dataclasses.replace(base, train_onset=other.onset, train_apex=other.apex)
    swapped = dataclasses.replace(base, onset=other.onset, apex=other.apex)  # trains on the same frames
    fold = subject_folds(data)[0]
    policy = ckpt.CheckpointPolicy(100, 0)

    def run(prepared, frame_reselection):
        trainer = make_trainer(prepared, epochs=2, frame_reselection=frame_reselection)
        return trainer.run(0, fold, None, lambda state: None, policy, progress=False)

    plain, plain_model = run(data, False)
    reselected, model = run(data, True)
    reference, _ = run(swapped, False)
    # Training read the train arrays: the same losses as a run whose onset/apex are those arrays ...
    pd.testing.assert_series_equal(reselected.curves["train_loss"], reference.curves["train_loss"])
    assert not np.allclose(reselected.curves["train_loss"], plain.curves["train_loss"])
    assert not np.allclose(reselected.probabilities, plain.probabilities)
    # ... and the held-out subject was scored on the annotated onset/apex.
    annotated, _ = make_trainer(data).predict(model, torch.as_tensor(fold.test_index))
    np.testing.assert_array_equal(reselected.probabilities[-1], annotated.numpy())
    on_train_pair, _ = make_trainer(swapped).predict(model, torch.as_tensor(fold.test_index))
    assert not np.allclose(reselected.probabilities[-1], on_train_pair.numpy())
    # Off (the default), the train arrays are ignored: identical to data without them.
    without, _ = run(base, False)
    np.testing.assert_array_equal(plain.probabilities, without.probabilities)
    pd.testing.assert_frame_equal(plain.curves, without.curves)
    with pytest.raises(ValueError, match="reselect_frames=True"):
        loso.DeviceData(base, torch.device("cpu"), frame_reselection=True)
    with pytest.raises(ValueError, match="not aligned"):
        dataclasses.replace(base, train_onset=other.onset[:-1], train_apex=other.apex[:-1])


def test_frame_reselection_enters_the_run_key_and_config(tmp_path, monkeypatch):
    import yaml

    import tsfmicro.data
    from tsfmicro.engine import runs

    calls = []

    def fake_prepare(dataset, root, task, *, reselect_frames=False, **kwargs):
        calls.append(reselect_frames)
        return random_prepared()

    monkeypatch.setattr(tsfmicro.data, "prepare", fake_prepare)
    config = runs.RunConfig(dataset="casme2", root=str(tmp_path), task="5class", preset="tiny", device="cpu")
    off = runs.resolve_request(config, progress=False)
    on = runs.resolve_request(dataclasses.replace(config, frame_reselection=True), progress=False)
    assert calls == [False, True]  # the data layer is asked for the re-selected pair
    assert "frame_reselection" not in off.identity  # the default keeps the keys of earlier runs
    assert on.identity["frame_reselection"] is True
    assert runs._unit_key(off, 0) != runs._unit_key(on, 0)
    document = yaml.safe_load(runs._config_yaml(on, [0], ["."], "key"))
    assert document["frame_reselection"] is True and document["resolved"]["frame_reselection"] is True
    assert yaml.safe_load(runs._config_yaml(off, [0], ["."], "key"))["frame_reselection"] is False

    from tsfmicro.cli import build_parser
    from tsfmicro.engine import _cli

    class Stop(Exception):
        pass

    def record(config, progress, strict=False):  # the CLI's config, then stop before any training
        seen.append(config)
        raise Stop

    seen = []
    monkeypatch.setattr(_cli, "train", record)
    for flags in ([], ["--frame-reselection"]):
        args = build_parser().parse_args(["train", "--dataset", "casme2", "--root", str(tmp_path), "--task", "5class",
                                          *flags])
        with pytest.raises(Stop):
            args.handler(args)
    assert [c.frame_reselection for c in seen] == [False, True]


def test_errata_choice_reaches_the_data_and_enters_the_run_key_only_when_not_the_default(tmp_path, monkeypatch):
    import yaml

    import tsfmicro.data
    from tsfmicro.cli import build_parser
    from tsfmicro.engine import _cli, runs

    calls = []

    def fake_prepare(dataset, root, task, *, errata="keep", **kwargs):
        calls.append(errata)
        return random_prepared()

    monkeypatch.setattr(tsfmicro.data, "prepare", fake_prepare)
    config = runs.RunConfig(dataset="casme3", root=str(tmp_path), task="7class", preset="tiny", device="cpu")
    keep = runs.resolve_request(config, progress=False)
    owners = runs.resolve_request(dataclasses.replace(config, errata="owners"), progress=False)
    assert calls == ["keep", "owners"]
    assert "errata" not in keep.identity  # the default keeps the keys of runs made before the option
    assert owners.identity["errata"] == "owners"
    assert runs._unit_key(keep, 0) != runs._unit_key(owners, 0)
    assert yaml.safe_load(runs._config_yaml(owners, [0], ["."], "key"))["errata"] == "owners"
    with pytest.raises(ValueError, match="unknown errata choice 'all'"):
        runs.validate(dataclasses.replace(config, errata="all"))

    class Stop(Exception):
        pass

    def record(config, progress, strict=False):
        seen.append(config)
        raise Stop

    seen = []
    monkeypatch.setattr(_cli, "train", record)
    for flags in ([], ["--errata", "owners"]):
        args = build_parser().parse_args(["train", "--dataset", "casme3", "--root", str(tmp_path), "--task", "7class",
                                          *flags])
        with pytest.raises(Stop):
            args.handler(args)
    assert [c.errata for c in seen] == ["keep", "owners"]
    assert build_parser().parse_args(["preprocess", "--dataset", "casme3", "--root", str(tmp_path),
                                      "--errata", "owners"]).errata == "owners"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["preprocess", "--dataset", "casme3", "--root", str(tmp_path), "--errata", "x"])


def test_precision_and_rotary_enter_the_run_key_and_nothing_else_does(tmp_path, monkeypatch):
    import tsfmicro.data
    from tsfmicro.engine import runs

    monkeypatch.setattr(tsfmicro.data, "prepare", lambda *args, **kwargs: random_prepared())
    base = runs.RunConfig(dataset="casme2", root=str(tmp_path), task="5class", preset="tiny", device="cpu")

    def key(**changes):
        return runs._unit_key(runs.resolve_request(dataclasses.replace(base, **changes), progress=False), 0)

    default = key()
    # fp32 is the recipes' default: naming it, or the presets' flat rotary, is the same run
    assert key(precision="fp32") == key(rotary="flat") == default
    assert len({default, key(precision="bf16"), key(rotary="axial")}) == 3
    # where results are written and how often checkpoints are taken do not change the numbers
    assert key(out=str(tmp_path / "elsewhere"), checkpoint_every=2, checkpoint_seconds=1.0) == default
    resolved = runs.resolve_request(dataclasses.replace(base, precision="bf16", rotary="axial"), progress=False)
    assert resolved.recipe.precision == "bf16" and resolved.identity["rotary"] == "axial"
    with pytest.raises(ValueError, match="precision 'fp16'.*fp32, bf16"):
        runs.validate(dataclasses.replace(base, precision="fp16"))
    with pytest.raises(ValueError, match="rotary 'spiral'.*flat, axial"):
        runs.validate(dataclasses.replace(base, rotary="spiral"))


def test_fp32_is_the_default_and_bf16_mode_trains_under_autocast(one_torch_thread):
    assert get_recipe("paper", "casme2", "5class").precision == "fp32"
    assert get_recipe("authors_code", "samm", "3class").precision == "fp32"
    data = random_prepared(subjects=2, clips=4)
    fp32 = make_trainer(data, epochs=1)
    assert not torch.is_autocast_enabled("cpu")
    with fp32.autocast():
        assert not torch.is_autocast_enabled("cpu")  # the authors train without autocast
    bf16 = dataclasses.replace(fp32, recipe=dataclasses.replace(fp32.recipe, precision="bf16"))
    with bf16.autocast():
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    fold = subject_folds(data)[0]
    outcomes = [t.run(0, fold, None, lambda state: None, ckpt.CheckpointPolicy(5, 60.0), False)[0]
                for t in (fp32, bf16)]
    for outcome in outcomes:
        assert np.isfinite(outcome.probabilities).all()
    # the same start, other arithmetic: close but not identical
    assert not np.array_equal(outcomes[0].probabilities, outcomes[1].probabilities)
    with pytest.raises(ValueError, match="precision"):
        get_recipe("paper", "casme2", "5class", precision="half")


def test_temporal_branch_enters_the_run_key_only_when_not_the_papers(tmp_path, monkeypatch):
    import tsfmicro.data
    from tsfmicro.engine import runs

    monkeypatch.setattr(tsfmicro.data, "prepare", lambda *args, **kwargs: random_prepared())
    base = runs.RunConfig(dataset="casme2", root=str(tmp_path), task="5class", preset="tiny", device="cpu")
    default = runs.resolve_request(base, progress=False)
    named = runs.resolve_request(dataclasses.replace(base, temporal_branch="retention"), progress=False)
    ablation = runs.resolve_request(dataclasses.replace(base, temporal_branch="transformer"), progress=False)
    assert "temporal_branch" not in default.identity and "temporal_branch" not in named.identity
    assert runs._unit_key(default, 0) == runs._unit_key(named, 0) != runs._unit_key(ablation, 0)
    assert runs.model_overrides(ablation.config) == {"temporal_branch": "transformer"}
    with pytest.raises(ValueError, match="temporal_branch 'mamba'.*retention, retention_no_decay"):
        runs.validate(dataclasses.replace(base, temporal_branch="mamba"))


# --- settings: device and run settings ---------------------------------------------------------


def test_resolve_device_says_when_the_requested_device_is_missing(monkeypatch):
    from tsfmicro.engine import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ValueError, match="^device cuda requested but torch sees no CUDA device$"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="^device mps requested but it is not available$"):
        resolve_device("mps")
    with pytest.raises(ValueError, match="unknown device 'gpu'; choose one of auto, cuda, mps, cpu"):
        resolve_device("gpu")
    assert resolve_device("auto") == resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # auto prefers CUDA when there is one
    assert resolve_device("auto") == resolve_device("cuda") == torch.device("cuda")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"seeds": ()}, "give at least one seed"),
        ({"seeds": (0, 1, 0)}, r"seeds repeat: \[0, 1, 0\]"),
        ({"checkpoint_every": 0}, "checkpoint_every must be at least 1"),
        ({"checkpoint_seconds": -1.0}, "checkpoint_seconds at least 0"),
    ],
)
def test_bad_run_settings_are_refused_when_the_config_is_made(changes, message, tmp_path):
    from tsfmicro.engine import RunConfig

    with pytest.raises(ValueError, match=message):
        RunConfig(dataset="casme2", root=str(tmp_path), task="5class", **changes)
