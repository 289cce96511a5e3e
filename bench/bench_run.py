"""`tsfmicro run` at work: executors on the CPU, the paper network on a GPU, and the measured
throughput that `tsfmicro plan` turns into time estimates.

    python bench/bench_run.py cpu                  # the demo plan: local vs ray (2 workers), folds/min
    python bench/bench_run.py throughput --preset paper --device cpu   # one fold, FLOP/s -> throughput.csv
    python bench/bench_run.py gpu                  # a CUDA machine: paper preset, CASME II-sized set

cpu: trains params/demo.yaml twice from nothing into scratch run folders (the face-crop caches
are built before timing), once with the local executor and once with `--executor ray --workers 2`,
and reports wall time, folds/min, their ratio and whether the two gave byte-identical results.
The local run's training speed (FLOPs of the plan / seconds spent training) is recorded as the
CPU throughput of the demo's preset.

throughput: trains fold 0 of a small synthetic CASME II set with the engine for a few epochs and
records FLOP/s as training clips/s of the T-S late network (tsfmicro/engine/throughput.csv).

gpu: the `paper` preset on a CASME II-sized synthetic set (26 subjects x 10 clips): training
samples/s and peak GPU memory over two epochs of one fold, then the full 26-fold x 50-epoch LOSO
wall time with the local executor and, with --packing, with Ray at 1, 2 and 4 folds per GPU.

Every result is printed and appended as one JSON line to bench/results/run.jsonl.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import yaml  # noqa: E402

from tsfmicro.engine import checkpoint as ckpt  # noqa: E402
from tsfmicro.engine import folds as fold_store  # noqa: E402
from tsfmicro.engine import get_recipe, loso, provenance, resolve_device  # noqa: E402
from tsfmicro.engine.plan import THROUGHPUT_FILE, compute_flops, forward_flops  # noqa: E402
from tsfmicro.engine.recipes import PRECISIONS  # noqa: E402
from tsfmicro.model import PRESETS, build_model  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "run.jsonl"
THROUGHPUT_COLUMNS = ["device_type", "preset", "precision", "threads", "train_clips_per_s", "machine", "measured",
                      "source", "image_size"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    cpu = commands.add_parser("cpu", help="the demo plan with the local and the ray executor")
    cpu.add_argument("--params", default=str(ROOT / "params" / "demo.yaml"))
    cpu.add_argument("--workers", type=int, default=2)
    cpu.add_argument("-p", "--param", action="append", default=[], help="passed to tsfmicro run")
    cpu.add_argument("--workdir", help="scratch folder for the two run folders (default: a temporary one)")
    throughput = commands.add_parser("throughput", help="one fold's FLOP/s, recorded for tsfmicro plan")
    throughput.add_argument("--preset", default="tiny", choices=list(PRESETS))
    throughput.add_argument("--device", default="cpu")
    throughput.add_argument("--subjects", type=int, default=4)
    throughput.add_argument("--clips-per-subject", type=int, default=6)
    throughput.add_argument("--epochs", type=int, default=2)
    throughput.add_argument("--threads", type=int, default=1, help="torch threads on the CPU (default 1)")
    throughput.add_argument("--precision", default="fp32", choices=PRECISIONS)
    throughput.add_argument("--workdir")
    gpu = commands.add_parser("gpu", help="paper preset on a CASME II-sized set (needs CUDA)")
    gpu.add_argument("--subjects", type=int, default=26)
    gpu.add_argument("--clips-per-subject", type=int, default=10)
    gpu.add_argument("--epochs", type=int, default=50)
    gpu.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    gpu.add_argument("--packing", action="store_true", help="also Ray with 1, 2 and 4 folds per GPU")
    gpu.add_argument("--workdir")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_run_") as scratch:
        workdir = Path(args.workdir or scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        report = {"cpu": bench_cpu, "throughput": bench_throughput, "gpu": bench_gpu}[args.command](args, workdir)
    report = {"date": provenance.now(), "git": provenance.git_state(), "bench": args.command, **report}
    print(json.dumps(report, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(report) + "\n")
    return 0


# ----------------------------------------------------------------------------- cpu: executors
def tsfmicro(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tsfmicro", *arguments], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)


def timed_run(params: str, runs: Path, overrides: list[str], *flags: str) -> float:
    start = time.perf_counter()
    tsfmicro("run", params, "-p", f"paths.runs={runs}", *overrides, "--no-progress", *flags)
    return time.perf_counter() - start


def bench_cpu(args, workdir: Path) -> dict:
    overrides = [item for pair in (("-p", p) for p in args.param) for item in pair]
    plan = json.loads(tsfmicro("plan", args.params, "-p", f"paths.runs={workdir / 'local'}", *overrides,
                               "--json").stdout)  # also builds the synthetic data and face-crop caches
    folds = plan["totals"]["folds"]
    local = timed_run(args.params, workdir / "local", overrides)
    ray = timed_run(args.params, workdir / "ray", overrides, "--executor", "ray", "--workers", str(args.workers))
    identical = _same_results(workdir / "local", workdir / "ray")
    trained = json.loads(tsfmicro("plan", args.params, "-p", f"paths.runs={workdir / 'local'}", *overrides,
                                  "--json").stdout)
    seconds = sum(u["trained_seconds"] for u in trained["units"])
    params = yaml.safe_load(Path(args.params).read_text())
    threads = int(params.get("cpu_threads") or torch.get_num_threads())
    clips_per_s = _record_throughput("cpu", params["preset"], params.get("precision") or "fp32", threads,
                                     trained["totals"]["tflops"] * 1e12 / seconds,
                                     "bench/bench_run.py cpu (the demo plan, local executor)",
                                     image_size=params.get("image_size"))
    return {
        "machine": _machine(), "params": args.params, "overrides": args.param, "units": plan["totals"]["units"],
        "folds": folds, "local_seconds": round(local, 1), "ray_seconds": round(ray, 1), "ray_workers": args.workers,
        "local_folds_per_min": round(folds / local * 60, 2), "ray_folds_per_min": round(folds / ray * 60, 2),
        "ray_over_local": round(local / ray, 3), "identical_results": identical,
        "local_training_seconds": round(seconds, 1), "throughput_train_clips_per_s": round(clips_per_s, 2),
    }


def _same_results(left: Path, right: Path) -> bool:
    names = sorted(p.relative_to(left) for p in left.rglob("*") if p.name in ("predictions.csv", "metrics.json"))
    return bool(names) and all((left / n).read_bytes() == (right / n).read_bytes() for n in names)


# ----------------------------------------------------------------------------- throughput
def bench_throughput(args, workdir: Path) -> dict:
    device = resolve_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    result = one_fold(args.preset, device, workdir, args.subjects, args.clips_per_subject, args.epochs, args.precision)
    threads = torch.get_num_threads() if device.type == "cpu" else 0
    result["train_clips_per_s"] = _record_throughput(
        device.type, args.preset, args.precision, threads, result["flops_per_s"],
        f"bench/bench_run.py throughput --preset {args.preset} (one fold, {args.epochs} epochs)")
    return {"machine": _machine(device), **result}


def one_fold(preset: str, device: torch.device, workdir: Path, subjects: int, clips: int, epochs: int,
             precision: str = "fp32") -> dict:
    """Fold 0 of a synthetic CASME II set trained by the engine: FLOP/s, samples/s, peak memory."""
    from tsfmicro.data import loso_splits, prepare, write_synthetic

    root = workdir / f"casme2_{subjects}x{clips}"
    if not root.exists():
        write_synthetic("casme2", root, subjects=subjects, clips_per_subject=clips, seed=0)
    size = PRESETS[preset].image_size
    data = prepare("casme2", root, "5class", crop_size=size, cache_dir=workdir / "cache", progress=False)
    fold = loso_splits(data.samples)[0]
    recipe = get_recipe("paper", "casme2", "5class", epochs=epochs, precision=precision)
    trainer = loso.FoldTrainer(loso.DeviceData(data, device), lambda: build_model(preset, num_classes=5), recipe,
                               size, seed=0)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    fold_store.train_fold(trainer, 0, fold, workdir / f"unit_{preset}_{precision}", "bench",
                          ckpt.CheckpointPolicy(10**6, 10**9),
                          keep_weights=False, run_id="bench")
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    flops = compute_flops(preset, "ts_late", 5, epochs, [len(fold.train_index)], [len(fold.test_index)])
    result = {"preset": preset, "precision": precision, "device": provenance.device_description(device),
              "epochs": epochs,
              "train_clips": len(fold.train_index), "test_clips": len(fold.test_index), "seconds": round(seconds, 2),
              "train_samples_per_s": round(len(fold.train_index) * epochs / seconds, 2),
              "flops_per_s": flops / seconds, "forward_gflops_per_clip": forward_flops(preset, "ts_late", 5) / 1e9}
    if device.type == "cuda":
        result["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    return result


def _record_throughput(device_type: str, preset: str, precision: str, threads: int, flops_per_s: float,
                       source: str, image_size: int | None = None) -> float:
    """Append a measurement to tsfmicro/engine/throughput.csv (the plan reads the latest per device
    type, preset, precision and input size) as training clips/s of the T-S late network; return that
    figure. ``image_size``: the input side when not the preset's."""
    clips_per_s = flops_per_s / (3 * forward_flops(preset, "ts_late", 5, {"image_size": image_size}))
    new = not THROUGHPUT_FILE.exists()
    with THROUGHPUT_FILE.open("a", encoding="utf-8", newline="") as handle:
        if new:
            handle.write("# Measured training throughput per device type, preset and precision: training\n"
                         "# clips/s of the T-S late network (FLOP/s / (3 x its forward FLOPs)); tsfmicro plan\n"
                         "# uses the latest row.\n"
                         "# Written by bench/bench_run.py.\n")
        writer = csv.DictWriter(handle, THROUGHPUT_COLUMNS)
        if new:
            writer.writeheader()
        writer.writerow({"device_type": device_type, "preset": preset, "precision": precision, "threads": threads,
                         "train_clips_per_s": f"{clips_per_s:.4g}", "machine": _machine(torch.device(device_type)),
                         "measured": provenance.now()[:10], "source": source, "image_size": image_size or ""})
    return clips_per_s


