"""The rule checks of ``newsmon alerts check`` are the ones the Airflow task applies: a rule the
check rejects is refused by the DAG glue (dags/newsmon_airflow.py decide_alerts) with the same
sentence, its warnings are logged, and the other rules run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from elasticsearch import Elasticsearch

from newsmon.config import Settings
from newsmon.store import IndexNames, ensure_indices

from .helpers.alerts import article_doc, ledger_docs, write_articles
from .helpers.paths import REPO

pytestmark = [pytest.mark.es, pytest.mark.airflow]

NEWSMON = Path(sys.executable).with_name("newsmon")
RULES = """\
alerts:
  - id: quakes
    name: Quakes
    query: earthquake
    recipients: [geo@example.org]
  - id: wrong-feed
    name: A feed nobody has
    query: earthquake
    recipients: [geo@example.org]
    filters:
      feeds: [no-such-feed]
  - id: talks
    name: Talks
    query: Pak-US
    recipients: [desk@example.org]
"""
FEEDS = """\
feeds:
  - id: wire
    name: Wire
    url: https://wire.example/feed.xml
"""
DECIDE = """
import json, logging, sys
sys.path.insert(0, sys.argv[1])
import newsmon_airflow
newsmon_airflow.newsmon_settings()  # Airflow configures its logging on the way
logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(name)s: %(message)s",
                    force=True)  # what the task log shows
print(json.dumps(newsmon_airflow.decide_alerts("immediate")))
"""


def _env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    (tmp_path / "alerts.yaml").write_text(RULES)
    Path(settings.feeds_file).write_text(FEEDS)
    es_url = urlsplit(settings.es_url)
    conn = {"conn_type": "elasticsearch", "host": es_url.hostname, "port": es_url.port}
    return {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW_CONN_NEWSMON_ES": json.dumps({**conn, "schema": es_url.scheme}),
        "NEWSMON_ES_URL": settings.es_url,
        "NEWSMON_INDEX_PREFIX": settings.index_prefix,
        "NEWSMON_CONFIG_DIR": settings.config_dir,
        "NEWSMON_FEEDS": settings.feeds_file,
        "NEWSMON_ALERTS": str(tmp_path / "alerts.yaml"),
        "NEWSMON_ALERTS_LAG": "0s",
    }


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_the_dag_glue_refuses_and_warns_as_alerts_check_does(
    settings: Settings, es: Elasticsearch, tmp_path: Path
) -> None:
    names = IndexNames(settings.index_prefix)
    ensure_indices(es, names, settings.config_dir)
    write_articles(
        es,
        names,
        article_doc(1, "Earthquake in Quetta", "An earthquake shook Quetta.", story_id="s1"),
        article_doc(2, "Pak-US talks", "The Pak-US talks resumed in Islamabad.", story_id="s2"),
    )
    env = _env(settings, tmp_path)

    check = _run([str(NEWSMON), "alerts", "check"], env)
    assert check.returncode == 2, check.stderr
    errors = [
        line.removeprefix("newsmon: configuration error: ")
        for line in check.stderr.splitlines()
        if line.startswith("newsmon: configuration error: ")
    ]
    warnings = [
        line.removeprefix("newsmon: warning: ")
        for line in check.stderr.splitlines()
        if line.startswith("newsmon: warning: ")
    ]
    assert len(errors) == 1 and "'wrong-feed'" in errors[0] and "no-such-feed" in errors[0]
    assert len(warnings) == 1 and "'talks'" in warnings[0] and "Pak-US" in warnings[0]

    decided = _run([sys.executable, "-c", DECIDE, str(REPO / "dags")], env)
    assert decided.returncode == 0, decided.stderr
    report: dict[str, Any] = json.loads(decided.stdout.splitlines()[-1])

    # the rejected rule is not run, with the sentence `alerts check` gives; the others are
    assert report["problems"] == [f"rule wrong-feed not run: {errors[0]}"]
    assert report["counts"]["rules_evaluated"] == 2
    logged = decided.stderr.splitlines()
    assert f"newsmon.alerts.checks: {warnings[0]}" in logged  # as the CLI prints it
    assert f"newsmon.alerts.checks: rule wrong-feed not run: {errors[0]}" in logged
    assert {d["rule_id"] for d in ledger_docs(es, names, kind="story")} == {"quakes", "talks"}
