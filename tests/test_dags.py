"""The Airflow DAGs: they import cleanly, and news_ingest, news_alerts, news_digest and
news_maintenance run for real with dag.test()."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from elasticsearch import Elasticsearch

from newsmon.config import Settings
from newsmon.dev.demo import DemoPage, DemoSite
from newsmon.store import IndexNames

from .helpers.paths import REPO
from .helpers.smtp import Handler, smtp_server

pytestmark = pytest.mark.airflow


def test_dagbag_imports_without_errors(dagbag: object) -> None:
    assert dagbag.import_errors == {}  # type: ignore[attr-defined]
    assert sorted(dagbag.dags) == [  # type: ignore[attr-defined]
        "news_alerts",
        "news_digest",
        "news_ingest",
        "news_maintenance",
    ]
    assert sorted(Path(f).name for f in dagbag.file_last_changed) == [  # type: ignore[attr-defined]
        "news_alerts.py",
        "news_digest.py",
        "news_ingest.py",
        "news_maintenance.py",
    ]
    dag = dagbag.dags["news_ingest"]  # type: ignore[attr-defined]
    assert {t.task_id for t in dag.tasks} == {"plan_batches", "ingest_batch", "summarize"}
    assert dag.catchup is False and dag.max_active_runs == 1
    assert dag.get_task("ingest_batch").retries == 3
    assert dag.get_task("ingest_batch").max_active_tis_per_dag == 4
    outlets = dag.get_task("summarize").outlets
    assert [o.name for o in outlets] == ["newsmon_articles"]


def test_alert_dags_follow_the_ingest_asset_and_their_schedule(dagbag: object) -> None:
    ingest = dagbag.dags["news_ingest"]  # type: ignore[attr-defined]
    alerts = dagbag.dags["news_alerts"]  # type: ignore[attr-defined]
    digest = dagbag.dags["news_digest"]  # type: ignore[attr-defined]
    [articles] = ingest.get_task("summarize").outlets
    [scheduled_on] = alerts.timetable.asset_condition.objects
    assert scheduled_on == articles  # the same Asset: name, URI and group
    assert (scheduled_on.name, scheduled_on.uri) == ("newsmon_articles", "newsmon://articles/")
    assert digest.timetable.expression == "*/5 * * * *"
    for dag in (alerts, digest):
        assert {t.task_id for t in dag.tasks} == {"decide", "send"}
        assert dag.get_task("send").upstream_task_ids == {"decide"}
        assert dag.catchup is False and dag.max_active_runs == 1


def test_dag_files_do_no_io_at_parse_time() -> None:
    # Parsing with no Elasticsearch and no config must work: it only builds the DAG.
    env = {
        **os.environ,
        "NEWSMON_ES_URL": "http://127.0.0.1:9",
        "NEWSMON_CONFIG_DIR": "/nonexistent",
        "NEWSMON_ALERTS": "/nonexistent/alerts.yaml",
    }
    code = (
        "import runpy\n"
        "for name in ('news_ingest', 'news_alerts', 'news_digest', 'news_maintenance'):\n"
        "    runpy.run_path(f'dags/{name}.py')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.fixture
def airflow_env(
    settings: Settings, news_pages: list[DemoPage], monkeypatch: pytest.MonkeyPatch
) -> Iterator[DemoSite]:
    """The Connection and NEWSMON_* variables a deployment sets, pointing at test resources."""
    with DemoSite(news_pages[:12], feed_count=3) as site:
        Path(settings.feeds_file).write_text(site.feeds_yaml())
        es = urlsplit(settings.es_url)
        conn = {
            "conn_type": "elasticsearch",
            "host": es.hostname,
            "port": es.port,
            "schema": es.scheme,
        }
        env = {
            "AIRFLOW_CONN_NEWSMON_ES": json.dumps(conn),
            "NEWSMON_ES_URL": "http://127.0.0.1:9",  # wrong on purpose: the Connection must win
            "NEWSMON_FEEDS": settings.feeds_file,
            "NEWSMON_INDEX_PREFIX": settings.index_prefix,
            "NEWSMON_FETCH_ALLOW": "127.0.0.1/32",
            "NEWSMON_FEED_BATCH_SIZE": "2",
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        yield site


@pytest.mark.es
def test_news_ingest_dag_test_indexes_the_articles(
    airflow_db: None, dagbag: object, airflow_env: DemoSite, settings: Settings, es: Elasticsearch
) -> None:
    dag = dagbag.dags["news_ingest"]  # type: ignore[attr-defined]

    run = dag.test()

    assert str(run.state) in ("success", "DagRunState.SUCCESS")
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert set(states.values()) == {"success"}, states
    mapped = [ti for ti in run.get_task_instances() if ti.task_id == "ingest_batch"]
    assert len(mapped) == 2  # 3 feeds in batches of 2
    # each mapped task is named by its feeds in the UI (map_index_template)
    assert sorted(ti.rendered_map_index for ti in mapped) == [
        "demo-feed1, demo-feed2",
        "demo-feed3",
    ]
    names = IndexNames(settings.index_prefix)
    es.indices.refresh(index=f"{names.articles},{names.feeds}")
    assert es.count(index=names.articles)["count"] == 12
    feeds = es.search(index=names.feeds, size=10)["hits"]["hits"]
    assert sorted(h["_id"] for h in feeds) == ["demo-feed1", "demo-feed2", "demo-feed3"]


@pytest.mark.es
def test_news_maintenance_dag_test_rolls_over_and_prunes(
    airflow_db: None,
    dagbag: object,
    airflow_env: DemoSite,
    settings: Settings,
    es: Elasticsearch,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from newsmon.store import bulk_write, ensure_indices

    names = IndexNames(settings.index_prefix)
    ensure_indices(es, names, settings.config_dir)
    old = {"domain": "a.example", "line": "l", "article": "x", "day": "2020-01-01"}
    bulk_write(es, names.index("lines"), [("create", "old", old)], refresh=True)
    monkeypatch.setenv("NEWSMON_ROLLOVER_MAX_DOCS", "0")  # roll over now
    dag = dagbag.dags["news_maintenance"]  # type: ignore[attr-defined]

    run = dag.test()

    assert str(run.state) in ("success", "DagRunState.SUCCESS")
    aliases = es.indices.get_alias(name=names.articles)
    assert sorted(aliases) == [f"{names.articles}-000001", f"{names.articles}-000002"]
    es.indices.refresh(index=names.index("lines"))
    assert es.count(index=names.index("lines"))["count"] == 0


# --- alerts --------------------------------------------------------------------------------------

ALERT_RULES = """
alerts:
  - id: pak-us-defence
    name: Pakistan and the US on defence
    query: Pakistan AND (US OR Pentagon) AND (defence OR military) NOT cricket
    recipients: [desk@example.org]
  - id: quakes
    name: Quakes
    query: earthquake
    recipients: [geo@example.org]
    mode: digest
    schedule: daily 08:00 Asia/Karachi
