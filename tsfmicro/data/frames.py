"""Finding frames on disk and reading one frame as an RGB array (where each dataset keeps its
frames is its spec's FrameLayout, tsfmicro/data/datasets/).

Frame numbers are always parsed from the trailing integer of a file name (``img46.jpg``,
``006_05562.jpg``, ``reg_image106950.bmp``), never built from a pattern, because the
zero-padding differs between releases.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
_TRAILING_INTEGER = re.compile(r"(\d+)$")


def frame_number(path: Path) -> int | None:
    """Trailing integer of the file name without suffix, or None if it has none."""
    match = _TRAILING_INTEGER.search(path.stem)
    return int(match.group(1)) if match else None


@lru_cache(maxsize=4096)
def _index_folder_cached(folder: str, mtime_ns: int) -> dict[int, Path]:
    frames: dict[int, Path] = {}
    for entry in Path(folder).iterdir():
        if entry.suffix.lower() in IMAGE_SUFFIXES and entry.is_file():
            number = frame_number(entry)
            if number is not None:
                frames.setdefault(number, entry)
    return frames


def index_frames(folder: Path) -> dict[int, Path]:
    """Map frame number -> image path for every image in ``folder`` (empty if it is missing).

    Memoised on the folder's modification time: CAS(ME)^3 keeps many clips in one video
    folder, and listing it once per clip would be slow on a network disk.
    """
    try:
        mtime_ns = folder.stat().st_mtime_ns
    except FileNotFoundError:
        return {}
    return dict(_index_folder_cached(str(folder), mtime_ns))


def find_dir(root: Path, candidates: tuple[str, ...]) -> Path | None:
    """The first candidate folder under ``root`` that exists."""
    for candidate in candidates:
        folder = root / candidate
        if folder.is_dir():
            return folder
    return None


def child_case_insensitive(folder: Path, name: str) -> Path | None:
    """``folder/name`` matched without regard to case (CAS(ME)^3 folders say spNo, labels spNO)."""
    direct = folder / name
    if direct.is_dir():
        return direct
    wanted = name.lower()
    if folder.is_dir():
        for entry in folder.iterdir():
            if entry.name.lower() == wanted and entry.is_dir():
                return entry
    return None


def read_frame(path: str | Path) -> np.ndarray:
    """Read an image as a uint8 RGB array (H, W, 3); grayscale frames (SAMM) become 3-channel.

    Raises FileNotFoundError for a missing file and ValueError for one that cannot be
    decoded (truncated or corrupt), both naming the path.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"frame not found: {path}")
    try:
        with Image.open(path) as image:
            image.load()  # decode now so a truncated file fails here, with its path
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError, SyntaxError) as error:
        raise ValueError(f"unreadable frame {path}: {error}") from error
