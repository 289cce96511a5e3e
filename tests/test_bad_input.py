"""Bad input and faults a new user meets (issue 19): each gives one clear line naming the file and
what to do, exit code 2 (130 after Ctrl-C), and loses no state: nothing half-written, finished work kept."""
from __future__ import annotations

import signal
import time
from pathlib import Path

import numpy as np
import pytest

from tsfmicro.cli import main

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "params" / "demo.yaml"


def _error_line(capsys) -> str:
    """The one stderr line a user error prints (no traceback; progress bars before it aside)."""
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("tsfmicro ")]
    assert len(errors) == 1 and err.endswith(errors[0]), err
    return errors[0]


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- row 4: YAML syntax errors
def test_yaml_syntax_error_in_a_params_file_names_file_line_and_column(tmp_path, capsys):
    params = tmp_path / "broken.yaml"
    # the top-level seeds (a section's own, indented, may come first)
    text = DEMO.read_text(encoding="utf-8").replace("\nseeds: [0, 1, 2]", "\nseeds: [0, 1, 2", 1)
    assert text != DEMO.read_text(encoding="utf-8")
    params.write_text(text, encoding="utf-8")
    before = _files(tmp_path)
    assert main(["plan", str(params)]) == 2
    line = _error_line(capsys)
    broken_line = 1 + text.splitlines().index(next(t for t in text.splitlines() if t.startswith("seeds: [0, 1, 2")))
    assert line.startswith(f"tsfmicro plan: error: {params}, line ")
    assert "YAML syntax error" in line and f"opened at line {broken_line}, column 8" in line
    assert _files(tmp_path) == before  # nothing written: no runs, no cache, the file untouched


@pytest.mark.parametrize("arguments, source, column", [
    (["-p", "seeds=[0"], "-p 'seeds=[0', value '[0', line 1, column 3", 1),
    (["--overrides", "{seeds: [0}"], "--overrides '{seeds: [0}', line 1, column 11", 9),
])
def test_yaml_syntax_error_in_an_override_names_the_option(arguments, source, column, tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["run", str(DEMO), "-p", f"paths.runs={runs}", *arguments]) == 2
    line = _error_line(capsys)
    assert line.startswith(f"tsfmicro run: error: {source}: YAML syntax error: expected ',' or ']'")
    assert f"opened at line 1, column {column})" in line
    assert not runs.exists()


# ---------------------------------------------------------------- row 9: a params file that is a list
@pytest.mark.parametrize("text, kind", [("- data_source: synthetic\n- seeds: [0]\n", "a list"),
                                        ("just words\n", "a single value ('just words')")])
def test_a_params_file_that_is_not_a_mapping_is_named(text, kind, tmp_path, capsys):
    params = tmp_path / "list.yaml"
    params.write_text(text, encoding="utf-8")
    assert main(["run", str(params)]) == 2
    assert _error_line(capsys) == (f"tsfmicro run: error: {params}: expected a mapping of parameters "
                                   f"(key: value lines), got {kind}")
    assert _files(tmp_path) == {"list.yaml": text.encode()}


# ---------------------------------------------------------------- row 7: a dataset with one subject
def test_a_one_subject_dataset_is_refused_before_any_fold(tmp_path, engine_cache_dir, monkeypatch, capsys):
    from tsfmicro.data import write_synthetic

    monkeypatch.setenv("TSFMICRO_CACHE", str(engine_cache_dir))
    root = write_synthetic("casme2", tmp_path / "one", subjects=1, clips_per_subject=3, seed=11)
    out = tmp_path / "runs"
    assert main(["train", "--dataset", "casme2", "--root", str(root), "--task", "5class", "--preset", "tiny",
                 "--epochs", "1", "--device", "cpu", "--out", str(out), "--no-progress"]) == 2
    assert _error_line(capsys) == f"tsfmicro train: error: LOSO needs at least 2 subjects; {root} has 1 (sub01)"
    assert not out.exists()  # no unit folder, no stale fold .lock


def test_loso_splits_refuses_fewer_than_two_subjects():
    import pandas as pd

    from tsfmicro.data import loso_splits
    from tsfmicro.data.splits import TooFewSubjects

    with pytest.raises(TooFewSubjects, match=r"LOSO needs at least 2 subjects; the samples have 1 \(s1\)"):
        loso_splits(pd.DataFrame({"subject": ["s1", "s1"], "dataset": ["casme2", "casme2"]}))
    assert len(loso_splits(pd.DataFrame({"subject": ["s1", "s2"], "dataset": ["casme2", "casme2"]}))) == 2


