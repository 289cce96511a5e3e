"""Training on one dataset and testing on another (cross-dataset), and leaving one dataset of the
MEGC2019 composite out (LODO): the requests, their folds, keys and run directories, and the
clear errors for requests that cannot be made."""
from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from tsfmicro.cli import main
from tsfmicro.data import join_for_cross_dataset, load_samples
from tsfmicro.data.registry import SHARED_TASK
from tsfmicro.engine import RunConfig, load_run
from tsfmicro.engine.plan import published_folds
from tsfmicro.engine.runs import resolve_request, validate

# What a LOSO request's key hashed before splits and test datasets existed: a LOSO request still
# hashes exactly these (no new field), so the runs trained before keep their keys and folders.
LOSO_IDENTITY = {"engine_version", "dataset", "task", "fusion", "preset", "recipe", "crop_size", "image_size",
                 "data_cache_key", "device_type"}


def config(tmp_path, cache_dir, **changes) -> RunConfig:
    settings = dict(dataset="samm", root=str(tmp_path), task=SHARED_TASK, preset="tiny", epochs=1, seeds=(0,),
                    device="cpu", out=str(tmp_path / "runs"), cache_dir=str(cache_dir))
    return RunConfig(**{**settings, **changes})


@pytest.fixture(scope="module")
def requests(synthetic_samm_root, synthetic_casme2_root, synthetic_casme3_root, synthetic_megc_root,
             engine_cache_dir, tmp_path_factory):
    """Resolved requests (data prepared, nothing trained), sharing their prepared data."""
    out = tmp_path_factory.mktemp("cross")
    roots = {"samm": synthetic_samm_root, "casme2": synthetic_casme2_root, "casme3": synthetic_casme3_root,
             "megc2019": synthetic_megc_root}
    prepared: dict = {}

    def request(dataset, test=None, **changes):
        test_side = dict(test_dataset=test, test_root=str(roots[test])) if test else {}
        made = config(out, engine_cache_dir, dataset=dataset, root=str(roots[dataset]), **test_side, **changes)
        return resolve_request(made, progress=False, prepared=prepared)

    return request


def test_the_one_fold_trains_on_all_of_a_and_tests_on_all_of_b(requests, synthetic_samm_root, synthetic_casme2_root):
    samm_to_casme2 = requests("samm", "casme2")
    data = samm_to_casme2.data
    (fold,) = samm_to_casme2.folds()
    samm = load_samples("samm", synthetic_samm_root, SHARED_TASK).samples
    casme2 = load_samples("casme2", synthetic_casme2_root, SHARED_TASK).samples
    assert fold.name == "casme2" and len(fold.train_index) == len(samm) and len(fold.test_index) == len(casme2)
    assert set(data.samples["dataset"].iloc[fold.train_index]) == {"samm"}
    assert set(data.samples["dataset"].iloc[fold.test_index]) == {"casme2"}
    # subjects carry their dataset, and no subject is on both sides
    train_subjects = set(data.samples["subject"].iloc[fold.train_index])
    test_subjects = set(data.samples["subject"].iloc[fold.test_index])
    assert train_subjects == {f"samm/{s}" for s in samm["subject"]}
    assert test_subjects == {f"casme2/{s}" for s in casme2["subject"]} and not train_subjects & test_subjects
    # the merged class map: the joined counts per class are A's plus B's, in the MEGC order
    assert data.class_names == ["negative", "positive", "surprise"]
    joined = data.samples["class_index"].value_counts().sort_index()
    separate = pd.concat([samm["class_index"], casme2["class_index"]]).value_counts().sort_index()
    assert joined.to_dict() == separate.to_dict()
    assert len(data.onset) == len(data.samples) == len(samm) + len(casme2)
    assert samm_to_casme2.path.name.startswith("samm_to_casme2_3class_megc_ts_late_tiny_paper_")
    assert samm_to_casme2.unit_path(0).name.startswith("samm_to_casme2_3class_megc_ts_late_tiny_paper_seed0_")


