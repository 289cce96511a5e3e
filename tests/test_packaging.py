"""The two ways to install (pip from pyproject.toml, conda from environment.yml) must agree."""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _normalise(requirement: str) -> tuple[str, str]:
    """'Jupyter_Book >=1.0.4, <2' -> ('jupyter-book', '<2,>=1.0.4'): name canonical, specifiers sorted."""
    match = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(.*)", requirement)
    assert match, f"cannot parse requirement {requirement!r}"
    name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
    specifiers = ",".join(sorted(part.strip().replace(" ", "") for part in match.group(2).split(",") if part.strip()))
    return name, specifiers


def _pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"]) + list(project["optional-dependencies"]["test"])
    return dict(_normalise(r) for r in requirements)


def _conda_requirements() -> tuple[dict[str, str], list]:
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    dependencies = environment["dependencies"]
    pip_section = next(d["pip"] for d in dependencies if isinstance(d, dict) and "pip" in d)
    conda_packages = [d for d in dependencies if isinstance(d, str)]
    return dict(_normalise(r) for r in pip_section), conda_packages


def test_environment_yml_lists_the_same_packages_and_pins_as_pyproject():
    pip_requirements, conda_packages = _conda_requirements()
    assert pip_requirements == _pyproject_requirements()
    assert "python=3.11" in conda_packages and "pip" in conda_packages


def test_the_pins_that_matter_for_installability():
    requirements = _pyproject_requirements()
    assert requirements["torch"] == "==2.14.1"
    assert requirements["torchvision"] == "==0.29.1"
    assert requirements["facenet-pytorch"] == "==2.5.3"
    assert "<2" in requirements["jupyter-book"].split(",")


def test_installed_versions_match_the_pins():
    import jupyter_book
    import torch
    import torchvision

    assert torch.__version__.split("+")[0] == "2.14.1"
    assert torchvision.__version__.split("+")[0] == "0.29.1"
    assert jupyter_book.__version__.startswith("1.")


def test_console_script_and_module_entry_point_print_help():
    for command in ([sys.executable, "-m", "tsfmicro", "--help"], [str(Path(sys.executable).with_name("tsfmicro")), "--help"]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        for subcommand in ("synth", "preprocess", "train", "evaluate", "report", "plan", "run", "explore"):
            assert subcommand in result.stdout
