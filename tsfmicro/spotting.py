"""A training-free spotter for long videos: "MDMD-like" block differences, a mean + p(max - mean)
threshold and peak picking (shared/reference/long_videos.md, section 4). Not the MEGC2020 baseline:
MDMD uses RLOF optical flow and its main direction per block; we use grey-level differences, so our
numbers are "MDMD-like", never the official baseline's.

Per video:

1. The face: MTCNN (tsfmicro.data.faces, as the face-crop cache uses it) on the first frame, the box
   grown by the cache's margin and made square, grey, ``side`` pixels. The box follows the head:
   each frame's crop is registered to the first one's (the peak of their windowed cross-correlation,
   refined below a pixel) and cut again with the box moved by that translation, so a head that
   moves by a pixel is no movement (a fixed box turned each one-pixel head step of the synthetic
   videos into a false detection). No face found: the largest
   centred square, recorded as ``crop_method``. A missing frame repeats the previous one.
2. For each scale (micro, macro) with half-width h: the frame's difference from the mean of the
   frames h before and h after, ``|G_i - (G_{i-h} + G_{i+h}) / 2|``, averaged in each block of a
   ``grid`` x ``grid`` grid over the face; the frame's score is the mean of its ``top`` largest blocks
   (MDMD's 6 x 6 blocks and its mean of the largest third). A movement that rises and returns within
   about 2h frames peaks at its apex; slow changes (drift, lighting) cancel.
3. Threshold T = mean + p (max - mean) of the scores (MDMD, SoftNet), raised to the noise floor
   ``noise_factor`` x the video's noise level (the median score at h = 1) when that is higher. Why
   the floor (our addition): mean + p(max - mean) always passes the video's largest score, so a
   video without any movement would always yield an interval; the floor keeps noise out. Each
   crop's mean grey level is removed first, so a flicker of the lighting is no movement.
4. Peaks above T, 2h + 1 frames apart (scipy find_peaks, as SoftNet/MEAN, which use h apart: ours
   keeps a movement's side lobes at +-h out), from both scales, taken strongest first (score over
   its threshold); a peak within max(h, half its length) of an interval already taken is the same
   movement (seen at the other scale, or a side lobe) and is dropped.
5. The interval (ours): [peak - h*, peak + h*] with h* the smallest h at which the peak frame's
   score (step 2) reaches ``level`` of its plateau within ``reach`` (``extent``): once the frames
   i -/+ h are past the onset and offset they are neutral and the score stops growing. Micro if it
   is at most ``micro_longest`` frames (the MEGC2020 micro range's top, where there is one), else macro. The MEGC2020 length
   filter is then applied by the scorer (tsfmicro.spotting_metrics).

Parameters per dataset (``PARAMETERS``) are data, each with its source. The recognition of the
spotted intervals (a trained TSFmicro run on each interval's onset and apex) is a later step.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
from PIL import Image
from scipy.signal import find_peaks

from .data.faces import CROP_CENTRE, CROP_MTCNN, DEFAULT_MARGIN, FaceDetector, centre_box, crop, square_box
from .data.frames import read_frame

PREDICTION_COLUMNS = ["subject", "video", "onset", "offset", "kind", "peak", "score", "crop_method"]


@dataclass(frozen=True)
class Scale:
    kind: str  # "micro" or "macro"
    half: int  # h: the score compares frame i with frames i - h and i + h (about half the movement's length)
    p: float  # threshold T = mean + p (max - mean)
    source: str  # where h and p come from


@dataclass(frozen=True)
class SpotterParams:
    scales: tuple[Scale, ...]
    grid: int = 6  # blocks per side (MDMD: 6 x 6)
    top: int = 12  # mean of the largest blocks (MDMD: round(36 / 3))
    side: int = 96  # face crop side in pixels (ours: enough for 16-pixel blocks)
    noise_factor: float = 2.0  # noise floor: this x the median score at h = 1 (ours, see the module docstring)
    micro_longest: int = 16  # an interval of at most this many frames is micro, else macro
    reach: float = 1.0  # the extent search looks this many x the largest h each way (ours)
    level: float = 0.9  # the extent: this share of the plateau of the peak's score over h (ours, ``extent``)
    note: str = ""

    def scale(self, kind: str) -> Scale:
        return next(scale for scale in self.scales if scale.kind == kind)


# h = half the median length of the release's intervals (long_videos.md section 1: CAS(ME)^2 micro
# median 14, macro 31; SAMM-LV V1 micro 78, macro 223), as SoftNet's k = (mean length + 1) / 2
# (the mean is not in the reference, the median is). p: ours, chosen on synthetic videos with
# the noise floor doing most of the work (SoftNet's 0.55 is for learned scores; MDMD's 0.01 for its
# flow feature gives thousands of false positives on the real data, long_videos.md section 5).
# micro_longest: the top of the MEGC2020 micro length range (CAS(ME)^2 7..16, SAMM-LV 47..105;
# long_videos.md section 2), so the spotter's kind agrees with the scorer's length filter.
_MEDIAN_SOURCE = "half the release's median {kind} length ({median} frames, long_videos.md section 1)"
PARAMETERS = {
    "casme_sq": SpotterParams(scales=(
        Scale("micro", 7, 0.1, _MEDIAN_SOURCE.format(kind="micro", median=14) + "; p ours"),
        Scale("macro", 15, 0.1, _MEDIAN_SOURCE.format(kind="macro", median=31) + "; p ours"),
    ), micro_longest=16, note="CAS(ME)^2, 30 fps"),
    "samm_lv": SpotterParams(scales=(
        Scale("micro", 39, 0.1, _MEDIAN_SOURCE.format(kind="micro", median=78) + "; p ours"),
        Scale("macro", 111, 0.1, _MEDIAN_SOURCE.format(kind="macro", median=223) + "; p ours"),
    ), micro_longest=105, note="SAMM-LV, 200 fps"),
    # CAS(ME)^3 Part A: medians micro 22, macro 73 (long_videos.md section 1); no MEGC length limit
    # is verified for it, so micro_longest is ours: 40, near the geometric mean of the two medians
    "casme3_lv": SpotterParams(scales=(
        Scale("micro", 11, 0.1, _MEDIAN_SOURCE.format(kind="micro", median=22) + "; p ours"),
        Scale("macro", 36, 0.1, _MEDIAN_SOURCE.format(kind="macro", median=73) + "; p ours"),
    ), micro_longest=40, note="CAS(ME)^3 Part A, 30 fps"),
}


# ----------------------------------------------------------------------------- face crops
def _read_or_none(path: Path) -> np.ndarray | None:
    """A frame, or None when it cannot be read (treated as a missing frame, and listed as one)."""
    try:
        return read_frame(path)
    except (FileNotFoundError, ValueError):
        return None


@dataclass
class Crops:
    numbers: np.ndarray  # frame numbers, consecutive from the first to the last
    grey: np.ndarray  # float32 (N, side, side)
    box: tuple[float, float, float, float]
    method: str  # mtcnn or centre
    missing: list[int] = field(default_factory=list)  # frame numbers repeated from the previous frame


def _grey(frame: np.ndarray, box, side: int) -> np.ndarray:
    return np.asarray(Image.fromarray(crop(frame, box, side)).convert("L"), dtype=np.float32)


def _translation(reference_spectrum: np.ndarray, moving: np.ndarray) -> tuple[float, float]:
    """(dy, dx) that moves ``moving`` onto the reference: the peak of their circular
    cross-correlation (FFT), refined to a fraction of a pixel by a parabola through the peak and its
    two neighbours on each axis (faster than an upsampled search, and as exact for a smooth face)."""
    correlation = np.fft.irfft2(reference_spectrum * np.conj(np.fft.rfft2(_windowed(moving))), s=moving.shape)
    peak = np.unravel_index(int(np.argmax(correlation)), correlation.shape)
    shift = []
    for axis, size in enumerate(correlation.shape):
        before, after = list(peak), list(peak)
        before[axis], after[axis] = (peak[axis] - 1) % size, (peak[axis] + 1) % size
        left, centre, right = correlation[tuple(before)], correlation[peak], correlation[tuple(after)]
        bend = left - 2 * centre + right
        offset = 0.5 * (left - right) / bend if bend < 0 else 0.0
        position = peak[axis] + offset
        shift.append(position - size if position > size / 2 else position)
    return shift[0], shift[1]


def _windowed(image: np.ndarray) -> np.ndarray:
    """Mean removed and a Hann window applied: the crop's borders (where the circular correlation
    wraps) weigh nothing, which makes the sub-pixel peak about twice as exact on faces."""
    window = np.outer(np.hanning(image.shape[0]), np.hanning(image.shape[1]))
    return (image - image.mean()) * window


def _follow(reference_spectrum: np.ndarray, cut: np.ndarray, box, side: int):
    """The box moved with the head: the translation of ``cut`` against the first frame's crop, in
    frame pixels."""
    dy, dx = _translation(reference_spectrum, cut)
    scale = (box[2] - box[0]) / side
    return box[0] - dx * scale, box[1] - dy * scale, box[2] - dx * scale, box[3] - dy * scale


def face_crops(frames: dict[int, Path] | list[np.ndarray], side: int, detector: FaceDetector | None = None,
               align: bool = True) -> Crops:
    """The face of every frame (module docstring, step 1). ``frames``: frame number -> image path,
    or the frames themselves (uint8 RGB, numbered from 1). ``align``: the box follows the head's
    translation (head motion is not facial movement; ``_follow``), else one fixed box."""
    if isinstance(frames, dict):
        if not frames:
            raise ValueError("a video without frames")
        numbers = np.arange(min(frames), max(frames) + 1)
        load = lambda n: _read_or_none(frames[n]) if n in frames else None  # noqa: E731
    else:
        numbers = np.arange(1, len(frames) + 1)
        load = lambda n: frames[n - 1]  # noqa: E731
    first = None
    for number in numbers:
        first = load(number)
        if first is not None:
            break
    if first is None:
        raise ValueError("no readable frame in the video")
    found = (detector or FaceDetector()).largest_faces([first])[0]
    box, method = (square_box(found, DEFAULT_MARGIN), CROP_MTCNN) if found else (centre_box(first.shape), CROP_CENTRE)
    grey = np.empty((len(numbers), side, side), dtype=np.float32)
    missing, previous, reference = [], None, None
    for index, number in enumerate(numbers):
        frame = load(number)
        if frame is None:
            missing.append(int(number))
            grey[index] = previous if previous is not None else 0
            continue
        cut = _grey(frame, box, side)
        if align:
            if reference is None:
                reference = np.fft.rfft2(_windowed(cut))
            else:
                cut = _grey(frame, _follow(reference, cut, box, side), side)
        previous = cut - cut.mean()  # a change of the whole face's brightness (flicker) is no movement
        grey[index] = previous
    return Crops(numbers, grey, tuple(float(v) for v in box), method, missing)


# ----------------------------------------------------------------------------- scores
def block_scores(grey: np.ndarray, half: int, grid: int, top: int) -> np.ndarray:
    """Per frame, the mean of the ``top`` largest block means of |G_i - (G_{i-h} + G_{i+h}) / 2|;
    NaN where i - h or i + h is outside the video."""
    n, side = len(grey), grey.shape[1]
    scores = np.full(n, np.nan)
    if n <= 2 * half:
        return scores
    block = side // grid
    cut = grey[:, : block * grid, : block * grid]
    diff = np.abs(cut[half:n - half] - 0.5 * (cut[: n - 2 * half] + cut[2 * half:]))
    blocks = diff.reshape(len(diff), grid, block, grid, block).mean(axis=(2, 4)).reshape(len(diff), -1)
    largest = np.sort(blocks, axis=1)[:, -top:]
    scores[half:n - half] = largest.mean(axis=1)
    return scores


def noise_level(grey: np.ndarray, grid: int, top: int) -> float:
    """The median score at h = 1: consecutive frames differ by sensor noise almost everywhere, even in
    a video full of movements (a movement changes little from one frame to the next), and without
    movement the score has the same level at every h (the noise of three frames either way)."""
    values = block_scores(grey, 1, grid, top)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else 0.0


def threshold(scores: np.ndarray, p: float, floor: float) -> float:
    """max(mean + p (max - mean), floor) over the defined scores."""
    values = scores[np.isfinite(scores)]
    if values.size == 0:
        return np.inf
    mean, top = values.mean(), values.max()
    return float(max(mean + p * (top - mean), floor))


@dataclass
class VideoSpotting:
    """One video's spotting: its scores and thresholds per scale (for a timeline figure) and intervals."""

    numbers: np.ndarray
    scores: dict[str, np.ndarray]
    thresholds: dict[str, float]
    intervals: pd.DataFrame  # onset, offset, kind, peak, score (frame numbers)
    crop_method: str
    missing: list[int]


