# gmgan: the two commands of the README are `make book` and `make test`.
#   make book   set up .venv (torch 2.14.1), install gmgan[dev], fetch the widget JavaScript from npm,
#               and build the book from the executed notebooks into _build/html
#   make test   run the unit tests and execute every notebook at its CPU default (pytest --nbval)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

# The data cache. A read-only copy of the image sets may lie beside the checkout (the project's own
# machines); elsewhere gmgan downloads into ~/.cache/gmgan on first use.
ifneq ($(wildcard ../shared/data/MANIFEST.tsv),)
export GMGAN_DATA ?= $(abspath ../shared/data)
endif
export GMGAN_DERIVED ?= $(CURDIR)/.cache/derived

NBVAL_FLAGS := --nbval --nbval-current-env --nbval-sanitize-with notebooks/nbval_sanitize.cfg \
	--nbval-cell-timeout=900

.PHONY: install book test bench bench-gpu clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e ".[dev]"

# book/build.sh fetches the widget JavaScript from npm (book/package-lock.json), checks the notebooks'
# install cells, and runs `jupyter-book build . -W -n --keep-going` (notebooks are not re-executed).
book: install
	PYTHON=$(BIN)/python JUPYTER_BOOK=$(BIN)/jupyter-book bash book/build.sh

test: install
	$(BIN)/python -m pytest $(NBVAL_FLAGS)

bench: install
	$(BIN)/python -m benchmarks.run

bench-gpu: install
	$(BIN)/python -m benchmarks.gpu_profile

clean:
	rm -rf _build .pytest_cache
