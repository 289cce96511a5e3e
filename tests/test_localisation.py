"""The pointing game and the mass share (tsfmicro.localisation): the planted region mapped into the
model-input square, the scores of known maps, the random-map baseline, zero maps counted and not
scored, the sentence both ways, and on real crops of synthetic data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from types import SimpleNamespace

from helpers import write_synthetic_params
from tsfmicro import localisation as L

S = 64


def box_mask(rows: slice, columns: slice, size: int = S) -> np.ndarray:
    mask = np.zeros((size, size), dtype=bool)
    mask[rows, columns] = True
    return mask


# ----------------------------------------------------------------------------- the region


def test_a_region_maps_through_a_hand_made_crop_box():
    # crop box 200 px square from (100, 50): a model-input pixel is 200 / 64 = 3.125 raw pixels
    crop_box = (100.0, 50.0, 300.0, 250.0)
    # raw x 150..200 -> (50 .. 100) / 3.125 = 16 .. 32; raw y 100..150 likewise
    assert np.array_equal(L.region_mask((150, 100, 200, 150), crop_box, S), box_mask(slice(16, 32), slice(16, 32)))
    # a region edge inside a pixel: that pixel overlaps it, so it is in (x 151 -> 16.32: pixel 16 still in)
    assert np.array_equal(L.region_mask((151, 100, 201, 150), crop_box, S), box_mask(slice(16, 32), slice(16, 33)))
    # partly outside the crop: clipped to the square; wholly outside: empty
    assert np.array_equal(L.region_mask((50, 40, 110, 60), crop_box, S), box_mask(slice(0, 4), slice(0, 4)))
    assert not L.region_mask((400, 300, 450, 350), crop_box, S).any()
    # a 224 px input: 200 / 224 raw pixels a pixel, so raw 150..200 -> 56 .. 112
    assert np.array_equal(L.region_mask((150, 100, 200, 150), crop_box, 224),
                          box_mask(slice(56, 112), slice(56, 112), 224))


def test_clip_masks_match_manifest_rows_and_say_why_a_region_is_unknown():
    manifest = pd.DataFrame({"subject": ["006", "006", "007"], "clip_id": ["a", "b", "c"],
                             "region_x0": [150, 150, None], "region_y0": [100, 100, None],
                             "region_x1": [200, 200, None], "region_y1": [150, 150, None]})
    box = dict(crop_x0=100.0, crop_y0=50.0, crop_x1=300.0, crop_y1=250.0)
    samples = pd.DataFrame([
        dict(subject="006", clip_id="a", **box),
        dict(subject="samm/006", clip_id="b", **box),  # a composite's prefixed subject
        dict(subject="007", clip_id="c", **box),  # no region written
        dict(subject="006", clip_id="b", crop_x0=np.nan, crop_y0=np.nan, crop_x1=np.nan, crop_y1=np.nan),
        dict(subject="008", clip_id="z", **box),  # not in the manifest
    ])
    masks, reasons = L.clip_masks(samples, manifest, S)
    assert np.array_equal(masks[0], box_mask(slice(16, 32), slice(16, 32))) and np.array_equal(masks[1], masks[0])
    assert masks[2] is None and reasons[2] == "no region in the manifest"
    assert masks[3] is None and "pre-cropped" in reasons[3]
    assert masks[4] is None and reasons[4] == "no region in the manifest"
    assert reasons[:2] == ["", ""]
    unknown, why = L.clip_masks(samples, None, S)
    assert unknown == [None] * 5 and why[0].startswith("no manifest")


def test_on_real_crops_of_synthetic_data_the_difference_frame_peaks_in_the_mapped_region(
        synthetic_casme2_root, engine_cache_dir):
    """The mapping end to end: MTCNN's crop box from the cache, the writer's region, the resize. Where
    onset and apex differ most (smoothed |apex - onset| of the 64 px crops, the model's input) must be
    inside the mapped region for every clip; a wrong box, axis or scale misses most of them, since the
    region covers ~10 % of the square."""
    from scipy import ndimage

    from tsfmicro.data import prepare

    data = prepare("casme2", synthetic_casme2_root, "5class", crop_size=S, cache_dir=engine_cache_dir,
                   progress=False, boxes=True)
    masks, reasons = L.clip_masks(data.samples, L.read_manifest(synthetic_casme2_root), S)
    assert reasons == [""] * len(masks) and len(masks) >= 20
    difference = np.abs(data.apex.astype(np.float32) - data.onset.astype(np.float32)).mean(axis=-1)
    hits = [L.peak_inside(ndimage.uniform_filter(d, 5), mask) for d, mask in zip(difference, masks)]
    area = np.mean([mask.mean() for mask in masks])
    assert np.mean(hits) >= 0.9, f"difference peaks in the region for {np.mean(hits):.0%} of clips"
    assert area < 0.3  # the test means something: a random point lands inside far less often


def test_an_old_cache_without_crop_boxes_gives_no_region_until_prepare_is_asked_for_boxes(
        synthetic_casme2_root, tmp_path):
    from tsfmicro.data import prepare
    from tsfmicro.data.cache import CROP_BOX_COLUMNS

    cache = tmp_path / "cache"
    data = prepare("casme2", synthetic_casme2_root, "5class", crop_size=S, cache_dir=cache, progress=False)
    assert set(CROP_BOX_COLUMNS) <= set(data.samples.columns)  # kept in every new cache
    with np.load(data.cache_path) as stored:  # as written before the boxes were kept
        older = {name: stored[name] for name in stored.files if name not in ("boxes", "frame_shapes")}
    with open(data.cache_path, "wb") as handle:
        np.savez(handle, **older)
    manifest = L.read_manifest(synthetic_casme2_root)
    old = prepare("casme2", synthetic_casme2_root, "5class", crop_size=S, cache_dir=cache, progress=False)
    masks, reasons = L.clip_masks(old.samples, manifest, S)
    assert masks == [None] * len(masks) and "boxes=True" in reasons[0]
    rebuilt = prepare("casme2", synthetic_casme2_root, "5class", crop_size=S, cache_dir=cache, progress=False,
                      boxes=True)
    assert rebuilt.cache_path == data.cache_path and np.array_equal(rebuilt.apex, data.apex)
    pd.testing.assert_frame_equal(rebuilt.samples, data.samples)
    assert all(mask is not None for mask in L.clip_masks(rebuilt.samples, manifest, S)[0])


# ----------------------------------------------------------------------------- one map


def test_a_map_concentrated_on_the_region_hits_with_all_its_mass():
    mask = box_mask(slice(10, 20), slice(30, 40))
    cam = np.zeros((S, S), dtype=np.float32)
    cam[12:18, 32:38] = 0.5
    cam[15, 35] = 1.0
    assert L.peak_inside(cam, mask) is True
    assert L.mass_inside(cam, mask) == pytest.approx(1.0)
    assert not L.peak_inside(cam, ~mask) and L.mass_inside(cam, ~mask) == pytest.approx(0.0)


def test_a_uniform_map_puts_the_area_share_of_its_mass_inside():
    mask = box_mask(slice(0, 16), slice(0, 32))
    assert L.mass_inside(np.full((S, S), 0.3), mask) == pytest.approx(mask.mean()) == pytest.approx(0.125)


def test_ties_are_broken_at_the_plateau_middle():
    # a plateau of equal maxima over columns 0..9 of row 5: its centroid is at column 4.5, the peak the
    # first nearest tied pixel (column 4); so a region over columns 3..6 is hit, one over 0..1 is not
    cam = np.zeros((S, S))
    cam[5, :10] = 1.0
    assert L.peak(cam) == (5, 4)
    assert L.peak_inside(cam, box_mask(slice(5, 6), slice(3, 7)))
    assert not L.peak_inside(cam, box_mask(slice(5, 6), slice(0, 2)))


def test_a_zero_map_is_counted_not_scored():
    zero = np.zeros((S, S), dtype=np.float32)
    mask = box_mask(slice(0, 8), slice(0, 8))
    assert L.is_zero(zero)
    with pytest.raises(ValueError, match="count it"):
        L.peak_inside(zero, mask)
    with pytest.raises(ValueError, match="count it"):
        L.mass_inside(zero, mask)
    hit = np.zeros((S, S), dtype=np.float32)
    hit[2, 2] = 1
    scores = L.score_maps(np.stack([zero, hit]), [mask, mask], ["s1", "s2"])
    assert scores["zero"].tolist() == [True, False]
    assert np.isnan(scores.loc[0, "hit"]) and np.isnan(scores.loc[0, "mass"]) and scores.loc[1, "hit"] == 1
    summary = L.summarise(scores)
    assert (summary["clips"], summary["zero_maps"], summary["scored"]) == (2, 1, 1)
    assert summary["hit_rate"] == 1.0  # the zero map is not a miss
    text = L.sentence("temporal", summary)
    assert "1 of 2 maps was zero" in text and "left out" in text


# ----------------------------------------------------------------------------- many maps


def _clips(count: int, subjects: int, seed: int = 0):
    """Clips with a random 12 x 12 region each (area share 144 / 4096 = 3.5 %)."""
    rng = np.random.default_rng(seed)
    corners = rng.integers(0, S - 12, size=(count, 2))
    masks = [box_mask(slice(r, r + 12), slice(c, c + 12)) for r, c in corners]
    return masks, [f"s{k % subjects}" for k in range(count)], rng


def test_maps_on_their_regions_beat_both_baselines_and_random_maps_do_not():
    masks, subjects, rng = _clips(60, 6)
    on_region = np.stack([np.where(m, 1.0, 0.05) + 0.01 * rng.random((S, S)) for m in masks])
    good = L.summarise(L.score_maps(on_region, masks, subjects))
    assert good["hit_rate"] == 1 and good["area_share"] == pytest.approx(144 / 4096)
    assert good["hit_minus_random"][1] > 0.8 and good["hit_minus_shuffled"][1] > 0.8
    assert good["mass_interval"][0] > good["area_share"]
    text = L.sentence("temporal", good)
    assert "100 % of the 60 clips" in text and "above a random map's 4 %" in text and "no map was zero" in text
    # every clip a hit: every resample gives 100 %, which the page says instead of "[100, 100]"
    assert "clips with a map (every subject resample alike)" in text and "[100, 100]" not in text
    shown = L.display_table(pd.DataFrame([L.table_row("temporal", good)]))
    assert shown["pointing game % [95 % CI]"].tolist() == ["100 (every subject resample alike)"]

    noise = rng.random((60, S, S))  # a map that knows nothing: its peak lands inside ~3.5 % of the time
    blind = L.summarise(L.score_maps(noise, masks, subjects))
    low, high = blind["hit_minus_random"][1:]
    assert low <= 0 <= high and abs(blind["mass_share"] - blind["area_share"]) < 0.01
    assert "indistinguishable from a random map's" in L.sentence("spatial", blind)


def test_a_map_that_always_points_at_the_same_place_does_not_beat_other_clips_regions():
    # every region holds the point (30, 30); a map always peaking there hits every clip, far above the
    # random map, but no better than against any other clip's region: it does not follow the movement
    rng = np.random.default_rng(1)
    masks = [box_mask(slice(30 - r, 31 + r), slice(30 - c, 31 + c)) for r, c in rng.integers(2, 8, size=(30, 2))]
    fixed = np.zeros((30, S, S))
    fixed[:, 30, 30] = 1
    summary = L.summarise(L.score_maps(fixed, masks, [f"s{k % 5}" for k in range(30)]))
    assert summary["hit_rate"] == 1 and summary["hit_minus_random"][1] > 0.5
    assert summary["shuffled_hit"] == 1 and summary["hit_minus_shuffled"] == (0.0, 0.0, 0.0)
    assert "indistinguishable from the 100 % it scores against other clips' regions" in L.sentence("temporal", summary)


def test_a_map_pointing_away_reads_below_the_baseline():
    masks, subjects, rng = _clips(40, 5, seed=2)
    away = np.stack([np.where(m, 0.0, 1.0) * rng.random((S, S)) for m in masks])
    summary = L.summarise(L.score_maps(away, masks, subjects))
    assert summary["hit_rate"] == 0 and summary["hit_minus_random"][2] < 0
    assert "below a random map's" in L.sentence("spatial", summary)


def test_the_interval_resamples_whole_subjects_and_is_seeded():
    masks, subjects, _ = _clips(20, 4, seed=3)
    cams = np.stack([np.where(m, 1.0, 0.0) for m in masks])
    cams[:5] = np.where(masks[0], 0.0, 1.0)  # subject s0..s4's first clips miss: subjects differ
    summary = L.summarise(L.score_maps(cams, masks, subjects))
    low, high = summary["hit_interval"]
    assert low < summary["hit_rate"] < high  # whole subjects drawn: their hit rates differ, so the interval has width
    again = L.summarise(L.score_maps(cams, masks, subjects))
    assert again["hit_interval"] == summary["hit_interval"]  # seeded


def test_no_scored_clip_gives_nan_and_a_sentence_that_says_so():
    zero = np.zeros((2, S, S))
    summary = L.summarise(L.score_maps(zero, [box_mask(slice(0, 4), slice(0, 4))] * 2, ["a", "b"]))
    assert summary["scored"] == 0 and np.isnan(summary["hit_rate"])
    assert L.sentence("spatial", summary) == ("The spatial branch gave no map to score: 2 of 2 maps were zero (the "
                                              "spatial branch found no position that raises the predicted class's "
                                              "score more than another) and are left out.")
    row = L.table_row("spatial", summary)
    assert row["zero maps"] == 2 and np.isnan(row["pointing game %"])
    assert L.display_table(pd.DataFrame([row]))["pointing game % [95 % CI]"].tolist() == ["-"]


# ----------------------------------------------------------------------------- Grad-CAM of known models


class EnergyModel(torch.nn.Module):
    """TSFmicro's interface (``model(onset, apex)``, ``feature_layers()``, ``config.image_size``) with a
    "temporal" branch whose output map is local energy, pooled over 4 x 4 pixels: of the motion
    |apex - onset| (``sees_motion``), or of the onset's own contrast |onset - its mean| (a model whose
    temporal input ignores the apex: it sees only the onset). The head scores class 0 by the map's mean
    (positive weights), class 1 by a constant below it, so class 0 is predicted and Grad-CAM of class 0
    is the map itself: a known answer for where it points."""

    def __init__(self, sees_motion: bool):
        super().__init__()
        self.sees_motion = sees_motion
        self.config = SimpleNamespace(image_size=S)
        self.temporal = torch.nn.Sequential(torch.nn.AvgPool2d(4), torch.nn.Conv2d(3, 2, 1))
        with torch.no_grad():
            self.temporal[1].weight.fill_(0.5)
            self.temporal[1].bias.zero_()

    def feature_layers(self):
        return {"temporal": self.temporal}

    def forward(self, onset, apex):
        source = (apex - onset).abs() if self.sees_motion else (onset - onset.mean(dim=(2, 3), keepdim=True)).abs()
        energy = self.temporal(source).mean(dim=(1, 2, 3))
        return torch.stack([energy, torch.full_like(energy, -1.0)], dim=1)


class ModelRun:
    """The part of a Run that gradcam.test_maps reads: the first seed's predictions and a fold model."""

    def __init__(self, data, model):
        self.model = model
        self.predictions = pd.DataFrame({"seed": 0, "subject": data.samples["subject"],
                                         "clip_id": data.samples["clip_id"], "sample_index": np.arange(len(data.samples)),
                                         "true": 0, "pred_fixed": 0})

    def fold_model(self, subject):
        return self.model


