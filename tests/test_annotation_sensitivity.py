"""Onset and apex sensitivity: the apex option of a run, shifted-frame evaluation of trained fold
models (a shift of 0 is the run itself), the comparisons' numbers and sentences, parameters."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tsfmicro import metrics, sensitivity
from tsfmicro.chapters import annotation
from tsfmicro.data import prepare
from helpers import torch_threads
from tsfmicro.engine import RunConfig, evaluate, loso, runs, train

SHIFTS = [-50, 50]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(synthetic_casme2_root, engine_cache_dir, tmp_path_factory):
    """A tiny T-S late run (seed 0, 1 epoch, one thread) and its data with shifted frames."""
    with torch_threads(1):
        config = RunConfig(dataset="casme2", root=synthetic_casme2_root, task="5class", preset="tiny", epochs=1,
                           batch_size=8, seeds=(0,), device="cpu", out=tmp_path_factory.mktemp("runs"),
                           cache_dir=engine_cache_dir)
        run = train(config, progress=False)
        data = prepare("casme2", synthetic_casme2_root, "5class", crop_size=64, cache_dir=engine_cache_dir,
                       progress=False, shifts=SHIFTS)
        yield run, data


# ------------------------------------------------------------------------------ shifted clips
def test_shift_zero_reproduces_the_runs_predictions_exactly(trained, one_torch_thread, monkeypatch):
    run, data = trained
    evaluation = evaluate.shift_predictions(run, data)
    table = evaluation.predictions
    assert set(table["kind"]) == {"apex", "onset"} and sorted(set(table["percent"])) == [-50.0, 0.0, 50.0]
    assert evaluation.excluded.empty and len(table) == 2 * 3 * len(run.predictions)
    own = run.predictions.set_index("clip_id")
    for kind in ("apex", "onset"):
        zero = table[(table["kind"] == kind) & (table["percent"] == 0)].set_index("clip_id")
        assert len(zero) == len(own) and (zero["moved"] == 0).all()
        assert (zero["pred"] == own.loc[zero.index, "pred_fixed"]).all()
        for name in run.class_names:  # bit for bit: the same batches as training evaluated
            assert np.array_equal(zero[f"prob_{name}"].to_numpy(np.float32),
                                  own.loc[zero.index, f"prob_fixed_{name}"].to_numpy(np.float32))
    assert sensitivity.zero_shift_differences(evaluation, run) == 0
    # a moved apex is another input: other probabilities for the clips it moved
    late = table[(table["kind"] == "apex") & (table["percent"] == 50)].set_index("clip_id")
    moved = late.index[late["moved"] != 0]
    assert len(moved) > len(late) // 2
    name = f"prob_{run.class_names[0]}"
    assert not np.allclose(late.loc[moved, name], own.loc[moved, f"prob_fixed_{run.class_names[0]}"])
    # kept in the run folder: the second call reads it, no model runs
    assert evaluation.path.parent == run.path / "evaluations" and evaluation.path.is_file()
    monkeypatch.setattr(loso.FoldTrainer, "predict", lambda *a, **k: pytest.fail("evaluated again"))
    again = evaluate.shift_predictions(run, data)
    pd.testing.assert_frame_equal(again.predictions, table, check_dtype=False)

    scores = sensitivity.shift_scores(table, len(run.class_names), resamples=200)
    assert len(scores) == 6
    zero = scores[scores["percent"] == 0]
    assert (zero["delta_uf1"] == 0).all() and (zero["clips_moved"] == 0).all()
    expected = metrics.uf1(late["true"], late["pred"], len(run.class_names))
    assert scores.query("kind == 'apex' and percent == 50")["uf1"].iloc[0] == pytest.approx(expected)
    early_onset = scores.query("kind == 'onset' and percent == -50").iloc[0]
    assert early_onset["clips_moved"] == 0 and early_onset["delta_uf1"] == 0  # clamped to the onset


def test_the_study_runs_the_evaluation_through_the_engine(trained, synthetic_casme2_root, engine_cache_dir,
                                                          one_torch_thread):
    """The notebook asks its chapter page, which prepares the chapter's shifted frames and hands them
    to tsfmicro.engine.evaluate: the same predictions as the engine's own call."""
    from tsfmicro.study import Study

    run, data = trained
    study = Study.load(ROOT / "params" / "demo.yaml", roots={"casme2": str(synthetic_casme2_root)}, overrides={
        "data_source": "real", "datasets": {"casme2": ["5class"]}, "crop_size": 64,
        "paths": {"prepared": str(engine_cache_dir)}, "cross_dataset": None, "imbalance": None, "long_videos": None,
        "annotation": {"shifts": SHIFTS, "automatic_apex": False}})
    direct = evaluate.shift_predictions(run, data)
    through_study = study.chapter("annotation").shift_evaluation(run)
    assert through_study.path == direct.path
    pd.testing.assert_frame_equal(through_study.predictions, direct.predictions, check_dtype=False)