# ---------------------------------------------------------------- row 3: a damaged face-crop cache
def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "random":
        path.write_bytes(bytes(range(256)) * 20)
    elif how == "empty":
        path.write_bytes(b"")
    else:  # one byte flipped inside the stored crops: the zip's CRC no longer matches
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:])


@pytest.mark.parametrize("how", ["truncated", "random", "empty", "flipped"])
def test_a_damaged_cache_is_named_and_rebuilt(how, synthetic_casme2_small_root, tmp_path, capsys):
    cache = tmp_path / "cache"
    arguments = ["preprocess", "--dataset", "casme2", "--root", str(synthetic_casme2_small_root),
                 "--task", "5class", "--crop-size", "32", "--cache-dir", str(cache)]
    assert main(arguments) == 0
    (path,) = cache.glob("*.npz")
    with np.load(path) as stored:
        before = {name: stored[name] for name in stored.files}
    capsys.readouterr()
    _damage(path, how)
    assert main(arguments) == 0
    err = capsys.readouterr().err
    assert f"face-crop cache {path} is damaged (" in err and "building it again from the dataset" in err
    assert "Traceback" not in err
    with np.load(path) as stored:  # rebuilt in place, the same crops as before the damage
        assert sorted(stored.files) == sorted(before)
        assert all(np.array_equal(stored[name], before[name]) for name in before)
    assert main(arguments) == 0  # and read from then on without a word
    assert "damaged" not in capsys.readouterr().err


# ---------------------------------------------------------------- rows 5 and 6: damaged run files, fold results
def _train(root: Path, out: Path, cache: Path) -> list[str]:
    return ["train", "--dataset", "casme2", "--root", str(root), "--task", "5class", "--preset", "tiny",
            "--epochs", "1", "--device", "cpu", "--out", str(out), "--cache-dir", str(cache), "--no-progress"]


@pytest.fixture
def small_run(synthetic_casme2_small_root, engine_cache_dir, tmp_path, one_torch_thread, capsys):
    """A finished run of 2 folds: (train arguments, request directory, unit directory)."""
    arguments = _train(synthetic_casme2_small_root, tmp_path / "runs", engine_cache_dir)
    assert main(arguments) == 0
    capsys.readouterr()
    (request,) = [p for p in (tmp_path / "runs").iterdir() if p.name != "units"]
    (unit,) = (tmp_path / "runs" / "units").iterdir()
    return arguments, request, unit


def _no_training(monkeypatch):
    from tsfmicro.engine import folds

    def refuse(*args, **kwargs):
        raise AssertionError("a fold was trained again although its result was intact")

    monkeypatch.setattr(folds, "train_fold", refuse)


def test_a_cut_predictions_file_is_named_then_assembled_again_without_training(small_run, monkeypatch, capsys):
    arguments, request, unit = small_run
    before = _files(request.parent)
    predictions = request / "predictions.csv"
    lines = predictions.read_text().splitlines(keepends=True)
    predictions.write_text("".join(lines[:3]))  # 2 of the rows left
    for command in (["report", str(request)], ["evaluate", str(request)]):
        assert main(command) == 2
        assert _error_line(capsys) == (
            f"tsfmicro {command[0]}: error: run {request} is damaged: predictions.csv has 2 rows, {len(lines) - 1} "
            "when written. Its fold results are kept: run the same `tsfmicro run` or `tsfmicro train` command "
            "to assemble it again, without training")
    _no_training(monkeypatch)
    assert main(arguments) == 0
    err = capsys.readouterr().err
    assert (f"run {request} is damaged: predictions.csv has 2 rows, {len(lines) - 1} when written; assembling it "
            "again from its units") in err
    after = _files(request.parent)
    # every file as it was, but the request's provenance (it records when it was written) and its record
    assert after.keys() == before.keys()
    assert {name for name in after if after[name] != before[name]} <= {f"{request.name}/provenance.json",
                                                                        f"{request.name}/checksums.json"}
    assert main(["report", str(request)]) == 0