@pytest.fixture(scope="module")
def crops(synthetic_casme2_root, engine_cache_dir):
    from tsfmicro.data import prepare

    data = prepare("casme2", synthetic_casme2_root, "5class", crop_size=S, cache_dir=engine_cache_dir,
                   progress=False, boxes=True)
    return data, L.read_manifest(synthetic_casme2_root)


def localise(run, data, manifest, branch="temporal"):
    from tsfmicro import gradcam

    clips, maps = gradcam.test_maps(run, data, branches=(branch,), batch=8)
    masks, reasons = L.clip_masks(data.samples.iloc[clips["sample_index"].to_numpy()], manifest, S)
    assert reasons == [""] * len(masks)
    return L.summarise(L.score_maps(maps[branch], masks, clips["subject"]))


def test_grad_cam_of_a_model_that_sees_the_motion_finds_the_region_and_one_that_sees_the_onset_does_not(crops):
    """Through the whole chain (cached crops, gradcam.test_maps, the mapped regions, the scores).

    Motion model: its map is the pooled motion energy, which peaks in the moving region for every clip
    (test above); required: pointing game >= 80 % and its interval's difference to both baselines above
    0. A blind map would need >= 80 % hits where its chance is the area share (~10 %): with ~20 clips,
    P(Bin(20, 0.1) >= 16) < 1e-11.
    Onset model: it ignores the apex, and the writer draws the region independently of the onset's
    look (the neutral face: only the class picks the region, and the class is not in the onset); so its
    pointing game must not beat the other clips' regions (the difference's interval reaches 0), which a
    map blind to the movement exceeds only by the bootstrap's 2.5 % upper tail."""
    data, manifest = crops
    motion = localise(ModelRun(data, EnergyModel(sees_motion=True)), data, manifest)
    assert motion["zero_maps"] == 0 and motion["hit_rate"] >= 0.8, motion
    assert motion["hit_minus_random"][1] > 0 and motion["hit_minus_shuffled"][1] > 0
    assert motion["mass_minus_random"][1] > 0 and motion["mass_minus_shuffled"][1] > 0
    onset = localise(ModelRun(data, EnergyModel(sees_motion=False)), data, manifest)
    assert onset["hit_minus_shuffled"][1] <= 0, onset
    assert "indistinguishable from the" in L.sentence("temporal", onset) or "below" in L.sentence("temporal", onset)


