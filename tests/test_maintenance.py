"""newsmon es maintain on the real node: rollover, and the pipeline across backing indices;
deleting by a point-in-time search and bulk deletes; the retention of each index."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from newsmon.article import Article, ArticleSource
from newsmon.config import ConfigError, Settings, load_feeds
from newsmon.dev.demo import DemoPage, DemoSite
from newsmon.maintenance import MaintenanceSettings, maintain
from newsmon.pipeline import ingest
from newsmon.store import IndexNames, bulk_write, ensure_indices
from newsmon.store.articles import (
    articles_by_id,
    indexed_states,
    update_articles,
    write_articles,
)
from newsmon.store.maintenance import delete_matching, rollover_articles
from newsmon.store.stories import find_story, story_members

pytestmark = pytest.mark.es

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
NEWSMON = Path(sys.executable).with_name("newsmon")
OFF = MaintenanceSettings(
    rollover_max_age=None,
    rollover_max_size=None,
    lines_retention=None,
    ledger_retention=None,
    state_retention=None,
)


def _article(url: str, title: str = "A title") -> Article:
    return Article(
        url=url,
        canonical_url=url,
        url_keys=(url,),
        domain="a.example",
        site_name="a.example",
        title=title,
        text="Some words of the article.",
        extraction=ArticleSource.FULL,
        fetched_at=NOW,
        indexed_at=NOW,
        story_id="s-" + url[-1],
    )


def _backing(es: Elasticsearch, names: IndexNames) -> list[str]:
    return sorted(es.indices.get_alias(name=names.articles))


def test_reads_and_writes_of_existing_articles_reach_the_index_holding_them(
    settings: Settings, es: Elasticsearch
) -> None:
    names = IndexNames(settings.index_prefix)
    ensure_indices(es, names, settings.config_dir)
    report = write_articles(es, names, [("create", "old", _article("https://a.example/1"))])
    assert report.ok == ["old"]
    rolled = rollover_articles(es, names)
    assert rolled.rolled and rolled.new_index.endswith("-000002")
    write_articles(es, names, [("create", "new", _article("https://a.example/2"))])

    # replacing the old article and updating it land in the first backing index, not as copies
    replaced = write_articles(
        es, names, [("index", "old", _article("https://a.example/1", "Replaced"))]
    )
    updated = update_articles(es, names, {"old": {"url_keys": ["https://a.example/1", "k"]}})
    es.indices.refresh(index=names.articles)

    assert replaced.ok == ["old"] and updated.ok == ["old"]
    hits = es.search(index=names.articles, query={"ids": {"values": ["old"]}})["hits"]["hits"]
    assert [(h["_index"], h["_source"]["title"]) for h in hits] == [
        (f"{names.articles}-000001", "Replaced")
    ]
    found = articles_by_id(es, names, ["old", "new", "none"], fields=["title", "url_keys"])
    assert found["old"] == {"title": "Replaced", "url_keys": ["https://a.example/1", "k"]}
    assert set(found) == {"old", "new"}
    assert {m.article_id for m in story_members(es, names, ["old", "new"])} == {"old", "new"}
    states = indexed_states(es, names, {"old": "https://a.example/1", "new": "https://a.example/2"})
    assert set(states) == {"old", "new"}


def test_a_run_after_a_rollover_refetches_a_fallback_in_place_and_adds_new_articles(
    settings: Settings, es: Elasticsearch, news_pages: list[DemoPage]
) -> None:
    pages = news_pages[:8]
    names = IndexNames(settings.index_prefix)
    with DemoSite(pages, feed_count=1) as site:
        late = site.base_url + "/late/story.html"  # not served yet: HTTP 404, a fallback
        items = [(site.url_of(p), p.title, NOW - timedelta(hours=i)) for i, p in enumerate(pages)]
        site.set_feed("feed1", [*items[:4], (late, "A late story", NOW)])
        Path(settings.feeds_file).write_text(site.feeds_yaml())
        feeds = load_feeds(settings.feeds_file)
        first = ingest(feeds, settings, client=es)
        assert first.articles["fallback"] == 1 and first.articles["indexed"] == 5

        assert maintain(settings, replace(OFF, rollover_max_docs=1), client=es).rollover
        site.add_page("/late/story.html", pages[4].html.replace(b"<title>", b"<title>Late "))
        site.set_feed("feed1", [*items, (late, "A late story", NOW)])
        second = ingest(feeds, settings, client=es)
        es.indices.refresh(index=names.articles)

    assert second.problems == []
    assert second.articles["refetch_fallback"] == 1
    assert second.articles["already_indexed"] == 4
    # the refetched page replaced its fallback where it was; the new articles went to -000002
    by_index: dict[str, int] = {}
    for hit in es.search(index=names.articles, size=100, source=False)["hits"]["hits"]:
        by_index[hit["_index"]] = by_index.get(hit["_index"], 0) + 1
    assert by_index == {f"{names.articles}-000001": 5, f"{names.articles}-000002": 4}
    any_id = es.search(index=names.articles, size=1)["hits"]["hits"][0]["_id"]
    assert find_story(es, names, any_id) is not None


def test_delete_matching_pages_through_a_point_in_time(
    settings: Settings, es: Elasticsearch, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = IndexNames(settings.index_prefix)
    ensure_indices(es, names, settings.config_dir)
    lines = names.index("lines")
    docs = [
        (
            "create",
            f"d{n}",
            {"domain": "a.example", "line": f"l{n}", "day": f"20{10 + n % 3}-01-01"},
        )
        for n in range(250)
    ]
    assert not bulk_write(es, lines, docs, refresh=True).failed
    monkeypatch.setattr("newsmon.store.maintenance.PAGE", 40)  # several pages
    old = {"range": {"day": {"lt": "2012-01-01"}}}  # 2010 and 2011: 167 of 250

    assert delete_matching(es, lines, old, dry_run=True) == 167
    assert es.count(index=lines)["count"] == 250
    assert delete_matching(es, lines, old) == 167
    es.indices.refresh(index=lines)
    assert es.count(index=lines)["count"] == 83
    assert delete_matching(es, lines, old) == 0
    assert delete_matching(es, names.index("no-such-index"), old) == 0


def test_retention_keeps_what_is_recent_or_still_to_send(
    settings: Settings, es: Elasticsearch
) -> None:
    names = IndexNames(settings.index_prefix)
    ensure_indices(es, names, settings.config_dir)
    long_ago, lately = "2026-01-01T00:00:00Z", "2026-11-30T00:00:00Z"
    bulk_write(
        es,
        names.index("lines"),
        [
            ("create", "seen-long-ago", {"line": "a", "day": "2026-11-30", "seen_at": long_ago}),
            ("create", "seen-lately", {"line": "b", "day": "2019-11-19", "seen_at": lately}),
            ("create", "legacy-old", {"line": "c", "day": "2026-01-01"}),
            ("create", "legacy-new", {"line": "d", "day": "2026-11-30"}),
        ],
        refresh=True,
    )
    ledger = [
        ("story-old", {"kind": "story", "decided_at": long_ago, "status": "sent"}),
        ("story-new", {"kind": "story", "decided_at": lately, "status": "sent"}),
        ("email-sent-old", {"kind": "email", "status": "sent", "updated_at": long_ago}),
        ("email-failed-old", {"kind": "email", "status": "failed", "updated_at": long_ago}),
        ("email-retry-old", {"kind": "email", "status": "retry", "updated_at": long_ago}),
        ("email-pending-old", {"kind": "email", "status": "pending", "updated_at": long_ago}),
        ("email-sent-new", {"kind": "email", "status": "sent", "updated_at": lately}),
    ]
    ledger_index = names.index("alert-ledger")
    bulk_write(es, ledger_index, [("create", i, d) for i, d in ledger], refresh=True)
    states = [("gone-rule", long_ago), ("live-rule", lately)]
    bulk_write(
        es,
        names.index("alert-state"),
        [("create", i, {"rule_id": i, "evaluated_at": t}) for i, t in states],
        refresh=True,
    )

    report = maintain(settings, replace(OFF, **_days(90, 180, 90)), client=es, now=NOW)

    assert report.deleted == {
        names.index("lines"): 2,
        ledger_index: 3,
        names.index("alert-state"): 1,
    }
    es.indices.refresh(index=f"{names.index('lines')},{ledger_index},{names.index('alert-state')}")

    def ids(index: str) -> set[str]:
        return {h["_id"] for h in es.search(index=index, size=50)["hits"]["hits"]}

    assert ids(names.index("lines")) == {"seen-lately", "legacy-new"}
    assert ids(ledger_index) == {
        "story-new",
        "email-retry-old",
        "email-pending-old",
        "email-sent-new",
    }
    assert ids(names.index("alert-state")) == {"live-rule"}
    again = maintain(settings, replace(OFF, **_days(90, 180, 90)), client=es, now=NOW)
    assert set(again.deleted.values()) == {0}


def _days(lines: int, ledger: int, state: int) -> dict[str, timedelta]:
    return {
        "lines_retention": timedelta(days=lines),
        "ledger_retention": timedelta(days=ledger),
        "state_retention": timedelta(days=state),
    }


def test_rollover_conditions_decide_and_a_dry_run_changes_nothing(
    settings: Settings, es: Elasticsearch
) -> None:
    names = IndexNames(settings.index_prefix)
    ensure_indices(es, names, settings.config_dir)
    kept = maintain(settings, replace(OFF, rollover_max_age="30d"), client=es)
    assert kept.rollover is not None and not kept.rollover.rolled
    assert "stays the write index" in kept.render()
    dry = maintain(settings, replace(OFF, rollover_max_docs=0), client=es, dry_run=True)
    assert dry.rollover is not None and dry.rollover.rolled and dry.dry_run
    assert _backing(es, names) == [f"{names.articles}-000001"]
    assert maintain(settings, OFF, client=es).rollover is None


def test_settings_from_the_environment_report_every_problem_at_once() -> None:
    env = {
        "NEWSMON_ROLLOVER_MAX_AGE": "a month",
        "NEWSMON_ROLLOVER_MAX_DOCS": "many",
        "NEWSMON_LEDGER_RETENTION": "forever",
        "NEWSMON_LINES_RETENTION": "",  # empty: off
    }
    with pytest.raises(ConfigError) as caught:
        MaintenanceSettings.from_env(env)
    message = str(caught.value)
    for name in (
        "NEWSMON_ROLLOVER_MAX_AGE",
        "NEWSMON_ROLLOVER_MAX_DOCS",
        "NEWSMON_LEDGER_RETENTION",
    ):
        assert name in message
    ok = MaintenanceSettings.from_env(
        {"NEWSMON_LINES_RETENTION": "", "NEWSMON_ROLLOVER_MAX_DOCS": "5"}
    )
    assert ok.lines_retention is None and ok.rollover_max_docs == 5
    assert MaintenanceSettings.from_env({}) == MaintenanceSettings()


def test_the_command_says_what_it_did(settings: Settings, es: Elasticsearch) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "NEWSMON_ES_URL": settings.es_url,
        "NEWSMON_INDEX_PREFIX": settings.index_prefix,
        "NEWSMON_CONFIG_DIR": settings.config_dir,
        "NEWSMON_ROLLOVER_MAX_DOCS": "0",
    }
    done = subprocess.run(
        [str(NEWSMON), "es", "maintain"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "rollover: rolled over" in done.stdout and "-000002" in done.stdout
    assert f"{settings.index_prefix}lines: deleted 0 old document(s)" in done.stdout
