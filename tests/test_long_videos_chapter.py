"""Chapter 13 (spot, then recognise): the synthetic long videos show the clip dataset's people,
recognise_spotted on a synthetic SAMM-LV with a trained SAMM run (kept in the run folder), the
page's tables and planted truths, the parameters' section."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tsfmicro.data import write_synthetic
from tsfmicro.data.long_videos import LongVideoWriter, load_long_videos, write_long_videos
from tsfmicro.data.synthetic import _Writer
from tsfmicro.engine.recognise import SUBMISSION_COLUMNS, recognise_spotted
from tsfmicro.spotting_metrics import strs

ROOT = Path(__file__).resolve().parents[1]
SEED = 7


def test_a_long_videos_subject_is_the_clip_datasets_subject(tmp_path):
    """SAMM-LV's synthetic writer draws its faces from SAMM's stream at SAMM's frame size, then cuts
    its own frame around each face: subject s has SAMM's subject s's face (photo, tone, tilt, mirror)."""
    samm = _Writer(tmp_path, "samm", 4, 2, SEED, (960, 650), 1)
    long = LongVideoWriter(tmp_path, "samm_lv", 3, 1, SEED, (640, 480), 11, 900, 200, faces_of=(1, (960, 650)))
    for clip_face, long_face in zip(samm.faces, long.faces):
        assert clip_face.photo == long_face.photo and clip_face.mirrored == long_face.mirrored
        assert np.array_equal(clip_face.patch, long_face.patch) and np.array_equal(clip_face.landmarks,
                                                                                   long_face.landmarks)
        assert long_face.background.shape == (480, 640, 3)
        x0, y0 = (clip_face.centre - long_face.centre).astype(int)  # the window is cut around the face
        assert np.array_equal(clip_face.background[y0:y0 + 480, x0:x0 + 640], long_face.background)
    # the people differ from one another, and from SAMM-LV's own stream's
    assert len({face.photo for face in long.faces}) == 3
    own = LongVideoWriter(tmp_path, "samm_lv", 3, 1, SEED, (640, 480), 11, 900, 200)
    assert [f.photo for f in own.faces] != [f.photo for f in long.faces] or not np.array_equal(
        own.faces[0].patch, long.faces[0].patch)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A Study over a synthetic SAMM (4 subjects x 10 clips) and a synthetic SAMM-LV of its first two
    subjects (seed 7 both), SAMM 5-class T-S late trained (tiny, 32 px, 40 epochs, seed 0, one thread:
    fixed accuracy 0.59 when measured), the chapter configured on samm_lv."""
    from tsfmicro.study import Study

    folder = tmp_path_factory.mktemp("long_videos")
    samm = write_synthetic("samm", folder / "samm", subjects=4, clips_per_subject=10, seed=SEED)
    samm_lv = write_long_videos("samm_lv", folder / "samm_lv", subjects=2, videos_per_subject=1, seed=SEED)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        study = Study.load(ROOT / "params" / "demo.yaml", roots={"samm": str(samm), "samm_lv": str(samm_lv)},
                           overrides={
                               "data_source": "real", "datasets": {"samm": ["5class"]}, "seeds": [0],
                               "paths": {"prepared": str(folder / "prepared"), "runs": str(folder / "runs")},
                               "ablation": {"dataset": "samm"}, "gradcam": {"dataset": "samm"},
                               "composite": None, "cross_dataset": None, "temporal_branch": None, "annotation": None,
                               "imbalance": None, "baselines": None, "spatial_branch": None,
                               "long_videos": {"datasets": ["samm_lv"], "recognisers": ["samm/5class"]}})
        page = study.chapter("long_videos")
        page.runs  # trains the recogniser (the main results' run)
        yield study, page
    finally:
        torch.set_num_threads(before)


