"""Planted vs recovered (issue 18, point 4): every chapter page's ``truths()`` on hand-made runs
and scores (no training), each truth both ways (recovered where the interval decides it, not
where it does not), the real-data table without the planted columns, the notebooks' one truths
cell, and the onset/apex shifts that move no clip left out.

The hand-made runs are those of tests/test_statistics.py: 3 classes, 8 subjects x 9 clips per
seed; ``noisy(seed, 0.9)`` is right on ~90 % of the clips (UF1 ~0.9, far above chance 1/3),
``noisy(seed, 1/3)`` answers at random (its UAR interval contains 1/3 for these fixed draws)."""
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from tsfmicro import chapters, report
from tsfmicro.chapters import Truth, ablation, annotation, cross_dataset, datasets, gradcam, imbalance, \
    main_results, temporal_branch
from tsfmicro.results import Run
from tests.test_statistics import CLASSES, frame, noisy, run_from

ROOT = Path(__file__).resolve().parents[1]
KEY = ("casme2", "3class")


def good(rng_seed=0):
    return run_from(pd.concat([noisy(0, 0.9, rng_seed=rng_seed), noisy(1, 0.9, rng_seed=rng_seed)],
                              ignore_index=True))


def chance(rng_seed=5):
    return run_from(pd.concat([noisy(0, 1 / 3, rng_seed=rng_seed), noisy(1, 1 / 3, rng_seed=rng_seed)],
                              ignore_index=True))


def page(name: str, runs: dict, section: dict | None = None, source: str = "SYNTHETIC", preset: str = "tiny"):
    """A chapter page over hand-made runs (no study, no training)."""
    parameters = SimpleNamespace(section=lambda _: SimpleNamespace(**(section or {})), params={"preset": preset},
                                 section_seeds=lambda _: [0, 1], seeds=[0, 1])
    built = chapters.get(name).page(SimpleNamespace(parameters=parameters, source=source), chapters.get(name))
    built.__dict__["runs"] = runs
    return built


# ----------------------------------------------------------------------------- the table
def test_the_table_has_the_planted_columns_on_synthetic_data_and_only_measurements_on_real():
    truths = [Truth("a above chance", "above 33.3 %", "UF1 90.0 [85.0, 95.0] %", True, "interval above"),
              Truth("b at chance", "at chance", "UAR 50.0 [45.0, 55.0] %", False, "interval excludes chance"),
              Truth("c", "no truth planted", "+1.0 [-2.0, 4.0] points", None, "nothing planted")]
    synthetic = chapters.truths_table(truths, synthetic=True)
    assert list(synthetic.columns) == ["truth", "expected", "measured", "recovered", "note"]
    assert list(synthetic["recovered"]) == ["yes", "no", "not decided"]
    real = chapters.truths_table(truths, synthetic=False)
    assert list(real.columns) == ["measurement", "measured", "note"]
    assert list(real["measured"]) == [t.measured for t in truths]
    assert not {"planted", "expected", "recovered"} & set(real.columns)
    assert chapters.truths_caption([{"planted": "X"}], synthetic=False).startswith("Real data: nothing is planted")
    assert "Planted (tsfmicro.data.synthetic.PLANTED): X." in chapters.truths_caption([{"planted": "X"}], True)
    assert chapters.truths_caption([], True).startswith("Nothing is planted")


def test_a_page_on_real_data_shows_the_same_measurements_without_planted_columns():
    runs = {(*KEY, "ts_late"): good()}
    synthetic = page("main_results", runs).truths_table()
    real = page("main_results", runs, source="CASME II").truths_table()
    assert list(real.columns) == ["measurement", "measured", "note"] and len(real) == len(synthetic) == 2
    assert list(real["measured"]) == list(synthetic["measured"])
    assert page("main_results", runs, source="CASME II").truths_caption().startswith("Real data")
    assert "goal" in synthetic["note"].iloc[0] and not real["note"].str.contains("goal").any()  # the demo's goal