def test_keys_differ_when_either_dataset_differs_and_loso_keys_hold(requests):
    samm_to_casme2, samm_to_casme3 = requests("samm", "casme2"), requests("samm", "casme3")
    casme2_to_samm, samm_loso = requests("casme2", "samm"), requests("samm")
    keys = [r.key for r in (samm_to_casme2, samm_to_casme3, casme2_to_samm, samm_loso)]
    assert len(set(keys)) == 4
    assert len({r.unit_key(0) for r in (samm_to_casme2, samm_to_casme3, casme2_to_samm, samm_loso)}) == 4
    assert set(samm_loso.identity) == LOSO_IDENTITY
    assert requests("samm", split="loso").key == samm_loso.key  # loso named or not: one run
    assert requests("samm", "casme2", split="cross_dataset").key == samm_to_casme2.key
    assert requests("samm", split="loso").config == samm_loso.config
    assert samm_to_casme2.identity["test_dataset"] == "casme2" and samm_to_casme2.identity["split"] == "cross_dataset"
    # A's own crops enter the key as in its LOSO run; B's as the test side's
    assert samm_to_casme2.identity["data_cache_key"] == samm_loso.identity["data_cache_key"]
    assert samm_to_casme2.identity["test_data_cache_key"] == requests("casme2").identity["data_cache_key"]


def test_lodo_holds_out_each_part_of_the_composite(requests):
    lodo, loso = requests("megc2019", task="3class", split="lodo"), requests("megc2019", task="3class")
    folds = lodo.folds()
    assert [f.name for f in folds] == ["casme2", "samm", "smic"]
    for fold in folds:
        assert set(lodo.data.samples["dataset"].iloc[fold.test_index]) == {fold.name}
        assert fold.name not in set(lodo.data.samples["dataset"].iloc[fold.train_index])
    assert len(loso.folds()) == lodo.data.samples["subject"].nunique()
    assert lodo.key != loso.key and lodo.identity["split"] == "lodo" and set(loso.identity) == LOSO_IDENTITY
    assert lodo.path.name.startswith("megc2019_3class_lodo_ts_late_tiny_paper_")


def test_train_on_samm_test_on_casme2_from_the_command_line(synthetic_samm_root, synthetic_casme2_root,
                                                             engine_cache_dir, tmp_path, capsys, one_torch_thread):
    out = tmp_path / "runs"
    code = main(["train", "--dataset", "samm", "--root", str(synthetic_samm_root), "--test-dataset", "casme2",
                 "--test-root", str(synthetic_casme2_root), "--task", SHARED_TASK, "--preset", "tiny",
                 "--epochs", "1", "--device", "cpu", "--out", str(out), "--cache-dir", str(engine_cache_dir),
                 "--no-progress"])
    assert code == 0 and "SYNTHETIC" in capsys.readouterr().out
    (run_dir,) = [p for p in out.iterdir() if p.name != "units"]
    assert run_dir.name.startswith("samm_to_casme2_3class_megc_")
    run = load_run(run_dir)
    # the predictions cover exactly CASME II's clips of the shared task, with their truth
    casme2 = load_samples("casme2", synthetic_casme2_root, SHARED_TASK).samples
    want = {(f"casme2/{s}", c): k for s, c, k in zip(casme2["subject"], casme2["clip_id"], casme2["class_index"])}
    got = {(s, c): k for s, c, k in zip(run.predictions["subject"], run.predictions["clip_id"], run.predictions["true"])}
    assert got == want and len(run.predictions) == len(casme2)
    assert run.predictions["fold"].unique().tolist() == ["casme2"] and run.curves["fold"].unique().tolist() == ["casme2"]
    assert run.metrics["clips"] == len(casme2)
    assert run.config["test_dataset"] == "casme2" and run.config["resolved"]["test_dataset"] == "casme2"
    assert run.provenance["data"]["dataset"] == "samm_to_casme2" and run.provenance["data"]["synthetic"]
    run.fold_model("casme2/sub01")  # the one fold's weights are kept


