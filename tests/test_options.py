"""Run options are one table (tsfmicro.options.OPTIONS): a row reaches RunConfig, its validation, the
run key (only when not the default), the plan's options column, the train flags and the parameters
keys. A toy row, added in this file only, shows that adding an option is adding a row."""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tsfmicro.cli import main
from tsfmicro.engine import RunConfig, runs
from tsfmicro.options import OPTIONS, PRESET, RECIPE
from tsfmicro.params import OPTIONAL

ROOT = Path(__file__).resolve().parents[1]


def test_every_row_is_a_run_config_field_a_train_flag_and_where_said_a_parameters_key(capsys):
    fields = RunConfig.__dataclass_fields__
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    train_help = capsys.readouterr().out
    for row in OPTIONS:
        assert fields[row.name].default == (None if row.default in (PRESET, RECIPE) else row.default), row.name
        assert row.cli_flag in train_help, row.name
        assert (row.name in OPTIONAL) == row.params or row.name == "temporal_branch", row.name
    # temporal_branch is a parameters section (its chapter) as well as an option set per run
    assert "temporal_branch" in OPTIONAL


TOY_SCRIPT = textwrap.dedent('''
    import contextlib, dataclasses, io, json, sys
    from pathlib import Path

    import tsfmicro.options as options

    # The row, added before anything derives from the table (as a row in tsfmicro/options.py would be).
    options.OPTIONS.append(options.Option("toy_switch", "data", "off", "a toy option: off (default) or on",
                                          choices=("off", "on"), params=True))

    from tsfmicro.cli import main
    from tsfmicro.engine import _cli, runs
    from tsfmicro.engine.recipes import get_recipe
    from tsfmicro.params import Params

    sys.path.insert(0, "tests")
    from test_run_keys import FIXTURE, planned_keys

    root = sys.argv[1]
    seen = {}
    config = runs.RunConfig(dataset="casme2", root=root, task="5class", preset="tiny", device="cpu")
    seen["default"] = config.toy_switch
    try:
        runs.validate(dataclasses.replace(config, toy_switch="sideways"))
    except ValueError as error:
        seen["validate_error"] = str(error)

    recipe = get_recipe("paper", "casme2", "5class")
    on = dataclasses.replace(config, toy_switch="on")
    plain, switched = (runs.request_identity(c, recipe, "cpu", "<data>") for c in (config, on))
    seen["identity_default_has_it"] = "toy_switch" in plain
    seen["identity_on_minus_plain"] = {k: v for k, v in switched.items() if plain.get(k) != v}
    seen["options"] = [runs.config_options(config), runs.config_options(on)]

    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):
        main(["train", "--help"])
    seen["help"] = [line.strip() for line in out.getvalue().splitlines() if "toy" in line]
    requested = []
    def refuse(config, progress, strict=False):
        requested.append(config.toy_switch)
        raise FileNotFoundError("stop here")
    _cli.train = refuse
    base = ["train", "--dataset", "casme2", "--root", root, "--task", "5class"]
    seen["exit"] = [main([*base, "--toy-switch", "on"]), main(base)]
    seen["requested"] = requested
    with contextlib.redirect_stderr(io.StringIO()) as err, contextlib.suppress(SystemExit) as stopped:
        main([*base, "--toy-switch", "sideways"])
    seen["cli_error"] = err.getvalue().strip().splitlines()[-1]

    params = Params.load("params/demo.yaml", overrides={"toy_switch": "on"})
    seen["params_value"] = params.run_config("casme2", "5class", root="").toy_switch
    try:
        Params.load("params/demo.yaml", overrides={"toy_switch": "sideways"})
    except ValueError as error:
        seen["params_error"] = str(error).splitlines()[-1]
    pinned = json.loads(FIXTURE.read_text())["params/demo.yaml"]
    seen["demo_keys_hold"] = planned_keys(Params.load("params/demo.yaml")) == pinned
    print(json.dumps(seen))
''')


def test_a_toy_option_row_is_validated_offered_on_the_command_line_and_keyed_only_when_set(tmp_path):
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", TOY_SCRIPT, str(tmp_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["default"] == "off"
    assert seen["validate_error"] == "unknown toy_switch 'sideways'; choose one of off, on"
    assert seen["identity_default_has_it"] is False and seen["identity_on_minus_plain"] == {"toy_switch": "on"}
    assert seen["options"] == [{}, {"toy_switch": "on"}]
    assert any(line.startswith("--toy-switch {off,on}") for line in seen["help"])
    assert any("a toy option: off (default) or on" in line for line in seen["help"])
    assert seen["exit"] == [2, 2] and seen["requested"] == ["on", "off"]
    assert "argument --toy-switch: invalid choice: 'sideways'" in seen["cli_error"]
    assert seen["params_value"] == "on"
    assert seen["params_error"].startswith("  - toy_switch: unknown value 'sideways'")
    assert seen["demo_keys_hold"] is True  # the row at its default changes no pinned key


