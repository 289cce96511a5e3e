"""Chapter 00, Datasets: what the parameters' datasets hold (clips, subjects, classes, excluded
and corrected rows, example crops) and, on synthetic data, the truths planted in it. It trains
nothing."""
from __future__ import annotations

from tsfmicro.chapters import Chapter, Page, register


class DatasetsPage(Page):
    """The notebook reads the data through the study (``study.dataset_overview()``,
    ``study.all_samples()``, ...) and the planted truths from the page."""

    @property
    def planted(self):
        """The truths planted in the synthetic data, one row per chapter
        (tsfmicro.data.synthetic.PLANTED), or None on real data, where nothing is planted."""
        import pandas as pd

        from tsfmicro.data.synthetic import PLANTED
        from tsfmicro.params import SYNTHETIC

        return pd.DataFrame(list(PLANTED)) if self.study.source == SYNTHETIC else None


CHAPTER = register(Chapter(name="datasets", paper="the paper's dataset description (clips, subjects, classes)",
                           notebook="00_datasets", title="Datasets", runs=lambda params: {}, page=DatasetsPage))