def test_every_page_reads_its_planted_rows_by_registry_name():
    named = {name for chapter in chapters.chapters()
             for name in [chapter.name] if page(chapter.name, {}).planted_rows}
    assert named == set(chapters.CHAPTERS) - {"compute"}
    assert page("compute", {}).truths() == [] and page("compute", {}).truths_caption().startswith("Nothing is planted")
    table = datasets.planted_table()
    assert table.chapter.iloc[0] == ("01 Main results, 02 Fusion ablation, 03 Confusion matrices, 05 MEGC2019 composite, "
                                     "11 TSFmicro beside STSTNet, OFF-ApexNet and HTNet")
    assert "00 Datasets, 09 Class imbalance" in list(table.chapter)  # book order, from the registry
    caption = page("ablation", {}).truths_caption()  # both rows it checks: spatial_only at chance, no ranking
    assert "the class is only in the onset -> apex movement" in caption and "nothing about which variant" in caption


def test_each_notebook_shows_the_truths_table_right_after_its_setup_cell():
    for chapter in chapters.chapters():
        cells = json.loads((ROOT / "notebooks" / f"{chapter.notebook}.ipynb").read_text())["cells"]
        code = [c for c in cells if c["cell_type"] == "code"]
        assert "parameters" in code[0]["metadata"]["tags"] and "study.provenance_box" in "".join(code[1]["source"])
        assert "page.truths_table()" in "".join(code[2]["source"]), chapter.notebook
        assert sum("truths_table" in "".join(c["source"]) for c in code) == 1
        assert "page.truths_label()" in "".join(code[2]["source"]), chapter.notebook  # the chapter's seeds


def test_the_truths_label_names_the_chapters_own_seeds():
    """A chapter trained on seed 0 alone (its section's seeds) says so under its truths, not the
    parameters' seeds that the main results use."""
    from tsfmicro.study import Study

    study = Study.load(ROOT / "params" / "demo.yaml")
    assert "seeds: 0 |" in study.chapter("cross_dataset").truths_label()
    assert "seeds: 0, 1, 2 |" in study.chapter("main_results").truths_label()
    assert "seeds: 0, 1, 2, 3 |" in study.chapter("imbalance").truths_label()


# ----------------------------------------------------------------------------- 01 / 03 / 05: above chance
def test_main_results_ts_late_above_chance_is_recovered_only_when_the_interval_excludes_chance():
    truths = page("main_results", {(*KEY, "ts_late"): good()}).truths()
    assert [t.recovered for t in truths] == [True, True]  # fixed and oracle
    assert "interval" in truths[0].note and "above chance" in truths[0].note and "goal UF1 >= 80 % met" in truths[0].note
    assert "per seed" in truths[0].measured
    flat = page("main_results", {(*KEY, "ts_late"): chance()}).truths()
    # an interval holding chance decides nothing either way (not a "no": that needs one below chance)
    assert [t.recovered for t in flat] == [None, None] and "not decided" in flat[0].note
    assert "contains chance" in flat[0].note
    # a one-class model is no recovery, whatever it scores
    subjects, true = np.repeat(["s0", "s1", "s2"], 3), np.tile([0, 1, 2], 3)
    one = run_from(pd.concat([frame(0, subjects, true, np.zeros(9, int)), frame(1, subjects, true, np.zeros(9, int))]))
    (fixed, _) = page("main_results", {(*KEY, "ts_late"): one}).truths()
    assert fixed.recovered is False and "degenerate" in fixed.note


def test_confusion_page_shares_the_main_results_truths():
    runs = {(*KEY, "ts_late"): good()}
    assert page("confusion_matrices", runs).truths() == page("main_results", runs).truths()


def test_composite_truth_per_part_above_chance():
    predictions = pd.concat([noisy(0, 0.9)], ignore_index=True)
    half = predictions["subject"].isin(["s0", "s1", "s2", "s3"])
    predictions["subject"] = np.where(half, "casme2/" + predictions["subject"], "samm/" + predictions["subject"])
    predictions.loc[~half, "pred_fixed"] = noisy(0, 1 / 3, rng_seed=5).loc[~half, "pred_fixed"]  # samm at random
    built = page("composite", {("megc2019", "3class", "ts_late"): run_from(predictions)})
    truths = {t.truth: t.recovered for t in built.truths()}
    assert truths == {"ts_late on the whole composite: UF1 above chance (fixed protocol)": True,
                      "ts_late on its CASME II clips (36): UF1 above chance (fixed protocol)": True,
                      "ts_late on its SAMM clips (36): UF1 above chance (fixed protocol)": None}


