# Two commands set everything up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT

.PHONY: run test browser pgbouncer install install-dev migrate seed lint format compose-check alerts-check check-inventory clean help

help:
	@echo "make run            install, migrate, seed the demo catalog, start web + worker + beat"
	@echo "make test           install dev requirements and run the whole test suite, with coverage"
	@echo "                    (on PYTEST_WORKERS=2 processes; PYTEST_ARGS adds pytest options)"
	@echo "make browser        install Debian's Chromium for the storefront browser tests (if missing)"
	@echo "make pgbouncer      install Debian's PgBouncer for the scale-out tests (if missing)"
	@echo "make lint           ruff check + format check + import layers (import-linter) + makemigrations --check"
	@echo "make compose-check  validate docker-compose.yml with docker-compose config"
	@echo "make alerts-check   promtool check + unit tests of the Prometheus rules (config/prometheus)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-base: $(BIN)/python requirements/base.txt requirements/constraints.txt
	$(BIN)/pip install --quiet -r requirements/base.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed-base requirements/dev.txt
	$(BIN)/pip install --quiet -r requirements/dev.txt
	touch $@

install: $(VENV)/.installed-base
install-dev: $(VENV)/.installed-dev

migrate: install
	$(BIN)/python -m config.dbcreate
	$(BIN)/python manage.py migrate --noinput

seed: migrate
	$(BIN)/python manage.py seed_demo
	@if [ -n "$$DJANGO_SUPERUSER_USERNAME" ] && [ -n "$$DJANGO_SUPERUSER_PASSWORD" ]; then \
	  $(BIN)/python manage.py createsuperuser --noinput --email "$${DJANGO_SUPERUSER_EMAIL:-$$DJANGO_SUPERUSER_USERNAME@example.com}" 2>/dev/null \
	    || echo "staff user $$DJANGO_SUPERUSER_USERNAME already exists"; \
	  echo "API token for $$DJANGO_SUPERUSER_USERNAME: $$($(BIN)/python manage.py drf_create_token $$DJANGO_SUPERUSER_USERNAME | awk '{print $$3}')"; \
	fi

run: seed
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	@export PROMETHEUS_MULTIPROC_DIR="$${PROMETHEUS_MULTIPROC_DIR:-$(CURDIR)/var/prometheus}"; \
	  rm -rf "$$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$$PROMETHEUS_MULTIPROC_DIR"; \
	  echo ""; \
	  echo "  Storefront : http://$(HOST):$(PORT)/"; \
	  echo "  API docs   : http://$(HOST):$(PORT)/api/docs/"; \
	  echo "  Admin      : http://$(HOST):$(PORT)/admin/"; \
	  echo "  Metrics    : http://$(HOST):$(PORT)/metrics"; \
	  echo "  Health     : http://$(HOST):$(PORT)/healthz"; \
	  echo ""; \
	  exec $(BIN)/honcho start -f Procfile

# The storefront's browser tests drive Debian's Chromium (Playwright cannot download one).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; \
	fi

# The scale-out tests (tests/scaleout) run a real PgBouncer in transaction pooling mode.
pgbouncer:
	@if ! command -v pgbouncer >/dev/null && [ ! -x /usr/sbin/pgbouncer ]; then \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq pgbouncer; \
	fi

# Line and branch coverage of the project's packages ([tool.coverage] in pyproject.toml);
# the run fails below its `fail_under` floor (measured on the whole suite: a run of a
# subset through PYTEST_ARGS may fall below it). The suite runs on PYTEST_WORKERS
# processes (pytest-xdist, each with its own test database and Redis databases, see
# config/test_settings.py; coverage is combined); PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2
test: $(VENV)/.installed-dev browser pgbouncer alerts-check
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --cov --cov-report=term $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python manage.py makemigrations --check --dry-run

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

compose-check:
	@command -v docker-compose >/dev/null || { apt-get update -qq && apt-get install -y -qq docker-compose >/dev/null; }
	SECRET_KEY="$${SECRET_KEY:-compose-check-placeholder}" docker-compose -f docker-compose.yml config --quiet \
	  && echo "docker-compose.yml is valid"

# promtool comes with Debian's `prometheus` package (installed when missing).
alerts-check:
	@if ! command -v promtool >/dev/null; then \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	fi
	promtool check rules config/prometheus/alerts.yml
	cd config/prometheus && promtool test rules alerts_test.yml

check-inventory: install
	$(BIN)/python manage.py check_inventory

clean:
	rm -rf $(VENV) staticfiles var .pytest_cache .ruff_cache .coverage .coverage.*
