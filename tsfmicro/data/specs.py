"""What a dataset is, in one frozen record: :class:`DatasetSpec`.

Each dataset is one module of ``tsfmicro/data/datasets/`` holding its ``SPEC``: its names, its
labels and class maps (tasks), how its official annotation is read (``reader``), where its frames
are (``frames``), how a synthetic copy is drawn (``synthetic``), its licence and how to obtain
it, its published sizes and its frame re-selection window. ``tsfmicro.data.registry`` lists the
specs and derives every list from them (DATASETS, TASKS, the synthetic layouts, the command
line's choices, the missing-folder message, the published sizes).

This module holds only the record types; it imports nothing of tsfmicro, so the dataset modules,
the synthetic writer and the readers can all use it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Union

MARKER_FILE = "TSFMICRO_SYNTHETIC.txt"  # written by the synthetic writer; makes results say SYNTHETIC
SYNTHETIC_SOURCE = "SYNTHETIC"
SHARED_TASK = "3class_megc"  # the task every dataset has, for cross-dataset protocols
MEGC2019_SOURCE = ("MEGC2019 composite 3-class grouping (See et al., FG 2019; the official "
                   "combined_3class_gt.csv)")


class RowProblem(Exception):
    """One annotation row cannot be used; the message is the reason shown in the report."""


# ----------------------------------------------------------------------------- tasks
@dataclass(frozen=True)
class Task:
    class_names: tuple[str, ...]
    label_to_class: Mapping[str, str]  # normalised annotation label -> class name
    source: str = ""  # where the grouping comes from


def identity_task(names: tuple[str, ...], source: str = "the dataset's own labels") -> Task:
    return Task(names, {name: name for name in names}, source)


def three_class(negative: tuple[str, ...], positive: tuple[str, ...], surprise: tuple[str, ...],
                extra: tuple[str, ...] = (), source: str = "") -> Task:
    """Group emotions into MEGC-style classes (negative, positive, surprise: 0, 1, 2); ``extra``
    classes keep their own name."""
    mapping = {label: "negative" for label in negative}
    mapping.update({label: "positive" for label in positive})
    mapping.update({label: "surprise" for label in surprise})
    mapping.update({label: label for label in extra})
    return Task(("negative", "positive", "surprise") + extra, mapping, source)


# ----------------------------------------------------------------------------- readers
def clip_id_is_filename(subject: str, filename: str, onset: int) -> str:
    return filename


@dataclass(frozen=True)
class Spreadsheet:
    """An official annotation spreadsheet, one row per clip (tsfmicro.data.annotations reads it)."""

    patterns: tuple[str, ...]  # file names, lower case, fnmatch; tried in order, the newest match wins
    columns: Mapping[str, str]  # subject, clip, onset, apex, offset, label -> the official header
    sheet: str | None  # the sheet to read when the file has it; else the first
    subject_id: Callable[[object], str]  # the subject cell -> the subject folder's name (RowProblem if not one)
    # (subject, filename, onset) -> the clip id; a video holding several clips needs the onset in it
    clip_id: Callable[[str, str, int], str] = clip_id_is_filename


@dataclass(frozen=True)
class LabelFolders:
    """No annotation file: ``<raw>/<subject>/micro/<label>/<clip>/`` names the label (SMIC-HS);
    onset = first frame, offset = last, apex = middle."""

    subject_pattern: str = r"s\d+"  # subject folder names, ordered by their number


@dataclass(frozen=True)
class CompositeList:
    """A composite's official list ``part,subject,filename,label`` over its parts' own readers."""

    file: str  # the list's file name, in the composite's folder
    task: str  # the composite task whose class indices the list's labels are
    ids: Callable[[str, str, str], tuple[str, str]]  # (part, subject, clip) as listed -> the part's own ids


@dataclass(frozen=True)
class LongVideoSheet:
    """A long-video annotation workbook: one row per interval (micro or macro) inside a long video
    that holds many (CAS(ME)^2, SAMM-LV; tsfmicro.data.long_videos reads it).

    Why a reader kind of its own: a row names an interval of a video, not a clip with its own
    folder, and the row's subject and video are often resolved through other sheets (CAS(ME)^2's
    naming rules), so the dataset module gives the functions that know its workbook."""

    patterns: tuple[str, ...]  # file names, lower case, fnmatch; the newest match (by name) wins
    # every sheet (header=None, as read) -> one dict per annotation row: row (1-based, as a
    # spreadsheet program shows it), sheet, subject (folder name), video (the key video_folder takes),
    # onset, apex, offset, kind (the type cell), label; a row that cannot be resolved carries
    # ``problem`` (the reason shown in the excluded report) in place of the fields it lacks; a row
    # read other than as written (a case fixed) carries ``note`` (shown in the quirks report)
    rows: Callable[[Mapping[str, object]], list[dict]]
    # the frame folder (FrameLayout.raw) -> (subject, video key, folder[, video name: default the
    # folder's]) of every video in it; a row's
    # (subject, video) is looked up among these keys (CAS(ME)^2: the 4-digit code in the folder's name)
    videos: Callable[[Path], list]
    kind: Callable[[object], Union[str, None]]  # the type cell -> "micro", "macro", or None (unknown)
    fps: int  # frames per second of the release
    # The clip dataset of the same people (SAMM-LV: SAMM; CAS(ME)^3 Part A: its ME clips are cut from
    # these videos): its LOSO runs recognise the spotted intervals, each subject by the fold model
    # that never saw them, and its synthetic writer's faces are this writer's (subject s is its
    # subject s). None: no clip dataset of these people (CAS(ME)^2): spotting only.
    same_people: Union[str, None] = None
    # the clip dataset's labels (lower case) -> the STR emotion classes of the MEGC spot-then-recognise
    # task (negative, positive, surprise, others); a label not listed is not recognised into one
    emotions: Mapping[str, str] = field(default_factory=dict)
    emotions_source: str = ""  # where the map comes from


Reader = Union[Spreadsheet, LabelFolders, CompositeList, LongVideoSheet]


# ----------------------------------------------------------------------------- frames
@dataclass(frozen=True)
class FrameLayout:
    """Where the frames are, relative to the dataset root; several candidates per release
    because copies of the datasets are unpacked differently (the first that exists is used)."""

    raw: tuple[str, ...]  # folders holding <subject>/<clip>/ frames
    precropped: tuple[str, ...] = ()  # the same for a pre-cropped release
    # Videos that hold several clips (CAS(ME)^3): raw frames in <subject>/<video>/<video_frames>/,
    # and a per-clip release in <clip_release>/<subject>_<video>_<onset>/.
    video_frames: str | None = None
    clip_release: tuple[str, ...] = ()


# ----------------------------------------------------------------------------- synthetic copies
@dataclass(frozen=True)
class SyntheticLayout:
    """A synthetic tree in the dataset's official layout, drawn by ``write(writer)`` with a
    tsfmicro.data.synthetic ``_Writer`` (faces, clips, manifest)."""

    write: Callable[[object], None]
    frame_size: tuple[int, int]  # width, height
    stream: int  # the writer's random stream ([seed, stream]): fixed per dataset, so the registry's order does not matter


@dataclass(frozen=True)
class SyntheticComposite:
    """A composite's synthetic folder: ``write(root, subjects, clips_per_subject, seed)`` writes
    its parts and its list and returns the manifest (a DataFrame)."""

    write: Callable[[Path, int, int, int], object]


# ----------------------------------------------------------------------------- the spec
@dataclass(frozen=True)
class PublishedSize:
    clips: int
    subjects: int
    note: str  # which release and class map the counts come from


@dataclass(frozen=True)
class DatasetSpec:
    """Everything tsfmicro knows about one dataset (see the module docstring)."""

    name: str  # the name in parameters, run keys and the command line
    display_name: str  # the one name shown to people: tables, messages, a real run's data source
    labels: tuple[str, ...]  # every normalised label the official annotation may carry
    tasks: Mapping[str, Task]
    reader: Reader
    obtain: str  # the licence, and how to obtain the data
    layout: str  # an example of the unpacked folder (the missing-folder message)
    frames: FrameLayout | None = None  # None: a composite (its parts have frames)
    synthetic: SyntheticLayout | SyntheticComposite | None = None
    published: Mapping[str, PublishedSize] = field(default_factory=dict)  # task -> size, for plans without the data
    # Training-time re-selection window (fraction, divisor) of the authors' code; None: they have
    # no script for this dataset, and tsfmicro.data.cache uses its own rule.
    reselect_window: tuple[float, int] | None = None
    aliases: Mapping[str, str] = field(default_factory=dict)  # label spellings -> the normalised label
    parts: tuple[str, ...] = ()  # a composite's datasets (leave-one-dataset-out holds out each)

    @property
    def root_variable(self) -> str:
        """The environment variable that can hold the dataset's folder, e.g. TSFMICRO_CASME2_ROOT."""
        return f"TSFMICRO_{self.name.upper()}_ROOT"

    def normalise_label(self, label: object) -> str:
        """Trimmed, lower case, aliases applied."""
        text = str(label).strip().lower()
        return self.aliases.get(text, text)