# ----------------------------------------------------------------------------- 02 / 07: chance and no truth planted
ABLATION = {"dataset": "casme2", "task": "3class", "fusions": ("ts_late", "spatial_only", "ts_early"), "seeds": None}


def test_ablation_spatial_only_at_chance_and_ts_late_above_it_each_way():
    runs = {(*KEY, "ts_late"): good(), (*KEY, "spatial_only"): chance(), (*KEY, "ts_early"): good(rng_seed=9)}
    truths = page("ablation", runs, ABLATION).truths()
    by_truth = {t.truth: t for t in truths}
    at_chance = by_truth["spatial_only (onset only): UAR at chance (fixed protocol)"]
    assert at_chance.recovered is True and "contains chance" in at_chance.note
    above = by_truth["ts_late above spatial_only (UF1, fixed protocol, paired)"]
    assert above.recovered is True and "ts_late higher" in above.note
    pair = by_truth["ts_late against ts_early (UF1, fixed protocol)"]
    assert pair.recovered is None and pair.expected.startswith("no truth planted") and "ts_late −" in pair.measured
    # the broken way: the spatial branch alone learns the class (it should not be able to)
    leaked = {(*KEY, "ts_late"): chance(), (*KEY, "spatial_only"): good()}
    truths = {t.truth: t for t in page("ablation", leaked, ABLATION).truths()}
    assert truths["spatial_only (onset only): UAR at chance (fixed protocol)"].recovered is False
    assert truths["ts_late above spatial_only (UF1, fixed protocol, paired)"].recovered is False


def test_temporal_branch_variants_above_chance_and_pairs_without_a_planted_truth():
    section = {"dataset": "casme2", "task": "3class", "variants": ("retention", "conv"), "seeds": None}
    built = page("temporal_branch", {(*KEY, "retention"): good(), (*KEY, "conv"): chance()}, section)
    truths = built.truths()
    assert [t.recovered for t in truths] == [True, None, None]
    assert truths[2].expected.startswith("no truth planted") and "nothing is planted" in truths[2].note
    assert "goal" not in truths[0].note  # the demo's 80 % goal is the main results' (ts_late), not every variant's
    assert page("temporal_branch", {}, section).truths() == []


# ----------------------------------------------------------------------------- 06 cross-dataset
def clips(run: Run) -> Run:
    """The run with a clip id per prediction (the same clips in every seed, as a real run's)."""
    predictions = run.predictions
    return run_from(predictions.assign(clip_id=predictions.groupby("seed").cumcount().astype(str)))


def transfer_run(predictions: pd.DataFrame, test: str = "samm") -> Run:
    """A run trained on another dataset and tested on ``test``: its subjects carry the prefix."""
    return clips(run_from(predictions.assign(subject=test + "/" + predictions["subject"])))


def test_transfer_below_loso_is_decided_by_the_paired_interval_each_way():
    loso, poor = clips(good()), clips(chance())
    below = cross_dataset.transfer_truth(transfer_run(poor.predictions), loso, "casme2", "samm")
    assert below.recovered is True and "paired interval lies above 0" in below.note and "LOSO − transfer +" in below.measured
    above = cross_dataset.transfer_truth(transfer_run(loso.predictions), poor, "casme2", "samm")
    assert above.recovered is False and "below 0" in above.note
    same = cross_dataset.transfer_truth(transfer_run(loso.predictions), loso, "casme2", "samm")
    assert same.recovered is None and "not decided: no difference" in same.note
    # other seeds: the runs' own intervals, not paired
    one_seed = clips(run_from(noisy(0, 1 / 3, rng_seed=5)))
    unpaired = cross_dataset.transfer_truth(transfer_run(one_seed.predictions), loso, "casme2", "samm")
    assert unpaired.note.startswith("not paired") and unpaired.recovered is True
    # SAMM -> CASME II: no gap is planted that way (PLANTED's gaps), so even a clear gap decides nothing
    assert not cross_dataset.planted_gap("samm", "casme2") and cross_dataset.planted_gap("casme2", "samm")
    reverse = cross_dataset.transfer_truth(transfer_run(poor.predictions, "casme2"), loso, "samm", "casme2")
    assert reverse.recovered is None and reverse.expected == "no gap planted in this direction"
    assert "nothing is planted about this direction" in reverse.note and "lies above 0" in reverse.note


