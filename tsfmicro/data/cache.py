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
onset's face box) differ most. The window, per dataset (``RESELECT_WINDOWS``, from the specs):

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

The cache also keeps how each clip was cut (the square box of its onset, or a whole pre-cropped
frame), so that other frames of the clip can be cut alike later, in files beside it that are keyed
by its key, their rule and the fingerprints of the frames they read (tsfmicro.data.moved_frames):
``..._autoapex_<key>.npz`` (``apex="automatic"``: the frame differing most from the onset) and
``..._frames_<key>.npz`` (``shifts=``: the frames that the annotated apex and onset moved by a
percentage of the clip land on; its key covers the SET of those frames, so another list of
shifts that needs the same frames reuses it). A cache written before the boxes were kept is
built again once, with the same crops, when one of these files is asked for.

Cache folder: ``cache_dir`` argument, else the TSFMICRO_CACHE environment variable, else
``~/.cache/tsfmicro``.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import warnings
import zipfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

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
from .registry import DATASETS, dataset_spec, task_info
from .moved_frames import (
    AUTOMATIC_APEX_RULE,
    SHIFT_KINDS,
    TABLE_COLUMNS,
    ShiftedFrames,
    check_apex,
    check_shifts,
    needed_frames,
    pick_automatic_apex,
    shift_steps,
    shifted_frame,
)
from .types import PreparedData

# The square box (raw-frame pixels, x0 y0 x1 y1) each clip's frames were cut with, then resized
# to the crop size; NaN for a whole pre-cropped frame (its box in the raw frame is not known).
CROP_BOX_COLUMNS = ("crop_x0", "crop_y0", "crop_x1", "crop_y1")
CACHE_FORMAT = 1  # bump when the crop procedure changes, so old caches are not reused
DETECTION_BATCH = 8
# Training-time re-selection window: i, j up to floor(fraction * (apex - onset) / divisor); each
# dataset's spec holds the authors' window (their base.py), None where they have no script.
RESELECT_WINDOWS = {name: dataset_spec(name).reselect_window for name in DATASETS
                    if dataset_spec(name).reselect_window is not None}
OUR_RESELECT_WINDOW = (0.15, 4)  # datasets without an authors' script (SMIC): CASME II's rule
RESELECT_SCORE = "l2 of the signed difference"  # enters the cache key: a new score builds new caches


def default_cache_dir() -> Path:
    return Path(os.environ.get("TSFMICRO_CACHE") or Path.home() / ".cache" / "tsfmicro").expanduser()


