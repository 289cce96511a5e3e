# Everything installs itself into a local virtualenv (.venv) on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch/torchvision are pinned in pyproject.toml; uv (or pip) takes them from PyPI (CUDA build on Linux).
PIP_FLAGS ?= --disable-pip-version-check
INSTALLER ?= uv
UV_VERSION := 0.13.10
# the opencv-contrib requirement pinned in pyproject.toml (a shell word, read when the recipe runs)
OPENCV_CONTRIB = "$$($(BIN)/python -c 'import tomllib; print(next(d for d in tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"] if d.startswith("opencv-contrib")))')"

.PHONY: install test clean book reproduce browser _book

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
# uv downloads and unpacks in parallel where pip does one wheel after another (the CUDA torch
# virtualenv is about 7 GB): measured 7 December 2026 on 2 cores, see README "Measured figures".
# It is given pip's package sources (index URLs, find-links, constraints: tools/pip_to_uv.py), so
# both install the same wheels. INSTALLER=pip installs with pip alone, as does a uv that cannot be
# installed or fails. Neither compiles bytecode: compileall does, on every core (pip compiling on one
# core took 45 s of its 97 s user time, measured 7 December 2026). A file that does not compile
# (torch ships Python 3.12 test syntax) is skipped, as pip skips it.
# grad-cam requires the plain opencv-python-headless, which writes the same cv2 folder without
# cv2.optflow (TV-L1, tsfmicro/data/flow.py): the contrib build pinned in pyproject.toml goes last.
	@contrib=$(OPENCV_CONTRIB); \
	if [ "$(INSTALLER)" = uv ] && $(BIN)/python -m pip install $(PIP_FLAGS) -q "uv==$(UV_VERSION)" && \
	   sources=$$($(BIN)/python tools/pip_to_uv.py $(BIN)/python) && \
	   echo "install: uv $(UV_VERSION) $$sources" && \
	   eval "$(BIN)/uv pip install --python $(BIN)/python $$sources -e '.[test]'" && \
	   eval "$(BIN)/uv pip install --python $(BIN)/python $$sources --reinstall --no-deps $$contrib"; then :; \
	else \
	  echo "install: pip (INSTALLER=$(INSTALLER))" && \
	  $(BIN)/python -m pip install $(PIP_FLAGS) --no-compile -e '.[test]' && \
	  $(BIN)/python -m pip install $(PIP_FLAGS) --force-reinstall --no-deps --no-compile "$$contrib"; \
	fi
	$(BIN)/python -c 'import compileall, sysconfig; compileall.compile_dir(sysconfig.get_path("purelib"), quiet=2, workers=0)'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (tsfmicro)" >/dev/null
	@touch $(STAMP)

test: install browser
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build book/_build .pytest_cache *.egg-info
	rm -rf _build book/notebooks artifacts .cache/tsfmicro
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# ---------------------------------------------------------------------------------------
# The companion book. `make book`: first `tsfmicro run params/demo.yaml` trains every run the
# book needs (synthetic data, tiny model, CPU; fold by fold, one progress bar; finished folds
# and runs are kept, so an interrupted build continues where it stopped), then every notebook
# in NOTEBOOKS runs through papermill into book/notebooks/ (they only read the finished runs),
# then `jupyter-book build book/` renders them (warnings are errors). `make reproduce
# PARAMS=params/paper.yaml` does the same with other parameters.
#   OVERRIDES='{datasets: {casme2: [5class]}, seeds: [0], imbalance: null}'  changes the parameters for both
#       steps (the notebooks' `overrides`; lists and datasets: replace, null removes a key).
#   Dataset folders: TSFMICRO_<DATASET>_ROOT (read by both steps), or
#       OVERRIDES='{roots: {casme2: /data/CASME2}}'.
#   EXECUTOR=ray trains the folds as Ray tasks; RUN_ARGS passes more to `tsfmicro run`
#       (RUN_ARGS="--address auto" joins a cluster, "--gpus-per-fold 0.5" packs two per GPU);
#       PAPERMILL_ARGS passes more to papermill.
# `make book` trains the demo on Ray with one worker per CPU core (DEMO_EXECUTOR=local: one fold
# after another in-process); same results either way (README, "Measured figures").
# The notebooks run NOTEBOOK_JOBS at a time (default 2: most of a notebook's time is starting
# its kernel and importing, one core each). A failing notebook stops the target: the notebooks
# already running finish, no later one starts, papermill has written the failed one, with the
# error, to book/notebooks/<name>.ipynb, and no book is built.
PARAMS ?= params/demo.yaml
OVERRIDES ?=
PAPERMILL_ARGS ?=
EXECUTOR ?= local
DEMO_EXECUTOR ?= ray
RUN_ARGS ?=
NOTEBOOK_JOBS ?= 2
# The notebooks, in book order, from the chapter registry (tsfmicro/chapters/); read when _book runs,
# after `install` has made the virtualenv.
NOTEBOOKS = $(shell $(BIN)/python -m tsfmicro.chapters notebooks)
EXECUTED := book/notebooks