def test_recognise_spotted_scores_str_and_recognises_the_ground_truth(study, one_torch_thread, monkeypatch):
    """Every spotted interval and every planted expression recognised by its subject's own held-out
    fold model; STRS computed; the planted intervals' emotion recognised above chance (4 STR
    classes: 25 %, 1.5 of 6 expected by guessing): at least half of the 6 (2 videos x 2 micro + 1 macro)."""
    _, page = study
    run = page.runs[("samm", "5class")]
    table = page.tables["samm_lv"]
    truths = page.truths_by_dataset["samm_lv"]
    assert len(truths) == 6 and set(truths["emotion"]) <= {"negative", "positive", "surprise", "others"}
    emotions = {"anger": "negative", "contempt": "negative", "happiness": "positive", "surprise": "surprise",
                "other": "others"}
    result = recognise_spotted(run, table, truths, emotions, spotted=page.spotting["samm_lv"].spotted)
    assert result.emotions == ("negative", "positive", "surprise", "others")
    # each interval by the fold model that never saw its subject (both are SAMM's held-out subjects)
    assert (result.truths["fold"] == result.truths["subject"]).all()
    assert (result.spotted["fold"] == result.spotted["subject"]).all()
    sums = result.truths[[f"str_{e}" for e in result.emotions]].sum(axis=1)
    assert np.allclose(sums, 1, atol=1e-5)
    assert (result.truths["str_negative"] == result.truths["prob_anger"] + result.truths["prob_contempt"]).all()
    submission = result.submission()
    assert list(submission.columns) == SUBMISSION_COLUMNS and len(submission) == len(result.spotted)
    scored = strs(submission, truths)
    assert 0 <= scored.strs <= 1 and scored.spotting.tp >= 3
    correct = (result.truths["pred_emotion"] == result.truths["emotion"]).sum()
    assert correct >= 3, result.truths[["subject", "kind", "emotion", "pred_label", "pred_emotion"]]
    # kept in the run folder: reopened, nothing runs again
    assert result.path.parent == run.path / "evaluations" and result.path.is_file()
    monkeypatch.setattr("tsfmicro.engine.recognise.interval_probabilities",
                        lambda *a, **k: pytest.fail("recognised again"))
    again = recognise_spotted(run, table, truths, emotions, spotted=page.spotting["samm_lv"].spotted)
    pd.testing.assert_frame_equal(again.truths, result.truths, check_dtype=False)


def test_the_page_shows_spotting_strs_recognition_and_its_truths(study):
    _, page = study
    spotting = page.spotting_table
    ours = spotting[spotting["method"] == "MDMD-like (ours)"]
    assert list(ours["kind"]) == ["micro", "macro", "overall"] and (ours["dataset"] == "SAMM-LV").all()
    assert ours.set_index("kind").loc["overall", "truths"] == 6
    mdmd = spotting[spotting["method"].str.startswith("MDMD (")]
    assert mdmd.set_index("kind").loc["overall", "f1"] == pytest.approx(0.0445)  # long_videos.md section 5
    assert mdmd["protocol"].str.startswith("their protocol").all()
    quantities = set(page.strs_table["quantity"])
    assert {"strs", "spot_f1", "analysis_f1"} <= quantities
    recognition = page.recognition_table
    assert list(recognition["intervals"]) == ["ground-truth intervals (perfect spotting)", "spotted true positives"]
    assert recognition["n"].iloc[0] == 6 and (recognition["chance"] == 0.25).all()
    truths = page.truths_table()
    assert len(truths) == 3 and set(truths["recovered"]) <= {"yes", "no", "not decided"}
    assert truths["truth"].str.contains("blinks").any()
    spotted = truths[truths["truth"].str.contains("spotted \\(recall")].iloc[0]
    assert spotted["recovered"] == "yes", truths.to_string()
    timeline = page.timeline("samm_lv")
    assert set(timeline["scores"].columns) == {"frame", "micro", "macro"} and len(timeline["truths"]) == 3
    assert "pred_emotion" in timeline["spotted"].columns
    assert "SAMM-LV" in page.summary() and "STRS" in page.summary()


def test_the_section_is_checked():
    from tsfmicro.params import Params

    with pytest.raises(ValueError, match="long_videos.recognisers: casme2 is not the clip dataset of the same "
                                         "people as any of long_videos.datasets \\(samm\\)"):
        Params.load(ROOT / "params" / "demo.yaml", overrides={"long_videos": {"recognisers": ["casme2/5class"]}})
    with pytest.raises(ValueError, match="long_videos.datasets: .*casme_sqq"):
        Params.load(ROOT / "params" / "demo.yaml", overrides={"long_videos": {"datasets": ["casme_sqq"]}})
    with pytest.raises(ValueError, match="long_videos.recognisers: samm/3class is not in datasets"):
        Params.load(ROOT / "params" / "demo.yaml", overrides={"long_videos": {"recognisers": ["samm/3class"]}})
    params = Params.load(ROOT / "params" / "demo.yaml")
    from tsfmicro.chapters.long_videos import recognisers, runs
    assert recognisers(params) == {"samm_lv": ("samm", "5class")}
    main = [run for run in params.planned_runs() if run.dataset == "samm" and run.task == "5class"
            and run.fusion == "ts_late" and not run.options]
    assert list(runs(params).values()) == main[:1]  # the main results' run, shared
    paper = Params.load(ROOT / "params" / "paper.yaml")
    assert paper.section("long_videos").datasets == ("casme_sq", "samm_lv", "casme3_lv")


