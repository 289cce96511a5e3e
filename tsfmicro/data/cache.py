"""``prepare``: face crops of every clip, built once into a cache file and reused.

One ``.npz`` file per (dataset, crop settings, inputs). The inputs are hashed: the bytes
of the annotation file(s) and the list of frames used (name and size of every onset, apex
and pre-cropped frame), so editing the annotation or replacing frames builds a new cache,
while moving the dataset folder does not. The cache holds every valid clip of the dataset
whatever its label and whatever the errata choice; the task and the clips the owners' errata
remove (``errata="owners"``) are selected after loading, so every task and choice share it.

With ``reselect_frames=True`` the cache also holds, per clip, a TRAINING pair (the authors'
optional re-selection, paper.md "Inputs"): the (onset+i, apex-j) pair, i and j from 0 to
``reselect_shift``, with onset+i < apex-j and both frames on disk, whose crops (cut with the
onset's face box) differ most. The window, per dataset (``RESELECT_WINDOWS``):

* CASME II and CAS(ME)^3: floor(0.15 * (apex - onset) / 4), as the authors' ``base.py``
  (``flow_difference``, ``casme3_difference``);
* SAMM: floor(0.10 * (apex - onset)), without the / 4 (the authors' ``samm_difference``);
* SMIC (and SMIC clips of MEGC2019): the authors have no script; CASME II's rule is ours.

The authors' SAMM 3-class script does not re-select; here the option, when on, applies to
every dataset and task alike.

Score: the L2 norm of the true signed difference apex - onset of the two crops. The authors'
code takes ``np.linalg.norm(apex_img - onset_img)`` of two uint8 images, whose difference
wraps around (3 - 5 = 254), so a small darkening counts as a large change: a bug we do not
copy. Ties: the smallest i + j, then i. (The authors score whole frames, or CASME II's
pre-cropped ones; we score the crops the network sees.)

Re-selecting caches are separate files whose key covers the windows and the score; the
default cache is not touched.

Cache folder: ``cache_dir`` argument, else the TSFMICRO_CACHE environment variable, else
``~/.cache/tsfmicro``.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import atomic_path
from .annotations import EXCLUDED_COLUMNS, ClipTable, Root, load_clips, select_task
from .errata import apply_choice, check_choice, damaged_note_from_text
from .faces import (
    CROP_CENTRE,
    CROP_MTCNN,
    CROP_PRECROPPED,
    DEFAULT_MARGIN,
    FaceDetector,
    centre_box,
    crop,
    resize_whole,
    square_box,
)
from .frames import index_frames, read_frame
from .registry import task_info
from .types import PreparedData

CACHE_FORMAT = 1  # bump when the crop procedure changes, so old caches are not reused
DETECTION_BATCH = 8
# Training-time re-selection window: i, j up to floor(fraction * (apex - onset) / divisor).
RESELECT_WINDOWS = {"casme2": (0.15, 4), "casme3": (0.15, 4), "samm": (0.10, 1)}  # the authors' base.py
OUR_RESELECT_WINDOW = (0.15, 4)  # datasets without an authors' script (SMIC): CASME II's rule
RESELECT_SCORE = "l2 of the signed difference"  # enters the cache key: a new score builds new caches


def default_cache_dir() -> Path:
    return Path(os.environ.get("TSFMICRO_CACHE") or Path.home() / ".cache" / "tsfmicro").expanduser()


def prepare(dataset: str, root: Root, task: str, *, crop_size: int = 224, margin: float = DEFAULT_MARGIN,
            use_precropped: bool = False, cache_dir: str | os.PathLike | None = None,
            progress: bool = True, reselect_frames: bool = False, errata: str = "keep") -> PreparedData:
    """Face crops (onset, apex) of one task, from the cache when it is up to date.

    ``use_precropped`` takes the dataset's pre-cropped frames (CASME II ``Cropped/``,
    SMIC ``SMIC_all_cropped/``) instead of running MTCNN.
    ``reselect_frames`` also fills ``train_onset``/``train_apex`` (and the sample columns
    ``train_onset_frame``, ``train_apex_frame``) with the re-selected training pair (see the
    module docstring); ``onset``/``apex`` stay the annotated frames, for testing.
    ``errata``: ``"keep"`` (default, as the authors' code) or ``"owners"`` (leave out the clips
    the dataset's owners would remove; see tsfmicro.data.errata).
    """
    task_info(dataset, task)  # unknown task: fail before any work
    check_choice(errata)
    if crop_size < 8:
        raise ValueError(f"crop_size must be at least 8 pixels, got {crop_size}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    clips = load_clips(dataset, root)
    if use_precropped and not clips.precropped_available:
        raise ValueError(f"{dataset}: no pre-cropped release found under {root}; run without --precropped")
    settings = {"crop_size": int(crop_size), "margin": float(margin), "use_precropped": bool(use_precropped)}
    if reselect_frames:  # only then: the default settings, key and file name stay as they were
        settings["reselect"] = {"windows": {name: [float(f), int(d)] for name, (f, d) in RESELECT_WINDOWS.items()},
                                "other_datasets": [float(OUR_RESELECT_WINDOW[0]), int(OUR_RESELECT_WINDOW[1])],
                                "score": RESELECT_SCORE}
    key = cache_key(clips, settings)
    method = ("precropped" if use_precropped else "mtcnn") + ("_reselect" if reselect_frames else "")
    path = Path(cache_dir or default_cache_dir()) / f"{dataset}_{crop_size}px_{method}_{key[:16]}.npz"
    if path.is_file():
        crops = _read_cache(path)
    else:
        crops = _build(clips, settings, progress)
        _write_cache(path, crops)
    return _task_view(clips, crops, dataset, task, key, path, errata)


def cache_key(clips: ClipTable, settings: dict) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps({"format": CACHE_FORMAT, "dataset": clips.dataset, **settings}, sort_keys=True).encode())
    for file in sorted(clips.input_files):
        digest.update(file.name.encode())
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    for row in clips.clips.itertuples():
        digest.update(f"{row.dataset}|{row.subject}|{row.clip_id}".encode())
        for path in (row.onset_path, row.apex_path, row.precropped_onset_path, row.precropped_apex_path):
            digest.update(_frame_fingerprint(path).encode())
    return digest.hexdigest()


def reselect_shift(dataset: str, onset_frame: int, apex_frame: int) -> int:
    """Largest i (and j) of the training-time re-selection window of ``dataset`` (a MEGC2019
    row's part): floor(fraction * (apex - onset) / divisor), see ``RESELECT_WINDOWS``."""
    fraction, divisor = RESELECT_WINDOWS.get(dataset, OUR_RESELECT_WINDOW)
    return max(0, math.floor(fraction * (int(apex_frame) - int(onset_frame)) / divisor))


def pair_score(onset_crop: np.ndarray, apex_crop: np.ndarray) -> int:
    """Squared L2 norm of the signed difference apex - onset (same order as the norm; exact integers).

    Signed on purpose: the authors subtract uint8 images, which wraps around (3 - 5 = 254).
    """
    difference = (apex_crop.astype(np.int64) - onset_crop.astype(np.int64)).ravel()
    return int(np.dot(difference, difference))


def _frame_fingerprint(path: str | None) -> str:
    """Last three path parts and size: independent of where the dataset folder sits."""
    if not isinstance(path, str) or not path:
        return "-"
    path = Path(path)
    size = path.stat().st_size if path.exists() else -1
    return f"{'/'.join(path.parts[-3:])}:{size}"


@dataclass
class _Crops:
    keys: list[str]          # dataset|subject|clip_id, one per crop
    crop_method: list[str]
    onset: np.ndarray
    apex: np.ndarray
    unreadable: pd.DataFrame  # clips left out because a frame could not be read
    train_onset: np.ndarray | None = None  # re-selected training pair (reselect_frames only)
    train_apex: np.ndarray | None = None
    train_frames: np.ndarray | None = None  # int64 (N, 2): frame numbers of the training pair


def _clip_key(row) -> str:
    return f"{row['dataset']}|{row['subject']}|{row['clip_id']}"


def _build(clips: ClipTable, settings: dict, progress: bool) -> _Crops:
    from tqdm.auto import tqdm

    size = settings["crop_size"]
    table = clips.clips.to_dict("records")
    detector = None if settings["use_precropped"] else FaceDetector()
    keys, methods, onsets, apexes, unreadable = [], [], [], [], []
    train_onsets, train_apexes, train_frames = [], [], []
    with tqdm(total=len(table), desc=f"face crops {clips.dataset}", unit="clip", disable=not progress) as bar:
        for start in range(0, len(table), DETECTION_BATCH):
            batch = table[start:start + DETECTION_BATCH]
            pairs = [_read_pair(row, settings["use_precropped"], unreadable) for row in batch]
            readable = [(row, pair) for row, pair in zip(batch, pairs) if pair is not None]
            boxes = detector.largest_faces([pair[0] for _, pair in readable]) if detector and readable else \
                [None] * len(readable)
            for (row, (onset, apex)), box in zip(readable, boxes):
                result = _crop_pair(row, onset, apex, box, settings, unreadable)
                if result is not None:
                    keys.append(_clip_key(row))
                    methods.append(result[2])
                    onsets.append(result[0])
                    apexes.append(result[1])
                    if "reselect" in settings:
                        train_onset, train_apex, frames = _reselect(row, *result)
                        train_onsets.append(train_onset)
                        train_apexes.append(train_apex)
                        train_frames.append(frames)
            bar.update(len(batch))
    empty = np.zeros((0, size, size, 3), np.uint8)
    stack = lambda crops: np.stack(crops) if crops else empty  # noqa: E731
    crops = _Crops(keys, methods, stack(onsets), stack(apexes), pd.DataFrame(unreadable, columns=EXCLUDED_COLUMNS))
    if "reselect" in settings:
        crops.train_onset, crops.train_apex = stack(train_onsets), stack(train_apexes)
        crops.train_frames = np.array(train_frames, dtype=np.int64).reshape(-1, 2)
    if detector is not None:
        _warn_fallbacks(crops)
    return crops


def _read_pair(row: dict, use_precropped: bool, unreadable: list) -> tuple[np.ndarray, np.ndarray] | None:
    """Onset and apex frames; an unreadable frame leaves the clip out with a report line."""
    names = ("precropped_onset_path", "precropped_apex_path") if use_precropped else ("onset_path", "apex_path")
    try:
        if not _is_path(row[names[0]]) or not _is_path(row[names[1]]):
            raise FileNotFoundError(f"no pre-cropped frames for this clip (raw: {row['onset_path']})")
        return read_frame(row[names[0]]), read_frame(row[names[1]])
    except (FileNotFoundError, ValueError) as error:
        note = damaged_note_from_text(row.get("erratum"))
        unreadable.append(_report(row, f"{error}; {note}" if note else str(error)))
        return None


def _crop_pair(row: dict, onset: np.ndarray, apex: np.ndarray, box, settings: dict, unreadable: list):
    """(onset crop, apex crop, crop_method, cut, shape), or None when the clip is left out.

    ``cut(frame)`` crops any other frame of the clip exactly as the onset was cropped; the
    frame is taken from the pre-cropped release when crop_method is ``precropped``, else from
    the raw one, and must have ``shape`` (None: any shape).
    """
    size = settings["crop_size"]

    def whole(frame):
        return resize_whole(frame, size)

    def cutter(square):
        return lambda frame: crop(frame, square, size)

    if settings["use_precropped"]:
        return whole(onset), whole(apex), CROP_PRECROPPED, whole, None
    if onset.shape != apex.shape:
        unreadable.append(_report(row, f"onset and apex frames differ in size: {onset.shape} vs {apex.shape}"))
        return None
    if box is not None:
        cut = cutter(square_box(box, settings["margin"]))
        return cut(onset), cut(apex), CROP_MTCNN, cut, onset.shape
    if _is_path(row.get("precropped_onset_path")) and _is_path(row.get("precropped_apex_path")):
        try:
            return (whole(read_frame(row["precropped_onset_path"])),
                    whole(read_frame(row["precropped_apex_path"])), CROP_PRECROPPED, whole, None)
        except (FileNotFoundError, ValueError):
            pass  # fall through to the centre crop; the raw frames were readable
    cut = cutter(centre_box(onset.shape))
    return cut(onset), cut(apex), CROP_CENTRE, cut, onset.shape


def _reselect(row: dict, onset_crop: np.ndarray, apex_crop: np.ndarray, method: str, cut, shape):
    """The training pair (onset+i, apex-j) with the largest crop difference: crops and frame numbers.

    Candidates: i, j in 0..reselect_shift, onset+i < apex-j, frames present in the clip's
    folder, readable and (raw frames) of the onset's size. Ties: smallest i + j, then i.
    """
    onset_number, apex_number = int(row["onset_frame"]), int(row["apex_frame"])
    shift = reselect_shift(row["dataset"], onset_number, apex_number)
    starts, ends = {0: onset_crop}, {0: apex_crop}
    if shift > 0:
        column = "precropped_onset_path" if method == CROP_PRECROPPED else "onset_path"
        frames = index_frames(Path(row[column]).parent)  # onset and apex share the clip's folder
        for step in range(1, shift + 1):
            for chosen, number in ((starts, onset_number + step), (ends, apex_number - step)):
                candidate = _read_candidate(frames.get(number), shape)
                if candidate is not None:
                    chosen[step] = cut(candidate)
    i, j = best_pair(starts, ends, apex_number - onset_number)
    return starts[i], ends[j], (onset_number + i, apex_number - j)


def best_pair(starts: dict[int, np.ndarray], ends: dict[int, np.ndarray], gap: int) -> tuple[int, int]:
    """(i, j) whose crops ``ends[j]`` - ``starts[i]`` have the largest ``pair_score``, among the
    pairs with i + j < ``gap`` (= apex - onset); ties: the smallest i + j, then i. (0, 0) must exist."""
    pairs = sorted(((i, j) for i in starts for j in ends if i + j < gap or (i, j) == (0, 0)),
                   key=lambda pair: (pair[0] + pair[1], pair[0]))
    best, best_score = (0, 0), -1
    for i, j in pairs:
        score = pair_score(starts[i], ends[j])
        if score > best_score:
            best, best_score = (i, j), score
    return best


def _read_candidate(path: Path | None, shape) -> np.ndarray | None:
    if path is None:
        return None
    try:
        frame = read_frame(path)
    except (FileNotFoundError, ValueError):
        return None  # a neighbouring frame that cannot be read is simply not a candidate
    return frame if shape is None or frame.shape == shape else None


def _is_path(value) -> bool:
    return isinstance(value, str) and bool(value)  # missing paths may arrive as None or NaN


def _report(row: dict, reason: str) -> dict:
    return dict(dataset=row["dataset"], file=row["file"], row=row["row"], subject=row["subject"],
                clip_id=row["clip_id"], reason=reason)


def _warn_fallbacks(crops: _Crops) -> None:
    """Say when MTCNN found no face (the clip then used the pre-cropped frame or a centre crop)."""
    no_face = [key.split("|", 1)[1] for key, method in zip(crops.keys, crops.crop_method) if method != CROP_MTCNN]
    if no_face:
        more = ", ..." if len(no_face) > 5 else ""
        warnings.warn(f"MTCNN found no face in {len(no_face)} onset frame(s) ({', '.join(no_face[:5])}{more}); "
                      "used the pre-cropped frame or a centre crop (see the crop_method column)", stacklevel=3)


def _write_cache(path: Path, crops: _Crops) -> None:
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        train = {} if crops.train_onset is None else dict(
            train_onset=crops.train_onset, train_apex=crops.train_apex, train_frames=crops.train_frames)
        np.savez(handle, onset=crops.onset, apex=crops.apex, keys=np.array(crops.keys, dtype=str),
                 crop_method=np.array(crops.crop_method, dtype=str),
                 unreadable=np.array(crops.unreadable.to_json(orient="records")), **train)


def _read_cache(path: Path) -> _Crops:
    with np.load(path, allow_pickle=False) as stored:
        unreadable = pd.DataFrame(json.loads(str(stored["unreadable"])), columns=EXCLUDED_COLUMNS)
        train = [stored[name] if name in stored.files else None
                 for name in ("train_onset", "train_apex", "train_frames")]
        return _Crops(stored["keys"].tolist(), stored["crop_method"].tolist(), stored["onset"], stored["apex"],
                      unreadable, *train)


def _task_view(clips: ClipTable, crops: _Crops, dataset: str, task: str, key: str, path: Path,
               errata: str) -> PreparedData:
    kept, left_by_errata = apply_choice(clips.clips, errata, EXCLUDED_COLUMNS)
    samples, outside_task = select_task(kept, dataset, task)
    position = {clip_key: index for index, clip_key in enumerate(crops.keys)}
    keys = [_clip_key(row) for row in samples.to_dict("records")]
    cropped = np.array([clip_key in position for clip_key in keys], dtype=bool)
    samples = samples[cropped].reset_index(drop=True)
    index = np.array([position[clip_key] for clip_key, ok in zip(keys, cropped) if ok], dtype=np.int64)
    samples["crop_method"] = [crops.crop_method[i] for i in index]
    train_onset = train_apex = None
    if crops.train_onset is not None:
        train_onset, train_apex = crops.train_onset[index], crops.train_apex[index]
        samples["train_onset_frame"] = crops.train_frames[index, 0]
        samples["train_apex_frame"] = crops.train_frames[index, 1]
    excluded = pd.concat([clips.excluded, crops.unreadable, left_by_errata, outside_task], ignore_index=True)
    return PreparedData(
        dataset=dataset, task=task, samples=samples, onset=crops.onset[index], apex=crops.apex[index],
        class_names=list(task_info(dataset, task).class_names), excluded=excluded, source=clips.source,
        cache_key=key, cache_path=path, train_onset=train_onset, train_apex=train_apex,
        corrections=clips.corrections,
    )
