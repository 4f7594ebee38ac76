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

.PHONY: install book widgets test bench bench-gpu clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e ".[dev]"

widgets:
	cd book && npm ci --no-audit --no-fund --loglevel=error

book: install widgets
	$(BIN)/jupyter-book build . -W -n --keep-going

test: install widgets
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf _build .pytest_cache
