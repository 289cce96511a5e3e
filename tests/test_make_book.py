"""`make reproduce` / `make book` when the training step or a notebook fails: a non-zero exit,
a clear message, no book.

Runs the Makefile's `_book` target (what `reproduce` and `book` call after installing) in a
copy of the project, with the interpreter running the tests as BIN (CI's ./.venv, or any
other virtualenv) and parameters that make `tsfmicro run`, or the first notebook, fail: real
data, no folders.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

import tsfmicro

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def project_copy(folder: Path) -> Path:
    """What `_book` reads: Makefile, notebooks, book sources, parameters; the package under test."""
    for name in ("Makefile", "pyproject.toml", "_config.yml", "_toc.yml"):
        shutil.copy2(ROOT / name, folder / name)
    for name in ("notebooks", "params"):
        shutil.copytree(ROOT / name, folder / name)
    shutil.copytree(ROOT / "book", folder / "book", ignore=shutil.ignore_patterns("_build", "notebooks"))
    (folder / "tsfmicro").symlink_to(Path(tsfmicro.__file__).resolve().parent, target_is_directory=True)
    return folder


def run_book_target(project: Path, params: Path, *arguments: str) -> subprocess.CompletedProcess:
    """`make _book` in ``project`` with ``params``, the interpreter under test, no dataset folders."""
    make = shutil.which("make")
    assert make, "GNU make is needed (the book is built with `make book`)"
    stale = project / "_build" / "html" / "index.html"  # a book left by an earlier build
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text("old book")
    environment = {name: value for name, value in os.environ.items()
                   if not (name.startswith("TSFMICRO_") and name.endswith("_ROOT"))}
    environment["PYTHONPATH"] = str(project)  # `tsfmicro run` and the kernels import the tsfmicro under test
    return subprocess.run([make, "--no-print-directory", "_book", f"BIN={Path(sys.executable).parent}",
                           f"PARAMS={params}", *arguments], cwd=project, env=environment, capture_output=True,
                          text=True, timeout=600)


def assert_no_book(project: Path, result: subprocess.CompletedProcess) -> None:
    assert result.returncode != 0, result.stdout + result.stderr
    assert "the book was not built" in result.stderr
    assert "book: open" not in result.stdout
    assert not (project / "_build" / "html").exists(), "a book is left behind after a failure"


def test_a_failing_training_step_stops_make_before_the_notebooks(tmp_path):
    project = project_copy(tmp_path)
    params = yaml.safe_load((ROOT / "params" / "demo.yaml").read_text())
    params.update(data_source="real", roots={})  # a real-data run without the dataset folders
    failing = tmp_path / "no_datasets.yaml"
    failing.write_text(yaml.safe_dump(params))

    result = run_book_target(project, failing)
    assert_no_book(project, result)
    assert "tsfmicro run: error: no folder given for CASME II." in result.stderr, result.stderr
    assert f"make: tsfmicro run {failing} did not finish" in result.stderr
    assert not (project / "book" / "notebooks").exists() or not list((project / "book" / "notebooks").iterdir())


def test_a_failing_notebook_stops_make_with_a_clear_message_and_no_book(tmp_path):
    project = project_copy(tmp_path)
    params = yaml.safe_load((ROOT / "params" / "demo.yaml").read_text())
    params.update(datasets={"casme2": ["5class"]}, seeds=[0], epochs=1,  # a quick training step ...
                  ablation={"dataset": "casme2", "task": "5class", "fusions": ["ts_late"]},
                  gradcam={"dataset": "casme2", "task": "5class", "examples": 0},
                  synthetic={"subjects": 2, "clips_per_subject": 3, "seed": 0},
                  composite=None, cross_dataset=None, temporal_branch=None, annotation=None, imbalance=None,
                  baselines=None, long_videos=None, transfer=None,
                  # (no chapter beyond the paper)
                  paths={name: str(tmp_path / name) for name in ("synthetic", "prepared", "runs")})
    quick = tmp_path / "quick.yaml"
    quick.write_text(yaml.safe_dump(params))

    # ... then notebooks told (papermill only) that the data is real, with no dataset folders
    result = run_book_target(project, quick, 'PAPERMILL_ARGS=-y "overrides: {data_source: real}"')
    assert_no_book(project, result)
    assert f"make: notebook notebooks/00_datasets.ipynb failed with {quick}." in result.stderr, result.stderr
    executed = project / "book" / "notebooks"
    # two notebooks run at a time (NOTEBOOK_JOBS=2): the one started beside 00 ran (and failed
    # likewise); no later one started, and no failure marker is left
    assert sorted(p.name for p in executed.iterdir()) == ["00_datasets.ipynb", "01_main_results.ipynb"]
    notebook = nbformat.read(executed / "00_datasets.ipynb", as_version=4)
    errors = [output for cell in notebook.cells for output in cell.get("outputs", []) if output.output_type == "error"]
    assert errors and errors[0]["ename"] == "DatasetRootMissing", errors
