"""Chapter 00, Datasets: what the parameters' datasets hold (clips, subjects, classes, excluded
and corrected rows, example crops). It trains nothing."""
from __future__ import annotations

from tsfmicro.chapters import Chapter, Page, register


class DatasetsPage(Page):
    """The notebook reads the data through the study (``study.dataset_overview()``,
    ``study.all_samples()``, ...); the page adds nothing of its own."""


CHAPTER = register(Chapter(name="datasets", paper="the paper's dataset description (clips, subjects, classes)", notebook="00_datasets", title="Datasets",
                           runs=lambda params: {}, page=DatasetsPage))
