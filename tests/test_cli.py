"""The train / evaluate / report commands: the documented command line, help, and clear errors."""
import json

import pytest

from tsfmicro.cli import main


@pytest.mark.parametrize("command", ["train", "evaluate", "report", "plan", "run"])
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
    ],
)
def test_unknown_names_are_usage_errors(flag, value, message, tmp_path, capsys):
    arguments = {"--dataset": "casme2", "--root": str(tmp_path), "--task": "5class", flag: value}
    with pytest.raises(SystemExit) as exit_info:
        main(["train", *[item for pair in arguments.items() for item in pair]])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_unknown_task_missing_root_and_missing_run_are_clear_errors(tmp_path, capsys):
    assert main(["train", "--dataset", "casme2", "--root", str(tmp_path), "--task", "7class"]) == 2
    assert "unknown task for casme2 '7class'" in capsys.readouterr().err
    assert main(["train", "--dataset", "casme2", "--root", str(tmp_path / "nowhere"), "--task", "5class"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2
    assert "not a finished run directory" in capsys.readouterr().err
    assert main(["train", "--dataset", "casme2", "--root", str(tmp_path), "--task", "5class", "--epochs", "0"]) == 2
    assert "epochs must be at least 1" in capsys.readouterr().err
