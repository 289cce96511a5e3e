"""Run directories end to end on synthetic data: files, reuse, fold models, kill -9 and resume."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

import tsfmicro
from helpers import torch_threads
from independent_metrics import assert_summary_matches, expected_summary
from tsfmicro.engine import RunConfig, load_run, loso, train
from tsfmicro.engine.augment import to_model_input


def tiny_config(root, out, cache_dir, **changes) -> RunConfig:
    settings = dict(dataset="casme2", root=root, task="5class", fusion="ts_late", preset="tiny", recipe="paper",
                    epochs=2, seeds=(0,), device="cpu", out=out, cache_dir=cache_dir)
    return RunConfig(**{**settings, **changes})


@pytest.fixture(scope="module")
def first_run(synthetic_casme2_root, engine_cache_dir, tmp_path_factory):
    """Seed 0, 2 epochs, trained once in this process on one thread (the kill -9 test compares with it)."""
    with torch_threads(1):
        out = tmp_path_factory.mktemp("runs")
        return train(tiny_config(synthetic_casme2_root, out, engine_cache_dir), progress=False)


def test_train_writes_a_run_reuses_finished_seeds_and_serves_fold_models(
    first_run, synthetic_casme2_root, engine_cache_dir, one_torch_thread, monkeypatch
):
    first = first_run
    tmp_path = first.path.parent
    for name in ("config.yaml", "provenance.json", "predictions.csv", "curves.csv", "metrics.json"):
        assert (first.path / name).exists()
    clips = len(first.predictions)
    assert first.predictions["seed"].eq(0).all() and first.predictions["clip_id"].is_unique
    assert set(first.predictions["epoch_fixed"]) == {2}
    assert len(first.curves) == 2 * first.predictions["fold"].nunique()
    assert first.provenance["data"]["synthetic"] and first.provenance["data"]["cache_key"]
    assert first.provenance["numerics"] == {"precision": "fp32"}  # the default; TF32 switches only on CUDA
    assert first.config["resolved"]["recipe"]["precision"] == "fp32" and first.config["precision"] is None
    assert first.config["data_source"] == "SYNTHETIC" and first.config["resolved"]["recipe"]["epochs"] == 2
    assert set(first.metrics["protocols"]) == {"fixed", "oracle"}

    # Seed 0 is finished: a request for seeds 0 and 1 trains only seed 1.
    trained_seeds = []
    original = loso.FoldTrainer.run

    def record(self, *args, **kwargs):
        trained_seeds.append(self.seed)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(loso.FoldTrainer, "run", record)
    both = train(tiny_config(synthetic_casme2_root, tmp_path, engine_cache_dir, seeds=(0, 1)), progress=False)
    assert set(trained_seeds) == {1}
    assert len(both.predictions) == 2 * clips and both.path != first.path
    pd.testing.assert_frame_equal(both.predictions[both.predictions["seed"] == 0], first.predictions)
    assert both.metrics["protocols"]["fixed"]["seed_ci95"]["accuracy"][0] is not None
    # metrics.json, recomputed independently from predictions.csv (the bootstrap: see test_metrics.py)
    for run in (first, both):
        assert_summary_matches(run.metrics, expected_summary(run.predictions, run.class_names, resamples=None))

    # The same request again is loaded, not trained.
    trained_seeds.clear()
    again = train(tiny_config(synthetic_casme2_root, tmp_path, engine_cache_dir, seeds=(0, 1)), progress=False)
    assert trained_seeds == [] and again.path == both.path

    # fold_model gives the final weights of the held-out subject's fold: it reproduces the
    # fixed-protocol probabilities written in predictions.csv.
    rows = both.predictions[both.predictions["seed"] == 0]
    subject = rows["subject"].iloc[0]
    model = both.fold_model(subject)
    assert not model.training
    from tsfmicro.data import prepare

    data = prepare("casme2", synthetic_casme2_root, "5class", crop_size=64, cache_dir=engine_cache_dir, progress=False)
    mine = rows[rows["subject"] == subject]
    index = mine["sample_index"].to_numpy()
    with torch.no_grad():
        onset = to_model_input(torch.from_numpy(data.onset[index]), 64)
        apex = to_model_input(torch.from_numpy(data.apex[index]), 64)
        probabilities = model(onset, apex).softmax(dim=1).numpy()
    expected = mine[[f"prob_fixed_{name}" for name in both.class_names]].to_numpy()
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    with pytest.raises(KeyError, match="not in run"):
        both.fold_model("nobody")


def test_a_foreign_checkpoint_is_refused_not_reused(synthetic_casme2_root, engine_cache_dir, tmp_path,
                                                   one_torch_thread):
    from tsfmicro.engine import folds
    from tsfmicro.engine.plan import make_plan

    config = tiny_config(synthetic_casme2_root, tmp_path, engine_cache_dir, seeds=(5,), epochs=1)
    (unit,) = make_plan([config]).units
    planted = folds.checkpoint_path(unit.path, unit.folds[0].name)
    planted.parent.mkdir(parents=True)
    torch.save({"model": torch.zeros(1)}, planted)  # e.g. a file copied from elsewhere
    with pytest.raises(ValueError, match="not a tsfmicro checkpoint"):
        train(config, progress=False)
    assert planted.exists() and not (unit.path / "metrics.json").exists()
    assert not folds.is_done(unit.path, unit.folds[0].name)


# A training process that stalls right after writing a checkpoint inside the second fold, so
# the test can kill it with SIGKILL at a known point. Everything else is the real CLI.
STALLING_TRAINER = """
import pathlib, sys, time
from tsfmicro.engine import checkpoint

