"""``prepare``: face crops of every clip, built once into a cache file and reused.

One ``.npz`` file per (dataset, crop settings, inputs). The inputs are hashed: the bytes
of the annotation file(s) and the list of frames used (name and size of every onset, apex
and pre-cropped frame), so editing the annotation or replacing frames builds a new cache,
while moving the dataset folder does not. The cache holds every valid clip of the dataset
whatever its label; the task is selected after loading, so 5-class and 3-class share it.

Cache folder: ``cache_dir`` argument, else the TSFMICRO_CACHE environment variable, else
``~/.cache/tsfmicro``.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import atomic_path
from .annotations import EXCLUDED_COLUMNS, ClipTable, Root, load_clips, select_task
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
from .frames import read_frame
from .registry import task_info
from .types import PreparedData

CACHE_FORMAT = 1  # bump when the crop procedure changes, so old caches are not reused
DETECTION_BATCH = 8


def default_cache_dir() -> Path:
    return Path(os.environ.get("TSFMICRO_CACHE") or Path.home() / ".cache" / "tsfmicro").expanduser()


def prepare(dataset: str, root: Root, task: str, *, crop_size: int = 224, margin: float = DEFAULT_MARGIN,
            use_precropped: bool = False, cache_dir: str | os.PathLike | None = None,
            progress: bool = True) -> PreparedData:
    """Face crops (onset, apex) of one task, from the cache when it is up to date.

    ``use_precropped`` takes the dataset's pre-cropped frames (CASME II ``Cropped/``,
    SMIC ``SMIC_all_cropped/``) instead of running MTCNN.
    """
    task_info(dataset, task)  # unknown task: fail before any work
    if crop_size < 8:
        raise ValueError(f"crop_size must be at least 8 pixels, got {crop_size}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    clips = load_clips(dataset, root)
    if use_precropped and not clips.precropped_available:
        raise ValueError(f"{dataset}: no pre-cropped release found under {root}; run without --precropped")
    settings = {"crop_size": int(crop_size), "margin": float(margin), "use_precropped": bool(use_precropped)}
    key = cache_key(clips, settings)
    method = "precropped" if use_precropped else "mtcnn"
    path = Path(cache_dir or default_cache_dir()) / f"{dataset}_{crop_size}px_{method}_{key[:16]}.npz"
    if path.is_file():
        crops = _read_cache(path)
    else:
        crops = _build(clips, settings, progress)
        _write_cache(path, crops)
    return _task_view(clips, crops, dataset, task, key, path)


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


def _clip_key(row) -> str:
    return f"{row['dataset']}|{row['subject']}|{row['clip_id']}"


def _build(clips: ClipTable, settings: dict, progress: bool) -> _Crops:
    from tqdm.auto import tqdm

    size = settings["crop_size"]
    table = clips.clips.to_dict("records")
    detector = None if settings["use_precropped"] else FaceDetector()
    keys, methods, onsets, apexes, unreadable = [], [], [], [], []
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
            bar.update(len(batch))
    empty = np.zeros((0, size, size, 3), np.uint8)
    crops = _Crops(keys, methods, np.stack(onsets) if onsets else empty, np.stack(apexes) if apexes else empty,
                   pd.DataFrame(unreadable, columns=EXCLUDED_COLUMNS))
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
        unreadable.append(_report(row, str(error)))
        return None


def _crop_pair(row: dict, onset: np.ndarray, apex: np.ndarray, box, settings: dict, unreadable: list):
    size = settings["crop_size"]
    if settings["use_precropped"]:
        return resize_whole(onset, size), resize_whole(apex, size), CROP_PRECROPPED
    if onset.shape != apex.shape:
        unreadable.append(_report(row, f"onset and apex frames differ in size: {onset.shape} vs {apex.shape}"))
        return None
    if box is not None:
        square = square_box(box, settings["margin"])
        return crop(onset, square, size), crop(apex, square, size), CROP_MTCNN
    if _is_path(row.get("precropped_onset_path")) and _is_path(row.get("precropped_apex_path")):
        try:
            return (resize_whole(read_frame(row["precropped_onset_path"]), size),
                    resize_whole(read_frame(row["precropped_apex_path"]), size), CROP_PRECROPPED)
        except (FileNotFoundError, ValueError):
            pass  # fall through to the centre crop; the raw frames were readable
    square = centre_box(onset.shape)
    return crop(onset, square, size), crop(apex, square, size), CROP_CENTRE


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
        np.savez(handle, onset=crops.onset, apex=crops.apex, keys=np.array(crops.keys, dtype=str),
                 crop_method=np.array(crops.crop_method, dtype=str),
                 unreadable=np.array(crops.unreadable.to_json(orient="records")))


def _read_cache(path: Path) -> _Crops:
    with np.load(path, allow_pickle=False) as stored:
        unreadable = pd.DataFrame(json.loads(str(stored["unreadable"])), columns=EXCLUDED_COLUMNS)
        return _Crops(stored["keys"].tolist(), stored["crop_method"].tolist(), stored["onset"], stored["apex"],
                      unreadable)


def _task_view(clips: ClipTable, crops: _Crops, dataset: str, task: str, key: str, path: Path) -> PreparedData:
    samples, outside_task = select_task(clips.clips, dataset, task)
    position = {clip_key: index for index, clip_key in enumerate(crops.keys)}
    keys = [_clip_key(row) for row in samples.to_dict("records")]
    cropped = np.array([clip_key in position for clip_key in keys], dtype=bool)
    samples = samples[cropped].reset_index(drop=True)
    index = np.array([position[clip_key] for clip_key, ok in zip(keys, cropped) if ok], dtype=np.int64)
    samples["crop_method"] = [crops.crop_method[i] for i in index]
    excluded = pd.concat([clips.excluded, crops.unreadable, outside_task], ignore_index=True)
    return PreparedData(
        dataset=dataset, task=task, samples=samples, onset=crops.onset[index], apex=crops.apex[index],
        class_names=list(task_info(dataset, task).class_names), excluded=excluded, source=clips.source,
        cache_key=key, cache_path=path,
    )
