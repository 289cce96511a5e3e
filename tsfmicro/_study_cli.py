"""Subcommands ``plan`` and ``run``: every training a parameters file needs, costed and trained
(wired into tsfmicro.cli)."""
from __future__ import annotations

import argparse
import json
import sys

from tsfmicro import _yaml
from tsfmicro.engine._cli import STRICT_HELP, print_excluded
from tsfmicro.engine.execute import EXECUTORS


def register(subparsers) -> None:
    _add_plan(subparsers)
    _add_run(subparsers)


def _add_params(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("params", help="parameters file, e.g. params/demo.yaml or params/paper.yaml")
    parser.add_argument("--overrides", metavar="YAML",
                        help="overrides as a YAML mapping, the notebooks' `overrides` (same rule: lists and "
                        "datasets: replace, null removes a key), e.g. '{datasets: {casme2: [5class]}, seeds: [0]}'")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                        help="override one parameter (YAML value; nested keys with dots), after --overrides, "
                        "e.g. -p epochs=2 -p 'seeds=[0]' -p roots.casme2=/data/CASME2; repeatable")


def _add_plan(subparsers) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="every training unit a parameters file needs: folds, compute, time, state",
        description="One row per training unit (dataset, task, fusion, preset, recipe, seed) the book "
        "needs: folds, training clips per fold, epochs, estimated compute (TFLOPs: forward FLOPs per clip "
        "x 3 x training clips x epochs, summed over folds, plus scoring), estimated time at the measured "
        "throughput of the configured device (unknown where never measured), and state (done / partial: "
        "k of n folds / to do). Trains nothing; face crops are cached when missing, as `run` would.",
    )
    _add_params(parser)
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.set_defaults(handler=run_plan)


def _add_run(subparsers) -> None:
    parser = subparsers.add_parser(
        "run",
        help="train every planned unit that is not finished, fold by fold (in-process or on Ray)",
        description="Train every unit of the plan that is not finished, one fold at a time, then write "
        "the run directories (the same files `tsfmicro train` writes). Each fold's result is written "
        "when it ends: after Ctrl-C, a killed process or a failed fold, the same command continues "
        "where it stopped. Results are the same whatever the executor and number of workers.",
    )
    _add_params(parser)
    parser.add_argument("--executor", default="local", metavar="{local,ray}",
                        help="local: one fold after another in this process (default); ray: folds as Ray "
                        "tasks (pip install 'tsfmicro[ray]')")
    parser.add_argument("--address", help="ray: join a running cluster (auto, HOST:PORT or ray://HOST:PORT); "
                        "default: start a Ray instance on this machine. The runs folder must be on a "
                        "filesystem every worker sees")
    parser.add_argument("--workers", type=int, help="ray: folds trained at once (default: as many as fit)")
    parser.add_argument("--gpus-per-fold", type=float,
                        help="ray: GPUs per fold, e.g. 0.25 packs four folds on one GPU "
                        "(default: 1 with device cuda, else 0)")
    parser.add_argument("--cpus-per-fold", type=int,
                        help="CPU threads per fold (torch.set_num_threads); default: the parameters' "
                        "cpu_threads, else 1 on Ray and PyTorch's default in-process")
    parser.add_argument("--max-retries", type=int, default=2,
                        help="ray: times a fold is retried when its worker dies (default: 2)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--strict", action="store_true", help=STRICT_HELP)
    parser.set_defaults(handler=run_run)


def parse_overrides(mapping: str | None, items: list[str]) -> dict:
    """``--overrides`` (a YAML mapping) with every ``-p KEY=VALUE`` set in it:
    ``"{seeds: [0]}", ["epochs=2", "synthetic.subjects=3"]`` ->
    ``{"seeds": [0], "epochs": 2, "synthetic": {"subjects": 3}}``."""
    overrides = _yaml.load(mapping, f"--overrides {mapping!r}") if mapping else {}
    if not isinstance(overrides, dict):
        raise ValueError(f"--overrides {mapping!r}: give a YAML mapping, e.g. '{{seeds: [0], epochs: 2}}'")
    for item in items:
        key, separator, text = item.partition("=")
        if not separator or not key.strip():
            raise ValueError(f"-p {item!r}: write KEY=VALUE, e.g. -p epochs=2")
        *parents, leaf = key.strip().split(".")
        target = overrides
        for parent in parents:
            if not isinstance(target.get(parent), dict):
                target[parent] = {}
            target = target[parent]
        target[leaf] = _yaml.load(text, f"-p {item!r}, value {text!r}")
    return overrides