def test_the_plan_names_the_spotting_step_and_the_missing_folders(monkeypatch, tmp_path):
    from tsfmicro.chapters.long_videos import plan_lines
    from tsfmicro.params import Params

    for name in ("casme_sq", "samm_lv", "casme3_lv"):
        monkeypatch.delenv(f"TSFMICRO_{name.upper()}_ROOT", raising=False)
    lines = plan_lines(Params.load(ROOT / "params" / "paper.yaml"))
    assert len(lines) == 4 and all("folder not given" in line for line in lines[1:])
    assert "roots.samm_lv or TSFMICRO_SAMM_LV_ROOT" in lines[2]
    given = plan_lines(Params.load(ROOT / "params" / "paper.yaml", roots={"samm_lv": str(tmp_path)}))
    assert f"SAMM-LV: spot every video of {tmp_path}" in given[2] and "recognise with samm/5class" in given[2]
    assert "spotting only" not in given[2] and "folder not given" in given[1]
    assert plan_lines(Params.load(ROOT / "params" / "demo.yaml", overrides={"long_videos": None})) == []


def test_on_real_data_the_emotion_is_joined_from_the_clip_dataset_by_the_intervals_name(study, monkeypatch):
    """SAMM-LV's sheet has no emotion: each interval takes the SAMM clip's of its Filename (MEAN's join),
    mapped to the STR classes; an interval without a clip of that name has none ("")."""
    from tsfmicro.chapters import get
    from tsfmicro.chapters.long_videos import LongVideosPage
    from tsfmicro.data.annotations import load_clips

    study_, _ = study
    monkeypatch.setattr(LongVideosPage, "synthetic", property(lambda self: False))
    page = LongVideosPage(study_, get("long_videos"))
    truths = page.truths_by_dataset["samm_lv"]
    intervals = page.tables["samm_lv"].intervals
    assert len(truths) == len(intervals) and (intervals["interval_id"].str.fullmatch(r"\d{3}_\d_\d")).all()
    clips = load_clips("samm", study_.parameters.root("samm")).clips.set_index("clip_id")["label"]
    str_class = {"anger": "negative", "contempt": "negative", "disgust": "negative", "fear": "negative",
                 "sadness": "negative", "happiness": "positive", "surprise": "surprise", "other": "others"}
    expected = [str_class[clips[i].lower()] if i in clips.index else "" for i in intervals["interval_id"]]
    assert list(truths["emotion"]) == expected and any(expected)


@pytest.mark.parametrize("name, clips", [("samm_lv", "samm"), ("casme3_lv", "casme3")])
def test_written_long_videos_show_the_clip_datasets_people(name, clips, tmp_path):
    """The same seed: subject s of the long videos has the photo and the id of the clip dataset's subject s."""
    from tsfmicro.data.long_videos import long_video_spec

    assert long_video_spec(name).reader.same_people == clips
    long = write_long_videos(name, tmp_path / name, subjects=2, videos_per_subject=1, seed=3)
    short = write_synthetic(clips, tmp_path / clips, subjects=2, clips_per_subject=3, seed=3)
    read = lambda root: pd.read_csv(root / "TSFMICRO_SYNTHETIC_manifest.csv", dtype={"subject": str})  # noqa: E731
    first = lambda table: table.drop_duplicates("subject")[["subject", "photo"]].values.tolist()  # noqa: E731
    assert first(read(long)) == first(read(short))
    assert set(load_long_videos(name, long).intervals["subject"]) == set(read(short)["subject"])


def test_spotting_is_kept_per_video_and_a_stopped_run_goes_on(study, tmp_path, monkeypatch):
    """The spotting of every video is kept as it is done: with the dataset's files gone but the videos'
    kept, only the first video (whose scores the timeline shows) is spotted again; then all is read."""
    import tsfmicro.spotting as spotting
    from tsfmicro.chapters.long_videos import spot

    _, page = study
    table = page.tables["samm_lv"]
    first = spot(table, tmp_path)
    assert len(list(tmp_path.glob("spotting_samm_lv_*_videos/*.csv"))) == len(table.videos) == 2
    for file in tmp_path.glob("spotting_samm_lv_*_*.*"):
        file.unlink()
    calls = []
    real = spotting.spot_video
    monkeypatch.setattr(spotting, "spot_video", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = spot(table, tmp_path)
    assert len(calls) == 1
    pd.testing.assert_frame_equal(again.spotted, first.spotted, check_dtype=False)
    monkeypatch.setattr(spotting, "spot_video", lambda *a, **k: pytest.fail("spotted again"))
    read = spot(table, tmp_path)
    pd.testing.assert_frame_equal(read.spotted, first.spotted, check_dtype=False)
    assert read.example == first.example and set(read.scores.columns) == {"frame", "micro", "macro"}
