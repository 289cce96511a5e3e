"""Frames other than the annotated onset and apex: the annotations moved by a few frames, and an
apex found automatically. The face-crop cache (tsfmicro.data.cache) cuts these frames exactly as
it cut the clip's onset (same face box), on request.

Shifted annotations (``prepare(..., shifts=...)``): a shift is a percentage p of the clip's
onset-offset length L = offset - onset (clips of different datasets and frame rates are then
moved by comparable amounts). It moves the annotated frame by ``steps`` frames, rounded half up
and at least one frame, so that a small p still moves a short clip::

    steps = sign(p) * max(1, floor(abs(p) / 100 * L + 0.5))   # 0 for p = 0

The moved frame is clamped to the annotated clip:

* apex shifts: apex + steps within [onset, offset] (an apex moved onto the onset gives an all-zero
  difference frame, as an annotation that early would);
* onset shifts: onset + steps within [onset, apex - 1] (the onset stays before the apex; when the
  apex is the onset, the onset cannot move). The frame folders of CASME II and SAMM hold only
  onset..offset, so an onset moved earlier is always clamped back to the onset: negative onset
  shifts move no clip, which the ``moved`` column shows.

A moved frame missing from the clip's folder, unreadable, or of another size than the onset
frame leaves the clip without an input at that shift: the clip's row says why (``reason``), and
the evaluation (tsfmicro.sensitivity) leaves such a clip out of every shift of that kind, so all
shifts of a kind are scored on the same clips. Nothing is dropped silently.

Automatic apex (``prepare(..., apex="automatic")``, ``RunConfig.apex``): among the frames
onset+1..offset present in the clip's folder, readable and of the onset's size, the one whose
face crop differs most from the onset's crop, by the mean absolute difference over every pixel
and colour channel of the uint8 crops (:func:`frame_difference`); ties go to the earliest frame.
A clip with no such frame (onset = offset, or every other frame unreadable) keeps its annotated
apex, and its ``apex_rule`` says so.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import Sequence

import numpy as np
import pandas as pd

APEX_CHOICES = ("annotated", "automatic")
SHIFT_KINDS = ("apex", "onset")
MAX_SHIFT_PERCENT = 100.0
AUTOMATIC_APEX_RULE = "automatic: the frame of onset+1..offset whose crop differs most from the onset's " \
                      "(mean absolute difference)"
TABLE_COLUMNS = ["sample", "kind", "percent", "steps", "frame", "moved", "crop", "reason"]


def check_apex(apex: str) -> None:
    if apex not in APEX_CHOICES:
        raise ValueError(f"unknown apex choice {apex!r}; choose one of {', '.join(APEX_CHOICES)}")


def check_shifts(percents: Sequence[float]) -> tuple[float, ...]:
    """The shifts as sorted distinct floats with 0 (the annotated frames) included, () for no
    shifts; a clear error for anything that is not a percentage in [-100, 100]."""
    if isinstance(percents, (str, bytes)) or not isinstance(percents, Sequence):
        raise ValueError(f"shifts must be a list of percentages of the onset-offset length, got {percents!r}")
    if len(percents) == 0:
        return ()
    bad = [p for p in percents if isinstance(p, bool) or not isinstance(p, Real) or not math.isfinite(p)
           or abs(p) > MAX_SHIFT_PERCENT]
    if bad:
        raise ValueError(f"shifts {bad} are not percentages of the onset-offset length in "
                         f"[-{MAX_SHIFT_PERCENT:g}, {MAX_SHIFT_PERCENT:g}]")
    return tuple(sorted({0.0, *(float(p) for p in percents)}))


def shift_steps(percent: float, onset: int, offset: int) -> int:
    """Frames a shift of ``percent`` % of the clip's length moves (before clamping)."""
    if percent == 0:
        return 0
    steps = max(1, math.floor(abs(percent) / 100 * (int(offset) - int(onset)) + 0.5))
    return steps if percent > 0 else -steps


def shifted_frame(kind: str, percent: float, onset: int, apex: int, offset: int) -> int:
    """The frame number that replaces the annotated ``kind`` frame (see the module docstring)."""
    onset, apex, offset = int(onset), int(apex), int(offset)
    steps = shift_steps(percent, onset, offset)
    if kind == "apex":
        return min(max(apex + steps, onset), offset)
    if kind == "onset":
        return min(max(onset + steps, onset), max(onset, apex - 1))
    raise ValueError(f"unknown shift kind {kind!r}; choose one of {', '.join(SHIFT_KINDS)}")


