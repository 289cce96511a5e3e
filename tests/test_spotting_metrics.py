"""The MEGC2020 spotting F1 and STRS (tsfmicro.spotting_metrics) against the definitions in
shared/reference/long_videos.md: the STRS README test vector, the published MEGC2020 pooling, and one
case per fixed bug of the public scorers, ours beside the original."""
from __future__ import annotations

import pandas as pd
import pytest

from tsfmicro.spotting_metrics import (MEGC2020_LENGTHS, Counts, compare_megc2020, compare_strs, f1_from_counts, iou,
                                       megc2020_iou, megc2020_spotting, one_to_one, original_megc2020, original_strs,
                                       strs)

COLUMNS = ["subject", "video", "onset", "offset", "emotion"]


def table(rows, columns=COLUMNS):
    return pd.DataFrame(rows, columns=columns)


# The STRS README example (long_videos.md section 3): 5 predictions, 5 ground truths with IoUs .342,
# .437, .671, .605, .640 -> spotting TP 3, FP 2, FN 2, F1 .6; analysis over {happiness, others,
# repression}: P = R = 1/3, F1 1/3; STRS 0.2. The intervals below are ours, chosen to give those IoUs
# (the README's own rows are not in the reference); each pair is in its own video.
README_TRUTHS = table([
    (1, "v1", 0, 12, "happiness"), (1, "v2", 0, 42, "others"), (2, "v3", 0, 57, "happiness"),
    (2, "v4", 0, 22, "others"), (3, "v5", 0, 15, "repression")])
README_PREDICTIONS = table([
    (1, "v1", -25, 12, "happiness"), (1, "v2", -28, 30, "others"), (2, "v3", -12, 46, "happiness"),
    (2, "v4", -15, 22, "repression"), (3, "v5", -9, 15, "others")])


def test_readme_vector_gives_strs_02():
    ious = [round(iou((p.onset, p.offset), (t.onset, t.offset)), 3)
            for p, t in zip(README_PREDICTIONS.itertuples(), README_TRUTHS.itertuples())]
    assert ious == [0.342, 0.437, 0.671, 0.605, 0.640]
    result = strs(README_PREDICTIONS, README_TRUTHS)
    assert (result.spotting.tp, result.spotting.fp, result.spotting.fn) == (3, 2, 2)
    assert result.spotting.f1 == pytest.approx(0.6)
    assert result.emotions == ("happiness", "others", "repression")
    assert result.analysis_precision == pytest.approx(1 / 3) and result.analysis_recall == pytest.approx(1 / 3)
    assert result.analysis_f1 == pytest.approx(1 / 3)
    assert result.strs == pytest.approx(0.2)
    # the vector has none of the bugs: the public scorer agrees on every quantity but "UAR"
    # (its mean precision; ours the mean recall: both 1/3 here)
    compared = compare_strs(README_PREDICTIONS, README_TRUTHS)
    assert not compared["differs"].any()
    assert original_strs(README_PREDICTIONS, README_TRUTHS).strs == pytest.approx(0.2)


def test_iou_of_inclusive_frames_and_the_baselines_bug():
    assert iou((1, 10), (1, 10)) == 1.0
    assert iou((1, 10), (6, 15)) == pytest.approx(5 / 15)
    # disjoint: 0 for us; the MEGC2020 baseline counts one frame of intersection
    assert iou((1, 10), (20, 29)) == 0.0
    assert megc2020_iou((1, 10), (20, 29)) == pytest.approx(1 / 19)
    # a 1-frame interval: it can match for us; the baseline always scores it 0
    assert iou((5, 5), (5, 5)) == 1.0 and megc2020_iou((5, 5), (5, 5)) == 0.0


def test_one_to_one_takes_the_most_pairs():
    # greedy by IoU would pair p0-t1 (IoU 1) and leave t0 unmatched; the maximum pairing matches both
    predictions, truths = [(10, 19), (0, 9)], [(0, 9), (10, 19)]
    assert sorted(one_to_one(predictions, truths)) == [(0, 1, 1.0), (1, 0, 1.0)]
    predictions, truths = [(0, 19)], [(0, 9), (5, 14)]  # one prediction, two truths: one pair only
    assert len(one_to_one(predictions, truths)) == 1


def test_fixed_bug_subject_without_predictions_counts_its_misses():
    truths = table([(1, "a", 0, 20, "happiness"), (2, "b", 0, 20, "others")])
    predictions = table([(1, "a", 0, 20, "happiness")])  # subject 2 predicted nothing
    ours, theirs = strs(predictions, truths), original_strs(predictions, truths)
    assert (ours.spotting.tp, ours.spotting.fn) == (1, 1) and ours.spotting.recall == 0.5
    assert (theirs.spotting.tp, theirs.spotting.fn) == (1, 0) and theirs.spotting.recall == 1.0  # skipped
    compared = compare_strs(predictions, truths).set_index("quantity")
    assert compared.loc["spot_fn", "ours"] == 1 and compared.loc["spot_fn", "original"] == 0
    assert compared.loc["spot_f1", "differs"]


