"""Chapter 04, Grad-CAM: where the main results' T-S late network looks, on a few test clips of
``gradcam:``'s dataset/task, and its attention maps."""
from __future__ import annotations

import functools
from dataclasses import dataclass

from tsfmicro.chapters import Chapter, Page, Truth, above_recovered, register
from tsfmicro.sections import OnMainResultsTask, PlannedRun, is_int, setting


def _examples(value, key, params) -> list[str]:
    if is_int(value) and value >= 0:
        return []
    return [f"{key}: {value!r} is not a whole number >= 0 (examples per class and outcome; 0 draws no Grad-CAM)"]


@dataclass(frozen=True)
class Section(OnMainResultsTask):
    """``gradcam:`` (required)."""

    dataset: str = setting()
    task: str = setting()
    examples: int = setting(_examples)



def runs(params) -> dict:
    """The main results' run of the dataset/task (none with ``examples: 0``)."""
    section = params.section("gradcam")
    if section is None or section.examples <= 0:
        return {}
    return {(section.dataset, section.task, "ts_late"): PlannedRun(section.dataset, section.task, "ts_late",
                                                                   tuple(params.seeds))}


class GradcamPage(Page):
    @functools.cached_property
    def panels(self) -> list:
        """Grad-CAM (and attention maps) of up to ``examples`` test clips per class and outcome."""
        from tsfmicro import gradcam

        section = self.section
        if section.examples <= 0:  # examples: 0 draws no maps (and trains nothing for this page)
            return []
        (run,) = self.runs.values()
        # attention=True: also the attention maps of the next section (one more forward pass per clip)
        return gradcam.explain_predictions(run, self.study.data(section.dataset, section.task),
                                           per_class=section.examples, attention=True)

    @functools.cached_property
    def localisation(self):
        """Does each branch's Grad-CAM point at the planted moving region? One row per branch
        (temporal, and spatial for contrast) over ALL test clips of the first seed, each explained
        by its own fold model for the class it predicted; and the temporal branch's first stage
        (``temporal_stage1``, a finer map: gradcam.TEMPORAL_STAGE1) (tsfmicro.localisation: pointing game and
        mass share with subject-bootstrap intervals, the random-map baseline, the other clips'
        regions, zero maps counted and left out). Empty when the region is not known (real data:
        no manifest) or there is no run (``examples: 0``); :meth:`localisation_summary` says why."""
        import pandas as pd

        from tsfmicro import gradcam, localisation

        self._localisation_note = ""
        if not self.planned:
            self._localisation_note = ("No localisation scores: gradcam: examples: is 0 in these parameters, so "
                                       "this page has no run.")
            return pd.DataFrame(columns=localisation.TABLE_COLUMNS)
        section = self.section
        manifest = localisation.read_manifest(self.parameters.root(section.dataset))
        if manifest is None:
            self._localisation_note = (f"Where the movement is in each {section.dataset} clip is not known (real "
                                       "data carry no planted region), so no pointing game is scored here.")
            return pd.DataFrame(columns=localisation.TABLE_COLUMNS)
        (run,) = self.runs.values()
        data = self.study.data(section.dataset, section.task)
        if not set(localisation.CROP_BOX_COLUMNS) <= set(data.samples.columns):  # a cache from before the boxes
            data = self.study.prepared(section.dataset, section.task, boxes=True)
        # the temporal branch's output, its first stage (finer; see gradcam.TEMPORAL_STAGE1) and,
        # for contrast, the spatial branch, which sees no motion
        clips, maps = gradcam.test_maps(run, data, branches=("temporal", gradcam.TEMPORAL_STAGE1, "spatial"))
        size = next((m.shape[-1] for m in maps.values() if m is not None), None)
        if size is None:  # a network without these maps (tsfmicro.model: feature_layers())
            self._localisation_note = (f"The {run.config.get('arch') or 'tsfmicro'} network has none of the maps "
                                       "scored here (temporal, temporal_stage1, spatial).")
            return pd.DataFrame(columns=localisation.TABLE_COLUMNS)
        masks, reasons = localisation.clip_masks(data.samples.iloc[clips["sample_index"].to_numpy()], manifest, size)
        known = [mask is not None for mask in masks]
        unknown = [reason for reason in reasons if reason]
        if unknown:
            self._localisation_note = (f"{len(unknown)} of {len(masks)} test clips have no known region and are "
                                       f"left out ({'; '.join(sorted(set(unknown)))}).")
        rows, self._localisation_summaries = [], {}
        for branch, branch_maps in maps.items():
            if branch_maps is None or not any(known):
                continue
            scores = localisation.score_maps(branch_maps[known], [m for m in masks if m is not None],
                                             clips["subject"][known].tolist())
            summary = localisation.summarise(scores)
            self._localisation_summaries[branch] = summary
            rows.append(localisation.table_row(branch, summary))
        return pd.DataFrame(rows, columns=localisation.TABLE_COLUMNS)

    def localisation_table(self):
        """:attr:`localisation` as shown: each value with its interval in one cell."""
        from tsfmicro import localisation

        return localisation.display_table(self.localisation)

    def localisation_summary(self) -> str:
        """The localisation scores in words, generated from the numbers (or why there are none)."""
        from tsfmicro import localisation

        table = self.localisation
        if table.empty:
            return self._localisation_note
        words = [localisation.sentence(branch, summary) for branch, summary in self._localisation_summaries.items()]
        return " ".join(words + ([self._localisation_note] if self._localisation_note else [])
                        + [f"Intervals: {localisation.INTERVAL}."])

    @property
    def figure_label(self) -> str:
        section = self.section
        seed = self.parameters.seeds[0]  # the engine keeps the first seed's fold weights only
        return f"{section.dataset} {section.task}, ts_late | " + self.study.label("fixed", [seed])

    def summary(self) -> str:
        section = self.section
        if self.panels:
            return (f"{len(self.panels)} test clips of {section.dataset} {section.task}, up to {section.examples} "
                    "per class and outcome. Grad-CAM weights each channel of the branch's output map by the "
                    "gradient of the predicted class's score averaged over the map, sums the weighted "
                    "channels and keeps the positive part: red marks the positions whose features raise "
                    "that score most. Each map is scaled to its own maximum (colour bar), so compare "
                    "locations, not colours, between rows.")
        return (f"No Grad-CAM maps: gradcam: examples: is {section.examples} in these parameters."
                if section.examples == 0 else f"No test predictions of {section.dataset} {section.task} to explain.")

    def truths(self) -> list[Truth]:
        """The temporal map's peak in the planted moving region more often than a random map's
        (pointing game), read from ``self.localisation`` when the page has it
        (tsfmicro/localisation.py); otherwise one row that says it is not measured yet."""
        table = self.localisation
        return localisation_truths(table, getattr(self, "_localisation_note", ""))

    def attention_summary(self) -> str:
        from tsfmicro import attention_maps

        if self.panels:
            return attention_maps.attention_summary(self.panels)
        return "No attention maps: there are no Grad-CAM examples on this page."