def test_a_broken_metrics_file_of_a_unit_is_named_then_assembled_again(small_run, monkeypatch, capsys):
    arguments, request, unit = small_run
    metrics = unit / "metrics.json"
    good = metrics.read_bytes()
    metrics.write_text('{\n  "protocols":\n')
    assert main(["evaluate", str(unit)]) == 2
    line = _error_line(capsys)
    assert line.startswith(f"tsfmicro evaluate: error: run {unit} is damaged: metrics.json changed since it was "
                           f"written (17 bytes, {len(good)} when written)")
    _no_training(monkeypatch)
    assert main(arguments) == 0
    assert f"unit {unit} is damaged: metrics.json changed" in capsys.readouterr().err
    assert metrics.read_bytes() == good
    assert main(["evaluate", str(unit)]) == 0


def test_a_broken_json_file_of_an_old_run_is_named(small_run, capsys):
    arguments, request, unit = small_run
    (request / "checksums.json").unlink()  # as a run written before checksums were recorded
    (request / "metrics.json").write_text('{\n')
    assert main(["report", str(request)]) == 2
    assert _error_line(capsys).startswith(f"tsfmicro report: error: {request / 'metrics.json'} is not valid JSON "
                                          "(Expecting property name enclosed in double quotes: line 2 column 1")


def test_a_truncated_fold_result_is_found_before_training_moved_aside_and_retrained(small_run, capsys):
    from tsfmicro.engine import folds

    arguments, request, unit = small_run
    predictions = (unit / "predictions.csv").read_bytes()
    # a partial unit: its files not yet written, one fold result cut short
    for name in ("metrics.json", "predictions.csv"):
        (unit / name).unlink()
    for name in list(_files(request)):
        (request / name).unlink()
    request.rmdir()
    first, second = sorted((unit / folds.FOLDS).glob("*.pt"))
    kept = second.read_bytes()
    first.write_bytes(first.read_bytes()[:200])
    assert main(arguments) == 0
    err = capsys.readouterr().err
    assert f"fold result {first} is damaged (RuntimeError: PytorchStreamReader failed reading zip archive" in err
    assert "checkpoint" not in err  # named as what it is
    assert f"moved aside to {first.name}.damaged, training fold {first.stem} again" in err
    assert (unit / folds.FOLDS / f"{first.name}.damaged").stat().st_size == 200  # kept for a look, not deleted
    assert second.read_bytes() == kept  # the intact fold was not trained again
    assert (unit / "predictions.csv").read_bytes() == predictions  # the retrained fold gives the same result


# ---------------------------------------------------------------- row 1: excluded samples are said
def _damaged_casme2(source: Path, root: Path) -> Path:
    """A copy of a CASME II root with 4 unusable rows: a zero-byte onset frame, a bad onset number,
    a duplicate row and a clip whose frames are missing (besides its fear and sadness rows, which
    5class leaves out)."""
    import shutil

    import openpyxl

    shutil.copytree(source, root)
    path = root / "CASME2-coding-20190701.xlsx"
    book = openpyxl.load_workbook(path)
    sheet = book["Sheet1"]
    rows = [row for row in sheet.iter_rows(min_row=2) if row[8].value in ("happiness", "disgust", "repression",
                                                                          "surprise", "others")]
    subject, clip = rows[0][0].value, rows[0][1].value
    onset = next((root / "CASME2_RAW_selected" / f"sub{subject}" / clip).glob(f"img{rows[0][3].value}.jpg"))
    onset.write_bytes(b"")
    rows[1][3].value = "twelve"
    sheet.append([cell.value for cell in rows[2]])
    shutil.rmtree(root / "CASME2_RAW_selected" / f"sub{rows[3][0].value}" / rows[3][1].value)
    book.save(path)
    return root


def test_excluded_rows_are_said_written_beside_the_run_and_shown_by_report(synthetic_casme2_root, tmp_path,
                                                                          engine_cache_dir, one_torch_thread, capsys):
    import pandas as pd

    root = _damaged_casme2(synthetic_casme2_root, tmp_path / "casme2")
    out = tmp_path / "runs"
    arguments = _train(root, out, engine_cache_dir)
    assert main([*arguments, "--strict"]) == 2
    line = _error_line(capsys)
    assert line.startswith("tsfmicro train: error: --strict: 4 of 25 rows of casme2 5class are unusable (first: ")
    assert "_5class_unusable.csv. Mend them, or run without --strict to leave them out" in line
    assert not out.exists()  # stopped before any training

    assert main(arguments) == 0
    printed = capsys.readouterr().out
    (run,) = [p for p in out.iterdir() if p.name != "units"]
    expected = f"{run.name}: 6 of 25 rows excluded (4 unusable, 2 not in the task): see {run / 'excluded.csv'}"
    assert expected in printed.splitlines()
    excluded = pd.read_csv(run / "excluded.csv")
    assert len(excluded) == 6 and excluded["reason"].str.contains("is not in casme2 5class").sum() == 2
    assert main(["report", str(run)]) == 0
    assert expected in capsys.readouterr().out.splitlines()


