"""Subcommands ``train``, ``evaluate`` and ``report`` (wired into tsfmicro.cli)."""
from __future__ import annotations

import argparse
import json

from tsfmicro.engine.execute import train
from tsfmicro.engine.recipes import RECIPES
from tsfmicro.engine.runs import DEVICES, RunConfig
from tsfmicro.metrics import PROTOCOLS
from tsfmicro.options import OPTIONS, Option
from tsfmicro.results import excluded_line, runs_in

LABELS = {"accuracy": "ACC", "uf1": "UF1", "uar": "UAR"}
STRICT_HELP = ("stop before training when an annotation row is unusable (unreadable frames, bad numbers, duplicate "
               "rows, missing frames); default: leave it out, listed in excluded.csv beside the run")


def register(subparsers) -> None:
    _add_train(subparsers)
    _add_evaluate(subparsers)
    _add_report(subparsers)


def _add_train(subparsers) -> None:
    from tsfmicro.data import DATASETS
    from tsfmicro.model import FUSIONS, PRESETS

    parser = subparsers.add_parser(
        "train",
        help="leave-one-subject-out training and evaluation (both protocols)",
        description="Train with leave-one-subject-out folds and write a run directory "
        "(predictions.csv, metrics.json, curves.csv, config.yaml, provenance.json). A finished run "
        "with the same settings is reused; an interrupted one resumes from its checkpoint. "
        "With --test-dataset: one fold trained on all of --dataset and tested on all of the test "
        "dataset (cross-dataset, on a task both have, e.g. --task 3class_megc).",
    )
    parser.add_argument("--dataset", required=True, choices=DATASETS)
    parser.add_argument("--root", required=True, help="dataset folder (official layout, or written by `tsfmicro synth`)")
    parser.add_argument("--task", required=True, help="e.g. 5class, 3class (casme3: 7class, 4class)")
    parser.add_argument("--fusion", default="ts_late", choices=FUSIONS, help="default: ts_late (the paper's method)")
    parser.add_argument("--preset", default="paper", choices=list(PRESETS), help="model size; default: paper")
    parser.add_argument("--recipe", default="paper", choices=RECIPES, help="training recipe; default: paper")
    for row in OPTIONS:  # one flag per run option (tsfmicro.options)
        _add_option(parser, row)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="one or more seeds; default: 0")
    parser.add_argument("--device", default="auto", choices=DEVICES, help="default: auto (cuda, mps, cpu)")
    parser.add_argument("--out", default="runs", help="folder holding run directories; default: runs")
    parser.add_argument("--cache-dir", help="face-crop cache folder; default: $TSFMICRO_CACHE or ~/.cache/tsfmicro")
    parser.add_argument("--crop-size", type=int, help="cached crop size; default: the preset's image size")
    parser.add_argument("--checkpoint-every", type=int, default=5,
                        help="epochs between checkpoints inside a fold; default: 5")
    parser.add_argument("--checkpoint-seconds", type=float, default=60.0,
                        help="minimum seconds between checkpoints inside a fold; default: 60")
    parser.add_argument("--test-root", help="the test dataset's folder (with --test-dataset)")
    parser.add_argument("--source-root", help="the pre-training source's folder (with --pretrained)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--strict", action="store_true", help=STRICT_HELP)
    parser.set_defaults(handler=run_train)


def _add_option(parser: argparse.ArgumentParser, row: Option) -> None:
    """A run option's flag: a switch (bool), a number (int) or one of its choices; its default
    RunConfig's (None: the preset's or the recipe's)."""
    if row.type is bool:
        parser.add_argument(row.cli_flag, dest=row.name, action="store_true", help=row.help)
    elif row.choices is None:
        parser.add_argument(row.cli_flag, dest=row.name, type=row.type, default=row.field_default, help=row.help)
    else:
        parser.add_argument(row.cli_flag, dest=row.name, default=row.field_default,
                            choices=list(row.resolve_choices()), help=row.help)


def _add_evaluate(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="recompute the metrics of a run directory from its predictions",
        description="Recompute ACC/UF1/UAR, per class and per subject, from a run's predictions.csv.",
    )
    parser.add_argument("run", help="a run directory written by `tsfmicro train`")
    parser.add_argument("--protocol", choices=PROTOCOLS, help="only this protocol; default: both")
    parser.add_argument("--json", action="store_true", help="print the recomputed metrics as JSON")
    parser.set_defaults(handler=run_evaluate)


def _add_report(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="metrics table of one or more runs, both protocols side by side",
        description="Print ACC/UF1/UAR with 95% intervals for each run and protocol, and oracle - fixed.",
    )
    parser.add_argument("runs", nargs="+", help="run directories, or folders holding them (e.g. runs/)")
    parser.set_defaults(handler=run_report)


def run_train(args: argparse.Namespace) -> int:
    config = RunConfig(
        dataset=args.dataset,
        root=args.root,
        task=args.task,
        fusion=args.fusion,
        preset=args.preset,
        recipe=args.recipe,
        seeds=tuple(args.seeds),
        device=args.device,
        out=args.out,
        crop_size=args.crop_size,
        cache_dir=args.cache_dir,
        checkpoint_every=args.checkpoint_every,
        checkpoint_seconds=args.checkpoint_seconds,
        test_root=args.test_root,
        source_root=args.source_root,
        **{row.name: getattr(args, row.name) for row in OPTIONS},
    )
    from tsfmicro import report

    run = train(config, progress=not args.no_progress, strict=args.strict)
    print(report.text_report([run]))
    print_excluded([run])
    print(f"\nrun directory: {run.path}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from tsfmicro import report

    run = report.as_runs(args.run)[0]
    protocols = [args.protocol] if args.protocol else list(PROTOCOLS)
    summary = report.evaluate(run, protocols)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{run.path}  ({run.config['data_source']}, seeds {summary['seeds']}, {summary['clips']} clips per seed)")
    for protocol in protocols:
        scores = summary["protocols"][protocol]["mean"]
        line = ", ".join(f"{LABELS[name]} {100 * value:.1f}" for name, value in scores.items())
        print(f"\n[{protocol}] mean over seeds: {line}")
        print(report.per_class_table(run, protocol)[["class_name", "support", "predicted", "precision", "recall", "f1"]]
              .round(3).to_string(index=False))
        print(report.per_subject_table(run, protocol).round(3).to_string(index=False))
    return 0


def run_report(args: argparse.Namespace) -> int:
    from tsfmicro import report

    runs = report.as_runs([found for given in args.runs for found in runs_in(given)])  # a runs folder: its runs
    print(report.text_report(runs))
    print_excluded(runs)
    return 0


def print_excluded(runs) -> None:
    """A line per run that left annotation rows out (tsfmicro.results.excluded_line)."""
    for run in runs:
        line = excluded_line(run)
        if line:
            print(f"{run.path.name}: {line}")
