"""Long videos (CAS(ME)^2, SAMM-LV): their annotation read into intervals, and synthetic copies.

A long video is a folder of frames holding many intervals (micro- and macro-expressions) or
none; its workbook has one row per interval (shared/reference/long_videos.md, section 1). Each
dataset is one module of tsfmicro/data/datasets/ whose ``SPEC`` has a ``LongVideoSheet`` reader;
they are listed in ``LONG_VIDEO_SPECS`` apart from ``SPECS`` because every consumer of
``DATASETS`` (load_clips, prepare, the parameters' ``datasets:``, plans) expects clips.

``load_long_videos(name, root)`` -> ``LongVideoTable``: ``intervals`` (one row per usable
annotation row), ``videos`` (every frame folder), ``excluded`` (rows left out: file, row, reason)
and ``quirks`` (rows kept with a value filled by a published rule, or frames missing): nothing
is dropped or filled silently. The rules:

* a decimal frame number -> rounded half up, int(x + 0.5) (MDMD SAMM_MEGC.py:43-60), reported;
* offset 0 -> the apex (MDMD CASME_2.py:67-70; SoftNet load_label.py:60-61), reported;
* apex 0 or empty -> (onset + offset) // 2 (the same sources), reported;
* onset 0 or an empty onset/offset -> excluded (no published rule fills it; SoftNet drops SAMM
  macro rows with onset 0 as "extremely long");
* offset < onset, an unknown type, no video folder, an interval past the video's last frame,
  a duplicate row -> excluded;
* frames missing inside onset..offset (CAS(ME)^3 has such gaps) -> kept, reported once per row;
  frames missing in a video -> one quirk row per video.

``write_long_videos(name, out, ...)`` writes a synthetic copy in the dataset's layout (its
spec's writer, drawn with ``LongVideoWriter``), with planted micro and macro intervals of known
onset, apex, offset and emotion, blinks and a small head drift as distractors, the synthetic
marker and a manifest (``TSFMICRO_SYNTHETIC_manifest.csv``: one row per planted event, with
``expected``: what the reader must do with its row).
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import write_csv, write_text
from .frames import find_dir, index_frames
from .specs import MARKER_FILE, SYNTHETIC_SOURCE, DatasetSpec, LongVideoSheet
from .synthetic import MANIFEST_FILE, LABEL_MOVEMENT, _displacement, _paste, _warp, _Writer, synthetic_folder
from .types import REPORT_COLUMNS

# interval_id: the sheet's own name of the interval where it has one (SAMM-LV's Filename, 006_1_2: the
# SAMM clip of the same expression, whose emotion MEAN joins), else ""
INTERVAL_COLUMNS = ["dataset", "subject", "video", "onset", "apex", "offset", "kind", "label", "file", "row",
                    "interval_id"]
VIDEO_COLUMNS = ["dataset", "subject", "video", "folder", "first_frame", "last_frame", "frames", "missing"]


@dataclass
class LongVideoTable:
    dataset: str
    intervals: pd.DataFrame  # INTERVAL_COLUMNS
    videos: pd.DataFrame  # VIDEO_COLUMNS: every frame folder of the release (with or without intervals)
    excluded: pd.DataFrame  # REPORT_COLUMNS (clip_id: the video)
    quirks: pd.DataFrame  # REPORT_COLUMNS: rows kept with a value filled by a published rule, frames missing
    annotation: Path
    source: str  # "SYNTHETIC" or the display name

    def frames(self, subject: str, video: str) -> dict[int, Path]:
        """Frame number -> image path of one video."""
        row = self.videos[(self.videos["subject"] == subject) & (self.videos["video"] == video)]
        if row.empty:
            raise KeyError(f"{self.dataset}: no video {subject}/{video}")
        return index_frames(Path(row["folder"].iloc[0]))


# ----------------------------------------------------------------------------- reading
def long_video_spec(name: str) -> DatasetSpec:
    from .datasets import LONG_VIDEO_SPECS  # here: the dataset modules import this module's writer kit

    specs = {spec.name: spec for spec in LONG_VIDEO_SPECS}
    if name not in specs:
        raise KeyError(f"unknown long-video dataset {name!r}; known: {', '.join(specs)}")
    return specs[name]


def load_long_videos(name: str, root: str | Path, strict: bool = False) -> LongVideoTable:
    """Every usable interval of a long-video release in ``root`` (module docstring). ``strict``:
    raise ValueError on the first excluded row instead of reporting it."""
    spec = long_video_spec(name)
    reader: LongVideoSheet = spec.reader
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder (a {spec.display_name} root: {spec.layout})")
    annotation = _find_annotation(spec, root)
    base = find_dir(root, spec.frames.raw)
    if base is None:
        raise FileNotFoundError(f"{root} is not a {spec.display_name} root: no "
                                f"{' or '.join(f + '/' for f in spec.frames.raw)} folder ({spec.layout})")
    try:
        sheets = pd.read_excel(annotation, sheet_name=None, header=None, dtype=object)
    except Exception as error:  # openpyxl/xlrd raise many types for a damaged file
        raise ValueError(f"{annotation}: cannot read as a spreadsheet ({error})") from error
    videos = _videos(spec, base)
    excluded, quirks, intervals, seen = [], [], [], set()

    def report(target: list, record: dict, reason: str) -> None:
        entry = dict(dataset=name, file=str(annotation), row=record.get("row"), subject=record.get("subject", ""),
                     clip_id=record.get("video", ""), reason=reason)
        if strict and target is excluded:
            raise ValueError(f"{annotation}, row {entry['row']}: {reason}")
        target.append(entry)

    for record in reader.rows(sheets):
        if record.get("problem"):
            report(excluded, record, record["problem"])
            continue
        if record.get("note"):  # a cell the dataset's reader read differently from how it is written
            report(quirks, record, record["note"])
        onset, apex, offset = (_number(record.get(k)) for k in ("onset", "apex", "offset"))
        rounded = [f"{k} {record[k]!r} rounded to {v}" for k, v in (("onset", onset), ("apex", apex), ("offset", offset))
                   if v is not None and _fraction(record.get(k))]
        if rounded:
            report(quirks, record, f"{', '.join(rounded)} (int(x + 0.5), the MEGC2020 baseline's rounding)")
        kind = reader.kind(record.get("type"))
        if onset is None or offset is None:
            empty = [k for k, v in (("onset", onset), ("offset", offset)) if v is None]
            report(excluded, record, f"empty or non-numeric {' and '.join(empty)} cell "
                                     f"({', '.join(repr(record.get(k)) for k in empty)}): no published rule fills it")
            continue
        if onset <= 0:
            report(excluded, record, f"onset {onset} is not a frame number (SoftNet drops such rows as extremely long)")
            continue
        if kind is None:
            report(excluded, record, f"type {record.get('type')!r} is neither micro nor macro")
            continue
        if offset == 0:
            if apex is None or apex <= 0:
                report(excluded, record, "offset 0 and no apex: no published rule fills it")
                continue
            report(quirks, record, f"offset 0: offset taken as the apex {apex} (the MEGC2020 baseline's rule)")
            offset = apex
        if offset < onset:
            report(excluded, record, f"offset {offset} before onset {onset}")
            continue
        if apex is None or apex <= 0:
            middle = (onset + offset) // 2
            report(quirks, record, f"apex {record.get('apex')!r}: apex taken as (onset + offset) // 2 = {middle} "
                                   "(the MEGC2020 baseline's rule)")
            apex = middle
        elif not onset <= apex <= offset:
            report(quirks, record, f"apex {apex} outside onset..offset {onset}..{offset}: kept as annotated")
        video = videos.get((record["subject"], record["video"]))
        if video is None:
            report(excluded, record, f"no frame folder for subject {record['subject']!r}, video {record['video']!r} "
                                     f"under {base}")
            continue
        frames = index_frames(Path(video["folder"]))
        if offset > video["last_frame"]:
            report(excluded, record, f"interval {onset}..{offset} ends after the video's last frame "
                                     f"{video['last_frame']} ({video['folder']})")
            continue
        missing = [n for n in range(onset, offset + 1) if n not in frames]
        if missing:
            report(quirks, record, f"{len(missing)} frame(s) missing inside {onset}..{offset} "
                                   f"(first {missing[0]}): kept; the spotter repeats the previous frame")
        key = (video["subject"], video["video"], onset, offset, kind)
        if key in seen:
            report(excluded, record, f"duplicate of an earlier row ({kind} {onset}..{offset})")
            continue
        seen.add(key)
        intervals.append(dict(dataset=name, subject=video["subject"], video=video["video"], onset=onset, apex=apex,
                              offset=offset, kind=kind, label=_text(record.get("label")), file=str(annotation),
                              row=record.get("row"), interval_id=_text(record.get("interval_id"))))
    for video in videos.values():
        if video["missing"]:
            quirks.append(dict(dataset=name, file=video["folder"], row=None, subject=video["subject"],
                               clip_id=video["video"], reason=f"{video['missing']} frame(s) missing between frames "
                                                              f"{video['first_frame']} and {video['last_frame']}"))
    source = SYNTHETIC_SOURCE if (root / MARKER_FILE).is_file() else spec.display_name
    return LongVideoTable(name, pd.DataFrame(intervals, columns=INTERVAL_COLUMNS),
                          pd.DataFrame(list(videos.values()), columns=VIDEO_COLUMNS),
                          pd.DataFrame(excluded, columns=REPORT_COLUMNS), pd.DataFrame(quirks, columns=REPORT_COLUMNS),
                          annotation, source)


def _find_annotation(spec: DatasetSpec, root: Path) -> Path:
    for pattern in spec.reader.patterns:
        found = [p for p in root.iterdir() if p.is_file() and fnmatch.fnmatch(p.name.lower(), pattern)]
        if found:
            return max(found, key=lambda path: path.name)  # V3 sorts after V2 after V1
    raise FileNotFoundError(f"{root} is not a {spec.display_name} root: no annotation file matching "
                            f"{' or '.join(spec.reader.patterns)} ({spec.layout})")


def _videos(spec: DatasetSpec, base: Path) -> dict[tuple[str, str], dict]:
    """(subject, video key) -> the video's record, for every folder of frames the reader's
    ``videos`` lists; the key is the one the sheet's rows name."""
    found = {}
    for subject, key, folder, *name in spec.reader.videos(base):
        frames = index_frames(Path(folder))
        if not frames:
            continue
        first, last = min(frames), max(frames)
        video = name[0] if name else Path(folder).name  # the video's name: its folder's, unless given
        found[(subject, key)] = dict(dataset=spec.name, subject=subject, video=video, folder=str(folder),
                                     first_frame=first, last_frame=last, frames=len(frames),
                                     missing=last - first + 1 - len(frames))
    return found