def test_clips_without_a_shifted_frame_are_left_out_with_their_reason_and_none_left_is_an_error(
        trained, one_torch_thread):
    run, data = trained
    run = dataclasses.replace(run, config={**run.config, "key": "partial"})  # its own kept evaluation
    shifted = data.shifted
    table = shifted.table.copy()
    victim = int(run.predictions["sample_index"].iloc[0])
    table.loc[(table["sample"] == victim) & (table["kind"] == "apex") & (table["percent"] == 50),
              "reason"] = "apex moved by +50 % to frame 9: frame 9 not found in somewhere"
    partial = dataclasses.replace(data, shifted=dataclasses.replace(shifted, table=table))
    evaluation = evaluate.shift_predictions(run, partial)
    left_out = evaluation.excluded
    assert left_out[["kind", "clip_id"]].values.tolist() == [["apex", data.samples.loc[victim, "clip_id"]]]
    assert "frame 9 not found" in left_out["reason"].iloc[0]
    apex_rows = evaluation.predictions[evaluation.predictions["kind"] == "apex"]
    assert data.samples.loc[victim, "clip_id"] not in set(apex_rows["clip_id"])  # out of every apex shift
    assert len(evaluation.predictions[evaluation.predictions["kind"] == "onset"]) == 3 * len(run.predictions)

    table.loc[table["kind"] == "onset", "reason"] = "onset frame missing"
    nothing = dataclasses.replace(data, shifted=dataclasses.replace(shifted, table=table))
    with pytest.raises(ValueError, match="no clip of run .* has an input at every onset shift"):
        evaluate.shift_predictions(dataclasses.replace(run, config={**run.config, "key": "none"}), nothing)


def test_data_that_is_not_the_runs_is_refused(trained, synthetic_casme2_root, engine_cache_dir):
    run, data = trained
    with pytest.raises(ValueError, match="holds no shifted frames"):
        evaluate.shift_predictions(run, dataclasses.replace(data, shifted=None))
    other = prepare("casme2", synthetic_casme2_root, "3class", crop_size=64, cache_dir=engine_cache_dir,
                    progress=False, shifts=SHIFTS)
    with pytest.raises(ValueError, match="does not match run"):
        evaluate.shift_predictions(run, other)


