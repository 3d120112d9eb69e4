# disbench — every target does its own set-up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The CPU build of torch; override (e.g. TORCH_SPEC="torch>=2.1") for a CUDA machine.
TORCH_SPEC ?= torch==2.13.0
STAMP  := $(VENV)/.disbench-installed
export DISBENCH_REALDATA ?= $(abspath ../shared/realdata)

.PHONY: install test bench bench-paper regress perf lint clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev,ray]"
	touch $(STAMP)

test: install
	$(PY) -m pytest -q -p no:cacheprovider tests
	$(VENV)/bin/disbench regress --suite ci

bench: install
	$(VENV)/bin/disbench sweep bench/sweeps/suites/default.yaml --out runs/default
	$(VENV)/bin/disbench leaderboard runs/default --spec bench/sweeps/suites/default.yaml --format csv,latex,markdown --out results --plots
	$(VENV)/bin/disbench report runs/default --spec bench/sweeps/suites/default.yaml --out results/site

bench-paper: install
	$(VENV)/bin/disbench sweep bench/sweeps/suites/paper.yaml --out runs/paper

regress: install
	$(VENV)/bin/disbench regress --suite ci

perf: install
	$(PY) -m disbench.perf

lint: install
	$(VENV)/bin/ruff check --line-length 100 bench datasets metrics baselines tests

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
