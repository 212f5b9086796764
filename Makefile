# histo_i2i — set-up, tests and reproduction. `make reproduce` and `make test` work on a fresh clone.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROFILE ?= demo
# two cores by default; nbdev_test runs one notebook at a time
export OMP_NUM_THREADS ?= 2
export MKL_NUM_THREADS ?= 2

.PHONY: readme install sync test test-notebooks test-pytest test-gpu-dry-run reproduce bench docs docs-quarto notebooks notebooks-paper notebooks-library clean

$(STAMP): settings.ini setup.py
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## notebooks and library agree: exporting the notebooks changes nothing
sync: install
	$(VENV)/bin/nbdev_export
	@if [ -n "$$(git status --porcelain -- histo_i2i)" ]; then \
	  git status --short -- histo_i2i; \
	  echo "histo_i2i/ differs from what nbs/ exports: run nbdev_export and commit"; exit 1; fi

test-notebooks: install
	$(VENV)/bin/nbdev_test --n_workers 1 --timing

test-pytest: install
	$(VENV)/bin/pytest -q tests; rc=$$?; [ $$rc -eq 5 ] && { echo "no pytest tests collected"; exit 1; }; exit $$rc

## bench/gpu.py end to end on the CPU at the smallest sizes (bf16 autocast where the CPU has it, channels-last, a DataLoader worker)
test-gpu-dry-run: install
	$(PY) bench/gpu.py --dry-run --out runs/bench/gpu-dry-run

test: sync test-notebooks test-pytest test-gpu-dry-run

## the main job: every narrative notebook on the named profile (default: synthetic demo slides) into runs/$(PROFILE)/
reproduce: install
	$(VENV)/bin/histo-i2i reproduce --profile $(PROFILE)

## README.md from nbs/index.ipynb and its stored outputs (settings.ini readme_nb; nbdev_readme needs Quarto)
readme: install
	$(PY) tools/readme.py

## the documentation site from the notebooks and their stored outputs into _docs/, offline (open _docs/index.html):
## nbdev's processors (show_doc, links, directives), then nbconvert's HTML exporter with the sidebar of nbs/sidebar.yml.
## nbconvert rather than mkdocs + mkdocs-jupyter: it ships with jupyterlab (nothing more to pin or install), renders
## show_doc's Markdown (tables included) and stored PNG figures as Jupyter does, and mkdocs-jupyter renders through it anyway
docs: install
	$(PY) tools/docs.py

## the same processed notebooks rendered by Quarto, as nbdev_docs does but leaving README.md alone; needs `quarto` on PATH
docs-quarto: install
	@command -v quarto >/dev/null || { echo "quarto is not on PATH: install Quarto (quarto.org, or pip install quarto-cli where GitHub is reachable), or use make docs"; exit 1; }
	$(PY) tools/docs.py --proc-only --proc _proc
	cd _proc && quarto render --no-cache
	rm -rf _docs && mv _proc/_docs _docs

## store outputs in the notebooks: the paper notebooks re-run on $(PROFILE) (as make reproduce, into runs/$(PROFILE)/),
## then the library notebooks executed in place as nbdev_test runs them (NBS="nbs/17_metrics.ipynb ..." picks some)
NBS ?= $(sort $(wildcard nbs/[0-9]*.ipynb))
notebooks: notebooks-paper notebooks-library

notebooks-paper: install
	$(PY) tools/notebooks.py paper --profile $(PROFILE)

notebooks-library: install
	$(PY) tools/notebooks.py library $(NBS)

clean:
	rm -rf runs _proc _docs
