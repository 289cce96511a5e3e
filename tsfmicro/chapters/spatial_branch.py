"""Chapter 12, What the spatial branch learns: the spatial branch's depth (``spatial_depth``, the
paper's 2 blocks) swept for T-S late on one dataset/task of ``datasets:``, with recognition (both
protocols), an identity probe (tsfmicro.probes) and a region probe (the share of each branch's
Grad-CAM mass inside the clip's moving region, through tsfmicro.localisation) against the depth,
and a sentence that says whether the paper's claim holds on these runs.

The paper's claim (Sec. 3.2): the spatial branch has only two transformer blocks "to avoid
extracting the identity information that is not related to the micro-expression motion". Read as
a testable statement: a deeper spatial branch (a) carries more identity and (b) recognises worse
under leave-one-subject-out. The preset's depth (2) is the main results' run (shared, not
retrained); the other depths enter their run keys only through ``spatial_depth``.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from tsfmicro import report
from tsfmicro.chapters import Chapter, ScoresPage, above_recovered, register
from tsfmicro.sections import OnMainResultsTask, PlannedRun, run_options, seeds, setting

COLUMN = "spatial depth"
FEATURES = ("spatial", "temporal", "fused")  # the probe's inputs: each branch's pooled map, the head's tokens
NOT_CONFIGURED = "These parameters do not configure this chapter (no spatial_branch: section), so it shows nothing."
# What the synthetic data plants (tsfmicro.data.synthetic): identity (face photo, skin tone,
# background, position per subject) is visible in every onset frame and independent of the class,
# which is only in the onset -> apex movement.
EXPECTED_ON_SYNTHETIC = (
    "Expected on this synthetic data: the claim does not hold. Identity is planted independent of the class and is "
    "plain in every onset frame (each subject has its own face photo, skin tone, background and position), so the "
    "spatial branch's identity probe should sit near 100 % at every depth, leaving no room for deeper blocks to add "
    "identity, and the class lives only in the onset-to-apex motion, so the depth should not move recognition beyond "
    "run-to-run noise.")


def _depths(value: Any, key: str, params: Mapping) -> list[str]:
    """A non-empty list of distinct whole numbers >= 1 (transformer blocks)."""
    if (not isinstance(value, list) or not value
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value)):
        return [f"{key}: {value!r} is not a non-empty list of whole numbers >= 1 (spatial transformer blocks, "
                "e.g. [1, 2, 4])"]
    if len(set(value)) != len(value):
        return [f"{key}: {value!r} lists a depth twice"]
    return []


@dataclass(frozen=True)
class Section(OnMainResultsTask):
    """``spatial_branch:`` (optional; null or left out: no such chapter)."""

    dataset: str = setting()
    task: str = setting()
    depths: tuple[int, ...] = setting(_depths)
    seeds: tuple[int, ...] | None = setting(seeds(), default=None)  # None: the parameters' seeds

    leave_out = ", or leave the chapter out: spatial_branch: null"


def reference(params) -> int:
    """The preset's depth (2 for both presets: the paper's), the one the others are compared with."""
    from tsfmicro.model import PRESETS

    return PRESETS[params.params["preset"]].spatial_depth


def runs(params) -> dict:
    """(dataset, task, depth) -> T-S late with that spatial depth; the preset's depth sets no
    option, so its run is the main results' run."""
    section = params.section("spatial_branch")
    if section is None:
        return {}
    seeds = tuple(params.section_seeds("spatial_branch"))
    preset = reference(params)
    return {(section.dataset, section.task, depth): PlannedRun(
        section.dataset, section.task, "ts_late", seeds,
        run_options(spatial_depth=None if depth == preset else depth)) for depth in section.depths}


