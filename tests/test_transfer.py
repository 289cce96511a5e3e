"""Pre-training then fine-tuning (tsfmicro.engine.transfer): the held-out subject is seen in
neither stage, the fine-tuning folds wait for their pre-training unit, start from its weights and
freeze what they are told to, a killed fine-tuning fold resumes to the same numbers, and the plan
prices both stages."""
from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import torch

from tsfmicro import _io
from tsfmicro.data.registry import SHARED_TASK
from tsfmicro.engine import RunConfig
from tsfmicro.engine import execute as execute_module
from tsfmicro.engine import checkpoint as ckpt
from tsfmicro.engine import transfer
from tsfmicro.engine.execute import LocalExecutor
from tsfmicro.engine.plan import make_plan, plan_table
from tsfmicro.engine.runs import resolve_request, validate
from tsfmicro.results import fold_weights_path, is_finished


def finetune_config(out, roots, cache_dir, **changes) -> RunConfig:
    """Fine-tune on SAMM from CASME II (tiny network, 32 px, a few epochs)."""
    settings = dict(dataset="samm", root=str(roots["samm"]), task=SHARED_TASK, preset="tiny", image_size=32,
                    epochs=4, batch_size=4, seeds=(0,), device="cpu", out=str(out), cache_dir=str(cache_dir),
                    pretrained="casme2", source_root=str(roots["casme2"]), checkpoint_every=1, checkpoint_seconds=0)
    return RunConfig(**{**settings, **changes})


@pytest.fixture(scope="module")
def roots(synthetic_samm_root, synthetic_casme2_root, synthetic_casme3_root, synthetic_megc_root):
    return {"samm": synthetic_samm_root, "casme2": synthetic_casme2_root, "casme3": synthetic_casme3_root,
            "megc2019": synthetic_megc_root}


def people(samples, rows):
    return transfer.clip_people(samples, rows)


@pytest.mark.parametrize("source", ["casme2", "composite"])
def test_the_held_out_subject_is_in_neither_stage(source, roots, engine_cache_dir, tmp_path):
    changes = {"source_root": str(roots["megc2019"])} if source == "composite" else {}
    plan = make_plan([finetune_config(tmp_path, roots, engine_cache_dir, pretrained=source, **changes)])
    pre, fine = plan.units  # the pre-training unit first
    assert fine.needs is pre and pre.keep_weights and pre.request.config.pretrained is None
    (pre_fold,) = [f for f in pre.folds if f.name == "samm"]  # the fold whose weights fine-tuning starts from
    assert fine.init_weights == fold_weights_path(pre.path / "weights", "samm")
    pre_people = people(pre.request.data.samples, pre_fold.train_index)
    assert pre_people and {d for d, _ in pre_people} == ({"casme2"} if source == "casme2" else {"casme2", "smic"})
    target = fine.request.data.samples
    assert len(fine.folds) == target["subject"].nunique() >= 2
    for fold in fine.folds:  # on the fold indices of both stages
        held_out = people(target, fold.test_index)
        assert held_out == {("samm", str(fold.name))}
        assert not held_out & people(target, fold.train_index)  # fine-tuning stage
        assert not held_out & pre_people  # pre-training stage


def test_a_source_that_could_hold_the_targets_subjects_is_refused(roots, engine_cache_dir, tmp_path):
    # the composite holds SAMM's people: pre-training on all of it would show them to the model
    composite = resolve_request(RunConfig(dataset="megc2019", root=str(roots["megc2019"]), task="3class",
                                          preset="tiny", image_size=32, device="cpu", out=str(tmp_path),
                                          cache_dir=str(engine_cache_dir)), progress=False)
    samm = resolve_request(finetune_config(tmp_path, roots, engine_cache_dir, pretrained=None, source_root=None),
                           progress=False)
    with pytest.raises(transfer.SubjectLeak, match=r"pretrained composite: the pre-training clips hold \d+ subject"):
        transfer.check_no_leak(composite.data.samples, range(len(composite.data.samples)), samm.data.samples,
                               "composite", "samm")
    # a target outside the composite: no fold of it leaves the target's people out for certain
    with pytest.raises(transfer.SubjectLeak, match="casme3 is not a part of the megc2019 composite"):
        validate(finetune_config(tmp_path, roots, engine_cache_dir, dataset="casme3", root=str(roots["casme3"]),
                                 pretrained="composite", source_root=str(roots["megc2019"])))