def test_a_one_class_loso_cell_decides_nothing():
    subjects, true = np.repeat([f"s{k}" for k in range(8)], 9), np.tile([0, 1, 2], 24)
    flat = clips(run_from(pd.concat([frame(s, subjects, true, np.zeros(72, int)) for s in (0, 1)], ignore_index=True)))
    truth = cross_dataset.transfer_truth(transfer_run(chance().predictions), flat, "casme2", "samm")
    assert truth.recovered is None and "degenerate" in truth.note


# ----------------------------------------------------------------------------- 09 class imbalance
def imbalanced(rare_accuracy: float, seed_offset: int = 0) -> Run:
    """8 subjects x 9 clips: class 2 (surprise) is rare (one clip per subject), recalled with
    ``rare_accuracy``; the other classes are recalled at 0.8."""
    parts = []
    for seed in (0, 1):
        rng = np.random.default_rng(seed + seed_offset)
        true = np.tile([0, 0, 0, 0, 1, 1, 1, 1, 2], 8)
        accuracy = np.where(true == 2, rare_accuracy, 0.8)
        pred = np.where(rng.random(len(true)) < accuracy, true, (true + 1) % 3)
        parts.append(frame(seed, np.repeat([f"s{k}" for k in range(8)], 9), true, pred))
    return run_from(pd.concat(parts, ignore_index=True))


def test_weighted_loss_raising_the_rarest_recall_is_paired_and_goes_each_way():
    plain, weighted = imbalanced(0.1), imbalanced(0.9, seed_offset=7)
    raised = imbalance.rare_recall_truth(plain, weighted, "weighted_cross_entropy", "cross_entropy", *KEY)
    assert raised.recovered is True and "surprise (8 clips)" in raised.truth and "excludes 0" in raised.note
    lowered = imbalance.rare_recall_truth(weighted, plain, "weighted_cross_entropy", "cross_entropy", *KEY)
    assert lowered.recovered is False
    other = imbalance.rare_recall_truth(plain, weighted, "focal", "cross_entropy", *KEY)
    assert other.recovered is None and other.expected.startswith("no truth planted")


def test_plain_cross_entropy_under_recalls_the_rarest_class_each_way():
    def truth(rare_accuracy):
        recall = report.class_recall({(*KEY, "cross_entropy"): imbalanced(rare_accuracy)}, "option")
        return imbalance.rare_versus_largest_truth(recall, *KEY, "cross_entropy")

    assert truth(0.1).recovered is True
    assert truth(0.8).recovered is None and "overlap" in truth(0.8).note
    subjects, true = np.repeat([f"s{k}" for k in range(8)], 9), np.tile([0, 0, 0, 0, 1, 1, 1, 1, 2], 8)
    one = run_from(pd.concat([frame(s, subjects, true, np.full(72, 2)) for s in (0, 1)], ignore_index=True))
    flat = imbalance.rare_versus_largest_truth(report.class_recall({(*KEY, "cross_entropy"): one}, "option"), *KEY,
                                               "cross_entropy")
    assert flat.recovered is None and "degenerate" in flat.note  # it "recalls" the rare class fully, by predicting it only
    built = page("imbalance", {(*KEY, "cross_entropy"): imbalanced(0.1),
                               (*KEY, "weighted_cross_entropy"): imbalanced(0.9, seed_offset=7)},
                 {"tasks": ("casme2/3class",), "options": ("cross_entropy", "weighted_cross_entropy"), "seeds": None})
    assert [t.recovered for t in built.truths()] == [True, True]