def _number(cell: object) -> int | None:
    """An integer frame number from a cell (int, float rounded half up as the MEGC2020 baseline's
    int(x + 0.5), numeric text); None for empty or non-numeric."""
    if cell is None or (isinstance(cell, float) and np.isnan(cell)):
        return None
    try:
        value = float(str(cell).strip())
    except ValueError:
        return None
    return int(value + 0.5) if np.isfinite(value) else None


def _fraction(cell: object) -> bool:
    """A cell holding a number that is not a whole frame number (SAMM-LV V1 has such values)."""
    try:
        value = float(str(cell).strip())
    except ValueError:
        return False
    return bool(np.isfinite(value) and value != int(value))


def _text(cell: object) -> str:
    return "" if cell is None or (isinstance(cell, float) and np.isnan(cell)) else str(cell).strip()


# ----------------------------------------------------------------------------- synthetic long videos
@dataclass
class Event:
    """One planted event of a long video (frame indices from 0; the file number is index + first)."""

    kind: str  # micro, macro, or a distractor: blink
    start: int
    apex: int
    end: int
    movement: str
    intensity: float
    label: str  # the emotion ('' for a distractor)


LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601 luma, PIL's RGB -> L weights


def event_profile(index: int, event: Event) -> float:
    """0 at the start, 1 at the apex, back to 0 at the end (sin^2 both ways): a movement that
    returns to neutral, as an expression in a long video does."""
    if not event.start <= index <= event.end:
        return 0.0
    if index <= event.apex:
        rise = event.apex - event.start
        return float(np.sin(np.pi / 2 * (index - event.start) / rise) ** 2) if rise else 1.0
    fall = event.end - event.apex
    return float(np.cos(np.pi / 2 * (index - event.apex) / fall) ** 2) if fall else 1.0