def _machine(device: torch.device | None = None) -> str:
    if device is not None and device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = provenance.device_description(torch.device("cpu"))["name"]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu}, {cores} cores"


# ----------------------------------------------------------------------------- gpu
def bench_gpu(args, workdir: Path) -> dict:
    if not torch.cuda.is_available():
        raise SystemExit("bench_run.py gpu: torch sees no CUDA device; run it on a machine with a GPU")
    device = torch.device("cuda")
    steps = {}
    for precision in args.precisions:  # two epochs of one fold: samples/s, peak memory, throughput for the plan
        steps[precision] = one_fold("paper", device, workdir, args.subjects, args.clips_per_subject, 2, precision)
        _record_throughput("cuda", "paper", precision, 0, steps[precision]["flops_per_s"],
                           "bench/bench_run.py gpu (one fold, 2 epochs)")
    params = {
        "data_source": "synthetic", "datasets": {"casme2": ["5class"]}, "preset": "paper", "recipe": "paper",
        "epochs": args.epochs, "seeds": [0], "device": "cuda", "crop_size": 224,
        "synthetic": {"subjects": args.subjects, "clips_per_subject": args.clips_per_subject, "seed": 0},
        "paths": {"synthetic": str(workdir / "synthetic"), "prepared": str(workdir / "prepared"),
                  "runs": str(workdir / "runs")},
    }
    params_file = workdir / "gpu.yaml"
    params_file.write_text(yaml.safe_dump(params))
    tsfmicro("plan", str(params_file))  # synthetic data and face crops, before timing
    loso_seconds = {}
    for precision in args.precisions:
        runs, chosen = workdir / f"runs_{precision}", ["-p", f"precision={precision}"]
        loso_seconds[f"{precision}_local"] = round(timed_run(str(params_file), runs / "local", chosen), 1)
        if args.packing:
            for per_gpu in (1, 2, 4):
                loso_seconds[f"{precision}_ray_{per_gpu}_per_gpu"] = round(timed_run(
                    str(params_file), runs / f"ray{per_gpu}", chosen, "--executor", "ray",
                    "--gpus-per-fold", str(1 / per_gpu)), 1)
    return {"machine": _machine(device), "one_fold": steps, "loso_subjects": args.subjects,
            "loso_epochs": args.epochs, "full_loso_seconds": loso_seconds}


if __name__ == "__main__":
    sys.exit(main())