def test_grad_cam_of_a_trained_onset_only_model_does_not_beat_the_baselines(crops, synthetic_casme2_root,
                                                                         engine_cache_dir, tmp_path, one_torch_thread):
    """The issue's negative test on a trained network: spatial_only sees only the onset, where nothing
    of the movement is (tsfmicro.data.synthetic.PLANTED), so its spatial map cannot know where the
    clip moved. Its pointing game must not beat a random map (the difference's subject-bootstrap
    interval is not above 0) nor the other clips' regions. A map independent of the region beats the
    random map only through a fixed preference for some part of the face, and the other clips' regions
    only with the bootstrap's 2.5 % upper tail. Seen: 0 % hits against a random map's ~10 %."""
    from tsfmicro.engine import RunConfig, train

    data, manifest = crops
    run = train(RunConfig(dataset="casme2", root=synthetic_casme2_root, task="5class", fusion="spatial_only",
                          preset="tiny", recipe="paper", epochs=6, batch_size=4, seeds=(0,), device="cpu",
                          out=tmp_path, cache_dir=engine_cache_dir), progress=False)
    onset = localise(run, data, manifest, branch="spatial")
    print(L.sentence("spatial", onset))
    assert onset["clips"] == len(data.samples)
    assert not onset["hit_minus_random"][1] > 0 and not onset["hit_minus_shuffled"][1] > 0


