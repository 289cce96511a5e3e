"""Readers of the official layouts, on synthetic data written in those layouts."""
from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from tsfmicro.data import DATASETS, TASKS, class_names, load_samples
from tsfmicro.data.annotations import APEX_ANNOTATED, APEX_MIDDLE, load_clips, read_sheet
from tsfmicro.data.frames import frame_number, read_frame
from tsfmicro.data.registry import normalise_label, task_info
from tsfmicro.data.synthetic import MANIFEST_FILE


def manifest(root) -> pd.DataFrame:
    return pd.read_csv(root / MANIFEST_FILE, dtype={"subject": str, "clip_id": str})


def counts(frame: pd.DataFrame) -> Counter:
    return Counter(zip(frame["subject"], frame["label"].str.lower()))


def written(root, dataset, task) -> Counter:
    """What the writer wrote that belongs to ``task`` (valid rows with a label of the task)."""
    rows = manifest(root)
    rows = rows[rows["expected"] == "valid"]
    wanted = task_info(dataset, task).label_to_class
    rows = rows[rows["label"].map(lambda label: normalise_label(dataset, label) in wanted)]
    return counts(rows)


def test_registry_lists_every_task():
    assert DATASETS == ("casme2", "samm", "casme3", "smic", "megc2019")
    assert TASKS == {"casme2": ("5class", "3class", "3class_megc"), "samm": ("5class", "3class", "3class_megc"),
                     "casme3": ("7class", "4class", "3class_megc"), "smic": ("3class", "3class_megc"),
                     "megc2019": ("3class",)}
    assert class_names("casme2", "5class") == ["happiness", "surprise", "disgust", "repression", "others"]
    assert class_names("samm", "5class") == ["anger", "contempt", "happiness", "surprise", "other"]
    assert class_names("casme3", "4class") == ["negative", "positive", "surprise", "others"]
    assert normalise_label("samm", " Others ") == "other"
    with pytest.raises(KeyError, match="unknown task"):
        class_names("casme2", "7class")
    with pytest.raises(KeyError, match="unknown dataset"):
        class_names("casme4", "5class")


@pytest.mark.parametrize("task", ["5class", "3class"])
def test_casme2_counts_match_what_was_written(synthetic_casme2_root, task):
    table = load_samples("casme2", synthetic_casme2_root, task)
    assert counts(table.samples) == written(synthetic_casme2_root, "casme2", task)
    assert table.source == "SYNTHETIC"
    assert table.class_names == class_names("casme2", task)
    if task == "5class":
        assert [table.class_names[i] for i in table.samples.class_index] == table.samples.label.str.lower().tolist()
    if task == "5class":  # fear and sadness are reported, not dropped silently
        reasons = table.excluded["reason"].tolist()
        assert any("'fear' is not in casme2 5class" in reason for reason in reasons)
        assert any("'sadness' is not in casme2 5class" in reason for reason in reasons)
        assert set(table.excluded["file"]) == {str(synthetic_casme2_root / "CASME2-coding-20190701.xlsx")}


def test_casme2_quirks(synthetic_casme2_root):
    table = load_samples("casme2", synthetic_casme2_root, "5class")
    samples = table.samples
    # '/' apex: the middle of onset..offset, and the rule is recorded
    middle = samples[samples["apex_rule"] == APEX_MIDDLE]
    assert len(middle) == 1
    row = middle.iloc[0]
    assert row.apex_frame == (row.onset_frame + row.offset_frame) // 2
    assert (samples["apex_rule"] == APEX_ANNOTATED).sum() == len(samples) - 1
    # irregular clip names (each on its own: test_casme2_irregular_clip_name) and text subjects '01' -> sub01
    assert {"EP01_2", "EP06_02_01", "EP09f"} <= set(load_clips("casme2", synthetic_casme2_root).clips["clip_id"])
    assert set(samples["subject"]) == {"sub01", "sub02", "sub03", "sub04"}
    # apex equal to offset is a valid row
    assert (samples["apex_frame"] == samples["offset_frame"]).any()
    # frames resolved from the trailing integer of img46.jpg, pre-cropped reg_img46.jpg too
    assert all(frame_number(Path(p)) == n for p, n in zip(samples.onset_path, samples.onset_frame))
    assert samples["precropped_onset_path"].str.contains("reg_img").all()
    # action units: numbers in some rows, text in others; kept as text
    assert {"12", "4+7+L10"} <= set(samples["action_units"])


