"""CAS(ME)^2 long videos ("CASME_sq" in the MEGC code): its spec, workbook reader and synthetic writer.

Facts (shared/reference/long_videos.md, section 1): frames rawpic/<subject>/<NN_code name>/img<NNN>.jpg
(1-based, 3-digit padding); the workbook CAS(ME)^2code_final.xlsx has the main table first (no
header, 9 columns: participant, video name_expression number, onset, apex, offset, AUs, objective
class, expression type, self-reported emotion), then 'naming rule1' (subject folder in column 1,
participant number in column 2) and 'naming rule2' (video code as text in column 0, video name in
column 1); a video's folder is found by the 4 characters after the first "_" of its name. 30 fps.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..long_videos import LongVideoWriter
from ..specs import DatasetSpec, FrameLayout, LongVideoSheet, SyntheticLayout, identity_task
from ..synthetic import _save, _write_sheet

CLASSES = ("negative", "positive", "surprise", "others")  # the objective class column


def _cell(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value).strip()


def _integer(value: object) -> int | None:
    try:
        return int(float(_cell(value)))
    except ValueError:
        return None


def _rows(sheets: dict) -> list[dict]:
    names = list(sheets)
    lower = {name.strip().lower(): name for name in names}
    if "naming rule1" not in lower or "naming rule2" not in lower:
        raise ValueError(f"CAS(ME)^2 workbook without its 'naming rule1' and 'naming rule2' sheets (has {names})")
    rule1, rule2 = sheets[lower["naming rule1"]], sheets[lower["naming rule2"]]
    participants = {_integer(number): _cell(folder) for folder, number in rule1.iloc[:, 1:3].itertuples(index=False)
                    if _integer(number) is not None and _cell(folder)}
    # codes are text ('0401'); a copy saved with numbers lost the zero: pad it back
    codes = {_cell(name): f"{_integer(code):04d}" for code, name in rule2.iloc[:, :2].itertuples(index=False)
             if _integer(code) is not None and _cell(name)}
    rows = []
    for index, cells in sheets[names[0]].iterrows():
        cells = list(cells) + [None] * (9 - len(cells))
        if not any(_cell(c) for c in cells):
            continue
        record = dict(row=index + 1, sheet=names[0], onset=cells[2], apex=cells[3], offset=cells[4], type=cells[7],
                      label=_cell(cells[6]), subject=_cell(cells[0]), video=_cell(cells[1]))
        subject = participants.get(_integer(cells[0]))
        name = _cell(cells[1]).rsplit("_", 1)[0]
        if subject is None:
            record["problem"] = f"participant {_cell(cells[0])!r} is not in the 'naming rule1' sheet"
        elif name not in codes:
            record["problem"] = f"video name {name!r} (from {_cell(cells[1])!r}) is not in the 'naming rule2' sheet"
        else:
            record.update(subject=subject, video=codes[name])
        rows.append(record)
    return rows


def _videos(base: Path) -> list[tuple[str, str, Path]]:
    return [(subject.name, folder.name.split("_", 1)[1][:4], folder)
            for subject in sorted(p for p in base.iterdir() if p.is_dir())
            for folder in sorted(p for p in subject.iterdir() if p.is_dir() and "_" in p.name)]


def _kind(cell: object) -> str | None:
    text = _cell(cell).lower()
    return "micro" if text.startswith("micro") else "macro" if text.startswith("macro") else None


# Synthetic: real-looking codes and names (code, name in 'naming rule2', the folder's suffix)
_VIDEOS = [("0101", "disgust1", "disgustingteeth"), ("0401", "anger1", "angryneighbour"),
           ("0502", "happy2", "funnyinterview"), ("0102", "disgust2", "eatingworms")]
_SUBJECTS = [15, 16, 19, 20, 21, 22, 23, 24]
_REPORTED = {"negative": "disgust", "positive": "happy", "surprise": "surprise", "others": "others"}


def _write_casme_sq(writer: LongVideoWriter) -> None:
    writer.video_frames = writer.video_frames or 300
    rawpic = writer.root / "rawpic"
    main = []
    for s in range(writer.subjects):
        number = _SUBJECTS[s % len(_SUBJECTS)] + 100 * (s // len(_SUBJECTS))
        for v in range(writer.clips_per_subject):
            code, name, suffix = _VIDEOS[(s + v) % len(_VIDEOS)]
            folder = rawpic / f"s{number}" / f"{number}_{code}{suffix}"
            events = writer.plan_video(list(CLASSES), {"micro": (9, 16), "macro": (24, 40), "blink": (5, 7)},
                                       {"micro": 2, "macro": 1, "blink": 1})
            for index, frame in enumerate(writer.render_video(s, events)):
                _save(folder / f"img{index + 1:03d}.jpg", frame)
            expressions = [e for e in events if e.kind != "blink"]
            for k, event in enumerate(expressions):
                onset, apex, offset = event.start + 1, event.apex + 1, event.end + 1
                expected = "valid"
                if (s, v, k) == (0, 0, 0):  # offset written 0: the reader takes the apex
                    offset, expected = 0, "offset 0"
                elif (s, v, k) == (writer.subjects - 1, writer.clips_per_subject - 1, 1):  # apex 0: the middle
                    apex, expected = 0, "apex 0"
                if (s, v) == (0, 0) and event.kind == "macro":  # a frame missing inside this interval
                    (folder / f"img{event.apex + 1:03d}.jpg").unlink()
                    expected = "frame missing"
                main.append([s + 1, f"{name}_{k + 1}", onset, apex, offset, "4+10" if k % 2 else "12",
                             event.label, f"{event.kind}-expression", _REPORTED[event.label]])
                writer.record_event(event, s, f"s{number}", folder.name, 1, expected)
            for event in events:
                if event.kind == "blink":
                    writer.record_event(event, s, f"s{number}", folder.name, 1, "distractor")
    # a row with empty onset and offset cells: reported, left out
    main.append([1, f"{_VIDEOS[0][1]}_9", None, 57, None, "4", "others", "micro-expression", "others"])
    rule1 = [["number", "subject", "participant"]] + [
        [s + 1, f"s{_SUBJECTS[s % len(_SUBJECTS)] + 100 * (s // len(_SUBJECTS))}", s + 1] for s in range(writer.subjects)]
    rule2 = [[code, name] for code, name, _ in _VIDEOS]
    _write_sheet(writer.root / "CAS(ME)^2code_final.xlsx",
                 {"CASFEcode_final": main, "naming rule1": rule1, "naming rule2": rule2})


SPEC = DatasetSpec(
    name="casme_sq",
    display_name="CAS(ME)^2",
    labels=CLASSES,
    tasks={"4class_objective": identity_task(CLASSES, "the workbook's objective class column (MEGC STR)")},
    reader=LongVideoSheet(patterns=("cas(me)^2code_final*.xlsx", "cas(me)2code_final*.xlsx"), rows=_rows,
                          videos=_videos, kind=_kind, fps=30),
    frames=FrameLayout(raw=("rawpic", "CAS(ME)^2/rawpic")),
    synthetic=SyntheticLayout(_write_casme_sq, frame_size=(640, 480), stream=10),
    obtain="Institute of Psychology, Chinese Academy of Sciences (Fu Xiaolan's lab): "
           "fill in the CAS(ME)^2 request form and sign the licence agreement.",
    layout="CASME_sq/CAS(ME)^2code_final.xlsx and CASME_sq/rawpic/s15/15_0101disgustingteeth/img001.jpg",
)
