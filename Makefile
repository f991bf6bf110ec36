# Two commands (see README):
#   make run   install into .venv and serve on http://127.0.0.1:8000 with embedded defaults
#   make test  install test needs, start or reuse PostgreSQL and Redis, run the whole suite
.PHONY: run test install install-test browser models services quick-test lint bench audit lock

VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/1

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# torch is pinned to the CPU build in pyproject.toml; installing it first keeps pip
# from ever resolving a CUDA build.
$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) install --quiet "torch==2.13.0"
	$(PIP) install --quiet -c requirements.lock -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install --quiet -c requirements.lock -e ".[test]"
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# Debian's chromium + chromium-driver for the browser tests (tests/e2e); never a browser download.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver; \
	fi

# Trained triage artefacts that are too large to commit are built locally, offline.
models: install
	$(PY) scripts/build_models.py

run: install models
	$(PY) manage.py migrate --noinput -v 0
	$(PY) manage.py collectstatic --noinput -v 0
	$(PY) manage.py seed_demo
	@echo "Serving on http://$(HOST):$(PORT)  (API docs: /api/v1/docs/, health: /healthz)"
	$(PY) -m config.serve -b $(HOST) -p $(PORT) --websocket-max-message-size 1048576 --websocket-max-frame-size 1048576 config.asgi:application

services:
	bash scripts/ensure-services.sh

test: install-test browser models services
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) EARLYHELP_REQUIRE_REAL=1 \
		$(VENV)/bin/pytest -q -p no:cacheprovider

# The quick path: SQLite and in-memory fakes, no services needed.
quick-test: install-test
	$(VENV)/bin/pytest -q

lint: install-test
	$(VENV)/bin/ruff check .

# Load benchmarks (docs/benchmarks.md): the real stack on loopback, ~15-20 minutes.
bench: install-test
	$(PIP) install --quiet -c requirements.lock -e ".[test,bench]"
	$(PY) bench/run.py --scenario all

# Needs internet access to PyPI's JSON API / OSV (not available on the CI machine).
audit: install
	$(PIP) install --quiet pip-audit
	$(VENV)/bin/pip-audit -r requirements.lock

lock: install-test
	{ head -n 2 requirements.lock; $(PIP) freeze --exclude-editable | grep -v '^earlyhelp'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock
