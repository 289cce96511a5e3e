"""Readers for the official annotation files, turning them into one sample table per task.

Two steps:

1. ``load_clips`` reads a dataset's official files and checks every row (frame numbers,
   apex inside onset..offset, known label, no duplicate clip, frames on disk). It keeps
   every valid clip whatever its label; this is what the face-crop cache holds.
2. ``load_samples`` selects one task's classes from those clips.

Nothing is dropped silently: every annotation row left out gets a line in ``excluded``
(file, row as a person sees it in the spreadsheet, reason). ``strict=True`` raises
ValueError on the first malformed row instead; rows whose label is simply outside the task
(CASME II fear in the 5-class task) are a choice, not an error, and never raise.

The dataset owners' published errata (``tsfmicro.data.errata``, CAS(ME)^3) are applied while
reading: a value the owners correct is corrected and listed in ``corrections`` (file, row,
reason); a clip they would remove is marked in the ``erratum`` column, and left out (with a
line in ``excluded``) only with ``errata="owners"``; the default, ``"keep"``, keeps it, as
the authors' code does. Every table also has ``apex_is_onset``: True where the apex frame is
the onset frame, so the apex - onset difference the temporal branch sees is all zero.

``root`` is the folder the dataset was unpacked into (the folder holding the annotation
file and the frame folders). For ``megc2019`` it is a mapping
``{"casme2": dir, "samm": dir, "smic": dir, "list": path/to/combined_3class_gt.csv}`` or a
folder holding ``casme2/``, ``samm/``, ``smic/`` and ``combined_3class_gt.csv``.
"""
from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Union

import pandas as pd

from .frames import child_case_insensitive, find_dir, index_frames
from .errata import ERRATA_DATASET, ERRATA_FILE, apply_choice, check_choice, clip_errata, damaged_note, erratum_text
from .registry import MARKER_FILE, SYNTHETIC_SOURCE, dataset_info, normalise_label, task_info
from .specs import CompositeList, DatasetSpec, LabelFolders, RowProblem, Spreadsheet
from .types import REPORT_COLUMNS, SampleTable, empty_report

Root = Union[str, os.PathLike, Mapping[str, Union[str, os.PathLike]]]

SAMPLE_COLUMNS = [
    "dataset", "subject", "clip_id", "onset_frame", "apex_frame", "offset_frame",
    "onset_path", "apex_path", "label", "class_index", "apex_rule",
    "precropped_onset_path", "precropped_apex_path", "file", "row", "erratum", "apex_is_onset",
]
EXCLUDED_COLUMNS = REPORT_COLUMNS  # also the columns of the corrections report
APEX_ANNOTATED = "annotated"
APEX_MIDDLE = "middle of onset..offset (apex not annotated)"

# Each dataset's reader facts (file names, official column names compared without case and
# spaces, sheet, subject ids, frame folders) are in its spec (tsfmicro/data/datasets/).
HEADER_SEARCH_ROWS = 40  # SAMM's preamble is 13 rows; look a little further for other releases

@dataclass
class ClipTable:
    """Every valid clip of a dataset (any label) plus the rows left out while reading."""

    dataset: str
    clips: pd.DataFrame  # SAMPLE_COLUMNS without class_index
    excluded: pd.DataFrame
    input_files: list[Path]  # annotation files and the errata file (hashed into the cache key)
    source: str
    precropped_available: bool = False
    corrections: pd.DataFrame = field(default_factory=empty_report)  # values corrected while reading


# ----------------------------------------------------------------------------- public API


def load_samples(dataset: str, root: Root, task: str, strict: bool = False, errata: str = "keep") -> SampleTable:
    """One task's sample table read from a dataset's official files (see module docstring).

    ``errata``: ``"keep"`` (default) keeps the clips the dataset's owners would remove, marked
    in the ``erratum`` column; ``"owners"`` leaves them out (see ``tsfmicro.data.errata``).
    """
    check_choice(errata)
    clips = load_clips(dataset, root, strict=strict)
    kept, left_by_errata = apply_choice(clips.clips, errata, EXCLUDED_COLUMNS)
    samples, left_out = select_task(kept, dataset, task)
    excluded = pd.concat([clips.excluded, left_by_errata, left_out], ignore_index=True)
    return SampleTable(dataset, task, samples, excluded, list(task_info(dataset, task).class_names), clips.source,
                       corrections=clips.corrections)


