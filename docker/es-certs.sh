#!/usr/bin/env bash
# Creates the stack's certificate authority and the Elasticsearch node's certificate, once, in
# the `certs` volume. Runs in the Elasticsearch image (it has elasticsearch-certutil) as root;
# the `es-certs` service of docker-compose.yml calls it before Elasticsearch starts.
#
# Layout (mounted read-only by Elasticsearch, Kibana and the Airflow containers):
#   ca/ca.crt                        the CA that clients trust (NEWSMON_ES_CA_CERTS)
#   ca/ca.key                        the CA's key, readable by root only (to add nodes later)
#   elasticsearch/elasticsearch.crt  the node's certificate: DNS elasticsearch, localhost
#   elasticsearch/elasticsearch.key
set -euo pipefail

# ES_HOME and CERTS_DIR are for `make docker-check`, which runs this on Elastic's test distribution.
home=${ES_HOME:-/usr/share/elasticsearch}
certs=${CERTS_DIR:-$home/config/certs}

if [[ -s $certs/ca/ca.crt && -s $certs/elasticsearch/elasticsearch.crt ]]; then
    echo "es-certs: certificates exist in $certs, nothing to do"
    exit 0
fi

mkdir -p "$certs"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [[ ! -s $certs/ca/ca.crt ]]; then
    echo "es-certs: creating the certificate authority"
    "$home/bin/elasticsearch-certutil" ca --silent --pem --out "$work/ca.zip"
    unzip -q -o "$work/ca.zip" -d "$certs"
fi

echo "es-certs: creating the certificate of the elasticsearch node"
cat > "$work/instances.yml" <<'YAML'
instances:
  - name: elasticsearch
    dns: [elasticsearch, localhost]
    ip: [127.0.0.1]
YAML
"$home/bin/elasticsearch-certutil" cert --silent --pem \
    --in "$work/instances.yml" --out "$work/certs.zip" \
    --ca-cert "$certs/ca/ca.crt" --ca-key "$certs/ca/ca.key"
unzip -q -o "$work/certs.zip" -d "$certs"

# Elasticsearch and Kibana run as uid 1000, Airflow as uid 50000, all in group 0 (root): the
# group may read the certificates and the node's key; the CA key stays with root.
chown -R root:root "$certs"
find "$certs" -type d -exec chmod 750 {} +
find "$certs" -type f -exec chmod 640 {} +
chmod 600 "$certs/ca/ca.key"
echo "es-certs: done"
