"""Issue 22: the spatial branch's depth (run option ``spatial_depth``), the identity probe
(tsfmicro.probes), the AU -> region table, and the chapter's verdict on the paper's claim
(tsfmicro/chapters/spatial_branch.py), each tested so that it can fail."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tsfmicro import probes
from tsfmicro.chapters import spatial_branch
from tsfmicro.engine import runs
from tsfmicro.engine.recipes import get_recipe
from tsfmicro.model import PRESETS, model_from_config
from tsfmicro.model.complexity import count_parameters
from tsfmicro.model.config import make_config
from tsfmicro.model.spatial import SpatialBranch
from tsfmicro.params import Params

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- the depth option
def block_parameters(dim: int, mlp_ratio: float) -> int:
    """One pre-norm ViT block of width d, MLP ratio r: two LayerNorms (2 x 2d), qkv (3d^2 + 3d),
    the attention's projection (d^2 + d), the MLP (d x rd + rd, rd x d + d)."""
    hidden = int(dim * mlp_ratio)
    return 2 * 2 * dim + (3 * dim * dim + 3 * dim) + (dim * dim + dim) + (dim * hidden + hidden) + (hidden * dim + dim)


def test_each_spatial_block_adds_the_parameters_the_arithmetic_says():
    config = PRESETS["tiny"]
    block = block_parameters(config.spatial_dim, config.spatial_mlp_ratio)
    assert block == (4 + 2 * 4) * config.spatial_dim ** 2 + 13 * config.spatial_dim  # r = 4: 12 d^2 + 13 d
    counted = {depth: count_parameters(model_from_config({"preset": "tiny", "spatial_depth": depth}, 5))
               for depth in (1, 2, 4, 6)}
    for depth, count in counted.items():
        assert count - counted[1] == (depth - 1) * block, depth
    # nothing else changes: temporal_only (no spatial branch) is the rest of the network
    assert count_parameters(model_from_config({"preset": "tiny", "fusion": "temporal_only"}, 5)) == \
        counted[2] - count_parameters(model_from_config({"preset": "tiny"}, 5).spatial)
    # the paper preset's spatial branch alone (the whole network is slow to build): 512 wide, 3.15 M a block
    paper = PRESETS["paper"]
    branch = {depth: count_parameters(SpatialBranch(make_config("paper", spatial_depth=depth))) for depth in (2, 6)}
    assert branch[6] - branch[2] == 4 * block_parameters(paper.spatial_dim, paper.spatial_mlp_ratio) == 4 * 3152384


def test_depth_two_is_bit_identical_to_the_preset():
    # the network is built from its config alone, so an equal config is the same network; the paper
    # preset's config is checked, the tiny network is built and compared weight for weight and output
    assert make_config("paper", spatial_depth=2) == PRESETS["paper"] != make_config("paper", spatial_depth=4)
    preset = "tiny"
    torch.manual_seed(0)
    default = model_from_config({"preset": preset}, 5).eval()
    torch.manual_seed(0)
    two = model_from_config({"preset": preset, "spatial_depth": 2}, 5).eval()
    torch.manual_seed(0)
    four = model_from_config({"preset": preset, "spatial_depth": 4}, 5).eval()
    assert default.config == two.config and len(default.spatial.blocks) == 2 and len(four.spatial.blocks) == 4
    left, right = default.state_dict(), two.state_dict()
    assert list(left) == list(right) and all(torch.equal(left[k], right[k]) for k in left)
    size = PRESETS[preset].image_size
    generator = torch.Generator().manual_seed(1)
    onset, apex = (torch.randn(2, 3, size, size, generator=generator) for _ in range(2))
    with torch.no_grad():
        assert torch.equal(default(onset, apex), two(onset, apex))
        assert not torch.equal(default(onset, apex), four(onset, apex))  # the comparison can fail


