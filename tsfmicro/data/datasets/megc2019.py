"""The MEGC2019 composite (CASME II + SAMM + SMIC-HS, the official combined_3class_gt.csv): its
spec, the list's ids and the synthetic composite folder."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..._io import write_text
from ..specs import (MEGC2019_SOURCE, SHARED_TASK, CompositeList, DatasetSpec, PublishedSize, SyntheticComposite,
                     identity_task)
from ..synthetic import write_layout
from . import casme2, samm, smic

PARTS = (casme2.SPEC, samm.SPEC, smic.SPEC)
LIST_FILE = "combined_3class_gt.csv"
_CLASSES = ("negative", "positive", "surprise")  # the list's labels 0, 1, 2


def list_ids(part: str, subject: str, clip: str) -> tuple[str, str]:
    """The list's ids in our form: SMIC's s01 / s01_ne_01 are folders s1 / s1_ne_01."""
    if part == "smic":
        subject = re.sub(r"^s0*(\d+)$", r"s\1", subject, flags=re.I)
        clip = re.sub(r"^s0*(\d+)_", r"s\1_", clip, flags=re.I)
        return subject, clip
    return {spec.name: spec for spec in PARTS}[part].reader.subject_id(subject), clip


def _write_synthetic(root: Path, subjects: int, clips_per_subject: int, seed: int) -> pd.DataFrame:
    """casme2/, samm/ and smic/ (each a synthetic tree of that size and seed) and the list of
    their valid clips in the MEGC2019 grouping (each part's 3class_megc map)."""
    manifests = []
    lines = []
    for spec in PARTS:
        part = spec.name
        manifest = write_layout(root / part, spec, subjects, clips_per_subject, seed)
        manifests.append(manifest)
        classes = spec.tasks[SHARED_TASK]
        for row in manifest.itertuples():
            name = classes.label_to_class.get(row.label.lower())
            if name is None or row.expected != "valid":
                continue
            subject, clip = row.subject, row.clip_id
            if part == "smic":  # the official list zero-pads SMIC ids: s01, s01_ne_01
                number = int(subject[1:])
                subject, clip = f"s{number:02d}", clip.replace(f"{row.subject}_", f"s{number:02d}_", 1)
            lines.append(f"{part},{subject},{clip},{classes.class_names.index(name)}")
    write_text(root / LIST_FILE, "\n".join(lines) + "\n")
    return pd.concat(manifests, ignore_index=True)


SPEC = DatasetSpec(
    name="megc2019",
    display_name="MEGC2019 composite",
    labels=_CLASSES,
    tasks={"3class": identity_task(_CLASSES, source=MEGC2019_SOURCE)},
    reader=CompositeList(file=LIST_FILE, task="3class", ids=list_ids),
    parts=tuple(spec.name for spec in PARTS),
    synthetic=SyntheticComposite(_write_synthetic),
    obtain="obtain CASME II, SAMM and SMIC-HS (see their entries) and the official "
           "MEGC2019 list combined_3class_gt.csv.",
    layout="a folder holding combined_3class_gt.csv and the three dataset folders",
    published={"3class": PublishedSize(442, 68, "official combined_3class_gt.csv")},
)
