"""Face detection, crops and the preprocessing cache."""
from __future__ import annotations

import shutil

import numpy as np
import openpyxl
import pytest
from skimage import data as skdata

from tsfmicro.data import load_samples, prepare
from tsfmicro.data import faces
from tsfmicro.data.faces import FaceDetector, crop, square_box
from tsfmicro.data.frames import read_frame


@pytest.fixture(scope="session")
def detector():
    return FaceDetector()


def test_mtcnn_finds_one_face_in_the_astronaut(detector):
    (found,) = detector.detect([skdata.astronaut()])
    assert len(found) == 1
    x0, y0, x1, y1 = found[0][0]
    assert 150 < (x0 + x1) / 2 < 300 and 50 < (y0 + y1) / 2 < 200  # her face, top centre


@pytest.mark.parametrize("layout", ["casme2", "samm", "casme3", "smic"])
def test_mtcnn_finds_one_face_in_every_synthetic_onset(detector, layout, request):
    root = request.getfixturevalue(f"synthetic_{layout}_root")
    table = load_samples(layout, root, "4class" if layout == "casme3" else "3class")
    frames = [read_frame(path) for path in table.samples["onset_path"]]
    found = [faces for start in range(0, len(frames), 8) for faces in detector.detect(frames[start:start + 8])]
    assert [len(f) for f in found] == [1] * len(frames)


def test_crop_keeps_onset_and_apex_aligned():
    frame = np.zeros((100, 120, 3), np.uint8)
    frame[40:60, 50:70] = 255
    box = square_box((45, 35, 75, 65), margin=0.0)
    out = crop(frame, box, 30)
    assert out.shape == (30, 30, 3)
    assert out[15, 15].tolist() == [255, 255, 255] and out[1, 1].tolist() == [0, 0, 0]
    near_edge = crop(frame, (-10, -10, 30, 30), 16)  # outside the frame: edge repeat, no error
    assert near_edge.shape == (16, 16, 3)


