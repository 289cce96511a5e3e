"""Chapter 04, Grad-CAM: where the main results' T-S late network looks, on a few test clips of
``gradcam:``'s dataset/task, and its attention maps."""
from __future__ import annotations

import functools
from dataclasses import dataclass

from tsfmicro.chapters import Chapter, Page, register
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

    def attention_summary(self) -> str:
        from tsfmicro import attention_maps

        if self.panels:
            return attention_maps.attention_summary(self.panels)
        return "No attention maps: there are no Grad-CAM examples on this page."


CHAPTER = register(Chapter(name="gradcam", paper="the paper's Grad-CAM visualisation", notebook="04_gradcam", title="Grad-CAM", runs=runs, page=GradcamPage,
                           section=Section, required=True))
