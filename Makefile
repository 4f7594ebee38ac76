# gmgan: the two commands of the README are `make book` and `make test`.
#   make book   set up .venv-book (Jupyter Book only: no torch, no gmgan), fetch MathJax from npm,
#               and build the book from the executed notebooks into _build/html
#   make test   set up .venv (torch 2.14.1, gmgan[dev]); run the unit tests, execute every notebook
#               at its CPU default (pytest --nbval) and check the built book in headless Chromium
# Further targets: test-other-cpu (the notebooks again, on another kernel path: see below),
# bench, bench-gpu, clean.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
BOOK_VENV ?= .venv-book

# The data cache. A read-only copy of the image sets may lie beside the checkout (the project's own
# machines); elsewhere gmgan downloads into ~/.cache/gmgan on first use.
ifneq ($(wildcard ../shared/data/MANIFEST.tsv),)
export GMGAN_DATA ?= $(abspath ../shared/data)
endif
export GMGAN_DERIVED ?= $(CURDIR)/.cache/derived

NBVAL_FLAGS := --nbval --nbval-current-env --nbval-sanitize-with notebooks/nbval_sanitize.cfg \
	--nbval-cell-timeout=900

# Another CPU, as far as one machine can play one: ATen's kernels without AVX2/AVX-512
# (ATEN_CPU_CAPABILITY=default), oneDNN limited to AVX2, and one thread instead of one per core.
# The committed outputs must survive this (issue 16): numbers that depend on the floating-point
# path are rounded or checked against stated bands inside the notebooks.
OTHER_CPU := ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=AVX2 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

.PHONY: install book test test-other-cpu bench bench-gpu clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e ".[dev]"

$(BOOK_VENV)/bin/jupyter-book: book/requirements.txt
	$(PYTHON) -m venv $(BOOK_VENV)
	$(BOOK_VENV)/bin/pip install -q --upgrade pip
	$(BOOK_VENV)/bin/pip install -q -r book/requirements.txt
	touch $@

# book/build.sh fetches MathJax from npm (book/package-lock.json), warns about stale install cells,
# and runs `jupyter-book build . -W -n --keep-going` (notebooks are not re-executed).
book: $(BOOK_VENV)/bin/jupyter-book
	PYTHON=$(BOOK_VENV)/bin/python JUPYTER_BOOK=$(BOOK_VENV)/bin/jupyter-book bash book/build.sh

test: install
	$(BIN)/python -m pytest $(NBVAL_FLAGS)

test-other-cpu: install
	$(OTHER_CPU) $(BIN)/python -m pytest $(NBVAL_FLAGS) notebooks/

bench: install
	$(BIN)/python -m benchmarks.run

bench-gpu: install
	$(BIN)/python -m benchmarks.gpu_profile

clean:
	rm -rf _build .pytest_cache
