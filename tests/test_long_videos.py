"""Long videos: the CAS(ME)^2 and SAMM-LV readers on synthetic copies (every quirk reported with
file, row and reason, nothing dropped silently), and the training-free spotter (tsfmicro.spotting)
finding the planted intervals."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tsfmicro.data import DATASETS
from tsfmicro.data.datasets import LONG_VIDEO_SPECS
from tsfmicro.data.long_videos import (Event, LongVideoWriter, event_profile, load_long_videos, long_video_spec,
                                       write_long_videos)
from tsfmicro.data.specs import LongVideoSheet
from tsfmicro.data.synthetic import MANIFEST_FILE
from tsfmicro.spotting import PARAMETERS, spot_dataset, spot_video
from tsfmicro.spotting_metrics import MEGC2020_LENGTHS, megc2020_spotting


@pytest.fixture(scope="module")
def casme_sq(tmp_path_factory) -> Path:
    return write_long_videos("casme_sq", tmp_path_factory.mktemp("lv") / "casme_sq", subjects=2,
                             videos_per_subject=2, seed=0)


@pytest.fixture(scope="module")
def samm_lv(tmp_path_factory) -> Path:
    return write_long_videos("samm_lv", tmp_path_factory.mktemp("lv") / "samm_lv", subjects=1,
                             videos_per_subject=1, seed=0)


def manifest(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / MANIFEST_FILE, dtype={"subject": str})


def test_long_video_specs_are_listed_apart_from_the_clip_datasets():
    assert [spec.name for spec in LONG_VIDEO_SPECS] == ["casme_sq", "samm_lv", "casme3_lv"]
    assert not set(DATASETS) & {"casme_sq", "samm_lv", "casme3_lv"}  # DATASETS (clips) is unchanged
    assert all(isinstance(spec.reader, LongVideoSheet) for spec in LONG_VIDEO_SPECS)
    assert long_video_spec("samm_lv").reader.fps == 200 and long_video_spec("casme_sq").reader.fps == 30
    with pytest.raises(KeyError, match="unknown long-video dataset 'casme2'"):
        long_video_spec("casme2")


def test_str_classes_are_the_published_samm_map_and_cover_every_label():
    """SAMM's STR map is MEAN's (long_videos.md section 1: negative = anger, contempt, disgust,
    fear, sadness; positive = happiness; surprise; others = other), derived from the clip release's
    3-class grouping, so the two cannot drift apart; CAS(ME)^3's is its 4-class grouping. Each map
    names every label of its clip release, and only the four STR classes."""
    from tsfmicro.data.datasets import casme3, casme3_lv, samm, samm_lv

    assert samm_lv.STR_EMOTIONS == {"anger": "negative", "contempt": "negative", "disgust": "negative",
                                    "fear": "negative", "sadness": "negative", "happiness": "positive",
                                    "surprise": "surprise", "other": "others"}
    assert casme3_lv.STR_EMOTIONS == {"anger": "negative", "disgust": "negative", "fear": "negative",
                                      "sad": "negative", "happy": "positive", "surprise": "surprise",
                                      "others": "others"}
    for clips, lv in ((samm.SPEC, samm_lv), (casme3.SPEC, casme3_lv)):
        assert set(lv.STR_EMOTIONS) == set(clips.labels)
        assert set(lv.STR_EMOTIONS.values()) == {"negative", "positive", "surprise", "others"}


def test_casme_sq_reader_reports_every_quirk(casme_sq):
    table = load_long_videos("casme_sq", casme_sq)
    planted = manifest(casme_sq)
    assert table.source == "SYNTHETIC" and table.annotation.name == "CAS(ME)^2code_final.xlsx"
    assert len(table.videos) == 4 and set(table.videos["subject"]) == {"s15", "s16"}
    expressions = planted[planted["kind"] != "blink"]
    assert len(table.intervals) == len(expressions) == 12  # every planted expression kept, quirks or not
    # the excluded row: empty onset and offset cells, named by file and row
    assert len(table.excluded) == 1
    row = table.excluded.iloc[0]
    assert row["row"] == 13 and row["file"].endswith("CAS(ME)^2code_final.xlsx")
    assert "empty or non-numeric onset and offset" in row["reason"]
    reasons = table.quirks["reason"].tolist()
    # offset 0 -> the apex, reported and applied
    offset0 = expressions[expressions["expected"] == "offset 0"].iloc[0]
    kept = table.intervals[(table.intervals["video"] == offset0["video"]) & (table.intervals["onset"] == offset0["onset"])]
    assert kept["offset"].item() == offset0["apex"]
    assert any(r.startswith(f"offset 0: offset taken as the apex {offset0['apex']}") for r in reasons)
    # apex 0 -> the middle of onset..offset
    apex0 = expressions[expressions["expected"] == "apex 0"].iloc[0]
    kept = table.intervals[(table.intervals["video"] == apex0["video"]) & (table.intervals["onset"] == apex0["onset"])]
    assert kept["apex"].item() == (apex0["onset"] + apex0["offset"]) // 2
    assert any(r.startswith("apex 0: apex taken as (onset + offset) // 2") for r in reasons)
    # a frame missing inside an interval (reported on its row) and in its video (one row per video)
    missing = expressions[expressions["expected"] == "frame missing"].iloc[0]
    assert any(f"1 frame(s) missing inside {missing['onset']}..{missing['offset']}" in r for r in reasons)
    assert table.videos["missing"].tolist().count(1) == 1
    assert any("1 frame(s) missing between frames 1 and 300" in r for r in reasons)
    # every valid row is read as written: frames, kind and objective class
    valid = expressions[expressions["expected"] == "valid"]
    merged = valid.merge(table.intervals, on=["video", "onset", "offset", "apex"], suffixes=("_planted", ""))
    assert len(merged) == len(valid)
    assert (merged["kind"] == merged["kind_planted"]).all() and (merged["label"] == merged["label_planted"]).all()


def test_samm_lv_reader_reports_every_quirk(samm_lv):
    table = load_long_videos("samm_lv", samm_lv)
    planted = manifest(samm_lv)
    expressions = planted[planted["kind"] != "blink"]
    assert table.videos[["subject", "video", "frames"]].values.tolist() == [["006", "006_1", 900]]
    assert len(table.intervals) == len(expressions) == 3
    assert table.excluded["reason"].str.contains("onset 0 is not a frame number").tolist() == [True]
    assert table.excluded["row"].tolist() == [14]  # 10 preamble rows, 3 intervals, then the onset-0 row
    decimal = expressions[expressions["expected"] == "decimal onset"].iloc[0]
    # written as onset - 0.5, read back rounded half up (the MEGC2020 baseline's int(x + 0.5))
    assert decimal["onset"] in table.intervals["onset"].tolist()
    rounded = f"onset {float(decimal['onset']) - 0.5} rounded to {decimal['onset']} (int(x + 0.5)"
    assert rounded in " ".join(table.quirks["reason"])
    offset0 = expressions[expressions["expected"] == "offset 0"].iloc[0]
    assert table.intervals.loc[table.intervals["onset"] == offset0["onset"], "offset"].item() == offset0["apex"]
    assert table.quirks["reason"].str.startswith("offset 0").sum() == 1
    assert set(table.intervals["kind"]) == set(expressions["kind"])


def test_casme3_lv_reader_reports_every_quirk(tmp_path):
    root = write_long_videos("casme3_lv", tmp_path / "casme3_lv", subjects=1, videos_per_subject=1, seed=1)
    table = load_long_videos("casme3_lv", root)
    planted = manifest(root)
    expressions = planted[planted["kind"] != "blink"]
    assert table.videos[["subject", "video", "frames"]].values.tolist() == [["spNO.1", "a", 449]]
    assert len(table.intervals) == len(expressions) == 3
    assert set(table.intervals["subject"]) == {"spNO.1"} and set(table.intervals["video"]) == {"a"}
    # the empty cells (4 rows of the release): excluded with their row
    assert table.excluded["row"].tolist() == [5]
    assert table.excluded["reason"].str.startswith("empty or non-numeric onset and offset").all()
    reasons = table.quirks["reason"].tolist()
    assert "filename 'A' read as 'a' (the video folders are lower case)" in reasons  # the release's 'J'
    missing = expressions[expressions["expected"] == "frame missing"].iloc[0]
    assert any(f"missing inside {missing['onset']}..{missing['offset']}" in r for r in reasons)
    # the planted blinks are in the 'eye blink' sheet, as the release annotates them
    blinks = pd.read_excel(root / "CAS(ME)3_part_A_v2.xlsx", sheet_name="eye blink", dtype=str)
    assert blinks[["Onset", "Offset"]].astype(int).values.tolist() == \
        planted.loc[planted["kind"] == "blink", ["onset", "offset"]].values.tolist()


def test_strict_raises_on_the_first_excluded_row(casme_sq):
    with pytest.raises(ValueError, match=r"row 13: empty or non-numeric onset"):
        load_long_videos("casme_sq", casme_sq, strict=True)


def test_a_folder_that_is_not_a_release_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a CAS\\(ME\\)\\^2 root: no annotation file"):
        load_long_videos("casme_sq", tmp_path)


def test_event_profile_rises_to_the_apex_and_returns():
    event = Event("micro", 10, 14, 20, "brows_raise", 1.0, "surprise")
    values = [event_profile(i, event) for i in range(9, 22)]
    assert values[0] == 0 and values[1] == 0 and values[5] == 1 and values[-2] == pytest.approx(0) and values[-1] == 0
    assert all(a <= b for a, b in zip(values[1:6], values[2:6]))  # rising to the apex


def test_spotter_finds_the_planted_intervals(casme_sq):
    """The MDMD-like spotter on 4 synthetic CAS(ME)^2 videos (300 frames, 12 planted expressions: 8
    micro of 9-16 frames, 4 macro of 24-40; 4 blinks and a one-pixel head drift as distractors),
    scored with the MEGC2020 rule (IoU >= 0.5, one to one, CAS(ME)^2 length filter).

    Chance: a random prediction of 15 frames in a 300-frame video reaches IoU >= 0.5 with a given
    planted interval from at most ~11 of the ~286 start positions (4 %); with 3 expressions per
    video it is a TP with probability <= 12 %, so chance precision is about 0.12, and 4 random
    predictions per video find each expression with probability <= 4 x 4 % = 16 % (chance recall).
    Measured (seed 0): recall 11/12, precision 11/15 (the false positives: 3 blinks and a short
    macro called micro). The bounds below are 5x chance recall and 5x chance precision."""
    table = load_long_videos("casme_sq", casme_sq)
    predictions = spot_dataset(table)
    planted = manifest(casme_sq)
    truths = planted[planted["kind"] != "blink"]
    scores = megc2020_spotting(predictions, truths, MEGC2020_LENGTHS["casme_sq"]).set_index("kind")
    overall = scores.loc["overall"]
    assert overall["recall"] >= 0.75, scores
    assert overall["precision"] >= 0.6, scores
    assert scores.loc["micro", "tp"] >= 6 and scores.loc["macro", "tp"] >= 2, scores
    assert set(predictions["crop_method"]) == {"mtcnn"}


def test_no_movement_gives_few_false_positives(tmp_path):
    """Two 300-frame videos of still faces with the head drift and flicker of the synthetic writer:
    at most one interval in all (a fixed crop box without head tracking gave 2 and 6 here)."""
    writer = LongVideoWriter(tmp_path, "casme_sq", 2, 1, 0, (640, 480), 10, 300, 30)
    found = [len(spot_video(list(writer.render_video(s, [])), PARAMETERS["casme_sq"]).intervals) for s in range(2)]
    assert sum(found) <= 1, found
