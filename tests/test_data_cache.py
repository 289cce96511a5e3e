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