def load_clips(dataset: str, root: Root, strict: bool = False) -> ClipTable:
    """Every valid clip of ``dataset`` with its frames located on disk, and the excluded rows."""
    spec = dataset_info(dataset)  # raises KeyError for an unknown name
    if isinstance(spec.reader, CompositeList):
        return _load_composite(spec, root, strict)
    root = _as_dir(root, dataset)
    if isinstance(spec.reader, LabelFolders):
        return _load_label_folders(spec, root, strict)
    return _load_spreadsheet_dataset(spec, root, strict)


def select_task(clips: pd.DataFrame, dataset: str, task: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep the clips whose label belongs to ``task``; report the others."""
    spec = task_info(dataset, task)
    keys = clips["label"].map(lambda label: normalise_label(dataset, label))
    classes = keys.map(spec.label_to_class)
    inside = classes.notna()
    samples = clips[inside].copy()
    samples["class_index"] = classes[inside].map(spec.class_names.index).astype(int)
    samples = samples[SAMPLE_COLUMNS + [c for c in samples.columns if c not in SAMPLE_COLUMNS]]
    outside = clips[~inside]
    left_out = pd.DataFrame({
        "dataset": outside["dataset"],
        "file": outside["file"],
        "row": outside["row"],
        "subject": outside["subject"],
        "clip_id": outside["clip_id"],
        "reason": [f"label {label!r} is not in {dataset} {task}" for label in outside["label"]],
    }, columns=EXCLUDED_COLUMNS)
    return samples.reset_index(drop=True), left_out.reset_index(drop=True)


def is_synthetic_root(root: Path) -> bool:
    return (Path(root) / MARKER_FILE).is_file()


# ----------------------------------------------------------------------------- spreadsheets


def find_annotation_file(dataset: str, root: Path) -> Path:
    """The official annotation file in ``root``; with several releases the newest wins."""
    patterns = _spreadsheet(dataset).patterns
    for pattern in patterns:
        found = _matching_files(root, pattern)
        if found:
            return max(found, key=lambda path: path.name)  # dated names: the latest sorts last
    display = dataset_info(dataset).display_name
    below = [path for folder in _subfolders(root) for pattern in patterns for path in _matching_files(folder, pattern)]
    hint = f"; {below[0].parent} has one: pass that folder as the root" if below else ""
    raise FileNotFoundError(
        f"{root} is not a {display} root: no annotation file matching {' or '.join(patterns)} in it{hint}"
    )


def _matching_files(folder: Path, pattern: str) -> list[Path]:
    return [path for path in folder.iterdir() if path.is_file() and fnmatch.fnmatch(path.name.lower(), pattern)]


def read_sheet(dataset: str, path: Path) -> pd.DataFrame:
    """The annotation sheet with canonical columns (subject, clip, onset, apex, offset, label,
    action_units) plus ``row``, the 1-based row number a spreadsheet program shows."""
    try:
        book = pd.ExcelFile(path)
    except Exception as error:  # openpyxl/xlrd raise many types for a damaged file
        raise ValueError(f"{path}: cannot read as a spreadsheet ({error})") from error
    with book:
        sheet = _spreadsheet(dataset).sheet
        sheet = sheet if sheet in book.sheet_names else book.sheet_names[0]
        # header=None so that every sheet row is kept and row numbers stay exact
        cells = pd.read_excel(book, sheet_name=sheet, header=None, dtype=object)
    header_index = _find_header_row(cells, path, sheet)
    header = [_column_key(cell) for cell in cells.iloc[header_index]]
    wanted = _spreadsheet(dataset).columns
    positions = {}
    for canonical, official in wanted.items():
        key = _column_key(official)
        if key not in header:
            found = ", ".join(str(cell) for cell in cells.iloc[header_index] if pd.notna(cell))
            raise ValueError(
                f"{path}, sheet {sheet!r}, row {header_index + 1}: missing column {official!r} "
                f"(found: {found}); is this the {dataset_info(dataset).display_name} annotation file?"
            )
        positions[canonical] = header.index(key)
    au_keys = [i for i, key in enumerate(header) if key in ("actionunits", "au")]
    body = cells.iloc[header_index + 1:]
    table = pd.DataFrame({name: body.iloc[:, position].to_numpy() for name, position in positions.items()})
    table["action_units"] = body.iloc[:, au_keys[0]].to_numpy() if au_keys else None
    table["row"] = [index + 1 for index in body.index]
    # Trailing blank lines are not annotation rows.
    blank = table[list(wanted)].isna().all(axis=1)
    return table[~blank].reset_index(drop=True)


def _find_header_row(cells: pd.DataFrame, path: Path, sheet: str) -> int:
    """SAMM has a preamble of varying length: find the header by its 'Subject' cell."""
    for index in range(min(HEADER_SEARCH_ROWS, len(cells))):
        first = next((cell for cell in cells.iloc[index] if pd.notna(cell) and str(cell).strip()), None)
        if first is not None and str(first).strip().lower() == "subject":
            return index
    raise ValueError(
        f"{path}, sheet {sheet!r}: no header row starting with 'Subject' in the first "
        f"{HEADER_SEARCH_ROWS} rows; is this an official annotation file?"
    )


def _column_key(cell: object) -> str:
    return re.sub(r"\s+", "", str(cell)).lower() if pd.notna(cell) else ""


def _spreadsheet(dataset: str) -> Spreadsheet:
    reader = dataset_info(dataset).reader
    if not isinstance(reader, Spreadsheet):
        raise ValueError(f"{dataset} has no annotation spreadsheet")
    return reader


def _load_spreadsheet_dataset(spec: DatasetSpec, root: Path, strict: bool) -> ClipTable:
    dataset = spec.name
    annotation = find_annotation_file(dataset, root)
    rows = read_sheet(dataset, annotation)
    locator = _FrameLocator(spec, root)
    subject_id, clip_id_of = spec.reader.subject_id, spec.reader.clip_id
    checker = _RowChecker(dataset, annotation, root, strict)
    for record in rows.to_dict("records"):
        with checker.row(record["row"]) as check:
            subject = subject_id(record["subject"])
            check.subject = subject
            name = _text(record["clip"], "filename")
            annotated_onset = _frame(record["onset"], "onset")
            check.clip_id = clip_id_of(subject, name, annotated_onset)
            offset = _frame(record["offset"], "offset")
            apex, apex_rule = _apex(record["apex"], annotated_onset, offset)
            label = _known_label(dataset, record["label"])
            onset, apex, correction = _owners_fix(dataset, subject, name, annotated_onset, apex)
            clip_id = check.clip_id = clip_id_of(subject, name, onset)
            if correction:
                check.correct(correction)
            check.claim_clip(subject, clip_id)
            needed = {"onset": onset, "apex": apex}
            errata = clip_errata(dataset, subject, name, annotated_onset, needed)
            try:
                paths = locator.locate(subject, name, onset, apex, annotated_onset)
            except RowProblem as problem:
                note = damaged_note(errata, needed)
                raise RowProblem(f"{problem}; {note}" if note else str(problem)) from None
            check.accept(dict(
                subject=subject, clip_id=clip_id, onset_frame=onset, apex_frame=apex, offset_frame=offset,
                label=str(record["label"]).strip(), apex_rule=apex_rule, action_units=_au_text(record["action_units"]),
                erratum=erratum_text(errata, needed), **paths,
            ))
    errata_files = [ERRATA_FILE] if dataset == ERRATA_DATASET else []
    return checker.result([annotation, *errata_files], locator.has_precropped, {dataset: root})


def _owners_fix(dataset: str, subject: str, name: str, onset: int, apex: int) -> tuple[int, int, str]:
    """(onset, apex, reason) after the owners' published correction when one concerns this row
    (spNO.216 e: onset and apex written 0, frames from 1.jpg: +1 to both); reason '' if none."""
    for erratum in clip_errata(dataset, subject, name, onset, {}):
        if erratum.kind == "onset_apex_zero" and onset == 0 and apex == 0:
            return onset + 1, apex + 1, (f"{erratum.description}: onset and apex corrected from 0 to 1 "
                                         f"(the owners' fix: {erratum.owners_solution}; {erratum.where()})")
    return onset, apex, ""


# ----------------------------------------------------------------------------- label folders (SMIC)


def _load_label_folders(spec: DatasetSpec, root: Path, strict: bool) -> ClipTable:
    """No annotation file (SMIC-HS): ``HS/s1/micro/<label>/<clip>/`` gives the label.

    Onset = first frame, offset = last frame, apex = middle (SMIC has no apex annotation).
    ``non_micro`` folders hold non-micro-expression clips and are not part of the dataset.
    """
    dataset, name = spec.name, spec.display_name
    base = find_dir(root, spec.frames.raw)
    if base is None:
        raise FileNotFoundError(
            f"{root} is not a {name} root: no {' or '.join(folder + '/' for folder in spec.frames.raw)} folder "
            "with s1/micro/... in it"
        )
    cropped = find_dir(root, spec.frames.precropped)
    checker = _RowChecker(dataset, None, root, strict)
    pattern = spec.reader.subject_pattern
    subjects = sorted((p for p in base.iterdir() if p.is_dir() and re.fullmatch(pattern, p.name, re.I)),
                      key=lambda p: int(p.name[1:]))
    if not subjects:
        raise FileNotFoundError(f"{base}: no subject folders s1, s2, ...; is this the {name} root?")
    for subject_dir in subjects:
        clip_dirs = sorted(subject_dir.glob("micro/*/*"))
        if not clip_dirs:
            checker.report_folder(subject_dir, subject_dir.name, "", "subject folder has no micro/<label>/<clip> folders")
        for clip_dir in clip_dirs:
            if not clip_dir.is_dir():
                continue
            with checker.row(None, file=clip_dir) as check:
                check.subject, check.clip_id = subject_dir.name, clip_dir.name
                label = _known_label(dataset, clip_dir.parent.name)
                frames = index_frames(clip_dir)
                if not frames:
                    raise RowProblem(f"clip folder has no frames: {clip_dir}")
                onset, offset = min(frames), max(frames)
                apex = _nearest_frame(frames, (onset + offset) // 2)
                check.claim_clip(subject_dir.name, clip_dir.name)
                paths = _frame_paths(frames, clip_dir, onset, apex)
                paths.update(_precropped_paths(cropped and cropped / clip_dir.relative_to(base), onset, apex))
                check.accept(dict(
                    subject=subject_dir.name, clip_id=clip_dir.name, onset_frame=onset, apex_frame=apex,
                    offset_frame=offset, label=label, apex_rule=APEX_MIDDLE, action_units="", **paths,
                ))
    return checker.result([], cropped is not None, {dataset: root})


def _nearest_frame(frames: dict[int, Path], wanted: int) -> int:
    return min(frames, key=lambda number: (abs(number - wanted), number))


# ----------------------------------------------------------------------------- composites (MEGC2019)


def composite_roots(spec: DatasetSpec, root: Root) -> dict[str, Path]:
    """Resolve a composite's parts: a mapping, or one folder holding casme2/, samm/, smic/, the list."""
    parts, list_file = spec.parts, spec.reader.file
    if isinstance(root, Mapping):
        unknown = set(root) - {*parts, "list"}
        if unknown:
            raise KeyError(f"{spec.name} root has unknown keys {sorted(unknown)}; expected {', '.join(parts)}, list")
        roots = {key: Path(value) for key, value in root.items()}
    else:
        folder = _as_dir(root, spec.name)
        roots = {part: folder / part for part in parts if (folder / part).is_dir()}
        roots["list"] = folder / list_file
    if "list" not in roots or not roots["list"].is_file():
        raise FileNotFoundError(f"{spec.name}: official list {roots.get('list', list_file)} not found")
    return roots


def _load_composite(spec: DatasetSpec, root: Root, strict: bool) -> ClipTable:
    roots = composite_roots(spec, root)
    list_path, known_parts, list_ids = roots["list"], spec.parts, spec.reader.ids
    try:
        listing = pd.read_csv(list_path, header=None, dtype=str, keep_default_na=False)
    except Exception as error:
        raise ValueError(f"{list_path}: cannot read as CSV ({error})") from error
    if listing.shape[1] != 4:
        raise ValueError(f"{list_path}, row 1: expected 4 columns dataset,subject,filename,label; found {listing.shape[1]}")
    parts = {}
    for part in sorted(set(listing[0].str.strip().str.lower()) & set(known_parts)):
        if part not in roots:
            raise FileNotFoundError(f"{list_path} lists {part} clips but no {part} folder was given")
        parts[part] = load_clips(part, roots[part], strict=strict)
    by_key = {(part, table.clips.loc[i, "subject"], table.clips.loc[i, "clip_id"]): table.clips.loc[i]
              for part, table in parts.items() for i in table.clips.index}
    problems = {(part, row.subject, row.clip_id): row for part, table in parts.items()
                for row in table.excluded.itertuples()}
    checker = _RowChecker(spec.name, list_path, list_path.parent, strict)
    listed = set()
    class_names = task_info(spec.name, spec.reader.task).class_names
    labels = [str(index) for index in range(len(class_names))]
    meanings = [f"{index} ({name})" for index, name in enumerate(class_names)]
    for number, (part, subject, clip, label) in enumerate(listing.itertuples(index=False), start=1):
        with checker.row(number) as check:
            part = part.strip().lower()
            if part not in known_parts:
                raise RowProblem(f"unknown dataset {part!r}; expected one of {', '.join(known_parts)}")
            subject, clip = list_ids(part, subject.strip(), clip.strip())
            check.subject, check.clip_id = f"{part}/{subject}", clip
            if label.strip() not in labels:
                raise RowProblem(f"label {label!r} is not {', '.join(meanings[:-1])} or {meanings[-1]}")
            key = (part, subject, clip)
            check.claim_clip(part + "/" + subject, clip)
            if key not in by_key:
                problem = problems.get(key)
                detail = f": {problem.reason} ({problem.file}, row {problem.row})" if problem is not None else \
                    f": no such clip in the {part} annotation"
                raise RowProblem(f"listed clip unusable{detail}")
            listed.add(key)
            clip_row = by_key[key].to_dict()
            clip_row.update(subject=f"{part}/{subject}", label=class_names[int(label)],
                            dataset_label=clip_row["label"], part_file=clip_row["file"], part_row=clip_row["row"])
            check.accept(clip_row, dataset=part)
    result = checker.result([list_path] + [f for t in parts.values() for f in t.input_files],
                            all(t.precropped_available for t in parts.values()), roots)
    unlisted = [
        dict(dataset=part, file=row["file"], row=row["row"], subject=f"{part}/{row['subject']}",
             clip_id=row["clip_id"], reason=f"not in {spec.reader.file}")
        for part, table in parts.items() for row in table.clips.to_dict("records")
        if (part, row["subject"], row["clip_id"]) not in listed
    ]
    part_excluded = [table.excluded for table in parts.values()]
    result.excluded = pd.concat([result.excluded, *part_excluded, pd.DataFrame(unlisted, columns=EXCLUDED_COLUMNS)],
                                ignore_index=True)
    result.corrections = pd.concat([result.corrections, *(table.corrections for table in parts.values())],
                                   ignore_index=True)
    return result


# ----------------------------------------------------------------------------- cell parsing


def _is_blank(cell: object) -> bool:
    return cell is None or (isinstance(cell, float) and pd.isna(cell)) or str(cell).strip() in ("", "/", "nan")


def _text(cell: object, what: str) -> str:
    if _is_blank(cell):
        raise RowProblem(f"{what} is empty")
    text = str(cell).strip()
    return text[:-2] if re.fullmatch(r"\d+\.0", text) else text


def _frame(cell: object, what: str) -> int:
    """Frame numbers arrive as int, float (46.0) or text ('355' in CAS(ME)^3)."""
    if _is_blank(cell):
        raise RowProblem(f"{what} frame is empty")
    text = str(cell).strip()
    match = re.fullmatch(r"(\d+)(?:\.0+)?", text)
    if not match:
        raise RowProblem(f"{what} frame {cell!r} is not a frame number")
    return int(match.group(1))


def _apex(cell: object, onset: int, offset: int) -> tuple[int, str]:
    if offset == 0:
        raise RowProblem("offset frame is 0")
    if onset > offset:
        raise RowProblem(f"onset {onset} is after offset {offset}")
    if _is_blank(cell):  # CASME II writes '/' or leaves the cell empty
        return (onset + offset) // 2, APEX_MIDDLE
    apex = _frame(cell, "apex")
    if not onset <= apex <= offset:
        raise RowProblem(f"apex {apex} is outside onset..offset {onset}..{offset}")
    return apex, APEX_ANNOTATED


def _known_label(dataset: str, cell: object) -> str:
    if _is_blank(cell):
        raise RowProblem("emotion label is empty")
    if normalise_label(dataset, cell) not in dataset_info(dataset).labels:
        known = ", ".join(dataset_info(dataset).labels)
        raise RowProblem(f"unknown label {str(cell).strip()!r} (known: {known})")
    return str(cell).strip()


def _au_text(cell: object) -> str:
    """Action units are numbers (4) in some rows and text ('4+7+L10') in others: keep text."""
    if cell is None or (isinstance(cell, float) and pd.isna(cell)):
        return ""
    text = str(cell).strip()
    return text[:-2] if re.fullmatch(r"\d+\.0", text) else text


# ----------------------------------------------------------------------------- frames on disk


class _FrameLocator:
    """Finds a clip's onset and apex frames in the raw and, when present, pre-cropped release
    (the folders of the dataset's FrameLayout)."""

    def __init__(self, spec: DatasetSpec, root: Path):
        self.dataset = spec.name
        self.layout = layout = spec.frames
        self.root = root
        self.raw = find_dir(root, layout.raw)
        self.precropped = find_dir(root, layout.precropped)
        self.clip_release = find_dir(root, layout.clip_release)
        if self.raw is None and self.precropped is None and self.clip_release is None:
            tried = ", ".join(layout.raw + layout.precropped)
            raise FileNotFoundError(f"{root}: annotation file found but no frame folder (tried {tried})")
        self.has_precropped = self.precropped is not None

    def locate(self, subject: str, clip: str, onset: int, apex: int,
               annotated_onset: int | None = None) -> dict[str, str | None]:
        """``annotated_onset``: the onset as written, when an erratum corrected it (a clip
        release folder may be named after either)."""
        folder = self._raw_clip_folder(subject, clip, (onset, annotated_onset))
        paths = _frame_paths(index_frames(folder), folder, onset, apex)
        paths.update(_precropped_paths(self._precropped_clip_folder(subject, clip), onset, apex))
        return paths

    def _precropped_clip_folder(self, subject: str, clip: str) -> Path | None:
        if self.precropped is None:
            return None
        subject_dir = child_case_insensitive(self.precropped, subject)
        return subject_dir and child_case_insensitive(subject_dir, clip)

    def _raw_clip_folder(self, subject: str, clip: str, onsets: tuple[int, int | None]) -> Path:
        if self.layout.video_frames:  # videos holding several clips (CAS(ME)^3)
            if self.raw is not None:
                subject_dir = child_case_insensitive(self.raw, subject)
                video = subject_dir and child_case_insensitive(subject_dir, clip)
                if video is not None:
                    return video / self.layout.video_frames
            if self.clip_release is not None:
                for onset in dict.fromkeys(number for number in onsets if number is not None):
                    folder = child_case_insensitive(self.clip_release, f"{subject}_{clip}_{onset}")
                    if folder is not None:
                        return folder
        base = self.raw or self.precropped or self.clip_release
        return _subject_child(base, subject, clip)


def _subject_child(base: Path, subject: str, clip: str) -> Path:
    """``base/subject/clip`` (case-insensitive), raising RowProblem with the first missing part."""
    subject_dir = child_case_insensitive(base, subject)
    if subject_dir is None:
        raise RowProblem(f"subject folder missing: {base / subject}")
    clip_dir = child_case_insensitive(subject_dir, clip)
    if clip_dir is None:
        if not any(subject_dir.iterdir()):
            raise RowProblem(f"subject folder is empty: {subject_dir}")
        raise RowProblem(f"clip folder missing: {subject_dir / clip}")
    return clip_dir


def _frame_paths(frames: dict[int, Path], folder: Path, onset: int, apex: int) -> dict[str, str]:
    if not frames:
        raise RowProblem(f"clip folder has no frames: {folder}")
    for what, number in (("onset", onset), ("apex", apex)):
        if number not in frames:
            raise RowProblem(f"{what} frame {number} not found in {folder}")
    return {"onset_path": str(frames[onset]), "apex_path": str(frames[apex])}


def _precropped_paths(folder: Path | None, onset: int, apex: int) -> dict[str, str | None]:
    """Pre-cropped frames when the release has them; None otherwise (never an error)."""
    frames = index_frames(folder) if folder is not None else {}
    return {"precropped_onset_path": str(frames[onset]) if onset in frames else None,
            "precropped_apex_path": str(frames[apex]) if apex in frames else None}


# ----------------------------------------------------------------------------- bookkeeping


class _RowChecker:
    """Collects accepted clips and excluded rows; in strict mode the first problem raises."""

    def __init__(self, dataset: str, file: Path | None, root: Path, strict: bool):
        self.dataset, self.file, self.root, self.strict = dataset, file, root, strict
        self.accepted: list[dict] = []
        self.excluded: list[dict] = []
        self.corrections: list[dict] = []
        self.first_row: dict[tuple[str, str], object] = {}

    def row(self, number: int | None, file: Path | None = None) -> "_RowContext":
        return _RowContext(self, number, file or self.file)

    def report_folder(self, folder: Path, subject: str, clip_id: str, reason: str) -> None:
        self._exclude(folder, None, subject, clip_id, f"{reason}: {folder}")

    def _exclude(self, file, row, subject, clip_id, reason) -> None:
        if self.strict:
            where = f"{file}, row {row}" if row is not None else str(file)
            raise ValueError(f"{where}: {reason}")
        self.excluded.append(dict(dataset=self.dataset, file=str(file), row=row, subject=subject,
                                  clip_id=clip_id, reason=reason))

    def result(self, input_files: list[Path], precropped: bool, roots: dict[str, Path]) -> ClipTable:
        clips = pd.DataFrame(self.accepted)
        if clips.empty:
            clips = pd.DataFrame(columns=[c for c in SAMPLE_COLUMNS if c != "class_index"])
        else:
            clips["erratum"] = clips["erratum"].fillna("") if "erratum" in clips else ""
            clips["apex_is_onset"] = clips["apex_frame"].astype(int) == clips["onset_frame"].astype(int)
        excluded = pd.DataFrame(self.excluded, columns=EXCLUDED_COLUMNS)
        corrections = pd.DataFrame(self.corrections, columns=EXCLUDED_COLUMNS)
        source_roots = [Path(r) for k, r in roots.items() if k != "list"]
        synthetic = any(is_synthetic_root(r) for r in source_roots)
        source = SYNTHETIC_SOURCE if synthetic else dataset_info(self.dataset).display_name
        return ClipTable(self.dataset, clips, excluded, input_files, source, precropped, corrections)


class _RowContext:
    def __init__(self, checker: _RowChecker, number: int | None, file: Path | None):
        self.checker, self.number, self.file = checker, number, file
        self.subject, self.clip_id = "", ""

    def correct(self, reason: str) -> None:
        """Record a value of this row corrected while reading (the clip is not left out)."""
        self.checker.corrections.append(dict(dataset=self.checker.dataset, file=str(self.file), row=self.number,
                                             subject=self.subject, clip_id=self.clip_id, reason=reason))

    def claim_clip(self, subject: str, clip_id: str) -> None:
        key = (subject, clip_id)
        if key in self.checker.first_row:
            raise RowProblem(f"duplicate clip id {subject} {clip_id} (first at row {self.checker.first_row[key]})")
        self.checker.first_row[key] = self.number

    def accept(self, values: dict, dataset: str | None = None) -> None:
        """Keep a clip; ``dataset`` names the part a composite row comes from."""
        self.checker.accepted.append({**values, "file": str(self.file), "row": self.number,
                                      "dataset": dataset or self.checker.dataset})

    def __enter__(self) -> "_RowContext":
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        if isinstance(error, RowProblem):
            self.checker._exclude(self.file, self.number, self.subject, self.clip_id, str(error))
            return True
        return False


def _as_dir(root: Root, dataset: str) -> Path:
    if isinstance(root, Mapping):
        raise ValueError(f"{dataset}: root must be a folder, not a mapping (mappings are for megc2019)")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"{dataset} root {path} is not a folder")
    return path


def _subfolders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


