"""The dataset owners' published errata, applied while the annotation is read (CAS(ME)^3 Part A).

The owners of CAS(ME)^3 publish exception lists in their public repository (github
jingtingEmmaLi/CAS-ME-3, folder ``exception/``). ``casme3_errata.csv`` beside this module
encodes those facts in our own words, one row per erratum, each with its ``source`` (the
owners' file it comes from):

* ``apex_occluded`` (15 clips, ``casme3_partA_error_list_ZhouJu.xlsx``): the face is covered at
  the apex frame (a hand; chin, mouth or brows hidden); the owners' stated solution is to
  remove the clip. A clip is matched by subject and video letter, and by its annotated onset
  where the owners' list names the same video twice (spNO.215 f, onsets 5 and 2183); for the
  others our reference gives no onset, so every clip of that video would be matched.
  These clips are marked in the sample table (column ``erratum``) and KEPT by default, as the
  authors' training code keeps them; ``errata="owners"`` excludes them, each with a line in the
  excluded-rows report (file, row, reason).
* ``onset_apex_zero`` (spNO.216 e, same file): onset and apex are written 0 while the frames
  start at 1.jpg. The owners' fix, +1 to both, is always applied (the clip then loads; its
  apex then equals its onset) and listed in the corrections report (file, row, reason).
* ``damaged_frames`` (``error_info_damaged_image_partA.txt``): frames that cannot be opened,
  spNO.3 J 498-576 and spNO.4 j 568-609 (the owners' file has 130 lines: these 121 frames, 9 of
  them listed twice). A clip whose onset or apex frame is listed is marked in ``erratum``; if
  that frame is indeed missing or unreadable, the clip's excluded-rows entry names the
  owners' list.

The owners' third list, ``image_with_bad_quality_partA.txt`` (964 low-quality frames that
do open), is not encoded: nothing is done with it.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

ERRATA_CHOICES = ("keep", "owners")  # keep: the authors' code; owners: the owners' solutions
ERRATA_FILE = Path(__file__).with_name("casme3_errata.csv")
ERRATA_DATASET = "casme3"
REMOVE = "remove"
DAMAGED = "damaged_frames"


@dataclass(frozen=True)
class Erratum:
    subject: str
    filename: str
    onset: int | None       # the annotated onset a clip must have; None: any clip of the video
    frames: range | None    # damaged frame numbers (damaged_frames only)
    kind: str               # apex_occluded, onset_apex_zero, damaged_frames
    owners_solution: str
    description: str
    source: str

    def matches(self, subject: str, filename: str) -> bool:
        return subject.lower() == self.subject.lower() and filename.lower() == self.filename.lower()

    def where(self) -> str:
        return f"the owners' errata, {self.source}"


def check_choice(errata: str) -> None:
    if errata not in ERRATA_CHOICES:
        raise ValueError(f"unknown errata choice {errata!r}; choose one of {', '.join(ERRATA_CHOICES)}")


@lru_cache(maxsize=1)
def load_errata() -> tuple[Erratum, ...]:
    """The rows of ``casme3_errata.csv``."""
    table = pd.read_csv(ERRATA_FILE, dtype=str, keep_default_na=False)
    return tuple(_erratum(row) for row in table.to_dict("records"))


def _erratum(row: dict) -> Erratum:
    frames = None
    if row["frames"]:
        first, last = (int(part) for part in row["frames"].split("-"))
        frames = range(first, last + 1)
    return Erratum(row["subject"], row["filename"], int(row["onset"]) if row["onset"] else None, frames,
                   row["kind"], row["owners_solution"], row["description"], row["source"])


def clip_errata(dataset: str, subject: str, filename: str, onset: int, needed: dict[str, int]) -> list[Erratum]:
    """The errata that concern one annotation row: matched on its annotated ``onset``, and,
    for damaged frames, on the frames it ``needed`` ({"onset": 355, "apex": 359})."""
    if dataset != ERRATA_DATASET:
        return []
    found = []
    for erratum in load_errata():
        if not erratum.matches(subject, filename):
            continue
        if erratum.kind == DAMAGED:
            if any(number in erratum.frames for number in needed.values()):
                found.append(erratum)
        elif erratum.onset is None or erratum.onset == onset:
            found.append(erratum)
    return found


def erratum_text(errata: list[Erratum], needed: dict[str, int]) -> str:
    """The sample table's ``erratum`` cell: the kinds, '; '-joined ('' for none); damaged
    frames say which (``damaged_frames: apex 498``)."""
    parts = []
    for erratum in errata:
        if erratum.kind == DAMAGED:
            which = ", ".join(f"{name} {number}" for name, number in needed.items() if number in erratum.frames)
            parts.append(f"{DAMAGED}: {which}")
        else:
            parts.append(erratum.kind)
    return "; ".join(parts)


def damaged_note(errata: list[Erratum], needed: dict[str, int]) -> str:
    """What a report line adds when a needed frame cannot be used and the owners list it."""
    notes = []
    for erratum in (e for e in errata if e.kind == DAMAGED):
        frames = ", ".join(f"{name} frame {number}" for name, number in needed.items() if number in erratum.frames)
        notes.append(f"the owners list {frames} as damaged ({erratum.description}; {erratum.where()})")
    return "; ".join(notes)


def damaged_note_from_text(erratum: str) -> str:
    """``damaged_note`` for a clip already in a sample table, from its ``erratum`` cell."""
    for part in str(erratum or "").split("; "):
        if part.startswith(f"{DAMAGED}: "):
            source = next(e for e in load_errata() if e.kind == DAMAGED)
            frames = part.removeprefix(f"{DAMAGED}: ")
            return f"the owners list {frames} as damaged ({source.description}; {source.where()})"
    return ""


def apply_choice(clips: pd.DataFrame, errata: str, report_columns: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Clips kept under the choice ``errata``, and one report line per clip it leaves out.

    ``keep`` leaves every clip in (as the authors' code does); ``owners`` removes the clips
    whose erratum the owners' solution is to remove (``apex_occluded``).
    """
    check_choice(errata)
    if errata == "keep" or clips.empty:
        return clips, pd.DataFrame(columns=report_columns)
    removed_kinds = {e.kind for e in load_errata() if e.owners_solution == REMOVE}
    kinds = clips["erratum"].fillna("").map(lambda text: {part.split(":")[0] for part in text.split("; ") if part})
    leave = kinds.map(lambda found: bool(found & removed_kinds)).astype(bool)
    errata_by_kind = {e.kind: e for e in load_errata()}
    left = clips[leave]
    reasons = [
        "; ".join(f"{errata_by_kind[kind].description}: the owners' solution is to remove the clip "
                  f"({errata_by_kind[kind].where()}; errata: owners)" for kind in sorted(found & removed_kinds))
        for found in kinds[leave]
    ]
    report = pd.DataFrame({"dataset": left["dataset"], "file": left["file"], "row": left["row"],
                           "subject": left["subject"], "clip_id": left["clip_id"], "reason": reasons},
                          columns=report_columns)
    return clips[~leave].reset_index(drop=True), report.reset_index(drop=True)
