"""CASME II (Institute of Psychology, Chinese Academy of Sciences): its spec, subject ids and
synthetic writer."""
from __future__ import annotations

import re

from ..specs import (MEGC2019_SOURCE, SHARED_TASK, DatasetSpec, FrameLayout, PublishedSize, RowProblem,
                     Spreadsheet, SyntheticLayout, identity_task, three_class)
from ..synthetic import _crop, _save, _write_sheet, _Writer


def subject_id(cell: object) -> str:
    """1, '01' and 'sub01' all mean folder sub01 (the releases differ)."""
    match = re.fullmatch(r"(?:sub)?0*(\d+)(?:\.0)?", str(cell).strip(), re.I)
    if not match:
        raise RowProblem(f"subject {cell!r} is not a CASME II subject number")
    return f"sub{int(match.group(1)):02d}"


def _write_casme2(writer: _Writer) -> None:
    raw, cropped = writer.root / "CASME2_RAW_selected", writer.root / "Cropped"
    header = ["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None, "Action Units",
              "Estimated Emotion"]
    rows = [header]
    irregular = {(0, 0): "EP01_2", (1, 0): "EP06_02_01", (2, 0): "EP09f"}  # real names are not regular
    slash_apex = (min(3, writer.subjects - 1), min(1, writer.clips_per_subject - 1))
    apex_at_offset = (min(4, writer.subjects - 1), min(2, writer.clips_per_subject - 1))
    plans = writer.plan(["happiness", "surprise", "disgust", "repression", "others"], ["fear", "sadness"], (6, 9),
                         counts=[32, 28, 63, 27, 99])  # the 2019 sheet's 5-class counts
    for s, clips in enumerate(plans):
        subject = f"sub{s + 1:02d}"
        for c, planned in enumerate(clips):
            if (s, c) == slash_apex:  # '/' apex: the reader takes the middle frame, so put the apex there
                planned.apex_index = (planned.n_frames - 1) // 2
            elif (s, c) == apex_at_offset:  # apex equal to offset occurs in the real sheet
                planned.apex_index = planned.n_frames - 1
            name = irregular.get((s, c), f"EP{c + 2:02d}_{s % 7 + 1:02d}" + ("f" if c % 3 else ""))
            clip = writer.render(planned)
            onset = int(writer.rng.integers(20, 150))
            offset, apex = onset + planned.n_frames - 1, onset + planned.apex_index
            for index, frame in enumerate(clip.frames):
                _save(raw / subject / name / f"img{onset + index}.jpg", frame)
                _save(cropped / subject / name / f"reg_img{onset + index}.jpg", _crop(frame, clip.face_box))
            apex_cell = "/" if (s, c) == slash_apex else apex
            action_units = 12 if c % 2 else "4+7+L10"  # numbers in some rows, text in others
            rows.append([f"{s + 1:02d}", name, None, onset, apex_cell, offset, None, action_units, planned.label])
            writer.record(planned, subject, name, onset, apex, offset, clip)
    _write_sheet(writer.root / "CASME2-coding-20190701.xlsx", {"Sheet1": rows})


SPEC = DatasetSpec(
    name="casme2",
    display_name="CASME II",
    labels=("happiness", "surprise", "disgust", "repression", "others", "fear", "sadness"),
    tasks={
        "5class": identity_task(("happiness", "surprise", "disgust", "repression", "others")),
        # The authors' code puts fear and sadness into negative (the MEGC list does not).
        "3class": three_class(("disgust", "repression", "fear", "sadness"), ("happiness",), ("surprise",),
                              source="the TSFmicro authors' code (Cross-Innovation-Lab/TSFmicro)"),
        # MEGC2019: negative = disgust + repression; fear, sadness and others dropped
        SHARED_TASK: three_class(("disgust", "repression"), ("happiness",), ("surprise",), source=MEGC2019_SOURCE),
    },
    reader=Spreadsheet(
        patterns=("casme2-coding-*.xlsx",),
        columns={"subject": "Subject", "clip": "Filename", "onset": "OnsetFrame", "apex": "ApexFrame",
                 "offset": "OffsetFrame", "label": "Estimated Emotion"},
        sheet="Sheet1",
        subject_id=subject_id,
    ),
    frames=FrameLayout(raw=("CASME2_RAW_selected/CASME2_RAW_selected", "CASME2_RAW_selected", "CASME2_RAW"),
                       precropped=("Cropped-updated/Cropped", "Cropped", "Cropped-updated")),
    synthetic=SyntheticLayout(_write_casme2, frame_size=(640, 480), stream=0),
    obtain="Institute of Psychology, Chinese Academy of Sciences (Fu Xiaolan's lab): "
           "fill in the CASME II request form and sign the licence agreement.",
    layout="CASME2/CASME2-coding-20190701.xlsx and CASME2/CASME2_RAW_selected/sub01/EP02_01f/img46.jpg "
           "(or the pre-cropped CASME2/Cropped/sub01/EP02_01f/reg_img46.jpg)",
    published={
        "5class": PublishedSize(249, 26, "2019-07-01 coding file without fear and sadness"),
        "3class": PublishedSize(156, 26, "2019-07-01 labels, authors' map (negative = disgust, repression, fear, "
                                         "sadness); subjects: at most all 26"),
        SHARED_TASK: PublishedSize(150, 26, "2019-07-01 labels, MEGC2019 map (negative = disgust, repression): "
                                            "63 + 27 + 32 + 28; the official list keeps 145 of them (24 subjects); "
                                            "subjects: at most all 26"),
    },
    reselect_window=(0.15, 4),  # the authors' base.py (flow_difference): floor(0.15 * (apex - onset) / 4)
)
