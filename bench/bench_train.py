"""Training throughput: our engine against a loop written the way the authors' code trains.

Both train the same model (``tsfmicro.model.build_model``) with the same recipe on the same
CASME II-sized synthetic set (26 subjects, ~250 clips) and evaluate the held-out subject after
every epoch, fold after fold:

* engine: tsfmicro.engine (crops held as uint8 tensors on the device, augmentation there,
  no DataLoader), in the precision given by ``--precision`` (fp32, the default, or bf16);
* authors' style: a torch DataLoader (batch 32, shuffle, num_workers=0, as in their scripts)
  whose dataset decodes the pre-cropped onset and apex JPEGs with PIL on every step, applies
  torchvision's Resize/ToTensor/Normalize, then flip/rotation/padded crop on the stacked pair,
  fp32, batches moved to the device one by one.

Reported: training samples/s (training steps only), seconds per fold (training + per-epoch
evaluation), the full-LOSO wall time (measured, or extrapolated from the folds run when
``--folds`` limits them), the speed-up, forward FLOPs per sample, achieved training FLOP/s
(3 x forward) and, on CUDA, its fraction of the GPU's dense bf16 peak.

    python bench/bench_train.py --preset paper --epochs 50             # a GPU: the full benchmark
    python bench/bench_train.py --preset tiny --epochs 3 --folds 3 --repeats 3   # a CPU: a short look

Results are printed and appended as one JSON line to bench/results/train.jsonl.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tsfmicro.data import loso_splits, prepare, write_synthetic  # noqa: E402
from tsfmicro.engine import checkpoint as ckpt  # noqa: E402
from tsfmicro.engine import get_recipe, loso, provenance, resolve_device  # noqa: E402
from tsfmicro.engine.augment import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402
from tsfmicro.model import PRESETS, build_model, count_flops  # noqa: E402

# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s, from the vendors' data sheets.
BF16_PEAK_TFLOPS = {"H100 SXM": 989, "H100 NVL": 835, "H100 PCIe": 756, "H100": 989, "H200": 989,
                    "A100": 312, "L40S": 362, "L4": 121, "A10": 125}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="paper", choices=list(PRESETS))
    parser.add_argument("--epochs", type=int, default=50, help="epochs per fold (paper recipe: 50)")
    parser.add_argument("--folds", type=int, help="run only the first N folds and extrapolate the full LOSO")
    parser.add_argument("--subjects", type=int, default=26)
    parser.add_argument("--clips-per-subject", type=int, default=10)
    parser.add_argument("--device", default="auto", choices=("auto", "cuda", "mps", "cpu"))
    parser.add_argument("--skip-authors", action="store_true", help="time the engine only")
    parser.add_argument("--repeats", type=int, default=1, help="time both loops N times, alternating; medians")
    parser.add_argument("--workdir", help="where to write the synthetic set and cache (default: a temporary folder)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"), help="the engine's precision")
    parser.add_argument("--peak-tflops", type=float, help="the device's dense bf16 peak, if not in the table")
    args = parser.parse_args()

    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(args.workdir or scratch)
        data = prepared_set(workdir, args.subjects, args.clips_per_subject, PRESETS[args.preset].image_size)
        folds = loso_splits(data.samples)
        measured = folds[: args.folds] if args.folds else folds
        recipe = get_recipe("paper", "casme2", "5class", fusion="ts_late", epochs=args.epochs,
                            precision=args.precision)
        print(f"{len(data.samples)} clips, {len(folds)} subjects; timing {len(measured)} folds x {args.epochs} "
              f"epochs of preset {args.preset} on {provenance.device_description(device)['name']}")

        # Alternating the two loops and taking medians keeps a shared machine's load swings
        # from landing on one side of the comparison.
        timings = {"engine": [], "authors_style": []}
        for _ in range(args.repeats):
            timings["engine"].append(time_engine(data, measured, recipe, args.preset, device, workdir))
            if not args.skip_authors:
                timings["authors_style"].append(time_authors_style(data, measured, recipe, args.preset, device))
        results = {name: _median(runs) for name, runs in timings.items() if runs}
    report = summarize(results, args, device, data, folds, measured)
    print(json.dumps(report, indent=2))
    output = ROOT / "bench" / "results" / "train.jsonl"
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(report) + "\n")
    return 0


def prepared_set(workdir: Path, subjects: int, clips: int, crop_size: int):
    root = workdir / f"synthetic_casme2_{subjects}x{clips}"
    if not root.exists():
        write_synthetic("casme2", root, subjects=subjects, clips_per_subject=clips, seed=0)
    return prepare("casme2", root, "5class", crop_size=crop_size, cache_dir=workdir / "cache", progress=False)


def time_engine(data, folds, recipe, preset, device, workdir: Path) -> dict:
    trainer = loso.FoldTrainer(
        data=loso.DeviceData(data, device),
        build_model=lambda: build_model(preset, num_classes=len(data.class_names)),
        recipe=recipe,
        image_size=PRESETS[preset].image_size,
        seed=0,
    )
    timed = _TimedTraining(trainer)
    with tempfile.TemporaryDirectory(dir=workdir) as scratch:  # a fresh checkpoint: nothing to resume
        start = time.perf_counter()
        loso.train_loso(trainer, folds, "bench", Path(scratch) / "checkpoint.pt", ckpt.CheckpointPolicy(), None,
                        progress=False)
        _synchronize(device)
        wall = time.perf_counter() - start
    return timed.result(wall, folds, recipe)


class _TimedTraining:
    """Wraps the trainer's train_epoch to add up the time spent in training steps."""

    def __init__(self, trainer: loso.FoldTrainer):
        self.seconds = 0.0
        original = trainer.train_epoch

        def timed_epoch(*args, **kwargs):
            _synchronize(trainer.data.device)
            start = time.perf_counter()
            result = original(*args, **kwargs)  # ends with .item(): the device is done
            self.seconds += time.perf_counter() - start
            return result

        trainer.train_epoch = timed_epoch

    def result(self, wall: float, folds, recipe) -> dict:
        samples = sum(len(f.train_index) for f in folds) * recipe.epochs
        return {"train_samples_per_s": samples / self.seconds, "seconds_per_fold": wall / len(folds),
                "train_seconds": self.seconds, "wall_seconds": wall}


