"""The ``synth`` and ``preprocess`` subcommands (wired into ``tsfmicro.cli``)."""
from __future__ import annotations

import argparse
from pathlib import Path

from .errata import ERRATA_CHOICES
from .faces import DEFAULT_MARGIN
from .registry import DATASETS, SYNTHETIC_LAYOUTS, TASKS


def register(subparsers) -> None:
    synth = subparsers.add_parser(
        "synth", help="write a synthetic dataset in an official layout",
        description="Write a synthetic micro-expression dataset in the official file layout of a dataset.",
    )
    synth.add_argument("--layout", required=True, choices=SYNTHETIC_LAYOUTS)
    synth.add_argument("--out", required=True, type=Path, help="folder to create (must be empty or synthetic)")
    synth.add_argument("--subjects", type=int, default=8)
    synth.add_argument("--clips-per-subject", type=int, default=10)
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(handler=run_synth)

    preprocess = subparsers.add_parser(
        "preprocess", help="build the face-crop cache of a dataset",
        description="Read a dataset's official files, crop faces (MTCNN) and store them in the cache. "
                    "For megc2019, --root is a folder holding casme2/, samm/, smic/ and combined_3class_gt.csv.",
    )
    preprocess.add_argument("--dataset", required=True, choices=DATASETS)
    preprocess.add_argument("--root", required=True, type=Path, help="folder the dataset was unpacked into")
    preprocess.add_argument("--task", help="task to summarise (default: the dataset's first task); "
                                           "the cache covers every task")
    preprocess.add_argument("--crop-size", type=int, default=224,
                            help="default: 224, the paper preset's image size; `train --preset tiny` uses 64 px "
                                 "crops, in a cache of their own (--crop-size 64 prepares that one)")
    preprocess.add_argument("--margin", type=float, default=DEFAULT_MARGIN,
                            help="added on each side of the MTCNN box, as a fraction of its size (default %(default)s)")
    preprocess.add_argument("--cache-dir", type=Path, default=None,
                            help="default: $TSFMICRO_CACHE or ~/.cache/tsfmicro")
    preprocess.add_argument("--precropped", action="store_true", help="use the dataset's pre-cropped frames")
    preprocess.add_argument("--errata", default="keep", choices=ERRATA_CHOICES,
                            help="the dataset owners' errata (CAS(ME)^3): keep the clips they would remove, as the "
                            "authors' code does (default), or leave them out (owners); their corrections always apply")
    preprocess.set_defaults(handler=run_preprocess)


def run_synth(args: argparse.Namespace) -> int:
    from .synthetic import write_synthetic

    root = write_synthetic(args.layout, args.out, subjects=args.subjects,
                           clips_per_subject=args.clips_per_subject, seed=args.seed)
    print(f"wrote synthetic {args.layout} dataset to {root}")
    return 0


def run_preprocess(args: argparse.Namespace) -> int:
    from .._io import write_csv
    from .cache import prepare

    task = args.task or TASKS[args.dataset][0]
    if task not in TASKS[args.dataset]:
        raise ValueError(f"unknown task {task!r} for {args.dataset}; choose from {', '.join(TASKS[args.dataset])}")
    data = prepare(args.dataset, args.root, task, crop_size=args.crop_size,
                   margin=args.margin,
                   use_precropped=args.precropped, cache_dir=args.cache_dir, errata=args.errata)
    choice = "_errata-owners" if args.errata == "owners" else ""  # the reports differ by choice, the cache does not
    stem = str(data.cache_path).removesuffix(".npz") + f"_{task}{choice}"
    report = Path(stem + "_excluded.csv")
    write_csv(report, data.excluded)
    corrections = Path(stem + "_corrections.csv")
    write_csv(corrections, data.corrections)
    counts = data.samples["label"].str.lower().value_counts().to_dict()
    methods = data.samples["crop_method"].value_counts().to_dict()
    print(f"{data.source}: {len(data.samples)} clips for {args.dataset} {task}, "
          f"{data.samples['subject'].nunique()} subjects; labels {counts}")
    print(f"crops: {methods}; excluded rows: {len(data.excluded)} (report: {report}); "
          f"corrected rows: {len(data.corrections)} (report: {corrections})")
    print(f"cache: {data.cache_path}")
    return 0
