"""The two tables every later stage consumes: the sample table and the prepared face crops."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

# Columns of the excluded-rows and the corrections reports: where the row is and why.
REPORT_COLUMNS = ["dataset", "file", "row", "subject", "clip_id", "reason"]


def empty_report() -> pd.DataFrame:
    return pd.DataFrame(columns=REPORT_COLUMNS)


@dataclass
class SampleTable:
    """One task's samples as read from the official files, before any image work.

    ``samples`` has one row per clip: dataset, subject, clip_id, onset_frame, apex_frame,
    offset_frame, onset_path, apex_path, label (as written in the annotation), class_index,
    apex_rule (how the apex frame was chosen), erratum (the dataset owners' errata that concern
    the clip, '' for none; see tsfmicro.data.errata), apex_is_onset (all-zero difference frame).
    ``excluded`` has one row per annotation row left out, ``corrections`` one per annotation
    value corrected while reading (the owners' published fixes), both with the columns
    dataset, file, row, subject, clip_id, reason.
    """

    dataset: str
    task: str
    samples: pd.DataFrame
    excluded: pd.DataFrame
    class_names: list[str]
    source: str  # "SYNTHETIC" for data written by tsfmicro.data.synthetic, else the dataset's name
    corrections: pd.DataFrame = field(default_factory=empty_report)


@dataclass
class PreparedData:
    """Face crops of one task, row-aligned with ``samples``; what training consumes."""

    dataset: str
    task: str
    # as SampleTable.samples, plus crop_method (mtcnn / precropped / centre) and the crop box
    # crop_x0, crop_y0, crop_x1, crop_y1 (raw-frame pixels; NaN: a whole pre-cropped frame; absent
    # in a cache written before the boxes were kept: prepare(..., boxes=True) rebuilds it); with
    # prepare(..., apex="automatic") apex_frame/apex_path name the automatic apex and
    # annotated_apex_frame keeps the annotation
    samples: pd.DataFrame
    onset: np.ndarray  # uint8 (N, crop, crop, 3)
    apex: np.ndarray  # uint8 (N, crop, crop, 3): the crop of the frame apex_frame
    class_names: list[str]
    excluded: pd.DataFrame
    source: str
    cache_key: str
    cache_path: Path | None
    # The training-time re-selected pair (prepare(..., reselect_frames=True)), same shape as
    # onset/apex; None otherwise. Only training reads them; evaluation uses onset/apex.
    train_onset: np.ndarray | None = None
    train_apex: np.ndarray | None = None
    corrections: pd.DataFrame = field(default_factory=empty_report)  # as SampleTable.corrections
    # Inputs with the apex or the onset moved (prepare(..., shifts=...); None otherwise): a
    # tsfmicro.data.moved_frames.ShiftedFrames, row-aligned with samples.
    shifted: object | None = None

    def __post_init__(self) -> None:
        if self.onset.shape != self.apex.shape or len(self.onset) != len(self.samples):
            raise ValueError(
                f"prepared data is not aligned: {len(self.samples)} samples, "
                f"onset {self.onset.shape}, apex {self.apex.shape}"
            )
        if (self.train_onset is None) != (self.train_apex is None):
            raise ValueError("give both train_onset and train_apex, or neither")
        if self.train_onset is not None and (self.train_onset.shape != self.onset.shape
                                             or self.train_apex.shape != self.onset.shape):
            raise ValueError(
                f"re-selected training frames are not aligned with onset {self.onset.shape}: "
                f"train_onset {self.train_onset.shape}, train_apex {self.train_apex.shape}"
            )

    @property
    def is_synthetic(self) -> bool:
        return self.source.upper().startswith("SYNTHETIC")
