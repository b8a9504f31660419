# Two commands for a newcomer (see README): `make demo` and `make test`.
# Setup is a stamp target, so both install what they need on a fresh machine and nothing twice.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.dmrx-installed

.PHONY: setup demo test lint bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# The CPU build of torch first: an unpinned torch would pull a CUDA build of several GB.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# The main job: LS vs perfect CSI on the reference link, table on stdout, figure in out/.
demo: $(STAMP)
	mkdir -p out
	$(BIN)/dmrx simulate --link ref-4prb --scenario tdl-c-300ns-60kmh --receiver ls,perfect \
		--snr-db 6:14:2 --slots 1000 --seed 1 --json out/main.json --plot out/main.png

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/link_throughput.py