def prepare(dataset: str, root: Root, task: str, *, crop_size: int = 224, margin: float = DEFAULT_MARGIN,
            use_precropped: bool = False, cache_dir: str | os.PathLike | None = None,
            progress: bool = True, reselect_frames: bool = False, errata: str = "keep",
            apex: str = "annotated", shifts: Sequence[float] = (), boxes: bool = False) -> PreparedData:
    """Face crops (onset, apex) of one task, from the cache when it is up to date.

    ``use_precropped`` takes the dataset's pre-cropped frames (CASME II ``Cropped/``,
    SMIC ``SMIC_all_cropped/``) instead of running MTCNN.
    ``reselect_frames`` also fills ``train_onset``/``train_apex`` (and the sample columns
    ``train_onset_frame``, ``train_apex_frame``) with the re-selected training pair (see the
    module docstring); ``onset``/``apex`` stay the annotated frames, for testing.
    ``errata``: ``"keep"`` (default, as the authors' code) or ``"owners"`` (leave out the clips
    the dataset's owners would remove; see tsfmicro.data.errata).
    ``apex``: ``"annotated"`` (default) or ``"automatic"``: ``apex`` then holds the crop of the
    frame differing most from the onset (tsfmicro.data.moved_frames), ``apex_frame`` and
    ``apex_path`` name it, ``annotated_apex_frame`` keeps the annotation.
    ``shifts``: percentages of the onset-offset length by which to move the annotated apex and,
    separately, the onset (tsfmicro.data.moved_frames); fills ``shifted`` with those inputs.
    ``boxes``: make sure ``samples`` carries each clip's crop box (``CROP_BOX_COLUMNS``; every cache
    written since the boxes are kept has them, and then they are always there): a cache written
    before is built again once (same key, same crops), as for ``apex`` and ``shifts``.
    """
    task_info(dataset, task)  # unknown task: fail before any work
    check_choice(errata)
    check_apex(apex)
    percents = check_shifts(shifts)
    if crop_size < 8:
        raise ValueError(f"crop_size must be at least 8 pixels, got {crop_size}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    if apex == "automatic" and (reselect_frames or percents):
        raise ValueError("apex='automatic' replaces the annotated apex; it cannot be combined with "
                         "reselect_frames or shifts, which move the annotated frames")
    clips = load_clips(dataset, root)
    if use_precropped and not clips.precropped_available:
        raise ValueError(f"{dataset}: no pre-cropped release found under {root}; run without --precropped")
    settings = cache_settings(crop_size, margin, use_precropped, reselect_frames)
    key = cache_key(clips, settings)
    method = ("precropped" if use_precropped else "mtcnn") + ("_reselect" if reselect_frames else "")
    path = Path(cache_dir or default_cache_dir()) / f"{dataset}_{crop_size}px_{method}_{key[:16]}.npz"
    crops = _read_intact(path, _read_cache)  # None: missing, or damaged (said, then rebuilt)
    if crops is None:
        partial = path.with_name(f"{path.stem}.partial.npz")  # the clips cropped before a Ctrl-C
        crops = _build(clips, settings, progress, partial)
        _write_cache(path, crops)
        partial.unlink(missing_ok=True)
    if (apex == "automatic" or percents or boxes) and crops.boxes is None:
        crops = _rebuild_with_boxes(clips, settings, progress, path, crops)
    view = _task_view(clips, crops, dataset, task, key, path, errata)
    if apex == "automatic":
        return _with_automatic_apex(view, _automatic_apex(clips, crops, settings, key, path, progress))
    if percents:
        view.shifted = _shifted_view(view, _shift_crops(clips, crops, settings, key, path, percents, progress),
                                     percents)
    return view


def cache_settings(crop_size: int, margin: float, use_precropped: bool, reselect_frames: bool) -> dict:
    """The crop settings a cache is keyed by (with ``cache_key``)."""
    settings = {"crop_size": int(crop_size), "margin": float(margin), "use_precropped": bool(use_precropped)}
    if reselect_frames:  # only then: the default settings, key and file name stay as they were
        settings["reselect"] = {"windows": {name: [float(f), int(d)] for name, (f, d) in RESELECT_WINDOWS.items()},
                                "other_datasets": [float(OUR_RESELECT_WINDOW[0]), int(OUR_RESELECT_WINDOW[1])],
                                "score": RESELECT_SCORE}
    return settings


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
    # How each clip was cut (its _Cut), so other frames can be cut alike later; None in caches
    # written before they were kept (prepare rebuilds such a cache once when it needs them).
    boxes: np.ndarray | None = None  # float64 (N, 4): the square box; NaN: a whole pre-cropped frame
    frame_shapes: np.ndarray | None = None  # int64 (N, 2): (height, width) of the raw frame; 0: any

    def cut(self, index: int, size: int) -> "_Cut":
        box = self.boxes[index]
        if np.isnan(box).any():
            return _Cut(size, None, None)
        height, width = (int(v) for v in self.frame_shapes[index])
        return _Cut(size, tuple(float(v) for v in box), (height, width, 3))


def _clip_key(row) -> str:
    return f"{row['dataset']}|{row['subject']}|{row['clip_id']}"


class CroppingInterrupted(KeyboardInterrupt):
    """Ctrl-C while faces were cropped; the message says which crops are kept, and where."""


def _build(clips: ClipTable, settings: dict, progress: bool, partial: Path | None = None) -> _Crops:
    """Every clip's crops. ``partial``: where the crops finished before a Ctrl-C are kept, and
    taken up again by the next build (whole detection batches, so the crops are the same as
    those of an uninterrupted build)."""
    from tqdm.auto import tqdm

    size = settings["crop_size"]
    table = clips.clips.to_dict("records")
    detector = None if settings["use_precropped"] else FaceDetector()
    keys, methods, onsets, apexes, unreadable, cuts = [], [], [], [], [], []
    train_onsets, train_apexes, train_frames = [], [], []
    begun = 0
    kept = _read_intact(partial, _read_arrays) if partial is not None else None
    if kept is not None and int(kept["rows"]) == len(table):
        begun = int(kept["done"])
        keys, methods = kept["keys"].tolist(), kept["crop_method"].tolist()
        onsets, apexes = list(kept["onset"]), list(kept["apex"])
        unreadable = json.loads(str(kept["unreadable"]))
        cuts = [_Cut(size, None if np.isnan(box).any() else tuple(float(v) for v in box),
                     None if not shape.any() else (int(shape[0]), int(shape[1]), 3))
                for box, shape in zip(kept["boxes"], kept["frame_shapes"])]
        if "reselect" in settings:
            train_onsets, train_apexes = list(kept["train_onset"]), list(kept["train_apex"])
            train_frames = [tuple(int(v) for v in frames) for frames in kept["train_frames"]]
    done, cropped, noted = begun, len(keys), len(unreadable)  # as of the last whole batch
    try:
        with tqdm(total=len(table), initial=begun, desc=f"face crops {clips.dataset}", unit="clip",
                  disable=not progress) as bar:
            for start in range(begun, len(table), DETECTION_BATCH):
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
                        cuts.append(result[3])
                        if "reselect" in settings:
                            train_onset, train_apex, frames = _reselect(row, *result)
                            train_onsets.append(train_onset)
                            train_apexes.append(train_apex)
                            train_frames.append(frames)
                done, cropped, noted = start + len(batch), len(keys), len(unreadable)
                bar.update(len(batch))
    except KeyboardInterrupt:
        if partial is None or done == begun:
            raise
        lists = [keys, methods, onsets, apexes, cuts] + ([train_onsets, train_apexes, train_frames]
                                                          if "reselect" in settings else [])
        for items in lists:  # the batch under way is dropped: the next build crops it whole
            del items[cropped:]
        del unreadable[noted:]
        _write_partial(partial, len(table), done, size, keys, methods, onsets, apexes, unreadable, cuts,
                       (train_onsets, train_apexes, train_frames) if "reselect" in settings else None)
        raise CroppingInterrupted(f"the face crops of {done} of {len(table)} clips are kept in {partial}") from None
    empty = np.zeros((0, size, size, 3), np.uint8)
    stack = lambda crops: np.stack(crops) if crops else empty  # noqa: E731
    crops = _Crops(keys, methods, stack(onsets), stack(apexes), pd.DataFrame(unreadable, columns=EXCLUDED_COLUMNS))
    crops.boxes = np.array([cut.box or (np.nan,) * 4 for cut in cuts], dtype=np.float64).reshape(-1, 4)
    crops.frame_shapes = np.array([cut.shape[:2] if cut.shape else (0, 0) for cut in cuts], dtype=np.int64).reshape(-1, 2)
    if "reselect" in settings:
        crops.train_onset, crops.train_apex = stack(train_onsets), stack(train_apexes)
        crops.train_frames = np.array(train_frames, dtype=np.int64).reshape(-1, 2)
    if detector is not None:
        _warn_fallbacks(crops)
    return crops


def _write_partial(path: Path, rows: int, done: int, size: int, keys, methods, onsets, apexes, unreadable, cuts,
                   train) -> None:
    """The crops of the first ``done`` of ``rows`` clips (whole batches), for the next build."""
    empty = np.zeros((0, size, size, 3), np.uint8)
    stack = lambda crops: np.stack(crops) if crops else empty  # noqa: E731
    arrays = dict(rows=np.array(rows), done=np.array(done), keys=np.array(keys, dtype=str),
                  crop_method=np.array(methods, dtype=str), onset=stack(onsets), apex=stack(apexes),
                  unreadable=np.array(json.dumps(unreadable, default=str)),
                  boxes=np.array([cut.box or (np.nan,) * 4 for cut in cuts], dtype=np.float64).reshape(-1, 4),
                  frame_shapes=np.array([cut.shape[:2] if cut.shape else (0, 0) for cut in cuts],
                                        dtype=np.int64).reshape(-1, 2))
    if train is not None:
        arrays.update(train_onset=stack(train[0]), train_apex=stack(train[1]),
                      train_frames=np.array(train[2], dtype=np.int64).reshape(-1, 2))
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        np.savez(handle, **arrays)


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
    """(onset crop, apex crop, crop_method, cut), or None when the clip is left out.

    ``cut`` (a :class:`_Cut`) crops any other frame of the clip exactly as the onset was cropped;
    the frame is taken from the pre-cropped release when crop_method is ``precropped``, else from
    the raw one, and must have the onset's shape (``cut.shape``; None: any shape).
    """
    size = settings["crop_size"]
    whole = _Cut(size, None, None)
    if settings["use_precropped"]:
        return whole(onset), whole(apex), CROP_PRECROPPED, whole
    if onset.shape != apex.shape:
        unreadable.append(_report(row, f"onset and apex frames differ in size: {onset.shape} vs {apex.shape}"))
        return None
    if box is not None:
        cut = _Cut(size, square_box(box, settings["margin"]), onset.shape)
        return cut(onset), cut(apex), CROP_MTCNN, cut
    if _is_path(row.get("precropped_onset_path")) and _is_path(row.get("precropped_apex_path")):
        try:
            return (whole(read_frame(row["precropped_onset_path"])),
                    whole(read_frame(row["precropped_apex_path"])), CROP_PRECROPPED, whole)
        except (FileNotFoundError, ValueError):
            pass  # fall through to the centre crop; the raw frames were readable
    cut = _Cut(size, centre_box(onset.shape), onset.shape)
    return cut(onset), cut(apex), CROP_CENTRE, cut


@dataclass(frozen=True)
class _Cut:
    """How a clip's frames are cut: the square ``box`` (raw-frame pixels) of its onset, resized to
    ``size``; ``box`` None: a whole pre-cropped frame, resized. ``shape``: the raw frame's shape the
    box belongs to (another frame must have it); None for pre-cropped frames (any shape)."""

    size: int
    box: tuple[float, float, float, float] | None
    shape: tuple[int, int, int] | None

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        return resize_whole(frame, self.size) if self.box is None else crop(frame, self.box, self.size)


def _reselect(row: dict, onset_crop: np.ndarray, apex_crop: np.ndarray, method: str, cut: _Cut):
    """The training pair (onset+i, apex-j) with the largest crop difference: crops and frame numbers.

    Candidates: i, j in 0..reselect_shift, onset+i < apex-j, frames present in the clip's
    folder, readable and (raw frames) of the onset's size. Ties: smallest i + j, then i.
    """
    onset_number, apex_number = int(row["onset_frame"]), int(row["apex_frame"])
    shift = reselect_shift(row["dataset"], onset_number, apex_number)
    starts, ends = {0: onset_crop}, {0: apex_crop}
    if shift > 0:
        steps = range(1, shift + 1)
        # a neighbouring frame that cannot be read is simply not a candidate
        later, _ = _clip_frames(row, method, cut, [onset_number + step for step in steps])
        earlier, _ = _clip_frames(row, method, cut, [apex_number - step for step in steps])
        starts.update({number - onset_number: image for number, image in later.items()})
        ends.update({apex_number - number: image for number, image in earlier.items()})
    i, j = best_pair(starts, ends, apex_number - onset_number)
    return starts[i], ends[j], (onset_number + i, apex_number - j)


def _clip_frames(row: dict, method: str, cut: _Cut, numbers) -> tuple[dict[int, np.ndarray], dict[int, str]]:
    """Crops of the clip's frames ``numbers``, cut as its onset was (from the pre-cropped release
    when ``method`` is precropped), and why each frame that could not be used was not."""
    column = "precropped_onset_path" if method == CROP_PRECROPPED else "onset_path"
    folder = Path(row[column]).parent  # every frame of a clip shares its folder
    frames = index_frames(folder)
    crops, problems = {}, {}
    for number in numbers:
        path = frames.get(number)
        if path is None:
            problems[number] = f"frame {number} not found in {folder}"
            continue
        try:
            frame = read_frame(path)
        except (FileNotFoundError, ValueError) as error:
            problems[number] = str(error)
            continue
        if cut.shape is not None and frame.shape != cut.shape:
            problems[number] = f"frame {path} is {frame.shape[1]}x{frame.shape[0]}, the onset frame " \
                               f"{cut.shape[1]}x{cut.shape[0]}"
            continue
        crops[number] = cut(frame)
    return crops, problems


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


def _clip_folder(row: dict, method: str) -> Path:
    """The folder of the clip's frames in the release its crops come from."""
    return Path(row["precropped_onset_path" if method == CROP_PRECROPPED else "onset_path"]).parent


# ----------------------------------------------------------------------------- other frames
# Files beside the cache they extend (same stem), keyed by that cache's key, their rule and the
# fingerprints of the frames they read: the automatic apex (``_autoapex_``) and the frames the
# annotation shifts need (``_frames_``: rebuilt only when that set of frames changes).


def _rebuild_with_boxes(clips: ClipTable, settings: dict, progress: bool, path: Path, stored: _Crops) -> _Crops:
    """A cache written before the crop boxes were kept: built again (same key: same inputs and
    procedure) to record them, once; its crops must come out as stored."""
    crops = _build(clips, settings, progress)
    if crops.keys != stored.keys or not (np.array_equal(crops.onset, stored.onset)
                                         and np.array_equal(crops.apex, stored.apex)):
        raise ValueError(f"{path}: rebuilding this face-crop cache to record its crop boxes gave other crops "
                         "than the stored ones (another MTCNN or Pillow version?); delete the file, and the runs "
                         "trained on it, to start afresh")
    _write_cache(path, crops)
    return crops


def _cached_rows(clips: ClipTable, crops: _Crops) -> list[tuple[int, dict]]:
    """(row of the cache, annotation row) of every clip the cache holds."""
    position = {clip_key: index for index, clip_key in enumerate(crops.keys)}
    rows = [(position.get(_clip_key(row)), row) for row in clips.clips.to_dict("records")]
    return [(index, row) for index, row in rows if index is not None]


def _fingerprints(digest, clip_key: str, folder: Path, numbers) -> None:
    frames = index_frames(folder)
    for number in numbers:
        found = frames.get(number)
        digest.update(f"{clip_key}|{number}|{_frame_fingerprint(str(found) if found else None)}".encode())


@dataclass
class _AutomaticApex:
    key: str
    path: Path
    keys: list[str]
    frames: np.ndarray  # int64 (N,): the chosen frame of each clip
    crops: np.ndarray  # uint8 (N, crop, crop, 3)
    notes: list[str]  # '' or why the annotated apex was kept


def _automatic_apex(clips: ClipTable, crops: _Crops, settings: dict, key: str, path: Path,
                    progress: bool) -> _AutomaticApex:
    """The automatic apex of every cached clip (tsfmicro.data.moved_frames), from its own file."""
    from tqdm.auto import tqdm

    rows = _cached_rows(clips, crops)
    digest = hashlib.sha256(json.dumps({"cache": key, "rule": AUTOMATIC_APEX_RULE}).encode())
    for index, row in rows:
        _fingerprints(digest, crops.keys[index], _clip_folder(row, crops.crop_method[index]),
                      range(int(row["onset_frame"]) + 1, int(row["offset_frame"]) + 1))
    apex_key = digest.hexdigest()
    file = path.with_name(f"{path.stem}_autoapex_{apex_key[:16]}.npz")
    stored = _read_intact(file, _read_arrays)
    if stored is not None:
        return _AutomaticApex(apex_key, file, stored["keys"].tolist(), stored["frames"], stored["crops"],
                              stored["notes"].tolist())
    keys, frames, chosen, notes = [], [], [], []
    size = settings["crop_size"]
    for index, row in tqdm(rows, desc=f"automatic apex {clips.dataset}", unit="clip", disable=not progress):
        numbers = range(int(row["onset_frame"]) + 1, int(row["offset_frame"]) + 1)
        candidates, _ = _clip_frames(row, crops.crop_method[index], crops.cut(index, size), numbers)
        best = pick_automatic_apex(crops.onset[index], candidates)
        keys.append(crops.keys[index])
        if best is None:
            frames.append(int(row["apex_frame"]))
            chosen.append(crops.apex[index])
            notes.append("no readable frame after the onset within onset..offset: the annotated apex is kept")
        else:
            frames.append(best[0])
            chosen.append(candidates[best[0]])
            notes.append("")
    empty = np.zeros((0, size, size, 3), np.uint8)
    result = _AutomaticApex(apex_key, file, keys, np.array(frames, dtype=np.int64),
                            np.stack(chosen) if chosen else empty, notes)
    with atomic_path(file) as temporary, open(temporary, "wb") as handle:
        np.savez(handle, keys=np.array(keys, dtype=str), frames=result.frames, crops=result.crops,
                 notes=np.array(notes, dtype=str))
    return result


def _with_automatic_apex(view: PreparedData, automatic: _AutomaticApex) -> PreparedData:
    """``view`` with the automatic apex in ``apex`` and the sample columns that describe it."""
    position = {clip_key: index for index, clip_key in enumerate(automatic.keys)}
    index = np.array([position[_clip_key(row)] for row in view.samples.to_dict("records")], dtype=np.int64)
    samples = view.samples.copy()
    samples["annotated_apex_frame"] = samples["apex_frame"]
    samples["apex_frame"] = automatic.frames[index]
    for column, source in (("apex_path", "onset_path"), ("precropped_apex_path", "precropped_onset_path")):
        samples[column] = [_frame_path(folder_of, frame) for folder_of, frame in zip(samples[source], samples["apex_frame"])]
    samples["apex_rule"] = [note or AUTOMATIC_APEX_RULE for note in (automatic.notes[i] for i in index)]
    samples["apex_is_onset"] = samples["apex_frame"].astype(int) == samples["onset_frame"].astype(int)
    return replace(view, samples=samples, apex=automatic.crops[index], cache_key=automatic.key,
                   cache_path=automatic.path)


def _frame_path(same_folder: str | None, number: int) -> str | None:
    """The path of frame ``number`` in the folder of ``same_folder`` (a frame of the same clip)."""
    if not _is_path(same_folder):
        return same_folder
    found = index_frames(Path(same_folder).parent).get(int(number))
    return str(found) if found else ""


@dataclass
class _FrameCrops:
    key: str
    path: Path
    index: dict[tuple[str, int], int]  # (clip key, frame) -> row of crops
    crops: np.ndarray
    problems: dict[tuple[str, int], str]  # (clip key, frame) -> why it could not be cut


def _shift_crops(clips: ClipTable, crops: _Crops, settings: dict, key: str, path: Path,
                 percents: tuple[float, ...], progress: bool) -> _FrameCrops:
    """Crops of the frames the shifts need (beyond the annotated ones), from their own file."""
    from tqdm.auto import tqdm

    rows = _cached_rows(clips, crops)
    table = pd.DataFrame([row for _, row in rows], columns=clips.clips.columns)
    needed = needed_frames(table, [crops.keys[index] for index, _ in rows], percents)
    wanted = sorted(f"{clip_key}|{number}" for clip_key, numbers in needed.items() for number in numbers)
    digest = hashlib.sha256(json.dumps({"cache": key, "frames": wanted}).encode())
    for index, row in rows:
        if crops.keys[index] in needed:
            _fingerprints(digest, crops.keys[index], _clip_folder(row, crops.crop_method[index]),
                          sorted(needed[crops.keys[index]]))
    frames_key = digest.hexdigest()
    file = path.with_name(f"{path.stem}_frames_{frames_key[:16]}.npz")
    stored = _read_intact(file, _read_arrays)
    if stored is not None:
        owners, numbers, images = stored["keys"].tolist(), stored["frames"].tolist(), stored["crops"]
        problems = json.loads(str(stored["problems"]))
    else:
        owners, numbers, images, problems = [], [], [], []
        size = settings["crop_size"]
        for index, row in tqdm(rows, desc=f"shifted frames {clips.dataset}", unit="clip", disable=not progress):
            clip_key = crops.keys[index]
            if clip_key not in needed:
                continue
            got, failed = _clip_frames(row, crops.crop_method[index], crops.cut(index, size), sorted(needed[clip_key]))
            for number, image in got.items():
                owners.append(clip_key)
                numbers.append(int(number))
                images.append(image)
            problems += [{"key": clip_key, "frame": int(number), "reason": reason} for number, reason in failed.items()]
        images = np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)
        with atomic_path(file) as temporary, open(temporary, "wb") as handle:
            np.savez(handle, keys=np.array(owners, dtype=str), frames=np.array(numbers, dtype=np.int64),
                     crops=images, problems=np.array(json.dumps(problems)))
    return _FrameCrops(frames_key, file, {(owner, int(number)): row for row, (owner, number)
                                          in enumerate(zip(owners, numbers))}, images,
                       {(problem["key"], int(problem["frame"])): problem["reason"] for problem in problems})


