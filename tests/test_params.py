"""Parameters: how overrides narrow a plan, the checks Params.load (and so Study.load) runs before any
work, and what the chapters' sections plan."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tsfmicro import chapters
from tsfmicro.chapters import ablation, composite, cross_dataset
from tsfmicro.params import Params, _problems, apply_overrides
from tsfmicro.study import Study

ROOT = Path(__file__).resolve().parents[1]
DEMO_PARAMS = ROOT / "params" / "demo.yaml"
PAPER_PARAMS = ROOT / "params" / "paper.yaml"


# ------------------------------------------------------------------------------ overrides
def test_lists_and_the_datasets_mapping_are_replaced_other_mappings_merge():
    base = yaml.safe_load(DEMO_PARAMS.read_text())
    merged = apply_overrides(base, {"datasets": {"samm": ["3class"]}, "seeds": [7],
                                    "ablation": {"dataset": "samm", "fusions": ["ts_late"]},
                                    "synthetic": {"subjects": 3}})
    assert merged["datasets"] == {"samm": ["3class"]}  # not merged with casme2, casme3
    assert merged["seeds"] == [7]
    assert merged["ablation"] == {**base["ablation"], "dataset": "samm", "fusions": ["ts_late"]}
    assert merged["synthetic"] == {**base["synthetic"], "subjects": 3}
    assert base["datasets"] == {"casme2": ["5class"], "samm": ["5class"], "casme3": ["7class"]}


def test_null_removes_a_key_at_any_level():
    base = yaml.safe_load(DEMO_PARAMS.read_text())
    merged = apply_overrides(base, {"epochs": None, "ablation": {"seeds": None}})
    assert "epochs" not in merged and "seeds" not in merged["ablation"]
    assert merged["ablation"]["fusions"] == base["ablation"]["fusions"]
    study = Params.load(DEMO_PARAMS, overrides={"ablation": {"seeds": None}, "seeds": [3, 4]})
    assert ablation.seeds_of(study) == [3, 4]  # without its own seeds the ablation uses seeds:


def test_overrides_narrow_the_paper_plan_without_editing_a_file(monkeypatch):
    for dataset in ("casme2", "samm", "casme3"):
        monkeypatch.delenv(f"TSFMICRO_{dataset.upper()}_ROOT", raising=False)
    study = Params.load(PAPER_PARAMS, overrides={"datasets": {"casme2": ["5class"]}, "seeds": [0],
                                                "ablation": {"fusions": ["ts_late", "spatial_only"]},
                                                "composite": None, "cross_dataset": None,
                                                "temporal_branch": {"variants": ["retention"]}, "imbalance": None,
                                                "baselines": None, "spatial_branch": None, "transfer": None,
                                                "long_videos": None})
    assert study.dataset_tasks() == [("casme2", "5class")]
    assert [unit[:4] for unit in study.planned_units()] == [("casme2", "5class", "ts_late", 0),
                                                            ("casme2", "5class", "spatial_only", 0),
                                                            ("casme2", "5class", "ts_late", 0)]
    assert study.planned_units()[-1].options == (("apex", "automatic"),)  # annotation: automatic_apex
    assert study.params["preset"] == "paper" and study.params["recipe"] == "paper"


def test_overrides_must_be_a_mapping():
    with pytest.raises(ValueError, match="overrides must be a mapping"):
        Study.load(DEMO_PARAMS, overrides=["epochs", 2])  # the notebooks' Study checks as Params


def test_shipped_parameters_files_are_valid():
    for path in (DEMO_PARAMS, PAPER_PARAMS):
        Params.load(path)


# ------------------------------------------------------------------------------ validation
DATASETS = "valid: casme2, samm, casme3, smic, megc2019"
FUSIONS = "valid: ts_late, ts_early, t_to_s, s_to_t, temporal_only, spatial_only"
INVALID = {
    "unknown top-level key": ({"seed": [0]}, ["seed: unknown key (did you mean 'seeds'?)", "valid: data_source, datasets"]),
    "unknown ablation key": ({"ablation": {"fusion": ["ts_late"]}}, ["ablation.fusion: unknown key", "valid: dataset, task, fusions, seeds"]),
    "unknown gradcam key": ({"gradcam": {"example": 1}}, ["gradcam.example: unknown key", "valid: dataset, task, examples"]),
    "unknown synthetic key": ({"synthetic": {"subject": 2}}, ["synthetic.subject: unknown key", "valid: subjects, clips_per_subject, seed"]),
    "unknown paths key": ({"paths": {"run": "x"}}, ["paths.run: unknown key (did you mean 'runs'?)", "valid: synthetic, prepared, runs"]),
    "unknown dataset": ({"datasets": {"casme": ["5class"]}}, ["datasets.casme: unknown dataset", DATASETS]),
    "unknown task": ({"datasets": {"casme2": ["7class"], "samm": ["5class"], "casme3": ["7class"]}},
                     ["datasets.casme2: unknown '7class'", "valid: 5class, 3class"]),
    "unknown fusion": ({"ablation": {"fusions": ["late"]}}, ["ablation.fusions: unknown 'late' (did you mean 'ts_late'?)", FUSIONS]),
    "unknown preset": ({"preset": "small"}, ["preset: unknown value 'small'", "valid: paper, tiny"]),
    "unknown recipe": ({"recipe": "authors"}, ["recipe: unknown value 'authors'", "valid: paper, authors_code"]),
    "unknown device": ({"device": "gpu"}, ["device: unknown value 'gpu'", "valid: auto, cuda, mps, cpu"]),
    "unknown precision": ({"precision": "fp16"}, ["precision: unknown value 'fp16' (did you mean 'bf16'?)", "valid: fp32, bf16"]),
    "unknown rotary": ({"rotary": "axis"}, ["rotary: unknown value 'axis'", "valid: flat, axial"]),
    "unknown errata choice": ({"errata": "yes"}, ["errata: unknown value 'yes'", "valid: keep, owners"]),
    "unknown data source": ({"data_source": "maybe"}, ["data_source: unknown value 'maybe'", "valid: synthetic, real"]),
    "ablation dataset not in datasets": (
        {"datasets": {"samm": ["5class"]}, "gradcam": {"dataset": "samm"}},
        ["ablation: casme2 5class is not in datasets: (samm: 5class)"]),
    "gradcam task not in datasets": ({"gradcam": {"task": "3class"}},
                                     ["gradcam: casme2 3class is not in datasets: (casme2: 5class; samm: 5class; casme3: 7class)"]),
    "empty datasets": ({"datasets": {}}, ["datasets: {} must map at least one dataset to its tasks", DATASETS]),
    "empty tasks": ({"datasets": {"casme2": [], "samm": ["5class"]}},
                    ["datasets.casme2: [] must be a non-empty list; valid: 5class, 3class"]),
    "empty fusions": ({"ablation": {"fusions": []}}, ["ablation.fusions: [] must be a non-empty list", FUSIONS]),
    "empty seeds": ({"seeds": []}, ["seeds: [] must be a non-empty list of whole numbers"]),
    "empty ablation seeds": ({"ablation": {"seeds": []}}, ["ablation.seeds: [] must be a non-empty list"]),
    "repeated seed": ({"seeds": [0, 0]}, ["seeds: [0, 0] lists a seed more than once"]),
    "repeated fusion": ({"ablation": {"fusions": ["ts_late", "ts_late"]}}, ["ablation.fusions: ts_late listed more than once"]),
    "removed required section": ({"ablation": None}, ["ablation: missing (a required key)"]),
    "negative examples": ({"gradcam": {"examples": -1}}, ["gradcam.examples: -1 is not a whole number >= 0"]),
    "zero epochs": ({"epochs": 0}, ["epochs: 0 is not a positive whole number or null"]),
    "flag not a boolean": ({"progress": "yes"}, ["progress: 'yes' is not true or false"]),
    "unknown composite key": ({"composite": {"fusion": ["ts_late"]}}, ["composite.fusion: unknown key", "valid: fusions, seeds"]),
    "unknown composite fusion": ({"composite": {"fusions": ["late"]}}, ["composite.fusions: unknown 'late'", FUSIONS]),
    "empty composite seeds": ({"composite": {"seeds": []}}, ["composite.seeds: [] must be a non-empty list"]),
    "composite not a mapping": ({"composite": [1]}, ["composite: [1] is not a mapping; it holds the keys fusions, seeds"]),
    "cross-dataset without datasets": ({"cross_dataset": {"datasets": None}},
                                       ["cross_dataset.datasets: missing (a required key)"]),
    "cross-dataset empty datasets": ({"cross_dataset": {"datasets": []}},
                                     ["cross_dataset.datasets: [] must be a non-empty list; valid: casme2, samm, casme3, smic"]),
    "cross-dataset one dataset": ({"cross_dataset": {"datasets": ["samm"]}},
                                  ["cross_dataset.datasets: ['samm'] names one dataset; give at least two"]),
    "cross-dataset dataset without the shared task": (
        {"cross_dataset": {"datasets": ["samm", "megc2019"]}},
        ["cross_dataset.datasets: unknown 'megc2019'", "valid: casme2, samm, casme3, smic"]),
    "cross-dataset repeated dataset": ({"cross_dataset": {"datasets": ["samm", "samm"]}},
                                       ["cross_dataset.datasets: samm listed more than once"]),
    "cross-dataset lodo not a boolean": ({"cross_dataset": {"lodo": "yes"}}, ["cross_dataset.lodo: 'yes' is not true or false"]),
    "unknown cross-dataset key": ({"cross_dataset": {"pairs": 2}}, ["cross_dataset.pairs: unknown key", "valid: datasets, lodo, seeds"]),
    "unknown temporal branch": ({"temporal_branch": {"variants": ["retention", "mamba"]}},
                                ["temporal_branch.variants: unknown 'mamba'",
                                 "valid: retention, retention_no_decay, transformer, conv"]),
    "empty temporal branch variants": ({"temporal_branch": {"variants": []}},
                                       ["temporal_branch.variants: [] must be a non-empty list"]),
    "temporal branch task not in datasets": (
        {"temporal_branch": {"task": "3class"}},
        ["temporal_branch: casme2 3class is not in datasets:", "or leave the chapter out: temporal_branch: null"]),
    "unknown temporal branch key": ({"temporal_branch": {"variant": ["conv"]}},
                                    ["temporal_branch.variant: unknown key (did you mean 'variants'?)"]),
    "unknown imbalance option": ({"imbalance": {"options": ["focal", "smote"]}},
                                 ["imbalance.options: unknown 'smote'",
                                  "valid: cross_entropy, weighted_cross_entropy, focal, class_balanced"]),
    "imbalance task not in datasets": (
        {"imbalance": {"tasks": ["samm/5class", "casme2/3class"]}},
        ["imbalance.tasks: casme2/3class is not in datasets: (casme2/5class, samm/5class, casme3/7class)",
         "or leave the chapter out: imbalance: null"]),
    "imbalance task not dataset/task": ({"imbalance": {"tasks": ["samm"]}},
                                        ["imbalance.tasks: 'samm' is not dataset/task, e.g. samm/5class"]),
    "empty imbalance tasks": ({"imbalance": {"tasks": []}}, ["imbalance.tasks: [] must be a non-empty list"]),
    "repeated imbalance task": ({"imbalance": {"tasks": ["samm/5class", "samm/5class"]}},
                                ["imbalance.tasks: samm/5class listed more than once"]),
    "empty imbalance seeds": ({"imbalance": {"seeds": []}}, ["imbalance.seeds: [] must be a non-empty list"]),
}


@pytest.mark.parametrize("overrides, expected", INVALID.values(), ids=INVALID.keys())
def test_invalid_parameters_are_named_with_their_valid_values(overrides, expected):
    with pytest.raises(ValueError) as error:
        Params.load(DEMO_PARAMS, overrides=overrides)
    message = str(error.value)
    assert message.startswith(f"{DEMO_PARAMS} with overrides: invalid parameters (nothing was run)")
    for text in expected:
        assert text in message


def test_every_problem_is_reported_at_once():
    with pytest.raises(ValueError) as error:
        Params.load(DEMO_PARAMS, overrides={"seeds": [], "preset": "small", "colour": "red"})
    problems = [line for line in str(error.value).splitlines() if line.startswith("  - ")]
    assert [line.split(":")[0] for line in problems] == ["  - colour", "  - preset", "  - seeds"]


def test_unknown_dataset_root_and_unknown_key_in_a_file(tmp_path):
    with pytest.raises(ValueError, match=r"roots\.casme4: unknown dataset .*" + DATASETS):
        Params.load(DEMO_PARAMS, roots={"casme4": str(tmp_path)})
    params = yaml.safe_load(DEMO_PARAMS.read_text())
    params["gradcam"]["colourmap"] = "jet"
    written = tmp_path / "mine.yaml"
    written.write_text(yaml.safe_dump(params))
    with pytest.raises(ValueError, match=r"mine\.yaml: invalid parameters .*\n  - gradcam\.colourmap: unknown key"):
        Params.load(written)



def test_a_chapter_option_is_one_planned_run_and_shows_in_the_plan_options():
    from tsfmicro.engine.runs import config_options
    from tsfmicro.params import PlannedRun, run_options

    study = Params.load(DEMO_PARAMS)
    plain = study.run_config("casme2", "5class")
    assert config_options(plain) == {}  # rotary: flat in the parameters is the preset's own
    variant = study._planned_config(PlannedRun("casme2", "5class", "ts_late", (0,),
                                               run_options(temporal_branch="transformer", rotary=None)))
    assert config_options(variant) == {"temporal_branch": "transformer"}
    assert variant.seeds == (0,) and variant.dataset == "casme2"
    assert run_options(b=1, a=None, c="x") == (("b", 1), ("c", "x"))


def test_the_chapter_sections_plan_their_runs_and_can_be_left_out(tmp_path):
    from tsfmicro.params import PlannedRun, run_options

    study = Params.load(DEMO_PARAMS, overrides={"cross_dataset": {"datasets": ["casme2", "samm", "casme3"]}})
    planned = study.planned_runs()
    assert PlannedRun("megc2019", "3class", "ts_late", (0,)) in planned  # composite: fusions [ts_late], seeds [0]
    pairs = cross_dataset.pairs(study)
    assert len(pairs) == 9 and pairs[:3] == [("casme2", "casme2"), ("casme2", "samm"), ("casme2", "casme3")]
    assert cross_dataset.planned(study, "samm", "samm") == PlannedRun("samm", "3class_megc", "ts_late", (0,))
    assert cross_dataset.planned(study, "samm", "casme3") == PlannedRun(
        "samm", "3class_megc", "ts_late", (0,), run_options(test_dataset="casme3"))
    assert cross_dataset.lodo_planned(study) == PlannedRun("megc2019", "3class", "ts_late", (0,), run_options(split="lodo"))
    for pair in pairs:
        assert cross_dataset.planned(study, *pair) in planned
    # a cross-dataset request gets both folders
    (tmp_path / "SAMM").mkdir()
    (tmp_path / "CASME3").mkdir()
    paper = Params.load(PAPER_PARAMS, roots={"samm": str(tmp_path / "SAMM"), "casme3": str(tmp_path / "CASME3")})
    variant = paper._planned_config(cross_dataset.planned(paper, "samm", "casme3"))
    assert (variant.dataset, variant.test_dataset, variant.task) == ("samm", "casme3", "3class_megc")
    assert (variant.root, variant.test_root) == (str(tmp_path / "SAMM"), str(tmp_path / "CASME3"))
    # the synthetic composite has its own (smaller) size per part
    small = Params.load(DEMO_PARAMS, overrides={"paths": {"synthetic": str(tmp_path / "synthetic")}, "synthetic": {
        "composite_subjects": 1, "composite_clips_per_subject": 3}})
    assert small.root("megc2019").name == "megc2019-1x3-seed0"
    assert (small.root("megc2019") / "combined_3class_gt.csv").is_file()
    # a section left out (null) plans nothing; the seeds fall back to `seeds`
    bare = Params.load(DEMO_PARAMS, overrides={"composite": None, "cross_dataset": None, "transfer": None})
    assert cross_dataset.pairs(bare) == [] and cross_dataset.lodo_planned(bare) is None
    assert all(run.dataset != "megc2019" and run.task != "3class_megc" for run in bare.planned_runs())
    assert PlannedRun("megc2019", "3class", "ts_late", (4, 5)) in Params.load(
        DEMO_PARAMS, overrides={"composite": {"seeds": None}, "seeds": [4, 5]}).planned_runs()


def test_a_section_written_null_in_the_file_is_absent(tmp_path):
    params = yaml.safe_load(DEMO_PARAMS.read_text())
    params.update(composite=None, cross_dataset=None)
    written = tmp_path / "mine.yaml"
    written.write_text(yaml.safe_dump(params))
    study = Params.load(written)
    assert composite.runs(study) == {} and cross_dataset.runs(study) == {}


def test_the_paper_plan_names_the_chapters_runs_without_their_folders(monkeypatch):
    for dataset in ("casme2", "samm", "casme3", "smic", "megc2019"):
        monkeypatch.delenv(f"TSFMICRO_{dataset.upper()}_ROOT", raising=False)
    study = Params.load(PAPER_PARAMS)
    available, missing = study.run_configs(missing_roots=True)
    assert available == []
    cross = [c for c in missing if c.test_dataset is not None]
    assert len(cross) == 6 and all(c.root == "" and c.test_root == "" for c in cross)
    assert {(c.dataset, c.test_dataset) for c in cross} == {
        (a, b) for a in ("casme2", "samm", "casme3") for b in ("casme2", "samm", "casme3") if a != b}
    assert [c.split for c in missing if c.dataset == "megc2019" and c.arch == "tsfmicro"] == [None, "lodo"]
def test_the_temporal_branch_and_imbalance_sections_plan_their_variants_sharing_the_papers_run():
    from tsfmicro.engine.runs import config_options
    from tsfmicro.params import PlannedRun, run_options

    study = Params.load(DEMO_PARAMS, overrides={
        "seeds": [0, 1],  # the counts below are for two seeds, whatever the demo's
        "composite": None, "cross_dataset": None, "annotation": None, "baselines": None,  # their own tests
        "spatial_branch": None,  # chapter 12: tests/test_spatial_branch.py
        "transfer": None,  # chapter 14: tests/test_transfer.py
        "temporal_branch": {"variants": ["retention", "conv", "transformer"], "seeds": [0]},
        "imbalance": {"tasks": ["samm/5class", "casme3/7class"], "options": ["cross_entropy", "focal", "class_balanced"],
                      "seeds": None}})
    runs = study.planned_runs()
    main = [PlannedRun(d, t, "ts_late", (0, 1)) for d, t in study.dataset_tasks()]
    assert runs[:3] == main and len(runs) == len(set(runs))
    # retention (the paper's) with seed 0 is the main results' run: no extra run, seed 0 shared
    assert PlannedRun("casme2", "5class", "ts_late", (0,)) in runs  # also the fusion ablation's ts_late
    branch = [r for r in runs if dict(r.options).get("temporal_branch")]
    assert [(r.dataset, r.task, r.seeds, r.options) for r in branch] == [
        ("casme2", "5class", (0,), run_options(temporal_branch=b)) for b in ("conv", "transformer")]
    imbalance = [r for r in runs if set(dict(r.options)) & {"loss", "sampling"}]
    assert [(r.dataset, r.task, r.seeds, r.options) for r in imbalance] == [
        (d, t, (0, 1), o) for d, t in (("samm", "5class"), ("casme3", "7class"))
        for o in (run_options(loss="focal"), run_options(sampling="class_balanced"))]
    assert PlannedRun("samm", "5class", "ts_late", (0, 1)) in main  # the paper's option: the main run
    assert [config_options(study._planned_config(r)) for r in imbalance[:2]] == [
        {"loss": "focal"}, {"sampling": "class_balanced"}]
    assert study.section_seeds("imbalance") == (0, 1) and study.section_seeds("temporal_branch") == (0,)
    units = study.planned_units()
    assert len(units) == 6 + 5 + 2 + 2 * 2 * 2  # main (3 tasks x 2 seeds), ablation's other 5 fusions, branches, imbalance

    # left out or null: no runs, nothing to read
    for overrides in ({"temporal_branch": None, "imbalance": None, "composite": None, "cross_dataset": None,
                       "annotation": None, "baselines": None, "spatial_branch": None, "transfer": None},):
        bare = Params.load(DEMO_PARAMS, overrides=overrides)
        assert chapters.temporal_branch.variants(bare) == {} and chapters.imbalance.tasks(bare) == []
        assert all(not run.options for run in bare.planned_runs())
    written = yaml.safe_load(DEMO_PARAMS.read_text())
    written["temporal_branch"] = written["imbalance"] = None  # `null` in a file, as in an override
    assert not _problems(written)