@pytest.mark.parametrize("changes, error, message", [
    (dict(test_dataset="samm"), ValueError, "test dataset samm is the training dataset"),
    (dict(test_dataset="megc2019"), ValueError,
     "task '3class_megc' is not a task of megc2019 (megc2019: 3class); a cross-dataset request needs a task "
     "both samm and megc2019 have: 3class"),
    (dict(dataset="casme3", task="5class", test_dataset="samm"), ValueError,
     "task '5class' is not a task of casme3 (casme3: 7class, 4class, 3class_megc); a cross-dataset request needs "
     "a task both casme3 and samm have: 3class_megc"),
    (dict(test_dataset="casme2", split="lodo"), ValueError, "split lodo with a test dataset"),
    (dict(split="lodo"), ValueError, "split lodo leaves one dataset of a composite out; samm is one dataset "
                                     "(composites: megc2019)"),
    (dict(split="cross_dataset"), ValueError, "split cross_dataset needs a test dataset"),
    (dict(split="kfold"), ValueError, "unknown split 'kfold'; choose one of loso, lodo, cross_dataset"),
    (dict(test_dataset="casme2", test_root=None), ValueError, "give the folder of the test dataset casme2"),
    (dict(test_dataset="casme2", test_root="/no/such/folder"), FileNotFoundError,
     "test dataset root /no/such/folder does not exist"),
    (dict(test_root="/tmp"), ValueError, "test_root /tmp given without a test dataset"),
])
def test_requests_that_cannot_be_made_are_clear_errors_before_any_work(changes, error, message, tmp_path):
    if "test_dataset" in changes:
        changes = {"test_root": str(tmp_path), **changes}
    with pytest.raises(error) as raised:
        validate(config(tmp_path, tmp_path / "cache", **changes))
    assert message in str(raised.value)
    assert not (tmp_path / "cache").exists()


def test_a_class_map_or_a_dataset_that_leaves_a_class_empty_is_refused(requests, tmp_path, monkeypatch):
    from tsfmicro.data import registry

    samm_to_casme2 = requests("samm", "casme2")
    samm = requests("samm").data
    casme2 = requests("casme2").data
    keep = samm.samples["class_index"].to_numpy() != 2  # SAMM without its surprise clips
    no_surprise = type(samm)(samm.dataset, samm.task, samm.samples[keep].reset_index(drop=True), samm.onset[keep],
                             samm.apex[keep], samm.class_names, samm.excluded, samm.source, samm.cache_key, None)
    with pytest.raises(ValueError, match="samm 3class_megc has no clip of class\\(es\\) surprise, so the training "
                                         "set would leave them empty"):
        join_for_cross_dataset(no_surprise, casme2)
    with pytest.raises(ValueError, match="so the test set would leave them empty"):
        join_for_cross_dataset(casme2, no_surprise)
    with pytest.raises(ValueError, match="the test dataset is the training dataset"):
        join_for_cross_dataset(samm, samm)
    # a class map that maps no label to a class is refused before any data is read
    info = registry.dataset_info("casme2")
    broken = registry.Task(("negative", "positive", "surprise"), {"disgust": "negative", "happiness": "positive"})
    monkeypatch.setitem(registry._REGISTRY, "casme2", dataclasses.replace(info, tasks={**info.tasks,
                                                                                    SHARED_TASK: broken}))
    with pytest.raises(ValueError, match="the 3class_megc class map of casme2 maps no label to surprise"):
        validate(samm_to_casme2.config)


