"""Scores of spotted intervals in long videos: the MEGC2020 spotting F1 and the spot-then-recognise
score (STRS), written from their definitions (shared/reference/long_videos.md, sections 2 and 3),
with the public scorers' bugs fixed; ``original_*`` give the public scorers' values beside ours.

Tables (pandas DataFrames), one row per interval: ``subject``, ``video``, ``onset``, ``offset``
(inclusive frame numbers), and where needed ``kind`` ("micro"/"macro") and ``emotion``.

Our rules (each a fix of a bug of a public scorer; ``compare_strs`` / ``compare_megc2020`` show
both values so a reader can see where they differ):

* IoU of the inclusive frame sets onset..offset: disjoint intervals score 0 (the MEGC2020 baseline's
  formula gives them an intersection of 1 frame) and a 1-frame interval can match (it scores 0 there).
* One-to-one matching: a prediction is paired with at most one ground truth and a ground truth with
  at most one prediction; among all such pairings with IoU >= 0.5 the one with the most pairs (then
  the largest summed IoU) is taken. The MEGC2020 baseline counts a ground truth hit by any prediction
  (one prediction over two ground truths gives 2 TP; FP = predictions - TP); the STRS scorer pairs
  greedily in file order, so one prediction may take several ground truths.
* Every video of either table is scored: a subject (or video) without predictions counts its ground
  truths as misses (the STRS scorer takes its subjects from the predictions and skips the others),
  and a prediction in a video without ground truth is a false positive (the STRS scorer takes its
  videos from the ground truth and ignores the others).
* The analysis F1 (STRS): per emotion one-vs-rest precision and recall over the spotted pairs; an
  emotion whose pairs all agree on it (perfect) scores 1, where the STRS scorer's 1x1 confusion
  matrix makes it 0. Empty denominators give 0, as the scorer's. Analysis F1 = 2PR/(P+R) of the
  mean precision P and mean recall R (the STRS definition); ``uf1`` is the mean per-emotion F1 and
  ``uar`` the mean recall (the scorer reports the mean precision under that name).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

IOU_THRESHOLD = 0.5
KINDS = ("micro", "macro")
# MEGC2020 length filter on predictions, n = offset - onset + 1 frames: kind -> (min, max or None)
# (long_videos.md section 2: MDMD evaluation_all_p.py:14-25). Ground truths are not filtered.
MEGC2020_LENGTHS = {
    "casme_sq": {"micro": (7, 16), "macro": (17, None)},
    "samm_lv": {"micro": (47, 105), "macro": (106, None)},
}


# ----------------------------------------------------------------------------- intervals
def iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    """Intersection over union of the inclusive frame sets a[0]..a[1] and b[0]..b[1]."""
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]) + 1)
    union = (a[1] - a[0] + 1) + (b[1] - b[0] + 1) - inter
    return inter / union if union > 0 else 0.0


def megc2020_iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    """The MEGC2020 baseline's IoU, bugs kept (for ``original_megc2020`` only): 0 when either
    interval has end <= start; disjoint intervals get an intersection of 1 frame."""
    if a[1] <= a[0] or b[1] <= b[0]:
        return 0.0
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0])) + 1
    union = (a[1] - a[0] + 1) + (b[1] - b[0] + 1) - inter
    return inter / union


def one_to_one(predictions: list[tuple[int, int]], truths: list[tuple[int, int]],
               threshold: float = IOU_THRESHOLD) -> list[tuple[int, int, float]]:
    """(prediction index, truth index, IoU) of the pairing with the most pairs of IoU >= threshold,
    then the largest summed IoU; each interval in at most one pair."""
    if not predictions or not truths:
        return []
    scores = np.array([[iou(p, t) for t in truths] for p in predictions])
    eligible = scores >= threshold
    # an eligible pair weighs big + IoU with big > the most summed IoU one pair fewer could gain,
    # so the assignment maximises the number of pairs first, then their summed IoU
    big = min(len(predictions), len(truths)) + 1.0
    weight = np.where(eligible, big + scores, 0.0)
    rows, cols = linear_sum_assignment(-weight)
    return [(int(r), int(c), float(scores[r, c])) for r, c in zip(rows, cols) if eligible[r, c]]


# ----------------------------------------------------------------------------- counts
@dataclass(frozen=True)
class Counts:
    """True/false positives and misses; precision, recall and F1 are 0 where undefined."""

    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    def row(self) -> dict:
        return dict(tp=self.tp, fp=self.fp, fn=self.fn, precision=self.precision, recall=self.recall, f1=self.f1)


def f1_from_counts(predictions: int, hits: int, truths: int) -> float:
    """F1 of ``hits`` among ``predictions`` against ``truths`` (the MEGC2020 "F1_small")."""
    p = hits / predictions if predictions else 0.0
    r = hits / truths if truths else 0.0
    return 2 * p * r / (p + r) if p + r else 0.0


def _check(table: pd.DataFrame, name: str, needed: tuple[str, ...]) -> pd.DataFrame:
    missing = [column for column in needed if column not in table.columns]
    if missing:
        raise ValueError(f"{name}: missing column(s) {', '.join(missing)} (have {', '.join(map(str, table.columns))})")
    table = table.copy()
    table["subject"], table["video"] = table["subject"].astype(str), table["video"].astype(str)
    table["onset"], table["offset"] = table["onset"].astype(int), table["offset"].astype(int)
    return table.reset_index(drop=True)


def _videos(*tables: pd.DataFrame) -> list[tuple[str, str]]:
    keys = set()
    for table in tables:
        keys |= set(zip(table["subject"], table["video"]))
    return sorted(keys)


def match_table(predictions: pd.DataFrame, truths: pd.DataFrame, threshold: float = IOU_THRESHOLD) -> pd.DataFrame:
    """One row per pair, unmatched prediction (FP) and unmatched truth (FN), over every video of
    either table: subject, video, outcome (tp/fp/fn), pred_row, truth_row (row positions), iou."""
    predictions = _check(predictions, "predictions", ("subject", "video", "onset", "offset"))
    truths = _check(truths, "ground truth", ("subject", "video", "onset", "offset"))
    rows = []
    for subject, video in _videos(predictions, truths):
        p = predictions[(predictions["subject"] == subject) & (predictions["video"] == video)]
        t = truths[(truths["subject"] == subject) & (truths["video"] == video)]
        pairs = one_to_one(list(zip(p["onset"], p["offset"])), list(zip(t["onset"], t["offset"])), threshold)
        paired_p, paired_t = {i for i, _, _ in pairs}, {j for _, j, _ in pairs}
        rows += [dict(subject=subject, video=video, outcome="tp", pred_row=int(p.index[i]), truth_row=int(t.index[j]),
                      iou=score) for i, j, score in pairs]
        rows += [dict(subject=subject, video=video, outcome="fp", pred_row=int(p.index[i]), truth_row=None, iou=0.0)
                 for i in range(len(p)) if i not in paired_p]
        rows += [dict(subject=subject, video=video, outcome="fn", pred_row=None, truth_row=int(t.index[j]), iou=0.0)
                 for j in range(len(t)) if j not in paired_t]
    return pd.DataFrame(rows, columns=["subject", "video", "outcome", "pred_row", "truth_row", "iou"])


def _counts(matched: pd.DataFrame) -> Counts:
    outcome = matched["outcome"]
    return Counts(int((outcome == "tp").sum()), int((outcome == "fp").sum()), int((outcome == "fn").sum()))


# ----------------------------------------------------------------------------- MEGC2020 spotting
def length_filter(predictions: pd.DataFrame, lengths: dict[str, tuple[int, int | None]]) -> pd.DataFrame:
    """Predictions whose length n = offset - onset + 1 is inside their kind's (min, max)."""
    n = predictions["offset"].astype(int) - predictions["onset"].astype(int) + 1
    keep = pd.Series(False, index=predictions.index)
    for kind, (low, high) in lengths.items():
        keep |= (predictions["kind"] == kind) & (n >= low) & (n <= (high if high is not None else np.inf))
    return predictions[keep]


