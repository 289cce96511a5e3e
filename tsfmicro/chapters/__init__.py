"""The book's chapters, one module each, and the registry that every list of chapters is read from.

A chapter (:class:`Chapter`) is: its notebook (``notebooks/<notebook>.ipynb``) and title; its
section of the parameters file, when it has one (a frozen dataclass checked by
tsfmicro.sections, e.g. ``composite:``); the runs it needs (``runs(params)``: key ->
PlannedRun); and what its notebook reads (``page``: a :class:`Page` subclass; the notebook gets
it from ``study.chapter(name)``: its runs, tables and sentences).

The registry drives the parameters' checks (tsfmicro.params: which sections exist and what
they hold), the plan (``Params.planned_runs``: every chapter's runs in book order, each once),
and the list of notebooks (the Makefile's ``NOTEBOOKS``: ``python -m tsfmicro.chapters
notebooks``; ``_toc.yml`` and the book tests are checked against it).

Adding a chapter: one module in this package that ends with ``register(Chapter(...))`` (every
module here is imported when the package is), plus its notebook and its line in ``_toc.yml``
(ARCHITECTURE.md, "Add a chapter").
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Chapter:
    name: str  # study.chapter(name); also its section's key in a parameters file, when it has one
    notebook: str  # notebooks/<notebook>.ipynb; book order is the order of these names
    title: str  # the page's title (its provenance box)
    runs: Callable[[Any], dict]  # Params -> {key: PlannedRun}: what the chapter needs trained
    page: type  # a Page subclass: what its notebook reads
    section: type | None = None  # frozen dataclass of its parameters section (tsfmicro.sections)
    required: bool = False  # the section must be in every parameters file (else optional; null: absent)
    # what its figures and tables re-derive, in their numbered captions: "the paper's <table or
    # figure>", or "beyond the paper" (a question the paper leaves open)
    paper: str = "beyond the paper"


CHAPTERS: dict[str, Chapter] = {}


def register(chapter: Chapter) -> Chapter:
    """Add a chapter to the book (its name and notebook must be new)."""
    if chapter.name in CHAPTERS:
        raise ValueError(f"a chapter named {chapter.name!r} is already registered")
    if any(other.notebook == chapter.notebook for other in CHAPTERS.values()):
        raise ValueError(f"notebook {chapter.notebook!r} already belongs to another chapter")
    CHAPTERS[chapter.name] = chapter
    return chapter


def unregister(name: str) -> None:
    """Remove a chapter (tests that register a chapter of their own)."""
    CHAPTERS.pop(name, None)


def chapters() -> list[Chapter]:
    """Every chapter in book order (its notebook's name: 00_datasets, 01_main_results, ...)."""
    return sorted(CHAPTERS.values(), key=lambda chapter: chapter.notebook)


def get(name: str) -> Chapter:
    if name not in CHAPTERS:
        from tsfmicro.sections import valid_values

        raise KeyError(f"no chapter {name!r}{valid_values(name, CHAPTERS)}")
    return CHAPTERS[name]


def notebooks() -> list[str]:
    """The notebooks of the book, in book order (without .ipynb)."""
    return [chapter.notebook for chapter in chapters()]


def sectioned() -> list[Chapter]:
    """The chapters with a section in the parameters file, in book order."""
    return [chapter for chapter in chapters() if chapter.section is not None]


@dataclass(frozen=True)
class Truth:
    """One planted truth of a chapter against what its page measured.

    ``truth``: what is checked, in words that also name the measurement (on real data only this,
    ``measured`` and ``note`` are shown); ``expected``: the planted direction and size;
    ``measured``: the page's own number with its interval; ``recovered``: True / False when the
    interval decides it (it excludes "no effect", or the planted value), None when the data cannot
    decide (``note`` says why) or nothing is planted; ``note``: how it was decided, or why not."""

    truth: str
    expected: str
    measured: str
    recovered: bool | None
    note: str = ""


def paired_recovered(verdict: str, expected: str = "reference higher") -> bool | None:
    """A paired comparison's verdict (tsfmicro.metrics: "reference higher", "reference lower",
    "inside noise", "no difference", "not paired") read against the planted ``expected`` one:
    True when the interval lies on the planted side of 0, False when it lies on the other side
    (the data contradict the truth), None when it contains 0 or nothing was compared: an
    interval that holds "no effect" decides nothing, either way."""
    opposite = {"reference higher": "reference lower", "reference lower": "reference higher"}[expected]
    return True if verdict == expected else False if verdict == opposite else None


def above_recovered(low: float, high: float, bar: float, side: str = "above") -> bool | None:
    """An interval [low, high] against a planted "``side`` (above / below) ``bar``": True when it
    lies wholly on that side, False when wholly on the other (contradicted), None when it holds the
    bar or is not a number (not decided)."""
    if side not in ("above", "below"):
        raise ValueError(f"side must be 'above' or 'below', not {side!r}")
    if not (math.isfinite(low) and math.isfinite(high)):
        return None
    wanted, other = (low > bar, high < bar) if side == "above" else (high < bar, low > bar)
    return True if wanted else False if other else None


def apart_recovered(lower: tuple[float, float], upper: tuple[float, float]) -> bool | None:
    """Two unpaired intervals (low, high), the first planted below the second: True when they do
    not overlap in that order, False when the first lies wholly above the second (contradicted),
    None when they overlap or are not numbers (different clips, so no paired test decides)."""
    if not all(math.isfinite(v) for v in (*lower, *upper)):
        return None
    return True if lower[1] < upper[0] else False if lower[0] > upper[1] else None


RECOVERED = {True: "yes", False: "no", None: "not decided"}
TRUTH_COLUMNS = ("truth", "expected", "measured", "recovered", "note")
MEASURED_COLUMNS = ("measurement", "measured", "note")


def truths_table(truths: list[Truth], synthetic: bool = True):
    """One row per truth: truth, expected, measured, recovered (yes / no / not decided), note; on
    real data (``synthetic`` false) nothing is planted: measurement, measured, note only."""
    import pandas as pd

    if synthetic:
        rows = [{"truth": t.truth, "expected": t.expected, "measured": t.measured,
                 "recovered": RECOVERED[t.recovered], "note": t.note} for t in truths]
        return pd.DataFrame(rows, columns=list(TRUTH_COLUMNS))
    rows = [{"measurement": t.truth, "measured": t.measured, "note": t.note} for t in truths]
    return pd.DataFrame(rows, columns=list(MEASURED_COLUMNS))


def truths_caption(planted: list[dict], synthetic: bool, any_truths: bool = True) -> str:
    """One line above the truths table: what is planted for the chapter (PLANTED) and how
    "recovered" is decided; on real data, that only measurements are shown."""
    if not synthetic:
        return ("Real data: nothing is planted, so this table shows only what the page measures "
                "(the synthetic demo compares the same measurements with known answers).")
    if not planted:
        return "Nothing is planted for this chapter (tsfmicro.data.synthetic.PLANTED has no row for it)."
    what = "; ".join(row["planted"] for row in planted)
    if not any_truths:
        return f"Planted: {what}. These parameters give this page nothing to check it against."
    return (f"Planted (tsfmicro.data.synthetic.PLANTED): {what}. Recovered: yes or no only where the "
            f"interval decides it; 'not decided' says why.")


class Page:
    """What a chapter's notebook reads (``study.chapter(name)``). Everything is computed when
    first asked for and kept, so a notebook asks for what it shows in the order it shows it
    (the provenance box lists the runs in the order they were read)."""

    def __init__(self, study, chapter: Chapter):
        self.study = study
        self.chapter = chapter
        self.parameters = study.parameters

    @property
    def title(self) -> str:
        return self.chapter.title

    @property
    def section(self):
        """The chapter's checked section (a frozen dataclass), or None when the parameters leave it out."""
        return self.parameters.section(self.chapter.name) if self.chapter.section is not None else None

    @property
    def seeds(self) -> list[int]:
        """The seeds of the chapter's runs: its section's ``seeds``, else the parameters' seeds."""
        return list(self.parameters.section_seeds(self.chapter.name))

    @property
    def configured(self) -> bool:
        """Whether these parameters configure the chapter (a chapter without a section always is)."""
        return self.chapter.section is None or self.section is not None

    @functools.cached_property
    def planned(self) -> dict:
        """key -> PlannedRun of the chapter's runs."""
        return self.chapter.runs(self.parameters)

    @functools.cached_property
    def runs(self) -> dict:
        """key -> finished run (tsfmicro.results.Run; trained now when missing)."""
        return {key: self.study.planned(run) for key, run in self.planned.items()}

    # ------------------------------------------------------------------ planted vs recovered
    @property
    def synthetic(self) -> bool:
        """Whether the page's data is synthetic (truths planted) or real (only measurements)."""
        from tsfmicro.params import SYNTHETIC

        return self.study.source == SYNTHETIC

    @property
    def planted_rows(self) -> list[dict]:
        """The rows of tsfmicro.data.synthetic.PLANTED that name this chapter (by registry name)."""
        from tsfmicro.data.synthetic import PLANTED

        return [row for row in PLANTED if self.chapter.name in row["chapters"]]

    def truths(self) -> list["Truth"]:
        """This page's planted truths, each with what the page measured and whether it was
        recovered (a chapter module overrides it; none by default)."""
        return []

    def truths_table(self):
        """:meth:`truths` for display (:func:`truths_table`): on real data without the planted
        columns."""
        return truths_table(self.computed_truths, self.synthetic)

    def truths_caption(self) -> str:
        """The one-line caption of :meth:`truths_table`."""
        return truths_caption(self.planted_rows, self.synthetic, bool(self.computed_truths))

    def truths_label(self) -> str:
        """The provenance line under :meth:`truths_table`: the study's, with the chapter's own seeds
        (a chapter trained on seed 0 alone says so, not the main results' seeds)."""
        return self.study.label(seeds=self.seeds)

    @functools.cached_property
    def computed_truths(self) -> list["Truth"]:
        """:meth:`truths`, computed once (the table and its caption both read it)."""
        return list(self.truths())



class ScoresPage(Page):
    """A page whose runs are scored side by side (both protocols) beside the paper's values.
    ``column``: what the runs' keys vary in their third place (a fusion, a temporal branch, a
    method, a depth, an imbalance option), the scores' column of that name."""

    column = "fusion"

    @functools.cached_property
    def scores(self):
        """:func:`tsfmicro.report.scores_long` of the runs."""
        from tsfmicro import report

        return report.scores_long(self.runs, column=self.column)

    @property
    def classes(self) -> int:
        """The number of classes of the page's task (its first run's)."""
        return len(next(iter(self.runs.values())).class_names)

    @functools.cached_property
    def table(self):
        """The scores beside the paper's values (oracle rows only: the paper's are oracle values)."""
        from tsfmicro import report, reported

        return report.scores_wide(self.scores, reported.reported())

def _register_builtin() -> None:
    """Import every chapter module of this package (each registers itself): a new chapter is a
    new module here, listed nowhere else."""
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


_register_builtin()

__all__ = ["Chapter", "Page", "Truth", "truths_table", "truths_caption", "CHAPTERS", "register", "unregister", "chapters", "get", "notebooks", "sectioned"]