def test_the_depth_enters_the_run_key_only_when_it_differs_from_the_preset(tmp_path):
    config = runs.RunConfig(dataset="casme2", root=str(tmp_path), task="5class", preset="tiny", device="cpu")
    recipe = get_recipe("paper", "casme2", "5class")
    plain, two, four = (runs.request_identity(dataclasses.replace(config, spatial_depth=depth), recipe, "cpu", "<d>")
                        for depth in (None, 2, 4))
    assert plain == two and "spatial_depth" not in plain
    assert {k: v for k, v in four.items() if plain.get(k) != v} == {"spatial_depth": 4}
    assert runs.config_options(dataclasses.replace(config, spatial_depth=4)) == {"spatial_depth": 4}
    with pytest.raises(ValueError, match=r"spatial_depth must be a whole number of at least 1, got 0"):
        runs.validate(dataclasses.replace(config, spatial_depth=0))
    with pytest.raises(ValueError, match="spatial_depth must be a whole number >= 1"):
        model_from_config({"preset": "tiny", "spatial_depth": 0}, 5)


def test_the_train_command_takes_the_depth_and_refuses_zero(tmp_path, capsys):
    from tsfmicro.cli import main

    assert main(["train", "--dataset", "casme2", "--root", str(tmp_path), "--task", "5class",
                 "--spatial-depth", "0"]) == 2
    assert "spatial_depth must be a whole number of at least 1, got 0" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the identity probe
def _clips(subjects=6, clips=40, classes=5, seed=0):
    rng = np.random.default_rng(seed)
    subject = np.repeat(np.arange(subjects), clips)
    label = np.tile(np.arange(clips) % classes, subjects)  # every class in every subject: independent
    return rng, subject, label


def test_the_probe_reads_identity_from_features_that_encode_only_the_subject():
    rng, subject, _ = _clips()
    centres = rng.normal(size=(6, 16))
    features = centres[subject] + 0.5 * rng.normal(size=(len(subject), 16))
    found = probes.identity_probe(features, subject)
    assert found.accuracy > 0.9 and found.low > 0.8 and found.chance == pytest.approx(1 / 6)
    assert len(found.clips) == len(subject) and found.left_out == 0
    assert "subject bootstrap" in found.method


def test_the_probe_stays_at_chance_on_features_that_encode_only_the_class():
    # 240 held-out predictions at chance 1/6: the accuracy's standard deviation is ~0.024
    rng, subject, label = _clips()
    centres = rng.normal(size=(5, 16))
    features = 3 * centres[label] + 0.5 * rng.normal(size=(len(subject), 16))
    found = probes.identity_probe(features, subject)
    assert abs(found.accuracy - 1 / 6) < 0.1
    assert found.low <= 1 / 6 + 0.05 and found.high < 0.4


def test_the_probe_is_run_per_fold_model_on_its_own_subjects_and_paired_across_probes():
    rng, subject, _ = _clips(subjects=4, clips=10)
    centres = rng.normal(size=(4, 8))
    features = centres[subject] + 0.3 * rng.normal(size=(len(subject), 8))
    # two fold models, each holding three of the four subjects (its training subjects)
    rows = np.concatenate([np.flatnonzero(subject != 0), np.flatnonzero(subject != 3)])
    groups = np.repeat(["fold0", "fold3"], len(rows) // 2)
    found = probes.identity_probe(features[rows], subject[rows], groups)
    assert found.chance == pytest.approx(1 / 3) and set(found.clips["group"]) == {"fold0", "fold3"}
    noise = probes.identity_probe(rng.normal(size=(len(rows), 8)), subject[rows], groups)
    difference, low, high = probes.paired_difference(noise, found)
    assert difference == pytest.approx(found.accuracy - noise.accuracy) and low > 0 and low <= difference <= high
    assert probes.paired_difference(found, found) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="nothing to probe"):
        probes.identity_probe(features[:10], subject[:10])  # one subject: nothing to tell apart


