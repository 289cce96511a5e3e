"""The synthetic writer: official names, marker, movement that is local and onset-free."""
from __future__ import annotations

import argparse

import numpy as np
import openpyxl
import pandas as pd
import pytest
from scipy import ndimage

from tsfmicro.data import _cli, load_samples, write_synthetic
from tsfmicro.data.frames import read_frame
from tsfmicro.data.registry import MARKER_FILE
from tsfmicro.data.synthetic import LABEL_MOVEMENT, MANIFEST_FILE


def test_official_file_names_and_sheets(synthetic_casme2_root, synthetic_samm_root, synthetic_casme3_root,
                                        synthetic_megc_root):
    book = openpyxl.load_workbook(synthetic_casme2_root / "CASME2-coding-20190701.xlsx")
    assert book.sheetnames == ["Sheet1"]
    header = [cell.value for cell in book["Sheet1"][1]]
    assert header == ["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None, "Action Units",
                      "Estimated Emotion"]
    assert pd.read_excel(synthetic_casme2_root / "CASME2-coding-20190701.xlsx").columns[2] == "Unnamed: 2"
    samm = openpyxl.load_workbook(synthetic_samm_root / "SAMM_Micro_FACS_Codes_v2.xlsx").active
    assert samm.cell(1, 1).value == "SAMM Dataset - Master FACS Codes" and samm.cell(14, 1).value == "Subject"
    assert isinstance(samm.cell(15, 1).value, int)  # 6, while the folder is 006
    casme3 = openpyxl.load_workbook(synthetic_casme3_root / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx")
    assert casme3.sheetnames[0] == "label"
    assert all(isinstance(cell.value, str) for cell in casme3["label"][2])  # every cell is text
    assert (synthetic_casme2_root / "CASME2_RAW_selected" / "sub01").is_dir()
    assert list((synthetic_samm_root / "SAMM" / "006").iterdir())
    assert (synthetic_megc_root / "combined_3class_gt.csv").read_text().count("smic,s01,s01_") >= 1
    for root in (synthetic_casme2_root, synthetic_samm_root, synthetic_megc_root, synthetic_megc_root / "samm"):
        assert (root / MARKER_FILE).is_file()


def test_movement_is_local_and_absent_from_the_onset(synthetic_casme2_root):
    table = load_samples("casme2", synthetic_casme2_root, "5class")
    manifest = pd.read_csv(synthetic_casme2_root / MANIFEST_FILE)
    for row in table.samples.head(6).itertuples():
        onset = read_frame(row.onset_path).astype(float).mean(2)
        apex = read_frame(row.apex_path).astype(float).mean(2)
        change = np.abs(apex - onset)
        moved = ndimage.uniform_filter(change, 5) > 5  # averaged: single noisy pixels do not count
        assert moved.sum() > 30, f"{row.clip_id}: no visible movement"
        ys, xs = np.nonzero(moved)
        assert np.ptp(ys) < 200 and np.ptp(xs) < 200, f"{row.clip_id}: movement is not local"
        assert np.median(change) < 4  # elsewhere only noise
    # every label of every layout has a movement, and one movement per emotion
    assert set(manifest["label"].str.lower()) <= set(LABEL_MOVEMENT)
    assert LABEL_MOVEMENT["happy"] == LABEL_MOVEMENT["happiness"] == LABEL_MOVEMENT["positive"]


def test_identity_does_not_give_the_class(synthetic_casme2_root):
    manifest = pd.read_csv(synthetic_casme2_root / MANIFEST_FILE)
    main = manifest[manifest["label"].isin(["happiness", "surprise", "disgust", "repression", "others"])]
    per_subject = main.groupby("subject")["label"].nunique()
    assert (per_subject >= 4).all()  # each subject shows (almost) every class


def test_writer_is_deterministic_and_refuses_foreign_folders(tmp_path):
    first = write_synthetic("casme2", tmp_path / "a", subjects=1, clips_per_subject=2, seed=9)
    second = write_synthetic("casme2", tmp_path / "b", subjects=1, clips_per_subject=2, seed=9)
    assert (first / MANIFEST_FILE).read_text() == (second / MANIFEST_FILE).read_text()
    write_synthetic("casme2", first, subjects=1, clips_per_subject=2, seed=10)  # replaces its own output
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "me.jpg").write_bytes(b"x")
    with pytest.raises(ValueError, match="refusing to overwrite"):
        write_synthetic("casme2", foreign)
    with pytest.raises(ValueError, match="unknown synthetic layout"):
        write_synthetic("casme4", tmp_path / "c")


def test_cli_synth_and_preprocess(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="tsfmicro")
    _cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["synth", "--layout", "smic", "--out", str(tmp_path / "smic"), "--subjects", "1",
                              "--clips-per-subject", "3", "--seed", "2"])
    assert args.handler(args) == 0
    args = parser.parse_args(["preprocess", "--dataset", "smic", "--root", str(tmp_path / "smic"),
                              "--crop-size", "32", "--cache-dir", str(tmp_path / "cache"), "--precropped"])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert "SYNTHETIC: 3 clips for smic 3class" in out and "cache:" in out
    assert list((tmp_path / "cache").glob("*_3class_excluded.csv"))
    args = parser.parse_args(["preprocess", "--dataset", "casme2", "--root", str(tmp_path / "nothing")])
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        args.handler(args)
    args = parser.parse_args(["preprocess", "--dataset", "smic", "--root", str(tmp_path), "--task", "5class"])
    with pytest.raises(ValueError, match="unknown task '5class'"):
        args.handler(args)
