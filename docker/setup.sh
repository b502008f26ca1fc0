#!/usr/bin/env bash
# One-shot setup of the docker compose stack, run by the `newsmon-setup` service (newsmon image):
#   1. waits until Elasticsearch answers the `elastic` superuser;
#   2. sets the password of `kibana_system`, the user Kibana connects with;
#   3. creates the role `newsmon_writer` (all rights on the <prefix>* indices, templates,
#      cluster monitoring) and the user newsmon writes with (NEWSMON_ES_USERNAME);
#   4. runs `newsmon es init` as that user: index templates, indices, aliases;
#   5. imports newsmon's saved objects into Kibana (`newsmon kibana import`, which waits for
#      Kibana up to NEWSMON_KIBANA_WAIT seconds: Kibana starts once step 2 is done).
# Every step can be repeated: running the service again changes nothing that is set up.
# `setup.sh --print-role` prints the role's definition (JSON) and does nothing else.
set -euo pipefail

need() {
    local name
    for name in "$@"; do
        if [[ -z ${!name:-} ]]; then
            echo "newsmon-setup: $name is not set (see .env.example)" >&2
            exit 2
        fi
    done
}

# The role newsmon writes with: every right on its own indices, templates, cluster monitoring.
role_body() {
    PREFIX=${NEWSMON_INDEX_PREFIX:-newsmon-} python3 -c '
import json, os
print(json.dumps({
    "cluster": ["monitor", "manage_index_templates"],
    "indices": [{"names": [os.environ["PREFIX"] + "*"], "privileges": ["all"]}],
}))'
}
if [[ ${1:-} == --print-role ]]; then
    role_body
    exit 0
fi

need ELASTIC_PASSWORD KIBANA_PASSWORD NEWSMON_ES_URL NEWSMON_ES_USERNAME NEWSMON_ES_PASSWORD \
    KIBANA_URL

es_url=${NEWSMON_ES_URL%/}
kibana_base=${KIBANA_URL%/}
prefix=${NEWSMON_INDEX_PREFIX:-newsmon-}
wait_seconds=${SETUP_WAIT_SECONDS:-300}
tls=()
if [[ -n ${NEWSMON_ES_CA_CERTS:-} ]]; then
    tls=(--cacert "$NEWSMON_ES_CA_CERTS")
fi

log() { printf 'newsmon-setup: %s\n' "$*" >&2; }

# curl as the elastic user. The credentials go to curl through a config on standard input, so
# they never appear on a command line; a request body comes from a file (--data-binary @FILE).
curl_config_quote() {
    local value=${1//\\/\\\\}
    printf '"%s"' "${value//\"/\\\"}"
}
as_elastic() {
    printf 'user = %s\n' "$(curl_config_quote "elastic:$ELASTIC_PASSWORD")" |
        curl --silent --show-error --config - "$@"
}

# JSON bodies are written by Python, so a password with any character stays valid JSON.
password_body() {  # {"password": <value of the variable named $1>}
    python3 -c 'import json, os, sys; print(json.dumps({"password": os.environ[sys.argv[1]]}))' "$1"
}

es_request() {  # METHOD PATH [BODY]: prints the answer, fails on an HTTP error
    local method=$1 path=$2 body=${3:-} body_file out_file status
    body_file=$(mktemp)
    out_file=$(mktemp)
    printf '%s' "$body" > "$body_file"
    status=$(as_elastic "${tls[@]}" -X "$method" -H 'Content-Type: application/json' \
        --data-binary "@$body_file" -o "$out_file" -w '%{http_code}' "$es_url$path") || status=000
    rm -f "$body_file"
    if [[ $status != 2?? ]]; then
        log "$method $path answered HTTP $status: $(head -c 500 "$out_file")"
        rm -f "$out_file"
        return 1
    fi
    cat "$out_file"
    rm -f "$out_file"
}

wait_for() {  # WHAT COMMAND...: retries COMMAND every 5 s for up to $wait_seconds
    local what=$1 deadline=$((SECONDS + wait_seconds))
    shift
    until "$@" > /dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            log "$what did not become ready within ${wait_seconds}s; the last answer:"
            "$@" > /dev/null || true
            return 1
        fi
        sleep 5
    done
    log "$what is ready"
}

es_ready() {
    es_request GET '/_cluster/health?wait_for_status=yellow&timeout=5s'
}

wait_for "Elasticsearch at $es_url" es_ready

log "setting the password of kibana_system"
es_request POST /_security/user/kibana_system/_password "$(password_body KIBANA_PASSWORD)" \
    > /dev/null

log "creating the role newsmon_writer for indices ${prefix}*"
es_request PUT /_security/role/newsmon_writer "$(role_body)" > /dev/null

log "creating the user $NEWSMON_ES_USERNAME"
user=$(python3 -c '
import json, os
print(json.dumps({
    "password": os.environ["NEWSMON_ES_PASSWORD"],
    "roles": ["newsmon_writer"],
    "full_name": "newsmon pipeline",
}))')
es_request PUT "/_security/user/$NEWSMON_ES_USERNAME" "$user" > /dev/null

log "creating newsmon's index templates and indices"
newsmon es init

log "importing newsmon's saved objects into Kibana at $kibana_base"
NEWSMON_KIBANA_USERNAME=elastic NEWSMON_KIBANA_PASSWORD=$ELASTIC_PASSWORD \
    newsmon kibana import --url "$kibana_base"
log "done"
