"""Chapter 00, Datasets: what the parameters' datasets hold (clips, subjects, classes, excluded
and corrected rows, example crops) and, on synthetic data, the truths planted in it. It trains
nothing."""
from __future__ import annotations

import functools

import pandas as pd

from tsfmicro.chapters import Chapter, Page, Truth, chapters, register

# Largest/smallest class ratio a planted imbalance must reach: the balanced writer gave <= 1.1,
# the real proportions give 3.7 to 4.75 (PLANTED); a small synthetic set rounds them, each class
# keeps at least two clips, so 2 is what tests/test_synthetic_planted.py holds the writers to.
IMBALANCE_RATIO = 2.0


def planted_table() -> pd.DataFrame:
    """PLANTED for display: its chapters named from the registry ("01 Main results, ..."), then
    what is planted, what a correct pipeline shows, and why."""
    from tsfmicro.data.synthetic import PLANTED

    def named(names) -> str:  # in book order
        return ", ".join(f"{c.notebook[:2]} {c.title}" for c in chapters() if c.name in names)

    return pd.DataFrame([{"chapter": named(row["chapters"]),
                          "planted": row["planted"], "expected": row["expected"], "why": row["why"]}
                         for row in PLANTED])


def class_ratio_truths(distribution: pd.DataFrame, imbalanced: tuple[str, ...]) -> list[Truth]:
    """The data side of the planted imbalance, per dataset/task of ``distribution``
    (tsfmicro.report.class_distribution): the largest/smallest class ratio against
    :data:`IMBALANCE_RATIO` where the writer plants the real proportions (``imbalanced``), and
    "not decided" where it writes balanced classes. Counted, not estimated: no interval."""
    truths = []
    for (dataset, task), part in distribution.groupby(["dataset", "task"], sort=False):
        ratio = float(part["largest / smallest"].iloc[0])
        largest, smallest = part.loc[part["clips"].idxmax()], part.loc[part["clips"].idxmin()]
        measured = (f"largest/smallest {ratio:g} ({largest['class_name']} {largest['clips']}, "
                    f"{smallest['class_name']} {smallest['clips']} clips)")
        planted = dataset in imbalanced
        truths.append(Truth(
            truth=f"{dataset} {task}: class counts in the real dataset's proportions",
            expected=f"largest/smallest >= {IMBALANCE_RATIO:g}" if planted else "balanced (no imbalance planted)",
            measured=measured,
            recovered=ratio >= IMBALANCE_RATIO if planted else None,
            note=("counted on the sample table (no sampling involved)" if planted else
                  f"the {dataset} writer plants balanced classes, so there is nothing to recover")))
    return truths


class DatasetsPage(Page):
    """The notebook reads the data through the study (``study.dataset_overview()``,
    ``study.all_samples()``, ...) and the planted truths from the page."""

    @property
    def planted(self):
        """The truths planted in the synthetic data (tsfmicro.data.synthetic.PLANTED, as
        :func:`planted_table`), or None on real data, where nothing is planted."""
        return planted_table() if self.synthetic else None

    @functools.cached_property
    def distribution(self) -> pd.DataFrame:
        from tsfmicro import report

        return report.class_distribution(self.study.all_samples())

    def truths(self) -> list[Truth]:
        """Class proportions of every dataset/task of the parameters (the imbalance chapter's
        planted truth, on the data side)."""
        from tsfmicro.data.synthetic import PLANTED

        imbalanced = tuple(name for row in PLANTED for name in row.get("imbalanced", ()))
        return class_ratio_truths(self.distribution, imbalanced)


CHAPTER = register(Chapter(name="datasets", paper="the paper's dataset description (clips, subjects, classes)",
                           notebook="00_datasets", title="Datasets", runs=lambda params: {}, page=DatasetsPage))