# ----------------------------------------------------------------------------- the AU -> region table
def test_action_units_map_to_regions_around_the_landmarks():
    assert probes.au_regions("AU4+AU7") == ["brows", "eyes"]
    assert probes.au_regions("R12A+L10") == ["nose", "mouth"]
    assert probes.au_regions("1+2+17") == ["brows", "chin"] and probes.au_regions("AU61") == []
    assert "Facial Action Coding System" in probes.AU_REGIONS_SOURCE
    assert set(probes.AU_REGIONS.values()) == set(probes.REGION_BOXES)
    landmarks = [[40, 50], [80, 50], [60, 75], [45, 95], [75, 95]]  # eyes, nose, mouth corners (D = 40)
    x0, y0, x1, y1 = probes.region_box("mouth", landmarks)
    assert x0 < 45 and x1 > 75 and y0 < 95 < y1
    brows = probes.region_box("brows", landmarks)
    assert brows[3] < 50 and brows[1] == pytest.approx(50 - 0.85 * 40)  # above the eyes


# ----------------------------------------------------------------------------- the verdict
def _paired(differences: dict) -> pd.DataFrame:
    """reference (2) minus each depth: (difference, low, high) -> a paired_differences table."""
    rows = []
    for depth, (difference, low, high) in differences.items():
        verdict = "reference higher" if low > 0 else "reference lower" if high < 0 else "inside noise"
        rows.append({"dataset": "casme2", "task": "5class", spatial_branch.COLUMN: depth, "metric": "uf1",
                     "protocol": "fixed", "difference": difference, "low": low, "high": high, "no_spread": False,
                     "verdict": verdict, "flag": "", "interval": "paired", "resamples": 1000})
    return pd.DataFrame(rows)


def _identity(accuracy: dict, differences: dict) -> pd.DataFrame:
    return pd.DataFrame([{"depth": depth, "features": "spatial", "accuracy": accuracy[depth], "low": 0, "high": 1,
                          "chance": 1 / 3, "difference": differences.get(depth, (np.nan,) * 3)[0],
                          "d_low": differences.get(depth, (np.nan,) * 3)[1],
                          "d_high": differences.get(depth, (np.nan,) * 3)[2]} for depth in accuracy])


def test_the_verdict_says_the_claim_holds_when_deeper_branches_know_more_identity_and_recognise_worse():
    text = spatial_branch.claim_sentence(_paired({1: (0.01, -0.05, 0.07), 4: (0.12, 0.05, 0.20)}),
                                         _identity({1: 0.5, 2: 0.6, 4: 0.85}, {1: (-0.1, -0.2, 0.0),
                                                                                4: (0.25, 0.15, 0.35)}), 2)
    assert text.startswith("The paper's claim holds on this data")
    assert "4 blocks +25.0 [+15.0, +35.0] points" in text and "4 blocks -12.0 [-20.0, -5.0] points" in text
    assert "little room" not in text
    assert "Shallower branches, which the claim says nothing about, in UF1 against 2 blocks: 1 blocks -1.0 [-7.0, +5.0] points." in text


def test_the_verdict_says_not_supported_when_nothing_moves_and_names_the_ceiling():
    text = spatial_branch.claim_sentence(_paired({1: (0.0, -0.05, 0.05), 4: (0.02, -0.04, 0.08)}),
                                         _identity({1: 0.99, 2: 1.0, 4: 1.0}, {1: (-0.01, -0.03, 0.0),
                                                                               4: (0.0, 0.0, 0.0)}), 2)
    assert text.startswith("The paper's claim is not supported by these runs")
    assert "already identify the training subjects 100 % of the time" in text