# ----------------------------------------------------------------------------- the Grad-CAM page


def page_params(tmp_path, **changes):
    return write_synthetic_params(tmp_path, "page.yaml", **{
        "epochs": 2, "gradcam": {"dataset": "casme2", "task": "5class", "examples": 1},
        "synthetic": {"subjects": 3, "clips_per_subject": 5, "seed": 0}, **changes})


def test_the_gradcam_page_scores_every_test_clip_of_both_branches_on_synthetic_data(tmp_path, one_torch_thread):
    from tsfmicro.study import Study

    page = Study.load(page_params(tmp_path)).chapter("gradcam")
    table = page.localisation
    (run,) = page.runs.values()
    clips = int((run.predictions["seed"] == 0).sum())
    assert table["branch"].tolist() == ["temporal", "temporal_stage1", "spatial"] and (table["clips"] == clips).all()
    assert list(table.columns) == L.TABLE_COLUMNS and page.localisation is table  # computed once
    for row in table.to_dict("records"):
        scored = row["clips"] - row["zero maps"]
        if scored:  # a percentage of the scored clips, inside its interval
            assert row["pointing low %"] <= row["pointing game %"] <= row["pointing high %"]
            assert 0 < row["random map %"] == row["area share %"] < 50
    text = page.localisation_summary()
    assert "The temporal map's peak lies in the planted region" in text or "The temporal branch gave no map" in text
    assert text.endswith(f"Intervals: {L.INTERVAL}.")
    assert "The temporal first-stage map's peak" in text or "The temporal first-stage branch gave no map" in text
    assert page.localisation_table()["branch"].tolist() == ["temporal", "temporal_stage1", "spatial"]


