"""``tsfmicro explore VIDEO --run RUN_DIR``: a trained run on a user's own recording, end to end.

Steps (each the package's own module; this one only composes them and writes the files):

1. Frames: a video file (OpenCV) or a folder of frames (numbered by the trailing integer of each
   file name, tsfmicro.data.frames), decoded once, in order, with a progress bar on stderr. A
   video file's frames are numbered from 1; a folder's keep their file numbers.
2. The face: MTCNN on the first frame (else on up to 16 frames spread over the video; none: the
   error "no face found"), then tsfmicro.spotting.face_crops: the box follows the head.
3. Spotted intervals: tsfmicro.spotting.spot_crops with the parameters of a long-video dataset
   (:func:`spotter_parameters`: the rule for which one, and how a frame rate scales it).
4. Each interval's class: its onset frame and its apex (the spotter's peak, the automatic apex)
   cropped as the run's preprocessing cache crops a clip (MTCNN box on the onset grown by the
   cache's margin, the same box for the apex, the run's crop size), into EVERY fold model of the
   run (first seed, protocol fixed: the kept final weights): the probabilities are the mean of
   the folds' softmax outputs, since a user's recording belongs to nobody's held-out subject.
5. Grad-CAM of each interval for its predicted class (tsfmicro.gradcam): the temporal branch's
   first stage (its finer map; the branch's output where the network has no stages), the mean of
   the fold models' maps, drawn over the apex crop.

Files written in ``--out`` (default ``explore_<video name>`` beside the current folder):
``submission.csv`` (the MEGC columns subject, video, onset, offset, emotion; subject is "user";
emotion: the STR class, negative/positive/surprise/others, when the run's dataset has a long-video
release of the same people whose spec maps its classes (SAMM, CAS(ME)^3), else the run's class),
``intervals.csv`` (the same intervals with apex, kind, spotting strength, ``predicted_class`` (the
run's class) and one ``prob_<class>`` column per class of the run), ``timeline.png`` and ``summary.html`` (one self-contained page).

No interval found is not an error of the user: the files are still written (an empty table, the
timeline with the scores under their thresholds, a page that says so), the command says so on
stderr and exits 0. The user's mistakes (a missing or unreadable file, a folder without frames, a
run folder that is not a finished run, no face in the video) exit 2 with one line naming the file.
"""
from __future__ import annotations

import argparse
import base64
import html
import io
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from tsfmicro.data.cache import CROP_BOX_COLUMNS
from tsfmicro.data.faces import FaceDetector, crop
from tsfmicro.data.frames import IMAGE_SUFFIXES, index_frames, read_frame
from tsfmicro.engine.evaluate import interval_probabilities
from tsfmicro.results import Run, load_run
from tsfmicro.spotting import PARAMETERS, SpotterParams, VideoSpotting, face_crops, spot_crops

SUBMISSION_COLUMNS = ["subject", "video", "onset", "offset", "emotion"]  # MEGC2020/STR submission
SUBJECT = "user"  # the submission's subject column: a user's recording has no dataset subject id
FACE_SEARCH_FRAMES = 16  # frames spread over the video tried when the first shows no face

# The long-video dataset whose spotting parameters fit a run's clip dataset: the one of the same
# people (its spec's ``same_people``: SAMM-LV's subjects are SAMM's, CAS(ME)^3 Part A's clips are cut
# from its long videos). Anything else (CASME II included, the CASME group's camera): CAS(ME)^2
# (30 fps, the rate of most users' cameras).
DEFAULT_SPOTTER = "casme_sq"


def long_video_of(run_dataset: str | None):
    """The long-video spec of the same people as ``run_dataset``, or None (from LONG_VIDEO_SPECS)."""
    from tsfmicro.data.datasets import LONG_VIDEO_SPECS

    return next((spec for spec in LONG_VIDEO_SPECS if spec.reader.same_people == run_dataset), None)


