# The two commands: `make demo` (the main job) and `make test`. Each sets itself up.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
HDL_TOOLS := iverilog verilator yosys tcl

.PHONY: setup setup-sim demo test sim bench clean

setup:
	@VENV=$(VENV) EXTRAS=train,plot,dev bash scripts/setup.sh

setup-sim:
	@VENV=$(VENV) EXTRAS=train,plot,images,dev,sim,pynq-host,peers,explore APT_PACKAGES="$(HDL_TOOLS)" bash scripts/setup.sh

demo: setup
	$(VENV)/bin/pynq-neuro demo

test: setup-sim
	$(PY) -m pytest -q $(PYTEST_ARGS) tests

sim: setup-sim
	$(MAKE) -C sim PY=$(abspath $(PY))

bench: setup
	$(PY) benchmarks/accuracy.py
	$(PY) benchmarks/compression.py

clean:
	rm -rf build .pytest_cache sim/sim_build

# The PYNQ-Z2 overlay (Vivado 2022.1 in batch mode): compiles tdnn-w2a2-sparse-in4, packages the IP,
# builds the block design and the bitstream, installs neuro.bit/neuro.hwh into
# pynq_neuro/overlays/neuro/. Options (MODEL, LUT_BUDGET, JOBS, BOARD_REPO, ...): overlays/Makefile.
.PHONY: overlay
overlay:
	@$(MAKE) --no-print-directory -C overlays check-vivado
	@$(MAKE) --no-print-directory setup
	$(MAKE) -C overlays PYNQ_NEURO=$(abspath $(VENV))/bin/pynq-neuro PYTHON=$(abspath $(PY))
