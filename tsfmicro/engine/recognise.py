"""Spot, then recognise (the MEGC spot-then-recognise task) on long videos: the spotted intervals
of each video (tsfmicro.spotting, training-free) recognised by a trained clip run of the SAME people,
each subject by the fold model that never saw them (LOSO, first seed, protocol fixed: the kept fold
weights), and, for comparison, the ground-truth intervals recognised alike (perfect spotting), so
spotting errors and recognition errors can be told apart.

An interval's input is its onset frame and an apex frame: the spotter's peak (the automatic apex)
for a spotted interval, the annotated apex for a ground-truth one; both are cut as the run's
face-crop cache cuts a clip (tsfmicro.engine.evaluate.interval_probabilities). A subject the run
does not hold out (not one of its people) is recognised by the ensemble of every fold model.

The run's classes are mapped to the STR emotion classes by the long-video dataset's
``reader.emotions`` (e.g. SAMM-LV: negative = anger, contempt, disgust, fear, sadness; positive =
happiness; surprise; others = other): an STR class's probability is the sum of its classes'
(``str_<emotion>``), and the predicted emotion is the largest. The MEGC submission table is
``submission(...)``: subject, video, onset, offset, emotion.

Kept in the run folder (``evaluations/str_<key>_spotted.csv`` and ``_truths.csv``), so a
notebook opened again only reads them.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tsfmicro import _io
from tsfmicro.results import Run

from .evaluate import EVALUATIONS, interval_probabilities, run_subjects

RECOGNISE_VERSION = 1  # bump when the recognition changes, so kept predictions are not reused
SUBMISSION_COLUMNS = ["subject", "video", "onset", "offset", "emotion"]
TRUTH_COLUMNS = ["subject", "video", "onset", "apex", "offset", "kind", "emotion"]


@dataclass
class SpotRecognition:
    """``spotted``: one row per spotted interval (tsfmicro.spotting.PREDICTION_COLUMNS, ``apex`` = the
    peak) and ``truths``: one row per ground-truth interval (TRUTH_COLUMNS), each with fold (the
    held-out subject whose model recognised it, or "ensemble"), pred_label (the run's class),
    prob_<class>, str_<emotion> and ``pred_emotion``. ``emotions``: the STR classes, in order."""

    spotted: pd.DataFrame
    truths: pd.DataFrame
    emotions: tuple[str, ...]
    path: Path | None = None

    def submission(self) -> pd.DataFrame:
        """The MEGC submission table of the spotted intervals: subject, video, onset, offset, emotion."""
        return self.spotted.rename(columns={"pred_emotion": "emotion"})[SUBMISSION_COLUMNS]


def str_emotions(emotions: dict[str, str]) -> tuple[str, ...]:
    """The STR classes of a class -> STR map, in the MEGC order (negative, positive, surprise, others)."""
    order = ("negative", "positive", "surprise", "others")
    found = set(emotions.values())
    return tuple(e for e in order if e in found) + tuple(sorted(found - set(order)))


def recognise_spotted(run: Run, table, truths: pd.DataFrame, emotions: dict[str, str],
                      spotted: pd.DataFrame | None = None, params=None, device: str | None = None) -> SpotRecognition:
    """Spot every video of ``table`` (a tsfmicro.data.long_videos.LongVideoTable; ``spotted``: the
    spotter's predictions when already computed, ``params``: the spotter's, default the dataset's),
    then recognise each spotted interval and each of ``truths`` (TRUTH_COLUMNS: the ground truth, its
    ``emotion`` an STR class) with ``run``'s fold models (module docstring). ``emotions``: the run's
    class names (lower case) -> STR class. Read from the run folder when computed before."""
    from tsfmicro.spotting import PARAMETERS, PREDICTION_COLUMNS, spot_dataset

    missing = [name for name in run.class_names if name.lower() not in emotions]
    if missing:
        raise ValueError(f"run {run.path}: class(es) {', '.join(missing)} have no STR emotion in the map "
                         f"({', '.join(f'{k} -> {v}' for k, v in emotions.items())})")
    absent = [c for c in TRUTH_COLUMNS if c not in truths.columns]
    if absent:
        raise ValueError(f"ground truth: column(s) {', '.join(absent)} missing (need {', '.join(TRUTH_COLUMNS)})")
    params = params or PARAMETERS[table.dataset]
    order = str_emotions(emotions)
    truths = truths[TRUTH_COLUMNS].astype({"subject": str, "video": str}).reset_index(drop=True)
    videos = table.videos.sort_values(["subject", "video"])
    key = _hash({"version": RECOGNISE_VERSION, "run": run.config.get("key"), "dataset": table.dataset,
                 "videos": videos[["subject", "video", "folder", "first_frame", "last_frame", "frames"]]
                 .astype(str).to_numpy().tolist(),
                 "params": repr(params), "truths": truths.astype(str).to_numpy().tolist(), "emotions": emotions,
                 "spotted": None if spotted is None else spotted.astype(str).to_numpy().tolist(),
                 "device": device or "run"})
    folder = Path(run.path) / EVALUATIONS
    spotted_file, truths_file = folder / f"str_{key}_spotted.csv", folder / f"str_{key}_truths.csv"
    if spotted_file.is_file() and truths_file.is_file():
        text = {column: str for column in ("subject", "video", "kind", "emotion", "fold", "crop_method", "pred_label",
                                           "pred_emotion")}  # ids such as 006 stay text
        return SpotRecognition(pd.read_csv(spotted_file, dtype=text, keep_default_na=False),
                               pd.read_csv(truths_file, dtype=text, keep_default_na=False), order, spotted_file)
    if spotted is None:
        spotted = spot_dataset(table, params)
    spotted = spotted[PREDICTION_COLUMNS].astype({"subject": str, "video": str}).reset_index(drop=True)
    spotted = spotted.assign(apex=spotted["peak"].astype(int))
    recognised_spotted = _recognise(run, table, spotted, emotions, device)
    recognised_truths = _recognise(run, table, truths, emotions, device)
    _io.write_csv(truths_file, recognised_truths)
    _io.write_csv(spotted_file, recognised_spotted)  # last: its presence marks the evaluation done
    return SpotRecognition(recognised_spotted, recognised_truths, order, spotted_file)


def _recognise(run: Run, table, intervals: pd.DataFrame, emotions: dict[str, str], device) -> pd.DataFrame:
    """``intervals`` with the recognition columns (SpotRecognition)."""
    subjects = set(run_subjects(run))
    pairs, folds = [], []
    frames_of: dict[tuple[str, str], dict] = {}
    for row in intervals.itertuples(index=False):
        video = (str(row.subject), str(row.video))
        if video not in frames_of:
            frames_of[video] = table.frames(*video)
        frames = frames_of[video]
        pairs.append((_nearest(frames, int(row.onset)), _nearest(frames, int(row.apex))))
        folds.append(video[0] if video[0] in subjects else None)  # not one of the run's people: the ensemble
    probabilities = interval_probabilities(run, pairs, folds=folds, device=device)
    out = pd.concat([intervals.reset_index(drop=True), probabilities.reset_index(drop=True)], axis=1)
    return with_str_emotions(out, run.class_names, emotions)


def with_str_emotions(table: pd.DataFrame, class_names, emotions: dict[str, str]) -> pd.DataFrame:
    """``table`` (prob_<class> columns of ``class_names``) with str_<emotion>, each the sum of its
    classes' probabilities (``emotions``: class, lower case -> STR class), and ``pred_emotion``,
    the largest (ties: the first in :func:`str_emotions`' order)."""
    order = str_emotions(emotions)
    out = table.copy()
    for emotion in order:
        out[f"str_{emotion}"] = sum((out[f"prob_{name}"] for name in class_names
                                     if emotions[name.lower()] == emotion), start=pd.Series(0.0, index=out.index))
    columns = [f"str_{emotion}" for emotion in order]
    out["pred_emotion"] = [order[k] for k in out[columns].to_numpy().argmax(axis=1)] if len(out) else []
    return out


def _nearest(frames: dict[int, Path], number: int) -> Path:
    """The frame ``number``, or the nearest present one (frames can be missing in a long video)."""
    if number in frames:
        return frames[number]
    if not frames:
        raise ValueError("a video without frames")
    return frames[min(frames, key=lambda n: (abs(n - number), n))]


def _hash(document: dict) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()[:12]