def test_shift_sentence_follows_the_numbers():
    def row(kind, percent, delta, low, high, moved=5):
        return dict(kind=kind, percent=percent, clips=10, clips_moved=0 if percent == 0 else moved,
                    median_frames_moved=abs(percent) / 10, uf1=0.5 + delta, uf1_low=0.3, uf1_high=0.7,
                    delta_uf1=delta, delta_uf1_low=low, delta_uf1_high=high)

    scores = pd.DataFrame([row("apex", 0, 0, 0, 0), row("apex", -20, -0.12, -0.2, -0.05),
                           row("apex", 20, 0.02, -0.05, 0.08), row("onset", 0, 0, 0, 0),
                           row("onset", -20, 0, 0, 0, moved=0)])
    text = sensitivity.shift_sentence(scores, "casme2", "5class")
    assert text.startswith("On casme2 5class: Moving the apex by -20 % to +20 %")
    assert "changes UF1 by -12.0 to +2.0 pp" in text and "UF1 50.0 %" in text
    assert "the largest drop, at -20 %" in text and "lies below zero" in text and "[-20.0, -5.0] pp" in text
    assert "No onset shift moved any clip" in text
    assert "(median 2 frames)" in text
    noisy = scores.assign(delta_uf1_high=0.01)
    assert "includes zero" in sensitivity.shift_sentence(noisy, "casme2", "5class")
    same = scores.assign(delta_uf1=-0.02)
    assert "changes UF1 by -2.0 pp at every shift" in sensitivity.shift_sentence(same, "casme2", "5class")
    flat = scores.assign(delta_uf1=0.0, delta_uf1_low=0.0, delta_uf1_high=0.0)
    assert "No apex shift of -20 % to +20 % of the onset-offset length lowers UF1 (50.0 % with the annotated " \
           "apex; changes +0.0 to +0.0 pp)." in sensitivity.shift_sentence(flat, "casme2", "5class")


# ------------------------------------------------------------------------------ automatic apex
def test_apex_option_enters_the_run_key_only_when_automatic(tmp_path, monkeypatch):
    import tsfmicro.data
    from tsfmicro.cli import build_parser
    from tsfmicro.engine import _cli

    calls = []

    def fake_prepare(dataset, root, task, *, apex="annotated", **kwargs):
        calls.append(apex)
        return _random_prepared()

    monkeypatch.setattr(tsfmicro.data, "prepare", fake_prepare)
    config = RunConfig(dataset="casme2", root=str(tmp_path), task="5class", preset="tiny", device="cpu")
    annotated = runs.resolve_request(config, progress=False)
    named = runs.resolve_request(dataclasses.replace(config, apex="annotated"), progress=False)
    automatic = runs.resolve_request(dataclasses.replace(config, apex="automatic"), progress=False)
    assert calls == ["annotated", "annotated", "automatic"]
    assert "apex" not in annotated.identity and automatic.identity["apex"] == "automatic"
    assert runs._unit_key(annotated, 0) == runs._unit_key(named, 0) != runs._unit_key(automatic, 0)
    assert runs.config_options(config) == {} and runs.config_options(automatic.config) == {"apex": "automatic"}
    with pytest.raises(ValueError, match="unknown apex 'peak'; choose one of annotated, automatic"):
        runs.validate(dataclasses.replace(config, apex="peak"))
    with pytest.raises(ValueError, match="frame_reselection .* cannot be combined with apex 'automatic'"):
        runs.validate(dataclasses.replace(config, apex="automatic", frame_reselection=True))

    seen = []

    class Stop(Exception):
        pass

    def record(config, progress, strict=False):
        seen.append(config)
        raise Stop

    monkeypatch.setattr(_cli, "train", record)
    for flags in ([], ["--apex", "automatic"]):
        args = build_parser().parse_args(["train", "--dataset", "casme2", "--root", str(tmp_path), "--task",
                                          "5class", *flags])
        with pytest.raises(Stop):
            args.handler(args)
    assert [c.apex for c in seen] == ["annotated", "automatic"]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--dataset", "casme2", "--root", str(tmp_path), "--task", "5class",
                                   "--apex", "peak"])


def _random_prepared(subjects=3, clips=4):
    from tsfmicro.data import PreparedData

    generator = np.random.default_rng(0)
    n = subjects * clips
    samples = pd.DataFrame({"dataset": "casme2", "subject": np.repeat([f"s{k}" for k in range(subjects)], clips),
                            "clip_id": [f"c{k}" for k in range(n)], "class_index": generator.integers(0, 3, n)})
    frames = lambda: generator.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)  # noqa: E731
    return PreparedData("casme2", "5class", samples, frames(), frames(), ["a", "b", "c"], pd.DataFrame(),
                        "SYNTHETIC", "random", None)


