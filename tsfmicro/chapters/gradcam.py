"""Chapter 04, Grad-CAM: where the main results' T-S late network looks, on a few test clips of
``gradcam:``'s dataset/task, and its attention maps."""
from __future__ import annotations

import functools
from dataclasses import dataclass

from tsfmicro.chapters import Chapter, Page, Truth, register
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
        localisation = getattr(self, "localisation", None)
        if localisation is None:
            return [Truth(truth="temporal Grad-CAM peak inside the moving region (pointing game)",
                          expected="hit rate above the random-map baseline", measured="not measured yet",
                          recovered=None, note="not decided: this page has no pointing game yet "
                                               "(GradcamPage.localisation)")]
        return localisation_truths(localisation)

    def attention_summary(self) -> str:
        from tsfmicro import attention_maps

        if self.panels:
            return attention_maps.attention_summary(self.panels)
        return "No attention maps: there are no Grad-CAM examples on this page."


# The columns :func:`localisation_truths` decides from (fractions): one row per branch.
LOCALISATION_COLUMNS = ("branch", "hit_rate", "hit_low", "hit_high", "baseline")


def localisation_truths(table) -> list[Truth]:
    """The pointing game of a localisation table (``GradcamPage.localisation``: one row per
    branch with ``hit_rate`` and its 95 % interval ``hit_low``/``hit_high`` and the random-map
    ``baseline`` hit rate, fractions; ``zero_maps``/``clips`` and ``mass``/``mass_low``/``mass_high``/
    ``area_share`` used when present): the temporal branch's interval above the baseline is a
    recovery (and its mass share's above the area share); other branches are shown for contrast,
    nothing planted. A table without these columns is not decided, with the columns it lacks named."""
    import pandas as pd

    from tsfmicro.report import format_interval

    table = getattr(table, "table", table)  # a result object holding its table
    if not isinstance(table, pd.DataFrame) or not set(LOCALISATION_COLUMNS) <= set(table.columns):
        have = ", ".join(map(str, getattr(table, "columns", []))) or "none"
        return [Truth(truth="temporal Grad-CAM peak inside the moving region (pointing game)",
                      expected="hit rate above the random-map baseline", measured=f"columns: {have}",
                      recovered=None, note="not decided: the localisation table lacks "
                                           + ", ".join(c for c in LOCALISATION_COLUMNS if c not in set(
                                               getattr(table, "columns", []))))]
    truths = []
    for _, row in table.iterrows():
        temporal = str(row["branch"]) == "temporal"
        measured = (f"hit rate {format_interval(row['hit_rate'], row['hit_low'], row['hit_high'])} %, "
                    f"random {100 * row['baseline']:.1f} %")
        zero = f"; {int(row['zero_maps'])} of {int(row['clips'])} maps all zero, left out" if (
            "zero_maps" in row and "clips" in row and row["zero_maps"]) else ""
        above = row["hit_low"] > row["baseline"]
        if temporal:
            truths.append(Truth(truth="temporal Grad-CAM peak inside the moving region (pointing game)",
                                expected="hit rate above the random-map baseline", measured=measured,
                                recovered=bool(above),
                                note=("the interval lies above the baseline" if above else
                                      "the interval does not lie above the baseline") + zero))
        else:
            truths.append(Truth(truth=f"{row['branch']} Grad-CAM peak inside the moving region (pointing game)",
                                expected="no truth planted: shown for contrast", measured=measured,
                                recovered=None, note="nothing is planted about where this branch's map lies" + zero))
        if temporal and {"mass", "mass_low", "mass_high", "area_share"} <= set(row.index):
            inside = row["mass_low"] > row["area_share"]
            truths.append(Truth(truth="temporal Grad-CAM mass inside the moving region",
                                expected="more than the region's share of the crop (a uniform map's)",
                                measured=(f"{format_interval(row['mass'], row['mass_low'], row['mass_high'])} %, "
                                          f"area {100 * row['area_share']:.1f} %"),
                                recovered=bool(inside),
                                note="the interval lies above the area share" if inside else
                                "the interval does not lie above the area share"))
    return truths


CHAPTER = register(Chapter(name="gradcam", paper="the paper's Grad-CAM visualisation", notebook="04_gradcam", title="Grad-CAM", runs=runs, page=GradcamPage,
                           section=Section, required=True))
