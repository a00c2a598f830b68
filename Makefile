# Two commands do all the set-up, from a fresh clone:
#   make lab    create .venv, install the lab, run the lab's main job
#   make test   create .venv, install the lab and its test tools, run every test (offline)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Arguments for the lab's main job, e.g. make lab LAB_ARGS="--data synthetic"
# or make lab LAB_ARGS="--data cifar10 --root ~/cifar --no-verify --out runs/mine"
LAB_ARGS ?=
# Arguments for the book of a run, e.g. make book BOOK_ARGS="--out DIR --with-solutions"
BOOK_ARGS ?=
# Where the student notebooks install the lab from outside the repository (Colab, a JupyterHub):
# make student PACKAGE=https://.../labutils-0.1.0-py3-none-any.whl (docs/outside.md)
PACKAGE ?=

.PHONY: lab test test-units test-notebooks test-fast student book wheel install install-dev notebook clean help

help:
	@echo "make lab    - install into .venv and run the lab's main job"
	@echo "make test   - install into .venv (with test tools) and run every test"
	@echo "make test-fast - the quick tests (no kernel, no torchrun; under a minute), for the edit loop"
	@echo "make student - write the student edition into student/ (nbgrader stubs, no outputs)"
	@echo "make book   - the static site of runs/latest (a smoke run first if there is none)"
	@echo "make wheel  - build the lab's wheel into dist/, for notebooks outside the repository"
	@echo "make notebook - open the notebooks in JupyterLab"
	@echo "make clean  - remove .venv and caches (keeps data/ and runs/)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files: reinstall only when pyproject.toml changes.
$(VENV)/.installed-lab: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# The test tools and the teaching tools (nbgrader): the tests build the student edition too.
$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev,teach,book]"
	touch $@ $(VENV)/.installed-lab

install: $(VENV)/.installed-lab
install-dev: $(VENV)/.installed-dev

# The whole notebook series with papermill, profile picked by the machine (gpu if CUDA, else cpu).
lab: install
	$(BIN)/python -m labutils run --profile auto $(LAB_ARGS)

# Every test, offline, in two parts side by side on the cores: the unit and notebook tests
# (pytest-xdist: whole modules, slowest first, each worker training on one thread), and nbval
# over the stored notebooks exactly as instructors and CI services type it, on tiny synthetic
# data in a run folder of its own (build/, ignored), in order (04 compares the runs 03 leaves),
# on one thread. Each part's output is printed whole when it ends.
PARALLEL ?= -n auto --dist loadscope --no-loadscope-reorder
test: install-dev
	@$(MAKE) --no-print-directory --jobs=2 --output-sync=target test-units test-notebooks

test-units: install-dev
	$(BIN)/python -m pytest $(PARALLEL)

test-notebooks: install-dev
	LABUTILS_PROFILE=smoke LABUTILS_PROGRESS=0 LABUTILS_RUN_DIR=$(CURDIR)/build/nbval-runs \
		OMP_NUM_THREADS=1 $(BIN)/python -m pytest --nbval-lax notebooks/

# The student edition: solutions replaced by nbgrader's stubs, outputs and hidden tests removed.
student: install-dev
	$(BIN)/python -m labutils student --out student $(if $(PACKAGE),--package "$(PACKAGE)")

# The wheel a notebook installs outside the repository: publish it, then make student PACKAGE=URL.
wheel: install-dev
	$(BIN)/python -m pip wheel --no-deps --no-build-isolation --wheel-dir dist .

# The book of a run (Sphinx, offline): runs/latest, or a smoke run made for it when there is
# none; BOOK_ARGS="--run DIR" picks another run.
book: install-dev
ifeq ($(findstring --run,$(BOOK_ARGS)),)
	@test -d runs/latest/notebooks || $(BIN)/python -m labutils run --profile smoke --out build/book-run
	$(BIN)/python -m labutils book --run $$(test -d runs/latest/notebooks && echo runs/latest || echo build/book-run) $(BOOK_ARGS)
else
	$(BIN)/python -m labutils book $(BOOK_ARGS)
endif

# The quick loop while editing: every test not marked slow (no kernel, no torchrun; under a minute).
test-fast: install-dev
	$(BIN)/python -m pytest -m "not slow"

notebook: install-dev
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
