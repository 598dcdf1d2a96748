# Two commands do everything on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501

.PHONY: run test lint bench install install-dev clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	# the console script xai-batch (editable: the tree is the code); no dependencies, no build downloads
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt requirements-hf.txt requirements-nodeps.txt $(VENV)/.installed
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -r requirements-nodeps.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	# two malloc arenas: glibc gives each new script thread (one per session run) an arena of its own and keeps
	# their freed pages, so the server's memory grew ~40 MB per 3 sessions without it (tests/test_load.py)
	MALLOC_ARENA_MAX=2 $(BIN)/streamlit run app.py --server.port $(PORT) --server.address localhost

lint: install-dev
	$(BIN)/ruff check .
	# types over xai_core/ (the [tool.mypy] section of pyproject.toml; cache in .mypy_cache)
	$(BIN)/mypy

test: install-dev lint
	$(BIN)/python -m pytest

bench: install-dev
	$(BIN)/python -m bench.bench_explainers

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