def megc2020_spotting(predictions: pd.DataFrame, truths: pd.DataFrame,
                      lengths: dict[str, tuple[int, int | None]] | None = None,
                      threshold: float = IOU_THRESHOLD) -> pd.DataFrame:
    """The MEGC2020 spotting scores, our rules: micro and macro each against the ground truths of
    their kind (predictions length-filtered by ``lengths`` when given, e.g. MEGC2020_LENGTHS[dataset]),
    and ``overall``: TP, FP, FN pooled over both kinds and every video. One row per kind:
    kind, predictions, truths, tp, fp, fn, precision, recall, f1."""
    if lengths is not None:
        predictions = length_filter(predictions, lengths)
    rows, total = [], Counts(0, 0, 0)
    for kind in KINDS:
        counts = _counts(match_table(predictions[predictions["kind"] == kind], truths[truths["kind"] == kind],
                                     threshold))
        total = total + counts
        rows.append(dict(kind=kind, predictions=counts.tp + counts.fp, truths=counts.tp + counts.fn, **counts.row()))
    rows.append(dict(kind="overall", predictions=total.tp + total.fp, truths=total.tp + total.fn, **total.row()))
    return pd.DataFrame(rows)


def original_megc2020(predictions: pd.DataFrame, truths: pd.DataFrame,
                      lengths: dict[str, tuple[int, int | None]] | None = None,
                      threshold: float = IOU_THRESHOLD) -> pd.DataFrame:
    """The same table as the MEGC2020 baseline's scorer computes it (long_videos.md section 2):
    its IoU, TP = truths hit by at least one prediction of the same video, FP = predictions - TP,
    FN = truths - TP, F1 from those ("F1_small")."""
    if lengths is not None:
        predictions = length_filter(predictions, lengths)
    predictions = _check(predictions, "predictions", ("subject", "video", "onset", "offset", "kind"))
    truths = _check(truths, "ground truth", ("subject", "video", "onset", "offset", "kind"))
    rows, pooled = [], np.zeros(3, dtype=int)
    for kind in KINDS:
        p, t = predictions[predictions["kind"] == kind], truths[truths["kind"] == kind]
        hits = 0
        for truth in t.itertuples():
            same = p[(p["subject"] == truth.subject) & (p["video"] == truth.video)]
            hits += any(megc2020_iou((a, b), (truth.onset, truth.offset)) >= threshold
                        for a, b in zip(same["onset"], same["offset"]))
        counts = np.array([len(p), hits, len(t)])
        pooled += counts
        rows.append(_original_row(kind, *counts))
    rows.append(_original_row("overall", *pooled))
    return pd.DataFrame(rows)


