# imbcl: the README's two commands, `make book` and `make test`, plus a few helpers.
# Every target first creates or refreshes the virtual env in .venv (scripts/venv.sh), which
# reinstalls only when the sha256 of pyproject.toml changed.

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin

# Small ops on two cores crawl under OpenMP's default (spinning) wait policy whenever another
# process is busy; every process that runs imbcl gets the passive policy.
export OMP_WAIT_POLICY := PASSIVE
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: help venv test book robustness lint format strip refs clean

help:
	@echo "make book   build the whole book into _build/html (creates .venv if needed)"
	@echo "make test   lint + unit tests + notebooks under nbval, small profile (creates .venv if needed)"
	@echo "make robustness  every claim under 3 seed sets x 2 code paths + the mask check (long)"
	@echo "make lint   ruff check + ruff format --check"
	@echo "make format ruff format + ruff check --fix"
	@echo "make strip  strip notebook outputs (keeps outputs of '# NBVAL_CHECK_OUTPUT' cells)"
	@echo "make refs   re-run notebooks in the small profile, then strip: refreshes nbval references"
	@echo "make clean  remove _build and caches (keeps .venv)"

venv:
	@bash scripts/venv.sh

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Unit tests and notebooks in one pytest run on 2 workers; --dist loadfile keeps all cells of
# a notebook (one kernel) on one worker. Notebook kernels inherit IMBCL_PROFILE=small and run
# single-threaded so that the two workers share the two cores.
test: lint
	IMBCL_PROFILE=small IMBCL_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadfile \
		tests notebooks \
		--nbval-lax --nbval-current-env \
		--nbval-sanitize-with tests/nbval_sanitize.cfg \
		--nbval-cell-timeout=600

book: venv
	@bash scripts/build_book.sh

# The perturbation suite in the book's profile: fails if an asserted claim changes outcome.
robustness: venv
	mkdir -p _build
	$(BIN)/python -m imbcl robustness --json _build/robustness.json

strip: venv
	$(BIN)/python scripts/strip_notebooks.py notebooks/*.ipynb

refs: venv
	IMBCL_PROFILE=small IMBCL_SCHEDULER=inprocess $(BIN)/python scripts/strip_notebooks.py --execute notebooks/*.ipynb

clean:
	rm -rf _build .pytest_cache .ruff_cache
	find . -path ./.venv -prune -o -name __pycache__ -type d -exec rm -rf {} +
