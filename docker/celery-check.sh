#!/usr/bin/env bash
# The compose stack's Airflow configuration run without Docker (`make celery-check`): Postgres,
# Redis, Airflow with CeleryExecutor and two Celery workers, all on loopback, configured from
# docker-compose.yml's x-airflow-common environment; one news_ingest run over the demo site,
# checked for success, batches on both workers and articles indexed once (docker/celery_check.py).
#
# Needs PostgreSQL's initdb/postgres and redis-server on the machine (Debian: postgresql,
# redis-server), and the shared Elasticsearch node (`newsmon es up`). Airflow runs from its own
# venv, CELERY_CHECK_VENV (default /tmp/newsmon-celerycheck-venv), made on first use: newsmon with
# its airflow extra plus what the official image adds for this configuration: the celery and fab
# providers and the postgres provider
# (psycopg2-binary, asyncpg), pinned by constraints/celery-python<X.Y>.txt (a tested resolution;
# `make celery-constraints` refreshes it from this venv). Options are passed to celery_check.py
# (--help).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${CELERY_CHECK_VENV:-/tmp/newsmon-celerycheck-venv}
dev_venv=${VENV:-.venv}
python=${PYTHON:-python3}

for tool in redis-server redis-cli; do
    command -v "$tool" > /dev/null || { echo "$tool is missing (apt-get install redis-server)" >&2; exit 1; }
done

airflow_version=$("$dev_venv/bin/python" -c \
    'from importlib.metadata import version; print(version("apache-airflow"))')
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
constraints=constraints/celery-python$pyver.txt
pins=()
if [[ -f $constraints ]]; then
    pins=(--constraint "$constraints")
else
    echo "   no $constraints: resolving the newest versions the bounds below allow" >&2
fi
requirements=(
    "apache-airflow==$airflow_version"
    ".[airflow]"
    "apache-airflow-providers-celery>=3.12,<4"
    "celery>=5.5,<5.7"  # providers-celery 3.26 cannot import celery 5.7 (celery.backends.database.retry)
    "apache-airflow-providers-fab>=3,<4"
    "apache-airflow-providers-postgres>=6,<8"  # psycopg2-binary, and asyncpg for Airflow's async engine
    "psycopg2-binary>=2.9,<3"
)
stamp_value="${requirements[*]} $(cat pyproject.toml "${pins[@]:1}" | sha256sum | cut -c1-16)"
if [[ ! -f $venv/.celery-check || $(cat "$venv/.celery-check") != "$stamp_value" ]]; then
    echo "== venv $venv: ${requirements[*]} ${pins[*]} (a few minutes on first use)"
    [[ -x $venv/bin/python ]] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    if ! "$venv/bin/python" -m pip install --progress-bar off "${pins[@]}" "${requirements[@]}" \
        > "$venv/install.log" 2>&1; then
        tail -30 "$venv/install.log" >&2
        exit 1
    fi
    "$venv/bin/python" -m pip check > /dev/null || { "$venv/bin/python" -m pip check >&2; exit 1; }
    echo "$stamp_value" > "$venv/.celery-check"
else
    echo "== venv $venv (up to date)"
fi
# newsmon itself from the checkout as it is now (the venv may be older)
"$venv/bin/python" -m pip install --quiet --no-deps --force-reinstall .

echo "== CeleryExecutor with two workers, configured from docker-compose.yml"
exec "$venv/bin/python" docker/celery_check.py "$@"