# ----------------------------------------------------------------------------- the verdict
def claim_sentence(uf1_paired: pd.DataFrame, identity: pd.DataFrame, reference: int, features: str = "spatial",
                   ceiling: float = 0.95) -> str:
    """Whether the paper's claim holds on these runs, from the numbers alone.

    ``uf1_paired``: :func:`tsfmicro.report.paired_differences` (reference minus each depth, UF1,
    fixed protocol; column ``spatial depth``); ``identity``: :meth:`SpatialBranchPage.identity`
    rows (depth, features, accuracy, difference, d_low, d_high: the depth minus the reference,
    paired subject bootstrap). (a) holds when some deeper depth's ``features`` identity accuracy
    is above the reference's with the interval excluding 0; (b) when some deeper depth's UF1 is
    below the reference's with the paired interval excluding 0."""
    deeper_uf1 = uf1_paired[uf1_paired[COLUMN] > reference]
    probe = identity[identity["features"] == features]
    deeper_id = probe[probe["depth"] > reference]
    if deeper_uf1.empty or deeper_id.empty:
        return (f"No depth deeper than the paper's {reference} blocks was run, so the claim (deeper spatial "
                f"branches carry more identity and recognise worse) is not tested here.")
    more_identity = deeper_id[deeper_id["d_low"] > 0]
    worse = deeper_uf1[deeper_uf1["verdict"] == "reference higher"]
    base = probe[probe["depth"] == reference]["accuracy"]

    def points(value, low, high):
        return report.format_interval(value, low, high, 1, "+")

    identity_part = "; ".join(f"{int(r.depth)} blocks {points(r.difference, r.d_low, r.d_high)} points"
                              for r in deeper_id.itertuples())
    uf1_part = "; ".join(f"{int(r[COLUMN])} blocks {points(-r.difference, -r.high, -r.low)} points"
                         for _, r in deeper_uf1.iterrows())
    evidence = (f"identity-probe accuracy of the {features} features against {reference} blocks: {identity_part}; "
                f"UF1 (fixed protocol) against {reference} blocks: {uf1_part} (paired 95 % intervals)")
    if len(more_identity) and len(worse):
        verdict = (f"The paper's claim holds on this data: deeper spatial branches carry more identity and "
                   f"recognise worse ({evidence}).")
    elif len(more_identity):
        verdict = (f"The claim holds only in part on this data: deeper spatial branches carry more identity, but "
                   f"recognition is not shown to fall ({evidence}).")
    elif len(worse):
        verdict = (f"The claim holds only in part on this data: deeper spatial branches recognise worse, but are not "
                   f"shown to carry more identity ({evidence}).")
    else:
        verdict = (f"The paper's claim is not supported by these runs: no deeper spatial branch carries measurably "
                   f"more identity or recognises measurably worse ({evidence}).")
    shallower = uf1_paired[uf1_paired[COLUMN] < reference]
    if len(shallower):  # not part of the claim, said so the reader sees the whole sweep
        verdict += (f" Shallower branches, which the claim says nothing about, in UF1 against {reference} blocks: "
                    + "; ".join(f"{int(r[COLUMN])} blocks {points(-r.difference, -r.high, -r.low)} points"
                                for _, r in shallower.iterrows()) + ".")
    if len(base) and float(base.iloc[0]) >= ceiling:
        verdict += (f" At {reference} blocks the {features} features already identify the training subjects "
                    f"{100 * float(base.iloc[0]):.0f} % of the time, so there is little room for more identity.")
    return verdict


# ----------------------------------------------------------------------------- region probe
# The region probe is tsfmicro.localisation's (the planted region mapped into the model's input,
# the map's mass inside it, zero maps counted and left out, a uniform map's share = the region's
# area share, a subject-bootstrap interval) on tsfmicro.gradcam.test_maps (every test clip of the
# first seed, by its own fold model, for the class it predicted); this chapter only runs it per depth.
REGION_API = {"tsfmicro.localisation": ("read_manifest", "clip_masks", "score_maps", "summarise", "CROP_BOX_COLUMNS"),
              "tsfmicro.gradcam": ("test_maps",)}


