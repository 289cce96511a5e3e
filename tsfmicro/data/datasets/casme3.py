"""CAS(ME)^3 Part A (Institute of Psychology, Chinese Academy of Sciences): its spec, participant
ids, clip ids and synthetic writer (with rows of the owners' errata, tsfmicro.data.errata)."""
from __future__ import annotations

import re
from pathlib import Path

from ..specs import (SHARED_TASK, DatasetSpec, FrameLayout, PublishedSize, RowProblem, Spreadsheet,
                     SyntheticLayout, identity_task, three_class)
from ..synthetic import LABEL_MOVEMENT, _Planned, _save, _write_sheet, _Writer


def subject_id(cell: object) -> str:
    match = re.fullmatch(r"sp\s*no\.?\s*0*(\d+)", str(cell).strip(), re.I)
    if not match:
        raise RowProblem(f"subject {cell!r} is not a CAS(ME)^3 participant id like spNO.1")
    return f"spNO.{int(match.group(1))}"


def clip_id(subject: str, filename: str, onset: int) -> str:
    """CAS(ME)^3 videos hold several clips: its clip id needs the onset (spNO.1_a_355)."""
    return f"{subject}_{filename}_{onset}"


# spNO.2 and spNO.216 come early so that small trees hold rows of the owners' errata
# (tsfmicro.data.errata): spNO.2 e (apex occluded) and spNO.216 e (onset and apex written 0).
CASME3_SUBJECTS = [1, 2, 216, 3, 4, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 40, 149]
CASME3_ERRATA_VIDEO = {2: "occluded", 216: "onset_apex_zero"}  # participant -> its last clip goes to video e
CASME3_ROMAN = {"happy": "I", "disgust": "II", "fear": "III", "anger": "IV", "sad": "V", "surprise": "VI",
                "others": "VII"}


