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

# The main job: a receiver trained on TDL-A only lives through the drift-default schedule;
# static vs adaptive (hidden-DMRS loss + CRC-passed blocks) vs LS vs perfect CSI, same slots.
demo: $(STAMP)
	mkdir -p out
	$(BIN)/dmrx adapt --checkpoint checkpoints/neural-ref-4prb-tdl-a --schedule drift-default \
		--variants dmrs-crc --seed 1 --json out/main.json --plot out/main.png

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/link_throughput.py
