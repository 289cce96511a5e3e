"""Chapter 11 (tsfmicro/chapters/baselines.py): its section's checks, the runs it plans (TSFmicro's
shared, each network on the flow input with its authors' recipe), the published numbers with their
selection, and the page trained and shown on a tiny synthetic set."""
from pathlib import Path

import numpy as np
import pytest

from helpers import write_synthetic_params
from tsfmicro import reported
from tsfmicro.chapters import baselines
from tsfmicro.cli import main
from tsfmicro.model import MODELS
from tsfmicro.params import Params
from tsfmicro.sections import PlannedRun
from tsfmicro.study import Study

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "params" / "demo.yaml"


def test_the_section_is_checked_with_valid_values():
    with pytest.raises(ValueError) as error:
        Params.load(DEMO, overrides={"baselines": {"tasks": ["samm/3class", "casme2/5class"], "networks": ["stst"],
                                                   "epochs": 0}})
    message = str(error.value)
    assert "baselines.tasks: samm/3class is not in datasets:" in message
    assert "baselines.networks: unknown 'stst' (did you mean 'ststnet'?)" in message
    assert "baselines.epochs: 0 must be a positive whole number or null" in message
    # the composite is accepted without being in datasets:, and null leaves the chapter out
    assert Params.load(DEMO, overrides={"baselines": {"tasks": ["megc2019/3class"], "networks": ["htnet"]}}) \
        .section("baselines").tasks == ("megc2019/3class",)
    assert Params.load(DEMO, overrides={"baselines": None}).section("baselines") is None
    # tasks null: every dataset/task of datasets:, so narrowing datasets: narrows the chapter too
    paper = Params.load(ROOT / "params" / "paper.yaml", overrides={"datasets": {"casme2": ["5class"]},
                                                                   "imbalance": None, "long_videos": None})
    assert baselines.tasks(paper) == [("casme2", "5class"), ("megc2019", "3class")]  # composite: true
    assert baselines.tasks(Params.load(DEMO, overrides={"baselines": {"tasks": None}})) == [
        ("casme2", "5class"), ("samm", "5class"), ("casme3", "7class")]


def test_runs_share_tsfmicro_and_give_each_network_its_authors_recipe():
    params = Params.load(DEMO)
    planned = baselines.runs(params)
    assert planned[("casme2", "5class", "tsfmicro")] == PlannedRun("casme2", "5class", "ts_late", (0,))
    for network in ("ststnet", "off_apexnet", "htnet"):
        run = planned[("casme2", "5class", network)]
        options = dict(run.options)
        assert options["arch"] == network and options["recipe"] == "authors_code" and "epochs" not in options
        config = params._planned_config(run)
        assert config.arch == network and config.rotary is None  # the parameters' rotary is TSFmicro's
    # TSFmicro's seed 0 is the main results' unit: the chapter adds only the three networks' units
    without = Params.load(DEMO, overrides={"baselines": None}).planned_units()
    added = [unit for unit in params.planned_units() if unit not in without]
    assert sorted(dict(unit.options)["arch"] for unit in added) == ["htnet", "off_apexnet", "ststnet"]
    assert params._planned_config(planned[("casme2", "5class", "tsfmicro")]).rotary == "flat"
    assert baselines.runs(Params.load(DEMO, overrides={"baselines": None})) == {}
    # the section's epochs: the baselines' alone (TSFmicro's shared run keeps the parameters')
    shorter = baselines.runs(Params.load(DEMO, overrides={"baselines": {"epochs": 3}}))
    assert dict(shorter[("casme2", "5class", "htnet")].options)["epochs"] == 3
    assert shorter[("casme2", "5class", "tsfmicro")].options == ()


def test_published_numbers_are_sourced_and_carry_their_selection_and_caveats():
    table = reported.baselines_reported()
    assert set(table["network"]) <= set(MODELS) and table["value"].between(0, 100).all()
    assert (table["source"].str.len() > 0).all()
    assert not table.duplicated(["method", "part", "metric", "selection"]).any()
    published = baselines.published_table(["ststnet", "off_apexnet", "htnet"]).set_index("published as")
    paper = published.loc["STSTNet (paper)"]
    assert paper["composite UF1 %"] == "73.53" and paper["composite UAR %"] == "76.05"
    assert "macro precision" in paper["note"] and paper["selects on test"] is False
    assert published.loc["STSTNet (recomputed from the authors' MATLAB log)", "composite UAR %"] == "71.86"
    assert published.loc["OFF-ApexNet (as reproduced in the STSTNet paper)", "selects on test"] == "not stated"
    htnet = published.loc["HTNet (paper; third-party summary)"]
    assert htnet["selects on test"] is True and "unverified" in htnet["note"]
    # MEB's re-runs of the same networks, both ways, from the field's file
    meb = published.loc["STSTNet (MEB toolkit)"]
    assert sorted(meb["composite UF1 %"]) == ["71.27", "77.40"]
    assert list(baselines.published_table(["htnet"])["network"].unique()) == ["HTNet"]


@pytest.fixture
def tiny_params(tmp_path):
    """Two synthetic CASME II subjects of 4 clips, 1 epoch; the chapter with STSTNet only."""
    return write_synthetic_params(tmp_path, "tiny.yaml", rotary="flat",
                                  baselines={"tasks": ["casme2/5class"], "networks": ["ststnet"], "epochs": 2})


def test_the_page_trains_scores_pairs_and_shows_the_flow(tiny_params, tmp_path, one_torch_thread):
    assert main(["run", str(tiny_params), "--no-progress"]) == 0
    units = sorted(path.name for path in (tmp_path / "runs" / "units").iterdir())
    assert len(units) == 2 and any("ststnet" in name for name in units)
    assert len(list((tmp_path / "prepared").glob("casme2_*_flow_*.npz"))) == 1  # beside the face crops

    study = Study.load(tiny_params)
    page = study.chapter("baselines")
    assert set(page.runs) == {("casme2", "5class", "tsfmicro"), ("casme2", "5class", "ststnet")}
    table = page.table
    assert list(table["method"].unique()) == ["TSFmicro (T-S late)", "STSTNet"]
    assert set(table["protocol"]) == {"fixed", "oracle"}
    stst = table[table["method"] == "STSTNet"].iloc[0]
    assert stst["input"] == "flow, 28 px" and stst["parameters"] == 1683 + 2 * 401  # 5 classes: FC 400 -> 5
    paired = page.paired
    assert list(paired["method"]) == ["ststnet"] and paired["protocol"].iloc[0] == "fixed"
    assert page.summary().startswith("On casme2 5class (fixed protocol, UF1, TSFmicro (T-S late) minus each of the "
                                     "networks, paired bootstrap over subjects and seeds): ")
    assert "STSTNet" in page.summary() and "ststnet" not in page.summary()
    assert "SYNTHETIC" in page.caveat()
    recovered = page.recovered()  # which methods' UF1 interval lies above chance, in words
    assert recovered.startswith("On casme2 5class the class is planted in the onset-to-apex movement") and \
        "chance is 20 % UF1" in recovered and "STSTNet (" in recovered
    onset, apex, flow, titles = page.flow_examples()
    assert flow.shape[1:] == (3, 28, 28) and len(onset) == len(apex) == len(flow) == len(titles) >= 2
    assert np.all((flow >= 0) & (flow <= 1))
    assert sorted(path.name for path in (tmp_path / "runs" / "units").iterdir()) == units  # nothing retrained
