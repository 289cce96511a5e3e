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



class ScoresPage(Page):
    """A page whose runs are scored side by side (both protocols) beside the paper's values."""

    @functools.cached_property
    def scores(self):
        """:func:`tsfmicro.report.scores_long` of the runs."""
        from tsfmicro import report

        return report.scores_long(self.runs)

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

__all__ = ["Chapter", "Page", "CHAPTERS", "register", "unregister", "chapters", "get", "notebooks", "sectioned"]
