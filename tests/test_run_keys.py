"""Every run key of params/demo.yaml and params/paper.yaml is pinned (tests/fixtures/run_keys.json).

A run's key decides whether a finished run is reused; a refactor that changes one silently
retrains (or, worse, mixes) results. The keys are computed from each planned run's RunConfig
without touching data: the prepared data's cache key, which hashes the dataset's files, is
replaced by a name per dataset, and the device type is the CPU's. A deliberate change of what a
key hashes (a new ENGINE_VERSION) rewrites the fixture: ``python tests/test_run_keys.py --write``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from tsfmicro.engine.runs import Request, request_identity, run_recipe
from tsfmicro.engine.transfer import pretraining_config
from tsfmicro.params import Params

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "run_keys.json"
PARAMS_FILES = ("params/demo.yaml", "params/paper.yaml")


def request_of(config) -> Request:
    """The request of ``config`` without its data (a fine-tuning request: with its pre-training
    request's identity, as tsfmicro.engine.runs.resolve_request hashes it)."""
    recipe = run_recipe(config)
    pretraining = request_of(pretraining_config(config)).identity if config.pretrained is not None else None
    identity = request_identity(config, recipe, "cpu", f"<data of {config.dataset}>",
                                f"<data of {config.test_dataset}>" if config.test_dataset else None,
                                pretraining=pretraining)
    return Request(config, torch.device("cpu"), 0, None, recipe, identity)


def planned_keys(params: Params) -> dict[str, list[str]]:
    """``<request stem>_<request key>`` -> its units' keys, for every planned run."""
    keys = {}
    for run in params.planned_runs():
        config = params._planned_config(run, root="")
        request = request_of(config)
        keys[f"{request.stem}_{request.key}"] = [request.unit_key(seed) for seed in config.seeds]
    return keys


@pytest.mark.parametrize("params_file", PARAMS_FILES)
def test_run_keys_are_unchanged(params_file):
    pinned = json.loads(FIXTURE.read_text())[params_file]
    assert planned_keys(Params.load(ROOT / params_file)) == pinned


def test_a_changed_setting_changes_every_key():
    """The comparison above can fail: the same planned runs with another epoch count have other keys."""
    pinned = json.loads(FIXTURE.read_text())["params/demo.yaml"]
    changed = planned_keys(Params.load(ROOT / "params/demo.yaml", overrides={"epochs": 7}))
    assert len(changed) == len(pinned) and set(changed).isdisjoint(pinned)


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    FIXTURE.write_text(json.dumps({name: planned_keys(Params.load(ROOT / name)) for name in PARAMS_FILES}, indent=1, sort_keys=True) + "\n")
    print(f"wrote {FIXTURE}")