@pytest.mark.parametrize("name", ["EP01_2", "EP08_1", "EP06_02_01", "EP09f"])  # datasets.md: irregular names
def test_casme2_irregular_clip_name(name, synthetic_casme2_small_root, tmp_path):
    """The clip is read under its own name, from its own raw and pre-cropped folders."""
    root = tmp_path / "casme2"
    shutil.copytree(synthetic_casme2_small_root, root)
    sheet_path = root / "CASME2-coding-20190701.xlsx"
    book = openpyxl.load_workbook(sheet_path)
    rows = list(book["Sheet1"].iter_rows(min_row=2))
    if name not in [row[1].value for row in rows if row[0].value == "01"]:  # give sub01's clip EP03_01f that name
        (row,) = [row for row in rows if row[0].value == "01" and row[1].value == "EP03_01f"]
        row[1].value = name
        book.save(sheet_path)
        for release in ("CASME2_RAW_selected", "Cropped"):
            (root / release / "sub01" / "EP03_01f").rename(root / release / "sub01" / name)
    (row,) = [row for row in rows if row[0].value == "01" and row[1].value == name]
    onset, apex = row[3].value, row[4].value

    clips = load_clips("casme2", root)
    (clip,) = clips.clips[(clips.clips["subject"] == "sub01") & (clips.clips["clip_id"] == name)].itertuples()
    assert (clip.onset_frame, clip.apex_frame) == (onset, apex)
    assert clip.onset_path == str(root / "CASME2_RAW_selected" / "sub01" / name / f"img{onset}.jpg")
    assert clip.apex_path == str(root / "CASME2_RAW_selected" / "sub01" / name / f"img{apex}.jpg")
    assert clip.precropped_onset_path == str(root / "Cropped" / "sub01" / name / f"reg_img{onset}.jpg")
    assert clips.excluded.empty, clips.excluded


def test_casme2_numeric_subjects_and_missing_apex_of_older_release(synthetic_casme2_root, tmp_path):
    """The 2014 release: subjects as numbers, some apex cells empty."""
    root = tmp_path / "casme2"
    shutil.copytree(synthetic_casme2_root, root)
    new = root / "CASME2-coding-20190701.xlsx"
    book = openpyxl.load_workbook(new)
    sheet = book["Sheet1"]
    for row in range(2, sheet.max_row + 1):
        sheet.cell(row, 1).value = int(sheet.cell(row, 1).value)
    sheet.cell(2, 5).value = None  # missing apex
    old = root / "CASME2-coding-20140508.xlsx"
    book.save(old)
    new.unlink()
    (root / "Cropped-updated").mkdir()  # some copies wrap the pre-cropped release
    (root / "Cropped").rename(root / "Cropped-updated" / "Cropped")
    table = load_samples("casme2", root, "5class")
    assert table.samples["precropped_onset_path"].str.contains("Cropped-updated/Cropped/").all()
    assert set(table.samples["subject"]) == {"sub01", "sub02", "sub03", "sub04"}
    assert (table.samples["apex_rule"] == APEX_MIDDLE).sum() == 2
    assert table.samples["file"].iloc[0].endswith("CASME2-coding-20140508.xlsx")


@pytest.mark.parametrize("task", ["5class", "3class"])
def test_samm_counts_match_what_was_written(synthetic_samm_root, task):
    table = load_samples("samm", synthetic_samm_root, task)
    assert counts(table.samples) == written(synthetic_samm_root, "samm", task)
    assert set(table.samples["subject"]) == {"006", "007", "009"}  # 6 in the sheet, 006 on disk


def test_samm_quirks(synthetic_samm_root, tmp_path):
    path = synthetic_samm_root / "SAMM_Micro_FACS_Codes_v2.xlsx"
    sheet = read_sheet("samm", path)
    assert sheet["row"].iloc[0] == 15  # header found on row 14 after the 13-row preamble
    table = load_samples("samm", synthetic_samm_root, "5class")
    assert "Other" in set(table.samples["label"])  # 'Other' is the 5th class
    assert table.samples.loc[table.samples.label == "Other", "class_index"].eq(4).all()
    # an unpadded frame name (006_5562.jpg) resolves like the padded ones
    unpadded = table.samples[table.samples.clip_id == "006_1_2"].iloc[0]
    assert "_0" not in unpadded.onset_path.rsplit("/", 1)[1][3:5]
    frame = read_frame(unpadded.onset_path)
    assert frame.shape == (650, 960, 3)  # grey on disk, 3 channels here
    assert np.array_equal(frame[..., 0], frame[..., 1])
    # a release with a one-row preamble and 'Others' for 'Other'
    root = tmp_path / "samm"
    shutil.copytree(synthetic_samm_root, root)
    book = openpyxl.load_workbook(root / "SAMM_Micro_FACS_Codes_v2.xlsx")
    sheet = book.active
    sheet.delete_rows(2, 12)
    for row in sheet.iter_rows(min_row=3):
        if row[9].value == "Other":
            row[9].value = "Others"
    (root / "SAMM_Micro_FACS_Codes_v2.xlsx").unlink()
    book.save(root / "SAMM_20181215_Micro_FACS_Codes_v2.xlsx")
    again = load_samples("samm", root, "5class")
    assert "Others" in set(again.samples["label"])
    by_class = lambda t: Counter(zip(t.samples["subject"], t.samples["class_index"]))  # noqa: E731
    assert by_class(again) == by_class(table)


