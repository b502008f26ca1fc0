"""Runs repeated or killed half-way end like one clean run: the same articles (ids, url_keys),
the same stories, the same feed state, no duplicate alert.

Ingest and ``alerts run`` are killed with SIGKILL in a subprocess (no cleanup code runs), against
a slow loopback news site and a stalling SMTP server, and run again; news_ingest and news_alerts
run twice under Airflow's dag.test() for the same logical date.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from elasticsearch import Elasticsearch

import newsmon.pipeline
from newsmon.alerts import AlertSettings, SmtpSettings, deliver, email_id
from newsmon.config import Settings, load_feeds
from newsmon.dev.demo import DemoPage, DemoSite
from newsmon.pipeline import ingest
from newsmon.store import IndexNames, ensure_indices

from .helpers.alerts import article_doc, ledger_docs, write_articles
from .helpers.paths import REPO
from .helpers.smtp import SENDER, Fault, FaultyHandler, faulty_smtp_server

pytestmark = pytest.mark.es

BATCH = 4  # articles per bulk request in these runs, so a killed run has written some
RULES = """
alerts:
  - id: quake
    name: Quake
    query: earthquake
    recipients: [desk@example.org]
"""


class StallingSite(DemoSite):
    """The demo site whose article pages hang, once :attr:`allowed` of them have been served,
    until :attr:`gate` is set (feeds are always answered): a run stops half-way, in a known
    place — waiting for a page — where the test kills it."""

    def __init__(self, pages: list[DemoPage], **kwargs: Any) -> None:
        self.allowed = 10**9
        self.served = 0
        self.gate = threading.Event()
        super().__init__(pages, **kwargs)

    def stall_after(self, pages: int) -> None:
        with self._lock:
            self.allowed, self.served = pages, 0
        self.gate.clear()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        base = super()._handler()
        site = self

        class Stalling(base):  # type: ignore[valid-type,misc]
            def do_GET(self) -> None:
                if not self.path.startswith("/feeds/"):
                    with site._lock:
                        site.served += 1
                        stall = site.served > site.allowed
                    if stall:
                        site.gate.wait(120)
                super().do_GET()

        return Stalling


def _snapshot(es: Elasticsearch, prefix: str) -> dict[str, Any]:
    """What a run leaves in Elasticsearch, without the times it ran at."""
    names = IndexNames(prefix)
    es.indices.refresh(index=f"{names.articles},{names.stories},{names.feeds}")
    articles = {
        h["_id"]: h["_source"]
        for h in es.search(index=names.articles, size=1000, query={"match_all": {}})["hits"]["hits"]
    }
    members: dict[str, list[str]] = {}
    for doc_id, src in articles.items():
        members.setdefault(src.get("story_id") or doc_id, []).append(doc_id)
    stories = {
        h["_id"]: (
            sorted(h["_source"]["article_ids"]),
            h["_source"]["article_count"],
            sorted(h["_source"]["outlets"]),
            h["_source"].get("first_article_id"),
        )
        for h in es.search(index=names.stories, size=1000, query={"match_all": {}})["hits"]["hits"]
    }
    feeds = {
        h["_id"]: (
            h["_source"].get("url"),
            h["_source"].get("etag"),
            h["_source"].get("last_modified"),
            h["_source"].get("consecutive_failures"),
        )
        for h in es.search(index=names.feeds, size=100, query={"match_all": {}})["hits"]["hits"]
    }
    return {
        "url_keys": {i: sorted(s.get("url_keys") or ()) for i, s in articles.items()},
        "extraction": {i: s.get("extraction") for i, s in articles.items()},
        "story_members": sorted(sorted(m) for m in members.values()),
        "stories": stories,
        "feeds": feeds,
    }


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "NEWSMON_ES_URL": settings.es_url,
        "NEWSMON_INDEX_PREFIX": settings.index_prefix,
        "NEWSMON_CONFIG_DIR": settings.config_dir,
        "NEWSMON_FEEDS": settings.feeds_file,
        "NEWSMON_FETCH_ALLOW": "127.0.0.0/8",
        "NEWSMON_FETCH_WORKERS": "4",
        **extra,
    }


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``newsmon ARGS`` in a subprocess, with the pipeline writing every :data:`BATCH`."""
    code = (
        "import sys, newsmon.pipeline as p; from newsmon.cli import main\n"
        f"p.INDEX_BATCH = {BATCH}\n"
        "sys.exit(main(sys.argv[1:]))"
    )
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", code, *args], cwd=REPO, env=env, stdout=out, stderr=out
        )


