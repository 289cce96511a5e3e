"""`tsfmicro plan` and `tsfmicro run`: every planned unit trained fold by fold, in this process or
on a local Ray instance; bit-identical whatever the executor; nothing finished is trained twice
after a killed worker or driver; the plan's states follow reality; bad input is one clear line."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import tsfmicro
from helpers import torch_threads, write_synthetic_params
from tsfmicro import params as parameters
from tsfmicro.cli import main
from tsfmicro.engine import folds, loso

PACKAGE_ROOT = str(Path(tsfmicro.__file__).resolve().parents[1])

# sitecustomize for the test's subprocesses and their Ray workers: the first process to write a
# mid-fold checkpoint of a fold with index 1 records its pid and the checkpoint's path in the flag
# file and stalls, so the test can SIGKILL it at a known point; a retried fold finds the claim and
# trains on. The patch is applied when tsfmicro.engine.checkpoint is imported, so Ray's own
# processes, which never import it, start as fast as usual.
STALL_HOOK = """
import os, sys, time


def patch(checkpoint, flag):
    original = checkpoint.save_checkpoint

    def save_then_stall(path, unit_key, state):
        result = original(path, unit_key, state)
        if "optimizer" in state and state["fold_index"] == 1:
            try:  # the claim file is never removed: one stall per test
                os.close(os.open(flag + ".claimed", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return result
            with open(flag + ".tmp", "w") as handle:
                handle.write(f"{os.getpid()} {path}")
            os.replace(flag + ".tmp", flag)
            time.sleep(600)
        return result

    checkpoint.save_checkpoint = save_then_stall


class PatchOnImport:
    def find_spec(self, name, path=None, target=None):
        if name != "tsfmicro.engine.checkpoint":
            return None
        sys.meta_path.remove(self)
        import importlib.util

        spec = importlib.util.find_spec(name)
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            patch(module, os.environ["TSFMICRO_TEST_STALL_FLAG"])

        spec.loader.exec_module = exec_module
        return spec


if os.environ.get("TSFMICRO_TEST_STALL_FLAG"):
    sys.meta_path.insert(0, PatchOnImport())
"""


@pytest.fixture(scope="module")
def params_file(tmp_path_factory):
    """A tiny plan: CASME II 5-class (3 synthetic subjects), T-S late, seeds 0 and 1, 3 epochs,
    a mid-fold checkpoint after every epoch: 2 units of 3 folds."""
    return write_synthetic_params(
        tmp_path_factory.mktemp("plan"), "tiny.yaml", epochs=3, seeds=[0, 1], checkpoint_every=1,
        checkpoint_seconds=0, ablation={"dataset": "casme2", "task": "5class", "fusions": ["ts_late"], "seeds": [0]},
        synthetic={"subjects": 3, "clips_per_subject": 4, "seed": 0})


@pytest.fixture(scope="module")
def reference(params_file, tmp_path_factory):
    """The plan trained by the local executor in this process (one thread): what every other way must give."""
    with torch_threads(None):  # the parameters' cpu_threads: 1
        runs = tmp_path_factory.mktemp("reference") / "runs"
        assert main(["run", str(params_file), "-p", f"paths.runs={runs}", "--no-progress"]) == 0
        return runs


def environment(tmp_path, stall_flag: Path | None = None) -> dict:
    """This checkout's tsfmicro on one thread; with ``stall_flag``, the stall hook as well."""
    paths = [PACKAGE_ROOT]
    extra = {}
    if stall_flag is not None:
        hook = tmp_path / "hook"
        hook.mkdir()
        (hook / "sitecustomize.py").write_text(STALL_HOOK)
        paths.insert(0, str(hook))
        extra["TSFMICRO_TEST_STALL_FLAG"] = str(stall_flag)
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "OMP_NUM_THREADS": "1", **extra}


def start_run(params_file, runs: Path, tmp_path, *flags, stall_flag=None) -> subprocess.Popen:
    log = open(tmp_path / "run.log", "w")  # a file, not a pipe: a chatty Ray cannot block the run
    return subprocess.Popen([sys.executable, "-m", "tsfmicro", "run", str(params_file), "-p", f"paths.runs={runs}",
                             "--no-progress", *flags], env=environment(tmp_path, stall_flag), cwd=PACKAGE_ROOT,
                            stdout=log, stderr=subprocess.STDOUT)


def wait_for_stall(process: subprocess.Popen, flag: Path, tmp_path) -> tuple[int, Path]:
    deadline = time.monotonic() + 300
    while not flag.exists():
        assert process.poll() is None, (tmp_path / "run.log").read_text()
        assert time.monotonic() < deadline, "no process reached the mid-fold checkpoint of a second fold"
        time.sleep(0.1)
    pid, checkpoint = flag.read_text().split(" ", 1)
    return int(pid), Path(checkpoint)


def finish(process: subprocess.Popen, tmp_path) -> str:
    try:
        process.wait(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    log = (tmp_path / "run.log").read_text()
    assert process.returncode == 0, log
    return log


def start_epochs(runs: Path) -> dict[tuple[int, str], int]:
    """(seed, fold) -> the epoch its training started from in the process that finished it."""
    starts = {}
    for unit in (runs / "units").iterdir():
        curves = pd.read_csv(unit / "curves.csv", dtype={"fold": str})
        starts.update({(int(seed), fold): int(start)
                       for (seed, fold), start in curves.groupby(["seed", "fold"])["start_epoch"].first().items()})
    return starts


def assert_same_results(expected: Path, actual: Path) -> None:
    """Every request and unit of ``expected`` is in ``actual`` with byte-identical predictions and
    metrics, the same curves (the start epochs aside) and bit-identical probabilities of every epoch."""
    names = sorted(p.name for p in expected.iterdir() if p.name != "units")
    units = sorted(p.name for p in (expected / "units").iterdir())
    assert names and sorted(p.name for p in actual.iterdir() if p.name != "units") == names
    assert sorted(p.name for p in (actual / "units").iterdir()) == units
    for folder in [*names, *(f"units/{u}" for u in units)]:
        for name in ("predictions.csv", "metrics.json"):
            assert (expected / folder / name).read_bytes() == (actual / folder / name).read_bytes(), (folder, name)
        curves = [pd.read_csv(root / folder / "curves.csv").drop(columns="start_epoch") for root in (expected, actual)]
        pd.testing.assert_frame_equal(*curves, check_exact=True)
    for unit in units:
        key = unit.rsplit("_", 1)[-1]
        for fold_file in sorted((expected / "units" / unit / "folds").glob("*.pt")):
            fold = fold_file.stem
            left = folds.read_result(expected / "units" / unit, key, fold).outcome
            right = folds.read_result(actual / "units" / unit, key, fold).outcome
            np.testing.assert_array_equal(left.probabilities, right.probabilities)


def plan_json(params_file, runs: Path, capsys) -> dict:
    assert main(["plan", str(params_file), "-p", f"paths.runs={runs}", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


# --------------------------------------------------------------------------------------- the plan
def test_the_plan_counts_folds_clips_and_compute_of_every_unit(params_file, capsys, one_torch_thread):
    from tsfmicro.data import loso_splits
    from tsfmicro.engine.plan import forward_flops
    from tsfmicro.study import Study

    plan = plan_json(params_file, Path(params_file).parent / "unused", capsys)
    assert [(u["dataset"], u["task"], u["fusion"], u["seed"]) for u in plan["units"]] == [
        ("casme2", "5class", "ts_late", 0), ("casme2", "5class", "ts_late", 1)]
    study = Study.load(params_file)
    samples = study.data("casme2", "5class").samples
    splits = loso_splits(samples)
    train, test = sum(len(f.train_index) for f in splits), sum(len(f.test_index) for f in splits)
    forward = forward_flops("tiny", "ts_late", 5)
    for unit in plan["units"]:
        assert unit["folds"] == samples["subject"].nunique() == len(splits) == 3
        assert unit["train_clips_per_fold"] == pytest.approx(train / 3, abs=0.05)
        assert unit["epochs"] == 3 and unit["state"] == "to do" and unit["folds_done"] == 0
        assert unit["tflops"] == pytest.approx(3 * forward * (3 * train + test) / 1e12)
    assert plan["totals"]["units"] == 2 and plan["totals"]["folds"] == 6 and plan["totals"]["to_do"] == 2

    # --overrides (the notebooks' overrides) first, then each -p on top of it
    assert main(["plan", str(params_file), "--overrides", "{seeds: [1], ablation: {seeds: null}, epochs: 5}", "-p",
                 "epochs=2", "--json"]) == 0
    (unit,) = json.loads(capsys.readouterr().out)["units"]
    assert (unit["seed"], unit["epochs"]) == (1, 2)


def test_forward_flops_per_number_of_classes_match_a_count_of_that_network():
    from tsfmicro.engine.plan import forward_flops
    from tsfmicro.model import FUSIONS, build_model, count_flops

    for fusion in ("ts_late", "s_to_t", "spatial_only"):  # the head is the same module in every fusion
        assert fusion in FUSIONS
        for classes in (3, 7):
            assert forward_flops("tiny", fusion, classes) == count_flops(build_model("tiny", classes, fusion)), fusion
    # a temporal branch other than the preset's is counted as that network (the transformer's
    # global attention costs more than the decayed retention's plan would say)
    for branch in ("transformer", "conv"):
        counted = count_flops(build_model("tiny", 5, "ts_late", temporal_branch=branch))
        forward = forward_flops("tiny", "ts_late", 5, {"temporal_branch": branch})
        assert forward == counted != forward_flops("tiny", "ts_late", 5), branch


def test_the_paper_plan_without_its_datasets_uses_their_published_sizes(capsys, monkeypatch):
    for dataset in ("CASME2", "SAMM", "CASME3", "SMIC", "MEGC2019"):
        monkeypatch.delenv(f"TSFMICRO_{dataset}_ROOT", raising=False)
    plan = plan_json(Path(PACKAGE_ROOT) / "params" / "paper.yaml", Path(PACKAGE_ROOT) / ".cache" / "none", capsys)
    units = plan["units"]
    # the paper's 6 + 5 runs, the composite and cross-dataset chapters' 1 + 1 + 3 + 6, the temporal
    # branches (3 beside retention), the class-imbalance options (3 beside cross-entropy on 2 tasks) and
    # the automatic-apex run of the annotation chapter, the three baseline networks on the 6 tasks and
    # the composite, the spatial depths 1, 4 and 6 beside the paper's 2, and closing the cross-dataset gap's
    # fine-tuning (SAMM and CAS(ME)^3 from CASME II, 3 modes) and contrastive runs (2 targets): 3 seeds each
    assert len(units) == (6 + 5 + 1 + 1 + 3 + 6) * 3 + 3 * 3 + 2 * 3 * 3 + 1 * 3 + 3 * 7 * 3 + 3 * 3 + (2 * 3 + 2) * 3
    assert all(u["state"] == "no data" for u in units)
    folds_of = {(u["dataset"], u["task"], u["options"]): u["folds"] for u in units}
    loso_folds = {("casme2", "5class"): 26, ("casme2", "3class"): 26, ("samm", "5class"): 27,
                  ("samm", "3class"): 28, ("casme3", "7class"): 94, ("casme3", "4class"): 94}
    branches = {("casme2", "5class", f"temporal_branch={b}"): 26 for b in ("retention_no_decay", "transformer", "conv")}
    options = {(d, t, o): loso_folds[(d, t)] for d, t in (("samm", "5class"), ("casme3", "7class"))
               for o in ("loss=weighted_cross_entropy", "sampling=class_balanced", "loss=focal")}
    assert folds_of == {**{(d, t, ""): n for (d, t), n in loso_folds.items()},
                        ("megc2019", "3class", ""): 68, ("megc2019", "3class", "split=lodo"): 3,
                        ("casme2", "3class_megc", ""): 26, ("samm", "3class_megc", ""): 28,
                        ("casme3", "3class_megc", ""): 94,
                        **{(a, "3class_megc", f"test_dataset={b}"): 1 for a in ("casme2", "samm", "casme3")
                           for b in ("casme2", "samm", "casme3") if a != b},
                        ("casme2", "5class", "apex=automatic"): 26, **branches, **options,
                        **{(d, t, f"arch={a}"): n for (d, t), n in {**loso_folds, ("megc2019", "3class"): 68}.items()
                           for a in ("ststnet", "off_apexnet", "htnet")},
                        **{("casme2", "5class", f"spatial_depth={depth}"): 26 for depth in (1, 4, 6)},
                        **{(d, "3class_megc", f"pretrained=casme2{mode}"): n for d, n in (("samm", 28), ("casme3", 94))
                           for mode in ("", ", finetune=head", ", finetune=frozen_spatial")},
                        **{(d, "3class_megc", "supcon_weight=0.5"): n for d, n in (("samm", 28), ("casme3", 94))}}
    # a cross-dataset unit trains on all of one dataset: its published number of clips
    samm_to_casme3 = next(u for u in units if u["options"] == "test_dataset=casme3" and u["dataset"] == "samm")
    assert samm_to_casme3["train_clips_per_fold"] == 133
    tsfmicro = [u for u in units if not u["options"].startswith("arch=")]
    # fine-tuning: the short recipe's quarter of the 50 epochs, rounded up (tsfmicro.engine.transfer)
    assert all(u["epochs"] == (13 if u["options"].startswith("pretrained=") else 50) and u["preset"] == "paper"
               for u in tsfmicro)
    # each baseline with its authors' code's epochs (tsfmicro/model/networks/), at its authors' size
    epochs = {f"arch={a}": n for a, n in (("ststnet", 800), ("off_apexnet", 3000), ("htnet", 800))}
    assert all(u["epochs"] == epochs[u["options"]] and u["preset"] == "paper" for u in units if u not in tsfmicro)
    assert plan["totals"]["estimated_seconds"] is None  # cuda was never measured: not invented
    assert any("cuda, paper, fp32: unknown" in line for line in plan["throughput"])


# ---------------------------------------------------------------------------------------- the run
def test_ray_executor_gives_the_local_results_bit_for_bit(params_file, reference, tmp_path):
    runs = tmp_path / "runs"
    log = finish(start_run(params_file, runs, tmp_path, "--executor", "ray", "--workers", "2"), tmp_path)
    assert "executor ray, 2 worker(s)" in log
    assert log.count("finished casme2 5class ts_late tiny paper seed") == 2  # a line per unit
    assert_same_results(reference, runs)
    assert set(start_epochs(runs).values()) == {0}
    provenance = json.loads(next((runs / "units").iterdir()).joinpath("provenance.json").read_text())
    assert provenance["executor"] == "ray" and provenance["resumed"] is False


def test_a_killed_ray_worker_is_retried_from_its_checkpoint(params_file, reference, tmp_path):
    runs, flag = tmp_path / "runs", tmp_path / "stalled"
    process = start_run(params_file, runs, tmp_path, "--executor", "ray", "--workers", "2", stall_flag=flag)
    worker, checkpoint = wait_for_stall(process, flag, tmp_path)
    assert worker != process.pid  # a Ray worker, not the driver
    os.kill(worker, signal.SIGKILL)
    finish(process, tmp_path)

    assert_same_results(reference, runs)
    unit, fold = checkpoint.parent.parent, checkpoint.name.removesuffix(".checkpoint.pt")
    seed = int(unit.name.split("_seed")[1].split("_")[0])
    # The retry continued the checkpoint written after epoch 1; every other fold started at 0.
    assert start_epochs(runs) == {key: int(key == (seed, fold)) for key in start_epochs(reference)}
    assert folds.read_result(unit, unit.name.rsplit("_", 1)[-1], fold).start_epoch == 1
    assert not list(unit.glob("folds/*.checkpoint.pt"))


def test_a_killed_driver_loses_no_finished_fold_and_the_plan_follows(params_file, reference, tmp_path, capsys,
                                                                     monkeypatch, one_torch_thread):
    runs, flag = tmp_path / "runs", tmp_path / "stalled"
    before = plan_json(params_file, runs, capsys)
    assert [u["state"] for u in before["units"]] == ["to do", "to do"]

    process = start_run(params_file, runs, tmp_path, stall_flag=flag)  # the local executor
    driver, checkpoint = wait_for_stall(process, flag, tmp_path)
    assert driver == process.pid
    os.kill(driver, signal.SIGKILL)
    process.wait(timeout=30)
    assert checkpoint.exists()

    during = plan_json(params_file, runs, capsys)
    assert [(u["seed"], u["state"], u["folds_done"]) for u in during["units"]] == [
        (0, "partial: 1 of 3 folds", 1), (1, "to do", 0)]

    trained = []
    original = loso.FoldTrainer.run

    def record(self, fold_index, *args, **kwargs):
        trained.append((self.seed, fold_index))
        return original(self, fold_index, *args, **kwargs)

    monkeypatch.setattr(loso.FoldTrainer, "run", record)
    assert main(["run", str(params_file), "-p", f"paths.runs={runs}", "--no-progress"]) == 0
    assert "1 fold(s) continued a mid-fold checkpoint" in capsys.readouterr().out
    assert trained == [(0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]  # seed 0's first fold was kept
    assert_same_results(reference, runs)
    assert [start for (seed, fold), start in sorted(start_epochs(runs).items())] == [0, 1, 0, 0, 0, 0]

    after = plan_json(params_file, runs, capsys)
    assert [u["state"] for u in after["units"]] == ["done", "done"]
    assert all(u["folds_done"] == 3 and u["executor"] == "local" and u["trained_seconds"] > 0 and u["device"]
               for u in after["units"])
    assert after["totals"]["done"] == 2 and after["totals"]["folds_done"] == 6


def test_a_fold_held_by_another_run_is_left_for_later_then_waited_for(params_file, tmp_path, capsys,
                                                                      one_torch_thread):
    from tsfmicro.engine.execute import LocalExecutor, execute
    from tsfmicro.study import Study

    study = Study.load(params_file, overrides={"paths": {"runs": str(tmp_path)}, "seeds": [0], "epochs": 1})
    plan = study.engine_plan()
    (unit,) = plan.units
    held = unit.folds[0].name
    locked = threading.Event()
    printed = []

    def other_run():  # holds the first fold's lock until the run says it waits for it
        with folds.fold_lock(unit.path, held):
            locked.set()
            deadline = time.monotonic() + 120
            while not any("waiting for" in text for text in printed) and time.monotonic() < deadline:
                printed.append(capsys.readouterr().out)
                time.sleep(0.05)

    holder = threading.Thread(target=other_run)
    holder.start()
    assert locked.wait(10)
    try:
        summary = execute(plan, LocalExecutor(), progress=False)
    finally:
        holder.join()
    printed.append(capsys.readouterr().out)
    out = "".join(printed)
    assert f"fold {held} of {unit.path.name} is being trained by pid {os.getpid()}" in out
    assert "leaving it for later" in out and "waiting for pid" in out
    assert unit.finished and summary.folds_trained == len(unit.folds) == 3
    assert not folds.lock_path(unit.path, held).exists()


def test_a_worker_that_cannot_write_the_run_folder_says_so(tmp_path):
    from tsfmicro.engine.folds import FoldTask, RunFolderNotWritable, run_fold_task

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    task = FoldTask(unit_dir=str(blocker / "units" / "u"), unit_key="k", unit_name="u", fold_index=0, fold=None,
                    preset="tiny", fusion="ts_late", num_classes=5, model_options={}, recipe=None, image_size=64, seed=0,
                    device="cpu",
                    frame_reselection=False, keep_weights=False, checkpoint_every=1, checkpoint_seconds=0,
                    run_id="test", executor="ray")
    with pytest.raises(RunFolderNotWritable, match="on a filesystem every worker sees"):
        run_fold_task(task, data=None)


# ------------------------------------------------------------------------------------ bad input
def test_unreachable_ray_address_is_an_error_not_a_hang(params_file, tmp_path):
    for address in ("127.0.0.1:9", "ray://127.0.0.1:9"):
        result = subprocess.run([sys.executable, "-m", "tsfmicro", "run", str(params_file), "-p",
                                 f"paths.runs={tmp_path}", "--executor", "ray", "--address", address],
                                env=environment(tmp_path), cwd=PACKAGE_ROOT, capture_output=True, text=True,
                                timeout=60)  # the promise: an answer within a minute
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines() == [
            f"tsfmicro run: error: cannot join the Ray cluster at {address}: nothing answers at 127.0.0.1:9 "
            "(Connection refused)"]


@pytest.mark.parametrize("flags, message", [
    (["--executor", "dask"], "unknown executor 'dask'; choose one of local, ray"),
    (["--executor", "ray", "--workers", "0"], "--workers must be at least 1"),
    (["--gpus-per-fold", "1"], "--address, --workers and --gpus-per-fold are for --executor ray"),
    (["-p", "seeds"], "write KEY=VALUE"),
    (["--overrides", "[0, 1]"], "give a YAML mapping"),
])
def test_bad_run_arguments_are_one_line_errors(flags, message, params_file, tmp_path, capsys, one_torch_thread):
    assert main(["run", str(params_file), "-p", f"paths.runs={tmp_path}", *flags]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("tsfmicro run: error: ") and message in line
    assert not (tmp_path / "units").exists()


def test_ray_missing_gpu_missing_and_unwritable_runs_folder_are_one_line_errors(params_file, tmp_path, capsys,
                                                                             monkeypatch, one_torch_thread):
    def error(*arguments) -> str:
        assert main(["run", str(params_file), *arguments]) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        return line

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert "cannot write to the run folder" in error("-p", f"paths.runs={blocker}/runs")
    if not torch.cuda.is_available():
        assert "torch sees no CUDA GPU" in error("-p", f"paths.runs={tmp_path}", "-p", "device=cuda",
                                                 "--executor", "ray", "--gpus-per-fold", "0.5")
    assert "with device cpu" in error("-p", f"paths.runs={tmp_path}", "--executor", "ray", "--gpus-per-fold", "1")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    assert "pip install 'tsfmicro[ray]'" in error("-p", f"paths.runs={tmp_path}", "--executor", "ray")
    for command in ("plan", "run"):  # every problem of a parameters file, one per line (tsfmicro.params)
        assert main([command, str(params_file), "-p", "epoch=3"]) == 2
        first, *problems = capsys.readouterr().err.strip().splitlines()
        assert first == f"tsfmicro {command}: error: {params_file} with overrides: invalid parameters (nothing was run):"
        assert problems == ["  - epoch: unknown key (did you mean 'epochs'?); valid: " + ", ".join(
            parameters.REQUIRED + parameters.OPTIONAL)]