def _shifted_view(view: PreparedData, frames: _FrameCrops, percents: tuple[float, ...]) -> ShiftedFrames:
    """The inputs of ``view``'s clips at every shift (see ShiftedFrames)."""
    rows = []
    for sample, row in enumerate(view.samples.to_dict("records")):
        onset, apex, offset = int(row["onset_frame"]), int(row["apex_frame"]), int(row["offset_frame"])
        for kind in SHIFT_KINDS:
            annotated = apex if kind == "apex" else onset
            for percent in percents:
                frame = shifted_frame(kind, percent, onset, apex, offset)
                crop_row, reason = -1, ""
                if frame != annotated:
                    crop_row = frames.index.get((_clip_key(row), frame), -1)
                    if crop_row < 0:
                        problem = frames.problems.get((_clip_key(row), frame), f"frame {frame} is not in {frames.path}")
                        reason = f"{kind} moved by {percent:+g} % to frame {frame}: {problem}"
                rows.append(dict(sample=sample, kind=kind, percent=percent, steps=shift_steps(percent, onset, offset),
                                 frame=frame, moved=frame - annotated, crop=crop_row, reason=reason))
    return ShiftedFrames(percents, pd.DataFrame(rows, columns=TABLE_COLUMNS), frames.crops, frames.key, frames.path)


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
        train.update(boxes=crops.boxes, frame_shapes=crops.frame_shapes)
        np.savez(handle, onset=crops.onset, apex=crops.apex, keys=np.array(crops.keys, dtype=str),
                 crop_method=np.array(crops.crop_method, dtype=str),
                 unreadable=np.array(crops.unreadable.to_json(orient="records")), **train)


