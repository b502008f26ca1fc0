"""Shared fixtures: the real Elasticsearch node, per-test index prefixes and indices, the loopback
news site, an SMTP server, a connection-counting sentinel, Airflow's database and DagBag.

The node is newsmon's own local node (``newsmon es up``) unless NEWSMON_ES_URL points at one.
Every test run gets its own index prefix, and every test a prefix under it, so runs and tests
never see each other's data; the session removes its indices at the end. Plain helpers (paths,
servers, documents) are in ``tests/helpers``; tests import them from there, never from here.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from ipaddress import ip_network
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from newsmon.alerts import SmtpSettings
from newsmon.config import FetchSettings, Settings
from newsmon.dev.demo import DemoPage, DemoSite, load_pages
from newsmon.store import IndexNames, connect, ensure_indices

# assertions in the helpers report like those in tests (registered before they are imported)
pytest.register_assert_rewrite("tests.helpers", "newsmon.dev.fuzz")

from .helpers.paths import NEWS_PAGES, REPO  # noqa: E402
from .helpers.sites import Sentinel  # noqa: E402
from .helpers.smtp import SENDER, Handler, smtp_server  # noqa: E402

# Airflow reads its configuration when first imported: give the test session its own home.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="newsmon-airflow-")
os.environ.setdefault("AIRFLOW_HOME", _AIRFLOW_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO / "dags"))
os.environ.setdefault("NEWSMON_CONFIG_DIR", str(REPO / "config"))

RUN_PREFIX = f"test-{uuid.uuid4().hex[:8]}-"
_counter = itertools.count(1)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@pytest.fixture(scope="session")
def es_url() -> str:
    url = os.environ.get("NEWSMON_ES_URL")
    if url:
        return url
    from newsmon.dev import esnode

    return esnode.up(progress=_say)


@pytest.fixture(scope="session")
def es(es_url: str) -> Iterator[Elasticsearch]:
    client = connect(Settings(es_url=es_url))
    _remove_stale_runs(client)
    yield client
    _remove(client, RUN_PREFIX)
    client.close()


STALE_AFTER_MS = 6 * 3600 * 1000  # a test run's indices older than this were left by a killed run


def _remove(client: Elasticsearch, prefix: str) -> None:
    """Delete the indices and index templates under ``prefix``."""
    indices = sorted(client.indices.get(index=f"{prefix}*", expand_wildcards="all"))
    for start in range(0, len(indices), 50):  # by name (wildcard deletes are refused)
        client.indices.delete(index=",".join(indices[start : start + 50]))
    templates = client.options(ignore_status=404).indices.get_index_template(name=f"{prefix}*")
    for template in templates.get("index_templates", []):
        client.indices.delete_index_template(name=template["name"])


def _remove_stale_runs(client: Elasticsearch) -> None:
    """Indices of test runs that were killed before they cleaned up count against the node's
    shard limit: remove those of runs older than :data:`STALE_AFTER_MS`."""
    rows = client.cat.indices(index="test-*", h="index,creation.date", format="json")
    cutoff = time.time() * 1000 - STALE_AFTER_MS
    stale = {
        str(r["index"]).split("-")[1]
        for r in rows
        if str(r["index"]).startswith("test-") and int(r["creation.date"]) < cutoff
    }
    for run in stale - {RUN_PREFIX.split("-")[1]}:
        _remove(client, f"test-{run}-")


@pytest.fixture
def settings(es_url: str, es: Elasticsearch, tmp_path: Path) -> Iterator[Settings]:
    """Settings for one test: its own index prefix, loopback allowed, short timeouts. The
    test's indices are removed after it (a session's would otherwise pass the node's limit of
    1,000 shards)."""
    prefix = f"{RUN_PREFIX}{next(_counter)}-"
    yield Settings(
        es_url=es_url,
        index_prefix=prefix,
        config_dir=str(REPO / "config"),
        feeds_file=str(tmp_path / "feeds.yaml"),
        fetch=FetchSettings(
            allow_networks=(ip_network("127.0.0.0/8"),),
            connect_timeout=2,
            read_timeout=5,
            deadline=10,
            workers=4,
        ),
    )
    _remove(es, prefix)


@pytest.fixture(scope="session")
def news_pages() -> list[DemoPage]:
    if not NEWS_PAGES.is_dir():
        pytest.fail(f"shared data missing: {NEWS_PAGES} (set NEWSMON_SHARED)")
    return list(load_pages(NEWS_PAGES))


@pytest.fixture
def news_site(news_pages: list[DemoPage]) -> Iterator[DemoSite]:
    with DemoSite(news_pages, feed_count=3) as site:
        yield site


@pytest.fixture
def names(es: Elasticsearch, settings: Settings) -> IndexNames:
    """The test's index names, the indices created."""
    names = IndexNames(settings.index_prefix)
    ensure_indices(es, names, settings.config_dir)
    return names


@pytest.fixture
def smtp() -> Iterator[tuple[Handler, SmtpSettings]]:
    """A real SMTP server on loopback (it stores what it gets), and settings to send to it."""
    with smtp_server() as (handler, port):
        yield handler, SmtpSettings(port=port, sender=SENDER, timeout=5)


@pytest.fixture
def sentinel() -> Iterator[Sentinel]:
    """Reachable but forbidden listeners that count the connections they accept."""
    guard = Sentinel()
    yield guard
    guard.close()


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
