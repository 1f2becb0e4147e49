# Two entry points for newcomers: `make all` (set up + run the active preset's whole DAG) and
# `make test` (set up + run the test suite). Both create .venv on first use, offline-safe.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2
export PATH := $(CURDIR)/$(BIN):$(PATH)
export HF_HUB_OFFLINE := 1
export DVC_NO_ANALYTICS := 1
export MPLBACKEND := Agg

.PHONY: all test lint setup system-deps clean-results paper-smoke

all: $(VENV)/.installed
	snakemake --cores $(CORES) all

# The paper preset's own rules, steps and models at real shapes, offline, on miniature inputs
# (random weights, a PromptKD-format teacher checkpoint, four DTD classes) written into smoke/.
paper-smoke: $(VENV)/.installed
	python -m tests.paper_smoke smoke
	AME_TEST_SMALL_SPLITS=1 snakemake --cores $(CORES) all --config preset=paper-smoke

test: $(VENV)/.installed
	pytest -q

# The workflow's own checks: formatting and Snakemake's linter (CI runs both).
lint: $(VENV)/.installed
	snakefmt --check Snakefile workflow/rules
	python .ci/check_lint.py

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[dev]'
	touch $@

# Debian packages some tests need (each skipped where missing, except in CI); needs root: SLURM and
# munge (the workflow on a single-node SLURM cluster), chromium (opening the HTML report), pdflatex
# with booktabs (compiling the LaTeX tables).
system-deps:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y slurm-wlm munge chromium \
		texlive-latex-base texlive-latex-recommended

clean-results:
	rm -rf results .snakemake