# What reading a damaged .npz raises: a truncated or overwritten zip (BadZipFile, also for a bad
# CRC), an empty file (EOFError), random bytes (ValueError: numpy takes them for a pickle), a
# missing array (KeyError), bad JSON inside (ValueError).
_DAMAGED = (zipfile.BadZipFile, EOFError, ValueError, KeyError, zlib.error)


def _read_intact(path: Path, reader):
    """``reader(path)``; None when the file is missing, or damaged: then it is named on stderr
    and removed, so the caller rebuilds it from the dataset (the cache only ever holds what the
    frames give again). Without this a damaged file fails every later run the same way."""
    if not path.is_file():
        return None
    try:
        return reader(path)
    except _DAMAGED as error:
        reason = str(error).splitlines()[0][:120] if str(error) else error.__class__.__name__
        print(f"face-crop cache {path} is damaged ({error.__class__.__name__}: {reason}); removed, "
              "building it again from the dataset", file=sys.stderr, flush=True)
        path.unlink(missing_ok=True)
        return None


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz, read now (so a damaged member fails here, not later)."""
    with np.load(path, allow_pickle=False) as stored:
        return {name: stored[name] for name in stored.files}


def _read_cache(path: Path) -> _Crops:
    with np.load(path, allow_pickle=False) as stored:
        unreadable = pd.DataFrame(json.loads(str(stored["unreadable"])), columns=EXCLUDED_COLUMNS)
        train = [stored[name] if name in stored.files else None
                 for name in ("train_onset", "train_apex", "train_frames", "boxes", "frame_shapes")]
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
    if crops.boxes is not None:  # how each clip was cut: where a raw-frame point lands in its crop
        for column, values in zip(CROP_BOX_COLUMNS, crops.boxes[index].T):
            samples[column] = values
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