@pytest.mark.parametrize("changes, message", [
    ({"pretrained": "samm"}, "is the fine-tuning dataset itself"),
    ({"source_root": None}, "give the folder of the pre-training source casme2"),
    ({"pretrained": None, "finetune": "head"}, "finetune 'head' is for fine-tuning: give pretrained"),
    ({"pretrained": None, "finetune_recipe": "full"}, "finetune_recipe 'full' is for fine-tuning"),
    ({"pretrained": "nowhere"}, "unknown pre-training source 'nowhere'"),
    ({"finetune": "frozen_spatial", "fusion": "temporal_only"}, "has none"),
])
def test_transfer_options_that_cannot_work_are_one_line_errors(changes, message, roots, engine_cache_dir, tmp_path):
    with pytest.raises(ValueError, match=message):
        validate(finetune_config(tmp_path, roots, engine_cache_dir, **changes))


def test_fine_tuning_waits_for_pre_training_starts_from_its_weights_and_freezes_the_rest(
        roots, engine_cache_dir, tmp_path, monkeypatch, one_torch_thread):
    config = finetune_config(tmp_path, roots, engine_cache_dir, finetune="head")
    plan = make_plan([config])
    pre, fine = plan.units
    assert [[u.path for u in wave] for wave in plan.waves()] == [[pre.path], [fine.path]]
    table = plan.table()  # both stages priced: the fine-tuning one with its own (short) recipe
    assert table["epochs"].tolist() == [4, 1] and (table["tflops"] > 0).all()
    assert table["options"].tolist() == ["test_dataset=samm", "pretrained=casme2, finetune=head"]

    started = []  # (unit, was the pre-training unit finished when this fold started)
    original = execute_module.run_fold_task

    def recorded(task, data, **kwargs):
        started.append((task.unit_dir, is_finished(pre.path)))
        return original(task, data, **kwargs)

    monkeypatch.setattr(execute_module, "run_fold_task", recorded)
    execute_module.execute(plan, LocalExecutor(), progress=False, messages=False)
    assert [d for d, _ in started] == [str(pre.path)] * len(pre.folds) + [str(fine.path)] * len(fine.folds)
    assert all(done for unit, done in started if unit == str(fine.path))
    assert is_finished(fine.path)

    # head: every weight and normalisation statistic but the classifier's is the pre-trained one
    before = _io.load_tagged(fine.init_weights, "weights:samm")["model"]
    for fold in fine.folds:
        after = _io.load_tagged(fold_weights_path(fine.path / "weights", fold.name), f"weights:{fold.name}")["model"]
        changed = {name for name in before if not torch.equal(before[name], after[name])}
        assert changed == {"head.classifier.weight", "head.classifier.bias"}


def test_a_killed_fine_tuning_fold_resumes_to_the_uninterrupted_numbers(roots, engine_cache_dir, tmp_path,
                                                                         one_torch_thread):
    # 4 fine-tuning epochs (the full recipe), a checkpoint after each: killed after the first one
    config = dict(finetune_recipe="full", finetune="frozen_spatial")
    reference = make_plan([finetune_config(tmp_path / "a", roots, engine_cache_dir, **config)])
    execute_module.execute(reference, LocalExecutor(), progress=False, messages=False)

    plan = make_plan([finetune_config(tmp_path / "b", roots, engine_cache_dir, **config)])
    fine = plan.units[1]
    original = ckpt.save_checkpoint

    def killed_after_first_fine_tuning_checkpoint(path, *args, **kwargs):
        original(path, *args, **kwargs)
        if str(fine.path) in str(path) and str(path).endswith(".checkpoint.pt"):
            raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ckpt, "save_checkpoint", killed_after_first_fine_tuning_checkpoint)
        with pytest.raises(KeyboardInterrupt):
            execute_module.execute(plan, LocalExecutor(), progress=False, messages=False)
    assert is_finished(plan.units[0].path) and not is_finished(fine.path)
    assert list((fine.path / "folds").glob("*.checkpoint.pt"))

    execute_module.execute(make_plan([finetune_config(tmp_path / "b", roots, engine_cache_dir, **config)]),
                    LocalExecutor(), progress=False, messages=False)
    curves = pd.read_csv(fine.path / "curves.csv")
    assert curves.groupby("fold")["start_epoch"].first().tolist()[0] == 1  # the killed fold continued epoch 1
    pd.testing.assert_frame_equal(pd.read_csv(fine.path / "predictions.csv"),
                                  pd.read_csv(reference.units[1].path / "predictions.csv"))
    pd.testing.assert_frame_equal(curves.drop(columns="start_epoch"),
                                  pd.read_csv(reference.units[1].path / "curves.csv").drop(columns="start_epoch"))