# ---------------------------------------------------------------- row 2: a full disk
def _enospc(*args, **kwargs):
    import errno
    import os

    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _torch_short_write(*args, **kwargs):
    raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4416 vs 4310")


@pytest.mark.parametrize("failure", ["enospc", "torch"])
def test_a_full_runs_disk_is_one_line_and_nothing_is_half_written(failure, synthetic_casme2_small_root,
                                                                  engine_cache_dir, tmp_path, monkeypatch,
                                                                  one_torch_thread, capsys):
    import torch

    from tsfmicro import _io

    out = tmp_path / "runs"
    arguments = _train(synthetic_casme2_small_root, out, engine_cache_dir)
    with monkeypatch.context() as patch:
        patch.setattr(torch, "save", _enospc if failure == "enospc" else _torch_short_write)
        patch.setattr(_io, "free_bytes", lambda folder: 0)  # what statvfs says on a full disk
        assert main(arguments) == 2
    line = _error_line(capsys)
    (unit,) = (out / "units").iterdir()
    first = sorted(path.stem for path in (unit / "folds").glob("*.lock"))[0]
    # the first file a fold writes: its final weights (kept for a request's first seed), then its result
    assert line == (f"tsfmicro train: error: no space left on the device of {unit / 'weights'} (writing {first}.pt); "
                    "nothing was half-written and finished work is kept: free some space and run the same command "
                    "again")
    assert not [p for p in out.rglob("*") if p.suffix in (".tmp", ".pt")]  # no partial file under any name
    assert main(arguments) == 0  # space freed: the same command finishes


def test_a_torch_write_error_with_space_left_is_not_taken_for_a_full_disk(tmp_path, monkeypatch):
    import torch

    from tsfmicro import _io

    monkeypatch.setattr(torch, "save", _torch_short_write)
    with pytest.raises(RuntimeError, match="unexpected pos"):  # a real fault keeps its traceback
        _io.save_tagged(tmp_path / "x.pt", "key", {})
    assert list(tmp_path.iterdir()) == []


