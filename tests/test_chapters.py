"""The chapter registry (tsfmicro.chapters): every list of chapters is read from it (notebooks,
_toc.yml, the Makefile, the parameters' sections, the plan), and a chapter defined in this file
alone is checked, planned, trained by `tsfmicro run` and shown through Study like the book's own."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from helpers import write_synthetic_params
from tsfmicro import chapters, params as parameters, report
from tsfmicro.cli import main
from tsfmicro.params import Params
from tsfmicro.sections import PlannedRun, names, seeds, setting
from tsfmicro.study import Study

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------- the registry
def test_the_notebooks_toc_and_makefile_follow_the_registry():
    listed = chapters.notebooks()
    assert listed[0] == "00_datasets" and listed[-1] == "14_transfer" and len(listed) == len(set(listed)) == 15
    # every notebook is a chapter, but the tool notebook explore_a_recording (tests/test_explore.py runs it)
    assert sorted(path.stem for path in (ROOT / "notebooks").glob("*.ipynb")) == sorted([*listed, "explore_a_recording"])
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    (results,) = [part for part in toc["parts"] if part["caption"].startswith("Results")]
    assert [entry["file"] for entry in results["chapters"]] == [f"notebooks/{name}" for name in listed], (
        "_toc.yml's results part must list the registry's notebooks in book order: "
        "python -m tsfmicro.chapters toc prints them")
    printed = subprocess.run([sys.executable, "-m", "tsfmicro.chapters", "notebooks"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout.split()
    assert printed == listed
    makefile = (ROOT / "Makefile").read_text()
    assert "NOTEBOOKS = $(shell $(BIN)/python -m tsfmicro.chapters notebooks)" in makefile
    assert "00_datasets" not in makefile  # no list kept by hand


def test_each_notebook_opens_its_chapter_page_and_titles_its_box_from_the_registry():
    import nbformat

    for chapter in chapters.chapters():
        notebook = nbformat.read(ROOT / "notebooks" / f"{chapter.notebook}.ipynb", as_version=4)
        code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
        assert f'page = study.chapter("{chapter.name}")' in code and "study.provenance_box(page.title)" in code
        heading = next(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
        assert heading.startswith(f"# {chapter.title}"), (chapter.notebook, heading.splitlines()[0])


def test_sections_are_frozen_and_their_keys_are_the_parameters_keys():
    for chapter in chapters.sectioned():
        assert dataclasses.is_dataclass(chapter.section) and chapter.section.__dataclass_params__.frozen
        assert chapter.name in (parameters.REQUIRED if chapter.required else parameters.OPTIONAL)
    demo = Params.load(ROOT / "params" / "demo.yaml")
    section = demo.section("cross_dataset")
    assert section.datasets == ("casme2", "samm") and section.lodo is True and section.seeds == (0,)
    with pytest.raises(dataclasses.FrozenInstanceError):
        section.lodo = False
    assert Params.load(ROOT / "params" / "demo.yaml", overrides={"composite": None}).section("composite") is None
    assert Params.load(ROOT / "params" / "demo.yaml", overrides={"composite": {"fusions": None}}).section(
        "composite").fusions == ("ts_late",)  # a key left out: the section's default
    with pytest.raises(KeyError, match=r"no chapter 'composit' \(did you mean 'composite'\?\)"):
        Study.load(ROOT / "params" / "demo.yaml").chapter("composit")


def test_a_chapter_name_or_notebook_is_registered_once():
    chapter = chapters.get("composite")
    with pytest.raises(ValueError, match="already registered"):
        chapters.register(chapter)
    with pytest.raises(ValueError, match="notebook '05_composite' already belongs"):
        chapters.register(dataclasses.replace(chapter, name="another"))


# --------------------------------------------------------------------------------------- a toy chapter
# Everything a new chapter needs, in this file only: its section, the runs it plans, what its page shows.
@dataclass(frozen=True)
class ToySection:
    """``toy:``: fusions trained LOSO on the first dataset/task of ``datasets:``."""

    fusions: tuple[str, ...] = setting(names(("ts_late", "ts_early", "spatial_only")))
    seeds: tuple[int, ...] | None = setting(seeds(), default=None)


def toy_runs(params) -> dict:
    section = params.section("toy")
    if section is None:
        return {}
    dataset, task = params.dataset_tasks()[0]
    return {(dataset, task, fusion): PlannedRun(dataset, task, fusion, params.section_seeds("toy"))
            for fusion in section.fusions}


class ToyPage(chapters.Page):
    def table(self):
        return report.scores_wide(report.scores_long(self.runs))

    def sentence(self) -> str:
        fixed = report.scores_long(self.runs).query("protocol == 'fixed' and metric == 'uf1'")
        best = fixed.loc[fixed["mean"].idxmax()]
        return f"Of {len(fixed)} fusions, {best['fusion']} scores best (UF1 {100 * best['mean']:.1f} %)."


@pytest.fixture
def toy_chapter():
    chapter = chapters.register(chapters.Chapter(name="toy", notebook="99_toy", title="Toy", runs=toy_runs,
                                                 page=ToyPage, section=ToySection))
    yield chapter
    chapters.unregister("toy")
    assert "toy" not in parameters.OPTIONAL


@pytest.fixture
def toy_params(tmp_path):
    """Two synthetic CASME II subjects of 4 clips, 1 epoch: the main results and the ablation share
    T-S late seed 0; the toy chapter adds T-S early."""
    return write_synthetic_params(tmp_path, "toy.yaml", toy={"fusions": ["ts_late", "ts_early"]})


def test_a_toy_chapter_is_checked_planned_trained_and_shown(toy_chapter, toy_params, tmp_path, capsys,
                                                             one_torch_thread):
    # the parameters' checks know its section: keys, values, "did you mean"
    assert "toy" in parameters.OPTIONAL and chapters.notebooks()[-1] == "99_toy"
    with pytest.raises(ValueError) as error:
        Params.load(toy_params, overrides={"toy": {"fusions": ["late"], "seed": [0]}})
    message = str(error.value)
    assert "  - toy.seed: unknown key (did you mean 'seeds'?); valid: fusions, seeds" in message
    assert "  - toy.fusions: unknown 'late' (did you mean 'ts_late'?); valid: ts_late, ts_early, spatial_only" in message
    with pytest.raises(ValueError, match="toy: unknown key"):  # without it the chapter is not a parameter
        chapters.unregister("toy")
        try:
            Params.load(toy_params)
        finally:
            chapters.register(toy_chapter)

    # the plan: its runs after the book's chapters, T-S late shared with the main results
    params = Params.load(toy_params)
    assert params.planned_runs() == [PlannedRun("casme2", "5class", "ts_late", (0,)),
                                     PlannedRun("casme2", "5class", "ts_early", (0,))]
    assert main(["plan", str(toy_params)]) == 0
    assert "ts_early" in capsys.readouterr().out

    # `tsfmicro run` trains it, then the study shows it without training again
    assert main(["run", str(toy_params), "--no-progress"]) == 0
    units = sorted(path.name for path in (tmp_path / "runs" / "units").iterdir())
    assert len(units) == 2 and any("ts_early" in name for name in units)
    study = Study.load(toy_params)
    page = study.chapter("toy")
    assert page is study.chapter("toy") and page.title == "Toy" and page.configured
    assert set(page.runs) == {("casme2", "5class", "ts_late"), ("casme2", "5class", "ts_early")}
    assert all(run.path.parent == tmp_path / "runs" for run in page.runs.values())
    table = page.table()
    assert list(table["fusion"].unique()) == ["ts_late", "ts_early"] and set(table["protocol"]) == {"fixed", "oracle"}
    assert page.sentence().startswith("Of 2 fusions, ")
    assert sorted(path.name for path in (tmp_path / "runs" / "units").iterdir()) == units  # nothing retrained
    assert [Path(run.path).name for run in study.runs_used()] == [Path(run.path).name for run in page.runs.values()]


def test_the_datasets_page_lists_the_planted_truths_on_synthetic_data_only():
    """Every chapter with a planted truth has its row (what, expected, why), shown only when the
    data is synthetic: on real datasets nothing is planted."""
    from tsfmicro.data.synthetic import PLANTED
    from tsfmicro.study import Study

    planted = Study.load(ROOT / "params" / "demo.yaml").chapter("datasets").planted
    assert list(planted.columns) == ["chapter", "planted", "expected", "why"]
    assert len(planted) == len(PLANTED) and planted.chapter.is_unique
    assert planted.notna().all().all() and (planted.map(len) > 10).all().all()
    for number in ("01", "04", "06", "08", "09"):  # the chapters issue 18 plants an effect for
        assert planted.chapter.str.contains(rf"(^|, ){number} ").any(), number  # named from the registry
    real = Study.load(ROOT / "params" / "paper.yaml")  # no dataset folder given: nothing read, nothing planted
    assert real.chapter("datasets").planted is None