# ----------------------------------------------------------------------------- 00 datasets
def test_class_ratio_truth_counts_the_planted_imbalance():
    rows = [("casme2", "5class", "others", 17), ("casme2", "5class", "repression", 5),
            ("samm", "5class", "Anger", 6), ("samm", "5class", "Other", 5),
            ("smic", "3class", "positive", 6), ("smic", "3class", "negative", 6)]
    samples = pd.DataFrame([{"dataset": d, "task": t, "class_index": i % 2, "class_name": c}
                            for i, (d, t, c, n) in enumerate(rows) for _ in range(n)])
    truths = datasets.class_ratio_truths(report.class_distribution(samples), ("casme2", "samm"))
    assert [t.recovered for t in truths] == [True, False, None]
    assert truths[0].measured.startswith("largest/smallest 3.4 (others 17, repression 5 clips)")


# ----------------------------------------------------------------------------- 04 Grad-CAM
def test_gradcam_says_why_nothing_is_measured_when_the_table_is_empty():
    (truth,) = gradcam.localisation_truths(pd.DataFrame(columns=gradcam.LOCALISATION_COLUMNS),
                                           "Where the movement is in each casme2 clip is not known (real data)")
    assert truth.recovered is None and truth.measured == "not measured"
    assert truth.note.startswith("Where the movement is")


def localisation(low: float, random: float = 10.0, others: float = 15.0) -> pd.DataFrame:
    """A table as GradcamPage.localisation holds it (tsfmicro.localisation.TABLE_COLUMNS, percent)."""
    def row(branch, hit_low, zero):
        return {"branch": branch, "clips": 40, "zero maps": zero, "pointing game %": hit_low + 10,
                "pointing low %": hit_low, "pointing high %": hit_low + 20, "random map %": random,
                "other clips' regions %": others, "minus random low %": hit_low - random,
                "minus random high %": hit_low + 20 - random, "mass share %": 30.0, "mass low %": 20.0,
                "mass high %": 40.0, "area share %": 8.0, "other clips' mass %": 9.0}
    return pd.DataFrame([row("temporal", 5.0, 0), row("temporal_stage1", low, 2), row("spatial", 2.0, 0)])


def test_gradcam_pointing_game_is_decided_by_the_first_stage_interval_against_both_baselines():
    truths = gradcam.localisation_truths(localisation(50.0))
    # output map (contrast), first stage pointing (recovered), first stage mass (recovered), spatial (contrast)
    assert [t.recovered for t in truths] == [None, True, True, None]
    assert "2 of 40 maps all zero" in truths[1].note and "left out" in truths[1].note
    assert truths[1].measured.startswith("60.0 [50.0, 70.0] %; random map 10.0 %")  # percent, as the table
    # above the random map (10 %) but not above other clips' regions (15 %): a map that always points at
    # one part of the face is not a recovery
    held = gradcam.localisation_truths(localisation(12.0))[1]
    assert held.recovered is None and "not decided" in held.note
    below = gradcam.localisation_truths(localisation(5.0, others=40.0))[1]  # [5, 25] against 40 %: contradicted
    assert below.recovered is False and "below the higher baseline" in below.note
    built = page("gradcam", {}, {"dataset": "casme2", "task": "5class", "examples": 1})
    built.__dict__["localisation"] = localisation(50.0)  # the cached property, as the page computes it
    assert built.truths()[1].recovered is True


# ----------------------------------------------------------------------------- 08 onset/apex sensitivity
def shift_rows(apex: dict, onset: dict, clips: int = 40) -> pd.DataFrame:
    """kind -> {percent: (uf1, delta, low, high, clips moved)}."""
    rows = [{"kind": kind, "percent": float(p), "clips": clips, "clips_moved": moved, "median_frames_moved": 1.0,
             "uf1": uf1, "uf1_low": uf1 - 0.1, "uf1_high": uf1 + 0.1, "uar": uf1, "uar_low": uf1 - 0.1,
             "uar_high": uf1 + 0.1, "delta_uf1": d, "delta_uf1_low": lo, "delta_uf1_high": hi, "delta_uar": d,
             "delta_uar_low": lo, "delta_uar_high": hi}
            for kind, shifts in (("apex", apex), ("onset", onset)) for p, (uf1, d, lo, hi, moved) in shifts.items()]
    return pd.DataFrame(rows)