def test_the_verdict_says_partly_when_only_one_half_holds_and_untested_without_deeper_depths():
    only_identity = spatial_branch.claim_sentence(_paired({4: (0.0, -0.05, 0.05)}),
                                                  _identity({2: 0.5, 4: 0.8}, {4: (0.3, 0.2, 0.4)}), 2)
    assert only_identity.startswith("The claim holds only in part") and "carry more identity, but" in only_identity
    only_worse = spatial_branch.claim_sentence(_paired({4: (0.1, 0.02, 0.2)}),
                                               _identity({2: 0.5, 4: 0.5}, {4: (0.0, -0.1, 0.1)}), 2)
    assert only_worse.startswith("The claim holds only in part") and "recognise worse, but" in only_worse
    assert "not tested here" in spatial_branch.claim_sentence(_paired({1: (0.0, -0.1, 0.1)}),
                                                               _identity({1: 0.5, 2: 0.5}, {}), 2)


# ----------------------------------------------------------------------------- the section
def test_the_section_plans_each_depth_and_shares_the_papers_depth_with_the_main_results():
    demo = Params.load(ROOT / "params" / "demo.yaml")
    planned = spatial_branch.runs(demo)
    assert [key[2] for key in planned] == [1, 2]
    assert planned[("casme2", "5class", 2)].options == ()  # the main results' run, not retrained
    assert dict(planned[("casme2", "5class", 1)].options) == {"spatial_depth": 1}
    assert planned[("casme2", "5class", 2)] in demo.planned_runs()
    paper = Params.load(ROOT / "params" / "paper.yaml")
    assert [key[2] for key in spatial_branch.runs(paper)] == [1, 2, 4, 6]
    assert spatial_branch.runs(Params.load(ROOT / "params" / "demo.yaml", overrides={"spatial_branch": None})) == {}


@pytest.mark.parametrize("depths, message", [([0, 2], "is not a non-empty list of whole numbers >= 1"),
                                             ([], "is not a non-empty list"), ([2, 2], "lists a depth twice")])
def test_a_bad_depth_list_is_one_clear_error(depths, message):
    with pytest.raises(Exception, match=message) as error:
        Params.load(ROOT / "params" / "demo.yaml", overrides={"spatial_branch": {"depths": depths}})
    assert "spatial_branch.depths" in str(error.value)


def test_the_plan_prices_each_depth_by_its_own_flops():
    from tsfmicro.engine import plan

    base = runs.RunConfig(dataset="casme2", root="", task="5class", preset="tiny", device="cpu", seeds=(0,))
    rows = {depth: plan.published_row(dataclasses.replace(base, spatial_depth=depth), 0, "cpu") for depth in (None, 4)}
    assert rows[4]["options"] == "spatial_depth=4" and rows[None]["options"] == ""
    forward = {depth: plan.forward_flops("tiny", "ts_late", 5, {"spatial_depth": depth}) for depth in (None, 4)}
    assert forward[4] > forward[None] == plan.forward_flops("tiny", "ts_late", 5, {"spatial_depth": 2})
    assert rows[4]["tflops"] / rows[None]["tflops"] == pytest.approx(forward[4] / forward[None])
    assert rows[4]["estimated_seconds"] > rows[None]["estimated_seconds"] > 0  # cpu/tiny throughput is measured


def test_the_region_sentence_says_above_or_below_the_uniform_map_only_where_the_interval_excludes_it():
    region = pd.DataFrame([
        {"depth": 2, "branch": "temporal", "share": 0.40, "low": 0.30, "high": 0.50, "uniform": 0.1},
        {"depth": 4, "branch": "temporal", "share": 0.12, "low": 0.05, "high": 0.20, "uniform": 0.1},
        {"depth": 2, "branch": "spatial", "share": 0.05, "low": 0.02, "high": 0.08, "uniform": 0.1}]).assign(
        clips=[40, 40, 30], **{"zero maps": [0, 0, 10]})
    text = spatial_branch.region_sentence(region, 2)
    assert "temporal branch: 2 blocks 40.0 [30.0, 50.0] % (above); 4 blocks 12.0 [5.0, 20.0] %, against 10.0 %" in text
    assert "spatial branch: 2 blocks 5.0 [2.0, 8.0] % (below), against 10.0 % for a uniform map (10 of 40 maps" in text
    assert "against 10.0 % for a uniform map;" in text  # the temporal branch had no zero map: none said


