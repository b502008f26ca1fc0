# newsmon on Apache Airflow: the official image, extended with newsmon, its DAGs and config.
# The tag follows the Airflow version newsmon is built and tested with (pyproject.toml's
# `airflow` extra, the venv's `airflow version`); tests/test_compose.py checks they agree.
FROM apache/airflow:3.3.2-python3.11

# newsmon and its dependencies, resolved against the constraints this image was built with
# (${HOME}/constraints.txt), with apache-airflow pinned to the image's own version
# (${AIRFLOW_VERSION}) so pip can never up- or downgrade Airflow or its providers. pip builds the
# wheel in /opt/newsmon, so that directory belongs to the airflow user. The constraints' own pins
# of the Elasticsearch client are dropped: newsmon needs the 9.x client (pyproject.toml bounds it),
# which the Airflow constraints of some releases pin to 8.x. On top of them, newsmon's tested
# versions (constraints/python3.11.txt) pin what the image's file does not (trafilatura,
# the 9.x client…), so a new release of those cannot change the image either.
USER root
RUN mkdir -p /opt/newsmon && chown airflow:0 /opt/newsmon
USER airflow
COPY --chown=airflow:0 pyproject.toml README.md /opt/newsmon/
COPY --chown=airflow:0 src /opt/newsmon/src
COPY --chown=airflow:0 constraints/python3.11.txt /opt/newsmon/newsmon-constraints.txt
RUN grep -vE '^(elasticsearch|elastic-transport)==' "${HOME}/constraints.txt" \
        > /opt/newsmon/constraints.txt \
    && awk -F'==' 'function key(s) { s = tolower(s); gsub(/[-_.]+/, "-", s); return s } \
            NR == FNR { if ($0 !~ /^#/) seen[key($1)] = 1; next } \
            $0 !~ /^#/ && NF == 2 && !(key($1) in seen)' \
        /opt/newsmon/constraints.txt /opt/newsmon/newsmon-constraints.txt \
        > /opt/newsmon/newsmon-only.txt \
    && cat /opt/newsmon/newsmon-only.txt >> /opt/newsmon/constraints.txt \
    && pip install --no-cache-dir \
        "apache-airflow==${AIRFLOW_VERSION}" \
        "/opt/newsmon[airflow,extractors]" \
        --constraint /opt/newsmon/constraints.txt

# The DAGs, plugins and config (feeds, alert rules, index templates, Kibana saved objects), and
# the setup script of the newsmon-setup service.
COPY --chown=airflow:0 dags /opt/newsmon/dags
COPY --chown=airflow:0 plugins /opt/newsmon/plugins
COPY --chown=airflow:0 config /opt/newsmon/config
COPY --chown=airflow:0 docker/setup.sh /opt/newsmon/docker/setup.sh

ENV AIRFLOW__CORE__DAGS_FOLDER=/opt/newsmon/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/newsmon/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    NEWSMON_CONFIG_DIR=/opt/newsmon/config