def test_fixed_bug_predictions_in_unknown_videos_are_false_positives():
    truths = table([(1, "a", 0, 20, "happiness")])
    predictions = table([(1, "a", 0, 20, "happiness"), (1, "zzz", 0, 20, "happiness")])  # no such video
    ours, theirs = strs(predictions, truths), original_strs(predictions, truths)
    assert (ours.spotting.tp, ours.spotting.fp) == (1, 1) and ours.spotting.precision == 0.5
    assert (theirs.spotting.tp, theirs.spotting.fp) == (1, 0) and theirs.spotting.precision == 1.0  # ignored


def test_fixed_bug_one_prediction_takes_one_truth():
    # two truths exactly half of one prediction each (IoU 0.5 with both)
    truths = table([(1, "a", 0, 9, "happiness"), (1, "a", 10, 19, "happiness")])
    predictions = table([(1, "a", 0, 19, "happiness")])
    ours, theirs = strs(predictions, truths), original_strs(predictions, truths)
    assert (ours.spotting.tp, ours.spotting.fp, ours.spotting.fn) == (1, 0, 1)
    assert (theirs.spotting.tp, theirs.spotting.fp, theirs.spotting.fn) == (2, 0, 0)
    # the MEGC2020 baseline: both truths hit by the prediction -> TP 2, FP = 1 prediction - 2 = -1
    truths_kind = truths.assign(kind="macro")
    predictions_kind = predictions.assign(kind="macro")
    baseline = original_megc2020(predictions_kind, truths_kind).set_index("kind")
    assert baseline.loc["macro", "tp"] == 2 and baseline.loc["macro", "fp"] == -1
    ours_megc = megc2020_spotting(predictions_kind, truths_kind).set_index("kind")
    assert (ours_megc.loc["macro", "tp"], ours_megc.loc["macro", "fp"], ours_megc.loc["macro", "fn"]) == (1, 0, 1)
    assert compare_megc2020(predictions_kind, truths_kind).set_index("kind").loc["macro", "differs"]


def test_two_predictions_on_one_truth_agree_with_the_baseline():
    truths = table([(1, "a", 0, 19, "happiness")], COLUMNS).assign(kind="micro")
    predictions = table([(1, "a", 0, 19, "happiness"), (1, "a", 1, 19, "happiness")]).assign(kind="micro")
    ours = megc2020_spotting(predictions, truths).set_index("kind").loc["micro"]
    theirs = original_megc2020(predictions, truths).set_index("kind").loc["micro"]
    assert (ours["tp"], ours["fp"], ours["fn"]) == (1, 1, 0)
    assert (theirs["tp"], theirs["fp"], theirs["fn"]) == (1, 1, 0)  # the same here: the baseline agrees


def test_fixed_bug_a_perfect_single_emotion_scores_one():
    # every spotted pair is happiness, predicted happiness: the scorer's confusion matrix is 1x1
    truths = table([(1, "a", 0, 20, "happiness"), (1, "b", 0, 20, "happiness")])
    predictions = truths.copy()
    ours, theirs = strs(predictions, truths), original_strs(predictions, truths)
    assert ours.analysis_f1 == 1.0 and ours.strs == 1.0
    assert theirs.analysis_f1 == 0.0 and theirs.strs == 0.0
    # an analysis emotion absent from every pair scores 0 in both (empty denominators)
    both = strs(predictions, truths, emotions=("happiness", "surprise"))
    assert both.analysis_precision == 0.5 and both.analysis_recall == 0.5


def test_megc2020_length_filter_and_pooling():
    truths = table([(1, "a", 100, 112, "x", "micro"), (1, "a", 200, 240, "x", "macro")], COLUMNS + ["kind"])
    predictions = table([
        (1, "a", 100, 112, "x", "micro"),   # 13 frames: a micro of CAS(ME)^2 (7..16), TP
        (1, "a", 300, 302, "x", "micro"),   # 3 frames: filtered out, not an FP
        (1, "a", 200, 240, "x", "macro"),   # TP
        (1, "a", 400, 420, "x", "macro"),   # 21 frames: an FP
    ], COLUMNS + ["kind"])
    scores = megc2020_spotting(predictions, truths, MEGC2020_LENGTHS["casme_sq"]).set_index("kind")
    assert scores.loc["micro", ["tp", "fp", "fn"]].tolist() == [1, 0, 0]
    assert scores.loc["macro", ["tp", "fp", "fn"]].tolist() == [1, 1, 0]
    assert scores.loc["overall", ["predictions", "truths", "tp"]].tolist() == [3, 2, 2]
    assert scores.loc["overall", "f1"] == pytest.approx(f1_from_counts(3, 2, 2))
    unfiltered = megc2020_spotting(predictions, truths).set_index("kind")
    assert unfiltered.loc["micro", "fp"] == 1


def test_published_mdmd_pooling_is_reproduced_from_its_counts():
    """MEGC2020_results.txt, CAS(ME)^2 overall: 6558 predictions, 130 TP, 357 GT -> F1 .0376;
    SAMM-LV V1 overall: 1792 predictions (51 + 1741), 51 TP, 502 GT -> .0445."""
    assert round(f1_from_counts(6558, 130, 357), 4) == 0.0376
    assert round(f1_from_counts(51 + 1741, 51, 502), 4) == 0.0445
    assert Counts(130, 6428, 227).f1 == pytest.approx(f1_from_counts(6558, 130, 357))


def test_a_table_without_its_columns_is_named():
    with pytest.raises(ValueError, match="predictions: missing column"):
        strs(pd.DataFrame({"subject": [1]}), README_TRUTHS)