def test_the_command_line_refuses_testing_on_the_training_dataset(synthetic_samm_root, tmp_path, capsys):
    code = main(["train", "--dataset", "samm", "--root", str(synthetic_samm_root), "--test-dataset", "samm",
                 "--test-root", str(synthetic_samm_root), "--task", SHARED_TASK, "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "test dataset samm is the training dataset" in err
    assert not any(tmp_path.iterdir())


def test_plans_without_the_data_use_the_published_sizes(tmp_path):
    """A plan made before the real folders are given: one fold of all of A against all of B, or
    the composite's three parts (the totals are exact whatever the parts' sizes)."""
    cross = config(tmp_path, tmp_path, dataset="samm", root="", test_dataset="casme3", test_root="")
    assert published_folds(cross) == ([133], [699])
    train, test = published_folds(config(tmp_path, tmp_path, dataset="megc2019", root="", task="3class",
                                         split="lodo"))
    assert len(train) == 3 and sum(test) == pytest.approx(442) and sum(train) == pytest.approx(2 * 442)
    train, test = published_folds(config(tmp_path, tmp_path, dataset="casme2", root=""))
    assert len(train) == 26 and sum(test) == pytest.approx(150)


# --------------------------------------------------------------------------- the chapters' tables
def fake_run(subjects, true, predicted, oracle=None, seeds=(0,)):
    """A finished run as the engine writes it (predictions, metrics.json), without training."""
    from tsfmicro import metrics
    from tsfmicro.results import Run

    rows = [pd.DataFrame({"seed": seed, "fold": [s.split("/")[0] for s in subjects], "subject": subjects,
                          "clip_id": [f"c{i}" for i in range(len(subjects))], "true": true,
                          "pred_fixed": predicted, "pred_oracle": predicted if oracle is None else oracle})
            for seed in seeds]
    predictions = pd.concat(rows, ignore_index=True)
    names = ["negative", "positive", "surprise"]
    config = {"dataset": "megc2019", "task": "3class", "fusion": "ts_late", "preset": "tiny", "recipe": "paper",
              "resolved": {"recipe": {"epochs": 1}}, "seeds": list(seeds), "data_source": "SYNTHETIC",
              "class_names": names}
    return Run(path=None, config=config, predictions=predictions, metrics=metrics.summarize(predictions, names),
               curves=pd.DataFrame(), provenance={})


SUBJECTS = ["casme2/sub01"] * 3 + ["casme2/sub02"] * 3 + ["samm/006"] * 3 + ["smic/s1"] * 3
TRUE = [0, 1, 2, 0, 1, 2, 0, 0, 1, 2, 2, 1]
FIXED = [0, 1, 2, 0, 0, 2, 1, 0, 1, 0, 2, 1]
ORACLE = [0, 1, 2, 0, 1, 2, 0, 0, 1, 2, 2, 1]


def test_part_scores_pool_each_parts_clips_over_every_class():
    from sklearn.metrics import f1_score, recall_score

    from tsfmicro import report

    run = fake_run(SUBJECTS, TRUE, FIXED, ORACLE)
    parts = report.part_scores(run)
    assert list(dict.fromkeys(parts["part"])) == ["composite", "casme2", "samm", "smic"]
    frame = pd.DataFrame({"subject": SUBJECTS, "true": TRUE, "fixed": FIXED})
    for part, rows in [("composite", frame), *((p, frame[frame.subject.str.startswith(p)])
                                                for p in ("casme2", "samm", "smic"))]:
        got = parts[(parts.part == part) & (parts.protocol == "fixed")].set_index("metric")["mean"]
        assert got["uf1"] == pytest.approx(f1_score(rows.true, rows.fixed, labels=[0, 1, 2], average="macro",
                                                    zero_division=0))
        assert got["uar"] == pytest.approx(recall_score(rows.true, rows.fixed, labels=[0, 1, 2], average="macro",
                                                        zero_division=0))
    oracle = parts[(parts.part == "composite") & (parts.protocol == "oracle") & (parts.metric == "uf1")]
    assert oracle["mean"].iloc[0] == 1.0 and set(parts["interval"]) == {"subject bootstrap 95%, 1000 resamples (one seed)"}
    assert parts.loc[parts.part == "casme2", "subjects"].iloc[0] == 2
    confusions = report.part_confusions(run)
    assert confusions["composite"].sum() == 12 and confusions["samm"].tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 0]]
    # two seeds: the subject x seed bootstrap; two identical seeds are said to agree, not shown as [x, x]
    two = report.part_scores(fake_run(SUBJECTS, TRUE, FIXED, seeds=(0, 1)))
    assert set(two["interval"]) == {"subject x seed bootstrap 95%, 1000 resamples"}
    assert two["per_seed"].map(len).eq(2).all()