def _fake_run(predictions: pd.DataFrame, seeds=(0,)):
    from tsfmicro.results import Run

    return Run(path=None, config={"class_names": ["a", "b"], "seeds": list(seeds)}, predictions=predictions,
               metrics={}, curves=pd.DataFrame(), provenance={})


def test_apex_difference_is_paired_and_the_sentence_follows_the_numbers():
    subjects = np.repeat([f"s{k}" for k in range(6)], 4)
    truth = np.tile([0, 1, 0, 1], 6)
    base = pd.DataFrame({"seed": 0, "subject": subjects, "clip_id": [f"c{k}" for k in range(24)], "true": truth})
    wrong = base.assign(pred_fixed=1 - truth)  # every clip wrong
    right = base.assign(pred_fixed=truth)  # every clip right
    difference = sensitivity.apex_difference(_fake_run(wrong), _fake_run(right.iloc[::-1]), resamples=200)
    uf1 = difference.set_index("metric").loc["uf1"]
    assert uf1["difference"] == 1.0 and uf1["low"] == 1.0 and uf1["interval"] == "paired subject bootstrap 95%"
    same = sensitivity.apex_difference(_fake_run(right), _fake_run(right), resamples=200)
    assert (same[["difference", "low", "high"]] == 0).all().all()
    with pytest.raises(ValueError, match="test other clips"):
        sensitivity.apex_difference(_fake_run(right), _fake_run(right.iloc[1:]))

    distances = pd.DataFrame({"distance_frames": [0, 0, 2, -4], "distance_percent": [0, 0, 10, -20]})
    text = sensitivity.automatic_apex_sentence(difference, distances, annotated_uf1=0.0, automatic_uf1=1.0)
    assert text.startswith("Trained and tested with the automatic apex, UF1 is 100.0 % against 0.0 %")
    assert "(difference +100.0 pp" in text and "higher than with the annotated apex" in text
    assert "the annotated frame for 2 of 4 clips" in text and "median distance is 1 frames" in text
    assert "the largest 4" in text
    assert "not distinguishable" in sensitivity.automatic_apex_sentence(same, distances, 0.5, 0.5)


def test_apex_distances_and_apex_onset_clips():
    samples = pd.DataFrame({"dataset": "casme2", "subject": ["s1", "s1", "s2"], "clip_id": ["a", "b", "c"],
                            "onset_frame": [10, 20, 30], "annotated_apex_frame": [15, 20, 34],
                            "apex_frame": [15, 25, 32], "offset_frame": [30, 40, 30 + 4],
                            "apex_is_onset": [False, False, False]})
    data = type("Data", (), {"samples": samples})()
    distances = sensitivity.apex_distances(data)
    assert distances["distance_frames"].tolist() == [0, 5, -2]
    assert distances["distance_percent"].tolist() == [0.0, 25.0, -50.0]
    assert distances["annotated_apex_is_onset"].tolist() == [False, True, False]
    with pytest.raises(ValueError, match="no automatic apex"):
        sensitivity.apex_distances(type("Data", (), {"samples": samples.drop(columns="annotated_apex_frame")})())

    flagged = samples.assign(apex_is_onset=[False, True, False])
    predictions = pd.DataFrame({"seed": [0, 0, 0], "subject": ["s1", "s1", "s2"], "clip_id": ["a", "b", "c"],
                                "true": [0, 1, 0], "true_label": ["x", "y", "x"], "pred_fixed": [0, 0, 0],
                                "pred_fixed_label": ["x", "x", "x"]})
    rows = sensitivity.apex_onset_predictions(_fake_run(predictions), type("Data", (), {"samples": flagged})())
    assert rows[["clip_id", "true", "predicted", "correct"]].values.tolist() == [["b", "y", "x", False]]
    text = sensitivity.apex_onset_sentence({"casme2 5class": 1, "samm 5class": 0}, {"casme2 5class": rows})
    assert text.startswith("1 clip(s) have their annotated apex on the onset frame")
    assert "casme2 5class: 1 clip(s), 0 of 1 predictions correct, most often predicted as x (1 of 1)" in text
    assert "samm" not in text
    assert sensitivity.apex_onset_sentence({"samm 5class": 0}, {}).startswith("No clip of these datasets")


