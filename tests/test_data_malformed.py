"""Malformed inputs: each gives a clear error, or a report entry naming file and row."""
from __future__ import annotations

import shutil
from pathlib import Path

import openpyxl
import pytest

from tsfmicro.data import load_samples, prepare
from tsfmicro.data.frames import read_frame

ANNOTATION = "CASME2-coding-20190701.xlsx"


@pytest.fixture
def casme2_copy(synthetic_casme2_small_root, tmp_path) -> Path:
    """A private copy of the tiny CASME II root that a test may damage."""
    root = tmp_path / "casme2"
    shutil.copytree(synthetic_casme2_small_root, root)
    return root


def edit_sheet(root: Path, edit) -> Path:
    path = root / ANNOTATION
    book = openpyxl.load_workbook(path)
    edit(book["Sheet1"])
    book.save(path)
    return path


def only_problem(table, row: int) -> str:
    problems = table.excluded[~table.excluded["reason"].str.contains("is not in casme2")]
    assert len(problems) == 1, problems
    problem = problems.iloc[0]
    assert problem["row"] == row
    assert problem["file"].endswith(ANNOTATION)
    return problem["reason"]


def test_missing_annotation_file(casme2_copy):
    (casme2_copy / ANNOTATION).unlink()
    with pytest.raises(FileNotFoundError, match=r"is not a CASME II root: no annotation file"):
        load_samples("casme2", casme2_copy, "5class")


def test_folder_that_is_not_a_dataset_root(tmp_path):
    (tmp_path / "holiday.jpg").write_bytes(b"not a dataset")
    for dataset in ("casme2", "samm", "casme3"):
        with pytest.raises(FileNotFoundError, match="is not a"):
            load_samples(dataset, tmp_path, "3class" if dataset != "casme3" else "4class")
    with pytest.raises(FileNotFoundError, match="is not a SMIC-HS root"):
        load_samples("smic", tmp_path, "3class")
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        load_samples("casme2", tmp_path / "missing", "5class")
    with pytest.raises(FileNotFoundError, match="combined_3class_gt.csv"):
        load_samples("megc2019", tmp_path, "3class")


def test_missing_column(casme2_copy):
    path = edit_sheet(casme2_copy, lambda sheet: setattr(sheet.cell(1, 5), "value", "Apex"))
    with pytest.raises(ValueError, match=r"CASME2-coding-20190701.xlsx.*row 1: missing column 'ApexFrame'") as error:
        load_samples("casme2", casme2_copy, "5class")
    assert str(path) in str(error.value)


def test_wrong_file_without_header(casme2_copy):
    edit_sheet(casme2_copy, lambda sheet: setattr(sheet.cell(1, 1), "value", "Participant"))
    with pytest.raises(ValueError, match="no header row starting with 'Subject'"):
        load_samples("casme2", casme2_copy, "5class")


def test_unknown_label(casme2_copy):
    edit_sheet(casme2_copy, lambda sheet: setattr(sheet.cell(3, 9), "value", "joy"))
    table = load_samples("casme2", casme2_copy, "5class")
    assert "unknown label 'joy'" in only_problem(table, 3)
    with pytest.raises(ValueError, match=r"CASME2-coding-20190701.xlsx, row 3: unknown label 'joy'"):
        load_samples("casme2", casme2_copy, "5class", strict=True)


def test_apex_before_onset(casme2_copy):
    def edit(sheet):
        sheet.cell(2, 5).value = sheet.cell(2, 4).value - 1
    edit_sheet(casme2_copy, edit)
    table = load_samples("casme2", casme2_copy, "5class")
    assert "outside onset..offset" in only_problem(table, 2)
    with pytest.raises(ValueError, match="row 2: apex .* is outside onset..offset"):
        load_samples("casme2", casme2_copy, "5class", strict=True)


def test_text_that_is_not_a_frame_number(casme2_copy):
    edit_sheet(casme2_copy, lambda sheet: setattr(sheet.cell(2, 4), "value", "start"))
    table = load_samples("casme2", casme2_copy, "5class")
    assert "onset frame 'start' is not a frame number" in only_problem(table, 2)


def test_duplicate_clip_id(casme2_copy):
    def edit(sheet):
        sheet.append([cell.value for cell in sheet[2]])
    edit_sheet(casme2_copy, edit)
    table = load_samples("casme2", casme2_copy, "5class")
    assert "duplicate clip id sub01" in only_problem(table, 8)
    assert "first at row 2" in only_problem(table, 8)


def test_missing_frame(casme2_copy):
    table = load_samples("casme2", casme2_copy, "5class")
    victim = Path(table.samples["apex_path"].iloc[0])
    victim.unlink()
    table = load_samples("casme2", casme2_copy, "5class")
    reason = only_problem(table, 2)
    assert "apex frame" in reason and "not found in" in reason and str(victim.parent) in reason
    with pytest.raises(FileNotFoundError, match=str(victim)):
        read_frame(victim)


def test_missing_clip_folder_and_empty_subject_folder(casme2_copy):
    raw = casme2_copy / "CASME2_RAW_selected"
    first_clip = sorted((raw / "sub02").iterdir())[0]
    shutil.rmtree(first_clip)
    table = load_samples("casme2", casme2_copy, "3class")
    assert any("clip folder missing" in reason for reason in table.excluded["reason"])
    for folder in (raw / "sub02").iterdir():
        shutil.rmtree(folder)
    table = load_samples("casme2", casme2_copy, "3class")
    empty = table.excluded[table.excluded["reason"].str.contains("subject folder is empty")]
    assert len(empty) == 3 and set(empty["subject"]) == {"sub02"}
    assert set(table.samples["subject"]) == {"sub01"}


@pytest.mark.parametrize("damage", ["truncated", "not_an_image"])
def test_corrupt_jpeg(casme2_copy, tmp_path, damage):
    table = load_samples("casme2", casme2_copy, "5class")
    victim = Path(table.samples["onset_path"].iloc[1])
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 3] if damage == "truncated" else b"garbage" * 10)
    with pytest.raises(ValueError, match=f"unreadable frame {victim}"):
        read_frame(victim)
    prepared = prepare("casme2", casme2_copy, "5class", crop_size=32, cache_dir=tmp_path / "cache", progress=False)
    assert len(prepared.samples) == len(table.samples) - 1
    reason = prepared.excluded[prepared.excluded["reason"].str.contains("unreadable frame")]
    assert len(reason) == 1 and reason.iloc[0]["row"] == table.samples["row"].iloc[1]
    assert str(victim) in reason.iloc[0]["reason"]


def test_megc_list_with_unknown_clip_and_bad_label(synthetic_megc_root, tmp_path):
    listing = tmp_path / "list.csv"
    lines = (synthetic_megc_root / "combined_3class_gt.csv").read_text().splitlines()
    listing.write_text("\n".join(lines + ["casme2,sub01,EP99_99,0", "samm,006,006_1_1,7"]) + "\n")
    roots = {part: synthetic_megc_root / part for part in ("casme2", "samm", "smic")} | {"list": listing}
    table = load_samples("megc2019", roots, "3class")
    problems = table.excluded[table.excluded["file"] == str(listing)]
    assert list(problems["row"]) == [len(lines) + 1, len(lines) + 2]
    assert "no such clip in the casme2 annotation" in problems.iloc[0]["reason"]
    assert "label '7' is not 0" in problems.iloc[1]["reason"]