def test_field_table_puts_ours_beside_the_published_numbers_with_their_selection():
    from tsfmicro import report
    from tsfmicro.chapters import composite
    from tsfmicro.reported import field_reported

    parts = report.part_scores(fake_run(SUBJECTS, TRUE, FIXED, ORACLE))
    table = composite.field_table(parts, field_reported(), "TSFmicro (ts_late)")
    assert table.columns.tolist() == ["method", "selection", "selects on test", "composite UF1 %", "CASME II UF1 %",
                                      "SAMM UF1 %", "SMIC-HS UF1 %", "composite UAR %", "source"]
    ours = table[table.method == "TSFmicro (ts_late)"].set_index("selection")
    assert ours["selects on test"].tolist() == [False, True]
    assert ours["composite UF1 %"].iloc[1].startswith("100.0")
    ststnet = table[table.method == "STSTNet (MEB toolkit)"].set_index("selects on test")
    assert ststnet.loc[False, "composite UF1 %"] == "71.27" and ststnet.loc[True, "CASME II UF1 %"] == "86.92"
    assert ststnet.loc[False, "composite UAR %"] == "n/a"  # MEB gives F1 only
    causal = table[table.method == "CausalNet (ICCV 2025)"].iloc[0]
    assert causal["composite UAR %"] == "90.20" and causal["selects on test"]
    assert len(table) == 2 + len(field_reported().groupby(["method", "selection"]))


def test_cross_dataset_matrix_lodo_table_and_the_generated_sentences():
    from tsfmicro import report
    from tsfmicro.chapters import composite, cross_dataset

    good = fake_run(["casme2/sub01"] * 3, [0, 1, 2], [0, 1, 2])
    poor = fake_run(["samm/006"] * 3, [0, 1, 2], [0, 0, 0])
    middling = fake_run(["casme2/sub01"] * 3, [0, 1, 2], [0, 1, 1])
    runs = {("casme2", "casme2"): good, ("casme2", "samm"): poor, ("samm", "casme2"): middling,
            ("samm", "samm"): good}
    matrix = cross_dataset.cross_dataset_matrix(runs)
    assert matrix[["train", "test", "own"]].values.tolist() == [
        ["casme2", "casme2", True], ["casme2", "samm", False], ["samm", "casme2", False], ["samm", "samm", True]]
    assert matrix.set_index(["train", "test"]).loc[("casme2", "samm"), "mean"] == pytest.approx(1 / 6)
    sentence = cross_dataset.transfer_sentence(matrix)
    assert sentence.startswith("The direction that transfers worst here is trained on CASME II, tested on SAMM: "
                               "UF1 16.7 %, 83.3 points below SAMM trained on its own subjects (LOSO, 100.0 %).")
    assert "The highest-scoring of the 2 directions is SAMM to CASME II (55.6 %)." in sentence
    assert cross_dataset.transfer_sentence(matrix[matrix.own]) == ""
    # a direction that beats the test dataset's own LOSO score says so
    better = matrix.assign(mean=[0.3, 0.5, 0.6, 0.4])
    assert "trained on CASME II, tested on SAMM: UF1 50.0 %, 10.0 points above SAMM trained on its own " \
        "subjects (LOSO, 40.0 %): these runs show no loss" in cross_dataset.transfer_sentence(better)

    lodo = report.part_scores(fake_run(SUBJECTS, TRUE, FIXED), protocols=("fixed",))
    loso = report.part_scores(fake_run(SUBJECTS, TRUE, ORACLE))
    table = cross_dataset.lodo_table(lodo, loso)
    assert table["held-out part"].tolist() == ["all parts (pooled)", "CASME II", "SAMM", "SMIC-HS"]
    assert table["clips"].tolist() == [12, 6, 3, 3]
    assert table["LOSO on the composite UF1 %"].iloc[0].startswith("100.0")
    assert "LOSO on the composite UF1 %" not in cross_dataset.lodo_table(lodo).columns

    text = composite.composite_sentence(report.part_scores(fake_run(SUBJECTS, TRUE, FIXED, ORACLE)))
    fixed = report.part_scores(fake_run(SUBJECTS, TRUE, FIXED)).query("part == 'composite' and metric == 'uf1'")
    assert text.startswith(f"On the MEGC2019 composite, TSFmicro (ts_late) reaches UF1 "
                           f"{100 * fixed['mean'].iloc[0]:.1f} % under the fixed protocol (CASME II ")
    assert "gives 100.0 % (+" in text and text.endswith("an upper bound, not an estimate.")
    assert composite.composite_sentence(lodo.iloc[0:0]) == ""