@pytest.mark.parametrize("task", ["7class", "4class"])
def test_casme3_counts_match_what_was_written(synthetic_casme3_root, task):
    table = load_samples("casme3", synthetic_casme3_root, task)
    assert counts(table.samples) == written(synthetic_casme3_root, "casme3", task)


def test_casme3_quirks(synthetic_casme3_root):
    table = load_samples("casme3", synthetic_casme3_root, "7class")
    samples = table.samples
    assert "Others" in set(samples["label"]) and "others" in set(samples["label"])
    assert samples.loc[samples.label.str.lower() == "others", "class_index"].eq(6).all()
    # clip id = subject_video_onset; the uppercase J video is found in folder j
    assert samples["clip_id"].str.contains("_J_").any()
    assert all(cid == f"{s}_{cid.split('_')[1]}_{o}" for cid, s, o in zip(samples.clip_id, samples.subject, samples.onset_frame))
    # the participant whose folder is spNo.N (labels say spNO.N) is found
    assert len(set(samples["subject"])) == 3
    assert any("/spNo." in path for path in samples["onset_path"])
    # the known bad rows are reported with file, row and reason
    reasons = table.excluded.set_index("row")["reason"]
    assert any("apex 890 is outside onset..offset 900..920" in r for r in reasons)
    assert sum("offset frame is 0" in r for r in reasons) == 2
    assert any("onset 990 is after offset 980" in r for r in reasons)
    assert table.excluded["file"].str.endswith("cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx").all()


def test_casme3_clip_release_layout(synthetic_casme3_root, tmp_path):
    """Part_A_ME_clip/frame/spNO.1_a_355/355.jpg instead of the per-video folders."""
    reference = load_samples("casme3", synthetic_casme3_root, "7class").samples
    root = tmp_path / "casme3"
    root.mkdir()
    shutil.copy(synthetic_casme3_root / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx", root)
    for row in reference.itertuples():
        folder = root / "Part_A_ME_clip" / "frame" / row.clip_id
        folder.mkdir(parents=True)
        for path in (row.onset_path, row.apex_path):
            shutil.copy(path, folder)
    table = load_samples("casme3", root, "7class")
    assert counts(table.samples) == counts(reference)


def test_smic_reads_labels_from_folders(synthetic_smic_root):
    table = load_samples("smic", synthetic_smic_root, "3class")
    assert counts(table.samples) == written(synthetic_smic_root, "smic", "3class")
    assert (table.samples["apex_frame"] == (table.samples["onset_frame"] + table.samples["offset_frame"]) // 2).all()
    assert (table.samples["apex_rule"] == APEX_MIDDLE).all()
    assert not table.samples["clip_id"].str.contains("_no_").any()  # non_micro is not a clip
    assert table.samples["precropped_apex_path"].str.contains("SMIC_all_cropped").all()
    assert table.excluded.empty


def test_megc_composite(synthetic_megc_root):
    table = load_samples("megc2019", synthetic_megc_root, "3class")
    listed = pd.read_csv(synthetic_megc_root / "combined_3class_gt.csv", header=None)
    assert len(table.samples) == len(listed)
    assert set(table.samples["dataset"]) == {"casme2", "samm", "smic"}
    assert table.samples["subject"].str.match(r"^(casme2|samm|smic)/").all()
    assert set(table.samples.loc[table.samples.dataset == "smic", "subject"]) == {"smic/s1", "smic/s2"}
    assert list(table.samples["class_index"]) == list(listed[3])
    # clips of the parts that are not in the official list are reported
    assert (table.excluded["reason"] == "not in combined_3class_gt.csv").sum() >= 1
    assert table.source == "SYNTHETIC"
    # the same with a mapping of the parts
    mapping = {part: synthetic_megc_root / part for part in ("casme2", "samm", "smic")}
    mapping["list"] = synthetic_megc_root / "combined_3class_gt.csv"
    again = load_samples("megc2019", mapping, "3class")
    assert again.samples[["subject", "clip_id"]].equals(table.samples[["subject", "clip_id"]])
