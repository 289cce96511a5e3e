# Everything installs itself into a local virtualenv (.venv) on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch/torchvision are pinned in pyproject.toml; pip takes them from PyPI (CUDA build on Linux).
PIP_FLAGS ?= --disable-pip-version-check

.PHONY: install test clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_FLAGS) -e '.[test]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (tsfmicro)" >/dev/null
	@touch $(STAMP)

test: install
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build book/_build .pytest_cache *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
