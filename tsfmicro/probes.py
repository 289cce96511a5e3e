"""Probes of what a trained network's features hold: identity (which subject) and, as data, where
each action unit moves the face.

The paper keeps the spatial branch at two transformer blocks "to avoid extracting the identity
information that is not related to the micro-expression motion". :func:`identity_probe` measures
how much identity a feature carries: a linear probe (scikit-learn's logistic regression on
standardised features) that predicts the SUBJECT of a clip, fitted and scored on disjoint clips
of the same subjects. It is run per fold model on that model's own training subjects (a fold
model never saw its held-out subject, so predicting that subject's identity is not defined), and
the held-out clips' correctness of every fold model is pooled.

Interval (:data:`IDENTITY_METHOD`): a percentile subject bootstrap: subjects are drawn with
replacement and the held-out correctness of all their clips (in every fold model) is pooled; the
probes are fitted once, not refitted per draw, so the interval is about which subjects were
recorded, not about the probe's own fit. Two probes over the same subjects are drawn alike
(:func:`paired_difference`), so a difference between depths has a paired interval.

This module is layer 0: numbers in, numbers out (the features come from
``tsfmicro.engine.evaluate.branch_features``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

RESAMPLES = 1000
BOOTSTRAP_SEED = 0  # fixed: the same probe results always give the same interval
SPLITS = 2  # each subject's clips in two halves: fit on one, score the other, then the other way round


def identity_method(resamples: int = RESAMPLES, confidence: float = 0.95) -> str:
    """The identity interval's name as tables and captions print it."""
    return (f"subject bootstrap {100 * confidence:.0f}%, {resamples} resamples (subjects drawn with replacement, "
            f"their clips' held-out probe correctness pooled; probes fitted once)")


IDENTITY_METHOD = identity_method()


@dataclass(frozen=True)
class ProbeResult:
    """``clips``: one row per scored clip (``group``: the fold model, ``subject``, ``correct``);
    ``accuracy`` pooled over them; ``chance``: the mean over scored clips of 1 / (training subjects
    of the clip's fold model); ``low``/``high``: :data:`IDENTITY_METHOD`; ``left_out``: clips not
    scored (their subject had fewer clips than :data:`SPLITS` in that fold model)."""

    clips: pd.DataFrame
    accuracy: float
    chance: float
    low: float
    high: float
    left_out: int
    method: str = IDENTITY_METHOD