def test_cache_built_once_then_reused_and_shared_by_tasks(synthetic_casme2_root, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = prepare("casme2", synthetic_casme2_root, "5class", crop_size=48, cache_dir=cache, progress=False)
    assert first.onset.shape == (len(first.samples), 48, 48, 3) and first.onset.dtype == np.uint8
    assert first.source == "SYNTHETIC" and first.is_synthetic
    assert set(first.samples["crop_method"]) == {"mtcnn"}
    assert list(cache.glob("*.npz")) == [first.cache_path]

    def no_detection(*args, **kwargs):
        raise AssertionError("the detector ran although the cache is up to date")

    monkeypatch.setattr(FaceDetector, "detect", no_detection)
    again = prepare("casme2", synthetic_casme2_root, "5class", crop_size=48, cache_dir=cache, progress=False)
    assert again.cache_path == first.cache_path
    assert np.array_equal(again.onset, first.onset) and np.array_equal(again.apex, first.apex)
    assert again.samples["clip_id"].tolist() == first.samples["clip_id"].tolist()
    three = prepare("casme2", synthetic_casme2_root, "3class", crop_size=48, cache_dir=cache, progress=False)
    assert three.cache_path == first.cache_path
    assert three.class_names == ["negative", "positive", "surprise"]
    assert len(three.samples) == len(load_samples("casme2", synthetic_casme2_root, "3class").samples)
    # the apex differs from the onset (a movement), the crops are not empty
    assert np.abs(first.apex.astype(int) - first.onset.astype(int)).mean() > 0.5


def test_cache_rebuilt_when_the_annotation_changes(synthetic_casme2_small_root, tmp_path, monkeypatch):
    root = tmp_path / "casme2"
    shutil.copytree(synthetic_casme2_small_root, root)
    cache = tmp_path / "cache"
    first = prepare("casme2", root, "5class", crop_size=32, cache_dir=cache, progress=False)
    path = root / "CASME2-coding-20190701.xlsx"
    book = openpyxl.load_workbook(path)
    book["Sheet1"].cell(2, 8).value = "4+7"  # edit an action unit: same clips, new file bytes
    book.save(path)
    calls = []
    original = FaceDetector.detect
    monkeypatch.setattr(FaceDetector, "detect", lambda self, frames: calls.append(len(frames)) or original(self, frames))
    second = prepare("casme2", root, "5class", crop_size=32, cache_dir=cache, progress=False)
    assert calls, "the cache was not rebuilt after the annotation changed"
    assert second.cache_path != first.cache_path and second.cache_key != first.cache_key
    assert len(list(cache.glob("*.npz"))) == 2


def test_cache_rebuilt_when_a_frame_file_changes(synthetic_casme2_small_root, tmp_path, monkeypatch):
    from PIL import Image

    root = tmp_path / "casme2"
    shutil.copytree(synthetic_casme2_small_root, root)
    cache = tmp_path / "cache"
    monkeypatch.setattr(FaceDetector, "detect", fixed_face)  # no MTCNN: the test is about the cache
    first = prepare("casme2", root, "5class", crop_size=32, cache_dir=cache, progress=False)
    changed = first.samples.index[0]
    apex = first.samples.loc[changed, "apex_path"]
    size = (root / apex).stat().st_size
    Image.fromarray(read_frame(apex)[::-1].copy()).save(apex, quality=60)  # a replaced frame: new bytes and size
    assert (root / apex).stat().st_size != size
    calls = []
    monkeypatch.setattr(FaceDetector, "detect", lambda self, frames: calls.append(len(frames)) or fixed_face(self, frames))
    second = prepare("casme2", root, "5class", crop_size=32, cache_dir=cache, progress=False)
    assert calls, "the cache was not rebuilt after a frame file changed"
    assert second.cache_key != first.cache_key and len(list(cache.glob("*.npz"))) == 2
    assert not np.array_equal(second.apex[changed], first.apex[changed])  # the new frame was cropped
    others = np.arange(len(first.samples)) != changed
    assert np.array_equal(second.apex[others], first.apex[others]) and np.array_equal(second.onset, first.onset)


def test_prepare_refuses_bad_arguments_before_any_work(synthetic_casme2_small_root, tmp_path, monkeypatch):
    monkeypatch.setattr(FaceDetector, "detect", lambda *a, **k: pytest.fail("detector ran"))
    cache = tmp_path / "cache"
    with pytest.raises(KeyError, match="unknown task '4class' for casme2; known: 5class"):
        prepare("casme2", synthetic_casme2_small_root, "4class", cache_dir=cache, progress=False)
    with pytest.raises(ValueError, match="crop_size must be at least 8 pixels, got 7"):
        prepare("casme2", synthetic_casme2_small_root, "5class", crop_size=7, cache_dir=cache, progress=False)
    with pytest.raises(ValueError, match="margin must be >= 0, got -0.1"):
        prepare("casme2", synthetic_casme2_small_root, "5class", margin=-0.1, cache_dir=cache, progress=False)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        prepare("casme2", tmp_path / "nowhere", "5class", cache_dir=cache, progress=False)
    assert not cache.exists()


def test_no_face_falls_back_to_precropped_then_centre(synthetic_casme2_small_root, synthetic_samm_root, tmp_path,
                                                      monkeypatch):
    monkeypatch.setattr(FaceDetector, "detect", lambda self, frames: [[] for _ in frames])
    with pytest.warns(UserWarning, match="MTCNN found no face"):
        casme2 = prepare("casme2", synthetic_casme2_small_root, "5class", crop_size=32, cache_dir=tmp_path, progress=False)
    assert set(casme2.samples["crop_method"]) == {"precropped"}  # CASME II ships Cropped/
    with pytest.warns(UserWarning, match="MTCNN found no face"):
        samm = prepare("samm", synthetic_samm_root, "5class", crop_size=32, cache_dir=tmp_path, progress=False)
    assert set(samm.samples["crop_method"]) == {"centre"}  # SAMM has no pre-cropped release


def test_use_precropped_runs_no_detector(synthetic_smic_root, synthetic_samm_root, tmp_path, monkeypatch):
    monkeypatch.setattr(faces.FaceDetector, "detect", lambda *a, **k: pytest.fail("detector ran"))
    smic = prepare("smic", synthetic_smic_root, "3class", crop_size=32, use_precropped=True, cache_dir=tmp_path,
                   progress=False)
    assert set(smic.samples["crop_method"]) == {"precropped"} and smic.onset.shape[1:] == (32, 32, 3)
    with pytest.raises(ValueError, match="no pre-cropped release"):
        prepare("samm", synthetic_samm_root, "5class", use_precropped=True, cache_dir=tmp_path, progress=False)


def test_default_cache_dir_follows_environment(monkeypatch, tmp_path):
    from tsfmicro.data import default_cache_dir

    monkeypatch.setenv("TSFMICRO_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("TSFMICRO_CACHE")
    assert default_cache_dir().parts[-2:] == (".cache", "tsfmicro")


# --- training-time frame re-selection (paper.md "Inputs", last bullet) -------------------------


def fixed_face(self, frames):
    """A detector stand-in: the same known box on every frame (no MTCNN, so the test can re-crop)."""
    return [[(fixed_box(frame.shape), 0.99)] for frame in frames]


def fixed_box(shape):
    height, width = shape[:2]
    return (width * 0.3, height * 0.25, width * 0.7, height * 0.75)


def mean_abs_difference(a, b):
    return np.abs(a.astype(np.float64) - b.astype(np.float64)).mean()


def l2_difference(onset, apex):
    """The re-selection score as defined: L2 norm of the signed difference apex - onset."""
    return np.linalg.norm(apex.astype(np.float64) - onset.astype(np.float64))


def test_frame_reselection_picks_the_most_different_pair_in_the_window(synthetic_casme2_root, tmp_path,
                                                                       monkeypatch):
    from pathlib import Path

    from tsfmicro.data import cache as cache_module
    from tsfmicro.data.frames import index_frames

    monkeypatch.setattr(FaceDetector, "detect", fixed_face)
    cache, size = tmp_path / "cache", 32
    default = prepare("casme2", synthetic_casme2_root, "5class", crop_size=size, cache_dir=cache, progress=False)
    assert default.train_onset is None and "train_onset_frame" not in default.samples
    stamp = default.cache_path.stat().st_mtime_ns

    # The paper's fractions: the synthetic clips are short (apex - onset <= 6 frames), so the
    # window is empty and the training pair is the annotated pair.
    paper = prepare("casme2", synthetic_casme2_root, "5class", crop_size=size, cache_dir=cache, progress=False,
                    reselect_frames=True)
    assert paper.cache_path != default.cache_path and paper.cache_key != default.cache_key
    assert np.array_equal(paper.train_onset, paper.onset) and np.array_equal(paper.train_apex, paper.apex)
    assert paper.samples["train_onset_frame"].tolist() == paper.samples["onset_frame"].tolist()
    assert paper.samples["train_apex_frame"].tolist() == paper.samples["apex_frame"].tolist()

    # A wider window (fraction 2: i, j up to (apex - onset) / 2) so that there is a choice;
    # the window rule is part of the cache key, so this builds a third cache.
    monkeypatch.setitem(cache_module.RESELECT_WINDOWS, "casme2", (2.0, 4))
    wide = prepare("casme2", synthetic_casme2_root, "5class", crop_size=size, cache_dir=cache, progress=False,
                   reselect_frames=True)
    assert wide.cache_path not in (default.cache_path, paper.cache_path)
    assert default.cache_path.stat().st_mtime_ns == stamp, "the default cache was rebuilt"
    assert len(list(cache.glob("*.npz"))) == 3
    # what the test clips see is unchanged
    assert wide.samples["clip_id"].tolist() == default.samples["clip_id"].tolist()
    assert np.array_equal(wide.onset, default.onset) and np.array_equal(wide.apex, default.apex)
    assert wide.train_onset.shape == wide.onset.shape and wide.train_onset.dtype == np.uint8

    windows = 0
    for row, train_onset, train_apex in zip(wide.samples.itertuples(), wide.train_onset, wide.train_apex):
        onset, apex = int(row.onset_frame), int(row.apex_frame)
        shift = int(2.0 * (apex - onset) // 4)
        i, j = int(row.train_onset_frame) - onset, apex - int(row.train_apex_frame)
        assert 0 <= i <= shift and 0 <= j <= shift and onset + i < apex - j, (row.clip_id, i, j, shift)
        frames = index_frames(Path(row.onset_path).parent)
        square = square_box(fixed_box(read_frame(row.onset_path).shape), faces.DEFAULT_MARGIN)
        crops = {number: crop(read_frame(frames[number]), square, size)
                 for number in range(onset, apex + 1) if number in frames}
        assert np.array_equal(train_onset, crops[onset + i]) and np.array_equal(train_apex, crops[apex - j])
        scores = {(a, b): l2_difference(crops[onset + a], crops[apex - b])
                  for a in range(shift + 1) for b in range(shift + 1) if onset + a < apex - b}
        chosen = l2_difference(train_onset, train_apex)
        assert chosen >= l2_difference(wide.onset[row.Index], wide.apex[row.Index])
        assert chosen == max(scores.values())
        windows += len(scores) > 1
    assert windows >= len(wide.samples) // 2  # most clips had a real choice


def test_frame_reselection_moves_away_from_a_still_apex(synthetic_casme2_small_root, tmp_path, monkeypatch):
    from tsfmicro.data import cache as cache_module

    monkeypatch.setattr(FaceDetector, "detect", fixed_face)
    monkeypatch.setitem(cache_module.RESELECT_WINDOWS, "casme2", (2.0, 4))
    root = tmp_path / "casme2"
    shutil.copytree(synthetic_casme2_small_root, root)
    samples = load_samples("casme2", root, "5class").samples
    gaps = samples["apex_frame"] - samples["onset_frame"]
    row = samples[gaps >= 2].iloc[0]
    shutil.copyfile(row["onset_path"], row["apex_path"])  # the annotated apex shows no movement at all
    data = prepare("casme2", root, "5class", crop_size=32, cache_dir=tmp_path / "cache", progress=False,
                   reselect_frames=True)
    k = data.samples.index[data.samples["clip_id"] == row["clip_id"]][0]
    assert mean_abs_difference(data.onset[k], data.apex[k]) == 0
    chosen = data.samples.loc[k, ["train_onset_frame", "train_apex_frame"]].tolist()
    assert chosen != [row["onset_frame"], row["apex_frame"]]
    assert mean_abs_difference(data.train_onset[k], data.train_apex[k]) > 0


def test_reselection_window_follows_the_authors_per_dataset():
    from tsfmicro.data.cache import reselect_shift

    # SAMM: floor(0.10 * (apex - onset)), no / 4 (the authors' samm_difference)
    assert reselect_shift("samm", 5000, 5040) == 4
    assert reselect_shift("samm", 5000, 5027) == 2
    assert reselect_shift("samm", 5000, 5009) == 0
    # CASME II and CAS(ME)^3: floor(0.15 * (apex - onset) / 4)
    assert reselect_shift("casme2", 100, 140) == 1
    assert reselect_shift("casme2", 100, 200) == 3
    assert reselect_shift("casme3", 100, 200) == 3
    # SMIC (no authors' script): CASME II's rule, ours; a MEGC2019 row uses its part's rule
    assert reselect_shift("smic", 100, 200) == 3
    assert reselect_shift("megc2019", 100, 200) == 3
    assert reselect_shift("samm", 10, 10) == 0 and reselect_shift("casme2", 10, 10) == 0  # apex = onset


def test_reselection_scores_the_signed_difference_not_the_wrapped_uint8_one():
    from tsfmicro.data.cache import best_pair, pair_score

    onset = np.full((4, 4, 3), 5, np.uint8)
    darker_apex = np.full((4, 4, 3), 3, np.uint8)     # apex - onset = -2 everywhere
    brighter_apex = np.full((4, 4, 3), 50, np.uint8)  # apex - onset = +45 everywhere
    starts, ends = {0: onset}, {0: darker_apex, 1: brighter_apex}
    # The authors' score, np.linalg.norm(apex_img - onset_img) on uint8 images, wraps
    # 3 - 5 around to 254 and would pick the barely changed apex:
    wrapped = {j: np.linalg.norm(end - onset) for j, end in ends.items()}
    assert (darker_apex - onset)[0, 0, 0] == 254 and max(wrapped, key=wrapped.get) == 0
    # ours: the L2 norm of the true difference picks the real movement
    assert pair_score(onset, darker_apex) == 48 * 2 ** 2 and pair_score(onset, brighter_apex) == 48 * 45 ** 2
    assert best_pair(starts, ends, gap=10) == (0, 1)
    # the window still bounds the choice: with apex - onset = 1 only the annotated pair is allowed
    assert best_pair(starts, ends, gap=1) == (0, 0)
