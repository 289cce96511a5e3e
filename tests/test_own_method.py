"""The book page "Add your own method" (book/own_method.md): its example network
(examples/own_method/my_network.py, included in the page by ``literalinclude``) is registered as
the page says, by the parameters key ``plugins:``, and trained and scored by the baselines chapter
beside TSFmicro under both protocols; a wrong ``plugins:`` entry is one line naming it."""
import re
from pathlib import Path

import pytest
import yaml

from tsfmicro.cli import main
from tsfmicro.model import registry
from tsfmicro.params import Params
from tsfmicro.study import Study

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "params" / "demo.yaml"
PAGE = ROOT / "book" / "own_method.md"
EXAMPLE = "examples/own_method/my_network.py"  # as the page writes it: relative to the project folder
NETWORK = "my_flownet"


@pytest.fixture
def clean_registry():
    """The example's network is registered in this process only for the test (other tests list MODELS)."""
    models, files = dict(registry.MODELS), dict(registry._NETWORK_FILES)
    yield
    registry.MODELS.clear()
    registry.MODELS.update(models)
    registry._NETWORK_FILES.clear()
    registry._NETWORK_FILES.update(files)


def test_the_page_includes_the_tested_file_and_shows_its_parameters_entry():
    page = PAGE.read_text(encoding="utf-8")
    included = re.findall(r"```\{literalinclude\} (\S+)", page)
    assert included, "the page includes no file"
    for name in included:
        assert (PAGE.parent / name).resolve() == (ROOT / EXAMPLE).resolve()
    # the parameters entry and commands the page shows name the same file and network
    assert f"plugins: [{EXAMPLE}]" in page and NETWORK in page
    assert "tsfmicro run params/demo.yaml" in page and "notebooks/11_baselines.ipynb" in page
    assert "file: own_method" in (ROOT / "_toc.yml").read_text(encoding="utf-8")


def test_a_wrong_plugins_entry_is_one_line_naming_it(clean_registry, tmp_path, capsys):
    with pytest.raises(ValueError, match=r"plugins: examples/own_method/missing\.py: no such file"):
        Params.load(DEMO, overrides={"plugins": ["examples/own_method/missing.py"]})
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    with pytest.raises(ValueError, match=r"plugins: .*empty\.py: ValueError: .* registers no network"):
        Params.load(DEMO, overrides={"plugins": [str(empty)]})
    with pytest.raises(ValueError, match=r"plugins: 'examples' must be a list of Python files"):
        Params.load(DEMO, overrides={"plugins": "examples"})
    # Ray's workers do not import the file: refused before anything runs, exit 2
    assert main(["run", str(DEMO), "--overrides", f"{{plugins: [{EXAMPLE}]}}", "--executor", "ray"]) == 2
    assert "register networks in this process only" in capsys.readouterr().err
    registry.MODELS.pop(NETWORK)
    registry._NETWORK_FILES.clear()
    # without the plugin the network is unknown to the chapter, as any misspelt name
    with pytest.raises(ValueError, match=r"baselines.networks: unknown 'my_flownet'"):
        Params.load(DEMO, overrides={"baselines": {"networks": [NETWORK]}})


def test_the_example_network_runs_through_the_baselines_chapter(clean_registry, tmp_path, one_torch_thread):
    # the page's parameters entry, on a demo shrunk to 3 subjects, one task, 2 epochs, the
    # baselines chapter alone (besides the required ablation and Grad-CAM sections, at their smallest)
    overrides = {
        "plugins": [EXAMPLE], "baselines": {"networks": [NETWORK], "tasks": ["casme2/5class"], "seeds": [0]},
        "datasets": {"casme2": ["5class"]}, "seeds": [0], "epochs": 2,
        "ablation": {"fusions": ["ts_late"]}, "gradcam": {"examples": 0},
        **{name: None for name in ("composite", "cross_dataset", "temporal_branch", "annotation", "imbalance",
                                   "spatial_branch", "transfer", "long_videos")},
        "synthetic": {"subjects": 3, "clips_per_subject": 5},
        "paths": {"synthetic": str(tmp_path / "synthetic"), "prepared": str(tmp_path / "prepared"),
                  "runs": str(tmp_path / "runs")},
    }
    assert main(["run", str(DEMO), "--overrides", yaml.safe_dump(overrides, default_flow_style=True),
                 "--no-progress"]) == 0
    units = sorted(path.name for path in (tmp_path / "runs" / "units").iterdir())
    assert len(units) == 2 and sum(NETWORK in name for name in units) == 1

    page = Study.load(DEMO, overrides=overrides).chapter("baselines")  # as the notebook loads it
    table = page.table
    assert list(table["method"].unique()) == ["TSFmicro (T-S late)", NETWORK]
    ours = table[table["method"] == NETWORK]
    assert set(ours["protocol"]) == {"fixed", "oracle"}
    assert set(table[table["method"] == "TSFmicro (T-S late)"]["protocol"]) == {"fixed", "oracle"}
    # its size: the tiny preset (width 8), 5 classes: convs 224 + 1,168, BatchNorms 16 + 32, FC 16 * 5 + 5
    assert ours["input"].iloc[0] == "flow, 28 px" and ours["parameters"].iloc[0] == 224 + 16 + 1168 + 32 + 85
    assert list(page.paired["method"]) == [NETWORK]