def test_the_plan_prices_both_stages_without_the_data(tmp_path):
    config = RunConfig(dataset="samm", root="", task=SHARED_TASK, preset="paper", seeds=(0,), device="cpu",
                       out=str(tmp_path), pretrained="casme2", source_root="", epochs=40)
    table = plan_table([], [config])
    assert table["dataset"].tolist() == ["casme2", "samm"] and table["state"].eq("no data").all()
    assert table["epochs"].tolist() == [40, 10]  # the short fine-tuning recipe: a quarter of the epochs
    assert table["folds"].tolist() == [1, 28] and (table["tflops"] > 0).all()


# ----------------------------------------------------------------------------- the chapter (14)
def test_the_chapters_truths_gap_and_closing_note_on_hand_made_runs():
    """LOSO recovers 90 % of the clips, plain transfer a third (chance), fine-tuning 70 %: the gap
    is found, fine-tuning closes part of it (paired), the contrastive run is shown, nothing planted."""
    from tests.test_truths import page
    from tests.test_statistics import noisy, run_from
    from tsfmicro.chapters.transfer import CONTRASTIVE, LOSO, finetune_label, on_target, transfer_label

    def run(accuracy, rng_seed):
        predictions = pd.concat([noisy(0, accuracy, rng_seed=rng_seed), noisy(1, accuracy, rng_seed=rng_seed)],
                                ignore_index=True)
        return run_from(predictions.assign(clip_id=predictions.groupby("seed").cumcount().astype(str)))

    key = ("samm", SHARED_TASK)
    runs = {(*key, LOSO): run(0.9, 0), (*key, transfer_label("casme2")): run(1 / 3, 1),
            (*key, finetune_label("casme2", "all")): run(0.7, 2), (*key, CONTRASTIVE): run(0.9, 3)}
    built = page("transfer", runs, {"targets": ("samm",), "sources": ("casme2",), "finetune": ("all",)})
    truths = built.computed_truths
    assert [t.recovered for t in truths] == [True, True, None]
    assert "trained on" in truths[0].truth and "fine-tune − transfer +" in truths[1].measured
    assert "% of the gap" in truths[1].measured and truths[2].expected.startswith("no truth planted")
    (gap,) = built.gaps.itertuples()
    assert gap.gap > 0.4 and 0.2 < gap.recovered < gap.gap and 0.3 < gap.share < 0.9
    assert gap.recovered_verdict == "reference higher" and gap.gap_verdict == "reference higher"
    summary = built.summary()
    assert f"{100 * gap.share:.0f} % of the gap" in summary and "fine-tuning closes part of the gap" in summary
    assert set(built.paired[built.column]) == {transfer_label("casme2"), finetune_label("casme2", "all"), CONTRASTIVE}
    assert "surprise" in built.recall_table["class"].tolist()

    # a cross-dataset run is read on its target: subjects without the join's prefix, pairing with LOSO
    joined = runs[(*key, LOSO)]
    joined = dataclasses.replace(joined, predictions=joined.predictions.assign(
        subject=["samm/" + s for s in joined.predictions["subject"]]), config={**joined.config, "dataset": "casme2"})
    seen = on_target(joined, "samm")
    assert seen.config["dataset"] == "samm" and set(seen.predictions["subject"]) == set(
        runs[(*key, LOSO)].predictions["subject"])


