#!/usr/bin/env bash
# Offline checks of the docker compose stack, too slow for `make test` (`make docker-check`):
#   1. docker-compose.yml loaded by compose-go, the library `docker compose` itself uses (schema,
#      interpolation, anchors and merges, consistency of services, volumes and dependencies),
#      with every variable of .env.example filled; and refused, naming the variable, without them;
#      `docker compose config` as well where the compose plugin is installed;
#   2. tests/data/compose-spec.json is the schema of that compose-go version;
#   3. the Dockerfile's pip install resolved: apache-airflow at the venv's version plus the newsmon
#      wheel with its airflow extra, under a constraints file: AIRFLOW_CONSTRAINTS (Airflow's
#      constraints-<python>.txt for the image's version, when you have it) or else, as a stand-in,
#      the versions installed in the development venv;
#   4. docker/test_setup_secured.py: es-certs.sh and setup.sh on a node of Elastic's test
#      distribution with security and TLS configured as in docker-compose.yml.
# That the images pull and build and the containers become healthy needs a Docker host.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

filled=()
while IFS='=' read -r key _; do
    if [[ $key =~ ^[A-Z][A-Z0-9_]*$ ]]; then
        filled+=("$key=check${key//_/}")
    fi
done < .env.example

echo "== compose-go: docker-compose.yml"
(cd docker/compose-check && go build -o "$work/compose-check" .)
env "${filled[@]}" "$work/compose-check" docker-compose.yml > "$work/compose.json"
"$venv/bin/python" - "$work/compose.json" <<'PY'
import json, sys
project = json.load(open(sys.argv[1]))
print(f"   loaded: {len(project['services'])} services, {len(project['volumes'])} volumes")
PY
mkdir "$work/empty"
cp docker-compose.yml "$work/empty/"
if (cd "$work/empty" && env -i PATH="$PATH" HOME="$work" "$work/compose-check" docker-compose.yml) \
    > /dev/null 2> "$work/missing.txt"; then
    echo "   FAILED: the compose file loads without its secrets" >&2
    exit 1
fi
grep -q 'set ELASTIC_PASSWORD in .env' "$work/missing.txt"
echo "   without .env: refused ($(grep -c 'required variable' "$work/missing.txt") missing values named)"
if docker compose version > /dev/null 2>&1; then
    env "${filled[@]}" docker compose config --quiet
    echo "   docker compose config: ok"
else
    echo "   docker compose (the CLI plugin) is not installed here: compose-go only"
fi

echo "== schema: tests/data/compose-spec.json"
module_dir=$(cd docker/compose-check && go list -m -f '{{.Dir}}' github.com/compose-spec/compose-go/v2)
cmp "$module_dir/schema/compose-spec.json" tests/data/compose-spec.json
echo "   same as $(basename "$module_dir")/schema/compose-spec.json"

echo "== pip: the Dockerfile's install step"
image_python=$(sed -n 's/^FROM apache\/airflow:[0-9.]*-python\([0-9.]*\).*/\1/p' Dockerfile)
venv_python=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [[ $image_python != "$venv_python" ]]; then
    echo "   note: the image has Python ${image_python:-?}, the venv $venv_python: resolved for" \
        "the venv's"
fi
airflow_version=$("$venv/bin/python" -c \
    'from importlib.metadata import version; print(version("apache-airflow"))')
constraints=${AIRFLOW_CONSTRAINTS:-}
if [[ -z $constraints ]]; then
    constraints=$work/constraints.txt
    "$venv/bin/pip" freeze --exclude-editable | grep -v '^newsmon' > "$constraints"
    echo "   constraints: the dev venv's $(wc -l < "$constraints") versions (stand-in; set" \
        "AIRFLOW_CONSTRAINTS to Airflow's own file for $airflow_version)"
else
    echo "   constraints: $constraints"
fi
"$venv/bin/pip" wheel --no-deps --quiet -w "$work/dist" .
wheels=("$work"/dist/newsmon-*.whl)
"$venv/bin/pip" install --dry-run --ignore-installed --quiet --report "$work/report.json" \
    "apache-airflow==$airflow_version" "newsmon[airflow,extractors] @ file://${wheels[0]}" \
    --constraint "$constraints"
"$venv/bin/python" - "$work/report.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
found = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in report["install"]}
print(f"   resolved {len(found)} distributions with Python {report['environment']['python_full_version']}:"
      f" apache-airflow {found['apache-airflow']}, newsmon {found['newsmon']},"
      f" elasticsearch {found['elasticsearch']}, trafilatura {found['trafilatura']}")
PY
echo "== es-certs.sh and setup.sh on a secured node"
"$venv/bin/python" -m pytest -q -p no:cacheprovider docker/test_setup_secured.py
echo "ok"