def region_unavailable() -> str:
    """Why the region probe cannot run in this build ('' when it can)."""
    import importlib

    for module, names in REGION_API.items():
        try:
            found = importlib.import_module(module)
        except ImportError:
            return (f"{module} (the Grad-CAM localisation: planted-region masks, mass inside, baselines) is not in "
                    "this build")
        missing = [name for name in names if not hasattr(found, name)]
        if missing:
            return f"{module} has no {', '.join(missing)} (the region probe's inputs)"
    return ""


def region_rows(run, data, manifest, depth: int) -> list[dict]:
    """Per branch of ``run``: the mean share of Grad-CAM mass inside each test clip's planted
    region, its subject-bootstrap interval, the uniform map's share (the region's area share),
    the clips scored and the zero maps left out (tsfmicro.localisation.summarise)."""
    from tsfmicro import gradcam, localisation

    clips, maps = gradcam.test_maps(run, data)
    rows = []
    for branch, found in maps.items():
        if found is None:
            continue
        masks, _ = localisation.clip_masks(data.samples.iloc[clips["sample_index"].to_numpy()], manifest,
                                           found.shape[-1])
        known = np.array([mask is not None for mask in masks])
        if not known.any():
            continue
        summary = localisation.summarise(localisation.score_maps(
            found[known], [mask for mask in masks if mask is not None], clips["subject"].to_numpy()[known]))
        rows.append({"depth": depth, "branch": branch, "share": summary["mass_share"],
                     "low": summary["mass_interval"][0], "high": summary["mass_interval"][1],
                     "uniform": summary["area_share"], "clips": summary["scored"], "zero maps": summary["zero_maps"],
                     "unknown region": int((~known).sum())})
    return rows


def region_sentence(region: pd.DataFrame, reference: int) -> str:
    """Each branch's Grad-CAM mass inside the region per depth against a uniform map's, and whether
    the interval is above it (``region``: :func:`region_rows` rows)."""
    parts = []
    for branch, rows in region.groupby("branch", sort=False):
        rows = rows.sort_values("depth")
        cells = [f"{int(r.depth)} blocks {report.format_interval(r.share, r.low, r.high, 1)} %"
                 + (" (above)" if r.low > r.uniform else " (below)" if r.high < r.uniform else "")
                 for r in rows.itertuples()]
        zero = rows["zero maps"].sum() if "zero maps" in rows else 0
        left_out = (f" ({int(zero)} of {int(zero + rows['clips'].sum())} maps were zero, pointing nowhere, and are "
                    f"left out)" if zero else "")
        parts.append(f"{branch} branch: {'; '.join(cells)}, against {100 * rows['uniform'].mean():.1f} % for a "
                     f"uniform map{left_out}")
    return ("Share of Grad-CAM mass inside the clip's planted region (95 % subject bootstrap; above/below: the "
            f"interval excludes the uniform map's share; the paper's depth is {reference}): " + "; ".join(parts) + ".")


