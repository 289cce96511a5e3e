"""Frames beyond the annotated onset and apex: shifted annotations and the automatic apex
(tsfmicro.data.moved_frames), kept by the face-crop cache."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tsfmicro.data import cache as cache_module
from tsfmicro.data import load_samples, prepare
from tsfmicro.data.faces import DEFAULT_MARGIN, FaceDetector, crop, square_box
from tsfmicro.data.frames import index_frames, read_frame
from tsfmicro.data.moved_frames import (
    check_shifts,
    frame_difference,
    pick_automatic_apex,
    shift_steps,
    shifted_frame,
)


def fixed_face(self, frames):
    """A detector stand-in: one known box on every frame (no MTCNN; the test can re-crop)."""
    return [[(fixed_box(frame.shape), 0.99)] for frame in frames]


def fixed_box(shape):
    height, width = shape[:2]
    return (width * 0.3, height * 0.25, width * 0.7, height * 0.75)


def cut(path, size):
    frame = read_frame(path)
    return crop(frame, square_box(fixed_box(frame.shape), DEFAULT_MARGIN), size)


@pytest.fixture
def casme2_copy(synthetic_casme2_small_root, tmp_path, monkeypatch):
    monkeypatch.setattr(FaceDetector, "detect", fixed_face)
    root = tmp_path / "casme2"
    shutil.copytree(synthetic_casme2_small_root, root)
    return root


# ------------------------------------------------------------------------------ the rule
def test_shift_steps_are_a_percentage_of_the_clip_rounded_half_up_and_at_least_one_frame():
    assert shift_steps(0, 100, 160) == 0
    assert shift_steps(5, 100, 160) == 3 and shift_steps(-5, 100, 160) == -3  # 3.0 frames
    assert shift_steps(2.5, 100, 160) == 2  # 1.5 rounds up
    assert shift_steps(1, 100, 160) == 1 and shift_steps(-1, 100, 130) == -1  # 0.6, 0.3 -> at least 1
    assert shift_steps(50, 10, 10) == 1  # a one-frame clip: one step, then clamped


def test_shifted_frames_are_clamped_to_the_clip_and_the_onset_stays_before_the_apex():
    onset, apex, offset = 100, 110, 120  # length 20: 10 % = 2 frames, 50 % = 10
    assert shifted_frame("apex", 10, onset, apex, offset) == 112
    assert shifted_frame("apex", -10, onset, apex, offset) == 108
    assert shifted_frame("apex", 100, onset, apex, offset) == 120  # clamped to the offset
    assert shifted_frame("apex", -100, onset, apex, offset) == 100  # clamped to the onset
    assert shifted_frame("onset", 10, onset, apex, offset) == 102
    assert shifted_frame("onset", 100, onset, apex, offset) == 109  # apex - 1
    assert shifted_frame("onset", -10, onset, apex, offset) == 100  # no frame before the onset
    assert shifted_frame("onset", 10, 100, 100, 120) == 100  # apex = onset: the onset cannot move
    assert shifted_frame("apex", 10, 100, 100, 120) == 102  # ... but the apex can
    with pytest.raises(ValueError, match="unknown shift kind 'offset'; choose one of apex, onset"):
        shifted_frame("offset", 10, onset, apex, offset)


def test_shifts_must_be_percentages_and_zero_is_always_evaluated():
    assert check_shifts([5, -5, 1]) == (-5.0, 0.0, 1.0, 5.0)
    assert check_shifts([0, 2.5, 2.5]) == (0.0, 2.5)
    for bad in ([150], [-101], ["5"], [True], [float("nan")]):
        with pytest.raises(ValueError, match="not percentages of the onset-offset length in \\[-100, 100\\]"):
            check_shifts(bad)
    assert check_shifts([]) == ()  # no shifts
    with pytest.raises(ValueError, match="must be a list of percentages"):
        check_shifts("5")
    with pytest.raises(ValueError, match="must be a list of percentages"):
        check_shifts(5)


def test_automatic_apex_is_the_crop_differing_most_from_the_onset_earliest_on_ties():
    onset = np.full((4, 4, 3), 100, np.uint8)
    darker = np.full((4, 4, 3), 40, np.uint8)  # -60 everywhere: as different as +60
    brighter = np.full((4, 4, 3), 160, np.uint8)
    slightly = np.full((4, 4, 3), 110, np.uint8)
    assert frame_difference(onset, darker) == 60.0  # signed, not the wrapped uint8 difference
    assert pick_automatic_apex(onset, {12: slightly, 14: brighter, 13: darker}) == (13, 60.0)
    assert pick_automatic_apex(onset, {}) is None


# ------------------------------------------------------------------------------ the cache
def test_shifted_frames_are_the_right_frames_cut_like_the_onset(casme2_copy, tmp_path):
    size, cache = 32, tmp_path / "cache"
    default = prepare("casme2", casme2_copy, "5class", crop_size=size, cache_dir=cache, progress=False)
    assert default.shifted is None
    data = prepare("casme2", casme2_copy, "5class", crop_size=size, cache_dir=cache, progress=False,
                   shifts=[-50, 25])
    shifted = data.shifted
    assert shifted.percents == (-50.0, 0.0, 25.0)
    # the view of the default cache is unchanged: same clips, same annotated crops
    assert np.array_equal(data.onset, default.onset) and np.array_equal(data.apex, default.apex)
    assert len(shifted.table) == len(data.samples) * 2 * 3 and (shifted.table["reason"] == "").all()
    moved_somewhere = 0
    for kind in ("apex", "onset"):
        for percent in shifted.percents:
            onset, apex = shifted.inputs(kind, percent, data.onset, data.apex)
            for row in shifted.rows(kind, percent).itertuples():
                clip = data.samples.loc[row.sample]
                frame = shifted_frame(kind, percent, clip.onset_frame, clip.apex_frame, clip.offset_frame)
                assert row.frame == frame
                path = index_frames(Path(clip.onset_path).parent)[frame]
                moved, kept = (apex, onset) if kind == "apex" else (onset, apex)
                assert np.array_equal(moved[row.sample], cut(path, size)), (kind, percent, clip.clip_id)
                assert np.array_equal(kept[row.sample], (data.onset if kind == "apex" else data.apex)[row.sample])
                moved_somewhere += row.moved != 0
            if percent == 0:
                assert np.array_equal(onset, data.onset) and np.array_equal(apex, data.apex)
    assert moved_somewhere > len(data.samples)
    # negative onset shifts stay on the onset (clamped), an apex moved far back lands on it
    early = shifted.rows("onset", -50)
    assert (early["moved"] == 0).all() and (early["frame"] == data.samples["onset_frame"].to_numpy()).all()
    assert (shifted.rows("apex", -50)["frame"] >= data.samples["onset_frame"].to_numpy()).all()


def test_the_shifted_frames_file_is_rebuilt_only_when_its_set_of_frames_changes(casme2_copy, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    settings = dict(crop_size=32, cache_dir=cache, progress=False)
    first = prepare("casme2", casme2_copy, "5class", shifts=[10], **settings)
    samples = first.samples
    assert ((samples["offset_frame"] - samples["onset_frame"]) < 10).all()  # short clips: 10 % and 5 % -> 1 frame
    stamp = first.shifted.cache_path.stat().st_mtime_ns
    reads = []
    original = cache_module._clip_frames
    monkeypatch.setattr(cache_module, "_clip_frames", lambda *a: reads.append(a) or original(*a))
    same = prepare("casme2", casme2_copy, "5class", shifts=[5, 0], **settings)  # another list, the same frames
    assert same.shifted.cache_path == first.shifted.cache_path and reads == []
    assert same.shifted.cache_path.stat().st_mtime_ns == stamp
    assert np.array_equal(same.shifted.crops, first.shifted.crops)
    wider = prepare("casme2", casme2_copy, "5class", shifts=[5, 50], **settings)  # more frames: a new file
    assert wider.shifted.cache_path != first.shifted.cache_path and reads
    assert first.shifted.cache_path.exists() and len(list(cache.glob("*_frames_*.npz"))) == 2
    assert wider.cache_path == first.cache_path  # the face-crop cache itself is not rebuilt
    # a frame the shifts read changes: its file is rebuilt
    clip = samples.iloc[0]
    frame = shifted_frame("apex", 5, clip.onset_frame, clip.apex_frame, clip.offset_frame)
    path = index_frames(Path(clip.onset_path).parent)[frame]
    Image.fromarray(read_frame(path)[::-1].copy()).save(path, quality=50)
    changed = prepare("casme2", casme2_copy, "5class", shifts=[5], **settings)
    assert changed.shifted.cache_path not in (first.shifted.cache_path, wider.shifted.cache_path)


def test_a_shift_without_a_frame_is_named_for_its_clip_not_dropped(casme2_copy, tmp_path):
    samples = load_samples("casme2", casme2_copy, "5class").samples
    clip = samples.iloc[1]
    frame = shifted_frame("apex", 10, clip.onset_frame, clip.apex_frame, clip.offset_frame)
    index_frames(Path(clip.onset_path).parent)[frame].unlink()  # the frame after the apex is missing
    data = prepare("casme2", casme2_copy, "5class", crop_size=32, cache_dir=tmp_path / "cache", progress=False,
                   shifts=[10])
    sample = int(data.samples.index[data.samples["clip_id"] == clip.clip_id][0])
    row = data.shifted.rows("apex", 10).set_index("sample").loc[sample]
    assert row["reason"].startswith(f"apex moved by +10 % to frame {frame}: frame {frame} not found in ")
    usable = data.shifted.usable("apex")
    assert not usable[sample] and usable.sum() == len(data.samples) - 1
    assert data.shifted.usable("onset").all()  # onset shifts do not need that frame


def test_automatic_apex_picks_the_most_different_frame_of_a_constructed_clip(casme2_copy, tmp_path):
    size, cache = 32, tmp_path / "cache"
    samples = load_samples("casme2", casme2_copy, "5class").samples
    clip = samples[(samples["offset_frame"] - samples["onset_frame"]) >= 3].iloc[0]
    frames = index_frames(Path(clip.onset_path).parent)
    onset_image = read_frame(clip.onset_path)
    target = int(clip.onset_frame) + 1 if int(clip.apex_frame) != int(clip.onset_frame) + 1 else int(clip.onset_frame) + 2
    for number in range(int(clip.onset_frame) + 1, int(clip.offset_frame) + 1):
        image = onset_image.copy()  # every frame a copy of the onset: no movement ...
        if number == target:  # ... but one, with a bright block on the face
            height, width = image.shape[:2]
            image[int(height * 0.45):int(height * 0.6), int(width * 0.4):int(width * 0.6)] = 255
        Image.fromarray(image).save(frames[number], quality=100)
    annotated = prepare("casme2", casme2_copy, "5class", crop_size=size, cache_dir=cache, progress=False)
    automatic = prepare("casme2", casme2_copy, "5class", crop_size=size, cache_dir=cache, progress=False,
                        apex="automatic")
    assert automatic.cache_key != annotated.cache_key and automatic.cache_path != annotated.cache_path
    k = int(automatic.samples.index[automatic.samples["clip_id"] == clip.clip_id][0])
    row = automatic.samples.loc[k]
    assert row["apex_frame"] == target and row["annotated_apex_frame"] == clip.apex_frame
    assert Path(row["apex_path"]) == frames[target] and row["apex_rule"].startswith("automatic")
    assert np.array_equal(automatic.apex[k], cut(frames[target], size))
    assert np.array_equal(automatic.onset, annotated.onset)
    # every clip's choice is the frame of onset+1..offset whose crop differs most from the onset's
    for i, clip_row in automatic.samples.iterrows():
        folder = index_frames(Path(clip_row["onset_path"]).parent)
        scores = {n: frame_difference(annotated.onset[i], cut(folder[n], size))
                  for n in range(int(clip_row["onset_frame"]) + 1, int(clip_row["offset_frame"]) + 1)}
        assert clip_row["apex_frame"] == max(scores, key=lambda n: (scores[n], -n)), clip_row["clip_id"]
    assert not automatic.samples["apex_is_onset"].any()
    again = prepare("casme2", casme2_copy, "5class", crop_size=size, cache_dir=cache, progress=False,
                    apex="automatic")
    assert again.cache_key == automatic.cache_key and np.array_equal(again.apex, automatic.apex)


def test_bad_apex_and_shift_arguments_fail_before_any_work(casme2_copy, tmp_path, monkeypatch):
    monkeypatch.setattr(FaceDetector, "detect", lambda *a, **k: pytest.fail("detector ran"))
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="unknown apex choice 'auto'; choose one of annotated, automatic"):
        prepare("casme2", casme2_copy, "5class", cache_dir=cache, apex="auto", progress=False)
    with pytest.raises(ValueError, match=r"shifts \[150\] are not percentages"):
        prepare("casme2", casme2_copy, "5class", cache_dir=cache, shifts=[150], progress=False)
    with pytest.raises(ValueError, match="cannot be combined with reselect_frames or shifts"):
        prepare("casme2", casme2_copy, "5class", cache_dir=cache, apex="automatic", shifts=[5], progress=False)
    assert not cache.exists()


def test_a_cache_without_crop_boxes_is_rebuilt_once_with_the_same_crops(casme2_copy, tmp_path):
    cache = tmp_path / "cache"
    data = prepare("casme2", casme2_copy, "5class", crop_size=32, cache_dir=cache, progress=False)
    with np.load(data.cache_path) as stored:  # as written before the boxes were kept
        older = {name: stored[name] for name in stored.files if name not in ("boxes", "frame_shapes")}
    with open(data.cache_path, "wb") as handle:
        np.savez(handle, **older)
    shifted = prepare("casme2", casme2_copy, "5class", crop_size=32, cache_dir=cache, progress=False, shifts=[10])
    assert shifted.cache_path == data.cache_path and np.array_equal(shifted.apex, data.apex)
    with np.load(data.cache_path) as stored:
        assert {"boxes", "frame_shapes"} <= set(stored.files)
