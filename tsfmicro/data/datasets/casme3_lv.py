"""CAS(ME)^3 Part A long videos: its spec, workbook reader and synthetic writer.

Facts (shared/reference/long_videos.md, section 1): annotation annotation/partA/CAS(ME)3_part_A_v2.xls
(also _v1), sheets 'AU+Emotion' (header row Subject, Filename, Onset, Apex, Offset, AU, Expression
type, Objective class; every cell text; e.g. spNO.1, a, 37, 63, 65, 4+15+R10, Macro-expression, VII)
and 'eye blink' (Subject, Filename, Onset, Offset); frames part_A/<Subject>/<Filename>/color/<n>.jpg,
unpadded frame-file numbers; frames can be missing; 4 rows have an empty onset/apex/offset cell;
Filename is a..m, and 'J' in 5 rows (read as the folder j, reported). No emotion column (the
emotions are in the ME label file, a later join). 30 fps. The release's micro lengths (3 to 3456
frames, median 22) follow no "<= 0.5 s" rule, and MEGC's length limits for it are not verified, so
no MEGC2020 length filter is given for it (tsfmicro.spotting_metrics).

The synthetic copy writes an .xlsx (no .xls writer is installed; the reader takes both), and its
'Objective class' cells are placeholders (roman numerals cycled), not a mapping from the emotions.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..long_videos import LongVideoWriter
from ..specs import DatasetSpec, FrameLayout, LongVideoSheet, SyntheticLayout
from ..synthetic import _save, _write_sheet
from .casme3 import CASME3_SUBJECTS, clip_id
from .casme3 import SPEC as CLIP_RELEASE

# The STR emotion classes of CAS(ME)^3's 7 labels: the clip release's 4-class grouping (negative =
# anger, disgust, fear, sad; positive = happy; surprise; others), which has the classes of SAMM's
# published map (long_videos.md section 1); ours, by that analogy: no CAS(ME)^3 STR map was verified
STR_EMOTIONS = dict(CLIP_RELEASE.tasks["4class"].label_to_class)

SHEET = "AU+Emotion"
HEADER = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Expression type", "Objective class"]
_SUBJECT = re.compile(r"sp\s*no\.?\s*(\d+)", re.I)


def _cell(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value).strip()


def _subject(text: str) -> str | None:
    """spNO.1, spNo.1 (folders and labels differ in case) -> spNO.1."""
    match = _SUBJECT.fullmatch(text)
    return f"spNO.{int(match.group(1))}" if match else None


def _rows(sheets: dict) -> list[dict]:
    name = next((n for n in sheets if n.strip().lower() == SHEET.lower()), None)
    if name is None:
        raise ValueError(f"CAS(ME)^3 Part A workbook without its {SHEET!r} sheet (has {list(sheets)})")
    cells = sheets[name]
    header = next((i for i in range(min(len(cells), 20)) if _cell(cells.iloc[i, 0]).lower() == "subject"), None)
    if header is None:
        raise ValueError(f"CAS(ME)^3 Part A sheet {name!r}: no header row starting with 'Subject'")
    rows = []
    for index, row in cells.iloc[header + 1:].iterrows():
        row = list(row) + [None] * (8 - len(row))
        if not any(_cell(c) for c in row):
            continue
        record = dict(row=index + 1, sheet=name, onset=row[2], apex=row[3], offset=row[4], type=row[6],
                      label=_cell(row[7]), subject=_cell(row[0]), video=_cell(row[1]))
        subject, video = _subject(_cell(row[0])), _cell(row[1])
        if subject is None:
            record["problem"] = f"subject {_cell(row[0])!r} is not spNO.<number>"
        elif not re.fullmatch(r"[a-zA-Z]", video):
            record["problem"] = f"filename {video!r} is not one letter (a..m)"
        else:
            if video != video.lower():
                record["note"] = f"filename {video!r} read as {video.lower()!r} (the video folders are lower case)"
            # interval_id: the clip id of the same expression in CAS(ME)^3's ME labels (spNO.1_a_355),
            # whose emotion the long-video chapter joins
            record.update(subject=subject, video=video.lower(), interval_id=clip_id(subject, video.lower(),
                                                                                    _cell(row[2])))
        rows.append(record)
    return rows


def _videos(base: Path) -> list[tuple[str, str, Path]]:
    found = []
    for subject_dir in sorted(p for p in base.iterdir() if p.is_dir() and _subject(p.name)):
        for video in sorted(p for p in subject_dir.iterdir() if p.is_dir()):
            if (video / "color").is_dir():
                found.append((_subject(subject_dir.name), video.name.lower(), video / "color", video.name.lower()))
    return found


def _kind(cell: object) -> str | None:
    text = _cell(cell).lower()
    return "micro" if text.startswith("micro") else "macro" if text.startswith("macro") else None


_CLASSES = ("I", "II", "III", "IV", "V", "VI", "VII")


def _write_casme3_lv(writer: LongVideoWriter) -> None:
    writer.video_frames = writer.video_frames or 450
    base = writer.root / "part_A"
    rows, blinks = [HEADER], [["Subject", "Filename", "Onset", "Offset"]]
    for s in range(writer.subjects):
        # CAS(ME)^3's own synthetic subjects, in its order (same_people: subject s is its subject s)
        subject = f"spNO.{CASME3_SUBJECTS[s % len(CASME3_SUBJECTS)] + 1000 * (s // len(CASME3_SUBJECTS))}"
        for v in range(writer.clips_per_subject):
            video = "abcdefghijklm"[v % 13]
            folder = base / subject / video / "color"
            # lengths around the release's medians (micro 22, macro 73 frames)
            events = writer.plan_video(["negative", "positive", "surprise", "others"],
                                       {"micro": (15, 30), "macro": (50, 80), "blink": (5, 7)},
                                       {"micro": 2, "macro": 1, "blink": 1})
            for index, frame in enumerate(writer.render_video(s, events)):
                _save(folder / f"{index + 1}.jpg", frame)
            expressions = [e for e in events if e.kind != "blink"]
            for k, event in enumerate(expressions):
                expected, name = "valid", video
                if (s, v, k) == (0, 0, 0):  # 'J' in the release: an upper-case filename
                    name, expected = video.upper(), "upper-case filename"
                if (s, v, k) == (0, 0, 1):  # frames can be missing
                    (folder / f"{event.apex + 1}.jpg").unlink()
                    expected = "frame missing"
                kind = "Micro-expression" if event.kind == "micro" else "Macro-expression"
                rows.append([subject, name, str(event.start + 1), str(event.apex + 1), str(event.end + 1), "4+15",
                             kind, _CLASSES[(s + v + k) % len(_CLASSES)]])
                writer.record_event(event, s, subject, video, 1, expected)
            for event in events:
                if event.kind == "blink":
                    blinks.append([subject, video, str(event.start + 1), str(event.end + 1)])
                    writer.record_event(event, s, subject, video, 1, "distractor")
    rows.append(["spNO.1", "a", "", "", "", "4", "Micro-expression", "II"])  # empty cells, as 4 release rows
    _write_sheet(writer.root / "CAS(ME)3_part_A_v2.xlsx", {SHEET: rows, "eye blink": blinks})


SPEC = DatasetSpec(
    name="casme3_lv",
    display_name="CAS(ME)^3 Part A long videos",
    labels=(),
    tasks={},  # the emotions are in the ME label file, not this workbook (see the module docstring)
    reader=LongVideoSheet(patterns=("cas(me)3_part_a_v*.xls", "cas(me)3_part_a_v*.xlsx"), rows=_rows,
                          videos=_videos, kind=_kind, fps=30, same_people="casme3", emotions=STR_EMOTIONS,
                          emotions_source="ours: SAMM's published map (MEAN load_label.py:3-13) carried over to "
                                          "CAS(ME)^3's labels; not verified for CAS(ME)^3"),
    frames=FrameLayout(raw=("part_A/data/part_A_split/part_A", "data/part_A_split/part_A", "part_A_split/part_A",
                            "part_A")),
    synthetic=SyntheticLayout(_write_casme3_lv, frame_size=(640, 480), stream=12),
    obtain=CLIP_RELEASE.obtain,  # one request gives Part A's clips and long videos
    layout="CASME3/CAS(ME)3_part_A_v2.xls and CASME3/part_A/data/part_A_split/part_A/spNO.1/a/color/37.jpg",
)