def identity_probe(features: np.ndarray, subjects, groups=None, *, seed: int = 0, resamples: int = RESAMPLES,
                   confidence: float = 0.95) -> ProbeResult:
    """Held-out accuracy of a logistic-regression probe predicting ``subjects`` from ``features``.

    ``features``: ``(N, D)``; ``subjects``: ``(N,)`` the clip's subject; ``groups``: ``(N,)`` the
    fold model whose features a row holds (None: one model). Within each group every subject's
    clips are split in :data:`SPLITS` parts (shuffled with ``seed``); the probe is fitted on the
    other parts and predicts each part, so every scored clip is predicted by a probe that never
    saw it. A group with fewer than two subjects is not scored (there is nothing to tell apart).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = np.asarray(features, dtype=np.float64)
    subjects = np.asarray(subjects).astype(str)
    groups = np.zeros(len(subjects), dtype=int) if groups is None else np.asarray(groups).astype(str)
    if features.ndim != 2 or len(features) != len(subjects) or len(groups) != len(subjects):
        raise ValueError(f"features {features.shape}, subjects {subjects.shape} and groups {groups.shape} "
                         "must be (N, D), (N,) and (N,)")
    rows, left_out = [], 0
    for group in pd.unique(groups):
        where = np.flatnonzero(groups == group)
        names, counts = np.unique(subjects[where], return_counts=True)
        enough = set(names[counts >= SPLITS])
        keep = np.array([i for i in where if subjects[i] in enough], dtype=int)
        left_out += len(where) - len(keep)
        if len(enough) < 2:
            left_out += len(keep)
            continue
        x, y = features[keep], subjects[keep]
        predicted = np.empty(len(keep), dtype=object)
        splitter = StratifiedKFold(n_splits=SPLITS, shuffle=True, random_state=seed)
        for fit, score in splitter.split(x, y):
            probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
            probe.fit(x[fit], y[fit])
            predicted[score] = probe.predict(x[score])
        rows.append(pd.DataFrame({"group": group, "subject": y, "correct": (predicted == y).astype(float),
                                  "chance": 1.0 / len(enough)}))
    if not rows:
        raise ValueError("no fold model has two subjects with at least two clips each: nothing to probe")
    clips = pd.concat(rows, ignore_index=True)
    low, high = _percentiles(_bootstrap(clips, resamples, BOOTSTRAP_SEED), confidence)
    return ProbeResult(clips, float(clips["correct"].mean()), float(clips["chance"].mean()), low, high, left_out,
                       identity_method(resamples, confidence))


def _bootstrap(clips: pd.DataFrame, resamples: int, seed: int, subjects=None) -> np.ndarray:
    """Pooled accuracy of ``resamples`` draws of subjects with replacement (``(R,)``). The draws
    depend only on the subjects (sorted), ``resamples`` and ``seed``: two probes are drawn alike."""
    subjects = sorted(clips["subject"].unique()) if subjects is None else list(subjects)
    by_subject = clips.groupby("subject")["correct"].agg(["sum", "count"]).reindex(subjects, fill_value=0)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(subjects), size=(resamples, len(subjects)))
    correct, count = by_subject["sum"].to_numpy()[draws].sum(1), by_subject["count"].to_numpy()[draws].sum(1)
    return np.divide(correct, count, out=np.full(resamples, np.nan), where=count > 0)


def _percentiles(values: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2 * 100
    low, high = np.nanpercentile(values, [tail, 100 - tail])
    return float(low), float(high)


def paired_difference(a: ProbeResult, b: ProbeResult, *, resamples: int = RESAMPLES,
                      confidence: float = 0.95) -> tuple[float, float, float]:
    """``b.accuracy - a.accuracy`` and its percentile interval when the same subjects are drawn
    for both (the probes' subjects joined)."""
    subjects = sorted(set(a.clips["subject"]) | set(b.clips["subject"]))
    drawn = (_bootstrap(b.clips, resamples, BOOTSTRAP_SEED, subjects)
             - _bootstrap(a.clips, resamples, BOOTSTRAP_SEED, subjects))
    return (b.accuracy - a.accuracy, *_percentiles(drawn, confidence))


# ----------------------------------------------------------------------------- AU -> region
# Where each action unit moves the face, for the region probe on real data (the synthetic data
# records its own moving box per clip). Which facial area an AU moves is the FACS manual's
# (Ekman, Friesen & Hager, Facial Action Coding System, 2002: the appearance changes of each AU);
# the boxes, in units of the inter-ocular distance D around the five MTCNN landmarks (eyes, nose
# tip, mouth corners) that the face-crop cache keeps, are ours: the smallest box around the
# landmarks that holds the area the manual describes, checked by eye on the synthetic faces, not
# validated on real faces.
AU_REGIONS_SOURCE = ("AU -> facial area: Ekman, Friesen & Hager, Facial Action Coding System (2002); "
                     "region boxes around the five MTCNN landmarks: this project's, not validated on real faces")
AU_REGIONS: dict[int, str] = {
    1: "brows", 2: "brows", 4: "brows",  # inner/outer brow raiser, brow lowerer
    5: "eyes", 6: "eyes", 7: "eyes", 41: "eyes", 42: "eyes", 43: "eyes", 44: "eyes", 45: "eyes", 46: "eyes",
    9: "nose", 10: "nose", 11: "nose",  # nose wrinkler, upper lip raiser, nasolabial deepener
    12: "mouth", 13: "mouth", 14: "mouth", 15: "mouth", 16: "mouth", 18: "mouth", 20: "mouth", 22: "mouth",
    23: "mouth", 24: "mouth", 25: "mouth", 26: "mouth", 28: "mouth",
    17: "chin",  # chin raiser
}
# Each region as (x0, y0, x1, y1) offsets in units of D: x from the eyes' (brows, eyes), the
# nose tip's (nose) or the mouth corners' span (mouth, chin); y from the eye line, the nose tip
# or the mouth line. Image axes: y grows downwards.
REGION_BOXES: dict[str, tuple[str, tuple[float, float, float, float]]] = {
    "brows": ("eyes", (-0.45, -0.85, 0.45, -0.15)),
    "eyes": ("eyes", (-0.40, -0.25, 0.40, 0.25)),
    "nose": ("nose", (-0.40, -0.45, 0.40, 0.30)),
    "mouth": ("mouth", (-0.30, -0.35, 0.30, 0.35)),
    "chin": ("mouth", (-0.10, 0.30, 0.10, 0.90)),
}


def au_regions(action_units: str) -> list[str]:
    """The regions of an annotation's action units ("AU4+AU7", "1+2", "R12A", "L10+25"), in table
    order, each once; AUs outside :data:`AU_REGIONS` (head or eye movements: 51-64) add none."""
    found = {AU_REGIONS[number] for number in map(int, re.findall(r"\d+", str(action_units))) if number in AU_REGIONS}
    return [region for region in REGION_BOXES if region in found]


def region_box(region: str, landmarks) -> tuple[float, float, float, float]:
    """The box ``(x0, y0, x1, y1)`` of ``region`` in the landmarks' pixels. ``landmarks``: (5, 2)
    x, y of left eye, right eye, nose tip, left and right mouth corner (MTCNN's order)."""
    points = np.asarray(landmarks, dtype=float).reshape(5, 2)
    distance = float(np.linalg.norm(points[1] - points[0]))
    anchor, (dx0, dy0, dx1, dy1) = REGION_BOXES[region]
    span = {"eyes": points[:2], "nose": points[2:3], "mouth": points[3:]}[anchor]
    x_low, x_high = span[:, 0].min(), span[:, 0].max()
    y = span[:, 1].mean()
    return (x_low + dx0 * distance, y + dy0 * distance, x_high + dx1 * distance, y + dy1 * distance)


def embed_2d(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """t-SNE of ``features`` (``(N, D)``, standardised first) to ``(N, 2)``, for a figure only (its
    distances between clusters mean little); perplexity 30, or (N - 1) / 3 for few clips."""
    from sklearn.manifold import TSNE
    from sklearn.preprocessing import StandardScaler

    features = StandardScaler().fit_transform(np.asarray(features, dtype=np.float64))
    perplexity = float(min(30.0, max(2.0, (len(features) - 1) / 3)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)
