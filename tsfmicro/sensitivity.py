"""Onset and apex sensitivity, for display: how much the scores depend on the annotated frames
being exact. Tables and sentences only; the fold models run in tsfmicro.engine.evaluate.

Three questions, each answered from finished runs without training anything here:

1. Shifted annotations (:func:`shift_scores`, :func:`shift_sentence`, :func:`evaluation_note`):
   the predictions of a run's fold models with the apex, or separately the onset, moved by a
   percentage of the clip (tsfmicro.engine.evaluate.shift_predictions; shift 0 reproduces the
   run's own predictions). UF1/UAR per shift with a subject-bootstrap interval, and the change
   from shift 0 with a paired subject bootstrap (the same resampled subjects for both).
2. Automatic apex (:func:`apex_difference`, :func:`apex_distances`): a run trained and tested
   with ``apex: automatic`` against the run with the annotated apex (same seeds), and how far
   the automatic apex lies from the annotated one.
3. Clips whose annotated apex is the onset (:func:`apex_onset_predictions`): the temporal
   branch sees an all-zero difference frame; they stay in the test set and are scored like
   every other clip.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from tsfmicro import metrics
from tsfmicro.data.moved_frames import SHIFT_KINDS
from tsfmicro.results import Run, first_seed_predictions


def zero_shift_differences(evaluation, run: Run) -> int:
    """Clips whose prediction at shift 0 differs from the run's own (protocol fixed); 0 when the
    evaluation (tsfmicro.engine.evaluate.ShiftEvaluation) reproduces the run."""
    table = first_seed_predictions(run).set_index("clip_id")
    zero = evaluation.predictions[evaluation.predictions["percent"] == 0]
    return int((zero["pred"].to_numpy() != table.loc[zero["clip_id"], "pred_fixed"].to_numpy()).sum())


def evaluation_note(evaluation, run: Run) -> str:
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


def movement_kept(predictions: pd.DataFrame, manifest: pd.DataFrame | None) -> pd.DataFrame | None:
    """Synthetic data only: per (kind, percent) of shifted-annotation ``predictions`` (their
    ``moved`` frames), the mean over clips of the planted movement the model sees between the
    onset and apex it is given, as a share of what the annotated pair shows: profile(apex') -
    profile(onset') with the writer's profile (tsfmicro.data.synthetic.movement_profile: 0 at the
    onset, 1 at the apex); the warp is about linear in its strength at these sizes, so the
    apex - onset difference scales with it. ``manifest``: the writer's (tsfmicro.localisation.
    read_manifest); None (real data): None. Clips without a manifest row (a hand-edited synthetic
    folder: the writer records every clip) are left out of the mean and counted in
    ``clips_without_manifest``, which the shift table shows beside it."""
    if manifest is None:
        return None
    from tsfmicro.data.synthetic import movement_profile

    planted = {(str(row["subject"]), str(row["clip_id"])): row for row in manifest.to_dict("records")}
    rows = []
    for (kind, percent), part in predictions.groupby(["kind", "percent"], sort=True):
        kept, missing = [], 0
        for row in part.drop_duplicates(["subject", "clip_id"]).to_dict("records"):
            clip = planted.get((str(row["subject"]).split("/")[-1], str(row["clip_id"])))
            if clip is None:
                missing += 1
                continue
            apex, last = int(clip["apex"]) - int(clip["onset"]), int(clip["n_frames"]) - 1
            onset = int(row["moved"]) if kind == "onset" else 0
            apex = apex + int(row["moved"]) if kind == "apex" else apex
            profile = [movement_profile(min(max(i, 0), last), int(clip["apex_index"]), last + 1) for i in (onset, apex)]
            kept.append(profile[1] - profile[0])
        rows.append({"kind": kind, "percent": float(percent), "movement_kept": float(np.mean(kept)) if kept else np.nan,
                     "clips_without_manifest": missing})
    return pd.DataFrame(rows, columns=["kind", "percent", "movement_kept", "clips_without_manifest"])


def moved_shifts(scores: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`shift_scores` worth showing: shift 0 and every shift that moved at
    least one clip (a shift that moves none repeats shift 0 and would read as "no effect")."""
    return scores[(scores["percent"] == 0) | (scores["clips_moved"] > 0)].reset_index(drop=True)


def left_out_shifts(scores: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`shift_scores` that moved no clip (left out of the table and figure)."""
    return scores[(scores["percent"] != 0) & (scores["clips_moved"] == 0)].reset_index(drop=True)


def _clamped_because(kind: str, percent: float) -> str:
    if kind == "onset" and percent < 0:
        return "an onset moved earlier is clamped back to the clip's first frame, which is the onset"
    if kind == "apex" and percent > 0:
        return "an apex moved later is clamped to the offset, where these clips' apex already is"
    return "every moved frame was clamped back to the annotated one"


def left_out_sentence(scores: pd.DataFrame) -> str:
    """Which shifts moved no clip and why, in words ("" when every shift moved a clip)."""
    parts = []
    left_out = left_out_shifts(scores)
    for _, rows in left_out.groupby([left_out["kind"], left_out["percent"] < 0], sort=False):
        kind = rows["kind"].iloc[0]
        listed = ", ".join(f"{p:+g} %" for p in rows["percent"])
        parts.append(f"the {kind} shift{'s' if len(rows) > 1 else ''} {listed} moved none of the "
                     f"{int(rows['clips'].iloc[0])} clips ({_clamped_because(kind, rows['percent'].iloc[0])})")
    if not parts:
        return ""
    return "Left out of the table and figure: " + "; ".join(parts) + "."


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