def _original_row(kind: str, predictions: int, hits: int, truths: int) -> dict:
    p = hits / predictions if predictions else 0.0
    r = hits / truths if truths else 0.0
    return dict(kind=kind, predictions=int(predictions), truths=int(truths), tp=int(hits), fp=int(predictions - hits),
                fn=int(truths - hits), precision=p, recall=r, f1=f1_from_counts(predictions, hits, truths))


def compare_megc2020(predictions: pd.DataFrame, truths: pd.DataFrame,
                     lengths: dict[str, tuple[int, int | None]] | None = None) -> pd.DataFrame:
    """Ours beside the baseline scorer's, per kind: tp, fp, fn, f1 of each and ``differs``."""
    ours = megc2020_spotting(predictions, truths, lengths).set_index("kind")
    theirs = original_megc2020(predictions, truths, lengths).set_index("kind")
    out = pd.DataFrame(index=ours.index)
    for column in ("tp", "fp", "fn", "f1"):
        out[f"{column}_ours"], out[f"{column}_original"] = ours[column], theirs[column]
    out["differs"] = ~np.isclose(ours["f1"], theirs["f1"]) | (ours[["tp", "fp", "fn"]] != theirs[["tp", "fp", "fn"]]).any(
        axis=1)
    return out.reset_index()


# ----------------------------------------------------------------------------- STRS
@dataclass
class StrsResult:
    """Spotting counts, the analysis scores over the spotted pairs, and STRS = spot F1 x analysis F1."""

    spotting: Counts
    analysis_precision: float
    analysis_recall: float
    analysis_f1: float
    uf1: float
    uar: float
    emotions: tuple[str, ...]
    pairs: pd.DataFrame = field(repr=False)  # the spotted pairs: subject, video, truth/pred emotion, iou

    @property
    def strs(self) -> float:
        return self.spotting.f1 * self.analysis_f1

    def row(self) -> dict:
        return dict(strs=self.strs, spot_tp=self.spotting.tp, spot_fp=self.spotting.fp, spot_fn=self.spotting.fn,
                    spot_precision=self.spotting.precision, spot_recall=self.spotting.recall,
                    spot_f1=self.spotting.f1, analysis_precision=self.analysis_precision,
                    analysis_recall=self.analysis_recall, analysis_f1=self.analysis_f1, uf1=self.uf1, uar=self.uar)


