# gr-medjscc: `make demo` runs the main job, `make test` the whole suite. Both install what is missing.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export GRC_BLOCKS_PATH := $(CURDIR)/gr-medjscc/grc
export PYTHONUNBUFFERED := 1
# 2 cores: keep torch and BLAS from oversubscribing them.
export OMP_NUM_THREADS ?= 2

# bench/phy_common.py is a helper module shared by the PHY benchmarks, not a benchmark.
BENCHES := $(filter-out bench/phy_common.py,$(wildcard bench/*.py))

.PHONY: setup demo test test-fast data train bench grc clean help

help:
	@echo "make demo   - DRR test images -> ROI -> Med-JSCC -> OFDM loopback at several SNRs -> out/demo/"
	@echo "make test   - run the whole test suite"
	@echo "make data   - generate the simulated chest radiograph (DRR) data set in data/drr"
	@echo "make bench  - run the benchmarks in bench/ (JSON lines)"
	@echo "make grc    - compile every flowgraph in flowgraphs/ with grcc"

setup:
	@bash scripts/setup.sh

data: setup
	$(PY) -m gnuradio.medjscc data drr --out data/drr --count 600 --size 256 --seed 0

demo: setup
	$(PY) -m gnuradio.medjscc demo --out out/demo

test: setup
	$(PY) -m pytest -q -ra

test-fast: setup
	$(PY) -m pytest -q -ra -m "not slow"

bench: setup
	@for b in $(BENCHES); do echo "== $$b"; $(PY) $$b --json || exit 1; done

grc: setup
	@mkdir -p out/grc && for f in flowgraphs/*.grc; do grcc -o out/grc "$$f" || exit 1; done

clean:
	rm -rf out build