book: install
	@$(MAKE) --no-print-directory _book PARAMS=params/demo.yaml EXECUTOR=$(DEMO_EXECUTOR)

reproduce: install
	@$(MAKE) --no-print-directory _book PARAMS=$(PARAMS)

_book: SHELL := /bin/bash
_book:
	@test -f "$(PARAMS)" || { echo "make: parameters file $(PARAMS) not found" >&2; exit 2; }
	@test -n "$(strip $(NOTEBOOKS))" || { echo "make: no notebooks: $(BIN)/python -m tsfmicro.chapters notebooks failed" >&2; exit 2; }
	@mkdir -p $(EXECUTED)
	@$(BIN)/tsfmicro run "$(PARAMS)" $(if $(OVERRIDES),--overrides "$(OVERRIDES)") --executor $(EXECUTOR) $(RUN_ARGS) || { \
	  rm -rf _build/html; \
	  echo "make: tsfmicro run $(PARAMS) did not finish; finished folds are kept (run make again to continue)." >&2; \
	  echo "make: the notebooks were not run and the book was not built." >&2; exit 1; }
	@$(BIN)/python book/figures/architecture.py >/dev/null
	@rm -f $(EXECUTED)/.failed-*; \
	run_notebook() { \
	  name=$$1; start=$$(date +%s); \
	  echo "papermill: notebooks/$$name.ipynb -> $(EXECUTED)/$$name.ipynb  ($(PARAMS))"; \
	  if ! $(BIN)/papermill notebooks/$$name.ipynb $(EXECUTED)/$$name.ipynb \
	      -p params_file "$(PARAMS)" $(if $(OVERRIDES),-y "overrides: $(OVERRIDES)") $(PAPERMILL_ARGS) \
	      -k python3 --cwd . --no-progress-bar \
	      --log-level WARNING; then \
	    touch $(EXECUTED)/.failed-$$name; \
	    { echo ""; \
	      echo "make: notebook notebooks/$$name.ipynb failed with $(PARAMS)."; \
	      echo "make: papermill wrote the failed notebook, with the error, to $(EXECUTED)/$$name.ipynb"; } >&2; \
	    return 1; \
	  fi; \
	  echo "  notebooks/$$name.ipynb done in $$(( $$(date +%s) - start )) s"; \
	}; \
	for name in $(NOTEBOOKS); do \
	  while [ "$$(jobs -rp | wc -l)" -ge $(NOTEBOOK_JOBS) ]; do sleep 0.2; done; \
	  if ls $(EXECUTED)/.failed-* >/dev/null 2>&1; then break; fi; \
	  run_notebook $$name & \
	done; \
	wait; \
	if ls $(EXECUTED)/.failed-* >/dev/null 2>&1; then \
	  rm -f $(EXECUTED)/.failed-*; rm -rf _build/html; \
	  echo "make: the book was not built." >&2; exit 1; \
	fi
	$(BIN)/jupyter-book build book/ -W --keep-going
	@echo "book: open _build/html/index.html"

# Headless Chromium + chromedriver for the browser test (Debian packages), when missing.
SUDO := $(shell test "$$(id -u)" -eq 0 || echo sudo)
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
	  echo "browser: $$(chromium --version 2>/dev/null | head -1), $$(command -v chromedriver)"; \
	else \
	  echo "browser: installing chromium and chromium-driver (apt-get)"; \
	  $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver; \
	fi