TOY_MODEL_OPTION_SCRIPT = textwrap.dedent('''
    import dataclasses, inspect, json

    import torch.nn as nn

    import tsfmicro.options as options

    # A model option no module of the package names, and a network that takes it.
    options.OPTIONS.append(options.Option("toy_width", "model", options.PRESET, "a toy network's width", type=int))

    from tsfmicro.engine import plan, runs
    from tsfmicro.model import PRESETS, count_flops, register_model

    class Toy(nn.Module):
        inputs = ("onset", "apex")

        def __init__(self, width, num_classes, image_size):
            super().__init__()
            self.image_size = image_size
            self.features = nn.Conv2d(3, width, 3, padding=1)
            self.classifier = nn.Linear(width, num_classes)

        def forward(self, onset, apex):
            return self.classifier(self.features(apex - onset).mean(dim=(2, 3)))

        def feature_layers(self):
            return {"features": self.features}

    @register_model("toy_wide", options=("toy_width",))
    def toy_wide(preset, num_classes, fusion, toy_width=4):
        return Toy(toy_width, num_classes, PRESETS[preset].image_size)

    base = runs.RunConfig(dataset="casme2", root="", task="5class", preset="tiny", device="cpu", seeds=(0,),
                          arch="toy_wide")
    rows = {str(width): plan.published_row(dataclasses.replace(base, toy_width=width), 0, "cpu")
            for width in (None, 16)}
    print(json.dumps({
        "named_in_plan": "toy_width" in inspect.getsource(plan),
        "tflops": {width: row["tflops"] for width, row in rows.items()},
        "seconds": {width: row["estimated_seconds"] for width, row in rows.items()},
        "options": {width: row["options"] for width, row in rows.items()},
        "counted": {"None": count_flops(Toy(4, 5, 64)), "16": count_flops(Toy(16, 5, 64))},
    }))
''')


def test_a_model_option_the_plan_never_names_reaches_its_flops_through_the_one_mapping(tmp_path):
    """plan.py takes a run's model options as one mapping (plan.model_settings, from OPTIONS): a new
    model option and a network taking it change the plan's compute and time with no edit there."""
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", TOY_MODEL_OPTION_SCRIPT], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["named_in_plan"] is False
    assert seen["options"] == {"None": "arch=toy_wide", "16": "arch=toy_wide, toy_width=16"}
    counted = seen["counted"]
    assert counted["16"] > counted["None"] > 0  # a wider toy costs more
    assert seen["tflops"]["16"] / seen["tflops"]["None"] == pytest.approx(counted["16"] / counted["None"])
    # the time estimate scales with the same FLOPs (cpu/tiny throughput is measured)
    assert seen["seconds"]["16"] / seen["seconds"]["None"] == pytest.approx(counted["16"] / counted["None"])

def test_the_real_rows_at_their_defaults_leave_the_key_as_it_was(tmp_path):
    """Every option left at its default (None or RunConfig's) adds nothing to a key's identity."""
    recipe = runs.get_recipe("paper", "casme2", "5class")
    config = RunConfig(dataset="casme2", root=str(tmp_path), task="5class", preset="tiny", device="cpu")
    identity = runs.request_identity(config, recipe, "cpu", "<data>")
    assert {row.name for row in OPTIONS} & set(identity) == {"image_size"}  # always keyed, resolved, as before
    assert identity["image_size"] == 64  # the tiny preset's
    bigger = runs.request_identity(RunConfig(dataset="casme2", root=str(tmp_path), task="5class", preset="tiny",
                                             device="cpu", image_size=32), recipe, "cpu", "<data>")
    assert bigger["image_size"] == 32 and bigger["crop_size"] == 32  # the crops follow the input size
    assert set(identity["recipe"]) >= {"epochs", "batch_size", "precision"}  # keyed always, inside the recipe
    assert not {"loss", "sampling"} & set(identity["recipe"])  # keyed only when not the recipe's


def test_an_image_size_that_is_not_a_multiple_of_16_is_refused_on_the_command_line_and_in_parameters(
        tmp_path, capsys):
    """image_size: the network's stride is 16; 40 stops before any work with exit code 2, and a
    parameters file's 0 is named as not a positive whole number."""
    assert main(["train", "--dataset", "casme2", "--root", str(tmp_path), "--task", "5class",
                 "--image-size", "40"]) == 2
    assert "image_size must be a positive multiple of 16 (the network's stride), got 40" in capsys.readouterr().err
    from tsfmicro import params

    demo = params.apply_overrides(__import__("yaml").safe_load((Path(__file__).resolve().parents[1] / "params" /
                                                               "demo.yaml").read_text()), {"image_size": 0})
    with pytest.raises(Exception, match=r"image_size: 0 is not a positive whole number or null"):
        params.check(demo, "demo.yaml")
