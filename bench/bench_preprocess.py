"""Time the face-crop cache on a CASME II-sized synthetic set: build once, then reload.

CASME II-sized: 26 subjects, 255 clips, 640x480 JPEG frames. Targets (issue 3): build
<= 2 minutes on 2 CPU cores, reload <= 2 seconds.

    python bench/bench_preprocess.py [--crop-size 224] [--work DIR] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import openpyxl

from tsfmicro.data import prepare, write_synthetic

SUBJECTS, CLIPS_PER_SUBJECT, CLIPS = 26, 10, 255


def casme2_sized_root(folder: Path) -> Path:
    """26 x 10 clips written, then the sheet cut to 255 rows (the writer makes equal subjects)."""
    root = write_synthetic("casme2", folder / "casme2", subjects=SUBJECTS, clips_per_subject=CLIPS_PER_SUBJECT, seed=0)
    path = root / "CASME2-coding-20190701.xlsx"
    book = openpyxl.load_workbook(path)
    sheet = book["Sheet1"]
    sheet.delete_rows(CLIPS + 2, sheet.max_row)  # header + 255 clip rows stay
    book.save(path)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crop-size", type=int, default=224)
    parser.add_argument("--work", type=Path, help="folder for the dataset and cache (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work or Path(temporary)
        started = time.perf_counter()
        root = casme2_sized_root(work)
        written = time.perf_counter() - started

        cache = work / "cache"
        started = time.perf_counter()
        built = prepare("casme2", root, "5class", crop_size=args.crop_size, cache_dir=cache, progress=True)
        build_seconds = time.perf_counter() - started

        started = time.perf_counter()
        reloaded = prepare("casme2", root, "5class", crop_size=args.crop_size, cache_dir=cache, progress=False)
        reload_seconds = time.perf_counter() - started
        assert reloaded.cache_path == built.cache_path

        figures = {
            "clips_in_cache": int(len(built.samples) + (built.excluded["reason"].str.contains("is not in")).sum()),
            "clips_5class": len(built.samples),
            "crop_size": args.crop_size,
            "crop_methods": built.samples["crop_method"].value_counts().to_dict(),
            "write_synthetic_s": round(written, 1),
            "build_s": round(build_seconds, 1),
            "reload_s": round(reload_seconds, 2),
            "cache_mb": round(built.cache_path.stat().st_size / 2**20, 1),
            "cpus": os.cpu_count(),
            "load_average_1min": round(os.getloadavg()[0], 1),
            "python": platform.python_version(),
        }
    print(json.dumps(figures, indent=2))
    if args.json:
        from tsfmicro._io import write_json

        write_json(args.json, figures)


if __name__ == "__main__":
    main()