FALLING = shift_rows(
    {-50: (0.3, -0.5, -0.6, -0.4, 40), -25: (0.6, -0.2, -0.3, -0.1, 40), 0: (0.8, 0, 0, 0, 0),
     25: (0.7, -0.1, -0.2, 0.0, 39)},
    {-25: (0.8, 0, 0, 0, 0), -10: (0.8, 0, 0, 0, 0), 0: (0.8, 0, 0, 0, 0), 10: (0.7, -0.1, -0.2, -0.01, 40),
     50: (0.4, -0.4, -0.5, -0.3, 40)})


def test_shift_truths_recover_a_monotonic_fall_and_not_a_rise():
    shown = annotation.shift_truths(annotation.sensitivity.moved_shifts(FALLING))
    by_truth = {t.truth: t.recovered for t in shown}
    assert by_truth["UF1 falls as the apex moves further toward the onset"] is True
    assert by_truth["UF1 falls as the onset moves further toward the apex"] is True
    assert by_truth["apex moved -25 % (toward the onset; 40 of 40 clips moved): UF1 lower than annotated"] is True
    assert not any("+25" in t.truth for t in shown)  # an apex moved away from the onset: nothing planted here
    rising = FALLING.copy()
    rising.loc[(rising.kind == "apex") & (rising.percent == -50), ["uf1", "delta_uf1", "delta_uf1_low",
                                                                    "delta_uf1_high"]] = [0.7, -0.1, -0.2, 0.05]
    by_truth = {t.truth: t for t in annotation.shift_truths(rising)}
    falls = by_truth["UF1 falls as the apex moves further toward the onset"]
    assert falls.recovered is None and falls.note == "not decided: UF1 rises between two shifts"
    assert by_truth["apex moved -50 % (toward the onset; 40 of 40 clips moved): UF1 lower than annotated"].recovered \
        is None
    # a score that rises with the shift, its interval above 0, contradicts the planted fall
    risen = FALLING.copy()
    risen.loc[(risen.kind == "apex") & (risen.percent == -50), ["uf1", "delta_uf1", "delta_uf1_low",
                                                                  "delta_uf1_high"]] = [0.9, 0.1, 0.02, 0.2]
    by_truth = {t.truth: t for t in annotation.shift_truths(risen)}
    assert by_truth["UF1 falls as the apex moves further toward the onset"].recovered is False
    assert by_truth["apex moved -50 % (toward the onset; 40 of 40 clips moved): UF1 lower than annotated"].recovered \
        is False


def test_shifts_that_move_no_clip_are_left_out_and_named_with_the_reason():
    built = page("annotation", {}, {"dataset": "casme2", "task": "5class", "shifts": (-25, -10, 10, 50)})
    built.__dict__["all_shift_scores"] = FALLING
    shown = built.shift_scores
    assert not ((shown.percent != 0) & (shown.clips_moved == 0)).any()
    assert set(shown[shown.kind == "onset"].percent) == {0.0, 10.0, 50.0}
    table = annotation.shift_table(shown)
    assert "-25" not in set(table[table.moved == "onset"]["shift %"]) and "40 of 40" in set(table["clips moved"])
    text = built.left_out_text()
    assert text == ("Left out of the table and figure: the onset shifts -25 %, -10 % moved none of the 40 clips "
                    "(an onset moved earlier is clamped back to the clip's first frame, which is the onset).")
    assert annotation.sensitivity.left_out_sentence(shown) == ""


