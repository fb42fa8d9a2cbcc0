# Two commands: `make run` starts the app, `make test` runs the whole test suite.
# Both create .venv and install what they need on first use.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
# Optional: a PyTorch wheel index for a CPU-only torch build (see README).
TORCH_INDEX_URL ?=

.PHONY: run serve test lint install install-dev bench clean-venv

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(VENV)/bin/python
ifneq ($(TORCH_INDEX_URL),)
	$(PY) -m pip install --index-url $(TORCH_INDEX_URL) torch==2.14.1 torchvision==0.29.1
endif
	$(PY) -m pip install -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt requirements-ray.txt $(VENV)/.runtime
	$(PY) -m pip install -r requirements-dev.txt
	touch $@

# The project itself, editable, so the `smearlab` console script exists. Offline: no build
# isolation, the venv's setuptools (>= 70.1, which builds editable wheels itself) builds it.
$(VENV)/.project: pyproject.toml $(VENV)/.runtime
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

install: $(VENV)/.project
install-dev: $(VENV)/.dev $(VENV)/.project

# `make run` serves this machine only (the first visit creates the admin account); `make
# serve` serves the network (PORT ?= 8501) and refuses to start before an account exists.
PORT ?= 8501

run: $(VENV)/.project
	$(PY) -m streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT)

serve: $(VENV)/.project
	$(PY) -m dataset serve-check
	$(PY) -m streamlit run app.py --server.address 0.0.0.0 --server.port $(PORT)

lint: $(VENV)/.dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: $(VENV)/.dev $(VENV)/.project lint
	$(PY) -m pytest

bench: $(VENV)/.dev
	for f in bench/*.py; do $(PY) $$f || exit 1; done