def extent(grey: np.ndarray, index: int, reach: int, grid: int, top: int, level: float,
           noise: float = 0.0) -> int:
    """The half-length of the movement peaking at frame ``index``: the smallest h at which the
    frame's score |G_i - (G_{i-h} + G_{i+h}) / 2| reaches ``level`` of its largest over h = 1..reach
    (both above the ``noise`` level; smoothed over 3 values of h). Once both neighbours are past
    the onset and the offset they are neutral and the score stops growing (at its plateau: the median
    of the curve's upper half). The two-sided form is
    used because a slow head drift makes a one-sided difference keep growing with h; it cancels here."""
    n, side = len(grey), grey.shape[1]
    block = side // grid
    gaps = [h for h in range(1, reach + 1) if index - h >= 0 and index + h < n]
    if not gaps:
        return 0
    cut = grey[:, : block * grid, : block * grid]
    before, after = cut[[index - h for h in gaps]], cut[[index + h for h in gaps]]
    diff = np.abs(cut[index][None] - 0.5 * (before + after))
    blocks = diff.reshape(len(gaps), grid, block, grid, block).mean(axis=(2, 4)).reshape(len(gaps), -1)
    curve = np.sort(blocks, axis=1)[:, -top:].mean(axis=1)
    smooth = np.convolve(np.pad(curve, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    # the plateau: the median of the upper half of the curve, not its maximum, which another
    # movement or a head step reached by a large h would set
    plateau = float(np.median(np.sort(smooth)[len(smooth) // 2:]))
    return gaps[int(np.argmax(smooth >= noise + level * (plateau - noise)))]


def spot_crops(crops: Crops, params: SpotterParams) -> VideoSpotting:
    """Steps 2-5 of the module docstring on one video's crops."""
    scores, thresholds, candidates = {}, {}, []
    noise = noise_level(crops.grey, params.grid, params.top)
    floor = params.noise_factor * noise
    for scale in params.scales:
        scores[scale.kind] = block_scores(crops.grey, scale.half, params.grid, params.top)
        thresholds[scale.kind] = threshold(scores[scale.kind], scale.p, floor)
        filled = np.nan_to_num(scores[scale.kind], nan=-np.inf)
        # peaks 2h apart: each one's interval [peak - h, peak + h] overlaps no other of its scale
        peaks, _ = find_peaks(filled, height=thresholds[scale.kind], distance=2 * scale.half + 1)
        candidates += [(scores[scale.kind][i] / thresholds[scale.kind], int(i), scale.half) for i in peaks]
    reach = int(round(params.reach * max(scale.half for scale in params.scales)))
    micro_longest = params.micro_longest
    accepted = []
    for strength, i, half in sorted(candidates, reverse=True):  # the strongest first, relative to its threshold
        # the same movement seen at the other scale, or a side lobe: a scale-h score has its side
        # lobes within h of a movement's ends
        if any(start - max(half, (end - start) // 2) <= i <= end + max(half, (end - start) // 2)
               for start, end, _, _ in accepted):
            continue
        half = extent(crops.grey, i, reach, params.grid, params.top, params.level, noise)
        accepted.append((i - half, i + half, i, strength))
    last = len(crops.numbers) - 1
    rows = []
    for start, end, i, strength in accepted:
        start, end = max(start, 0), min(end, last)
        kind = "micro" if end - start + 1 <= micro_longest else "macro"
        rows.append(dict(onset=int(crops.numbers[start]), offset=int(crops.numbers[end]), kind=kind,
                         peak=int(crops.numbers[i]), score=float(strength)))
    intervals = pd.DataFrame(rows, columns=["onset", "offset", "kind", "peak", "score"]).sort_values(
        "onset", kind="stable").reset_index(drop=True)
    return VideoSpotting(crops.numbers, scores, thresholds, intervals, crops.method, crops.missing)


def spot_video(frames: dict[int, Path] | list[np.ndarray], params: SpotterParams,
               detector: FaceDetector | None = None) -> VideoSpotting:
    """Face crops, then spotting, of one video (frame number -> path, or the frames)."""
    return spot_crops(face_crops(frames, params.side, detector), params)


def spot_dataset(table, params: SpotterParams | None = None, videos: Iterable[tuple[str, str]] | None = None,
                 detector: FaceDetector | None = None) -> pd.DataFrame:
    """Predictions (PREDICTION_COLUMNS) for every video of a tsfmicro.data.long_videos
    LongVideoTable (or those of ``videos``: (subject, video) pairs), with the dataset's PARAMETERS
    unless ``params`` is given."""
    params = params or PARAMETERS[table.dataset]
    detector = detector or FaceDetector()
    wanted = list(videos) if videos is not None else list(zip(table.videos["subject"], table.videos["video"]))
    out = []
    for subject, video in wanted:
        result = spot_video(table.frames(subject, video), params, detector)
        found = result.intervals.assign(subject=subject, video=video, crop_method=result.crop_method)
        out.append(found[PREDICTION_COLUMNS])
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=PREDICTION_COLUMNS)