def _write_casme3(writer: _Writer) -> None:
    frames_dir = writer.root / "part_A" / "data" / "part_A_split" / "part_A"
    header = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"]
    rows = [header]
    plans = writer.plan(["anger", "disgust", "fear", "happy", "sad", "surprise", "others"], [], (4, 7),
                         counts=[64, 250, 86, 55, 57, 187, 161])  # part A's 7-class counts
    for s, clips in enumerate(plans):
        number = CASME3_SUBJECTS[s % len(CASME3_SUBJECTS)] + 1000 * (s // len(CASME3_SUBJECTS))
        subject = f"spNO.{number}"
        folder = f"spNo.{number}" if s == 1 else subject  # folders are reported to say spNo
        onset = int(writer.rng.integers(100, 400))
        for c, planned in enumerate(clips):
            video = "abcdefghijklm"[(c // 2) % 13]
            if s == 0 and c // 2 == (len(clips) - 1) // 2:
                video = "j"  # labelled 'J' (the one uppercase Filename), folder j
            erratum = CASME3_ERRATA_VIDEO.get(number) if c == len(clips) - 1 else None
            if erratum:
                video = "e"
            cell_video = "J" if video == "j" else video  # one uppercase J in the labels
            if planned.label == "others" and s < 2:
                planned.label = "Others"  # 'Others' appears beside 'others'
            if erratum == "onset_apex_zero":
                _write_casme3_zero_onset(writer, planned, rows, frames_dir / folder / video / "color", subject)
                continue
            clip = writer.render(planned)
            offset, apex = onset + planned.n_frames - 1, onset + planned.apex_index
            for index, frame in enumerate(clip.frames):
                _save(frames_dir / folder / video / "color" / f"{onset + index}.jpg", frame)
            # every cell is text in the official file, frame numbers included
            rows.append([subject, cell_video, str(onset), str(apex), str(offset), "4+7",
                         CASME3_ROMAN[planned.label.lower()], planned.label])
            writer.record(planned, subject, f"{subject}_{cell_video}_{onset}", onset, apex, offset, clip,
                          erratum="apex_occluded" if erratum == "occluded" else "")
            onset = offset + int(writer.rng.integers(20, 60))
    # Known bad rows: apex before onset; onset after offset; a clip listed twice with offset 0.
    bad = [([f"spNO.{CASME3_SUBJECTS[0]}", "d", "900", "890", "920", "4", "II", "disgust"], "apex outside"),
           ([f"spNO.{CASME3_SUBJECTS[0]}", "d", "990", "985", "980", "4", "II", "disgust"], "onset is after offset"),
           ([f"spNO.{CASME3_SUBJECTS[0]}", "e", "950", "955", "0", "4", "II", "disgust"], "offset frame is 0"),
           ([f"spNO.{CASME3_SUBJECTS[0]}", "e", "950", "955", "0", "4", "II", "disgust"], "offset frame is 0")]
    for row, reason in bad:
        rows.append(row)
        planned = _Planned(0, row[7], LABEL_MOVEMENT[row[7]], 0, 0)
        writer.record(planned, row[0], f"{row[0]}_{row[1]}_{row[2]}", int(row[2]), int(row[3]), int(row[4]),
                      None, expected=reason)
    _write_sheet(writer.root / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx", {"label": rows, "Sheet2": [], "Sheet3": []})


def _write_casme3_zero_onset(writer: _Writer, planned: _Planned, rows: list, folder: Path, subject: str) -> None:
    """spNO.216 e as the owners list it: onset and apex written 0, frames from 1.jpg (their fix: +1)."""
    planned.apex_index = 0  # after the fix the apex is the onset: an all-zero difference frame
    clip = writer.render(planned)
    for index, frame in enumerate(clip.frames):
        _save(folder / f"{index + 1}.jpg", frame)
    offset = planned.n_frames
    rows.append([subject, "e", "0", "0", str(offset), "4+7", CASME3_ROMAN[planned.label.lower()], planned.label])
    # the clip id is the reader's, after the fix (onset 1); onset and apex as written
    writer.record(planned, subject, f"{subject}_e_1", 0, 0, offset, clip, erratum="onset_apex_zero")


_NEGATIVE = ("anger", "disgust", "fear", "sad")

SPEC = DatasetSpec(
    name="casme3",
    display_name="CAS(ME)^3 Part A",
    labels=("anger", "disgust", "fear", "happy", "sad", "surprise", "others"),
    tasks={
        "7class": identity_task(("anger", "disgust", "fear", "happy", "sad", "surprise", "others")),
        "4class": three_class(_NEGATIVE, ("happy",), ("surprise",), extra=("others",),
                              source="the TSFmicro authors' code (CAS(ME)^3 4-class)"),
        # the MEGC grouping applied to CAS(ME)^3's labels, ``others`` dropped (our choice, stated)
        SHARED_TASK: three_class(_NEGATIVE, ("happy",), ("surprise",),
                                 source="MEGC2019 grouping applied to CAS(ME)^3 by tsfmicro (others dropped)"),
    },
    reader=Spreadsheet(
        patterns=("cas(me)3_part_a_me_label_jpgindex_v2.xlsx", "cas(me)3_part_a_me_label*.xls*"),
        columns={"subject": "Subject", "clip": "Filename", "onset": "Onset", "apex": "Apex",
                 "offset": "Offset", "label": "emotion"},
        sheet="label",
        subject_id=subject_id,
        clip_id=clip_id,
    ),
    # raw: part_A/<subject>/<video>/color/<frame>.jpg; the per-clip release:
    # Part_A_ME_clip/frame/spNO.1_a_355/355.jpg
    frames=FrameLayout(raw=("part_A/data/part_A_split/part_A", "data/part_A_split/part_A", "part_A_split/part_A",
                            "part_A"),
                       video_frames="color", clip_release=("Part_A_ME_clip/frame", "frame")),
    synthetic=SyntheticLayout(_write_casme3, frame_size=(640, 480), stream=2),
    obtain="Institute of Psychology, Chinese Academy of Sciences: sign the CAS(ME)^3 "
           "licence agreement (Part A is used here).",
    layout="CASME3/cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx and "
           "CASME3/part_A/data/part_A_split/part_A/spNO.1/a/color/355.jpg",
    published={
        SHARED_TASK: PublishedSize(699, 94, "Part A v2 labels, negative = anger, disgust, fear, sad (457), positive "
                                            "55, surprise 187, others dropped; subjects: at most all 94"),
        "7class": PublishedSize(860, 94, "Part A v2 labels"),
        "4class": PublishedSize(860, 94, "Part A v2 labels (negative = anger, disgust, fear, sad)"),
    },
    reselect_window=(0.15, 4),  # the authors' base.py (casme3_difference)
)