"""


@pytest.fixture
def alerts_env(
    settings: Settings, es: Elasticsearch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Handler, IndexNames]]:
    """Rules, two articles, the newsmon_es and newsmon_smtp Connections, a real SMTP server."""
    from newsmon.store import bulk_write, ensure_indices
    from newsmon.store.articles import match_fields

    names = IndexNames(settings.index_prefix)
    ensure_indices(es, names, settings.config_dir)
    now = datetime.now(UTC).isoformat()
    common = {"language": "en", "published_at": now, "indexed_at": now, "extraction": "full"}
    docs = [
        {
            "title": "US Defence secretary wants to improve Pak-US ties",
            "text": "Pakistan and the US discussed the defence relationship at the Pentagon.",
            "url": "https://www.bolnews.com/latest/2021/08/us-defence/",
            "domain": "bolnews.com",
            "site_name": "BOL News",
            "story_id": "story-1",
        },
        {
            "title": "Earthquake in Quetta",
            "text": "An earthquake shook Quetta.",
            "url": "https://www.dawn.com/news/1",
            "domain": "dawn.com",
            "story_id": "story-2",
        },
    ]
    report = bulk_write(
        es,
        names.articles,
        [("create", f"a{n}", {**common, **d, **match_fields(d)}) for n, d in enumerate(docs)],
        refresh=True,
    )
    assert not report.failed
    rules = tmp_path / "alerts.yaml"
    rules.write_text(ALERT_RULES)
    with smtp_server() as (handler, port):
        es_url = urlsplit(settings.es_url)
        env = {
            "AIRFLOW_CONN_NEWSMON_ES": json.dumps(
                {
                    "conn_type": "elasticsearch",
                    "host": es_url.hostname,
                    "port": es_url.port,
                    "schema": es_url.scheme,
                }
            ),
            "AIRFLOW_CONN_NEWSMON_SMTP": json.dumps(
                {
                    "conn_type": "smtp",
                    "host": "127.0.0.1",
                    "port": port,
                    "extra": {
                        "from_email": "newsmon@example.org",
                        "disable_ssl": True,
                        "disable_tls": True,
                        "timeout": 5,
                    },
                }
            ),
            "NEWSMON_SMTP_PORT": "9",  # wrong on purpose: the Connection must win
            "NEWSMON_ES_URL": "http://127.0.0.1:9",
            "NEWSMON_INDEX_PREFIX": settings.index_prefix,
            "NEWSMON_ALERTS": str(rules),
            "NEWSMON_ALERTS_LAG": "0s",
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        yield handler, names


@pytest.mark.es
def test_news_alerts_dag_test_emails_through_the_smtp_connection(
    airflow_db: None,
    dagbag: object,
    alerts_env: tuple[Handler, IndexNames],
    es: Elasticsearch,
) -> None:
    handler, names = alerts_env
    dag = dagbag.dags["news_alerts"]  # type: ignore[attr-defined]

    run = dag.test()

    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert set(states.values()) == {"success"}, states
    [received] = handler.received  # the immediate rule only; the digest is not due
    assert received.mail_from == "newsmon@example.org"
    assert received.rcpt_tos == ["desk@example.org"]
    assert received.message["Subject"] == (
        "[newsmon] Pakistan and the US on defence: US Defence secretary wants to improve Pak-US"
        " ties"
    )
    es.indices.refresh(index=names.index("alert-ledger"))
    sent = es.count(
        index=names.index("alert-ledger"),
        query={"bool": {"filter": [{"term": {"kind": "story"}}, {"term": {"status": "sent"}}]}},
    )
    assert sent["count"] == 1

    again = dag.test()  # nothing new: no second email
    assert {str(ti.state) for ti in again.get_task_instances()} == {"success"}
    assert len(handler.received) == 1


@pytest.mark.es
def test_news_digest_dag_test_collects_the_digest_rules(
    airflow_db: None,
    dagbag: object,
    alerts_env: tuple[Handler, IndexNames],
    es: Elasticsearch,
) -> None:
    handler, names = alerts_env
    dag = dagbag.dags["news_digest"]  # type: ignore[attr-defined]

    run = dag.test()

    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert set(states.values()) == {"success"}, states
    assert handler.received == []  # due at the next 08:00 in Karachi
    es.indices.refresh(index=names.index("alert-ledger"))
    [pending] = es.search(index=names.index("alert-ledger"), query={"match_all": {}})["hits"][
        "hits"
    ]
    assert pending["_source"]["rule_id"] == "quakes"
    assert pending["_source"]["status"] == "pending"
    assert pending["_source"]["period"].endswith("08:00 (Asia/Karachi)")
