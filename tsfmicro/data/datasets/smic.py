"""SMIC-HS (University of Oulu): its spec and synthetic writer. SMIC has no annotation file: its
folders give the label (tsfmicro.data.annotations reads LabelFolders)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..specs import (MEGC2019_SOURCE, SHARED_TASK, DatasetSpec, FrameLayout, LabelFolders, PublishedSize,
                     SyntheticLayout, identity_task)
from ..synthetic import _crop, _save, _Writer

SMIC_SUBJECTS = [n for n in range(1, 21) if n not in (7, 10, 16, 17)]
SMIC_SHORT = {"negative": "ne", "positive": "po", "surprise": "sur"}


def _write_smic(writer: _Writer) -> None:
    raw = writer.root / "SMIC_all_raw" / "HS"
    cropped = writer.root / "SMIC_all_cropped" / "HS"
    plans = writer.plan(["negative", "positive", "surprise"], [], (3, 3))
    for s, clips in enumerate(plans):
        subject = f"s{SMIC_SUBJECTS[s % len(SMIC_SUBJECTS)] + 20 * (s // len(SMIC_SUBJECTS))}"
        counters = {label: 0 for label in SMIC_SHORT}
        for planned in clips:
            planned.apex_index = (planned.n_frames - 1) // 2  # SMIC readers take the middle frame
            counters[planned.label] += 1
            name = f"{subject}_{SMIC_SHORT[planned.label]}_{counters[planned.label]:02d}"
            clip = writer.render(planned)
            onset = int(writer.rng.integers(100000, 900000))
            offset, apex = onset + planned.n_frames - 1, onset + planned.apex_index
            for index, frame in enumerate(clip.frames):
                relative = Path(subject) / "micro" / planned.label / name
                _save(raw / relative / f"image{onset + index:06d}.bmp", frame)
                _save(cropped / relative / f"reg_image{onset + index:06d}.bmp", _crop(frame, clip.face_box))
            writer.record(planned, subject, name, onset, apex, offset, clip)
        if s == 0:  # non_micro clips are not part of the dataset; readers must skip them
            _save(raw / subject / "non_micro" / f"{subject}_no_01" / "image000001.bmp", writer.faces[0].background.astype(np.uint8))


_CLASSES = ("negative", "positive", "surprise")

SPEC = DatasetSpec(
    name="smic",
    display_name="SMIC-HS",
    labels=_CLASSES,
    tasks={"3class": identity_task(_CLASSES, source="SMIC-HS folders"),
           SHARED_TASK: identity_task(_CLASSES, source=MEGC2019_SOURCE)},
    reader=LabelFolders(),
    frames=FrameLayout(raw=("SMIC_all_raw/HS", "HS"), precropped=("SMIC_all_cropped/HS",)),
    synthetic=SyntheticLayout(_write_smic, frame_size=(640, 480), stream=3),
    obtain="University of Oulu, Center for Machine Vision and Signal Analysis: sign the "
           "SMIC licence agreement.",
    layout="SMIC/SMIC_all_raw/HS/s1/micro/negative/s1_ne_01/image106950.bmp",
    published={
        SHARED_TASK: PublishedSize(164, 16, "SMIC-HS (its own three classes)"),
        "3class": PublishedSize(164, 16, "SMIC-HS"),
    },
    # reselect_window None: the authors have no script for SMIC (tsfmicro.data.cache uses CASME II's rule)
)
