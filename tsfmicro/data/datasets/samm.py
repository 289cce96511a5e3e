"""SAMM (Manchester Metropolitan University): its spec, subject ids and synthetic writer."""
from __future__ import annotations

import re

from ..specs import (MEGC2019_SOURCE, SHARED_TASK, DatasetSpec, FrameLayout, PublishedSize, RowProblem,
                     Spreadsheet, SyntheticLayout, identity_task, three_class)
from ..synthetic import _save, _write_sheet, _Writer


def subject_id(cell: object) -> str:
    """SAMM writes 6 where the folder is 006."""
    match = re.fullmatch(r"0*(\d+)(?:\.0)?", str(cell).strip())
    if not match:
        raise RowProblem(f"subject {cell!r} is not a SAMM subject number")
    return f"{int(match.group(1)):03d}"


SAMM_SUBJECTS = [n for n in range(6, 38) if n not in (8, 27, 29)]
SAMM_PREAMBLE = [
    ["SAMM Dataset - Master FACS Codes"],
    ["Please cite: Davison et al., SAMM: A Spontaneous Micro-Facial Movement Dataset, IEEE TAC 2018."],
    [],
    ["Key:"],
    ["R = right, L = left"],
    ["A-E = intensity"],
    ["/ = or"],
    ["Micro - 1/2 = micro-movement in the first half of the clip"],
    [],
    ["Synthetic copy written by tsfmicro: not the real SAMM data."],
    [],
    [],
    [],
]
SAMM_HEADER = ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame", "Duration",
               "Micro", "Action Units", "Estimated Emotion", "Objective Classes", "Notes"]


def _write_samm(writer: _Writer) -> None:
    frames_dir = writer.root / "SAMM"
    rows = SAMM_PREAMBLE + [SAMM_HEADER]
    au_examples = ["4+7", "(R6 or R12)+R15", "10A/B", "R14", "1+2", "12"]
    plans = writer.plan(["Anger", "Contempt", "Happiness", "Surprise", "Other"], ["Disgust", "Fear", "Sadness"], (6, 9),
                         counts=[57, 12, 26, 15, 26])  # the 5-class counts
    for s, clips in enumerate(plans):
        number = SAMM_SUBJECTS[s % len(SAMM_SUBJECTS)] + 100 * (s // len(SAMM_SUBJECTS))
        subject = f"{number:03d}"
        for c, planned in enumerate(clips):
            inducement = c // 3 + 1
            name = f"{subject}_{inducement}_{c % 3 + 1}"
            clip = writer.render(planned)
            onset = int(writer.rng.integers(1000, 9000))
            offset, apex = onset + planned.n_frames - 1, onset + planned.apex_index
            for index, frame in enumerate(clip.frames):
                # zero-padding varies between copies: one clip unpadded
                frame_name = f"{subject}_{onset + index}.jpg" if (s, c) == (0, 1) else f"{subject}_{onset + index:05d}.jpg"
                _save(frames_dir / subject / name / frame_name, frame, grey=True)
            row = [number, name, inducement, onset, apex, offset, offset - onset + 1, "Micro - 1/2",
                   au_examples[c % len(au_examples)], planned.label, 1 + c % 7, None]
            if (s, c) == (0, 0):
                row.append("stray")  # one official row has a value beyond Notes
            rows.append(row)
            writer.record(planned, subject, name, onset, apex, offset, clip)
    _write_sheet(writer.root / "SAMM_Micro_FACS_Codes_v2.xlsx", {"FACS_Movement_Only": rows})


_NEGATIVE = ("anger", "contempt", "disgust", "fear", "sadness")

SPEC = DatasetSpec(
    name="samm",
    display_name="SAMM",
    labels=("anger", "contempt", "happiness", "surprise", "other", "disgust", "fear", "sadness"),
    aliases={"others": "other"},
    tasks={
        "5class": identity_task(("anger", "contempt", "happiness", "surprise", "other")),
        "3class": three_class(_NEGATIVE, ("happiness",), ("surprise",),
                              source="the TSFmicro authors' code, equal to MEGC2019's"),
        SHARED_TASK: three_class(_NEGATIVE, ("happiness",), ("surprise",), source=MEGC2019_SOURCE),
    },
    reader=Spreadsheet(
        patterns=("samm*micro_facs_codes*.xlsx",),
        columns={"subject": "Subject", "clip": "Filename", "onset": "Onset Frame", "apex": "Apex Frame",
                 "offset": "Offset Frame", "label": "Estimated Emotion"},
        sheet=None,
        subject_id=subject_id,
    ),
    frames=FrameLayout(raw=("SAMM", ".")),
    synthetic=SyntheticLayout(_write_samm, frame_size=(960, 650), stream=1),
    obtain="Manchester Metropolitan University (Moi Hoon Yap's group): sign the SAMM "
           "licence agreement and send it as instructed on the SAMM page.",
    layout="SAMM/SAMM_Micro_FACS_Codes_v2.xlsx and SAMM/006/006_1_2/006_05562.jpg",
    published={
        "5class": PublishedSize(136, 27, "SAMM v2 codes; subjects 024 and 036 have only Disgust"),
        "3class": PublishedSize(133, 28, "SAMM v2 codes, Other dropped (as the MEGC2019 SAMM part)"),
        SHARED_TASK: PublishedSize(133, 28, "SAMM v2 codes, MEGC2019 map (equal to the SAMM part of the official "
                                            "list)"),
    },
    reselect_window=(0.10, 1),  # the authors' samm_difference: floor(0.10 * (apex - onset)), without the / 4
)
