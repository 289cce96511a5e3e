"""The dataset owners' errata (CAS(ME)^3), applied and reported on a synthetic tree that holds them."""
from __future__ import annotations

import shutil

import openpyxl
import pandas as pd
import pytest

from tsfmicro.data import load_samples, prepare
from tsfmicro.data.errata import ERRATA_FILE, clip_errata, load_errata
from tsfmicro.data.faces import FaceDetector
from tsfmicro.data.synthetic import MANIFEST_FILE

LABEL_FILE = "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"
OWNERS_LIST = "casme3_partA_error_list_ZhouJu.xlsx"
DAMAGED_LIST = "error_info_damaged_image_partA.txt"


def fixed_face(self, frames):
    """A detector stand-in (no MTCNN): these tests are about which clips are kept, not about faces."""
    return [[((f.shape[1] * 0.3, f.shape[0] * 0.25, f.shape[1] * 0.7, f.shape[0] * 0.75), 0.99)] for f in frames]


def sheet_row(root, subject, video, onset):
    """The spreadsheet row (1-based, as a person sees it) of one annotation row."""
    sheet = openpyxl.load_workbook(root / LABEL_FILE)["label"]
    for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
        if (row[0], row[1], row[2]) == (subject, video, str(onset)):
            return number
    raise AssertionError(f"{subject} {video} {onset} not in the sheet")


def by_clip(samples):
    return samples.set_index("clip_id")


def test_the_errata_file_encodes_the_owners_lists_with_their_source():
    errata = load_errata()
    occluded = [e for e in errata if e.kind == "apex_occluded"]
    assert len(occluded) == 15 and {e.owners_solution for e in occluded} == {"remove"}
    assert sorted(e.onset for e in occluded if (e.subject, e.filename) == ("spNO.215", "f")) == [5, 2183]
    (zero,) = [e for e in errata if e.kind == "onset_apex_zero"]
    assert (zero.subject, zero.filename, zero.onset) == ("spNO.216", "e", 0)
    damaged = [e for e in errata if e.kind == "damaged_frames"]
    assert sum(len(e.frames) for e in damaged) == 121  # the owners' 130 lines, 9 of them repeated
    for erratum in errata:
        assert "jingtingEmmaLi/CAS-ME-3" in erratum.source and "exception/" in erratum.source
        assert erratum.source.endswith(DAMAGED_LIST if erratum.kind == "damaged_frames" else OWNERS_LIST)


def test_errata_match_subject_video_and_onset_where_the_owners_give_one():
    assert [e.kind for e in clip_errata("casme3", "spNO.215", "f", 2183, {})] == ["apex_occluded"]
    assert clip_errata("casme3", "spNO.215", "f", 2184, {}) == []  # another clip of that video
    assert [e.kind for e in clip_errata("casme3", "spno.2", "E", 731, {})] == ["apex_occluded"]  # no onset given
    assert [e.kind for e in clip_errata("casme3", "spNO.3", "j", 400, {"onset": 400, "apex": 500})] == \
        ["damaged_frames"]
    assert clip_errata("casme3", "spNO.3", "J", 400, {"onset": 400, "apex": 420}) == []
    assert clip_errata("casme2", "spNO.2", "e", 731, {}) == []  # CAS(ME)^3 errata only


@pytest.mark.parametrize("task", ["7class", "4class"])
def test_owners_errata_on_a_synthetic_casme3_tree(synthetic_casme3_root, task):
    root = synthetic_casme3_root
    annotation = str(root / LABEL_FILE)
    kept = load_samples("casme3", root, task)
    samples = by_clip(kept.samples)

    # spNO.216 e: onset and apex written 0, frames from 1.jpg; the owners' +1 makes it load
    fixed = samples.loc["spNO.216_e_1"]
    assert (fixed.onset_frame, fixed.apex_frame) == (1, 1) and fixed.onset_path.endswith("/e/color/1.jpg")
    assert fixed.erratum == "onset_apex_zero" and bool(fixed.apex_is_onset)
    assert fixed.row == sheet_row(root, "spNO.216", "e", 0)
    (correction,) = kept.corrections.to_dict("records")
    assert correction["file"] == annotation and correction["row"] == fixed.row
    assert correction["clip_id"] == "spNO.216_e_1"
    assert "corrected from 0 to 1" in correction["reason"] and OWNERS_LIST in correction["reason"]
    assert not kept.excluded["subject"].eq("spNO.216").any()

    # spNO.2 e: apex occluded; marked, and kept by default (as the authors' code does)
    occluded = samples[samples["erratum"] == "apex_occluded"]
    assert list(occluded["subject"]) == ["spNO.2"] and occluded.index[0].startswith("spNO.2_e_")
    assert set(samples["erratum"]) == {"", "apex_occluded", "onset_apex_zero"}
    assert not kept.excluded["reason"].str.contains("owners").any()

    # errata: owners leaves it out, with file, row and reason; the correction still applies
    owners = load_samples("casme3", root, task, errata="owners")
    assert set(kept.samples["clip_id"]) - set(owners.samples["clip_id"]) == set(occluded.index)
    assert "spNO.216_e_1" in set(owners.samples["clip_id"])
    left = owners.excluded[owners.excluded["clip_id"] == occluded.index[0]]
    assert len(left) == 1
    assert left["file"].iloc[0] == annotation and left["row"].iloc[0] == occluded["row"].iloc[0]
    reason = left["reason"].iloc[0]
    assert "face covered at the apex frame" in reason and "remove" in reason and OWNERS_LIST in reason
    pd.testing.assert_frame_equal(owners.corrections, kept.corrections)
    # the writer's manifest says which rows carry an erratum; the reader finds each of them
    manifest = pd.read_csv(root / MANIFEST_FILE, dtype=str, keep_default_na=False)
    assert set(manifest.loc[manifest["erratum"] != "", "clip_id"]) == set(samples.index[samples["erratum"] != ""])