class LongVideoWriter(_Writer):
    """The synthetic kit's writer (faces per subject, noise, the random stream) with long videos:
    ``plan_video`` draws events, ``render_video`` yields frames, ``record_event`` fills the manifest."""

    def __init__(self, root: Path, layout: str, subjects: int, videos_per_subject: int, seed: int,
                 frame_size: tuple[int, int], stream: int, frames: int, fps: int,
                 faces_of: tuple[int, tuple[int, int]] | None = None):
        super().__init__(root, layout, subjects, videos_per_subject, seed, frame_size, stream, faces_of)
        self.video_frames, self.fps = frames, fps

    def plan_video(self, emotions: list[str], lengths: dict[str, tuple[int, int]],
                   counts: dict[str, int]) -> list[Event]:
        """Events of one video: ``counts`` per kind (micro, macro, blink), lengths (frames) per kind,
        placed at random without overlap, at least half the longest event apart and away from the
        ends; each expression's emotion drawn from ``emotions``."""
        kinds = [kind for kind, n in counts.items() for _ in range(n)]
        self.rng.shuffle(kinds)
        sizes = [int(self.rng.integers(lengths[k][0], lengths[k][1] + 1)) for k in kinds]
        gap = max(max(hi for _, hi in lengths.values()) // 2, 3)
        free = self.video_frames - sum(sizes) - gap * (len(sizes) + 1)
        if free < 0:
            raise ValueError(f"synthetic long video of {self.video_frames} frames cannot hold events of "
                             f"{sum(sizes)} frames; give more frames")
        cuts = np.sort(self.rng.integers(0, free + 1, size=len(sizes)))
        events, position = [], gap
        for i, (kind, size) in enumerate(zip(kinds, sizes)):
            start = position + int(cuts[i] - (cuts[i - 1] if i else 0))
            apex = start + int(self.rng.integers(round(0.35 * (size - 1)), round(0.65 * (size - 1)) + 1))
            if kind == "blink":
                movement, intensity, label = "blink", float(self.rng.uniform(0.9, 1.1)), ""
            else:
                label = emotions[int(self.rng.integers(len(emotions)))]
                # macro-expressions are larger movements than micro ones
                intensity = float(self.rng.uniform(1.6, 2.0) if kind == "macro" else self.rng.uniform(0.9, 1.2))
                movement = LABEL_MOVEMENT[label.lower()]
            events.append(Event(kind, start, apex, start + size - 1, movement, intensity, label))
            position = start + size + gap
        return events

    def render_video(self, subject_index: int, events: list[Event], drift: float = 1.0, grey: bool = False):
        """Frames (uint8 RGB) of one video: the subject's face with ``events``, a slow head drift of
        up to ``drift`` pixels (whole pixels: the face moves by one-pixel steps, a distractor),
        lighting flicker of 1 % and sensor noise. ``grey``: (H, W) grey frames, rendered in one
        channel (a third of the work: SAMM's frames are grey)."""
        face = self.faces[subject_index]
        phase = self.rng.uniform(0, 2 * np.pi, size=2)
        period = self.video_frames * self.rng.uniform(0.8, 1.5)
        fields, pasted = {}, {}
        noise = self.noise @ LUMA[:, None] if grey else self.noise
        for index in range(self.video_frames):
            shift = np.round(drift * np.sin(2 * np.pi * index / period + phase))
            if tuple(shift) not in pasted:  # the drift takes a few whole-pixel values: each pasted once
                frame, marks = _paste(face, face.centre + shift)
                pasted[tuple(shift)] = (frame @ LUMA[:, None] if grey else frame), marks
            neutral, landmarks = pasted[tuple(shift)]
            neutral = neutral * (1 + 0.01 * np.sin(index / 7.0))
            for number, event in enumerate(events):
                strength = event.intensity * event_profile(index, event)
                if strength > 0:
                    key = (number, tuple(shift))
                    if key not in fields:
                        fields[key] = _displacement(landmarks, event.movement, neutral.shape[:2])
                    neutral = _warp(neutral, fields[key], strength)
            neutral += noise[self.rng.integers(len(noise))]
            frame = np.clip(neutral, 0, 255).astype(np.uint8)
            yield frame[..., 0] if grey else frame

    def record_event(self, event: Event, subject_index: int, subject: str, video: str, first: int,
                     expected: str = "valid") -> None:
        """One manifest row; ``expected``: what the reader must do with the event's sheet row
        ("valid", a quirk it reports, "distractor": no row)."""
        self.manifest.append(dict(
            layout=self.layout, subject=subject, video=video, kind=event.kind, label=event.label,
            movement=event.movement, onset=event.start + first, apex=event.apex + first, offset=event.end + first,
            intensity=round(event.intensity, 3), photo=self.faces[subject_index].photo, expected=expected))


def write_long_videos(name: str, out: str | Path, subjects: int = 2, videos_per_subject: int = 2,
                      seed: int = 0, frames: int | None = None) -> Path:
    """Write a synthetic copy of long-video dataset ``name`` to ``out`` (missing, empty, or an
    earlier synthetic copy, replaced) and return ``out``. ``frames``: frames per video (default:
    the dataset writer's, a few hundred, scaled for a CPU demo)."""
    spec = long_video_spec(name)
    out = Path(out).expanduser()
    with synthetic_folder(out) as staging:
        # frames None: the dataset's writer takes its own default length
        faces_of = None
        if spec.reader.same_people is not None:  # the clip dataset's people: its synthetic subjects' faces
            from .registry import dataset_spec

            clips = dataset_spec(spec.reader.same_people).synthetic
            faces_of = (clips.stream, clips.frame_size)
        writer = LongVideoWriter(staging, name, subjects, videos_per_subject, seed, spec.synthetic.frame_size,
                                 spec.synthetic.stream, frames, spec.reader.fps, faces_of)
        spec.synthetic.write(writer)
        write_csv(staging / MANIFEST_FILE, pd.DataFrame(writer.manifest))
        write_text(staging / MARKER_FILE, (
            "SYNTHETIC long videos written by tsfmicro.data.long_videos.\n"
            "Not a real dataset: faces are stock photographs with small synthetic movements.\n"
            f"layout={name} subjects={subjects} videos_per_subject={videos_per_subject} seed={seed} "
            f"frames={writer.video_frames}\n"))
    return out
