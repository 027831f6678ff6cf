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

.PHONY: setup demo test test-fast data train bench grc grc-check screenshots notebooks clean help

help:
	@echo "make demo   - DRR test images -> ROI -> Med-JSCC -> OFDM loopback at several SNRs -> out/demo/"
	@echo "make test   - run the whole test suite"
	@echo "make data   - generate the simulated chest radiograph (DRR) data set in data/drr"
	@echo "make bench  - run the benchmarks in bench/ (JSON lines)"
	@echo "make grc    - open GNU Radio Companion with our blocks on flowgraphs/loopback_sim.grc (FLOWGRAPH=...); Run (F6) works"
	@echo "make grc-check - compile every flowgraph in flowgraphs/ with grcc (headless)"
	@echo "make screenshots - docs/screenshots/: GRC with loopback_sim.grc and the running GUI (Xvfb)"
	@echo "make notebooks - execute notebooks/*.ipynb and save them with outputs and figures"

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

# GRC runs flowgraphs with the Python it runs under: start it with the .venv interpreter.
FLOWGRAPH ?= flowgraphs/loopback_sim.grc
grc: setup
	$(PY) -m gnuradio.medjscc grc $(FLOWGRAPH)

grc-check: setup
	@mkdir -p out/grc && for f in flowgraphs/*.grc; do $(PY) $$(command -v grcc) -o out/grc "$$f" || exit 1; done
	@# grcc drops blocks it cannot find and still exits 0: every script must use our blocks
	@missing=$$(grep -L "from gnuradio import medjscc" out/grc/*.py); \
	  if [ -n "$$missing" ]; then echo "grc-check: no gr-medjscc blocks in: $$missing (GRC_BLOCKS_PATH?)"; exit 1; fi

# GRC with loopback_sim.grc open, its canvas, and the running QT GUI -> docs/screenshots/*.png
screenshots: setup
	xvfb-run -a -s "-screen 0 1600x1000x24" $(PY) scripts/screenshots.py --out docs/screenshots

# run the notebooks (shipped weights, DRR test split) and save them with their outputs
notebooks: setup
	$(PY) scripts/execute_notebooks.py

clean:
	rm -rf out build
