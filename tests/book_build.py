"""Shared by test_book.py and test_browser.py: execute every notebook and build the book once.

The build happens in a temporary copy of the book's sources (``book/`` plus the top-level
``_config.yml`` and ``_toc.yml``), so tests never touch the working tree's ``book/notebooks``
or ``_build``. The notebooks run with ``params/demo.yaml`` from the repository root, its
``paths: runs:`` overridden (papermill ``overrides``) by an empty folder of the test session:
like `make book`, ``tsfmicro run params/demo.yaml`` (with the same folder and
BOOK_TEST_OVERRIDES) trains every run first, and the notebooks then only read; nothing is reused from ``.cache/tsfmicro/runs``
(where a run trained by an earlier ``make book`` would hide a training that now fails). The
synthetic data and face-crop caches are shared. Done once per test session, whichever test
asks first.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tsfmicro import chapters

ROOT = Path(__file__).resolve().parents[1]
# The book's notebooks in book order: the chapter registry's (tests/test_chapters.py checks that
# every notebook file belongs to a chapter)
NOTEBOOKS = [ROOT / "notebooks" / f"{name}.ipynb" for name in chapters.notebooks()]
DEMO_PARAMS = ROOT / "params" / "demo.yaml"
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
# The book tests run the demo parameters with fewer epochs (the same runs, sections, pages and
# code paths; a fraction of the training), so that CI stays within its time. What `make book`
# itself takes is measured by bench/bench_book.sh, not here; that training learns is
# tests/test_engine_learnability.py's job.
BOOK_TEST_OVERRIDES = {"epochs": 3}


@dataclass
class BookBuild:
    folder: Path  # the temporary project copy; the book is folder / "_build" / "html"
    runs: Path  # the run folder the notebooks trained into (empty before the build)
    errors: dict[str, str] = field(default_factory=dict)  # notebook stem -> error text
    seconds: dict[str, float] = field(default_factory=dict)
    build_returncode: int | None = None
    build_log: str = ""
    run_returncode: int | None = None  # `tsfmicro run` of the demo parameters, before the notebooks
    run_log: str = ""
    units_after_run: list[str] = field(default_factory=list)  # finished units when the run ended ...
    units_after_notebooks: list[str] = field(default_factory=list)  # ... and after the notebooks

    @property
    def html(self) -> Path:
        return self.folder / "_build" / "html"

    def executed(self, stem: str) -> Path:
        return self.folder / "book" / "notebooks" / f"{stem}.ipynb"


_BUILD: dict[str, BookBuild] = {}


def build_book(scratch: Path) -> BookBuild:
    """Run every notebook with the demo parameters, then ``jupyter-book build book/ -W``."""
    if "book" in _BUILD:
        return _BUILD["book"]
    folder = scratch / "project"
    shutil.copytree(ROOT / "book", folder / "book", symlinks=True,
                    ignore=shutil.ignore_patterns("_build", "notebooks"))
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(ROOT / name, folder / name)
    # book/own_method.md includes the example's code from ../examples (literalinclude)
    shutil.copytree(ROOT / "examples", folder / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "book" / "notebooks").mkdir()
    subprocess.run([sys.executable, str(ROOT / "book" / "figures" / "architecture.py")], check=True,
                   capture_output=True)
    shutil.copy2(ROOT / "book" / "figures" / "architecture.svg", folder / "book" / "figures")

    build = BookBuild(folder=folder, runs=scratch / "runs")
    build.runs.mkdir()
    overrides = {**BOOK_TEST_OVERRIDES, "paths": {"runs": str(build.runs)}}
    # As `make book`: `tsfmicro run` trains every run first (into the session's run folder), so
    # the notebooks only read finished runs. PYTHONPATH: the tsfmicro under test.
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-m", "tsfmicro", "run", str(DEMO_PARAMS), "--overrides",
                             json.dumps(BOOK_TEST_OVERRIDES), "-p", f"paths.runs={build.runs}", "--no-progress"],
                            cwd=ROOT, env=environment, capture_output=True, text=True)
    build.run_returncode, build.run_log = result.returncode, result.stdout + result.stderr
    build.units_after_run = _finished_units(build.runs)
    for notebook in NOTEBOOKS:
        started = time.time()
        error = execute_notebook(notebook, build.executed(notebook.stem),
                                 {"params_file": str(DEMO_PARAMS), "overrides": overrides})
        if error:  # recorded; each notebook's test reports its own failure
            build.errors[notebook.stem] = error
        build.seconds[notebook.stem] = time.time() - started
    build.units_after_notebooks = _finished_units(build.runs)

    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run([str(jupyter_book), "build", "book/", "-W", "--keep-going"], cwd=folder,
                            capture_output=True, text=True)
    build.build_returncode = result.returncode
    build.build_log = result.stdout + result.stderr
    _BUILD["book"] = build
    return build


def execute_notebook(notebook: Path, out: Path, parameters: dict) -> str | None:
    """Run one notebook under papermill from the repository root (as `make book` does) and
    write the executed copy to ``out``; returns the error text, or None when it ran."""
    import papermill

    try:
        papermill.execute_notebook(str(notebook), str(out), parameters=parameters,
                                   kernel_name="python3", cwd=str(ROOT), progress_bar=False)
    except Exception as error:  # papermill has written the failing cell, with its error, to out
        return f"{type(error).__name__}: {error}"
    return None


def outputs(executed: Path) -> list:
    """Every output of an executed notebook, in cell order."""
    import nbformat

    notebook = nbformat.read(executed, as_version=4)
    return [output for cell in notebook.cells for output in cell.get("outputs", [])]


def error_outputs(executed: Path) -> list[str]:
    """'ename: evalue' of each error output (a cell that raised) in an executed notebook."""
    return [f"{o.get('ename')}: {o.get('evalue')}" for o in outputs(executed) if o.output_type == "error"]


def glued(executed: Path) -> dict[str, str]:
    """The values a notebook glued (myst_nb.glue), as their plain-text form without quotes."""
    import ast

    values = {}
    for output in outputs(executed):
        key = output.get("metadata", {}).get("scrapbook", {}).get("name")
        if key:
            text = next(v for k, v in output["data"].items() if k.endswith("text/plain"))
            try:
                text = str(ast.literal_eval(text))
            except (SyntaxError, ValueError):
                pass
            values[key] = text
    return values


def _finished_units(runs: Path) -> list[str]:
    """Finished training units in a run folder."""
    return sorted(p.parent.name for p in (runs / "units").glob("*/metrics.json"))
