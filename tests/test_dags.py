"""The Airflow DAGs: they import cleanly, and news_ingest runs for real with dag.test()."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from elasticsearch import Elasticsearch

from newsmon.config import Settings
from newsmon.demo import DemoPage, DemoSite
from newsmon.index import IndexNames

from .conftest import REPO

pytestmark = pytest.mark.airflow


@pytest.fixture(scope="module")
def airflow_db() -> None:
    """A fresh SQLite metadata database in the session's AIRFLOW_HOME."""
    airflow = Path(sys.executable).with_name("airflow")
    done = subprocess.run(
        [str(airflow), "db", "migrate"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.fixture(scope="module")
def dagbag() -> object:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_dagbag_imports_without_errors(dagbag: object) -> None:
    assert dagbag.import_errors == {}  # type: ignore[attr-defined]
    assert sorted(dagbag.dags) == ["news_ingest"]  # type: ignore[attr-defined]
    assert [Path(f).name for f in dagbag.file_last_changed] == ["news_ingest.py"]  # type: ignore[attr-defined]
    dag = dagbag.dags["news_ingest"]  # type: ignore[attr-defined]
    assert {t.task_id for t in dag.tasks} == {"plan_batches", "ingest_batch", "summarize"}
    assert dag.catchup is False and dag.max_active_runs == 1
    assert dag.get_task("ingest_batch").retries == 3
    assert dag.get_task("ingest_batch").max_active_tis_per_dag == 4
    outlets = dag.get_task("summarize").outlets
    assert [o.name for o in outlets] == ["newsmon_articles"]


def test_dag_files_do_no_io_at_parse_time() -> None:
    # Parsing with no Elasticsearch and no config must work: it only builds the DAG.
    env = {
        **os.environ,
        "NEWSMON_ES_URL": "http://127.0.0.1:9",
        "NEWSMON_CONFIG_DIR": "/nonexistent",
    }
    code = "import runpy; runpy.run_path('dags/news_ingest.py')"
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
def airflow_env(settings: Settings, news_pages: list[DemoPage]) -> Iterator[DemoSite]:
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
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            yield site
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


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
    names = IndexNames(settings.index_prefix)
    es.indices.refresh(index=f"{names.articles},{names.feeds}")
    assert es.count(index=names.articles)["count"] == 12
    feeds = es.search(index=names.feeds, size=10)["hits"]["hits"]
    assert sorted(h["_id"] for h in feeds) == ["demo-feed1", "demo-feed2", "demo-feed3"]