def strs(predictions: pd.DataFrame, truths: pd.DataFrame, emotions: tuple[str, ...] | None = None,
         threshold: float = IOU_THRESHOLD) -> StrsResult:
    """STRS with our rules (module docstring). ``emotions``: the analysis set (default: every
    emotion of the ground truth)."""
    needed = ("subject", "video", "onset", "offset", "emotion")
    predictions, truths = _check(predictions, "predictions", needed), _check(truths, "ground truth", needed)
    matched = match_table(predictions, truths, threshold)
    tp = matched[matched["outcome"] == "tp"]
    pairs = pd.DataFrame(dict(subject=tp["subject"].to_numpy(), video=tp["video"].to_numpy(),
                              truth=truths.loc[tp["truth_row"].astype(int), "emotion"].astype(str).to_numpy(),
                              pred=predictions.loc[tp["pred_row"].astype(int), "emotion"].astype(str).to_numpy(),
                              iou=tp["iou"].to_numpy()))
    emotions = _emotions(truths, emotions)
    return _analysis(_counts(matched), pairs, emotions, one_by_one_bug=False)


def _emotions(truths: pd.DataFrame, emotions) -> tuple[str, ...]:
    return tuple(sorted(set(truths["emotion"].astype(str)))) if emotions is None else tuple(emotions)


def _analysis(spotting: Counts, pairs: pd.DataFrame, emotions: tuple[str, ...], one_by_one_bug: bool) -> StrsResult:
    pairs = pairs[pairs["truth"].isin(emotions)]
    precisions, recalls, f1s = [], [], []
    for emotion in emotions:
        truth, pred = (pairs["truth"] == emotion).to_numpy(), (pairs["pred"] == emotion).to_numpy()
        counts = Counts(int((truth & pred).sum()), int((~truth & pred).sum()), int((truth & ~pred).sum()))
        # the scorer's confusion matrix is 1x1 when every pair has the same truth and prediction
        # for this emotion (all of it, or none of it): it then scores the emotion 0
        if one_by_one_bug and len(pairs) and (truth == pred).all() and (truth.all() or not truth.any()):
            counts = Counts(0, 0, 0)
        precisions.append(counts.precision)
        recalls.append(counts.recall)
        f1s.append(counts.f1)
    p = float(np.mean(precisions)) if emotions else 0.0
    r = float(np.mean(recalls)) if emotions else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return StrsResult(spotting, p, r, f1, float(np.mean(f1s)) if emotions else 0.0,
                      float(np.mean(precisions if one_by_one_bug else recalls)) if emotions else 0.0,
                      emotions, pairs.reset_index(drop=True))


def original_strs(predictions: pd.DataFrame, truths: pd.DataFrame, emotions: tuple[str, ...] | None = None,
                  threshold: float = IOU_THRESHOLD) -> StrsResult:
    """STRS as the public scorer computes it (long_videos.md section 3), bugs kept: subjects from
    the predictions, videos from the ground truth, greedy pairing in file order (a prediction may
    take several ground truths), the 1x1 confusion matrix, "UAR" = mean precision."""
    needed = ("subject", "video", "onset", "offset", "emotion")
    predictions, truths = _check(predictions, "predictions", needed), _check(truths, "ground truth", needed)
    tp = fp = fn = 0
    pairs = []
    for subject in predictions["subject"].unique():
        for video in truths.loc[truths["subject"] == subject, "video"].unique():
            p = predictions[(predictions["subject"] == subject) & (predictions["video"] == video)]
            t = truths[(truths["subject"] == subject) & (truths["video"] == video)]
            taken: set[int] = set()
            for pred in p.itertuples():
                hit = False
                for truth in t.itertuples():
                    score = iou((pred.onset, pred.offset), (truth.onset, truth.offset))
                    if score >= threshold and truth.Index not in taken:
                        taken.add(truth.Index)
                        pairs.append(dict(subject=subject, video=video, truth=str(truth.emotion),
                                          pred=str(pred.emotion), iou=score))
                        tp, hit = tp + 1, True
                fp += not hit
            fn += len(t) - len(taken)
    pairs = pd.DataFrame(pairs, columns=["subject", "video", "truth", "pred", "iou"])
    return _analysis(Counts(tp, fp, fn), pairs, _emotions(truths, emotions), one_by_one_bug=True)


def compare_strs(predictions: pd.DataFrame, truths: pd.DataFrame, emotions: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Each STRS quantity, ours and the public scorer's, and whether they differ."""
    ours, theirs = strs(predictions, truths, emotions).row(), original_strs(predictions, truths, emotions).row()
    return pd.DataFrame([dict(quantity=name, ours=ours[name], original=theirs[name],
                              differs=not np.isclose(ours[name], theirs[name])) for name in ours])