def test_paired_bootstrap_difference_resamples_both_alike():
    truth = np.tile([0, 1, 2], 8)
    groups = np.repeat(np.arange(6), 4)
    same = metrics.paired_bootstrap_difference(truth, truth, truth, groups, 3, resamples=100)
    assert all(value == (0.0, 0.0, 0.0) for value in same.values())
    worse = truth.copy()
    worse[:6] = (worse[:6] + 1) % 3  # the first subject and a half wrong
    change = metrics.paired_bootstrap_difference(truth, truth, worse, groups, 3, resamples=300)
    difference, low, high = change["accuracy"]
    assert difference == pytest.approx(-6 / 24) and low < 0 and high <= 0
    assert metrics.bootstrap_interval(truth, worse, groups, 3, resamples=300)["uf1"] == pytest.approx(
        np.percentile(metrics.bootstrap_scores(truth, worse, groups, 3, resamples=300)["uf1"], [2.5, 97.5]))


# ------------------------------------------------------------------------------ parameters
def test_annotation_parameters_are_checked_and_plan_the_automatic_apex_run(tmp_path):
    import yaml
    from book_build import DEMO_PARAMS, ROOT

    from tsfmicro.params import Params, PlannedRun, run_options
    from tsfmicro.study import Study

    study = Params.load(DEMO_PARAMS)
    annotation = study.params["annotation"]
    automatic = PlannedRun(annotation["dataset"], annotation["task"], "ts_late", tuple(annotation["seeds"]),
                           run_options(apex="automatic"))
    assert automatic in study.planned_runs()
    assert study.run_config(*automatic[:3], list(automatic.seeds), apex="automatic").apex == "automatic"
    paper = Params.load(ROOT / "params" / "paper.yaml")
    assert paper.section_seeds("annotation") == tuple(paper.seeds) and paper.section("annotation").automatic_apex is True
    # the section is optional: absent, null in a file, or without the automatic apex run
    for overrides in ({"annotation": None}, {"annotation": {"automatic_apex": False}}):
        narrowed = Params.load(DEMO_PARAMS, overrides=overrides)
        assert not [run for run in narrowed.planned_runs() if "apex" in dict(run.options)]
    page = Study.load(DEMO_PARAMS, overrides={"annotation": None}).chapter("annotation")
    assert page.section is None and not page.configured and page.planned == {}
    written = tmp_path / "null.yaml"
    written.write_text(yaml.safe_dump({**yaml.safe_load(DEMO_PARAMS.read_text()), "annotation": None}))
    assert Params.load(written).section("annotation") is None

    invalid = {
        "annotation.shift: unknown key (did you mean 'shifts'?)": {"annotation": {"shift": [1]}},
        "annotation.shifts: [] must be a non-empty list of percentages": {"annotation": {"shifts": []}},
        "annotation.shifts: [5, 150] must be a non-empty list of percentages of the onset-offset length in "
        "[-100, 100]": {"annotation": {"shifts": [5, 150]}},
        "annotation.shifts: ['1'] must be": {"annotation": {"shifts": ["1"]}},
        "annotation.shifts: [1, 1] lists a shift more than once": {"annotation": {"shifts": [1, 1]}},
        "annotation.automatic_apex: 'yes' is not true or false": {"annotation": {"automatic_apex": "yes"}},
        "annotation.seeds: [] must be a non-empty list": {"annotation": {"seeds": []}},
        "annotation: casme2 3class is not in datasets:": {"annotation": {"task": "3class"}},
        "annotation: [1] is not a mapping; it holds the keys dataset, task, shifts, automatic_apex, seeds":
            {"annotation": [1]},
    }
    for expected, overrides in invalid.items():
        with pytest.raises(ValueError) as error:
            Study.load(DEMO_PARAMS, overrides=overrides)
        assert expected in str(error.value), (expected, str(error.value))


