"""Every notebook runs for every kind of valid parameter set, not only the demo's.

Each parameter set narrows a parameters file through ``overrides`` alone (no file is
edited), as a user with a subset of the datasets would:

- ``samm_alone``: one dataset (SAMM, without CASME II beside it), one seed, a fusion
  ablation of two variants that are neither ``spatial_only`` nor ``ts_late`` nor
  ``ts_early``, ``gradcam: examples: 0``, and the baselines chapter with two of its networks on
  the flow input (its tasks default to ``datasets:``: SAMM 5-class); the other sets leave that
  chapter out, and its page must say so;
- ``megc2019``: the MEGC2019 composite (CASME II + SAMM + SMIC parts, 3 classes), an
  "ablation" of ``ts_late`` alone (nothing more to train), one Grad-CAM example per class
  and outcome;
- ``paper``: ``params/paper.yaml`` itself (real data source, the ``paper`` preset at
  224 px, the ``paper`` recipe) cut to one epoch, one seed, CASME II 5-class only, on a
  tiny synthetic CASME II folder given as ``casme2_root`` (2 subjects x 2 usable clips:
  the paper network is ~13 GFLOPs per clip forward), Grad-CAM included, on one CPU thread.

Every notebook of each set runs under papermill and must finish with no error output;
the sentences that name variants, datasets or tasks must follow the parameters. All
sets share one temporary ``paths:`` folder (synthetic data, face crops, runs), so the
user's ``.cache/tsfmicro`` is never touched, and a notebook reuses the runs the one before
it trained. Rendering each set with jupyter-book is left to the demo's book test.
"""
from __future__ import annotations

import pytest

from book_build import DEMO_PARAMS, NOTEBOOKS, ROOT, error_outputs, execute_notebook, glued, outputs

pytestmark = [pytest.mark.book, pytest.mark.slow]

# The chapters beyond the paper (05 composite, 06 cross-dataset, 07 temporal branch, 08 onset and
# apex sensitivity, 09 class imbalance, 11 baselines except in samm_alone, 12 spatial branch, 14 transfer) are left out (CI time; their sections name datasets these sets narrow away): the
# compute page's plan is then exactly what the result pages below train.
BEYOND = {"composite": None, "cross_dataset": None, "temporal_branch": None, "annotation": None,
          "imbalance": None, "baselines": None, "spatial_branch": None, "transfer": None,
          "long_videos": None}
TINY = {"seeds": [0], "epochs": 2, "synthetic": {"subjects": 2, "clips_per_subject": 3}, **BEYOND}
PARAMETER_SETS = {
    "samm_alone": (DEMO_PARAMS, {
        **TINY,
        "datasets": {"samm": ["5class"]},
        "ablation": {"dataset": "samm", "fusions": ["t_to_s", "s_to_t"], "seeds": None},
        "gradcam": {"dataset": "samm", "examples": 0},
        "baselines": {"networks": ["ststnet", "off_apexnet"], "tasks": None, "composite": False, "seeds": None,
                      "epochs": None},
    }),
    "megc2019": (DEMO_PARAMS, {
        **TINY,
        "datasets": {"megc2019": ["3class"]},
        "ablation": {"dataset": "megc2019", "task": "3class", "fusions": ["ts_late"], "seeds": None},
        "gradcam": {"dataset": "megc2019", "task": "3class", "examples": 1},
    }),
    "paper": (ROOT / "params" / "paper.yaml", {
        "datasets": {"casme2": ["5class"]},
        "seeds": [0], "epochs": 1, "device": "cpu", "cpu_threads": 1,
        "ablation": {"fusions": ["ts_late", "spatial_only"]},
        "gradcam": {"examples": 1},
        **BEYOND,
    }),
}
RESULT_PAGES = ("00_datasets", "01_main_results", "02_fusion_ablation", "03_confusion_matrices", "04_gradcam",
                "11_baselines", "10_compute")
# book order, except the compute page last in each set: it checks that every planned unit is finished
CASES = [(name, stem) for name in PARAMETER_SETS for stem in RESULT_PAGES
         if stem in {notebook.stem for notebook in NOTEBOOKS}]


@pytest.fixture(scope="session")
def matrix_folder(tmp_path_factory):
    """One folder for the whole matrix: paths (synthetic, prepared, runs) and executed copies."""
    return tmp_path_factory.mktemp("notebook_matrix")


def _execute(name: str, stem: str, folder, casme2_root):
    params_file, overrides = PARAMETER_SETS[name]
    overrides = {**overrides, "paths": {key: str(folder / key) for key in ("synthetic", "prepared", "runs")}}
    parameters = {"params_file": str(params_file), "overrides": overrides}
    if name == "paper":
        parameters["casme2_root"] = str(casme2_root)
    notebook = ROOT / "notebooks" / f"{stem}.ipynb"
    executed = folder / "executed" / name / notebook.name
    executed.parent.mkdir(parents=True, exist_ok=True)
    return executed, execute_notebook(notebook, executed, parameters)


