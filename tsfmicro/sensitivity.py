"""Onset and apex sensitivity: how much the scores depend on the annotated frames being exact.

Three questions, each answered from finished runs without training anything here:

1. Shifted annotations (:func:`shift_predictions`, :func:`shift_scores`): the fold models of a
   trained run (its first seed, whose final weights the engine keeps; protocol ``fixed``, the
   last epoch) tested on their own held-out clips with the apex, or separately the onset, moved
   by a percentage of the clip (tsfmicro.data.moved_frames: the rounding and clamping rules).
   Each fold's clips are evaluated in the batches training evaluated them in, so a shift of 0
   reproduces the run's own predictions exactly (on the device type it was trained on).
   UF1/UAR per shift with a subject-bootstrap interval, and the change from shift 0 with a
   paired subject bootstrap (the same resampled subjects for both).
2. Automatic apex (:func:`apex_difference`, :func:`apex_distances`): a run trained and tested
   with ``apex: automatic`` against the run with the annotated apex (same seeds), and how far
   the automatic apex lies from the annotated one.
3. Clips whose annotated apex is the onset (:func:`apex_onset_predictions`): the temporal
   branch sees an all-zero difference frame; they stay in the test set and are scored like
   every other clip.

The shifted predictions are kept in the run folder (``evaluations/shifts_<key>.csv``), so a
notebook opened again only reads them.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from tsfmicro import _io, metrics
from tsfmicro.data.moved_frames import SHIFT_KINDS
from tsfmicro.results import Run

EVALUATIONS = "evaluations"
EVALUATION_VERSION = 1  # bump when the evaluation changes, so kept predictions are not reused
EXCLUDED_COLUMNS = ["kind", "dataset", "subject", "clip_id", "reason"]


@dataclass
class ShiftEvaluation:
    """``predictions``: one row per (kind, percent, clip): kind, percent, seed, fold, subject,
    clip_id, sample_index, true, pred, steps, frame, moved, prob_<class>. ``excluded``: the clips
    left out of every shift of a kind (a shifted frame missing or unreadable), with the reason."""

    predictions: pd.DataFrame
    excluded: pd.DataFrame
    path: Path | None = None


def shift_predictions(run: Run, data, device: str | None = None) -> ShiftEvaluation:
    """Predictions of ``run``'s fold models (first seed, protocol fixed) on the shifted inputs of
    ``data`` (``prepare(..., shifts=...)`` of the run's dataset and task), read from the run
    folder when they were computed before. ``device``: default the run's device type when this
    machine has it, else the CPU."""
    import torch

    if data.shifted is None:
        raise ValueError("the prepared data holds no shifted frames: prepare(..., shifts=[...])")
    _check_alignment(run, first_seed_predictions(run), data)
    device = torch.device(device or _run_device(run))
    key = _hash({"version": EVALUATION_VERSION, "run": run.config.get("key"), "frames": data.shifted.cache_key,
                 "percents": list(data.shifted.percents), "data": data.cache_key, "task": data.task,
                 "clips": list(data.samples["clip_id"].astype(str)), "device": device.type})
    folder = Path(run.path) / EVALUATIONS
    stored, excluded_file = folder / f"shifts_{key}.csv", folder / f"shifts_{key}_excluded.csv"
    if stored.is_file() and excluded_file.is_file():
        return ShiftEvaluation(pd.read_csv(stored, dtype={"fold": str, "subject": str, "clip_id": str}),
                               pd.read_csv(excluded_file, dtype={"subject": str, "clip_id": str}), stored)
    predictions, excluded = _evaluate_shifts(run, data, device)
    _io.write_csv(excluded_file, excluded)
    _io.write_csv(stored, predictions)  # last: its presence marks the evaluation done
    return ShiftEvaluation(predictions, excluded, stored)


def _run_device(run: Run) -> str:
    import torch

    wanted = run.config.get("resolved", {}).get("device_type", "cpu")
    if wanted == "cuda" and torch.cuda.is_available():
        return "cuda"
    if wanted == "mps" and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def first_seed_predictions(run: Run) -> pd.DataFrame:
    """The run's predictions of its first seed (the one whose fold weights are kept)."""
    seed = int(run.config["seeds"][0])
    return run.predictions[run.predictions["seed"] == seed].reset_index(drop=True)


def _evaluate_shifts(run: Run, data, device) -> tuple[pd.DataFrame, pd.DataFrame]:
    import torch

    from tsfmicro.engine import loso
    from tsfmicro.engine.recipes import Recipe

    table = first_seed_predictions(run)
    shifted = data.shifted
    resolved = run.config["resolved"]
    recipe, image_size = Recipe(**resolved["recipe"]), int(resolved["image_size"])
    usable = {kind: shifted.usable(kind) for kind in SHIFT_KINDS}
    excluded = [dict(kind=kind, dataset=data.samples.loc[sample, "dataset"], subject=data.samples.loc[sample, "subject"],
                     clip_id=data.samples.loc[sample, "clip_id"], reason=reason)
                for kind in SHIFT_KINDS
                for sample, reason in _first_reasons(shifted.table, kind, usable[kind], table["sample_index"])]
    for kind in SHIFT_KINDS:
        if not usable[kind][table["sample_index"].to_numpy(dtype=int)].any():
            raise ValueError(f"{data.dataset} {data.task}: no clip of run {run.path} has an input at every {kind} "
                             f"shift ({', '.join(f'{p:+g} %' for p in shifted.percents)}): e.g. "
                             f"{excluded[0]['reason'] if excluded else 'no frame'}")
    names = run.class_names
    parts = []
    for fold, rows in table.groupby("fold", sort=False):  # test clips in the order training evaluated them
        model = run.fold_model(rows["subject"].iloc[0]).to(device)
        index = rows["sample_index"].to_numpy(dtype=int)
        computed = {}  # (onset frames, apex frames) of the fold's clips -> probabilities: equal inputs, once
        for kind in SHIFT_KINDS:
            keep = usable[kind][index]
            for percent in shifted.percents:
                where = shifted.rows(kind, percent).set_index("sample").loc[index]
                frames = tuple(where["frame"].where(where["reason"] == "", -1))
                annotated = tuple(data.samples[("apex" if kind == "onset" else "onset") + "_frame"].to_numpy()[index])
                inputs = (frames, annotated) if kind == "onset" else (annotated, frames)
                if inputs not in computed:
                    onset, apex = shifted.inputs(kind, percent, data.onset, data.apex, rows=index)
                    subset = replace(data, samples=data.samples.iloc[index].reset_index(drop=True), onset=onset,
                                     apex=apex, train_onset=None, train_apex=None, shifted=None)
                    trainer = loso.FoldTrainer(data=loso.DeviceData(subset, device), build_model=None, recipe=recipe,
                                               image_size=image_size, seed=0)
                    computed[inputs] = trainer.predict(model, torch.arange(len(index)))[0].numpy()
                probabilities = computed[inputs]
                frame = pd.DataFrame({
                    "kind": kind, "percent": percent, "seed": rows["seed"].to_numpy(), "fold": str(fold),
                    "subject": rows["subject"].to_numpy(), "clip_id": rows["clip_id"].to_numpy(),
                    "sample_index": index, "true": rows["true"].to_numpy(), "pred": probabilities.argmax(axis=1),
                    "steps": where["steps"].to_numpy(), "frame": where["frame"].to_numpy(),
                    "moved": where["moved"].to_numpy(),
                })
                for k, name in enumerate(names):
                    frame[f"prob_{name}"] = probabilities[:, k]
                parts.append(frame[keep])
    predictions = pd.concat(parts, ignore_index=True)
    order = {kind: position for position, kind in enumerate(SHIFT_KINDS)}
    predictions = predictions.sort_values(["kind", "percent"], key=lambda c: c.map(order) if c.name == "kind" else c,
                                          kind="stable").reset_index(drop=True)
    return predictions, pd.DataFrame(excluded, columns=EXCLUDED_COLUMNS)


def _first_reasons(table: pd.DataFrame, kind: str, usable: np.ndarray, samples: pd.Series):
    """(sample, reason) of each clip of the run left out of the ``kind`` shifts."""
    part = table[(table["kind"] == kind) & (table["reason"] != "")]
    wanted = set(samples.astype(int))
    for sample, rows in part.groupby("sample", sort=True):
        if int(sample) in wanted and not usable[int(sample)]:
            yield int(sample), "; ".join(rows["reason"])


def _check_alignment(run: Run, table: pd.DataFrame, data) -> None:
    index = table["sample_index"].to_numpy(dtype=int)
    if index.max(initial=-1) >= len(data.samples):
        raise ValueError(f"the prepared data ({len(data.samples)} clips) does not match run {run.path}")
    rows = data.samples.iloc[index]
    mismatched = (rows["clip_id"].astype(str).to_numpy() != table["clip_id"].astype(str).to_numpy()) | \
                 (rows["subject"].astype(str).to_numpy() != table["subject"].astype(str).to_numpy())
    if mismatched.any():
        first = table[mismatched].iloc[0]
        raise ValueError(f"the prepared data does not match run {run.path}: its clip {first['subject']} "
                         f"{first['clip_id']} is another clip there; prepare the run's dataset and task with "
                         "the run's crop size, errata choice and annotated apex")


def zero_shift_differences(evaluation: ShiftEvaluation, run: Run) -> int:
    """Clips whose prediction at shift 0 differs from the run's own (protocol fixed); 0 when the
    evaluation reproduces the run."""
    table = first_seed_predictions(run).set_index("clip_id")
    zero = evaluation.predictions[evaluation.predictions["percent"] == 0]
    return int((zero["pred"].to_numpy() != table.loc[zero["clip_id"], "pred_fixed"].to_numpy()).sum())


def evaluation_note(evaluation: ShiftEvaluation, run: Run) -> str:
    """Whether shift 0 reproduced the run, and which clips were left out, in words."""
    zero = evaluation.predictions[evaluation.predictions["percent"] == 0].drop_duplicates("clip_id")
    differing = zero_shift_differences(evaluation, run)
    text = (f"At shift 0 the evaluation reproduces the run's own fixed-protocol predictions for all {len(zero)} "
            "clips." if differing == 0 else
            f"At shift 0 the evaluation differs from the run's own predictions for {differing} of {len(zero)} "
            "clips (another device or thread count than training; the scores below are the evaluation's).")
    for kind, rows in evaluation.excluded.groupby("kind", sort=False):
        text += (f" {len(rows)} clip(s) have no input at some {kind} shift and are left out of every {kind} shift "
                 f"(e.g. {rows['subject'].iloc[0]} {rows['clip_id'].iloc[0]}: {rows['reason'].iloc[0]}).")
    return text


def synthetic_caveat() -> str:
    return ("These numbers come from SYNTHETIC data: its clips are a few frames long and its movement peaks at "
            "the annotated apex by construction, so they show the method running, not how sensitive TSFmicro "
            "is to real annotations.")


# ----------------------------------------------------------------------------- scores
def shift_scores(predictions: pd.DataFrame, num_classes: int, resamples: int = 1000) -> pd.DataFrame:
    """One row per (kind, percent): clips, clips whose frame moved, the median frames moved,
    UF1/UAR with their subject-bootstrap 95 % interval, and the change of each from shift 0
    with a paired subject-bootstrap 95 % interval (fractions)."""
    rows = []
    for kind, part in predictions.groupby("kind", sort=False):
        base = part[part["percent"] == 0].set_index("clip_id")
        for percent, shift in part.groupby("percent", sort=True):
            shift = shift.set_index("clip_id").loc[base.index]
            truth, groups = base["true"], base["subject"]
            row = {"kind": kind, "percent": float(percent), "clips": len(shift),
                   "clips_moved": int((shift["moved"] != 0).sum()),
                   "median_frames_moved": float(shift["moved"].abs().median())}
            whole = metrics.scores(truth, shift["pred"], num_classes)
            interval = metrics.bootstrap_interval(truth, shift["pred"], groups, num_classes, resamples=resamples)
            change = metrics.paired_bootstrap_difference(truth, base["pred"], shift["pred"], groups, num_classes,
                                                         resamples=resamples)
            for name in ("uf1", "uar"):
                row.update({name: whole[name], f"{name}_low": interval[name][0], f"{name}_high": interval[name][1],
                            f"delta_{name}": change[name][0], f"delta_{name}_low": change[name][1],
                            f"delta_{name}_high": change[name][2]})
            rows.append(row)
    return pd.DataFrame(rows)


def shift_sentence(scores: pd.DataFrame, dataset: str, task: str) -> str:
    """The conclusion of the shift experiment, from its numbers."""
    sentences = []
    for kind in SHIFT_KINDS:
        part = scores[(scores["kind"] == kind) & (scores["percent"] != 0) & (scores["clips_moved"] > 0)]
        zero = scores[(scores["kind"] == kind) & (scores["percent"] == 0)]
        if zero.empty:
            continue
        base = 100 * zero["uf1"].iloc[0]
        if part.empty:
            sentences.append(f"No {kind} shift moved any clip (every moved frame was clamped to the clip).")
            continue
        worst = part.loc[part["delta_uf1"].idxmin()]
        outside = worst["delta_uf1_high"] < 0
        if worst["delta_uf1"] >= 0:
            sentences.append(f"No {kind} shift of {_percent_range(part)} of the onset-offset length lowers UF1 "
                             f"({base:.1f} % with the annotated {kind}; changes "
                             f"{100 * part['delta_uf1'].min():+.1f} to {100 * part['delta_uf1'].max():+.1f} pp).")
            continue
        low, high = 100 * part["delta_uf1"].min(), 100 * part["delta_uf1"].max()
        change = f"by {low:+.1f} pp at every shift" if f"{low:+.1f}" == f"{high:+.1f}" else \
            f"by {low:+.1f} to {high:+.1f} pp"
        frames = worst["median_frames_moved"]
        sentences.append(
            f"Moving the {kind} by {_percent_range(part)} of the onset-offset length changes UF1 {change} "
            f"(UF1 {base:.1f} % with the annotated {kind}); the largest drop, at {worst['percent']:+g} % "
            f"(median {frames:g} frame{'' if frames == 1 else 's'}), "
            + ("lies below zero in its paired subject-bootstrap interval "
               f"[{100 * worst['delta_uf1_low']:+.1f}, {100 * worst['delta_uf1_high']:+.1f}] pp."
               if outside else
               f"is within the noise of these clips: its paired subject-bootstrap interval "
               f"[{100 * worst['delta_uf1_low']:+.1f}, {100 * worst['delta_uf1_high']:+.1f}] pp includes zero."))
    return f"On {dataset} {task}: " + " ".join(sentences) if sentences else f"No shifts were evaluated on {dataset} {task}."


def _percent_range(part: pd.DataFrame) -> str:
    low, high = part["percent"].min(), part["percent"].max()
    return f"{low:+g} %" if low == high else f"{low:+g} % to {high:+g} %"


# ----------------------------------------------------------------------------- automatic apex
def apex_difference(annotated: Run, automatic: Run, protocol: str = "fixed",
                    resamples: int = 1000) -> pd.DataFrame:
    """Automatic minus annotated apex, per score: with one seed the pooled difference and its
    paired subject-bootstrap 95 % interval; with several, the mean of the per-seed differences
    and its t interval. Both runs must cover the same seeds and clips."""
    column = f"pred_{protocol}"
    num_classes = len(annotated.class_names)
    seeds = sorted(set(annotated.predictions["seed"]) & set(automatic.predictions["seed"]))
    if not seeds:
        raise ValueError(f"runs {annotated.path} and {automatic.path} share no seed")
    per_seed = []
    for seed in seeds:
        a = annotated.predictions[annotated.predictions["seed"] == seed].set_index("clip_id")
        b = automatic.predictions[automatic.predictions["seed"] == seed].set_index("clip_id")
        if set(a.index) != set(b.index):
            raise ValueError(f"runs {annotated.path} and {automatic.path} test other clips (seed {seed})")
        b = b.loc[a.index]
        per_seed.append(metrics.paired_bootstrap_difference(a["true"], a[column], b[column], a["subject"],
                                                            num_classes, resamples=resamples))
    rows = []
    for name in metrics.METRICS:
        if len(seeds) == 1:
            difference, low, high = per_seed[0][name]
            interval = "paired subject bootstrap 95%"
        else:
            difference, low, high = metrics.t_interval([entry[name][0] for entry in per_seed])
            interval = f"t over {len(seeds)} seeds 95%"
        rows.append({"metric": name, "difference": difference, "low": low, "high": high, "interval": interval})
    return pd.DataFrame(rows)


def apex_distances(data) -> pd.DataFrame:
    """One row per clip of ``data`` (``prepare(..., apex="automatic")``): its onset, annotated and
    automatic apex, offset, and the distance automatic - annotated in frames and in % of the
    onset-offset length."""
    if "annotated_apex_frame" not in data.samples:
        raise ValueError("the prepared data has no automatic apex: prepare(..., apex='automatic')")
    samples = data.samples
    length = (samples["offset_frame"] - samples["onset_frame"]).astype(float)
    distance = (samples["apex_frame"] - samples["annotated_apex_frame"]).astype(int)
    return pd.DataFrame({
        "dataset": samples["dataset"], "subject": samples["subject"].astype(str),
        "clip_id": samples["clip_id"].astype(str), "onset_frame": samples["onset_frame"],
        "annotated_apex_frame": samples["annotated_apex_frame"], "automatic_apex_frame": samples["apex_frame"],
        "offset_frame": samples["offset_frame"], "distance_frames": distance,
        "distance_percent": np.where(length > 0, 100 * distance / length.where(length > 0, 1), 0.0),
        "annotated_apex_is_onset": samples["annotated_apex_frame"] == samples["onset_frame"],
    })


def automatic_apex_sentence(difference: pd.DataFrame, distances: pd.DataFrame, annotated_uf1: float,
                            automatic_uf1: float) -> str:
    """The conclusion of the automatic-apex comparison, from its numbers."""
    uf1 = difference.set_index("metric").loc["uf1"]
    same = int((distances["distance_frames"] == 0).sum())
    absolute = distances["distance_frames"].abs()
    verdict = ("lower" if uf1["high"] < 0 else "higher" if uf1["low"] > 0 else "not distinguishable from it")
    return (f"Trained and tested with the automatic apex, UF1 is {100 * automatic_uf1:.1f} % against "
            f"{100 * annotated_uf1:.1f} % with the annotated apex (difference {100 * uf1['difference']:+.1f} pp, "
            f"{uf1['interval']} [{100 * uf1['low']:+.1f}, {100 * uf1['high']:+.1f}]): "
            + (f"{verdict}." if verdict.startswith("not") else f"{verdict} than with the annotated apex.")
            + f" The automatic apex is the annotated frame for {same} of {len(distances)} clips; "
            f"the median distance is {absolute.median():g} frames "
            f"({distances['distance_percent'].abs().median():.0f} % of the clip), the largest {absolute.max():g}.")


# ----------------------------------------------------------------------------- apex = onset
def apex_onset_predictions(run: Run, data, protocol: str = "fixed") -> pd.DataFrame:
    """The run's predictions (all seeds) of the clips whose annotated apex is the onset."""
    flagged = data.samples.loc[data.samples["apex_is_onset"].astype(bool), ["subject", "clip_id"]].astype(str)
    table = run.predictions.merge(flagged, on=["subject", "clip_id"])
    return pd.DataFrame({
        "seed": table["seed"], "subject": table["subject"], "clip_id": table["clip_id"],
        "true": table["true_label"], "predicted": table[f"pred_{protocol}_label"],
        "correct": table["true"] == table[f"pred_{protocol}"],
    })


def apex_onset_sentence(counts: dict[str, int], predictions: dict[str, pd.DataFrame]) -> str:
    """How many clips have apex = onset per dataset/task and how the runs score them.
    ``counts``: "dataset task" -> clips; ``predictions``: "dataset task" -> apex_onset_predictions."""
    total = sum(counts.values())
    if total == 0:
        return ("No clip of these datasets has its annotated apex on the onset frame: the temporal branch "
                "always sees a movement.")
    parts = []
    for name, count in counts.items():
        if not count:
            continue
        rows = predictions.get(name, pd.DataFrame())
        if rows.empty:
            parts.append(f"{name}: {count} clip(s), not in the runs shown")
            continue
        top = rows["predicted"].value_counts()
        parts.append(f"{name}: {count} clip(s), {int(rows['correct'].sum())} of {len(rows)} predictions correct, "
                     f"most often predicted as {top.index[0]} ({top.iloc[0]} of {len(rows)})")
    return (f"{total} clip(s) have their annotated apex on the onset frame, so the temporal branch sees an "
            "all-zero difference frame; they stay in the test sets and count in UF1 and UAR like every other "
            "clip. " + "; ".join(parts) + ".")


def apex_onset_table(predictions: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """:func:`apex_onset_predictions` of several runs ("dataset task" -> table) stacked, with a
    ``run`` column first."""
    parts = [table.assign(run=name) for name, table in predictions.items() if len(table)]
    if not parts:
        return pd.DataFrame(columns=["run", "seed", "subject", "clip_id", "true", "predicted", "correct"])
    table = pd.concat(parts, ignore_index=True)
    return table[["run", *[c for c in table.columns if c != "run"]]]


def _hash(document: dict) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()[:12]

