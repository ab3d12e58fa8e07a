# Zabota: one entry point for developers and CI.
#
#   make install     uv (via pip if missing) + every workspace package and the dev group
#   make up          the whole stack on this machine (scripts/up.py): NATS, five services, demo data
#   make up TRACING=1  ... and a trace backend with a UI (Jaeger if found, else Arize Phoenix from PyPI)
#   make test        the whole test suite (TEST_DATABASE_URL etc. are passed through from the environment)
#   make lint        ruff
#   make catalogue   regenerate the event catalogue in docs/events/ from the msgspec Structs
#
# Works on a machine with only Python >= 3.11 and make: uv is installed with pip when it is not on PATH,
# and then used as `python3 -m uv`.

SHELL := /bin/bash
PYTHON ?= python3

ifeq ($(origin UV), undefined)
  ifneq ($(shell command -v uv 2>/dev/null),)
    UV := uv
  else
    UV := $(PYTHON) -m uv
  endif
endif

# Exported so that `make test` hands them to pytest unchanged (they are inherited anyway when set;
# listing them documents what the suite reads).
export TEST_DATABASE_URL ZABOTA_REQUIRE_POSTGRES ZABOTA_REQUIRE_BROWSER

PYTEST_ARGS ?=

.PHONY: help install uv up test lint format catalogue clean

help:
	@sed -n '3,8p' Makefile | sed 's/^# \{0,1\}//'

uv:
	@if command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1; then exit 0; fi; \
	echo "uv not found: installing it with pip"; \
	$(PYTHON) -m pip --version >/dev/null 2>&1 || $(PYTHON) -m ensurepip --user >/dev/null 2>&1 || $(PYTHON) -m ensurepip >/dev/null 2>&1 || true; \
	$(PYTHON) -m pip install --user --quiet uv \
	  || $(PYTHON) -m pip install --quiet uv \
	  || $(PYTHON) -m pip install --user --quiet --break-system-packages uv \
	  || { echo "could not install uv with pip: see https://docs.astral.sh/uv/ to install it by hand" >&2; exit 1; }; \
	$(PYTHON) -m uv --version

install: uv
	$(UV) sync --all-packages

up: install
	exec $(UV) run --no-sync python scripts/up.py $(if $(filter 1 yes true,$(TRACING)),--tracing)

# PYTEST_RC_FILE (used by .ci/run): where to write pytest's own exit code, since make turns any failure into 2.
test: install
	@rc=0; $(UV) run --no-sync pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ -n "$${PYTEST_RC_FILE:-}" ]; then echo $$rc > "$$PYTEST_RC_FILE"; fi; \
	exit $$rc

lint: install
	$(UV) run --no-sync ruff check .

format: install
	$(UV) run --no-sync ruff format .

catalogue: install
	$(UV) run --no-sync python -m shared.events.catalogue --out docs/events

clean:
	rm -rf .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +
