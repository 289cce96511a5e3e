"""The flow input (tsfmicro.data.flow): TV-L1 of a known movement, strain of a known deformation,
the 28 x 28 normalised maps, the cache beside the face crops, and the engine feeding it only to
networks that name it."""
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

import test_engine_loop as loop  # its random PreparedData (module import: not re-collected)
from tsfmicro.data import flow
from tsfmicro.engine import RunConfig, train
from tsfmicro.engine import loso, runs
from tsfmicro.model import MODELS, register_model


def textured(seed=0, size=100):
    """A smooth random RGB texture (uint8): TV-L1 finds a unique movement in it."""
    import cv2

    noise = np.random.default_rng(seed).uniform(0, 255, (size, size, 3)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 2.0)
    return ((smooth - smooth.min()) / (smooth.max() - smooth.min()) * 255).astype(np.uint8)


def test_opencv_has_its_contrib_modules():
    # The install (Makefile, environment.yml) puts the contrib build's cv2 on disk last.
    import cv2

    assert hasattr(cv2, "optflow") and hasattr(cv2.optflow, "DualTVL1OpticalFlow_create")


@pytest.mark.parametrize("dx, dy", [(3, 0), (0, -2), (2, 1)])
def test_flow_of_a_shifted_texture_is_the_shift(dx, dy):
    image = textured()
    onset = image[10:74, 10:74]
    apex = image[10 - dy:74 - dy, 10 - dx:74 - dx]  # the content moved by (dx, dy): right and down are +
    field = flow.tvl1_flow(onset, apex)
    assert field.shape == (64, 64, 2) and field.dtype == np.float32
    inside = field[8:-8, 8:-8]  # away from the border, where the content left the frame
    assert np.median(inside[..., 0]) == pytest.approx(dx, abs=0.1)
    assert np.median(inside[..., 1]) == pytest.approx(dy, abs=0.1)
    assert np.mean(np.abs(inside[..., 0] - dx) < 0.5) > 0.9 and np.mean(np.abs(inside[..., 1] - dy) < 0.5) > 0.9
    # the border too: only where content enters the frame may the flow miss by a few pixels (the
    # frames reach OpenCV in the range it expects: with 0..255 floats it scaled them again and the
    # border flow reached hundreds of pixels)
    error = np.hypot(field[..., 0] - dx, field[..., 1] - dy)
    assert np.percentile(error, 99) < 1.0 and error.max() < 10


def test_flow_of_identical_frames_is_zero_and_the_frames_must_match():
    image = textured(1)[:48, :48]
    assert np.abs(flow.tvl1_flow(image, image)).max() < 1e-3
    with pytest.raises(ValueError, match="differ in size"):
        flow.tvl1_flow(image, image[:40])


def test_strain_of_a_linear_deformation_is_the_formula():
    rows, columns = np.mgrid[0:20, 0:30].astype(np.float64)  # y, x
    a, b, c, d = 0.3, -0.2, 0.5, 0.1  # u = a x + b y, v = c x + d y (+ a translation)
    u, v = a * columns + b * rows + 4.0, c * columns + d * rows - 1.5
    expected = np.sqrt(a ** 2 + d ** 2 + 0.5 * (b + c) ** 2)
    np.testing.assert_allclose(flow.optical_strain(u, v), expected, rtol=1e-12)  # border included: exact
    # a rotation (b = -c) has no shear, a translation no strain at all
    np.testing.assert_allclose(flow.optical_strain(-0.4 * rows, 0.4 * columns), 0.0, atol=1e-12)
    np.testing.assert_allclose(flow.optical_strain(np.full((5, 5), 2.0), np.full((5, 5), -3.0)), 0.0, atol=0)


def test_maps_are_resized_to_28_and_scaled_per_channel():
    rng = np.random.default_rng(2)
    maps = np.stack([rng.normal(0, 3, (64, 64)), rng.normal(5, 1, (64, 64)), np.full((64, 64), 7.0)])
    out = flow.normalise_maps(maps)
    assert out.shape == (3, 28, 28) and out.dtype == np.float32
    for channel in range(2):
        assert out[channel].min() == 0.0 and out[channel].max() == pytest.approx(1.0)
    assert not out[2].any()  # a constant map: 0, not a division by zero
    # area resize then min-max: a map that is an affine image of another gives the same channel
    np.testing.assert_allclose(flow.normalise_maps(maps[:1] * 4 - 9), out[:1], atol=1e-6)

    image = textured(3)
    clip = flow.flow_image(image[10:74, 10:74], image[10:74, 8:72])
    assert clip.shape == (3, 28, 28) and clip.min() >= 0 and clip.max() <= 1


def test_settings_are_ipol_and_enter_the_key():
    settings = flow.FlowSettings()
    assert (settings.tau, settings.lambda_, settings.theta, settings.warps, settings.epsilon, settings.scale_step) \
        == (0.25, 0.15, 0.3, 5, 0.01, 0.5)
    assert settings.inner_iterations * settings.outer_iterations == 300 and settings.median_filtering == 1
    # IPOL's cap: the coarsest of N levels (zoom 0.5) at least 16 px: 224 px -> 5, 64 px -> 3
    assert settings.scales(224, 224) == 5 and settings.scales(64, 64) == 3 and settings.scales(10, 10) == 1
    with pytest.raises(Exception):
        settings.tau = 0.3  # frozen: the key describes the maps
    assert flow.FlowSettings(theta=0.2).key() != settings.key() == flow.FlowSettings().key()


def small_prepared(tmp_path, clips=4):
    """PreparedData of moving textures, its 'face-crop cache' file in tmp_path."""
    data = loop.random_prepared(subjects=2, clips=clips // 2, size=48)
    onsets, apexes = [], []
    for k in range(len(data.samples)):
        image = textured(10 + k, 80)
        onsets.append(image[10:58, 10:58])
        apexes.append(image[10:58, 10 - (k % 3):58 - (k % 3)])
    return replace(data, onset=np.stack(onsets), apex=np.stack(apexes), cache_path=tmp_path / "casme2_48px_mtcnn_0.npz")


def test_flow_file_is_beside_the_crops_reused_and_keyed_by_the_settings(tmp_path, monkeypatch):
    data = small_prepared(tmp_path)
    first = flow.flow_inputs(data)
    assert first.shape == (4, 3, 28, 28) and first.dtype == np.float32
    path = flow.flow_cache_path(data.cache_path)
    assert path.parent == tmp_path and path.name.startswith("casme2_48px_mtcnn_0_flow_") and path.is_file()

    computed = []
    real = flow.flow_image
    monkeypatch.setattr(flow, "flow_image", lambda *args: computed.append(1) or real(*args))
    np.testing.assert_array_equal(flow.flow_inputs(data), first)  # read back, nothing computed
    assert computed == []
    # another view of the same crops (rows reordered, one dropped) finds its pairs by their bytes
    order = [2, 0, 1]
    view = replace(data, samples=data.samples.iloc[order].reset_index(drop=True), onset=data.onset[order],
                   apex=data.apex[order])
    np.testing.assert_array_equal(flow.flow_inputs(view), first[order])
    assert computed == []
    # a changed crop is a new pair: only it is computed, and added to the file
    moved = replace(data, apex=np.concatenate([data.apex[:3], np.roll(data.apex[3:], 1, axis=1)]))
    flow.flow_inputs(moved)
    assert len(computed) == 1
    flow.flow_inputs(moved)
    assert len(computed) == 1
    # another setting: another file, computed afresh
    other = flow.FlowSettings(theta=0.2)
    flow.flow_inputs(data, other)
    assert flow.flow_cache_path(data.cache_path, other) != path and len(computed) == 5
    # a damaged file is rebuilt, not fatal
    path.write_bytes(b"not a zip")
    np.testing.assert_array_equal(flow.flow_inputs(data), first)


class FlowNet(nn.Module):
    """A toy network on the flow input, registered in this file only."""

    inputs = ("flow",)
    image_size = 64

    def __init__(self, num_classes: int):
        super().__init__()
        self.features = nn.Conv2d(3, 4, 3, padding=1)
        self.classifier = nn.Linear(4, num_classes)
        self.seen = []

    def forward(self, flow_input: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(flow_input.shape))
        return self.classifier(self.features(flow_input).mean(dim=(2, 3)))

    def feature_layers(self):
        return {"features": self.features}


@pytest.fixture
def flow_network():
    register_model("toy_flow")(lambda preset, num_classes, fusion: FlowNet(num_classes))
    yield "toy_flow"
    MODELS.pop("toy_flow")


def test_the_flow_input_is_computed_only_for_networks_that_name_it(tmp_path, monkeypatch):
    data = small_prepared(tmp_path)
    calls = []
    real = flow.flow_inputs
    monkeypatch.setattr(flow, "flow_inputs", lambda *args, **kw: calls.append(1) or real(*args, **kw))
    device_data = loso.DeviceData(data, torch.device("cpu"))
    index = torch.tensor([0, 2])
    onset, apex = device_data.inputs(index, 32, names=("onset", "apex"))
    assert onset.shape == (2, 3, 32, 32) and calls == []  # TSFmicro's inputs: no flow computed
    (first,) = device_data.inputs(index, 32, names=("flow",))
    (again,) = device_data.inputs(torch.tensor([1]), 32, train=True, names=("flow",))
    assert first.shape == (2, 3, 28, 28) and again.shape == (1, 3, 28, 28) and calls == [1]  # once per data
    np.testing.assert_array_equal(first.numpy(), real(data)[[0, 2]])
    with pytest.raises(ValueError, match="the data provides onset, apex, flow"):
        device_data.inputs(index, 32, names=("landmarks",))

    reselected = replace(data, train_onset=data.onset, train_apex=data.apex)
    with pytest.raises(ValueError, match="without frame_reselection"):
        loso.DeviceData(reselected, torch.device("cpu"), frame_reselection=True).inputs(index, 32, train=True,
                                                                                        names=("flow",))


def test_flow_settings_enter_only_the_keys_of_networks_that_read_flow(flow_network, tmp_path):
    def identity(arch):
        config = RunConfig(dataset="casme2", root=tmp_path, task="5class", preset="tiny", seeds=(0,), arch=arch)
        return runs.request_identity(config, runs.get_recipe(config.recipe, "casme2", "5class"), "cpu", "k")

    assert runs.network_inputs(RunConfig(dataset="casme2", root=tmp_path, task="5class")) == ("onset", "apex")
    assert "flow" not in identity("tsfmicro")
    assert identity(flow_network)["flow"] == flow.FlowSettings().key()


def test_a_flow_network_trains_end_to_end(flow_network, synthetic_casme2_root, engine_cache_dir, tmp_path,
                                          one_torch_thread):
    config = RunConfig(dataset="casme2", root=synthetic_casme2_root, task="5class", preset="tiny", epochs=2,
                       batch_size=8, seeds=(0,), device="cpu", out=tmp_path, cache_dir=engine_cache_dir,
                       arch=flow_network)
    run = train(config, progress=False)
    assert set(run.predictions["epoch_fixed"]) == {2} and len(run.predictions) > 0
    # the flow file was written beside the face crops the run read (named after them), once, by the
    # request (the session's cache folder may hold other tests' crops and flow files too)
    crops = run.provenance["data"]["cache_key"][:16]  # the crop file's name holds its key's first 16 hex digits
    written = [p for p in engine_cache_dir.glob("casme2_*_flow_*.npz") if f"_{crops}_flow_" in p.name]
    assert len(written) == 1, (crops, list(engine_cache_dir.glob("casme2_*")))