# ----------------------------------------------------------------------------- frames
class VideoFrames:
    """A recording's frames as a sequence (index 0 = the first frame), decoded on demand in order,
    so a long video is never held in memory whole (face_crops reads it front to back once).
    ``first``: the first frame's number (1 for a video file); ``fps``: the file's frame rate
    (None for a folder of frames); a frame that cannot be decoded reads as None (face_crops
    repeats the previous one and lists it as missing)."""

    def __init__(self, path: Path, count: int, first: int, fps: float | None, progress: bool = False):
        self.path, self.count, self.first, self.fps = path, count, first, fps
        self.progress = progress
        self._bar = None
        self._next = 0  # the index the video decoder gives next
        self._capture = None
        self._last: tuple[int, np.ndarray | None] | None = None
        self._numbers: dict[int, Path] | None = None

    @property
    def name(self) -> str:
        return self.path.stem if self.path.is_file() else self.path.name

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> np.ndarray | None:
        if not 0 <= index < self.count:
            raise IndexError(index)
        if self._last is not None and self._last[0] == index:
            return self._last[1]
        frame = self._folder_frame(index) if self._numbers is not None else self._video_frame(index)
        self._last = (index, frame)
        if self._bar is not None:
            self._bar.update(max(0, index + 1 - self._bar.n))
            if index + 1 >= self.count:
                self._bar.close()
                self._bar = None
        return frame

    def start_progress(self, description: str) -> None:
        from tqdm.auto import tqdm

        if self.progress:
            self._bar = tqdm(total=self.count, desc=description, unit="frame", file=sys.stderr, leave=False)

    def _folder_frame(self, index: int) -> np.ndarray | None:
        path = self._numbers.get(self.first + index)
        if path is None:
            return None
        try:
            return read_frame(path)
        except (FileNotFoundError, ValueError):
            return None

    def _video_frame(self, index: int) -> np.ndarray | None:
        import cv2

        if self._capture is None or index < self._next:  # back to the start: decoding is sequential
            self.close()
            self._capture = cv2.VideoCapture(str(self.path))
            self._next = 0
        frame = None
        while self._next <= index:
            ok, bgr = self._capture.read()
            self._next += 1
            frame = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if ok else None
        return frame

    def frames_at(self, indices) -> dict[int, np.ndarray | None]:
        """The frames at ``indices`` (0-based), read in order (one pass through a video file)."""
        return {index: self[index] for index in sorted(set(int(i) for i in indices))}

    def close(self) -> None:
        if self._bar is not None:  # a run stopped by an error leaves no bar half drawn
            self._bar.close()
            self._bar = None
        if self._capture is not None:
            self._capture.release()
            self._capture = None


