"""A network is one registered builder: a toy network, registered in this file only, trains through
tsfmicro.engine.train and ``tsfmicro run``, is reloaded for its fold models, planned and counted,
while the run keys of the paper's network (arch "tsfmicro", the default) do not change."""
import numpy as np
import pytest
import torch
from torch import nn

from helpers import write_synthetic_params
import test_engine_loop as loop  # its random PreparedData (module import: not re-collected)
from tsfmicro.cli import main
from tsfmicro.engine import RunConfig, load_run, train
from tsfmicro.engine import loso, runs
from tsfmicro.engine.augment import to_model_input
from tsfmicro.engine.plan import forward_flops, make_plan
from tsfmicro.model import MODELS, PRESETS, count_flops, model_from_config, register_model
from tsfmicro.model.registry import DEFAULT_ARCH

TOY = "toy_difference"


class DifferenceNet(nn.Module):
    """A small conv net on apex - onset. It declares its inputs in the other order than TSFmicro,
    so a run that trains it shows the engine feeds the named inputs, in the declared order."""

    inputs = ("apex", "onset")

    def __init__(self, image_size: int, num_classes: int):
        super().__init__()
        self.image_size = image_size
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.classifier = nn.Linear(8, num_classes)

    def forward(self, apex: torch.Tensor, onset: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(apex - onset).mean(dim=(2, 3)))

    def feature_layers(self) -> dict[str, nn.Module]:
        return {"difference": self.features}


def toy_difference(preset: str, num_classes: int, fusion: str) -> DifferenceNet:
    return DifferenceNet(PRESETS[preset].image_size, num_classes)


@pytest.fixture
def toy_network():
    """The toy registered for one test, as a module of its own would register it at import."""
    register_model(TOY)(toy_difference)
    yield TOY
    MODELS.pop(TOY)


def toy_config(root, out, cache_dir, **changes) -> RunConfig:
    settings = dict(dataset="casme2", root=root, task="5class", preset="tiny", epochs=2, batch_size=4, seeds=(0,),
                    device="cpu", out=out, cache_dir=cache_dir, arch=TOY)
    return RunConfig(**{**settings, **changes})


def test_a_registered_network_trains_is_reloaded_and_planned(toy_network, synthetic_casme2_root, engine_cache_dir,
                                                             tmp_path, one_torch_thread):
    config = toy_config(synthetic_casme2_root, tmp_path, engine_cache_dir)
    run = train(config, progress=False)
    assert run.path.name.startswith(f"casme2_5class_{TOY}_tiny_paper_")  # its arch names the run
    assert run.config["resolved"]["arch"] == TOY and run.options == {"arch": TOY}
    assert set(run.predictions["epoch_fixed"]) == {2} and set(run.metrics["protocols"]) == {"fixed", "oracle"}

    # Its fold model is rebuilt by model_from_config from config.yaml and reproduces the
    # fixed-protocol probabilities: the engine fed (apex, onset), as the network declared.
    from tsfmicro.data import prepare

    subject = run.predictions["subject"].iloc[0]
    model = load_run(run.path).fold_model(subject)
    assert isinstance(model, DifferenceNet)
    data = prepare("casme2", synthetic_casme2_root, "5class", crop_size=64, cache_dir=engine_cache_dir, progress=False)
    mine = run.predictions[run.predictions["subject"] == subject]
    index = mine["sample_index"].to_numpy()
    with torch.no_grad():
        onset = to_model_input(torch.from_numpy(data.onset[index]), 64)
        apex = to_model_input(torch.from_numpy(data.apex[index]), 64)
        probabilities = model(apex, onset).softmax(dim=1).numpy()
    expected = mine[[f"prob_fixed_{name}" for name in run.class_names]].to_numpy()
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)

    # The plan counts its FLOPs through the model contract (model.classifier for other class counts).
    (row,) = make_plan([config]).table().to_dict("records")
    assert row["options"] == f"arch={TOY}" and row["state"] == "done" and row["tflops"] > 0
    for classes in (3, 5, 7):
        assert forward_flops("tiny", "ts_late", classes, {"arch": TOY}) == count_flops(
            model_from_config({"arch": TOY, "preset": "tiny"}, classes))


def test_the_default_network_stays_out_of_the_key(toy_network, tmp_path):
    recipe = runs.get_recipe("paper", "casme2", "5class", epochs=2)
    plain = RunConfig(dataset="casme2", root=str(tmp_path), task="5class", preset="tiny", device="cpu")
    named = RunConfig(dataset="casme2", root=str(tmp_path), task="5class", preset="tiny", device="cpu",
                      arch=DEFAULT_ARCH)
    toy = RunConfig(dataset="casme2", root=str(tmp_path), task="5class", preset="tiny", device="cpu", arch=TOY)
    identity = {name: runs.request_identity(c, recipe, "cpu", "<data>") for name, c in
                (("plain", plain), ("named", named), ("toy", toy))}
    assert "arch" not in identity["plain"] and identity["named"] == identity["plain"]
    assert identity["toy"] == {**identity["plain"], "arch": TOY}
    assert runs.config_options(plain) == {} and runs.config_options(toy) == {"arch": TOY}


def test_arch_fusion_and_network_options_are_checked_in_one_place(toy_network, tmp_path):
    def error(**changes) -> str:
        config = RunConfig(dataset="casme2", root=str(tmp_path), task="5class", preset="tiny", device="cpu",
                           **changes)
        with pytest.raises(ValueError) as raised:
            runs.validate(config)
        return str(raised.value)

    assert error(arch="stst") == f"unknown arch 'stst'; choose one of {', '.join(MODELS)}"
    assert list(MODELS)[0] == DEFAULT_ARCH and list(MODELS)[-1] == TOY  # the registered networks, in order
    assert error(fusion="ts_middle").startswith("unknown fusion 'ts_middle'; choose one of ts_late, ts_early")
    assert error(arch=TOY, fusion="ts_early") == (f"network {TOY} has no fusion variants; leave fusion at its "
                                                  "default (ts_late)")
    assert error(arch=TOY, temporal_branch="conv") == f"network {TOY} takes no option temporal_branch (it takes: none)"
    runs.validate(RunConfig(dataset="casme2", root=str(tmp_path), task="5class", arch=TOY))  # the toy's defaults


def test_the_data_refuses_an_input_it_does_not_have():
    data = loso.DeviceData(loop.random_prepared(subjects=1, clips=2), torch.device("cpu"))
    with pytest.raises(ValueError, match="the network reads input 'landmarks'; the data provides onset, apex, flow"):
        data.inputs(torch.arange(2), 32, names=("onset", "landmarks"))


def test_a_registered_network_trains_through_tsfmicro_run(toy_network, tmp_path, capsys, one_torch_thread):
    path = write_synthetic_params(tmp_path, "toy.yaml",
                                  synthetic={"subjects": 3, "clips_per_subject": 4, "seed": 0})
    assert main(["run", str(path), "-p", f"arch={TOY}", "--no-progress"]) == 0
    (run,) = [p for p in (tmp_path / "runs").iterdir() if p.name != "units"]
    assert run.name.startswith(f"casme2_5class_{TOY}_tiny_paper_") and load_run(run).options == {"arch": TOY}
    capsys.readouterr()
    assert main(["run", str(path), "-p", "arch=stst"]) == 2  # a parameters file names an unknown network
    assert "arch: unknown value 'stst'" in capsys.readouterr().err
