# Every target creates .venv and installs into it when needed; re-running is cheap (a stamp file).
PYTHON  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
PROFILE ?= quick
# `make tensorboard HOST=0.0.0.0` exposes the server on the network; the default stays on loopback.
HOST    ?= 127.0.0.1
PORT    ?= 6006
# pytest-xdist workers; each owns its share of the cores (tests/conftest.py). TEST_WORKERS=0: one process.
TEST_WORKERS ?= auto
PYTEST  := $(PY) -m pytest -n $(TEST_WORKERS)

.PHONY: install test test-all reproduce tensorboard bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PYTEST)

# The slow tests too (kept out of CI for time).
test-all: $(STAMP)
	$(PYTEST) -m ''

reproduce: $(STAMP)
	$(PY) scripts/reproduce.py --profile $(PROFILE)

tensorboard: $(STAMP)
	$(VENV)/bin/tensorboard --logdir outputs --host $(HOST) --port $(PORT)

# Template vs plain PyTorch, observatory overhead, start-up, sweep throughput (scripts/bench/, docs/benchmarks.md).
bench: $(STAMP)
	$(PY) scripts/bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