def open_video(path: str | Path, progress: bool = False) -> VideoFrames:
    """A video file (anything OpenCV decodes) or a folder of frames; FileNotFoundError or
    ValueError naming ``path`` when it is missing, not a video, or a folder without frames."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"video not found: {path}")
    if path.is_dir():
        numbers = index_frames(path)
        if not numbers:
            raise ValueError(f"{path}: a folder without frames (images {', '.join(IMAGE_SUFFIXES)} "
                             "whose names end in their frame number, e.g. img001.jpg)")
        frames = VideoFrames(path, max(numbers) - min(numbers) + 1, min(numbers), None, progress)
        frames._numbers = numbers
        return frames
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
        fps = float(capture.get(cv2.CAP_PROP_FPS)) if capture.isOpened() else 0.0
        readable = capture.isOpened() and capture.read()[0]
    finally:
        capture.release()
    if not readable or count <= 0:
        raise ValueError(f"{path}: not a video OpenCV can read (give a video file, e.g. .mp4 or .avi, "
                         "or a folder of frames)")
    return VideoFrames(path, count, 1, fps if fps > 0 else None, progress)


# ----------------------------------------------------------------------------- spotting parameters
def spotter_parameters(run_dataset: str | None, fps: float | None = None,
                       dataset_params: str | None = None) -> tuple[SpotterParams, str]:
    """The spotter's parameters for a recording, and the rule that chose them, in words.

    ``dataset_params`` names a long-video dataset (tsfmicro.spotting.PARAMETERS): its parameters
    as they are. Else the long-video dataset of the run's dataset (:func:`long_video_of`,
    default CAS(ME)^2), and, when the recording's frame rate is known (``fps``: ``--fps`` or the
    video file's own), its half-widths h and its micro length limit scaled by fps / the
    dataset's frame rate (rounded, h at least 1): the spotter's windows are lengths of time."""
    from tsfmicro.data.long_videos import long_video_spec

    if dataset_params is not None:
        if dataset_params not in PARAMETERS:
            raise ValueError(f"--dataset-params {dataset_params!r}: choose one of {', '.join(PARAMETERS)}")
        return PARAMETERS[dataset_params], f"{dataset_params}'s parameters (--dataset-params)"
    same = long_video_of(run_dataset)
    name = same.name if same is not None else DEFAULT_SPOTTER
    params = PARAMETERS[name]
    native = long_video_spec(name).reader.fps
    if fps is None or round(float(fps), 3) == native:
        rate = "" if fps is None else f" (the recording is at {float(fps):g} fps, as the dataset)"
        return params, f"{name}'s parameters for a {run_dataset} run{rate}"
    if fps <= 0:
        raise ValueError(f"--fps {fps:g}: give the recording's frame rate in frames per second, e.g. 30")
    factor = float(fps) / native
    scales = tuple(replace(scale, half=max(1, round(scale.half * factor)),
                           source=f"{scale.source}; scaled x {factor:.3g} ({fps:g} / {native} fps)")
                   for scale in params.scales)
    scaled = replace(params, scales=scales, micro_longest=max(1, round(params.micro_longest * factor)))
    return scaled, (f"{name}'s parameters for a {run_dataset} run, scaled to {float(fps):g} fps "
                    f"(h and the micro limit x {factor:.3g})")


# ----------------------------------------------------------------------------- the run's models
def _fold_models(run: Run) -> list:
    """Every fold model of the run's first seed (its kept final weights), on the CPU; a run without
    kept weights or of a network that does not read onset and apex frames is named here, before
    the video is read."""
    from tsfmicro.engine.evaluate import run_subjects

    models = [run.fold_model(subject) for subject in run_subjects(run)]
    if not models:
        raise ValueError(f"run {run.path} has no predictions to find its folds from")
    if tuple(getattr(models[0], "inputs", ("onset", "apex"))) != ("onset", "apex"):
        raise ValueError(f"run {run.path}: its network reads {', '.join(models[0].inputs)}, not onset and apex "
                         "frames; explore a TSFmicro run")
    return models


def _ensemble_cams(models, onset: np.ndarray, apex: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Grad-CAM of the temporal branch (its first stage where it has one) of each fold model for
    the predicted classes, averaged over the folds: (N, S, S) in [0, 1]."""
    import torch

    from tsfmicro import gradcam
    from tsfmicro.engine.augment import to_model_input

    total = None
    for model in models:
        size = model.config.image_size
        branch = gradcam.TEMPORAL_STAGE1 if gradcam._target_layer(model, gradcam.TEMPORAL_STAGE1) is not None \
            else "temporal"
        maps = gradcam.branch_cams(model, to_model_input(torch.from_numpy(onset.copy()), size),
                                   to_model_input(torch.from_numpy(apex.copy()), size),
                                   target_classes=classes, branches=(branch,))[branch]
        total = maps if total is None else total + maps
    return total / len(models)


# ----------------------------------------------------------------------------- the whole step
@dataclass
class Exploration:
    """One recording explored: its spotting, the intervals with their classes, and what the files
    show. ``intervals``: onset, apex, offset, kind, score, emotion, prob_<class> (frame numbers of
    the recording); ``onset_crops``/``apex_crops``: the crops the models saw (uint8); ``cams``: the
    ensemble's Grad-CAM per interval, at the model's input size."""

    video: Path
    run: Run
    spotting: VideoSpotting
    rule: str
    intervals: pd.DataFrame
    crop_method: str
    missing: list[int] = field(default_factory=list)
    onset_crops: np.ndarray | None = None
    apex_crops: np.ndarray | None = None
    cams: np.ndarray | None = None
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def submission(self) -> pd.DataFrame:
        table = self.intervals.assign(subject=SUBJECT, video=_video_name(self.video))
        return table[SUBMISSION_COLUMNS].reset_index(drop=True)


def _emotions(intervals: pd.DataFrame, run: Run) -> np.ndarray:
    """The submission's emotion of each interval: the STR class (negative, positive, surprise,
    others) when the run's dataset has a long-video release of the same people whose spec maps its
    classes (SAMM, CAS(ME)^3: the probabilities of a class group summed,
    tsfmicro.engine.recognise.with_str_emotions), else the run's own class."""
    from tsfmicro.engine.recognise import with_str_emotions

    same = long_video_of(run.config.get("dataset"))
    emotions = dict(same.reader.emotions) if same is not None else {}
    if not emotions or any(name.lower() not in emotions for name in run.class_names):
        return intervals["predicted_class"].to_numpy()
    return with_str_emotions(intervals, run.class_names, emotions)["pred_emotion"].to_numpy()


def _video_name(path: Path) -> str:
    return path.stem if path.is_file() else path.name


