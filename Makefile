# The two commands: `make demo` (the main job) and `make test`. Each sets itself up.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup demo test bench clean

setup:
	@VENV=$(VENV) bash scripts/setup.sh

demo: setup
	$(VENV)/bin/pynq-neuro demo

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS) tests

bench: setup
	$(PY) benchmarks/accuracy.py

clean:
	rm -rf build .pytest_cache
