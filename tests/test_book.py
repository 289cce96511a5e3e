"""The companion book: parameters, the study helper, every notebook under papermill, the
build with warnings as errors.

The notebook and build tests share one execution (tests/book_build.py) with the demo
parameters; the first test that needs it pays for it. As in `make book`, `tsfmicro run` trains
every run first, into a run folder of the test session that the notebooks then read: runs of
an earlier `make book` (.cache/tsfmicro/runs) are not reused, so they cannot hide a training
failure.
"""
from __future__ import annotations

import re

import nbformat
import pytest
import yaml

from book_build import BOOK_TEST_OVERRIDES, DEMO_PARAMS, NOTEBOOKS, ROOT, build_book, glued
from tsfmicro import chapters, report
from tsfmicro.study import DatasetRootMissing, Study

EXPECTED_NOTEBOOKS = chapters.notebooks()  # the chapter registry, in book order


USER_RUNS = ROOT / ".cache" / "tsfmicro" / "runs"  # params/demo.yaml's paths: runs:


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


@pytest.fixture(scope="session")
def book(tmp_path_factory):
    before = _listing(USER_RUNS)
    build = build_book(tmp_path_factory.mktemp("book"))
    assert _listing(USER_RUNS) == before, f"the book's notebooks wrote into {USER_RUNS}"
    return build


# --------------------------------------------------------------------------- sources
def test_every_notebook_has_one_parameters_cell_and_only_calls_tsfmicro():
    assert [path.stem for path in NOTEBOOKS] == EXPECTED_NOTEBOOKS
    # every notebook is a chapter, but the tool notebook explore_a_recording (tests/test_explore.py runs it)
    assert sorted(path.stem for path in (ROOT / "notebooks").glob("*.ipynb")) == sorted([*EXPECTED_NOTEBOOKS, "explore_a_recording"])
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
        assert "params_file" in tagged[0].source
        code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
        assert "provenance_box(" in code and "box.finish()" in code, path.name
        # no training loops or metric code in notebooks: only tsfmicro, its plots and glue
        imports = re.findall(r"^\s*(?:from|import)\s+([\w.]+)", code, flags=re.M)
        assert set(imports) <= {"tsfmicro", "tsfmicro.study", "tsfmicro.plots", "myst_nb"}, (path.name, imports)
        for forbidden in ("torch", "sklearn", ".backward(", "optimizer", "f1_score"):
            assert forbidden not in code, f"{path.name} contains {forbidden!r}"
        assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), \
            f"{path.name}: commit notebooks without outputs (papermill writes the executed copies)"


def test_params_files_describe_the_demo_and_the_paper_run():
    demo = yaml.safe_load(DEMO_PARAMS.read_text())
    paper = yaml.safe_load((ROOT / "params" / "paper.yaml").read_text())
    assert demo["data_source"] == "synthetic" and demo["preset"] == "tiny" and demo["device"] == "cpu"
    assert set(demo["datasets"]) == {"casme2", "samm", "casme3"}
    # at least 3 seeds (intervals over seeds); a CPU budget: the tiny network at 32 px, at most 40 epochs
    assert len(demo["seeds"]) >= 3 and demo["epochs"] <= 40 and demo["image_size"] == 32
    assert paper["data_source"] == "real" and paper["preset"] == "paper" and paper["recipe"] == "paper"
    assert paper["device"] == "cuda" and len(paper["seeds"]) >= 3
    assert paper["datasets"] == {"casme2": ["5class", "3class"], "samm": ["5class", "3class"],
                                 "casme3": ["7class", "4class"]}
    for params in (demo, paper):
        assert set(params["ablation"]["fusions"]) == {"ts_early", "t_to_s", "s_to_t", "ts_late",
                                                      "temporal_only", "spatial_only"}
        assert params["composite"]["fusions"] == ["ts_late"] and params["cross_dataset"]["lodo"] is True
    # the demo's chapters are kept small (one seed, two datasets, a smaller composite); the paper's
    # run every seed on the three datasets of the main results
    assert demo["composite"]["seeds"] == demo["cross_dataset"]["seeds"] == [0]
    assert demo["cross_dataset"]["datasets"] == ["casme2", "samm"]
    assert demo["synthetic"]["composite_subjects"] < demo["synthetic"]["subjects"]
    assert "seeds" not in paper["composite"] and "seeds" not in paper["cross_dataset"]
    assert paper["cross_dataset"]["datasets"] == ["casme2", "samm", "casme3"]