def test_the_truths_cell_shows_the_table_as_beyond_the_paper_or_the_caption_alone(capsys):
    from tsfmicro import plots

    frame = chapters.truths_table([Truth("a", "b", "c", True, "d")])
    previous = plots._EXHIBITS
    try:
        plots.number_exhibits(1, "the paper's main results table", "make book")
        styled = plots.truths(frame, "Planted: X.", "data: SYNTHETIC")
        caption = styled.caption
        assert "Table 1.1</b> Planted: X." in caption and "beyond the paper (planted vs recovered)" in caption
        assert "re-derives the paper's main results table" not in caption
        assert plots.truths(frame.iloc[:0], "Nothing is planted for this chapter.", "data: SYNTHETIC") is None
        assert capsys.readouterr().out == "Nothing is planted for this chapter.\n"
    finally:
        plots._EXHIBITS = previous


# ----------------------------------------------------------------------------- 11 baselines / 12 spatial branch
def test_baselines_each_network_above_chance_and_pairs_without_a_planted_truth():
    section = {"networks": ("ststnet",), "tasks": None, "composite": False, "seeds": None, "epochs": None}
    runs = {(*KEY, "tsfmicro"): good(), (*KEY, "ststnet"): chance()}
    truths = page("baselines", runs, section).truths()
    assert [t.recovered for t in truths] == [True, None, None]
    assert truths[0].truth.startswith("TSFmicro (T-S late) on") and truths[1].truth.startswith("STSTNet on")
    assert truths[2].expected.startswith("no truth planted") and "TSFmicro (T-S late) −" in truths[2].measured
    assert page("baselines", {}, section).truths() == []


def test_spatial_branch_identity_above_chance_decides_each_depth():
    section = {"dataset": "casme2", "task": "3class", "depths": (1, 2), "seeds": None}
    built = page("spatial_branch", {(*KEY, 2): good(), (*KEY, 1): good(rng_seed=9)}, section)
    built.__dict__["identity"] = pd.DataFrame([  # the cached property, as tsfmicro.probes fills it
        {"depth": 1, "features": "spatial", "accuracy": 0.9, "low": 0.8, "high": 1.0, "chance": 1 / 3,
         "subjects": 4, "interval": "subject bootstrap"},
        {"depth": 2, "features": "spatial", "accuracy": 0.4, "low": 0.2, "high": 0.6, "chance": 1 / 3,
         "subjects": 4, "interval": "subject bootstrap"},
        {"depth": 2, "features": "fused", "accuracy": 0.9, "low": 0.8, "high": 1.0, "chance": 1 / 3,
         "subjects": 4, "interval": "subject bootstrap"}])
    truths = built.truths()
    # depth 1 above chance; depth 2's interval holds chance (not decided); the depth pair: nothing planted
    assert [t.recovered for t in truths] == [True, None, None]
    assert truths[0].truth == "spatial branch at depth 1: identity probe above chance"
    assert "chance 33.3 %" in truths[0].measured and truths[2].expected.startswith("no truth planted")


@pytest.mark.parametrize("side, low, high, expected", [
    ("above", 0.2, 0.4, True), ("above", -0.4, -0.2, False), ("above", -0.1, 0.1, None),
    ("below", -0.4, -0.2, True), ("below", 0.2, 0.4, False), ("below", -0.1, 0.1, None),
    ("above", float("nan"), 0.4, None), ("below", 0.0, 0.4, None)])  # an interval touching the bar holds it
def test_an_interval_against_a_bar_reads_three_ways_on_either_side(side, low, high, expected):
    assert chapters.above_recovered(low, high, 0.0, side=side) is expected


def test_an_interval_against_a_bar_refuses_an_unknown_side():
    with pytest.raises(ValueError, match="'above' or 'below'"):
        chapters.above_recovered(0.1, 0.2, 0.0, side="under")


@pytest.mark.parametrize("lower, upper, expected", [
    ((0.1, 0.3), (0.4, 0.9), True), ((0.4, 0.9), (0.1, 0.3), False), ((0.1, 0.5), (0.4, 0.9), None),
    ((0.1, float("nan")), (0.4, 0.9), None)])
def test_two_unpaired_intervals_are_apart_only_without_overlap(lower, upper, expected):
    assert chapters.apart_recovered(lower, upper) is expected
