# Developer commands. `make run` starts the whole dev stack; `make test` runs the suite.
# Both create .venv on first use and install the locked dependencies (plain pip, hashes
# checked); later runs reinstall only when requirements*.lock or pyproject.toml change.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || echo python3)
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --disable-pip-version-check --quiet
PYTEST_ARGS ?=
LOCK_FLAGS ?=
DOCS_ADDRESS ?= 127.0.0.1:8001
UV_VERSION ?= 0.13.9
UV_VENV := build/uv
UV_COMPILE := $(UV_VENV)/bin/uv pip compile pyproject.toml --generate-hashes --universal \
	--python-version 3.11 --quiet $(LOCK_FLAGS)
LINT_PATHS := otp workflows activities providers api cli worker.py bench tests sdk examples/fastapi

.DEFAULT_GOAL := help
.PHONY: help run test lint lock clean install install-dev
.PHONY: docs docs-build

help: ## List the commands
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: $(VENV)/.installed ## Start Temporal (UI :8233), the worker and the API (:8000); Ctrl-C stops all
	$(VENV)/bin/otp dev

test: $(VENV)/.installed-dev ## Run the whole test suite (fails on no tests collected too)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev ## ruff check, ruff format --check, mypy, import layering
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy $(LINT_PATHS)
	$(VENV)/bin/lint-imports --no-cache

docs: $(VENV)/.installed-dev ## Serve the documentation site with live reload (DOCS_ADDRESS, default 127.0.0.1:8001)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs serve -a $(DOCS_ADDRESS)

docs-build: $(VENV)/.installed-dev ## Build the documentation site strictly into build/site
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict -d build/site

install: $(VENV)/.installed ## Create .venv and install the service from requirements.lock
install-dev: $(VENV)/.installed-dev ## Create .venv and install the service and dev tools

lock: ## Regenerate requirements*.lock from pyproject.toml (LOCK_FLAGS=--upgrade to upgrade)
	test -x $(UV_VENV)/bin/uv || { $(PYTHON) -m venv $(UV_VENV) && $(UV_VENV)/bin/python -m pip install --disable-pip-version-check --quiet uv==$(UV_VERSION); }
	$(UV_COMPILE) --extra dev -o requirements-dev.lock
	$(UV_COMPILE) -c requirements-dev.lock -o requirements.lock

clean: ## Remove .venv, caches and build files (keeps .data: dev secrets and Temporal history)
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
	find . -path ./.data -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

$(PY):
	$(PYTHON) -m venv $(VENV)

# Runtime only. The lock carries every transitive dependency with its hashes; the
# project itself goes in editable and without dependencies, so nothing unlocked sneaks in.
$(VENV)/.installed: requirements.lock pyproject.toml | $(PY)
	$(PIP) --require-hashes -r requirements.lock
	$(PIP) --no-deps -e .
	touch $@

$(VENV)/.installed-dev: requirements-dev.lock pyproject.toml sdk/pyproject.toml | $(PY)
	$(PIP) --require-hashes -r requirements-dev.lock
	$(PIP) --no-deps -e .
	$(PIP) --no-deps -e sdk
	touch $@ $(VENV)/.installed