def test_without_the_localisation_module_the_region_probe_says_why(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tsfmicro.localisation", None)  # as if branch localisation were not merged
    assert spatial_branch.region_unavailable().startswith("tsfmicro.localisation (the Grad-CAM localisation")


# ----------------------------------------------------------------------------- frozen features
def test_branch_features_are_each_fold_models_pooled_maps_of_its_training_clips():
    from types import SimpleNamespace

    from tsfmicro.engine.evaluate import branch_features

    subjects = np.repeat(["s1", "s2", "s3"], 4)
    clip_ids = [f"c{i}" for i in range(len(subjects))]
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(2, len(subjects), 64, 64, 3), dtype=np.uint8)
    data = SimpleNamespace(samples=pd.DataFrame({"subject": subjects, "clip_id": clip_ids}),
                           onset=frames[0], apex=frames[1])
    predictions = pd.DataFrame({"seed": 0, "fold": subjects, "subject": subjects, "clip_id": clip_ids,
                                "sample_index": np.arange(len(subjects)), "true": np.arange(len(subjects)) % 5})
    models = {}

    def fold_model(subject):
        torch.manual_seed(len(models))
        models[subject] = model_from_config({"preset": "tiny"}, 5).eval()
        return models[subject]

    run = SimpleNamespace(predictions=predictions, config={"seeds": [0]}, fold_model=fold_model, path="fake")
    found = branch_features(run, data, device="cpu")
    assert list(found.clips.groupby("fold", sort=False).size()) == [8, 8, 8]
    assert (found.clips["subject"] != found.clips["held_out"]).all()  # only each fold model's training subjects
    assert {name: array.shape for name, array in found.features.items()} == {
        "temporal": (24, 64), "spatial": (24, 64), "fused": (24, 64)}
    # T-S late's fused map is the sum of the two branch maps, so its pooled tokens are the sum of the pooled maps
    np.testing.assert_allclose(found.features["fused"], found.features["temporal"] + found.features["spatial"],
                               rtol=1e-4, atol=1e-5)
    # and each row is its own fold model's: the s2 fold model's features of clip c0, computed again
    from tsfmicro.engine.augment import to_model_input

    captured = {}
    model = models["s2"]
    def keep(module, inputs, output):  # returns None: the forward pass goes on unchanged
        captured["spatial"] = output.mean(dim=(2, 3))

    handle = model.feature_layers()["spatial"].register_forward_hook(keep)
    with torch.no_grad():
        model(*(to_model_input(torch.from_numpy(frames[i][:1].copy()), 64) for i in (0, 1)))
    handle.remove()
    row = found.clips.index[(found.clips["held_out"] == "s2") & (found.clips["clip_id"] == "c0")][0]
    np.testing.assert_allclose(found.features["spatial"][row], captured["spatial"][0].numpy(), rtol=1e-5, atol=1e-6)


def test_the_synthetic_data_plants_identity_per_subject_independent_of_the_class(synthetic_casme2_root):
    """PLANTED (12 spatial branch), the data side: each subject has one look, and the classes are
    spread over the subjects (no class belongs to one subject), so identity says nothing of the class."""
    from tsfmicro.data.synthetic import MANIFEST_FILE, PLANTED

    manifest = pd.read_csv(Path(synthetic_casme2_root) / MANIFEST_FILE, dtype={"subject": str})
    looks = manifest.groupby("subject")[["photo", "mirrored"]].nunique()
    assert (looks == 1).all().all() and manifest["subject"].nunique() >= 2
    main = manifest[manifest["label"].map(manifest["label"].value_counts()) >= manifest["subject"].nunique()]
    assert (main.groupby("label")["subject"].nunique() >= 2).all()
    assert any("spatial_branch" in row["chapters"] for row in PLANTED)