def test_study_plans_each_run_once_and_shares_ts_late():
    study = Study.load(DEMO_PARAMS)
    planned = study.parameters.planned_runs()
    # main results, fusions, composite, cross-dataset (2 x 2 cells), LODO, 1 temporal branch
    # beside retention (its seed-0 run is the ablation's ts_late), the automatic apex (the annotated
    # apex's seed-0 run is the ablation's ts_late), 2 imbalance runs (both options on seeds 0-3: four
    # seeds are not the main results' three, so cross-entropy is a run of its own whose units for
    # seeds 0-2 are the main results' SAMM units), 3 baseline networks (TSFmicro beside
    # them is the ablation's ts_late seed 0), 1 spatial depth beside the paper's 2 blocks (its seed-0
    # run is the ablation's ts_late), no run for the long recordings (their recogniser is the main
    # results' SAMM run), and the cross-dataset gap's fine-tuning and contrastive runs (its LOSO and
    # plain transfer are the cross-dataset chapter's)
    assert len(planned) == len(set(planned)) == 3 + 6 + 1 + 4 + 1 + 1 + 1 + 2 + 3 + 1 + 0 + 2
    units = study.parameters.planned_units()
    assert ("casme2", "5class", "ts_late", 0, ()) in units
    assert ("casme2", "5class", "ts_late", 0, (("apex", "automatic"),)) in units
    # 3 main results x 3 seeds, plus 5 more fusions x 1 seed (ts_late seed 0 is shared), plus one
    # seed of each run of the chapters (retention, the annotated apex and spatial depth 2 are
    # main-results units), the weighted loss on 4 seeds and cross-entropy's seed 3 (its seeds 0-2 are
    # the main results'), and
    # the fine-tuning and contrastive units of the cross-dataset gap (none for the long recordings)
    assert len(units) == 3 * 3 + 5 + 1 + 4 + 1 + 1 + 1 + 3 + (4 + 1) + 1 + 2
    assert study.source == "SYNTHETIC"
    label = study.label("fixed")
    assert "SYNTHETIC" in label and "fixed" in label and "seeds: 0, 1, 2" in label


@pytest.mark.parametrize("dataset, name, layout_file", [
    ("casme2", "CASME II", "CASME2-coding"),
    ("samm", "SAMM", "SAMM_Micro_FACS_Codes_v2.xlsx"),
    ("casme3", "CAS(ME)^3 Part A", "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"),
])
def test_missing_real_root_says_how_to_obtain_the_dataset(dataset, name, layout_file, monkeypatch, tmp_path):
    variable = f"TSFMICRO_{dataset.upper()}_ROOT"
    monkeypatch.delenv(variable, raising=False)
    study = Study.load(ROOT / "params" / "paper.yaml")
    with pytest.raises(DatasetRootMissing) as error:
        study.parameters.root(dataset)
    message = str(error.value)
    assert message.startswith(f"no folder given for {name}.")
    for needed in (f"-p {dataset}_root", variable, "paper.yaml", "licence", layout_file, "params/demo.yaml"):
        assert needed in message, needed
    # a folder that does not exist is named
    missing = tmp_path / "nope"
    with pytest.raises(DatasetRootMissing, match=re.escape(f"the {name} folder {missing} does not exist")):
        Study.load(ROOT / "params" / "paper.yaml", roots={dataset: str(missing)}).parameters.root(dataset)
    monkeypatch.setenv(variable, str(missing))  # the same from the environment variable
    with pytest.raises(DatasetRootMissing, match=re.escape(f"the {name} folder {missing} does not exist")):
        Study.load(ROOT / "params" / "paper.yaml").parameters.root(dataset)


def test_root_precedence_parameter_then_environment(monkeypatch, tmp_path):
    from_environment, from_parameter = tmp_path / "env", tmp_path / "param"
    from_environment.mkdir()
    from_parameter.mkdir()
    monkeypatch.setenv("TSFMICRO_SAMM_ROOT", str(from_environment))
    paper = ROOT / "params" / "paper.yaml"
    assert Study.load(paper).parameters.root("samm") == from_environment
    assert Study.load(paper, roots={"samm": str(from_parameter)}).parameters.root("samm") == from_parameter


