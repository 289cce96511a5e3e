"""Shared test fixtures. Synthetic datasets are written once per test session (small sizes)."""
from __future__ import annotations

import pytest

from helpers import torch_threads
from tsfmicro.data import write_synthetic


def _synthetic(tmp_path_factory, layout: str, folder: str, subjects: int, clips: int, seed: int):
    return write_synthetic(layout, tmp_path_factory.mktemp("synthetic") / folder, subjects=subjects,
                           clips_per_subject=clips, seed=seed)


@pytest.fixture(scope="session")
def synthetic_casme2_root(tmp_path_factory):
    """CASME II layout: 4 subjects x 6 clips (includes a fear and a sadness row)."""
    return _synthetic(tmp_path_factory, "casme2", "casme2", subjects=4, clips=6, seed=1)


@pytest.fixture(scope="session")
def synthetic_samm_root(tmp_path_factory):
    """SAMM layout: 3 subjects x 6 clips, grey 960x650 frames."""
    return _synthetic(tmp_path_factory, "samm", "samm", subjects=3, clips=6, seed=2)


@pytest.fixture(scope="session")
def synthetic_casme3_root(tmp_path_factory):
    """CAS(ME)^3 Part A layout: 3 subjects x 8 clips plus four known-bad rows."""
    return _synthetic(tmp_path_factory, "casme3", "casme3", subjects=3, clips=8, seed=3)


@pytest.fixture(scope="session")
def synthetic_smic_root(tmp_path_factory):
    """SMIC-HS layout: 2 subjects x 3 clips of 3 bmp frames."""
    return _synthetic(tmp_path_factory, "smic", "smic", subjects=2, clips=3, seed=4)


@pytest.fixture(scope="session")
def synthetic_megc_root(tmp_path_factory):
    """MEGC2019 composite folder: casme2/, samm/, smic/ and combined_3class_gt.csv."""
    return _synthetic(tmp_path_factory, "megc2019", "megc", subjects=2, clips=3, seed=5)


@pytest.fixture(scope="session")
def synthetic_casme2_small_root(tmp_path_factory):
    """A tiny CASME II root (2 subjects x 3 clips) that tests copy and then damage."""
    return _synthetic(tmp_path_factory, "casme2", "casme2_small", subjects=2, clips=3, seed=6)


# ---------------------------------------------------------------------------------------------
# Engine fixtures (training engine; owned by the engine tests: test_engine_*.py, test_cli.py)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def engine_cache_dir(tmp_path_factory):
    """One face-crop cache for all engine tests, so each synthetic root is cropped once."""
    return tmp_path_factory.mktemp("engine_cache")


@pytest.fixture
def one_torch_thread():
    """Train on one thread: on a shared 2-core machine, two OpenMP threads per process
    oversubscribe the cores and run several times slower."""
    with torch_threads(1):
        yield
