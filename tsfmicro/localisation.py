"""Does a Grad-CAM map point at the region that moves? A pointing game and the map's mass in the
region, each beside what a map that knows nothing scores.

On synthetic data the moving region of every clip is known: the writer records, per clip, the box of
pixels its movement displaces (``region_x0..region_y1`` in TSFMICRO_SYNTHETIC_manifest.csv, raw-frame
pixels; tsfmicro.data.synthetic). The cache records the square box each clip was cut with (the
samples' ``crop_x0..crop_y1``), which is then resized to the model's input square; so the region
maps into the S x S square the Grad-CAM map covers (:func:`region_mask`). A model-input pixel is in
the region when its footprint overlaps the region's pixels.

Per clip and map (:func:`score_maps`):

* pointing game (:func:`peak_inside`): the map's maximum lies in the region. Ties: Grad-CAM maps
  are coarse grids upsampled bilinearly, and a cell at the border becomes a flat plateau of equal
  maxima; the peak is then the tied pixel nearest the plateau's centroid (first in row order when
  several are as near), so it is always one of the maxima, and a plateau counts where its middle is.
* mass share (:func:`mass_inside`): the share of the map's total inside the region.
* zero map: Grad-CAM sums the branch's channels weighted by the gradient of the class score and
  keeps the positive part, and grad-cam then scales each map to 0..1 by its minimum and maximum.
  A map whose weighted sum is <= 0 everywhere, or the same everywhere, comes out all zero: no
  position raises the class score more than another, so the map points nowhere. Such maps are
  counted and left out of both scores (a zero map has no peak and no mass), never scored as a miss
  or a hit.

Baselines, each computed on the same clips (zero maps left out):

* random map: a peak drawn uniformly over the square hits the region with probability equal to
  the region's share of the square (its area share), and a uniform map puts exactly that share of
  its mass inside; so both baselines are the mean area share, worked out, with no draws.
* other clips' regions: the same maps scored against the region of another clip (the mean over all
  pairs of different clips). A map that always points at the same part of the face (say the mouth),
  whatever the clip shows, scores here as high as on its own clip; only a map that follows each
  clip's own movement beats it.

Intervals (:func:`summarise`): subject bootstrap, 95 % percentile, whole subjects resampled with
replacement and all their clips pooled (clips of one person are not independent; as
tsfmicro.metrics.bootstrap_interval), the same draws for the hit rate, the mass share and each
difference to a baseline (paired).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from tsfmicro.data.cache import CROP_BOX_COLUMNS
from tsfmicro.data.synthetic import MANIFEST_FILE

REGION_COLUMNS = ("region_x0", "region_y0", "region_x1", "region_y1")
RESAMPLES = 1000
INTERVAL = f"subject bootstrap 95 %, {RESAMPLES} resamples of whole subjects (clips pooled)"


# ----------------------------------------------------------------------------- the region


def read_manifest(root) -> pd.DataFrame | None:
    """The synthetic writer's manifest under ``root`` (subject and clip ids as text), or None when
    there is none (real data: the moving region is not known)."""
    if not isinstance(root, (str, Path)):
        return None
    path = Path(root) / MANIFEST_FILE
    if not path.is_file():
        return None
    return pd.read_csv(path, dtype={"subject": str, "clip_id": str})


def region_mask(region: Sequence[float], crop_box: Sequence[float], size: int) -> np.ndarray:
    """The boolean ``(size, size)`` mask of the model-input pixels that overlap ``region``.

    ``region``: (x0, y0, x1, y1) raw-frame pixels, x1 and y1 exclusive (the manifest's box);
    ``crop_box``: (x0, y0, x1, y1) the square the clip was cut with (raw-frame pixels, floats),
    resized to ``size`` x ``size``: model-input pixel j covers raw x in
    [x0 + j w / size, x0 + (j + 1) w / size), w = x1 - x0 (and likewise for y).
    """
    rx0, ry0, rx1, ry1 = (float(v) for v in region)
    bx0, by0, bx1, by1 = (float(v) for v in crop_box)
    mask = np.zeros((size, size), dtype=bool)
    columns = _covered(rx0, rx1, bx0, bx1, size)
    rows = _covered(ry0, ry1, by0, by1, size)
    if columns and rows:
        mask[rows[0]:rows[1], columns[0]:columns[1]] = True
    return mask


def _covered(start: float, stop: float, box_start: float, box_stop: float, size: int) -> tuple[int, int] | None:
    """Model-input pixels [first, last) whose footprint overlaps [start, stop) on one axis."""
    scale = size / (box_stop - box_start)
    # a footprint that only touches the region's edge does not overlap it (1e-9: rounding error)
    first = int(np.floor((start - box_start) * scale + 1e-9))
    last = int(np.ceil((stop - box_start) * scale - 1e-9))
    first, last = max(first, 0), min(last, size)
    return (first, last) if last > first else None


def clip_masks(samples: pd.DataFrame, manifest: pd.DataFrame | None, size: int) -> tuple[list, list[str]]:
    """Per row of ``samples`` (a PreparedData's, with its crop box columns): the region's mask in the
    model-input square, or None with the reason it is not known (no manifest row, a whole
    pre-cropped frame whose box in the raw frame is unknown, a region outside the crop)."""
    masks, reasons = [], []
    if manifest is None:
        return [None] * len(samples), ["no manifest: the moving region is not known"] * len(samples)
    if not set(CROP_BOX_COLUMNS) <= set(samples.columns):
        return ([None] * len(samples),
                ["the face-crop cache does not hold the crop boxes (prepare(..., boxes=True))"] * len(samples))
    regions = {(str(row["subject"]), str(row["clip_id"])): row for row in manifest.to_dict("records")}
    for row in samples.to_dict("records"):
        subject = str(row["subject"]).split("/")[-1]  # a composite's or a joined set's prefix
        found = regions.get((subject, str(row["clip_id"])))
        box = [row[column] for column in CROP_BOX_COLUMNS]
        if found is None or any(pd.isna(found[column]) for column in REGION_COLUMNS):
            masks.append(None)
            reasons.append("no region in the manifest")
        elif any(pd.isna(value) for value in box):
            masks.append(None)
            reasons.append("a whole pre-cropped frame: where it lies in the raw frame is not known")
        else:
            mask = region_mask([found[column] for column in REGION_COLUMNS], box, size)
            masks.append(mask if mask.any() else None)
            reasons.append("" if mask.any() else "the region lies outside the face crop")
    return masks, reasons


# ----------------------------------------------------------------------------- one map


def is_zero(cam: np.ndarray) -> bool:
    """The map is zero everywhere (see the module docstring: it points nowhere)."""
    return not np.asarray(cam).max() > 0


def peak(cam: np.ndarray) -> tuple[int, int]:
    """(row, column) of the map's maximum; ties: the tied pixel nearest their centroid."""
    cam = np.asarray(cam, dtype=np.float64)
    top = cam.max()
    rows, columns = np.nonzero(cam >= top - 1e-6 * abs(top))
    if len(rows) == 1:
        return int(rows[0]), int(columns[0])
    distance = (rows - rows.mean()) ** 2 + (columns - columns.mean()) ** 2
    nearest = int(np.argmin(distance))  # first in row order among the nearest
    return int(rows[nearest]), int(columns[nearest])


def peak_inside(cam: np.ndarray, mask: np.ndarray) -> bool:
    """Pointing game: the map's peak (:func:`peak`, ties as there) lies in ``mask``. A zero map has
    no peak: ValueError (count it with :func:`is_zero` instead)."""
    if is_zero(cam):
        raise ValueError("a zero Grad-CAM map has no peak: count it, do not score it")
    return bool(np.asarray(mask)[peak(cam)])


def mass_inside(cam: np.ndarray, mask: np.ndarray) -> float:
    """The share of the map's total inside ``mask`` (0..1). A zero map has none: ValueError."""
    cam = np.asarray(cam, dtype=np.float64)
    if is_zero(cam):
        raise ValueError("a zero Grad-CAM map has no mass: count it, do not score it")
    return float(np.clip(cam, 0, None)[np.asarray(mask)].sum() / np.clip(cam, 0, None).sum())


# ----------------------------------------------------------------------------- many maps


def score_maps(cams: np.ndarray, masks: Sequence[np.ndarray], subjects: Sequence) -> pd.DataFrame:
    """One row per clip: subject, zero (bool), hit, mass (NaN for a zero map), area (the region's
    share of the square), shuffled_hit and shuffled_mass (the clip's map against every other
    clip's region, averaged; NaN for a zero map)."""
    cams = np.asarray(cams)
    masks = np.asarray(masks, dtype=bool)
    if len(cams) != len(masks) or len(cams) != len(subjects):
        raise ValueError(f"{len(cams)} maps, {len(masks)} masks and {len(subjects)} subjects: one each per clip")
    zero = np.array([is_zero(cam) for cam in cams], dtype=bool)
    area = masks.reshape(len(masks), -1).mean(axis=1)
    hit = np.full(len(cams), np.nan)
    mass = np.full(len(cams), np.nan)
    shuffled_hit = np.full(len(cams), np.nan)
    shuffled_mass = np.full(len(cams), np.nan)
    flat = masks.reshape(len(masks), -1).astype(np.float64)  # (N, S*S)
    for i, cam in enumerate(cams):
        if zero[i]:
            continue
        row, column = peak(cam)
        inside = masks[:, row, column]  # this map's peak in every clip's region
        positive = np.clip(cam.astype(np.float64), 0, None).reshape(-1)
        shares = flat @ positive / positive.sum()  # this map's mass in every clip's region
        hit[i], mass[i] = float(inside[i]), float(shares[i])
        others = np.arange(len(cams)) != i
        if others.any():
            shuffled_hit[i], shuffled_mass[i] = inside[others].mean(), shares[others].mean()
    return pd.DataFrame({"subject": list(subjects), "zero": zero, "hit": hit, "mass": mass, "area": area,
                         "shuffled_hit": shuffled_hit, "shuffled_mass": shuffled_mass})


def summarise(scores: pd.DataFrame, resamples: int = RESAMPLES, confidence: float = 0.95, seed: int = 0) -> dict:
    """The pointing game and the mass share over the clips with a map (zero maps left out and
    counted), each with its subject-bootstrap interval (:data:`INTERVAL`), and their baselines.

    Returns ``clips``, ``zero_maps``, ``scored``, ``subjects``; ``hit_rate``, ``mass_share``,
    ``area_share`` (= the random map's hit rate and mass share), ``shuffled_hit``,
    ``shuffled_mass`` (means over the scored clips); and ``(low, high)`` intervals ``hit_interval``,
    ``mass_interval``, ``hit_minus_random`` (difference, low, high), ``mass_minus_random``,
    ``hit_minus_shuffled``, ``mass_minus_shuffled``. NaN everywhere when no clip is scored.
    """
    scored = scores[~scores["zero"]]
    out = {"clips": int(len(scores)), "zero_maps": int(scores["zero"].sum()), "scored": int(len(scored)),
           "subjects": int(scored["subject"].nunique())}
    names = ("hit", "mass", "area", "shuffled_hit", "shuffled_mass")
    nan2 = (float("nan"), float("nan"))
    if scored.empty:
        out.update({"hit_rate": float("nan"), "mass_share": float("nan"), "area_share": float("nan"),
                    "shuffled_hit": float("nan"), "shuffled_mass": float("nan"), "hit_interval": nan2,
                    "mass_interval": nan2})
        out.update({f"{kind}_minus_{base}": (float("nan"),) * 3 for kind in ("hit", "mass")
                    for base in ("random", "shuffled")})
        return out
    groups = scored.groupby(scored["subject"].astype(str), sort=True)
    sums = np.stack([groups[name].sum().to_numpy(dtype=np.float64) for name in names])  # (5, G)
    counts = groups.size().to_numpy(dtype=np.float64)  # (G,)
    draws = np.random.default_rng(seed).integers(0, len(counts), size=(resamples, len(counts)))
    times = np.zeros((resamples, len(counts)))
    np.add.at(times, (np.arange(resamples)[:, None], draws), 1)
    drawn = (times @ sums.T) / (times @ counts)[:, None]  # (R, 5): pooled means of each resample
    whole = sums.sum(axis=1) / counts.sum()
    value = dict(zip(names, whole))
    sample = dict(zip(names, drawn.T))
    tail = (1 - confidence) / 2 * 100

    def interval(values):
        return tuple(float(v) for v in np.percentile(values, [tail, 100 - tail]))

    out.update({"hit_rate": float(value["hit"]), "mass_share": float(value["mass"]),
                "area_share": float(value["area"]), "shuffled_hit": float(value["shuffled_hit"]),
                "shuffled_mass": float(value["shuffled_mass"]),
                "hit_interval": interval(sample["hit"]), "mass_interval": interval(sample["mass"])})
    for kind in ("hit", "mass"):
        for base, column in (("random", "area"), ("shuffled", f"shuffled_{kind}")):
            out[f"{kind}_minus_{base}"] = (float(value[kind] - value[column]),
                                           *interval(sample[kind] - sample[column]))
    return out


# ----------------------------------------------------------------------------- table and sentence

TABLE_COLUMNS = ["branch", "clips", "zero maps", "pointing game %", "pointing low %", "pointing high %",
                 "random map %", "other clips' regions %", "minus random low %", "minus random high %",
                 "mass share %", "mass low %", "mass high %", "area share %", "other clips' mass %"]


def table_row(branch: str, summary: dict) -> dict:
    """One row of the localisation table (percentages) from :func:`summarise`'s result."""
    def pct(value):
        return 100 * float(value)

    return {"branch": branch, "clips": summary["clips"], "zero maps": summary["zero_maps"],
            "pointing game %": pct(summary["hit_rate"]), "pointing low %": pct(summary["hit_interval"][0]),
            "pointing high %": pct(summary["hit_interval"][1]), "random map %": pct(summary["area_share"]),
            "other clips' regions %": pct(summary["shuffled_hit"]),
            "minus random low %": pct(summary["hit_minus_random"][1]),
            "minus random high %": pct(summary["hit_minus_random"][2]),
            "mass share %": pct(summary["mass_share"]), "mass low %": pct(summary["mass_interval"][0]),
            "mass high %": pct(summary["mass_interval"][1]), "area share %": pct(summary["area_share"]),
            "other clips' mass %": pct(summary["shuffled_mass"])}


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The table as the page shows it: each value with its interval in one cell."""
    if table.empty:
        return table

    def cell(value, low, high):
        return "-" if np.isnan(value) else f"{value:.0f} {interval_text(low, high)}"

    return pd.DataFrame({
        "branch": table["branch"], "clips": table["clips"], "zero maps": table["zero maps"],
        "pointing game % [95 % CI]": [cell(*v) for v in table[["pointing game %", "pointing low %",
                                                                   "pointing high %"]].to_numpy()],
        "random map %": table["random map %"].map(lambda v: "-" if np.isnan(v) else f"{v:.0f}"),
        "other clips' regions %": table["other clips' regions %"].map(lambda v: "-" if np.isnan(v) else f"{v:.0f}"),
        "mass share % [95 % CI]": [cell(*v) for v in table[["mass share %", "mass low %", "mass high %"]].to_numpy()],
        "area share %": table["area share %"].map(lambda v: "-" if np.isnan(v) else f"{v:.0f}"),
    })


def _points(difference: float) -> str:
    """A difference of shares in signed whole points, "+0" rather than "-0"."""
    return f"{round(100 * difference) + 0:+d}"


def interval_text(low: float, high: float) -> str:
    """"[low, high]" in whole percent, or, when every resample gives the same value, says so: a
    zero-width interval is not certainty, only subjects that all agree (e.g. every clip a hit)."""
    if round(low) == round(high):
        return "(every subject resample alike)"
    return f"[{low:.0f}, {high:.0f}]"


def verdict(low: float, high: float) -> str:
    """How an interval of a difference reads: "above", "below" or "indistinguishable from"."""
    if low > 0:
        return "above"
    if high < 0:
        return "below"
    return "indistinguishable from"


# How the sentences name a map (the branch names of tsfmicro.gradcam).
MAP_NAMES = {"temporal_stage1": "temporal first-stage"}


def sentence(branch: str, summary: dict) -> str:
    """What the numbers of one branch say, in words: the pointing game against the random map and
    against the other clips' regions, the mass share against the area share, and the zero maps."""
    branch = MAP_NAMES.get(branch, branch)
    zero = summary["zero_maps"]
    zeros = ("no map was zero" if zero == 0 else
             f"{zero} of {summary['clips']} maps {'was' if zero == 1 else 'were'} zero (the {branch} branch "
             "found no position that raises the predicted class's score more than another) and "
             f"{'is' if zero == 1 else 'are'} left out")
    if summary["scored"] == 0:
        return f"The {branch} branch gave no map to score: {zeros}."
    hit, (low, high) = 100 * summary["hit_rate"], [100 * v for v in summary["hit_interval"]]
    _, d_low, d_high = summary["hit_minus_random"]
    _, s_low, s_high = summary["hit_minus_shuffled"]
    _, m_low, m_high = summary["mass_minus_random"]
    _, n_low, n_high = summary["mass_minus_shuffled"]
    return (f"The {branch} map's peak lies in the planted region for {hit:.0f} % of the {summary['scored']} clips "
            f"with a map {interval_text(low, high)}, {verdict(d_low, d_high)} a random map's "
            f"{100 * summary['area_share']:.0f} % (difference {_points(d_low)} to {_points(d_high)} points) and "
            f"{verdict(s_low, s_high)} the {100 * summary['shuffled_hit']:.0f} % it scores against other clips' "
            f"regions; {100 * summary['mass_share']:.0f} % of its mass lies in the region, "
            f"{verdict(m_low, m_high)} the region's {100 * summary['area_share']:.0f} % of the square and "
            f"{verdict(n_low, n_high)} the {100 * summary['shuffled_mass']:.0f} % in other clips' regions; {zeros}.")