def test_the_provenance_box_names_a_runs_apex_option():
    from tsfmicro.provenance_box import _run_name
    from tsfmicro.results import Run

    config = {"dataset": "casme2", "task": "5class", "preset": "tiny", "seeds": [0]}
    automatic = Run(path=Path("/runs/r1"), config={**config, "apex": "automatic", "resolved": {"apex": "automatic"}},
                    predictions=pd.DataFrame(), metrics={}, curves=pd.DataFrame(),
                    provenance={"duration_seconds": 12.0})
    assert automatic.options == {"apex": "automatic"}
    assert _run_name(automatic).endswith("[apex=automatic] (trained in 12 s)")
    annotated = dataclasses.replace(automatic, config={**config, "apex": "annotated", "resolved": {}})
    assert annotated.options == {} and "[" not in _run_name(annotated)


def test_movement_kept_is_the_planted_profile_at_the_frames_given():
    """The writer's profile is sin^2 from the onset (0) to the apex (1): a clip with its apex 3
    frames after the onset shows sin^2(60 deg) = 0.75 of the movement with the apex one frame
    earlier, 1 - sin^2(30 deg) = 0.75 with the onset one frame later, and 0 with the apex on the
    onset. Clips without a manifest row are left out of the mean, counted, and the shift table
    says so beside the share; real data (no manifest) gives None."""
    manifest = pd.DataFrame([{"subject": "sub01", "clip_id": "EP01", "onset": 10, "apex": 13, "offset": 16,
                              "n_frames": 7, "apex_index": 3}])
    rows = [("apex", 0, 0), ("apex", -10, -1), ("apex", -50, -3), ("onset", 10, 1)]
    predictions = pd.DataFrame([{"subject": subject, "clip_id": clip, "kind": kind, "percent": float(percent),
                                 "moved": moved, "seed": 0}
                                for kind, percent, moved in rows
                                for subject, clip in (("sub01", "EP01"), ("sub09", "unknown"))])
    found = sensitivity.movement_kept(predictions, manifest)
    assert found["clips_without_manifest"].tolist() == [1, 1, 1, 1]
    kept = found.set_index(["kind", "percent"])["movement_kept"]
    assert kept[("apex", 0.0)] == pytest.approx(1.0)
    assert kept[("apex", -10.0)] == pytest.approx(0.75) and kept[("onset", 10.0)] == pytest.approx(0.75)
    assert kept[("apex", -50.0)] == pytest.approx(0.0)
    assert sensitivity.movement_kept(predictions, None) is None
    scores = found[["kind", "percent"]].assign(clips=2, clips_moved=1, median_frames_moved=1.0, **{
        f"{prefix}{metric}{suffix}": 0.5 for prefix in ("", "delta_") for metric in ("uf1", "uar")
        for suffix in ("", "_low", "_high")})
    shown = annotation.shift_table(scores.merge(found, on=["kind", "percent"]))
    assert shown["planted movement shown %"].tolist()[:2] == ["0 (1 clip without a manifest row left out)",
                                                              "75 (1 clip without a manifest row left out)"]
    whole = annotation.shift_table(scores.merge(found.assign(clips_without_manifest=0), on=["kind", "percent"]))
    assert whole["planted movement shown %"].tolist()[:2] == ["0", "75"]  # apex -50 %, -10 % (sorted)