# ----------------------------------------------------------------------------- the page
class SpatialBranchPage(ScoresPage):
    column = COLUMN
    region_reason = ""  # set by :attr:`region`: why it was not measured

    @property
    def reference(self) -> int:
        return reference(self.parameters)

    @property
    def data(self):
        section = self.section
        return self.study.data(section.dataset, section.task)

    @functools.cached_property
    def uf1(self) -> pd.DataFrame:
        """UF1 per depth and protocol: depth, protocol, mean, low, high (fractions)."""
        rows = self.scores[self.scores["metric"] == "uf1"]
        return rows.rename(columns={COLUMN: "depth"})[["depth", "protocol", "mean", "low", "high"]]

    @functools.cached_property
    def paired(self) -> pd.DataFrame:
        """The paper's depth minus each other depth, UF1, fixed protocol, paired subject x seed bootstrap."""
        return report.paired_differences(self.runs, COLUMN, self.reference)

    @functools.cached_property
    def paired_table(self) -> pd.DataFrame:
        return report.paired_table(self.paired, COLUMN, self.reference)

    @functools.cached_property
    def features(self) -> dict:
        """depth -> tsfmicro.engine.evaluate.BranchFeatures of its run's fold models."""
        from tsfmicro.engine.evaluate import branch_features

        return {key[2]: branch_features(run, self.data) for key, run in self.runs.items()}

    def truths(self) -> list:
        """PLANTED (spatial_branch): identity is in every onset frame, so the spatial branch's identity
        probe must lie above chance (1 / training subjects) at every depth, its interval's low end above
        it; nothing is planted about which depth recognises best (paired "no truth planted" rows)."""
        from tsfmicro.chapters import Truth
        from tsfmicro.chapters.ablation import paired_truth
        from tsfmicro.report import format_interval

        if not self.runs:
            return []
        truths = []
        identity = self.identity
        for _, row in identity[identity["features"] == "spatial"].iterrows():
            above = above_recovered(row["low"], row["high"], row["chance"])
            truths.append(Truth(
                truth=f"spatial branch at depth {row['depth']}: identity probe above chance",
                expected="far above chance: the onset frame shows who it is",
                measured=(f"{format_interval(row['accuracy'], row['low'], row['high'])} %, chance "
                          f"{100 * row['chance']:.1f} % ({row['subjects']} subjects)"),
                recovered=above, note={True: "the interval lies above chance",
                                       False: "the interval lies below chance",
                                       None: "not decided: the interval contains chance"}[above]
                + f" ({row['interval']})"))
        truths += [paired_truth(row, COLUMN, self.reference) for _, row in self.paired.iterrows()]
        return truths

    @functools.cached_property
    def identity(self) -> pd.DataFrame:
        """One row per depth and features: accuracy, low, high (tsfmicro.probes.IDENTITY_METHOD),
        chance, subjects, clips, and difference, d_low, d_high: that depth minus the paper's depth,
        paired subject bootstrap (NaN for the reference itself)."""
        from tsfmicro import probes

        results = {}
        for depth, found in self.features.items():
            for name in FEATURES:
                if name in found.features:
                    results[depth, name] = probes.identity_probe(found.features[name], found.clips["subject"],
                                                                 found.clips["fold"])
        rows = []
        for (depth, name), result in results.items():
            base = results.get((self.reference, name))
            difference = (probes.paired_difference(base, result) if base is not None and depth != self.reference
                          else (float("nan"),) * 3)
            rows.append({"depth": depth, "features": name, "accuracy": result.accuracy, "low": result.low,
                         "high": result.high, "chance": result.chance, "subjects": result.clips["subject"].nunique(),
                         "clips": len(result.clips), "difference": difference[0], "d_low": difference[1],
                         "d_high": difference[2], "interval": result.method})
        return pd.DataFrame(rows)

    @functools.cached_property
    def region(self) -> pd.DataFrame | None:
        """One row per depth and branch (:func:`region_rows`); None when not measured
        (:attr:`region_reason` says why)."""
        self.region_reason = region_unavailable()
        if self.region_reason:
            return None
        from tsfmicro import localisation

        section = self.section
        manifest = localisation.read_manifest(self.parameters.root(section.dataset))
        if manifest is None:
            self.region_reason = (f"where the movement is in each {section.dataset} clip is not recorded (real data); "
                                  "the regions of its action units (tsfmicro.probes.AU_REGIONS, boxes around the "
                                  "five MTCNN landmarks) are written down but not wired to Grad-CAM yet")
            return None
        data = self.data
        if not set(localisation.CROP_BOX_COLUMNS) <= set(data.samples.columns):  # a cache from before the boxes
            data = self.study.prepared(section.dataset, section.task, boxes=True)
        rows = [row for key, run in self.runs.items() for row in region_rows(run, data, manifest, key[2])]
        if not rows:
            self.region_reason = "no test clip has a known region"
            return None
        return pd.DataFrame(rows)

    @functools.cached_property
    def sizes(self) -> pd.DataFrame:
        """Parameters of T-S late with each depth (no training)."""
        from tsfmicro.model import count_parameters, model_from_config

        preset = self.parameters.params["preset"]
        return pd.DataFrame([{"depth": depth, "parameters (M)": round(count_parameters(model_from_config(
            {"preset": preset, "spatial_depth": depth}, self.classes)) / 1e6, 3)} for depth in self.depths])

    @property
    def depths(self) -> list[int]:
        return [key[2] for key in self.runs]

    @functools.cached_property
    def table(self) -> pd.DataFrame:
        """One row per depth: UF1 (both protocols), identity accuracy per features, region share
        per branch (or "not measured"), parameters."""
        def cell(mean, low, high):
            return report.format_interval(mean, low, high, 1)

        rows = []
        for depth in self.depths:
            row = {COLUMN: depth}
            for protocol in ("fixed", "oracle"):
                found = self.uf1[(self.uf1["depth"] == depth) & (self.uf1["protocol"] == protocol)].iloc[0]
                row[f"UF1 {protocol} %"] = cell(found["mean"], found["low"], found["high"])
            for _, found in self.identity[self.identity["depth"] == depth].iterrows():
                row[f"identity {found['features']} %"] = cell(found["accuracy"], found["low"], found["high"])
            if self.region is None:
                row["region share %"] = "not measured"  # the reason is in the summary
            else:
                for _, found in self.region[self.region["depth"] == depth].iterrows():
                    zero = f"; {int(found['zero maps'])} zero maps left out" if found.get("zero maps", 0) else ""
                    row[f"region {found['branch']} %"] = (f"{cell(found['share'], found['low'], found['high'])} "
                                                          f"(uniform {100 * found['uniform']:.1f}{zero})")
            row["parameters (M)"] = float(self.sizes.set_index("depth").loc[depth, "parameters (M)"])
            rows.append(row)
        table = pd.DataFrame(rows)
        chance = self.identity.groupby("depth")["chance"].first()
        table.insert(3, "identity chance %", [f"{100 * chance.get(d, float('nan')):.1f}" for d in self.depths])
        return table

    @functools.cached_property
    def embeddings(self) -> dict:
        """t-SNE of the fused features of the paper's depth and the deepest one (first fold model,
        its training clips): name -> DataFrame x, y, class, subject."""
        from tsfmicro import probes

        names = list(self.data.class_names)
        shown = [d for d in dict.fromkeys((self.reference, max(self.depths))) if d in self.features]
        out = {}
        for depth in shown:
            found = self.features[depth]
            first = found.clips["fold"] == found.clips["fold"].iloc[0]
            xy = probes.embed_2d(found.features["fused"][first.to_numpy()])
            clips = found.clips[first]
            out[f"{depth} blocks"] = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1],
                                                   "class": [names[int(t)] for t in clips["true"]],
                                                   "subject": clips["subject"].to_numpy()})
        return out

    def summary(self) -> str:
        """The verdict on the paper's claim, from the numbers (:func:`claim_sentence`)."""
        if not self.runs:
            return NOT_CONFIGURED
        text = claim_sentence(self.paired, self.identity, self.reference)
        if self.region is None:
            text += f" The region probe was not measured: {self.region_reason}."
        else:
            text += " " + region_sentence(self.region, self.reference)
        return text

    def caveat(self) -> str:
        if not self.runs or self.study.source != "SYNTHETIC":
            return ""
        return (EXPECTED_ON_SYNTHETIC + " These runs are SYNTHETIC (generated clips, a small network, few epochs): "
                "they show the sweep and the probes working, not what the spatial branch learns on real faces; run "
                "params/paper.yaml for that.")


CHAPTER = register(Chapter(name="spatial_branch", notebook="12_spatial_branch", title="What the spatial branch learns",
                           runs=runs, page=SpatialBranchPage, section=Section))
