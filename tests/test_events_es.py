"""Events end to end on the real node: different outlets' reports of one happening share an event;
a site's other report on the same topic, and another outlet's piece on the same subject that is
not that happening, do not; a run killed before its events were written ends like a clean run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from newsmon.config import Settings, load_feeds
from newsmon.dev.demo import DemoPage
from newsmon.pipeline import ingest
from newsmon.store import IndexNames

from .helpers.events import (
    DOOBIE,
    HONG_KONG,
    PALACE,
    PLAGUE,
    STADIA,
    STADIA_GUIDE,
    Outlets,
    pages_of,
)
from .helpers.paths import REPO

pytestmark = pytest.mark.es


@pytest.fixture
def outlets(settings: Settings, news_pages: list[DemoPage]) -> Iterator[Outlets]:
    one = [[p] for p in pages_of(news_pages, (*PLAGUE[:3], *DOOBIE, *STADIA, STADIA_GUIDE))]
    express = pages_of(news_pages, (PLAGUE[3], HONG_KONG))  # one site, two happenings
    theatre = pages_of(news_pages, PALACE)  # one site, one topic, two happenings
    served = Outlets(settings, [*one, express, theatre])
    yield served
    served.stop()


def _events(es: Elasticsearch, names: IndexNames) -> dict[str, dict]:
    index = names.index("events")
    es.indices.refresh(index=index)
    hits = es.search(index=index, size=500, query={"match_all": {}})["hits"]["hits"]
    return {h["_id"]: h["_source"] for h in hits}


def _event_of(events: dict[str, dict], article_id: str) -> str:
    """The event holding the story the article started (articles here each start a story)."""
    holding = [e for e, src in events.items() if article_id in src["story_ids"]]
    assert len(holding) == 1, f"{article_id} is in {len(holding)} events"
    return holding[0]


def _check_events(es: Elasticsearch, names: IndexNames, ids: dict[str, str]) -> None:
    events = _events(es, names)
    of = {p: _event_of(events, ids[p]) for p in ids}
    plague = events[of[PLAGUE[0]]]
    assert {of[p] for p in PLAGUE} == {of[PLAGUE[0]]}  # four outlets, one event
    assert plague["story_count"] == 4 and plague["outlet_count"] == 4
    assert plague["event_id"] == of[PLAGUE[0]]
    assert {of[p] for p in DOOBIE} == {of[DOOBIE[0]]}
    assert events[of[DOOBIE[0]]]["story_count"] == 3
    assert of[STADIA[0]] == of[STADIA[1]]
    # not joined: another piece on Stadia, the Express's other report, the theatre's two posts
    assert of[STADIA_GUIDE] != of[STADIA[0]]
    assert of[HONG_KONG] != of[PLAGUE[3]]
    assert of[PALACE[0]] != of[PALACE[1]]
    # nothing else was joined: 13 stories in 7 events (plague, Doobie, Stadia, 4 alone)
    assert len(events) == len(set(of.values())) == 7
    assert sum(e["story_count"] for e in events.values()) == len(ids) == 13


def _newsmon(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "newsmon.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_reports_of_one_happening_join_and_others_do_not(
    es: Elasticsearch, settings: Settings, outlets: Outlets
) -> None:
    summary = ingest(load_feeds(settings.feeds_file), settings)
    assert summary.articles["indexed"] == 13, summary.as_dict()
    assert summary.articles["story_new"] == 13  # each report is its own story
    assert summary.articles["event_new"] == 7
    assert summary.articles["event_joined"] == 6  # 3 + 2 + 1 joined an earlier report
    names = IndexNames(settings.index_prefix)
    _check_events(es, names, outlets.ids)
    before_cli = _events(es, names)
    plague = before_cli[_event_of(before_cli, outlets.ids[PLAGUE[0]])]
    assert "plague" in plague["title"].lower()
    assert plague["first_published"] <= plague["last_published"]

    # the command line: events reported by 3 outlets or more, and one by an article's id
    env = {
        "NEWSMON_ES_URL": settings.es_url,
        "NEWSMON_INDEX_PREFIX": settings.index_prefix,
        "PATH": "/usr/bin:/bin",
    }
    listed = _newsmon(["events", "--min-outlets", "3", "--json"], env)
    assert sorted(e["story_count"] for e in json.loads(listed)) == [3, 4]
    shown = _newsmon(["event", outlets.ids[PLAGUE[2]]], env)
    assert shown.startswith(f"event {_event_of(before_cli, outlets.ids[PLAGUE[0]])}:")
    assert "4 stories, 4 article(s) in 4 outlet(s)" in shown

    # a second run finds nothing new and changes no event
    before = _events(es, names)
    again = ingest(load_feeds(settings.feeds_file), settings)
    assert again.articles["indexed"] == 0
    assert _events(es, names) == before


def test_a_narrow_window_keeps_reports_days_apart_in_separate_events(
    es: Elasticsearch, settings: Settings, outlets: Outlets, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the plague reports were published 18 and 19 November: 1 hour apart is too narrow for most
    monkeypatch.setenv("NEWSMON_EVENT_WINDOW", "1h")
    ingest(load_feeds(settings.feeds_file), settings)
    events = _events(es, IndexNames(settings.index_prefix))
    assert len({_event_of(events, outlets.ids[p]) for p in PLAGUE}) >= 3


@pytest.mark.slow
def test_a_run_killed_before_its_events_were_written_ends_like_a_clean_run(
    es: Elasticsearch, settings: Settings, outlets: Outlets, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "NEWSMON_ES_URL": settings.es_url,
        "NEWSMON_INDEX_PREFIX": settings.index_prefix,
        "NEWSMON_CONFIG_DIR": settings.config_dir,
        "NEWSMON_FEEDS": settings.feeds_file,
        "NEWSMON_FETCH_ALLOW": "127.0.0.0/8",
    }
    code = (  # SIGKILL itself when the second batch's events are about to be written
        "import os, signal, sys, newsmon.pipeline as p; from newsmon.cli import main\n"
        "p.INDEX_BATCH = 5\n"
        "real, calls = p.assign_events, []\n"
        "def assign_events(*args, **kwargs):\n"
        "    calls.append(1)\n"
        "    if len(calls) == 2: os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return real(*args, **kwargs)\n"
        "p.assign_events = assign_events\n"
        "sys.exit(main(['run', '--quiet']))"
    )
    killed = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, timeout=300
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    names = IndexNames(settings.index_prefix)
    assert 0 < sum(e["story_count"] for e in _events(es, names).values()) < 13
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
    assert summary["stories_settled"] >= 5  # the batch whose events were lost, at least
    assert summary.get("event_settled", 0) >= 1  # … and the first batch's, already in events
    _check_events(es, names, outlets.ids)