def test_the_demo_plans_the_chapter_sharing_chapter_06s_runs():
    from pathlib import Path

    from tsfmicro.chapters import cross_dataset
    from tsfmicro.chapters.transfer import runs as transfer_runs
    from tsfmicro.params import Params

    params = Params.load(Path(__file__).resolve().parents[1] / "params" / "demo.yaml")
    planned = transfer_runs(params)
    shared = set(cross_dataset.runs(params).values())
    loso, plain, tuned, contrastive = planned.values()
    assert loso in shared and plain in shared and tuned not in shared  # LOSO and plain transfer: 06's runs
    assert contrastive.options == (("supcon_weight", 0.5),) and contrastive.dataset == "samm"
    config = params._planned_config(tuned)
    assert (config.pretrained, config.finetune, config.source_root) == ("casme2", "all", str(params.root("casme2")))
    pre = transfer.pretraining_config(config)
    assert pre == dataclasses.replace(params._planned_config(plain), checkpoint_every=pre.checkpoint_every)
    # a section that cannot be planned is one message
    with pytest.raises(ValueError, match="transfer.sources: composite pre-trains on the megc2019 composite"):
        Params.load(Path(__file__).resolve().parents[1] / "params" / "demo.yaml",
                    overrides={"transfer": {"targets": ["casme3"], "sources": ["composite"]}})


@pytest.mark.parametrize("flags, message", [
    (["--pretrained", "casme2"], "give the folder of the pre-training source casme2"),
    (["--finetune", "head"], "finetune 'head' is for fine-tuning: give pretrained"),
    (["--pretrained", "samm", "--source-root", "."], "is the fine-tuning dataset itself"),
])
def test_the_command_line_refuses_a_fine_tuning_request_that_cannot_be_made(flags, message, synthetic_samm_root,
                                                                             tmp_path, capsys):
    from tsfmicro.cli import main

    code = main(["train", "--dataset", "samm", "--root", str(synthetic_samm_root), "--task", SHARED_TASK,
                 "--out", str(tmp_path), *flags])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err
    assert not any(tmp_path.iterdir())


def test_on_ray_the_fine_tuning_folds_start_after_the_pre_training_unit_finished(roots, engine_cache_dir, tmp_path):
    """Two Ray workers: the pre-training unit's one fold runs alone, every fine-tuning fold starts
    after the pre-training unit was written (the folds' own records, written in the workers)."""
    pytest.importorskip("ray")
    from tsfmicro.engine import folds as fold_files
    from tsfmicro.engine.execute import RayExecutor
    from tsfmicro.results import load_run

    plan = make_plan([finetune_config(tmp_path, roots, engine_cache_dir)])
    pre, fine = plan.units
    summary = execute_module.execute(plan, RayExecutor(workers=2), progress=False, messages=False)
    assert summary.folds_trained == len(pre.folds) + len(fine.folds) and is_finished(fine.path)
    pre_finished = load_run(pre.path).provenance["finished"]
    starts = [fold_files.read_result(fine.path, fine.key, str(f.name)) for f in fine.folds]
    assert all(r.executor == "ray" and r.started >= pre_finished for r in starts)


def test_each_emotions_recall_is_the_share_of_its_clips_put_in_their_class():
    """SAMM's contempt is in the shared task's negative class: its recall is counted on its own clips."""
    from tests.test_statistics import run_from
    from tsfmicro.chapters.transfer import label_recall

    predictions = pd.DataFrame({"seed": 0, "subject": ["a", "a", "b", "b", "c", "c"],
                                "clip_id": ["a1", "a2", "b1", "b2", "c1", "c2"], "true": [0, 0, 0, 0, 2, 2],
                                "pred_fixed": [0, 1, 0, 0, 2, 0]})
    predictions["pred_oracle"] = predictions["pred_fixed"]
    samples = pd.DataFrame({"subject": ["a", "a", "b", "b", "c", "c"], "clip_id": ["a1", "a2", "b1", "b2", "c1", "c2"],
                            "label": ["Contempt", "Anger", "Contempt", "Anger", "Surprise", "Surprise"]})
    table = label_recall({("samm", SHARED_TASK, "LOSO"): run_from(predictions)}, samples).set_index("label")
    assert table.loc["Contempt", "mean"] == 1.0 and table.loc["Anger", "mean"] == 0.5  # a2 went to positive
    assert table.loc["Surprise", "mean"] == 0.5 and table.loc["Contempt", "class"] == "negative"
    assert table["clips"].tolist() == [2, 2, 2] and (table["low"] <= table["mean"]).all()
