"""SAMM Long Videos (SAMM-LV): its spec, workbook reader and synthetic writer.

Facts (shared/reference/long_videos.md, section 1): frames SAMM_longvideos/<sss>_<v>/<sss>_<v>_<n>.jpg
(5-digit n, some copies 4); workbooks SAMM_LongVideos_V1/V2/V3_Release.xlsx (the newest by name
is read): rows 0-9 a preamble, then one row per interval, no header: Subject, Filename
(006_1_1 = subject_video_index), Inducement Code, Onset, Apex, Offset, Duration, Type ('Micro -
1/2', 'Macro'), Action Units, Notes (V1: the same positions for these). Values may be decimal
(the MEGC2020 baseline rounds int(x + 0.5)). No emotion column: each interval keeps its Filename
(``interval_id``), the name of the SAMM clip of the same expression, whose emotion the long-video
chapter joins (as MEAN does) and maps to the STR classes (``STR_EMOTIONS``). 200 fps.

The people are SAMM's (``same_people``): SAMM's runs recognise the intervals, and the synthetic
copy draws SAMM's synthetic subjects' faces (subject s here is SAMM's subject s).
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..long_videos import LongVideoWriter
from ..specs import DatasetSpec, FrameLayout, LongVideoSheet, SyntheticLayout
from ..synthetic import _save, _write_sheet
from .samm import SAMM_SUBJECTS
from .samm import SPEC as SAMM_CLIPS

# The STR emotion classes of SAMM's labels (long_videos.md section 1: MEAN load_label.py:3-13,40-47,
# which joins the SAMM micro sheet on the long video's Filename for the emotion): the clip release's
# 3-class grouping (negative = anger, contempt, disgust, fear, sadness; positive = happiness;
# surprise), plus the "other" label that grouping leaves out, as its own class "others"
STR_EMOTIONS = {**SAMM_CLIPS.tasks["3class"].label_to_class, "other": "others"}

PREAMBLE_ROWS = 10
_FILENAME = re.compile(r"(\d+)_(\d+)_(\d+)")


def _cell(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value).strip()


def _rows(sheets: dict) -> list[dict]:
    name = next(iter(sheets))
    rows = []
    for index, cells in sheets[name].iloc[PREAMBLE_ROWS:].iterrows():
        cells = list(cells) + [None] * (10 - len(cells))
        if not any(_cell(c) for c in cells) or _cell(cells[1]).lower() == "filename":  # blank, or a header line
            continue
        record = dict(row=index + 1, sheet=name, onset=cells[3], apex=cells[4], offset=cells[5], type=cells[7],
                      label="", subject=_cell(cells[0]), video=_cell(cells[1]))
        match = _FILENAME.fullmatch(_cell(cells[1]).split(".")[0])
        if match is None:
            record["problem"] = f"filename {_cell(cells[1])!r} is not subject_video_index (006_1_1)"
        else:
            record.update(subject=f"{int(match.group(1)):03d}", video=f"{int(match.group(1)):03d}_{match.group(2)}",
                          interval_id=_cell(cells[1]).split(".")[0])  # SAMM's clip name: the emotion's join key
        rows.append(record)
    return rows


def _videos(base: Path) -> list[tuple[str, str, Path]]:
    found = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir()):
        match = re.fullmatch(r"(\d+)_(\d+)", folder.name)
        if match:
            found.append((f"{int(match.group(1)):03d}", f"{int(match.group(1)):03d}_{match.group(2)}", folder))
    return found


def _kind(cell: object) -> str | None:
    # the MEGC2020 baseline: micro iff the type's 2nd character is 'i' ('Micro - 1/2' vs 'Macro')
    text = _cell(cell).lower()
    return "micro" if text.startswith("mi") else "macro" if text.startswith("ma") else None


def _write_samm_lv(writer: LongVideoWriter) -> None:
    writer.video_frames = writer.video_frames or 900
    base = writer.root / "SAMM_longvideos"
    rows = [["SAMM Long Videos - synthetic copy written by tsfmicro: not the real SAMM-LV data."]] + \
        [[] for _ in range(PREAMBLE_ROWS - 1)]
    for s in range(writer.subjects):
        subject = f"{SAMM_SUBJECTS[s % len(SAMM_SUBJECTS)] + 100 * (s // len(SAMM_SUBJECTS)):03d}"
        for v in range(writer.clips_per_subject):
            video = f"{subject}_{v + 1}"
            # lengths at 200 fps (micro 30-101 frames in the release, macro from 102)
            events = writer.plan_video(["negative", "positive", "surprise", "others"],
                                       {"micro": (50, 90), "macro": (120, 200), "blink": (30, 45)},
                                       {"micro": 2, "macro": 1, "blink": 1})
            for index, frame in enumerate(writer.render_video(s, events, grey=True)):
                _save(base / video / f"{video}_{index + 1:05d}.jpg", frame, grey=True)
            expressions = [e for e in events if e.kind != "blink"]
            for k, event in enumerate(expressions):
                onset, apex, offset = event.start + 1, event.apex + 1, event.end + 1
                expected = "valid"
                if (s, v, k) == (0, 0, 1):  # a decimal onset, rounded half up by the reader
                    onset, expected = onset - 0.5, "decimal onset"
                if (s, v, k) == (writer.subjects - 1, writer.clips_per_subject - 1, 0):  # offset 0: the apex
                    offset, expected = 0, "offset 0"
                kind = "Micro - 1/2" if event.kind == "micro" else "Macro"
                rows.append([int(subject), f"{video}_{k + 1}", 1, onset, apex, offset,
                             (offset - onset + 1) if offset else 0, kind, "12", None])
                writer.record_event(event, s, subject, video, 1, expected)
            for event in events:
                if event.kind == "blink":
                    writer.record_event(event, s, subject, video, 1, "distractor")
    rows.append([int(subject), f"{subject}_1_9", 1, 0, 20, 40, 21, "Macro", "4", None])  # onset 0: left out
    _write_sheet(writer.root / "SAMM_LongVideos_V2_Release.xlsx", {"FACS_Movement_Only": rows})


SPEC = DatasetSpec(
    name="samm_lv",
    display_name="SAMM-LV",
    labels=(),
    tasks={},  # emotions are not in the long-video workbook (see the module docstring)
    reader=LongVideoSheet(patterns=("samm_longvideos_v*.xlsx",), rows=_rows, videos=_videos, kind=_kind, fps=200,
                          same_people="samm", emotions=STR_EMOTIONS,
                          emotions_source="MEAN (genbing99/MEAN_Spot-then-recognize) load_label.py:3-13,40-47 "
                                          "(long_videos.md section 1)"),
    frames=FrameLayout(raw=("SAMM_longvideos", "SAMM_longvideos/SAMM_longvideos")),
    # the faces are SAMM's synthetic subjects' (same_people), cut to this frame size around the face
    # (480 x 360: a small frame keeps the demo's writing and spotting within its budget)
    synthetic=SyntheticLayout(_write_samm_lv, frame_size=(480, 360), stream=11),
    obtain="Manchester Metropolitan University (Moi Hoon Yap's group): sign the SAMM licence agreement and "
           "ask for the SAMM Long Videos as instructed on the SAMM page.",
    layout="SAMM_LV/SAMM_LongVideos_V2_Release.xlsx and SAMM_LV/SAMM_longvideos/006_1/006_1_00001.jpg",
)
