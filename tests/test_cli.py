"""The train / evaluate / report commands: the documented command line, help, and clear errors."""
import json

import pytest

from tsfmicro.cli import main


@pytest.mark.parametrize("command", ["train", "evaluate", "report", "plan", "run", "explore"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: tsfmicro " + command in capsys.readouterr().out


def test_the_documented_train_command_then_evaluate_and_report(synthetic_casme2_root, engine_cache_dir, tmp_path,
                                                               monkeypatch, capsys, one_torch_thread):
    monkeypatch.setenv("TSFMICRO_CACHE", str(engine_cache_dir))
    out = tmp_path / "runs"
    code = main(["train", "--dataset", "casme2", "--root", str(synthetic_casme2_root), "--task", "5class",
                 "--fusion", "ts_late", "--preset", "tiny", "--recipe", "paper", "--epochs", "1",
                 "--seeds", "0", "1", "2", "--device", "cpu", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "fixed" in printed and "oracle" in printed and "SYNTHETIC" in printed and "t over 3 seeds" in printed
    (run,) = [p for p in out.iterdir() if p.name != "units"]
    assert len(list((out / "units").iterdir())) == 3

    assert main(["evaluate", str(run), "--protocol", "oracle"]) == 0
    printed = capsys.readouterr().out
    assert "[oracle]" in printed and "[fixed]" not in printed and "sub" in printed
    assert main(["evaluate", str(run), "--json"]) == 0
    recomputed = json.loads(capsys.readouterr().out)
    assert recomputed == json.loads((run / "metrics.json").read_text())

    assert main(["report", str(run), str(run)]) == 0
    table = capsys.readouterr().out
    assert table.count("oracle") >= 2 and "oracle - fixed" in table


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--dataset", "casme9", "invalid choice: 'casme9'"),
        ("--fusion", "middle", "invalid choice: 'middle'"),
        ("--preset", "huge", "invalid choice: 'huge'"),
        ("--recipe", "fast", "invalid choice: 'fast'"),
        ("--precision", "fp16", "invalid choice: 'fp16'"),
        ("--rotary", "spiral", "invalid choice: 'spiral'"),
        ("--loss", "dice", "invalid choice: 'dice'"),
        ("--sampling", "smote", "invalid choice: 'smote'"),
    ],
)
def test_unknown_names_are_usage_errors(flag, value, message, tmp_path, capsys):
    arguments = {"--dataset": "casme2", "--root": str(tmp_path), "--task": "5class", flag: value}
    with pytest.raises(SystemExit) as exit_info:
        main(["train", *[item for pair in arguments.items() for item in pair]])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_loss_and_sampling_flags_reach_the_run_config(tmp_path, monkeypatch):
    from tsfmicro.engine import _cli

    requested = []

    def refuse(config, progress, strict=False):  # records the request; raises as a missing dataset would
        requested.append(config)
        raise FileNotFoundError("stop here")

    monkeypatch.setattr(_cli, "train", refuse)
    base = ["train", "--dataset", "samm", "--root", str(tmp_path), "--task", "5class"]
    assert main([*base, "--loss", "focal", "--sampling", "class_balanced"]) == 2
    assert main(base) == 2
    assert [(c.loss, c.sampling) for c in requested] == [("focal", "class_balanced"), (None, None)]


def test_unknown_task_missing_root_and_missing_run_are_clear_errors(tmp_path, capsys):
    assert main(["train", "--dataset", "casme2", "--root", str(tmp_path), "--task", "7class"]) == 2
    assert "unknown task for casme2 '7class'" in capsys.readouterr().err
    assert main(["train", "--dataset", "casme2", "--root", str(tmp_path / "nowhere"), "--task", "5class"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2
    assert "not a finished run directory" in capsys.readouterr().err
    assert main(["train", "--dataset", "casme2", "--root", str(tmp_path), "--task", "5class", "--epochs", "0"]) == 2
    assert "epochs must be at least 1" in capsys.readouterr().err


def one_error_line(capsys, command: str) -> str:
    """The command's stderr: exactly one line, ``tsfmicro <command>: error: ...``; its message."""
    err = capsys.readouterr().err
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line: {err!r}"
    prefix = f"tsfmicro {command}: error: "
    assert err.startswith(prefix), err
    return err[len(prefix):].strip()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["synth", "--layout", "casme2", "--out", "{tmp}/new", "--subjects", "0"],
         "synthetic casme2: need at least 1 subject and 1 clip per subject"),
        (["synth", "--layout", "samm", "--out", "{tmp}/occupied"],
         "{tmp}/occupied is not empty and not a synthetic dataset; refusing to overwrite it"),
        (["preprocess", "--dataset", "casme2", "--root", "{tmp}/nowhere"], "casme2 root {tmp}/nowhere is not a folder"),
        (["preprocess", "--dataset", "casme2", "--root", "{tmp}/occupied"],
         "{tmp}/occupied is not a CASME II root: no annotation file matching casme2-coding-*.xlsx in it"),
        (["preprocess", "--dataset", "casme2", "--root", "{casme2}", "--task", "7class"],
         "unknown task '7class' for casme2; choose from {casme2_tasks}"),
        (["preprocess", "--dataset", "casme2", "--root", "{casme2}", "--crop-size", "4"],
         "crop_size must be at least 8 pixels, got 4"),
        (["preprocess", "--dataset", "casme2", "--root", "{casme2}", "--margin", "-0.5"], "margin must be >= 0, got -0.5"),
        (["preprocess", "--dataset", "samm", "--root", "{samm}", "--precropped"],
         "samm: no pre-cropped release found under {samm}; run without --precropped"),
        (["evaluate", "{tmp}/occupied"], "{tmp}/occupied is not a finished run directory (missing config.yaml, "
                                         "provenance.json, predictions.csv, curves.csv, metrics.json)"),
        (["train", "--dataset", "casme2", "--root", "{casme2}", "--task", "5class", "--seeds", "0", "1", "0"],
         "seeds repeat: [0, 1, 0]"),
        (["train", "--dataset", "casme2", "--root", "{casme2}", "--task", "5class", "--checkpoint-seconds", "-1"],
         "checkpoint_every must be at least 1 and checkpoint_seconds at least 0"),
        (["train", "--dataset", "casme2", "--root", "{casme2}", "--task", "5class", "--device", "cuda"],
         "device cuda requested but torch sees no CUDA device"),
    ],
    ids=["synth-no-subjects", "synth-occupied-folder", "preprocess-missing-root", "preprocess-not-a-root",
         "preprocess-unknown-task", "preprocess-crop-size", "preprocess-margin", "preprocess-no-precropped",
         "evaluate-not-a-run", "train-repeated-seeds", "train-checkpoint-seconds", "train-no-cuda"],
)
def test_user_errors_exit_2_with_one_line(arguments, message, synthetic_casme2_small_root, synthetic_samm_root,
                                          tmp_path, monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same answer on a GPU machine
    monkeypatch.setenv("TSFMICRO_CACHE", str(tmp_path / "cache"))
    (tmp_path / "occupied").mkdir()
    (tmp_path / "occupied" / "notes.txt").write_text("someone's files")
    from tsfmicro.data import TASKS

    places = {"tmp": str(tmp_path), "casme2": str(synthetic_casme2_small_root), "samm": str(synthetic_samm_root),
              "casme2_tasks": ", ".join(TASKS["casme2"])}
    fill = lambda text: text.format(**places)  # noqa: E731
    assert main([fill(a) for a in arguments]) == 2
    assert one_error_line(capsys, arguments[0]) == fill(message)
    assert not (tmp_path / "new").exists() and not (tmp_path / "cache").exists()  # refused before any work