original = checkpoint.save_checkpoint

def save_then_stall(path, unit_key, state):
    result = original(path, unit_key, state)
    if "optimizer" in state and state["fold_index"] == 1:  # a mid-fold checkpoint of the second fold
        pathlib.Path(sys.argv[1]).write_text("checkpoint written")
        time.sleep(600)
    return result

checkpoint.save_checkpoint = save_then_stall
from tsfmicro.cli import main
sys.exit(main(sys.argv[2:]))
"""

# The real CLI, counting the work done: the folds FoldTrainer.run trains and their epochs.
COUNTING_TRAINER = """
import json, pathlib, sys
from tsfmicro.engine import loso

work = {"folds": [], "epochs": []}
run, train_epoch = loso.FoldTrainer.run, loso.FoldTrainer.train_epoch

def counted_run(self, fold_index, *args, **kwargs):
    work["folds"].append(fold_index)
    return run(self, fold_index, *args, **kwargs)

def counted_epoch(self, *args, **kwargs):
    work["epochs"].append(work["folds"][-1])
    return train_epoch(self, *args, **kwargs)

loso.FoldTrainer.run, loso.FoldTrainer.train_epoch = counted_run, counted_epoch
from tsfmicro.cli import main
code = main(sys.argv[2:])
pathlib.Path(sys.argv[1]).write_text(json.dumps(work))
sys.exit(code)
"""


def test_kill_9_and_rerun_gives_the_same_results_as_an_uninterrupted_run(
    first_run, synthetic_casme2_root, engine_cache_dir, tmp_path
):
    # Same settings as first_run (the checkpoint frequency is not part of a run's identity),
    # in fresh processes on one thread like first_run.
    # PYTHONPATH: the scripts below import the tsfmicro under test, whatever the virtualenv's install points to.
    package_root = str(Path(tsfmicro.__file__).resolve().parents[1])
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "TSFMICRO_CACHE": str(engine_cache_dir),
                   "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    command = ["train", "--dataset", "casme2", "--root", str(synthetic_casme2_root), "--task", "5class",
               "--fusion", "ts_late", "--preset", "tiny", "--recipe", "paper", "--epochs", "2", "--seeds", "0",
               "--device", "cpu", "--checkpoint-every", "1", "--checkpoint-seconds", "0", "--no-progress"]

    flag = tmp_path / "stalled"
    script = tmp_path / "stalling_trainer.py"
    script.write_text(STALLING_TRAINER)
    process = subprocess.Popen([sys.executable, str(script), str(flag), *command, "--out", str(tmp_path / "killed")],
                               env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not flag.exists():
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "the training process never reached the second fold"
            time.sleep(0.1)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    (unit,) = (tmp_path / "killed" / "units").iterdir()
    folds = sorted(first_run.predictions["fold"].unique())
    assert (unit / "folds" / f"{folds[0]}.pt").exists() and (unit / "folds" / f"{folds[1]}.checkpoint.pt").exists()
    assert not (unit / "metrics.json").exists()

    counter, work = tmp_path / "counting_trainer.py", tmp_path / "work.json"
    counter.write_text(COUNTING_TRAINER)
    subprocess.run([sys.executable, str(counter), str(work), *command, "--out", str(tmp_path / "killed")],
                   env=environment, check=True, capture_output=True, timeout=300)
    # Only what the checkpoint did not hold was trained: the second of the four folds from its
    # second epoch on, then the last two folds (2 epochs each); the first fold not at all.
    assert json.loads(work.read_text()) == {"folds": [1, 2, 3], "epochs": [1, 2, 2, 3, 3]}

    straight = first_run.path
    (resumed,) = [p for p in (tmp_path / "killed").iterdir() if p.name != "units"]
    assert resumed.name == straight.name
    for name in ("predictions.csv", "metrics.json"):
        assert (straight / name).read_text() == (resumed / name).read_text(), name
    # The same curves; start_epoch says the second fold was continued after its first epoch.
    straight_curves, resumed_curves = pd.read_csv(straight / "curves.csv"), pd.read_csv(resumed / "curves.csv")
    assert set(straight_curves["start_epoch"]) == {0}
    assert resumed_curves.groupby("fold", sort=False)["start_epoch"].first().tolist() == [0, 1, 0, 0]
    pd.testing.assert_frame_equal(straight_curves.drop(columns="start_epoch"),
                                  resumed_curves.drop(columns="start_epoch"), check_exact=True)
    assert not list((unit / "folds").glob("*.checkpoint.pt"))
    provenance = json.loads((unit / "provenance.json").read_text())
    assert provenance["resumed"] is True and provenance["folds"][folds[1]]["start_epoch"] == 1
    assert yaml.safe_load((resumed / "config.yaml").read_text())["key"] == resumed.name.rsplit("_", 1)[-1]
    assert load_run(resumed).fold_model(load_run(resumed).predictions["subject"].iloc[0]) is not None


def test_each_fold_records_the_commit_it_was_trained_on_and_the_unit_says_when_they_differ(
    first_run, synthetic_casme2_root, engine_cache_dir, tmp_path, monkeypatch
):
    import re
    import shutil

    from tsfmicro.engine import checkpoint as ckpt
    from tsfmicro.engine import folds as fold_files
    from tsfmicro.engine import provenance as provenance_module
    from tsfmicro.engine.runs import resolve_request, write_unit

    trained = resolve_request(tiny_config(synthetic_casme2_root, first_run.path.parent, engine_cache_dir), False)
    unit_dir, unit_key = trained.unit_path(0), trained.unit_key(0)
    names = [str(fold.name) for fold in trained.folds()]
    # trained in one process: every fold on its commit (not compared with git now: the checkout may
    # have moved on since), one commit, not mixed
    recorded = {name: fold_files.read_result(unit_dir, unit_key, name).git for name in names}
    (trained_on,) = {state["commit"] for state in recorded.values()}
    assert re.fullmatch("[0-9a-f]{40}|unknown", trained_on) and trained_on != "a" * 40
    provenance = json.loads((unit_dir / "provenance.json").read_text())
    assert {name: provenance["folds"][name]["git"] for name in names} == recorded
    assert provenance["commits"] == {trained_on: names} and provenance["mixed_commits"] is False

    # The same folds assembled elsewhere: one trained on another commit, one written before fold
    # results recorded their commit (read as unknown), the others as trained.
    request = resolve_request(tiny_config(synthetic_casme2_root, tmp_path, engine_cache_dir), False)
    assert request.unit_key(0) == unit_key
    shutil.copytree(unit_dir / fold_files.FOLDS, request.unit_path(0) / fold_files.FOLDS)
    other, old = (fold_files.result_path(request.unit_path(0), name) for name in names[:2])
    state = ckpt.load_checkpoint(other, fold_files._fold_key(unit_key, names[0]))
    ckpt.save_checkpoint(other, fold_files._fold_key(unit_key, names[0]),
                         {**state, "git": {"commit": "a" * 40, "dirty": False}})
    state = ckpt.load_checkpoint(old, fold_files._fold_key(unit_key, names[1]))
    del state["git"]
    ckpt.save_checkpoint(old, fold_files._fold_key(unit_key, names[1]), state)
    results = [fold_files.read_result(request.unit_path(0), unit_key, name) for name in names]
    assert results[1].git == fold_files.UNKNOWN_GIT == {"commit": "unknown", "dirty": None}
    # assembled by other code again: the unit's "git" says so, the folds keep theirs
    monkeypatch.setattr(provenance_module, "git_state", lambda folder=None: {"commit": "b" * 40, "dirty": False})
    write_unit(request, 0, results)

    provenance = json.loads((request.unit_path(0) / "provenance.json").read_text())
    assert provenance["commits"] == {"a" * 40: names[:1], "unknown": names[1:2], trained_on: names[2:]}
    assert provenance["mixed_commits"] is True
    assert provenance["folds"][names[0]]["git"]["commit"] == "a" * 40
    assert provenance["git"]["commit"] == "b" * 40  # the code that assembled the files, as before

def test_report_tables_name_their_protocol_and_agree_with_the_predictions(first_run):
    from tsfmicro import metrics, report

    summary = report.summary_table([first_run, first_run.path])
    assert list(summary["protocol"]) == ["fixed", "oracle", "fixed", "oracle"]
    assert (summary["interval"] == "subject bootstrap 95%").all()  # one seed: bootstrap over subjects
    fixed = summary.iloc[0]
    rows = first_run.predictions
    assert fixed["accuracy"] == pytest.approx(metrics.accuracy(rows["true"], rows["pred_fixed"]))
    assert fixed["accuracy_low"] <= fixed["accuracy"] <= fixed["accuracy_high"]
    assert len(report.difference_table(first_run)) == 1
    subjects = report.per_subject_table(first_run, "oracle")
    assert sorted(subjects["subject"]) == sorted(rows["subject"].unique()) and (subjects["protocol"] == "oracle").all()
    assert report.confusion_table(first_run).to_numpy().sum() == len(rows)
    assert report.per_class_table(first_run)["support"].sum() == len(rows)
    assert set(report.seed_table(first_run)["protocol"]) == {"fixed", "oracle"}
    text = report.text_report(first_run)
    assert "SYNTHETIC" in text and "oracle - fixed" in text
    with pytest.raises(ValueError, match="unknown protocol 'best'"):
        report.per_class_table(first_run, "best")