def test_overrides_and_unknown_source_are_checked():
    demo = yaml.safe_load(DEMO_PARAMS.read_text())
    study = Study.load(DEMO_PARAMS, overrides={"epochs": 2, "synthetic": {"subjects": 3}})
    assert study.params["epochs"] == 2 and study.params["synthetic"]["subjects"] == 3
    # nested keys merge: the other synthetic settings stay
    assert study.params["synthetic"]["clips_per_subject"] == demo["synthetic"]["clips_per_subject"]
    with pytest.raises(ValueError, match="data_source"):
        Study.load(DEMO_PARAMS, overrides={"data_source": "maybe"})


def test_errata_parameter_reaches_the_samples_the_runs_and_the_label(synthetic_casme3_root):
    paper = ROOT / "params" / "paper.yaml"
    for params in (DEMO_PARAMS, paper):  # both say it, both keep the owners' occluded clips (the authors' choice)
        assert yaml.safe_load(params.read_text())["errata"] == "keep"
    roots = {"casme3": str(synthetic_casme3_root)}
    keep = Study.load(paper, roots=roots)
    owners = Study.load(paper, roots=roots, overrides={"errata": "owners"})
    assert keep.parameters.run_config("casme3", "7class").errata == "keep"
    assert owners.parameters.run_config("casme3", "7class").errata == "owners"
    assert "errata" not in keep.label() and "errata: owners" in owners.label()
    kept, left = keep.samples("casme3", "7class"), owners.samples("casme3", "7class")
    assert len(kept.samples) == len(left.samples) + 1
    assert left.excluded["reason"].str.contains("errata: owners").sum() == 1
    with pytest.raises(ValueError, match="errata: unknown value 'yes'; valid: keep, owners"):
        Study.load(paper, overrides={"errata": "yes"})


def _fake_run(dataset, right_per_subject):
    """An engine Run from hand-made predictions (no training): 2 classes, 4 clips per subject and
    seed; ``right_per_subject[seed][subject]`` clips of each subject predicted right."""
    import pandas as pd

    from tsfmicro import metrics
    from tsfmicro.engine import Run

    rows = []
    for seed, rights in enumerate(right_per_subject):
        for subject, right in enumerate(rights):
            true = [0, 1, 0, 1]
            predicted = [t if k < right else 1 - t for k, t in enumerate(true)]
            rows.append(pd.DataFrame({"seed": seed, "subject": f"s{subject}", "true": true, "pred_fixed": predicted,
                                      "pred_oracle": predicted}))
    predictions = pd.concat(rows, ignore_index=True)
    config = {"dataset": dataset, "task": "5class", "fusion": "ts_late", "preset": "tiny",
              "recipe": "paper", "resolved": {"recipe": {"epochs": 4}}, "seeds": list(range(len(right_per_subject))),
              "data_source": "SYNTHETIC", "class_names": ["a", "b"]}
    return Run(path=ROOT, config=config, predictions=predictions, curves=pd.DataFrame(), provenance={},
               metrics=metrics.summarize(predictions, ["a", "b"], resamples=50))


def test_result_tables_show_intervals_and_missing_paper_values_as_na():
    from tsfmicro.reported import reported

    runs = {("casme2", "5class", "ts_late"): _fake_run("casme2", [[2, 2, 2, 2], [2, 2, 2, 2]]),
            ("samm", "5class", "ts_late"): _fake_run("samm", [[0, 1, 2, 4]])}
    long = report.scores_long(runs)
    assert len(long) == 2 * 2 * 3
    wide = report.scores_wide(long, reported())
    casme2 = wide.query("dataset == 'casme2' and protocol == 'fixed'").iloc[0]
    # two identical seeds, every subject at 50 %: no resample moves the score, said in words
    assert casme2["ACC %"] == "50.0 (seeds agree; no spread in 1000 resamples)"
    assert casme2["ACC per seed %"] == "50.0 / 50.0"
    assert casme2["paper ACC %"] == ""  # the paper's values are oracle-protocol values
    casme2 = wide.query("dataset == 'casme2' and protocol == 'oracle'").iloc[0]
    assert casme2["paper ACC %"] == "87.50" and casme2["paper UF1 %"] == "n/a"
    samm = wide.query("dataset == 'samm' and protocol == 'oracle'").iloc[0]
    assert samm["ACC %"].startswith("43.8 [") and samm["interval"].endswith("(one seed)")  # 7 of 16 right
    assert samm["paper ACC %"] == "n/a"
    gain = report.oracle_gain(runs)
    assert gain["ACC pp"].iloc[0] == "+0.0 (no spread in 1000 resamples)"