class _PairFromJpegs(torch.utils.data.Dataset):
    """The authors' data path: decode two JPEGs per item, transform each, then augment the pair."""

    def __init__(self, samples, image_size: int, recipe, train: bool):
        self.onset_paths = samples["precropped_onset_path"].fillna(samples["onset_path"]).tolist()
        self.apex_paths = samples["precropped_apex_path"].fillna(samples["apex_path"]).tolist()
        self.labels = samples["class_index"].tolist()
        self.prepare = transforms.Compose([transforms.Resize((image_size, image_size)), transforms.ToTensor(),
                                           transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
        padding = recipe.padding_at(image_size)
        self.augment = transforms.Compose([
            transforms.RandomHorizontalFlip(recipe.flip_probability),
            transforms.RandomRotation(recipe.rotation_degrees),
            transforms.RandomCrop(image_size, padding=padding),
        ]) if train else None

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        onset = self.prepare(Image.open(self.onset_paths[index]).convert("RGB"))
        apex = self.prepare(Image.open(self.apex_paths[index]).convert("RGB"))
        pair = torch.cat([onset, apex])  # (6, S, S): one random transform for both frames
        if self.augment is not None:
            pair = self.augment(pair)
        return pair[:3], pair[3:], self.labels[index]


def time_authors_style(data, folds, recipe, preset, device) -> dict:
    image_size = PRESETS[preset].image_size
    train_seconds = 0.0
    start = time.perf_counter()
    for fold_index, fold in enumerate(folds):
        torch.manual_seed(fold_index)
        model = build_model(preset, num_classes=len(data.class_names)).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
        scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=recipe.lr_gamma)
        train_set = _PairFromJpegs(data.samples.iloc[fold.train_index], image_size, recipe, train=True)
        test_set = _PairFromJpegs(data.samples.iloc[fold.test_index], image_size, recipe, train=False)
        train_loader = torch.utils.data.DataLoader(train_set, batch_size=recipe.batch_size, shuffle=True,
                                                   num_workers=0, pin_memory=device.type == "cuda")
        test_loader = torch.utils.data.DataLoader(test_set, batch_size=recipe.batch_size, num_workers=0)
        for epoch in range(recipe.epochs):
            _synchronize(device)
            epoch_start = time.perf_counter()
            model.train()
            correct = 0
            for onset, apex, labels in train_loader:
                onset, apex, labels = onset.to(device), apex.to(device), labels.to(device)
                logits = model(onset, apex)
                loss = torch.nn.functional.cross_entropy(logits, labels)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                correct += (logits.argmax(1) == labels).sum().item()  # per-step sync, as theirs
            train_seconds += time.perf_counter() - epoch_start
            if epoch < recipe.decay_epochs:
                scheduler.step()
            model.eval()
            with torch.no_grad():
                for onset, apex, labels in test_loader:
                    model(onset.to(device), apex.to(device)).argmax(1).cpu()
    _synchronize(device)
    wall = time.perf_counter() - start
    samples = sum(len(f.train_index) for f in folds) * recipe.epochs
    return {"train_samples_per_s": samples / train_seconds, "seconds_per_fold": wall / len(folds),
            "train_seconds": train_seconds, "wall_seconds": wall}


def summarize(results: dict, args, device, data, folds, measured) -> dict:
    model = build_model(args.preset, num_classes=len(data.class_names)).to(device)
    forward_flops = count_flops(model)
    engine = results["engine"]
    training_flops_per_s = 3 * forward_flops * engine["train_samples_per_s"]  # backward ~ 2 x forward
    report = {
        "date": provenance.now(),
        "git": provenance.git_state(),
        "device": provenance.device_description(device),
        "preset": args.preset,
        "epochs": args.epochs,
        "clips": len(data.samples),
        "subjects": len(folds),
        "folds_timed": len(measured),
        "repeats": args.repeats,
        "forward_gflops_per_sample": forward_flops / 1e9,
        "engine_training_tflops_per_s": training_flops_per_s / 1e12,
    }
    for name, timing in results.items():
        report[name] = {**{k: round(v, 3) for k, v in timing.items()},
                        "full_loso_seconds": round(timing["seconds_per_fold"] * len(folds), 1)}
    if "authors_style" in results:
        authors = results["authors_style"]
        report["speedup_train_samples_per_s"] = engine["train_samples_per_s"] / authors["train_samples_per_s"]
        report["speedup_wall"] = authors["wall_seconds"] / engine["wall_seconds"]
    if device.type == "cuda":
        peak = args.peak_tflops or _bf16_peak(torch.cuda.get_device_name(device))
        report["bf16_peak_tflops"] = peak
        report["fraction_of_bf16_peak"] = training_flops_per_s / 1e12 / peak if peak else None
    return report


def _median(runs: list[dict]) -> dict:
    return {key: float(np.median([run[key] for run in runs])) for key in runs[0]}


def _bf16_peak(name: str) -> float | None:
    matches = [key for key in BF16_PEAK_TFLOPS if key in name]
    return BF16_PEAK_TFLOPS[max(matches, key=len)] if matches else None


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


if __name__ == "__main__":
    raise SystemExit(main())