@pytest.mark.parametrize(("name", "stem"), CASES, ids=[f"{name}-{stem}" for name, stem in CASES])
def test_notebook_runs_with_narrowed_parameters(name, stem, matrix_folder, synthetic_casme2_small_root):
    executed, error = _execute(name, stem, matrix_folder, synthetic_casme2_small_root)
    assert error is None, f"notebooks/{stem}.ipynb failed with the {name} parameters: {error}\n" \
                          f"(executed copy: {executed})"
    assert not error_outputs(executed)
    values = glued(executed)
    # every set is synthetic data (the paper set through the marker file of its root), and
    # its runs live in the matrix folder, never in the user's run store
    box = values["provenance"]
    assert box.startswith("data source: SYNTHETIC"), box
    assert str(matrix_folder / "runs") in box
    CHECKS[stem](name, values, executed)


# ------------------------------------------------------------------ what each page must say
def _datasets_page(name, values, executed):
    assert values["n_datasets"] == "1"  # the override replaced the file's datasets: mapping


def _main_results_page(name, values, executed):
    expected = {"samm_alone": "samm 5class", "megc2019": "megc2019 3class", "paper": "casme2 5class"}
    assert values["headline_task"] == expected[name]
    assert values["seeds"] == "0"
    assert values["preset"] == ("paper" if name == "paper" else "tiny")


def _ablation_page(name, values, executed):
    summary = values["ablation_summary"]
    fusions = PARAMETER_SETS[name][1]["ablation"]["fusions"]
    # T-S late against each other variant by a paired interval, or said why nothing is compared;
    # never a ranking (nothing is planted about which fusion is best)
    if "ts_late" not in fusions:
        assert "was not run with these parameters (not in the ablation's fusions), so nothing is compared" in summary
    elif len(fusions) == 1:
        assert "No fusion variants other than ts_late were run beside it, so nothing is compared." in summary
    else:
        assert "ts_late minus each of the fusion variants, paired bootstrap" in summary, summary
    assert "best" not in summary, summary
    for fusion in ("ts_late", "spatial_only"):
        said = "reaches UF1" if fusion in fusions else "was not run with these parameters"
        assert f"({fusion}" in summary and said in summary.split(f"({fusion}")[1].split(".")[0], \
            (fusion, summary)
    # the paper's own values, quoted by the introduction whatever the parameters
    assert values["paper_late_acc"] and values["paper_early_acc"]


def _confusion_page(name, values, executed):
    images = [o for o in outputs(executed) if "image/png" in o.get("data", {})]
    assert len(images) == 2  # one (dataset, task): its confusion figure under each protocol (fixed, oracle)


def _gradcam_page(name, values, executed):
    examples = PARAMETER_SETS[name][1]["gradcam"]["examples"]
    images = [o for o in outputs(executed) if "image/png" in o.get("data", {})]
    if examples == 0:
        assert images == [] and values["gradcam_summary"].startswith("No Grad-CAM maps")
    else:
        assert len(images) == 2 and "test clips of" in values["gradcam_summary"]  # Grad-CAM, then attention
        assert values["attention_summary"].startswith("At the Grad-CAM peak, in the temporal branch")


def _baselines_page(name, values, executed):
    images = [o for o in outputs(executed) if "image/png" in o.get("data", {})]
    if PARAMETER_SETS[name][1].get("baselines") is None:
        assert values["baselines_summary"].startswith("These parameters do not configure this chapter")
        assert images == []
    else:  # the flow figure and the bars; the pairs are TSFmicro minus each network, never a ranking
        assert len(images) == 2
        summary = values["baselines_summary"]
        assert "STSTNet" in summary and "OFF-ApexNet" in summary and "best" not in summary, summary
        assert "samm 5class" in values["baselines_recovered"], values["baselines_recovered"]


def _compute_page(name, values, executed):
    # every unit the parameters plan (counted by Study, not by hand) is listed, and all are
    # finished: the notebooks before it trained them into the matrix folder
    from tsfmicro.study import Study

    params_file, overrides = PARAMETER_SETS[name]
    roots = {"casme2": str(executed.parents[2] / "casme2_small")} if name == "paper" else None
    expected = len(Study.load(params_file, overrides=overrides, roots=roots).parameters.planned_units())
    assert values["units"] == str(expected) and values["units_done"] == str(expected), (values, expected)
    images = [o for o in outputs(executed) if "image/png" in o.get("data", {})]
    assert len(images) == 1  # the training-times figure


CHECKS = {"00_datasets": _datasets_page, "01_main_results": _main_results_page,
          "02_fusion_ablation": _ablation_page, "03_confusion_matrices": _confusion_page,
          "04_gradcam": _gradcam_page, "11_baselines": _baselines_page, "10_compute": _compute_page}