def _study(args: argparse.Namespace):
    from tsfmicro.study import Study

    return Study.load(args.params, overrides=parse_overrides(args.overrides, args.param))


def run_plan(args: argparse.Namespace) -> int:
    from tsfmicro import report
    from tsfmicro.engine import plan as planning
    from tsfmicro.options import owned_by

    study = _study(args)
    table = study.plan()
    device = study.params["device"]
    device_type = device if device != "auto" else "cpu"
    # the model options the parameters set for every run (e.g. image_size; None: the preset's)
    model = {row.name: study.params.get(row.name) for row in owned_by("model") if row.params}
    basis = [planning.throughput_basis(device_type, preset, precision, model)
             for preset, precision in sorted(set(zip(table["preset"], table["precision"])))]
    if args.json:
        rows = json.loads(table.to_json(orient="records"))
        print(json.dumps({"params": str(study.parameters.params_file), "device": device, "units": rows,
                          "totals": planning.totals(table), "throughput": basis}, indent=2))
        return 0
    print(f"plan for {study.parameters.params_file} (device {device}, data {study.source})\n")
    print(report.plan_text(table, planning.totals(table)))
    print("time estimates: " + "; ".join(basis))
    from tsfmicro.chapters.long_videos import plan_lines

    for line in plan_lines(study.parameters):  # steps beside training: spotting and recognising long videos
        print(line)
    return 0


def run_run(args: argparse.Namespace) -> int:
    import torch

    from tsfmicro import report
    from tsfmicro.engine import execute
    from tsfmicro.engine.excluded import check_strict
    from tsfmicro.engine.folds import check_writable
    from tsfmicro.results import load_run
    from tsfmicro.engine.plan import totals

    if args.executor not in EXECUTORS:  # checked before anything is loaded
        raise execute.ExecutorError(f"unknown executor {args.executor!r}; choose one of {', '.join(EXECUTORS)}")
    study = _study(args)
    check_writable(study.parameters.path("runs"))  # before any work
    requested = study.params["device"]
    cpus = args.cpus_per_fold if args.cpus_per_fold is not None else study.params.get("cpu_threads")
    gpus = args.gpus_per_fold
    device = None  # this machine's device, checked by the engine
    if args.executor == "ray" and study.params.get("plugins"):
        # plugins: are imported by the process that reads the parameters; a Ray worker builds the
        # network from its name alone and would not know it
        raise execute.ExecutorError(f"plugins: in {args.params} register networks in this process only, not in "
                                    "Ray's workers: train with --executor local (make book DEMO_EXECUTOR=local)")
    if args.executor == "ray":
        if gpus is None:
            gpus = 1.0 if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()) else 0.0
        if gpus > 0:
            if requested in ("cpu", "mps"):
                raise execute.ExecutorError(f"--gpus-per-fold {gpus:g} with device {requested} in {args.params}: "
                                            "set device: cuda (or -p device=cuda)")
            device = torch.device("cuda")  # the GPUs may be on the cluster's nodes, not here
    executor = execute.make_executor(args.executor, address=args.address, workers=args.workers,
                                     gpus_per_fold=gpus or 0.0, cpus_per_fold=cpus, max_retries=args.max_retries)
    progress = not args.no_progress
    try:
        executor.start()  # a cluster that cannot be joined is reported before any data is prepared
        plan = study.engine_plan(device=device, progress=progress)
        if args.strict:
            check_strict(plan)
    except BaseException:
        executor.close()
        raise
    table = plan.table()
    total = totals(table)
    print(f"plan for {study.parameters.params_file}: {total['units']} units, {total['folds']} folds ({total['folds_done']} "
          f"done), est. {report.format_seconds(total['estimated_seconds'])} on "
          f"{plan.requests[0].device.type if plan.requests else requested}; executor {executor.name}", flush=True)
    if args.no_progress:
        print(report.plan_text(table, total), flush=True)
    try:
        summary = execute.execute(plan, executor, progress=progress)
    except KeyboardInterrupt:
        print(f"tsfmicro run: interrupted; every finished fold is kept in {study.parameters.path('runs')}: "
              "run the same command to continue", file=sys.stderr)
        return 130
    print("\n" + report.run_summary_text(summary))
    print_excluded([load_run(request.path) for request in plan.requests])
    print(f"runs folder: {study.parameters.path('runs')}")
    return 0