def test_gradcam_maps_each_branch_of_every_fusion():
    import torch

    from tsfmicro.gradcam import branch_cams
    from tsfmicro.model import FUSIONS, build_model

    torch.manual_seed(0)
    onset, apex = torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64)
    for fusion in FUSIONS:
        model = build_model("tiny", num_classes=5, fusion=fusion)
        cams = branch_cams(model, onset, apex, target_classes=[0, 3])
        assert set(cams) == {"temporal", "spatial"}
        assert (cams["temporal"] is None) == (fusion == "spatial_only"), fusion
        assert (cams["spatial"] is None) == (fusion == "temporal_only"), fusion
        for cam in cams.values():
            if cam is not None:
                assert cam.shape == (2, 64, 64) and cam.min() >= 0 and cam.max() <= 1 + 1e-6


# --------------------------------------------------------------------------- execution
@pytest.mark.book
@pytest.mark.slow
def test_tsfmicro_run_trains_every_run_before_the_notebooks_which_only_read(book, one_torch_thread):
    assert book.run_returncode == 0, "tsfmicro run params/demo.yaml failed:\n" + book.run_log[-6000:]
    study = Study.load(DEMO_PARAMS, overrides={**BOOK_TEST_OVERRIDES, "paths": {"runs": str(book.runs)}})
    planned = {unit.path.name for unit in study.engine_plan().units}
    assert len(planned) == len(study.parameters.planned_units()) >= 21 and planned == set(book.units_after_run)
    assert book.units_after_notebooks == book.units_after_run  # papermill trained nothing


@pytest.mark.book
@pytest.mark.slow
@pytest.mark.parametrize("stem", EXPECTED_NOTEBOOKS)
def test_notebook_runs_under_papermill_with_demo_parameters(book, stem):
    assert stem not in book.errors, (
        f"notebooks/{stem}.ipynb failed under papermill: {book.errors.get(stem)}\n"
        f"the executed copy with the error is {book.executed(stem)}")
    notebook = nbformat.read(book.executed(stem), as_version=4)
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    # the provenance box comes first, says SYNTHETIC in large type, commit, device and date on
    # its one line, the rest (parameters, duration) behind its toggle, and got its duration
    first = next(o for o in outputs if "text/html" in o.get("data", {}))
    html = first["data"]["text/html"]
    assert "tsfmicro-provenance" in html and ">SYNTHETIC<" in html
    headline, details = html.split("<details", 1)
    for field_name in ("commit", "device", "date"):
        assert f"{field_name} <code>" in headline, field_name
    for field_name in ("duration", "parameters"):
        assert f">{field_name}<" in details, field_name
    assert "running…" not in html, "box.finish() did not update the provenance box"
    injected = [c for c in notebook.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "demo.yaml" in injected[0].source and str(book.runs) in injected[0].source


@pytest.mark.book
@pytest.mark.slow
def test_the_notebooks_trained_every_run_in_the_session_run_folder(book):
    """The run folder started empty: every run the book shows was trained by this build
    (`tsfmicro run`, before the notebooks)."""
    study = Study.load(DEMO_PARAMS, overrides={**BOOK_TEST_OVERRIDES, "paths": {"runs": str(book.runs)}})
    runs = sorted(p.name for p in book.runs.iterdir() if p.name != "units")
    units = sorted(p.name for p in (book.runs / "units").iterdir())
    assert len(runs) == len(study.parameters.planned_runs()) and len(units) == len(study.parameters.planned_units()), (runs, units)
    for folder in [book.runs / name for name in runs] + [book.runs / "units" / name for name in units]:
        assert (folder / "metrics.json").is_file(), f"{folder} is not a finished run"
        assert not (folder / "checkpoint.pt").exists(), folder


@pytest.mark.book
@pytest.mark.slow
def test_book_builds_with_warnings_as_errors(book):
    assert book.build_returncode == 0, "jupyter-book build book/ -W failed:\n" + book.build_log[-6000:]
    assert (book.html / "index.html").is_file()
    for stem in EXPECTED_NOTEBOOKS:
        assert (book.html / "notebooks" / f"{stem}.html").is_file(), stem
    for page in ("intro", "method", "datasets", "reproduce", "api"):
        assert (book.html / f"{page}.html").is_file(), page


@pytest.mark.book
@pytest.mark.slow
def test_prose_numbers_are_glued_from_the_notebooks(book):
    intro = (book.html / "intro.html").read_text(encoding="utf-8")
    assert "SYNTHETIC" in intro
    fixed = glued(book.executed("01_main_results"))["headline_uf1_fixed"]
    assert fixed in intro, f"the intro does not show the glued UF1 {fixed}"