def test_on_data_without_a_manifest_the_page_says_the_region_is_unknown_and_scores_nothing(tmp_path):
    from tsfmicro.data import write_synthetic
    from tsfmicro.data.synthetic import MANIFEST_FILE
    from tsfmicro.study import Study

    root = write_synthetic("casme2", tmp_path / "casme2", subjects=2, clips_per_subject=3, seed=0)
    (root / MANIFEST_FILE).unlink()  # as a real dataset: nobody recorded where the face moved
    path = page_params(tmp_path, data_source="real", roots={"casme2": str(root)})
    page = Study.load(path).chapter("gradcam")
    assert page.localisation.empty and list(page.localisation.columns) == L.TABLE_COLUMNS
    assert "is not known" in page.localisation_summary()
    assert not (tmp_path / "runs").exists()  # nothing trained to say so


def test_without_gradcam_examples_the_page_has_no_run_and_says_why(tmp_path):
    from tsfmicro.study import Study

    page = Study.load(page_params(tmp_path, gradcam={"dataset": "casme2", "task": "5class", "examples": 0})
                      ).chapter("gradcam")
    assert page.localisation.empty and "examples: is 0" in page.localisation_summary()
    assert not (tmp_path / "runs").exists()


def test_a_briefly_trained_ts_late_points_at_the_region_in_its_temporal_first_stage_and_an_untrained_one_does_not(
        crops, synthetic_casme2_root, engine_cache_dir, tmp_path, one_torch_thread):
    """The known answer on a trained network: T-S late, 12 epochs of batch 4 (~70 steps a fold) on 4
    subjects x 6 clips, LOSO. Its temporal branch's first-stage map (gradcam.TEMPORAL_STAGE1, 16 x 16)
    must point at each clip's own region: pointing game >= 50 % with the subject-bootstrap interval of
    its difference to the random map and to the other clips' regions above 0. A map independent of
    the region hits with probability ~ the area share (~11 %): P(Bin(22, 0.11) >= 11) ~ 1e-5. Seen:
    77 % [55, 100] against 11 % and 27 %; 50 % already after 6 epochs.
    Control: the same network untrained (random weights) does not beat the random map (seen: 0 %),
    so the pointing is learned, not a property of the difference frame's shape. (The branch's output
    map, 4 x 4 after retention over every position, does not localise: seen 32 % against 29 % for
    other clips' regions; the page shows it beside the first stage.)"""
    from tsfmicro.engine import RunConfig, train
    from tsfmicro.gradcam import TEMPORAL_STAGE1
    from tsfmicro.model import build_model

    data, manifest = crops
    run = train(RunConfig(dataset="casme2", root=synthetic_casme2_root, task="5class", fusion="ts_late",
                          preset="tiny", recipe="paper", epochs=12, batch_size=4, seeds=(0,), device="cpu",
                          out=tmp_path, cache_dir=engine_cache_dir), progress=False)
    trained = localise(run, data, manifest, branch=TEMPORAL_STAGE1)
    print(L.sentence(TEMPORAL_STAGE1, trained))
    assert trained["hit_rate"] >= 0.5 and trained["hit_minus_random"][1] > 0 and trained["hit_minus_shuffled"][1] > 0

    torch.manual_seed(0)
    untrained = localise(ModelRun(data, build_model("tiny", num_classes=5, fusion="ts_late").eval()), data, manifest,
                         branch=TEMPORAL_STAGE1)
    assert not untrained["hit_minus_random"][1] > 0, L.sentence(TEMPORAL_STAGE1, untrained)
