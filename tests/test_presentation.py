"""The book's presentation helpers (issue 20): numbered captions driven by the chapter registry,
the collapsed provenance box, the training curves' oracle marks and the per-subject table."""
from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from tsfmicro import chapters, plots, report  # noqa: E402
from tsfmicro.provenance_box import ProvenanceBox  # noqa: E402


@pytest.fixture(autouse=True)
def no_numbering():
    yield
    plots._EXHIBITS = None  # other tests' tables stay unnumbered


def test_figures_and_tables_are_numbered_in_order_with_paper_and_command():
    plots.number_exhibits(1, "the paper's main results table", "tsfmicro run params/demo.yaml")
    first = plots.table(pd.DataFrame({"a": [1, 2]}), "data: SYNTHETIC", "scores").caption
    fig, ax = plt.subplots()
    ax.set_title("UF1")
    figure = plots._figure_html(fig)
    second = plots.table(pd.DataFrame({"a": [1, 2]}), "data: SYNTHETIC", "more").caption
    assert first.startswith("<b class='tsfmicro-number'>Table 1.1</b> scores")
    assert "Table 1.2" in second and "Figure 1.1" in figure
    assert "re-derives the paper&#x27;s main results table" in first
    assert "tsfmicro run params/demo.yaml" in figure and "UF1" in figure  # the panel's title as text
    assert re.search(r"<img src='data:image/png;base64,[A-Za-z0-9+/=]{100,}'", figure)
    # shown twice (IPython may format a figure more than once): one number
    assert plots._figure_html(fig) == figure
    plt.close(fig)


def test_beyond_the_paper_is_said_as_such_and_nothing_is_numbered_outside_a_chapter():
    assert "Table" not in plots.table(pd.DataFrame({"a": [1, 2]}), "x", "plain").caption
    plots.number_exhibits(7, "beyond the paper", "cmd")
    assert "beyond the paper; regenerate" in plots.table(pd.DataFrame({"a": [1, 2]}), "x", "c").caption


def test_every_chapter_says_what_it_re_derives():
    for chapter in chapters.chapters():
        assert chapter.paper.startswith(("the paper's", "beyond the paper")), chapter.name
    assert chapters.get("main_results").paper.startswith("the paper's")


def test_provenance_box_shows_one_line_and_hides_the_rest():
    study = SimpleNamespace(params={"device": "cpu", "epochs": 2, "seeds": [0, 1], "paths": {}},
                            source="SYNTHETIC", runs_used=lambda: [],
                            parameters=SimpleNamespace(params_file="params/demo.yaml", project_root=".",
                                                       path=lambda name: "runs"))
    box = ProvenanceBox(study, "Main results")
    page = box._repr_html_()
    headline, hidden = page.split("<details", 1)
    assert ">SYNTHETIC</span>" in headline and "commit" in headline and "device" in headline
    assert "date" in headline and "epochs: 2" not in headline
    assert '"epochs: 2"' not in hidden and "epochs: 2" in hidden and "seeds: [0, 1]" in hidden


def _curves(f1):
    rows = [{"seed": 0, "fold": fold, "epoch": epoch + 1, "train_loss": 1.0 / (epoch + 1), "test_f1": value}
            for fold, values in f1.items() for epoch, value in enumerate(values)]
    return pd.DataFrame(rows)


def test_oracle_marks_are_each_folds_best_epoch_last_on_ties():
    table = _curves({"s1": [0.2, 0.8, 0.5], "s2": [0.4, 0.4, 0.1]})
    chosen = table.loc[plots._oracle_rows(table)].set_index("fold")["epoch"].to_dict()
    assert chosen == {"s1": 2, "s2": 2}  # s2: epochs 1 and 2 tie, the later one is kept
    fig = plots.training_curves({"casme2 5class": table}, "data: SYNTHETIC")
    loss, f1 = fig.axes[0], fig.axes[1]
    assert np.allclose(loss.lines[0].get_ydata(), [1.0, 0.5, 1 / 3])
    assert np.allclose(f1.lines[0].get_ydata(), [0.3, 0.6, 0.3])  # mean over folds
    assert np.allclose(f1.collections[-1].get_offsets(), [[2, 0.8], [2, 0.4]])
    plt.close(fig)


def test_per_subject_table_has_both_protocols_and_the_oracle_epoch():
    predictions = pd.DataFrame({
        "seed": [0, 0, 0, 0], "subject": ["a", "a", "b", "b"], "true": [0, 1, 0, 1],
        "pred_fixed": [0, 0, 1, 1], "pred_oracle": [0, 1, 1, 1], "epoch_fixed": [3] * 4,
        "epoch_oracle": [2, 2, 1, 1]})
    from tsfmicro.results import Run

    run = Run(path=Path("run"), config={}, predictions=predictions, metrics={}, curves=pd.DataFrame(),
              provenance={})
    table = report.per_subject_wide(run).set_index("subject")
    assert table.loc["a", "clips"] == 2 and table.loc["a", "ACC fixed %"] == 50.0
    assert table.loc["a", "ACC oracle %"] == 100.0 and table.loc["a", "oracle epoch"] == 2.0
    assert table.loc["b", "oracle epoch"] == 1.0


def test_grad_cam_examples_come_from_several_subjects():
    from tsfmicro.gradcam import pick_examples

    # fold order: subject a's clips first; each class has correct clips in a, b and c
    predictions = pd.DataFrame({"subject": ["a"] * 4 + ["b"] * 4 + ["c"] * 4,
                                "true": [0, 1] * 6, "pred": [0, 1] * 6})
    chosen = pick_examples(predictions, ["x", "y"], per_class=3)
    subjects = [predictions.loc[pick["index"], "subject"] for pick in chosen]
    assert len(chosen) == 6 and sorted(set(subjects)) == ["a", "b", "c"]
    assert subjects.count("a") == 2  # not 4 (first in table order)
    assert pick_examples(predictions, ["x", "y"], per_class=3) == chosen  # reproducible


def test_grad_cam_figure_has_a_colour_bar():
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    panel = {"title": "correct: true x", "difference": image, "onset": image,
             "temporal": np.linspace(0, 1, 64).reshape(8, 8), "spatial": None}
    fig = plots.gradcam_grid([panel], "data: SYNTHETIC")
    bars = [ax for ax in fig.axes if "Grad-CAM" in ax.get_ylabel()]
    assert len(bars) == 1 and len(fig.axes) == 5
    plt.close(fig)


def test_interval_bars_span_the_interval_even_when_the_estimate_lies_outside_it():
    """A percentile bootstrap interval need not hold the point estimate (here 40 % against
    [45, 60] %): the bar chart draws the interval from 45 to 60 instead of failing on a negative
    error bar (what the 3-epoch test book hit) or clipping it to start at the estimate."""
    summary = pd.DataFrame([{"run": "casme2 5class", "protocol": "fixed", "metric": "uf1", "mean": 0.40,
                             "low": 0.45, "high": 0.60},
                            {"run": "casme2 5class", "protocol": "oracle", "metric": "uf1", "mean": 0.70,
                             "low": 0.55, "high": 0.80}])
    fig = plots.metric_bars(summary, "run", "data: SYNTHETIC", metrics=("uf1",))
    spans = sorted(tuple(np.round(np.asarray(segment)[:, 1], 6))
                   for collection in fig.axes[0].collections for segment in collection.get_segments())
    assert spans == [(45.0, 60.0), (55.0, 80.0)]
    plt.close(fig)
