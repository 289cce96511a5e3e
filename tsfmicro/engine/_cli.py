"""Subcommands ``train``, ``evaluate`` and ``report`` (wired into tsfmicro.cli)."""
from __future__ import annotations

import argparse
import json

from tsfmicro.engine.execute import train
from tsfmicro.engine.imbalance import LOSSES, SAMPLINGS
from tsfmicro.engine.recipes import PRECISIONS, RECIPES
from tsfmicro.engine.runs import DEVICES, RunConfig
from tsfmicro.model.config import TEMPORAL_BRANCHES
from tsfmicro.model.retention import ROTARY
from tsfmicro.metrics import PROTOCOLS
from tsfmicro.results import excluded_line, runs_in

LABELS = {"accuracy": "ACC", "uf1": "UF1", "uar": "UAR"}
STRICT_HELP = ("stop before training when an annotation row is unusable (unreadable frames, bad numbers, duplicate "
               "rows, missing frames); default: leave it out, listed in excluded.csv beside the run")


def register(subparsers) -> None:
    _add_train(subparsers)
    _add_evaluate(subparsers)
    _add_report(subparsers)


def _add_train(subparsers) -> None:
    from tsfmicro.data import APEX_CHOICES, DATASETS, ERRATA_CHOICES, SPLITS
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
    parser.add_argument("--epochs", type=int, help="override the recipe's number of epochs")
    parser.add_argument("--batch-size", type=int, help="override the recipe's batch size (32)")
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="fp32 (the recipes' default, as the authors) or bf16 (autocast speed mode; the "
                        "attention's decay and rotary stay fp32)")
    parser.add_argument("--rotary", choices=ROTARY,
                        help="rotary position encoding: flat (the presets', the authors') or axial (our option)")
    parser.add_argument("--temporal-branch", choices=TEMPORAL_BRANCHES,
                        help="the temporal branch's token mixer: retention (the paper's) or an ablation")
    parser.add_argument("--loss", choices=LOSSES,
                        help="training loss: cross_entropy (the recipes', the paper's), weighted_cross_entropy "
                        "(inverse class frequency of each fold's training clips) or focal (gamma 2)")
    parser.add_argument("--sampling", choices=SAMPLINGS,
                        help="order of each epoch's training clips: shuffle (the recipes', the paper's) or "
                        "class_balanced (drawn with replacement, each class equally likely)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="one or more seeds; default: 0")
    parser.add_argument("--device", default="auto", choices=DEVICES, help="default: auto (cuda, mps, cpu)")
    parser.add_argument("--out", default="runs", help="folder holding run directories; default: runs")
    parser.add_argument("--cache-dir", help="face-crop cache folder; default: $TSFMICRO_CACHE or ~/.cache/tsfmicro")
    parser.add_argument("--crop-size", type=int, help="cached crop size; default: the preset's image size")
    parser.add_argument("--checkpoint-every", type=int, default=5,
                        help="epochs between checkpoints inside a fold; default: 5")
    parser.add_argument("--checkpoint-seconds", type=float, default=60.0,
                        help="minimum seconds between checkpoints inside a fold; default: 60")
    parser.add_argument("--frame-reselection", action="store_true",
                        help="train on the (onset+i, apex-j) pair with the largest frame difference (the "
                        "authors' optional re-selection; test clips keep the annotated frames); default: off")
    parser.add_argument("--errata", default="keep", choices=ERRATA_CHOICES,
                        help="the dataset owners' errata (CAS(ME)^3): keep the clips they would remove, as the "
                        "authors' code does (default), or leave them out (owners); their corrections always apply")
    parser.add_argument("--apex", default="annotated", choices=APEX_CHOICES,
                        help="the apex frame: the annotated one (default), or automatic: the frame between onset "
                        "and offset whose face crop differs most from the onset's, for training and testing")
    parser.add_argument("--split", choices=list(SPLITS),
                        help="how the data becomes folds: loso (default: one fold per subject), lodo (one fold "
                        "per dataset of the megc2019 composite), cross_dataset (implied by --test-dataset)")
    parser.add_argument("--test-dataset", choices=DATASETS,
                        help="cross-dataset: train on all of --dataset, test on all of this dataset (same --task)")
    parser.add_argument("--test-root", help="the test dataset's folder (with --test-dataset)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--strict", action="store_true", help=STRICT_HELP)
    parser.set_defaults(handler=run_train)


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
        epochs=args.epochs,
        batch_size=args.batch_size,
        precision=args.precision,
        rotary=args.rotary,
        temporal_branch=args.temporal_branch,
        loss=args.loss,
        sampling=args.sampling,
        device=args.device,
        out=args.out,
        crop_size=args.crop_size,
        cache_dir=args.cache_dir,
        checkpoint_every=args.checkpoint_every,
        checkpoint_seconds=args.checkpoint_seconds,
        frame_reselection=args.frame_reselection,
        errata=args.errata,
        apex=args.apex,
        split=args.split,
        test_dataset=args.test_dataset,
        test_root=args.test_root,
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