def needed_frames(clips: pd.DataFrame, keys: Sequence[str], percents: Sequence[float]) -> dict[str, set[int]]:
    """Per clip key, the frames the shifts need beyond the annotated frame each kind moves (which
    the cache holds already; an apex moved onto the onset is read again, as any other frame).
    ``clips`` and ``keys`` are aligned."""
    needed: dict[str, set[int]] = {}
    for key, row in zip(keys, clips.itertuples()):
        frames = set()
        for kind, annotated in (("apex", int(row.apex_frame)), ("onset", int(row.onset_frame))):
            frames |= {shifted_frame(kind, p, row.onset_frame, row.apex_frame, row.offset_frame)
                       for p in percents} - {annotated}
        if frames:
            needed[key] = frames
    return needed


def frame_difference(onset_crop: np.ndarray, crop: np.ndarray) -> float:
    """Mean absolute difference of two uint8 crops over every pixel and channel (0-255)."""
    return float(np.abs(crop.astype(np.int16) - onset_crop.astype(np.int16)).mean())


def pick_automatic_apex(onset_crop: np.ndarray, candidates: dict[int, np.ndarray]) -> tuple[int, float] | None:
    """(frame, difference) of the candidate crop differing most from the onset; ties: the
    earliest frame. None without candidates."""
    best = None
    for frame in sorted(candidates):
        score = frame_difference(onset_crop, candidates[frame])
        if best is None or score > best[1]:
            best = (frame, score)
    return best


@dataclass
class ShiftedFrames:
    """Inputs of one task's clips with the apex or the onset moved, row-aligned with the
    PreparedData it belongs to.

    ``table``: one row per (kind, percent, sample): ``sample`` (row of the samples), ``kind``
    (apex / onset), ``percent``, ``steps`` (frames requested), ``frame`` (the frame used, after
    clamping), ``moved`` (frame minus the annotated frame), ``crop`` (row of ``crops``; -1: the
    annotated frame, whose crop is PreparedData's own), ``reason`` ('' or why the clip has no
    input at this shift). ``crops``: uint8 ``(M, crop, crop, 3)``.
    """

    percents: tuple[float, ...]
    table: pd.DataFrame
    crops: np.ndarray
    cache_key: str = ""  # the key of the file holding ``crops`` (tsfmicro.data.cache)
    cache_path: object = None

    def rows(self, kind: str, percent: float) -> pd.DataFrame:
        part = self.table[(self.table["kind"] == kind) & (self.table["percent"] == float(percent))]
        if part.empty:
            raise KeyError(f"no {kind} shift of {percent:g} % (shifts: {', '.join(f'{p:g}' for p in self.percents)})")
        return part.sort_values("sample")

    def usable(self, kind: str) -> np.ndarray:
        """Boolean per sample: the clip has an input at every shift of ``kind``."""
        part = self.table[self.table["kind"] == kind]
        blocked = part.loc[part["reason"] != "", "sample"].unique()
        mask = np.ones(part["sample"].nunique(), dtype=bool)
        mask[blocked.astype(int)] = False
        return mask

    def inputs(self, kind: str, percent: float, onset: np.ndarray, apex: np.ndarray,
               rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The (onset, apex) crops at this shift of the samples ``rows`` (default: all), as new
        arrays; ``onset``/``apex`` are the PreparedData's own (annotated) crops, kept where the
        frame did not move. A clip without an input at this shift keeps its annotated crops:
        leave it out with :meth:`usable`."""
        rows = np.arange(len(onset)) if rows is None else np.asarray(rows, dtype=int)
        part = self.rows(kind, percent).set_index("sample").loc[rows]
        take = ((part["crop"] >= 0) & (part["reason"] == "")).to_numpy()
        onset, apex = onset[rows], apex[rows]  # copies (fancy indexing)
        target = apex if kind == "apex" else onset
        target[take] = self.crops[part["crop"].to_numpy(dtype=int)[take]]
        return onset, apex