def _wait_for(condition: Callable[[], bool], what: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        assert process.poll() is None, f"the run ended before {what} (exit {process.returncode})"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL


# --- ingest killed half-way ----------------------------------------------------------------------


@pytest.fixture
def stalling_site(news_pages: list[DemoPage]) -> Iterator[StallingSite]:
    site = StallingSite(news_pages[:24], feed_count=3)
    site.start()
    try:
        yield site
    finally:
        site.gate.set()
        site.stop()


def test_ingest_killed_half_way_then_run_again_ends_like_a_clean_run(
    es: Elasticsearch,
    settings: Settings,
    stalling_site: StallingSite,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dataclasses import replace

    Path(settings.feeds_file).write_text(stalling_site.feeds_yaml())
    feeds = load_feeds(settings.feeds_file)
    # the reference: one clean run into indices of its own, with the same batches
    reference = replace(settings, index_prefix=settings.index_prefix + "ref-")
    monkeypatch.setattr(newsmon.pipeline, "INDEX_BATCH", BATCH)
    clean = ingest(feeds, reference, client=es)
    assert clean.articles["indexed"] == 24 and clean.feeds["fetched"] == 3
    expected = _snapshot(es, reference.index_prefix)

    names = IndexNames(settings.index_prefix)
    ensure_indices(es, names, settings.config_dir)
    env = _env(settings)
    log = tmp_path / "run.log"
    stalling_site.stall_after(2 * BATCH)
    process = _start(["run"], env, log)

    _wait_for(lambda: stalling_site.served > 2 * BATCH, "the pages to stall", process)
    last: list[tuple[int, float]] = []

    def settled() -> bool:  # what the served pages gave is written, stories included
        es.indices.refresh(index=f"{names.articles},{names.stories}")
        articles = int(es.count(index=names.articles)["count"])
        stories = es.search(
            index=names.stories, size=0, aggs={"n": {"sum": {"field": "article_count"}}}
        )["aggregations"]["n"]["value"]
        if articles < BATCH or stories != articles:
            return False
        if not last or last[-1][0] != articles:
            last.append((articles, time.monotonic()))
        return time.monotonic() - last[-1][1] > 1.0

    _wait_for(settled, "some batches to be written", process)
    _kill(process)
    stalling_site.gate.set()
    killed = _snapshot(es, settings.index_prefix)
    assert BATCH <= len(killed["url_keys"]) <= 2 * BATCH and killed["feeds"] == {}

    again = subprocess.run(
        [sys.executable, "-m", "newsmon.cli", "run", "--summary-json", str(tmp_path / "s.json")],
        cwd=REPO,
        env=env,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["articles"]["already_indexed"] == len(killed["url_keys"])
    assert summary["articles"]["indexed"] == 24 - len(killed["url_keys"])

    after = _snapshot(es, settings.index_prefix)
    assert after["url_keys"] == expected["url_keys"]  # the same ids, the same url_keys
    assert after["extraction"] == expected["extraction"]
    assert after["story_members"] == expected["story_members"]
    assert after["stories"] == expected["stories"]
    # feed validators depend on the site only; each state names its own feed
    assert after["feeds"] == expected["feeds"]


@pytest.mark.parametrize("searchable", [False, True], ids=["rerun-at-once", "rerun-later"])
def test_ingest_killed_between_article_write_and_story_update_ends_like_a_clean_run(
    es: Elasticsearch,
    settings: Settings,
    stalling_site: StallingSite,
    tmp_path: Path,
    searchable: bool,
) -> None:
    """At once, the written articles are not yet searchable: the rerun fetches them again and
    finds them there on writing; later, it finds them when planning. Both settle their stories.
    "At once" is made certain by switching the periodic refresh off (a loaded machine may take
    longer than the refresh interval to start the rerun)."""
    Path(settings.feeds_file).write_text(stalling_site.feeds_yaml())
    env = _env(settings)
    names = IndexNames(settings.index_prefix)
    ensure_indices(es, names, settings.config_dir)
    if not searchable:
        es.indices.put_settings(
            index=names.articles, settings={"index": {"refresh_interval": "-1"}}
        )
    code = (  # SIGKILL itself when the second batch's stories are about to be updated
        "import os, signal, sys, newsmon.pipeline as p; from newsmon.cli import main\n"
        f"p.INDEX_BATCH = {BATCH}\n"
        "real, calls = p.update_stories, []\n"
        "def update_stories(*args, **kwargs):\n"
        "    calls.append(1)\n"
        "    if len(calls) == 2: os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return real(*args, **kwargs)\n"
        "p.update_stories = update_stories\n"
        "sys.exit(main(['run', '--quiet']))"
    )
    killed = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, timeout=300
    )
    assert killed.returncode == -signal.SIGKILL
    if searchable:
        es.indices.refresh(index=names.articles)
    again = subprocess.run(
        [sys.executable, "-m", "newsmon.cli", "run", "--summary-json", str(tmp_path / "s.json")],
        cwd=REPO,
        env=env,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    summary = json.loads((tmp_path / "s.json").read_text())["articles"]
    # two batches written, the second one's stories lost: both are settled again (harmless for
    # the first)
    assert summary["stories_settled"] == 2 * BATCH
    assert summary.get("already_indexed", 0) == (2 * BATCH if searchable else 0)

    es.indices.refresh(index=f"{names.articles},{names.stories}")
    articles = es.search(index=names.articles, size=100, query={"exists": {"field": "story_id"}})
    in_stories = es.search(
        index=names.stories, size=0, aggs={"n": {"sum": {"field": "article_count"}}}
    )["aggregations"]["n"]["value"]
    assert len(articles["hits"]["hits"]) == 24
    assert in_stories == 24  # every article counted in its story


# --- alerts run killed between deciding and sending -----------------------------------------------


@pytest.mark.parametrize("stall_at", ["mail", "data"])
def test_alerts_run_killed_while_sending_is_taken_over_after_the_claim_timeout(
    es: Elasticsearch, settings: Settings, tmp_path: Path, stall_at: str
) -> None:
    names = IndexNames(settings.index_prefix)
    ensure_indices(es, names, settings.config_dir)
    write_articles(es, names, article_doc(1, "Earthquake in Quetta", "An earthquake shook Quetta."))
    rules = tmp_path / "alerts.yaml"
    rules.write_text(RULES)
    with faulty_smtp_server() as (handler, port):
        # the first connection hangs before the reply to MAIL (nothing sent yet) or to DATA
        # (the server has the message; the sender never hears back)
        handler.plan = [Fault(stall=120, stall_at=stall_at)]
        env = _env(
            settings,
            NEWSMON_ALERTS=str(rules),
            NEWSMON_ALERTS_LAG="0s",
            NEWSMON_SMTP_HOST="127.0.0.1",
            NEWSMON_SMTP_PORT=str(port),
            NEWSMON_SMTP_FROM=SENDER,
            NEWSMON_SMTP_TIMEOUT="300",
        )
        process = _start(["alerts", "run"], env, tmp_path / "alerts.log")
        if stall_at == "mail":
            _wait_for(lambda: handler.connections == 1, "the SMTP connection", process)
        else:
            _wait_for(lambda: len(handler.received) == 1, "the message at the server", process)
        _kill(process)

        [story] = ledger_docs(es, names, kind="story")
        [claim] = ledger_docs(es, names, kind="email")
        assert story["status"] == "pending" and claim["status"] == "sending"
        assert claim["_id"] == email_id(story["batch_key"])

        # within the claim timeout the batch belongs to the killed worker: nobody sends it
        smtp = SmtpSettings(port=port, sender=SENDER, timeout=5)
        busy = deliver(es, names, smtp, AlertSettings(lag=timedelta(0)))
        assert busy.counts["batches_busy"] == 1 and handler.connections == 1

        # a run with a short claim timeout, from the environment, takes it over
        time.sleep(1.2)
        done = subprocess.run(
            [sys.executable, "-m", "newsmon.cli", "alerts", "run"],
            cwd=REPO,
            env={**env, "NEWSMON_ALERTS_CLAIM_TIMEOUT": "1s"},
            capture_output=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        assert "email sent: rule quake, 1 story to desk@example.org" in done.stdout.decode()

        again = subprocess.run(
            [sys.executable, "-m", "newsmon.cli", "alerts", "run"],
            cwd=REPO,
            env={**env, "NEWSMON_ALERTS_CLAIM_TIMEOUT": "1s"},
            capture_output=True,
            timeout=300,
            check=False,
        )
        assert again.returncode == 0, again.stderr.decode()[-2000:]

    # one email, or one duplicate of it when the server had it before the kill: same Message-ID
    assert len(handler.received) == (1 if stall_at == "mail" else 2)
    assert handler.connections == 2
    [email_doc] = ledger_docs(es, names, kind="email")
    assert email_doc["status"] == "sent"
    assert {r.message["Message-ID"] for r in handler.received} == {email_doc["message_id"]}
    assert [s["status"] for s in ledger_docs(es, names, kind="story")] == ["sent"]


# --- Airflow: the same logical date twice --------------------------------------------------------


@pytest.fixture
def airflow_env(
    settings: Settings,
    news_pages: list[DemoPage],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[DemoSite, FaultyHandler]]:
    """news_ingest over a loopback site, news_alerts to a loopback SMTP server, via Connections."""
    quake = news_pages[0]
    with DemoSite(news_pages[:12], feed_count=3) as site, faulty_smtp_server() as (handler, port):
        Path(settings.feeds_file).write_text(site.feeds_yaml())
        rules = tmp_path / "alerts.yaml"
        words = [w for w in quake.title.split() if w.isalnum()][:3]
        rules.write_text(RULES.replace("earthquake", '"' + " ".join(words) + '"'))
        es = urlsplit(settings.es_url)
        env = {
            "AIRFLOW_CONN_NEWSMON_ES": json.dumps(
                {"conn_type": "elasticsearch", "host": es.hostname, "port": es.port}
            ),
            "AIRFLOW_CONN_NEWSMON_SMTP": json.dumps(
                {
                    "conn_type": "smtp",
                    "host": "127.0.0.1",
                    "port": port,
                    "extra": {"from_email": SENDER, "disable_ssl": True, "disable_tls": True},
                }
            ),
            "NEWSMON_FEEDS": settings.feeds_file,
            "NEWSMON_INDEX_PREFIX": settings.index_prefix,
            "NEWSMON_FETCH_ALLOW": "127.0.0.1/32",
            "NEWSMON_FEED_BATCH_SIZE": "2",
            "NEWSMON_ALERTS": str(rules),
            "NEWSMON_ALERTS_LAG": "0s",
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        yield site, handler


@pytest.mark.airflow
def test_the_same_data_interval_twice_under_airflow_ends_in_the_same_state(
    airflow_db: None,
    dagbag: object,
    airflow_env: tuple[DemoSite, FaultyHandler],
    settings: Settings,
    es: Elasticsearch,
) -> None:
    site, handler = airflow_env
    ingest_dag = dagbag.dags["news_ingest"]  # type: ignore[attr-defined]
    alerts_dag = dagbag.dags["news_alerts"]  # type: ignore[attr-defined]
    logical_date = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)

    def run_both() -> None:
        for dag in (ingest_dag, alerts_dag):
            run = dag.test(logical_date=logical_date)
            states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
            assert set(states.values()) == {"success"}, (dag.dag_id, states)

    run_both()
    first = _snapshot(es, settings.index_prefix)
    assert len(first["url_keys"]) == 12 and len(first["feeds"]) == 3
    assert len(handler.received) == 1  # the rule matches one story
    page_requests = sum(n for p, n in site.requests.items() if not p.startswith("/feeds/"))

    run_both()

    assert _snapshot(es, settings.index_prefix) == first
    assert len(handler.received) == 1  # no duplicate alert
    assert sum(n for p, n in site.requests.items() if not p.startswith("/feeds/")) == page_requests
    names = IndexNames(settings.index_prefix)
    assert len(ledger_docs(es, names, kind="story")) == 1
    assert [e["status"] for e in ledger_docs(es, names, kind="email")] == ["sent"]