def test_a_full_cache_disk_is_one_line(synthetic_casme2_small_root, tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    monkeypatch.setattr(np, "savez", _enospc)
    assert main(["preprocess", "--dataset", "casme2", "--root", str(synthetic_casme2_small_root), "--task", "5class",
                 "--crop-size", "32", "--cache-dir", str(cache)]) == 2
    line = _error_line(capsys)
    assert line.startswith(f"tsfmicro preprocess: error: no space left on the device of {cache} (writing casme2_32px_")
    assert list(cache.iterdir()) == []


# ---------------------------------------------------------------- row 8: Ctrl-C during face cropping
def test_ctrl_c_during_face_cropping_keeps_the_finished_crops(synthetic_casme2_small_root, tmp_path, monkeypatch,
                                                              capsys):
    from tsfmicro.data import cache as cache_module

    monkeypatch.setattr(cache_module, "DETECTION_BATCH", 2)  # 6 clips: 3 batches
    crop_pair = cache_module._crop_pair
    calls = []

    def interrupted_at_the_fifth_clip(*args, **kwargs):
        calls.append(args[0]["clip_id"])
        if len(calls) == 5:
            raise KeyboardInterrupt
        return crop_pair(*args, **kwargs)

    def preprocess(cache: Path) -> list[str]:
        return ["preprocess", "--dataset", "casme2", "--root", str(synthetic_casme2_small_root), "--task", "5class",
                "--crop-size", "32", "--cache-dir", str(cache)]

    reference = tmp_path / "reference"
    assert main(preprocess(reference)) == 0
    (whole,) = reference.glob("*.npz")
    capsys.readouterr()

    cache = tmp_path / "cache"
    monkeypatch.setattr(cache_module, "_crop_pair", interrupted_at_the_fifth_clip)
    assert main(preprocess(cache)) == 130
    partial = cache / whole.name.replace(".npz", ".partial.npz")
    assert _error_line(capsys) == (f"tsfmicro preprocess: interrupted; the face crops of 4 of 6 clips are kept in "
                                   f"{partial}: run the same command to continue")
    assert sorted(p.name for p in cache.iterdir()) == [partial.name]  # no cache under the final name

    calls.clear()
    assert main(preprocess(cache)) == 0  # takes up where it stopped: only the last batch is cropped
    assert len(calls) == 2
    assert sorted(p.name for p in cache.iterdir() if p.suffix == ".npz") == [whole.name]
    with np.load(whole) as expected, np.load(cache / whole.name) as resumed:
        assert sorted(expected.files) == sorted(resumed.files)
        assert all(np.array_equal(expected[name], resumed[name]) for name in expected.files)


def test_ctrl_c_elsewhere_is_one_line_and_130(monkeypatch, capsys):
    from tsfmicro import _study_cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(_study_cli, "_study", interrupted)
    assert main(["plan", str(DEMO)]) == 130
    assert _error_line(capsys) == ("tsfmicro plan: interrupted; finished work is kept: run the same command to "
                                   "continue")


# ---------------------------------------------------------------- row 12: the same synthetic seed, the same bytes
def test_the_same_synthetic_seed_writes_the_same_bytes(tmp_path):
    import time

    from tsfmicro.data import write_synthetic
    from tsfmicro.data.annotations import load_clips
    from tsfmicro.data.cache import cache_key

    layouts = ("casme2", "samm", "casme3")  # the spreadsheet layouts (their workbooks stored the time)
    first = {name: write_synthetic(name, tmp_path / "a" / name, subjects=2, clips_per_subject=2, seed=7)
             for name in layouts}
    time.sleep(2.1)  # past the 2-second resolution of a zip entry's date
    second = {name: write_synthetic(name, tmp_path / "b" / name, subjects=2, clips_per_subject=2, seed=7)
              for name in layouts}
    for name in layouts:
        assert _files(first[name]) == _files(second[name]), name
        settings = {"crop_size": 64, "margin": 0.1, "use_precropped": False}
        assert cache_key(load_clips(name, first[name]), settings) == cache_key(load_clips(name, second[name]), settings)


# ---------------------------------------------------------------- row 11: a params file outside the repository
def test_a_params_file_outside_the_repository(tmp_path, monkeypatch):
    import subprocess

    from tsfmicro.params import DatasetRootMissing
    from tsfmicro.provenance_box import ProvenanceBox
    from tsfmicro.study import Study

    outside = tmp_path / "elsewhere" / "mine.yaml"
    outside.parent.mkdir()
    outside.write_text(DEMO.read_text(encoding="utf-8"), encoding="utf-8")
    study = Study.load(outside)
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    box = ProvenanceBox(study, "a chapter")
    assert box.commit.startswith(commit) and len(commit) == 12  # the code's commit, not "no commit yet"
    assert study.parameters.path("runs") == outside.parent / ".cache/tsfmicro/runs"  # relative paths: beside the file
    assert "# paths: relative ones are relative to the project folder" in DEMO.read_text(encoding="utf-8")

    monkeypatch.chdir(tmp_path)
    real = Study.load(outside, overrides={"data_source": "real", "roots": {"casme2": "data/CASME2"}})
    with pytest.raises(DatasetRootMissing) as missing:
        real.parameters.root("casme2")
    assert (f"the CASME II folder data/CASME2 does not exist (a relative folder is read from the working folder, "
            f"{tmp_path})") in str(missing.value)


# ---------------------------------------------------------------- row 10: Ray processes of a killed driver
def test_processes_of_a_dead_drivers_ray_instance_are_ended(tmp_path, monkeypatch):
    import json
    import subprocess
    import sys

    from tsfmicro.engine import ray_orphans

    monkeypatch.setattr(ray_orphans, "RECORDS", tmp_path / "records")

    def agent(session: Path) -> subprocess.Popen:
        """A stand-in for ray::DashboardAgent: no session in its command line, its log open in it."""
        (session / "logs").mkdir(parents=True)
        log = session / "logs" / "dashboard_agent.log"
        process = subprocess.Popen([sys.executable, "-c", "import sys, time; log = open(sys.argv[1], 'w'); "
                                    "time.sleep(120)", str(log)])
        for _ in range(200):  # until it has its log open
            if log.exists():
                break
            time.sleep(0.05)
        return process

    orphan = agent(tmp_path / "session_2026-01-01_00-00-00_000000_1")
    in_use = agent(tmp_path / "session_2026-01-01_00-00-01_000000_2")
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        ray_orphans.RECORDS.mkdir()
        (ray_orphans.RECORDS / f"{dead.pid}.json").write_text(json.dumps(
            {"pid": dead.pid, "start": "0", "session": str(tmp_path / "session_2026-01-01_00-00-00_000000_1")}))
        live = ray_orphans.record(tmp_path / "session_2026-01-01_00-00-01_000000_2")  # this process: alive
        assert ray_orphans.end_orphans(grace_s=2) == [orphan.pid]
        assert orphan.wait(timeout=10) == -signal.SIGTERM
        assert in_use.poll() is None and bystander.poll() is None  # a live driver's, and no instance's
        assert sorted(p.name for p in ray_orphans.RECORDS.iterdir()) == [live.name]
        assert ray_orphans.end_orphans(grace_s=2) == []
        ray_orphans.forget(live)  # what RayExecutor.close does after ray.shutdown()
        assert list(ray_orphans.RECORDS.iterdir()) == []
    finally:
        for process in (orphan, in_use, bystander):
            if process.poll() is None:
                process.kill()
                process.wait()


# ---------------------------------------------------------------- the smaller ones
def test_report_help_says_95_percent_once(capsys):
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "95% intervals" in text and "%%" not in text


def test_a_missing_params_file_names_each_folder_once(monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    assert main(["plan", "params/nowhere.yaml"]) == 2
    assert _error_line(capsys) == f"tsfmicro plan: error: parameters file not found: params/nowhere.yaml (looked in {REPO})"


def test_a_finished_run_keeps_no_locks_and_identical_weights(small_run, engine_cache_dir, synthetic_casme2_small_root,
                                                             tmp_path, capsys):
    arguments, request, unit = small_run
    assert not list(request.parent.rglob("*.lock"))  # no stale fold locks once the unit is written
    again = tmp_path / "again"
    assert main(_train(synthetic_casme2_small_root, again, engine_cache_dir)) == 0
    (unit_again,) = (again / "units").iterdir()
    weights = sorted((unit / "weights").glob("*.pt"))
    assert weights and [p.read_bytes() for p in weights] == [
        (unit_again / "weights" / p.name).read_bytes() for p in weights]  # the same run, the same bytes

    capsys.readouterr()
    assert main(["report", str(request.parent)]) == 0  # a runs folder: the runs in it (not units/)
    table = capsys.readouterr().out
    assert request.name in table and unit.name not in table


def test_preprocess_says_which_crop_size_train_uses(capsys):
    with pytest.raises(SystemExit):
        main(["preprocess", "--help"])
    assert "`train --preset tiny` uses 64 px" in " ".join(capsys.readouterr().out.split())


def test_local_data_folders_are_not_committed():
    assert "/data/" in (REPO / ".gitignore").read_text().splitlines()


def test_run_says_the_excluded_rows_of_each_run_and_strict_stops_it(synthetic_casme2_root, tmp_path, capsys):
    import yaml

    root = _damaged_casme2(synthetic_casme2_root, tmp_path / "casme2")
    params = tmp_path / "real.yaml"
    params.write_text(yaml.safe_dump({
        "data_source": "real", "datasets": {"casme2": ["5class"]}, "preset": "tiny", "recipe": "paper",
        "epochs": 1, "batch_size": 4, "seeds": [0], "device": "cpu", "cpu_threads": 1,
        "ablation": {"dataset": "casme2", "task": "5class", "fusions": ["ts_late"], "seeds": [0]},
        "gradcam": {"dataset": "casme2", "task": "5class", "examples": 0}, "roots": {"casme2": str(root)},
        "paths": {"synthetic": "synthetic", "prepared": "prepared", "runs": "runs"}}))
    assert main(["run", str(params), "--no-progress", "--strict"]) == 2
    assert _error_line(capsys).startswith("tsfmicro run: error: --strict: 4 of 25 rows of casme2 5class are unusable")
    assert not list((tmp_path / "runs").iterdir())  # created empty by the writable check, nothing trained
    assert main(["run", str(params), "--no-progress"]) == 0
    (run,) = [p for p in (tmp_path / "runs").iterdir() if p.name != "units"]
    assert (f"{run.name}: 6 of 25 rows excluded (4 unusable, 2 not in the task): see {run / 'excluded.csv'}"
            in capsys.readouterr().out.splitlines())
