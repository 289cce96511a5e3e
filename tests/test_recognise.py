"""Recognition of intervals of other videos with a trained run's fold models
(tsfmicro.engine.evaluate.interval_probabilities): a clip's own frames cut as the cache cut them
give the run's own predictions; the ensemble is the mean of the fold models."""
from __future__ import annotations

import numpy as np
import pytest

from helpers import torch_threads
from tsfmicro.data import prepare
from tsfmicro.data.cache import CROP_BOX_COLUMNS
from tsfmicro.engine import RunConfig, evaluate, train
from tsfmicro.results import first_seed_predictions


@pytest.fixture(scope="module")
def samm_run(synthetic_samm_root, engine_cache_dir, tmp_path_factory):
    """A tiny SAMM 5-class T-S late run (3 subjects, seed 0, 2 epochs, 32 px, one thread) and its data."""
    with torch_threads(1):
        config = RunConfig(dataset="samm", root=synthetic_samm_root, task="5class", preset="tiny", epochs=2,
                           batch_size=8, image_size=32, seeds=(0,), device="cpu",
                           out=tmp_path_factory.mktemp("runs"), cache_dir=engine_cache_dir)
        run = train(config, progress=False)
        data = prepare("samm", synthetic_samm_root, "5class", crop_size=32, cache_dir=engine_cache_dir,
                       progress=False, boxes=True)
        yield run, data


def test_a_fold_model_on_a_clips_own_frames_gives_the_runs_prediction(samm_run, one_torch_thread):
    run, data = samm_run
    table = first_seed_predictions(run)
    rows = data.samples.iloc[table["sample_index"].to_numpy(dtype=int)]
    pairs = list(zip(rows["onset_path"], rows["apex_path"]))
    boxes = rows[list(CROP_BOX_COLUMNS)].to_numpy()
    result = evaluate.interval_probabilities(run, pairs, folds=list(table["subject"]), boxes=boxes)
    assert len(result) == len(table) and (result["crop_method"] == "given").all()
    assert list(result["fold"]) == list(table["subject"].astype(str))
    for name in run.class_names:
        assert np.allclose(result[f"prob_{name}"], table[f"prob_fixed_{name}"], atol=1e-5, rtol=0)
    assert (result["pred"].to_numpy() == table["pred_fixed"].to_numpy()).all()
    # the box found again by MTCNN on the onset (as the cache found it): the same crops
    detected = evaluate.interval_probabilities(run, pairs[:4], folds=list(table["subject"])[:4])
    assert (detected["crop_method"] == "mtcnn").all()
    assert np.allclose(detected[list(CROP_BOX_COLUMNS)].to_numpy(), boxes[:4], atol=0.5)
    # arrays in place of paths: the same
    from tsfmicro.data.frames import read_frame
    arrays = [(read_frame(a), read_frame(b)) for a, b in pairs[:3]]
    again = evaluate.interval_probabilities(run, arrays, folds=list(table["subject"])[:3], boxes=boxes[:3])
    name = f"prob_{run.class_names[0]}"
    assert np.allclose(again[name], result[name][:3], atol=1e-7)


def test_the_ensemble_is_the_mean_of_the_fold_models(samm_run, one_torch_thread):
    run, data = samm_run
    rows = data.samples.iloc[:5]
    pairs = list(zip(rows["onset_path"], rows["apex_path"]))
    boxes = rows[list(CROP_BOX_COLUMNS)].to_numpy()
    subjects = evaluate.run_subjects(run)
    assert subjects == sorted(set(data.samples["subject"]))
    ensemble = evaluate.interval_probabilities(run, pairs, boxes=boxes)
    assert (ensemble["fold"] == evaluate.ENSEMBLE).all()
    probs = [f"prob_{name}" for name in run.class_names]
    each = [evaluate.interval_probabilities(run, pairs, folds=s, boxes=boxes)[probs].to_numpy() for s in subjects]
    assert np.allclose(ensemble[probs].to_numpy(), np.mean(each, axis=0), atol=1e-6)
    assert np.allclose(ensemble[probs].sum(axis=1), 1, atol=1e-5)
    assert not np.allclose(each[0], each[1])  # the folds are different models
    assert (ensemble["pred"] == ensemble[probs].to_numpy().argmax(axis=1)).all()


def test_interval_probabilities_refuses_unknown_subjects_and_bad_frames(samm_run):
    run, data = samm_run
    row = data.samples.iloc[0]
    pair = (row["onset_path"], row["apex_path"])
    with pytest.raises(KeyError, match="not held out by a fold"):
        evaluate.interval_probabilities(run, [pair], folds="999")
    with pytest.raises(ValueError, match="one per interval"):
        evaluate.interval_probabilities(run, [pair, pair], folds=["006"])
    with pytest.raises(ValueError, match="uint8 RGB"):
        evaluate.interval_probabilities(run, [(np.zeros((10, 10, 3), np.uint8), np.zeros((12, 10, 3), np.uint8))])
    empty = evaluate.interval_probabilities(run, [])
    assert empty.empty and f"prob_{run.class_names[0]}" in empty.columns


def test_an_apex_box_of_its_own_cuts_the_apex_elsewhere(samm_run, one_torch_thread):
    """apex_boxes None (or the onset's box again) is the cache's rule; another box moves only the apex crop."""
    run, data = samm_run
    rows = data.samples.iloc[:3]
    pairs = list(zip(rows["onset_path"], rows["apex_path"]))
    boxes = rows[list(CROP_BOX_COLUMNS)].to_numpy()
    probs = [f"prob_{name}" for name in run.class_names]
    same = evaluate.interval_probabilities(run, pairs, folds="006", boxes=boxes)
    again = evaluate.interval_probabilities(run, pairs, folds="006", boxes=boxes, apex_boxes=[None, boxes[1], None])
    assert np.array_equal(same[probs].to_numpy(), again[probs].to_numpy())
    moved = evaluate.interval_probabilities(run, pairs, folds="006", boxes=boxes,
                                            apex_boxes=[boxes[0] + [40, 0, 40, 0], None, None])
    assert not np.allclose(moved[probs].iloc[0], same[probs].iloc[0]) and np.allclose(moved[probs].iloc[1:],
                                                                                        same[probs].iloc[1:])
    with pytest.raises(ValueError, match="apex_boxes: 1 boxes for 3 intervals"):
        evaluate.interval_probabilities(run, pairs, boxes=boxes, apex_boxes=[None])