def test_apex_equal_to_onset_is_a_column_of_every_dataset(synthetic_casme2_root, synthetic_casme3_root,
                                                          synthetic_smic_root):
    tables = {dataset: load_samples(dataset, root, task).samples
              for dataset, root, task in (("casme2", synthetic_casme2_root, "5class"),
                                          ("smic", synthetic_smic_root, "3class"),
                                          ("casme3", synthetic_casme3_root, "7class"))}
    for samples in tables.values():
        assert samples["apex_is_onset"].dtype == bool
        assert samples["apex_is_onset"].tolist() == (samples["apex_frame"] == samples["onset_frame"]).tolist()
    assert (tables["casme2"]["erratum"] == "").all() and (tables["smic"]["erratum"] == "").all()
    casme3 = tables["casme3"]
    assert casme3.loc[casme3["apex_is_onset"], "clip_id"].tolist() == ["spNO.216_e_1"]


def test_prepare_applies_the_errata_choice_and_shares_one_cache(synthetic_casme3_root, tmp_path, monkeypatch):
    monkeypatch.setattr(FaceDetector, "detect", fixed_face)
    keep = prepare("casme3", synthetic_casme3_root, "7class", crop_size=16, cache_dir=tmp_path, progress=False)
    owners = prepare("casme3", synthetic_casme3_root, "7class", crop_size=16, cache_dir=tmp_path, progress=False,
                     errata="owners")
    assert keep.cache_path == owners.cache_path and len(list(tmp_path.glob("*.npz"))) == 1
    assert len(keep.samples) == len(owners.samples) + 1
    assert "apex_occluded" not in set(owners.samples["erratum"])
    assert owners.excluded["reason"].str.contains("errata: owners").sum() == 1
    assert len(keep.corrections) == 1 and keep.corrections["clip_id"].iloc[0] == "spNO.216_e_1"
    k = keep.samples.index[keep.samples["clip_id"] == "spNO.216_e_1"][0]
    assert (keep.onset[k] == keep.apex[k]).all()  # apex = onset: the difference frame is all zero
    with pytest.raises(ValueError, match="unknown errata choice 'some'"):
        prepare("casme3", synthetic_casme3_root, "7class", cache_dir=tmp_path, errata="some")


def test_a_needed_frame_on_the_owners_damaged_list_is_reported_with_that_list(synthetic_casme3_root, tmp_path,
                                                                              monkeypatch):
    """spNO.3 J 498-576 cannot be opened (the owners' list): a clip whose apex is 500."""
    monkeypatch.setattr(FaceDetector, "detect", fixed_face)
    root = tmp_path / "casme3"
    shutil.copytree(synthetic_casme3_root, root)
    book = openpyxl.load_workbook(root / LABEL_FILE)
    book["label"].append(["spNO.3", "J", "490", "500", "502", "4", "II", "disgust"])
    book.save(root / LABEL_FILE)
    row = book["label"].max_row
    video = root / "part_A" / "data" / "part_A_split" / "part_A" / "spNO.3" / "J" / "color"
    video.mkdir(parents=True)
    some_frame = next((root / "part_A").rglob("*.jpg"))
    for number in (490, 499, 501, 502):
        shutil.copy(some_frame, video / f"{number}.jpg")
    (video / "500.jpg").write_bytes(b"\xff\xd8 damaged")  # present on disk, cannot be opened

    listed = by_clip(load_samples("casme3", root, "7class").samples).loc["spNO.3_J_490"]
    assert listed.erratum == "damaged_frames: apex 500"
    data = prepare("casme3", root, "7class", crop_size=16, cache_dir=tmp_path / "cache", progress=False)
    assert "spNO.3_J_490" not in set(data.samples["clip_id"])
    (entry,) = data.excluded[data.excluded["clip_id"] == "spNO.3_J_490"].to_dict("records")
    assert entry["file"] == str(root / LABEL_FILE) and entry["row"] == row
    assert "unreadable frame" in entry["reason"] and "apex 500" in entry["reason"]
    assert DAMAGED_LIST in entry["reason"]

    (video / "500.jpg").unlink()  # a copy without the frame at all: the reader reports it the same way
    table = load_samples("casme3", root, "7class")
    (entry,) = table.excluded[table.excluded["clip_id"] == "spNO.3_J_490"].to_dict("records")
    assert "apex frame 500 not found" in entry["reason"] and DAMAGED_LIST in entry["reason"]
    assert entry["row"] == row


def test_the_errata_file_is_an_input_of_the_casme3_cache_key(synthetic_casme3_root):
    from tsfmicro.data.annotations import load_clips

    assert ERRATA_FILE in load_clips("casme3", synthetic_casme3_root).input_files
