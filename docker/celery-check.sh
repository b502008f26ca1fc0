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
# (psycopg2-binary, asyncpg). Options are passed to celery_check.py (--help).
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
requirements=(
    "apache-airflow==$airflow_version"
    ".[airflow]"
    "apache-airflow-providers-celery>=3.12,<4"
    "apache-airflow-providers-fab>=3,<4"
    "apache-airflow-providers-postgres>=6,<8"  # psycopg2-binary, and asyncpg for Airflow's async engine
    "psycopg2-binary>=2.9,<3"
)
stamp_value="${requirements[*]} $(sha256sum pyproject.toml | cut -c1-16)"
if [[ ! -f $venv/.celery-check || $(cat "$venv/.celery-check") != "$stamp_value" ]]; then
    echo "== venv $venv: ${requirements[*]}"
    [[ -x $venv/bin/python ]] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet "${requirements[@]}"
    echo "$stamp_value" > "$venv/.celery-check"
else
    echo "== venv $venv (up to date)"
fi
# newsmon itself from the checkout as it is now (the venv may be older)
"$venv/bin/python" -m pip install --quiet --no-deps --force-reinstall .

echo "== CeleryExecutor with two workers, configured from docker-compose.yml"
exec "$venv/bin/python" docker/celery_check.py "$@"