def load_finished_run(path: str | Path) -> Run:
    """The run at ``path``, or a one-line error: missing, or not a finished run folder."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"run folder not found: {path}")
    try:
        return load_run(path)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{error}: give a run folder that `tsfmicro train` or `tsfmicro run` finished") \
            from None


def _first_face(frames: VideoFrames, detector) -> tuple[tuple, int]:
    """The largest face box, from the first frame where MTCNN finds one among the first and up to
    FACE_SEARCH_FRAMES frames spread over the video; ValueError naming the video when none."""
    first = frames[0]
    found = detector.largest_faces([first])[0] if first is not None else None
    if found:
        return found, 0
    spread = np.unique(np.linspace(0, len(frames) - 1, FACE_SEARCH_FRAMES).round().astype(int))
    tried = 1
    for index, frame in frames.frames_at(spread).items():
        if frame is None:
            continue
        tried += 1
        found = detector.largest_faces([frame])[0]
        if found:
            return found, index
    raise ValueError(f"{frames.path}: no face found (MTCNN on {tried} frames spread over the video)")


class _KnownFace:
    """A detector for face_crops that answers with a box already found (face_crops asks its
    detector about the video's first frame only)."""

    def __init__(self, box):
        self.box = box

    def largest_faces(self, frames):
        return [self.box for _ in frames]


def explore(video: str | Path, run: str | Path | Run, out: str | Path | None = None, *,
            dataset_params: str | None = None, fps: float | None = None, progress: bool = True,
            detector: FaceDetector | None = None) -> Exploration:
    """The module docstring's steps on ``video`` with ``run``; the files are written when ``out``
    is given (:func:`write_outputs`)."""
    run = run if isinstance(run, Run) else load_finished_run(run)
    models = _fold_models(run)  # a run without kept weights is named before the video is read
    frames = open_video(video, progress=progress)
    try:
        params, rule = spotter_parameters(run.config.get("dataset"), fps if fps is not None else frames.fps,
                                          dataset_params)
        detector = detector or FaceDetector()
        box, _ = _first_face(frames, detector)
        frames.start_progress(f"reading {frames.name}")
        crops = face_crops(frames, params.side, _KnownFace(box))
        crops.numbers = crops.numbers + (frames.first - 1)  # face_crops numbers a sequence from 1
        crops.missing = [number + frames.first - 1 for number in crops.missing]
        spotting = spot_crops(crops, params)
        found = spotting.intervals
        intervals = pd.DataFrame({"onset": found["onset"].astype(int), "apex": found["peak"].astype(int),
                                  "offset": found["offset"].astype(int), "kind": found["kind"],
                                  "score": found["score"].astype(float)})
        result = Exploration(Path(video), run, spotting, rule, intervals, crops.method, list(crops.missing))
        names = run.class_names
        if len(intervals):
            wanted = frames.frames_at(list(intervals["onset"] - frames.first) + list(intervals["apex"] - frames.first))
            pairs = [(wanted[o - frames.first], wanted[a - frames.first])
                     for o, a in zip(intervals["onset"], intervals["apex"])]
            pairs = [(o if o is not None else a, a if a is not None else o) for o, a in pairs]
            recognised = interval_probabilities(run, pairs)  # folds=None: the ensemble of every fold model
            probabilities = recognised[[f"prob_{name}" for name in names]].to_numpy()
            predicted = recognised["pred"].to_numpy(dtype=int)
            result.intervals["predicted_class"] = recognised["pred_label"].to_numpy()
            for k, name in enumerate(names):
                result.intervals[f"prob_{name}"] = probabilities[:, k]
            result.intervals["emotion"] = _emotions(result.intervals, run)
            # the crops the models saw, cut again with the boxes the recognition used, for the page
            size = int(run.config["resolved"]["crop_size"])
            boxes = recognised[list(CROP_BOX_COLUMNS)].to_numpy()
            onset = np.stack([crop(o, tuple(box), size) for (o, _), box in zip(pairs, boxes)])
            apex = np.stack([crop(a, tuple(box), size) for (_, a), box in zip(pairs, boxes)])
            result.intervals["crop_method"] = recognised["crop_method"].to_numpy()
            result.onset_crops, result.apex_crops = onset, apex
            result.cams = _ensemble_cams(models, onset, apex, predicted)
        else:
            result.intervals["predicted_class"] = pd.Series(dtype=str)
            result.intervals["emotion"] = pd.Series(dtype=str)
            result.intervals["crop_method"] = pd.Series(dtype=str)
            for name in names:
                result.intervals[f"prob_{name}"] = pd.Series(dtype=float)
    finally:
        frames.close()
    if out is not None:
        write_outputs(result, out)
    return result


# ----------------------------------------------------------------------------- files
def timeline_figure(result: Exploration):
    """The spotting score of each scale against its threshold over the recording, the spotted
    intervals shaded with their predicted class."""
    import matplotlib.pyplot as plt

    spotting = result.spotting
    fig, ax = plt.subplots(figsize=(11, 3.4), constrained_layout=True)
    colours = {"micro": "tab:blue", "macro": "tab:orange"}
    for kind, scores in spotting.scores.items():
        colour = colours.get(kind, "tab:grey")
        ax.plot(spotting.numbers, scores, color=colour, lw=1, label=f"{kind} score")
        if np.isfinite(spotting.thresholds[kind]):
            ax.axhline(spotting.thresholds[kind], color=colour, ls="--", lw=1, label=f"{kind} threshold")
    top = max([np.nanmax(s) for s in spotting.scores.values() if np.isfinite(s).any()] or [1.0])
    for row in result.intervals.itertuples():
        ax.axvspan(row.onset, row.offset, color=colours.get(row.kind, "grey"), alpha=0.2)
        ax.text((row.onset + row.offset) / 2, top * 1.02, str(row.emotion), ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, top * 1.15)
    ax.set_xlim(spotting.numbers[0], spotting.numbers[-1])
    ax.set_xlabel("frame")
    ax.set_ylabel("block difference")
    found = f"{len(result.intervals)} interval(s)" if len(result.intervals) else "no interval found"
    ax.set_title(f"{_video_name(result.video)}: {found}", fontsize=10)
    ax.legend(loc="upper right", fontsize=7, ncol=2)
    return fig


def intervals_figure(result: Exploration):
    """Per spotted interval (one row each): the onset crop, the apex crop, and the ensemble's
    Grad-CAM over the apex; None when no interval was found."""
    import matplotlib.pyplot as plt

    if not len(result.intervals):
        return None
    rows = len(result.intervals)
    fig, axes = plt.subplots(rows, 3, figsize=(6.6, 2.3 * rows), squeeze=False, constrained_layout=True)
    for i, row in enumerate(result.intervals.itertuples()):
        cam = np.asarray(Image.open(io.BytesIO(_image_png(result.apex_crops[i], result.cams[i]))))
        for ax, image, title in zip(axes[i], (result.onset_crops[i], result.apex_crops[i], cam),
                                    (f"onset {row.onset}", f"apex {row.apex}", f"Grad-CAM: {row.predicted_class}")):
            ax.imshow(image)
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    return fig


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def _image_png(image: np.ndarray, cam: np.ndarray | None = None, size: int = 160) -> bytes:
    """A uint8 crop as PNG, with a Grad-CAM map blended over it (jet colours) when given."""
    picture = Image.fromarray(image).resize((size, size), Image.BILINEAR)
    if cam is not None:
        from matplotlib import colormaps

        heat = (colormaps["jet"](np.clip(cam, 0, 1))[..., :3] * 255).astype(np.uint8)
        heat = Image.fromarray(heat).resize((size, size), Image.BILINEAR)
        picture = Image.blend(picture.convert("RGB"), heat, 0.45)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _img(data: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def summary_html(result: Exploration, timeline_png: bytes) -> str:
    """One self-contained page: provenance, the timeline, the intervals table, and per interval its
    onset and apex crops and the Grad-CAM over the apex (images embedded as base64)."""
    run = result.run
    commit = run.provenance.get("git", {}).get("commit", "unknown")
    source = run.provenance.get("data", {}).get("source", "")
    rows = [("video", str(result.video)), ("run", str(run.path)), ("run key", str(run.config.get("key", ""))),
            ("dataset, task", f"{run.config.get('dataset')} {run.config.get('task')}" + (f" ({source})" if source else "")),
            ("trained at commit", commit), ("classes", ", ".join(run.class_names)),
            ("spotter", result.rule), ("face crop", result.crop_method),
            ("frames", f"{result.spotting.numbers[0]}..{result.spotting.numbers[-1]}"
                       + (f", {len(result.missing)} unreadable (repeated from the previous)" if result.missing else "")),
            ("recognition", "the mean of every fold model's probabilities (first seed, last epoch)")]
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'>",
             f"<title>tsfmicro explore: {html.escape(_video_name(result.video))}</title>",
             "<style>body{font-family:sans-serif;margin:1.5em;max-width:70em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%}figure{display:inline-block;margin:4px}"
             "figcaption{font-size:80%;text-align:center}img{max-width:100%;height:auto}</style></head><body>",
             f"<h1>tsfmicro explore: {html.escape(_video_name(result.video))}</h1>"]
    if source == "SYNTHETIC":
        parts.append("<p><b>The run was trained on SYNTHETIC data: its classes say nothing about real faces.</b></p>")
    parts.append("<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
                 + "</table>")
    parts.append("<h2>Timeline</h2>" + _img(timeline_png, "timeline"))
    if not len(result.intervals):
        parts.append("<h2>Intervals</h2><p><b>No interval found</b>: no score rose above its threshold.</p>")
    else:
        parts.append("<h2>Intervals</h2>" + result.intervals.to_html(index=False, float_format=lambda v: f"{v:.3f}"))
        parts.append("<h2>Each interval</h2><p>Onset and apex crops as the models saw them; Grad-CAM of the "
                     "temporal branch for the predicted class (mean over the fold models) over the apex.</p>")
        for i, row in enumerate(result.intervals.itertuples()):
            name = f"frames {row.onset}-{row.offset} (apex {row.apex}): {row.emotion}"
            parts.append(f"<h3>{html.escape(name)}</h3>")
            for label, image, cam in (("onset", result.onset_crops[i], None), ("apex", result.apex_crops[i], None),
                                      ("Grad-CAM", result.apex_crops[i], result.cams[i])):
                parts.append(f"<figure>{_img(_image_png(image, cam), label)}<figcaption>{label}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_outputs(result: Exploration, out: str | Path) -> dict[str, Path]:
    """submission.csv, intervals.csv, timeline.png and summary.html in ``out``."""
    import matplotlib.pyplot as plt

    from tsfmicro import _io

    out = Path(out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    fig = timeline_figure(result)
    timeline = _png(fig)
    plt.close(fig)
    files = {"submission": out / "submission.csv", "intervals": out / "intervals.csv",
             "timeline": out / "timeline.png", "summary": out / "summary.html"}
    _io.write_csv(files["submission"], result.submission)
    _io.write_csv(files["intervals"], result.intervals)
    with _io.atomic_path(files["timeline"]) as temporary:
        temporary.write_bytes(timeline)
    _io.write_text(files["summary"], summary_html(result, timeline))
    result.files = files
    return files


# ----------------------------------------------------------------------------- command
def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "explore",
        help="spot and recognise micro-expressions in your own recording with a trained run",
        description="Read a video file or a folder of frames, follow the face (MTCNN), spot intervals "
        "(training-free MDMD-like spotter), give each a class with the mean probabilities of the run's fold "
        "models and a Grad-CAM, and write submission.csv (subject, video, onset, offset, emotion), intervals.csv "
        "(the same with apex, kind and one prob_<class> column per class), timeline.png and summary.html. "
        "No interval found: the files are still written, and the command says so (exit 0).",
    )
    parser.add_argument("video", help="a video file (anything OpenCV reads, e.g. .mp4) or a folder of frames "
                        "numbered in their file names (img001.jpg, ...)")
    parser.add_argument("--run", required=True, metavar="RUN_DIR",
                        help="a finished run folder (tsfmicro train / tsfmicro run): its fold models recognise")
    parser.add_argument("--out", metavar="DIR", help="output folder (default: explore_<video name>)")
    parser.add_argument("--dataset-params", metavar="NAME", choices=sorted(PARAMETERS),
                        help="spot with this long-video dataset's parameters as they are "
                        f"({', '.join(PARAMETERS)}); default: the run's dataset's, scaled to the frame rate")
    parser.add_argument("--fps", type=float, metavar="N",
                        help="the recording's frame rate (default: the video file's; a folder of frames: the "
                        "dataset's own)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run_explore)


def run_explore(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else Path(f"explore_{_video_name(Path(args.video))}")
    result = explore(args.video, args.run, out, dataset_params=args.dataset_params, fps=args.fps,
                     progress=not args.no_progress)
    print(f"spotter: {result.rule}")
    if len(result.intervals):
        print(result.intervals.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    else:
        print(f"tsfmicro explore: no interval found in {args.video} (the files say so)", file=sys.stderr)
    for path in result.files.values():
        print(f"wrote {path}")
    return 0