# The columns :func:`localisation_truths` decides from (fractions): one row per branch.
LOCALISATION_COLUMNS = ("branch", "clips", "zero maps", "pointing game %", "pointing low %", "pointing high %",
                        "random map %", "other clips' regions %", "mass share %", "mass low %", "mass high %",
                        "area share %")
# The map that must find the planted region: the temporal branch's first stage (grid S/2), fine enough
# for the region; the branch's output grid (S/16: 2 x 2 at the demo's 32 px) is coarser than it.
RECOVERING_MAP = "temporal_stage1"


def localisation_truths(table, note: str = "") -> list[Truth]:
    """The pointing game of ``GradcamPage.localisation`` (tsfmicro.localisation.TABLE_COLUMNS, percent):
    the temporal branch's first-stage map must put its peak in the planted region more often than
    both baselines (a random map: the region's area share; the same maps against other clips'
    regions, which catches a map that always points at one part of the face): its interval's low end
    above both is a recovery, as is its mass share's low end above the area share. The branch's output
    map and the spatial branch are shown for contrast, nothing planted about them. ``note``: why the
    table is empty (real data, no examples)."""
    import pandas as pd

    from tsfmicro.report import format_interval

    truth = "temporal branch (first stage) Grad-CAM peak inside the moving region (pointing game)"
    expected = "hit rate above a random map's and above the same maps scored on other clips' regions"
    if not isinstance(table, pd.DataFrame) or table.empty or not set(LOCALISATION_COLUMNS) <= set(table.columns):
        return [Truth(truth=truth, expected=expected, measured="not measured", recovered=None,
                      note=note or "not decided: no localisation table")]
    truths = []
    for _, row in table.iterrows():
        branch = str(row["branch"])
        others = row["other clips' regions %"]
        def interval(*percents):  # the table holds percent; format_interval takes fractions
            return format_interval(*(value / 100 for value in percents))

        measured = (f"{interval(row['pointing game %'], row['pointing low %'], row['pointing high %'])} %; "
                    f"random map {row['random map %']:.1f} %, other clips' regions {others:.1f} %")
        zero = (f"; {int(row['zero maps'])} of {int(row['clips'])} maps all zero (Grad-CAM keeps the positive part: "
                "every position's weighted channels summed to <= 0), left out" if row["zero maps"] else "")
        if branch == RECOVERING_MAP:
            bar = max(row["random map %"], row["other clips' regions %"])
            above = above_recovered(row["pointing low %"], row["pointing high %"], bar)
            truths.append(Truth(truth=truth, expected=expected, measured=measured, recovered=above,
                                note={True: "the interval lies above both baselines",
                                      False: "the interval lies below the higher baseline",
                                      None: "not decided: the interval holds the higher baseline"}[above] + zero))
            inside = above_recovered(row["mass low %"], row["mass high %"], row["area share %"])
            truths.append(Truth(
                truth="temporal branch (first stage) Grad-CAM mass inside the moving region",
                expected="more than the region's share of the crop (a uniform map's)",
                measured=(f"{interval(row['mass share %'], row['mass low %'], row['mass high %'])} %, "
                          f"area {row['area share %']:.1f} %"),
                recovered=inside, note={True: "the interval lies above the area share",
                                        False: "the interval lies below the area share",
                                        None: "not decided: the interval holds the area share"}[inside]))
        else:
            what = ("the branch's output map (its grid is 1/16 of the input side: coarser than the region)"
                    if branch == "temporal" else f"the {branch} branch")
            truths.append(Truth(truth=f"{branch} Grad-CAM peak inside the moving region (pointing game)",
                                expected="no truth planted: shown for contrast", measured=measured, recovered=None,
                                note=f"nothing is planted about where {what} points" + zero))
    return truths


CHAPTER = register(Chapter(name="gradcam", paper="the paper's Grad-CAM visualisation", notebook="04_gradcam", title="Grad-CAM", runs=runs, page=GradcamPage,
                           section=Section, required=True))
