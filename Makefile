# fcn-course: every command creates .venv and installs the pinned dependencies when needed.
#   make book           build the book to book/_build/html/index.html
#   make test           run the whole test suite (package, exercises with nbval, book build, lint)
#   make check EX=03    check one exercise notebook and report in plain words

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.fcn-course-installed
# matplotlib's font cache belongs to this environment's matplotlib, not to whichever other
# installation last wrote ~/.cache/matplotlib (a stale one makes figures miss fonts).
export MPLCONFIGDIR := $(abspath $(VENV))/matplotlib

.DEFAULT_GOAL := help
.PHONY: help setup book test check generate lint lock clean

help:
	@echo "make book          build the book (book/_build/html/index.html)"
	@echo "make test          run the whole test suite"
	@echo "make check EX=NN   check exercise NN (make check lists them)"
	@echo "make generate      regenerate student notebooks from exercises/solutions/"
	@echo "make lint          ruff on the package, tests and notebooks"

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

setup: $(STAMP)

# The chapters load trained models from a cache; prepare trains the missing ones first
# (minutes on a CPU the first time, nothing afterwards).
book: $(STAMP)
	$(BIN)/python -c "import matplotlib.font_manager"
	$(BIN)/fcn-course prepare
	$(BIN)/jupyter-book build -W --keep-going book
	@echo "Book built: open book/_build/html/index.html"

test: $(STAMP)
	$(BIN)/python -m pytest

check: $(STAMP)
	$(BIN)/fcn-course check $(EX)

generate: $(STAMP)
	$(BIN)/fcn-course generate

lint: $(STAMP)
	$(BIN)/ruff check .

# Re-resolve every dependency from pyproject.toml (torch and torchvision pinned) into a fresh
# environment and write its exact versions to requirements.lock.
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1 -e ".[dev]"
	{ echo "# Exact versions for every reader, test run and CI job. Regenerate with: make lock"; \
	  .venv-lock/bin/python -m pip freeze --all --exclude-editable \
	  | grep -v -E "^(pip|fcn-course|fcn_course)==" | sort -f; } > requirements.lock
	rm -rf .venv-lock

clean:
	rm -rf book/_build .pytest_cache .ruff_cache
