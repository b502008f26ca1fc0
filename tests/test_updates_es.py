"""Articles updated in place, on the real node with a loopback news site: a feed listing an
indexed article with a newer date, periodic re-checks by conditional GET (304, changed, the
bounds per article and per run), an update after a rollover, and what alert rules see of it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from newsmon.alerts import AlertSettings, decide
from newsmon.config import FeedConfig, Settings, load_feeds
from newsmon.dev.demo import DemoPage, DemoSite, render_rss
from newsmon.extract.isolate import InProcessExtractor
from newsmon.pipeline import RunSummary, ingest
from newsmon.store import IndexNames
from newsmon.store.maintenance import rollover_articles
from newsmon.updates import UpdateSettings

from .helpers.alerts import ledger_docs, rules_from
from .helpers.sites import Handler, Server

pytestmark = pytest.mark.es

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # the feed's dates
NO_RECHECK = UpdateSettings(recheck_max=0)
ADDED = "Zebrafish quintessence was reported by the harbour authority late on Tuesday evening."


def _with_paragraph(page: DemoPage, sentence: str = ADDED) -> bytes:
    """The page's HTML with a paragraph added before the paragraph holding the page's second
    paragraph of text (so extraction keeps it)."""
    from newsmon.extract.page import extract_page

    html = page.html.decode("utf-8")
    extracted = extract_page(page.html, "http://example.org" + page.path)
    assert extracted is not None
    for paragraph in extracted.text.split("\n\n")[1:]:
        at = html.find(paragraph[:25])
        start = html.rfind("<p", 0, at) if at > 0 else -1
        if start > 0:
            return (html[:start] + f"<p>{sentence}</p>" + html[start:]).encode("utf-8")
    raise AssertionError(f"no paragraph to add to in {page.path}")


def _pages(news_pages: list[DemoPage], count: int) -> list[DemoPage]:
    """``count`` pages to which a paragraph can be added (and found again after extraction)."""
    found = []
    for page in news_pages:
        try:
            _with_paragraph(page)
        except AssertionError:
            continue
        found.append(page)
        if len(found) == count:
            return found
    raise AssertionError("not enough pages")


@pytest.fixture
def site(news_pages: list[DemoPage]) -> Iterator[DemoSite]:
    with DemoSite(_pages(news_pages, 4), feed_count=1) as demo:
        yield demo


def _list(site: DemoSite, dates: dict[int, datetime] | None = None) -> None:
    """Feed 1 lists every page of the site, page n dated ``dates[n]`` (else NOW - n hours)."""
    items = [
        (site.url_of(p), p.title, (dates or {}).get(n, NOW - timedelta(hours=n)))
        for n, p in enumerate(site.pages)
    ]
    site.set_feed("feed1", items)


def _feeds(site: DemoSite, settings: Settings) -> list[FeedConfig]:
    Path(settings.feeds_file).write_text(site.feeds_yaml())
    return load_feeds(settings.feeds_file)


def _docs(es: Elasticsearch, names: IndexNames) -> dict[str, dict[str, Any]]:
    """url -> the article's document, with its ``_id`` and ``_index``."""
    es.indices.refresh(index=names.articles)
    hits = es.search(index=names.articles, size=100)["hits"]["hits"]
    return {
        h["_source"]["url"]: {"_id": h["_id"], "_index": h["_index"], **h["_source"]} for h in hits
    }


def _matching(es: Elasticsearch, names: IndexNames, words: str) -> list[str]:
    es.indices.refresh(index=names.articles)
    query = {"match_phrase": {"terms.text": words}}
    return [
        h["_source"]["url"] for h in es.search(index=names.articles, query=query)["hits"]["hits"]
    ]


def _run(feeds: list[FeedConfig], settings: Settings, es: Elasticsearch, **kw: Any) -> RunSummary:
    summary = ingest(feeds, settings, client=es, extractor=InProcessExtractor(), **kw)
    assert summary.problems == []
    return summary


def test_a_feed_listing_a_newer_date_updates_the_article_in_place(
    site: DemoSite, settings: Settings, es: Elasticsearch
) -> None:
    names = IndexNames(settings.index_prefix)
    feeds = _feeds(site, settings)
    _list(site)
    first = _run(feeds, settings, es, updates=NO_RECHECK)
    assert first.articles["indexed"] == 4
    before = _docs(es, names)
    page = site.pages[0]
    url = site.url_of(page)
    assert before[url]["version"] == 1 and "updated_at" not in before[url]
    assert before[url]["feed_date"].startswith(NOW.date().isoformat())
    assert _matching(es, names, "zebrafish quintessence") == []

    site.add_page(page.path, _with_paragraph(page))
    _list(site, {0: NOW + timedelta(hours=1)})  # the feed dates page 0 later: it was updated
    second = _run(feeds, settings, es, updates=NO_RECHECK)
    after = _docs(es, names)

    assert second.articles["update_listed"] == 1 and second.articles["updated"] == 1
    assert second.articles["already_indexed"] == 4 and second.articles["indexed"] == 0
    doc = after[url]
    assert (doc["_id"], doc["story_id"]) == (before[url]["_id"], before[url]["story_id"])
    assert doc["version"] == 2 and doc["updated_at"] > before[url]["indexed_at"]
    assert doc["indexed_at"] == before[url]["indexed_at"]
    assert ADDED in doc["text"] and doc["content_hash"] != before[url]["content_hash"]
    assert _matching(es, names, "zebrafish quintessence") == [url]
    assert len(after) == 4  # updated where it was, not copied
    assert site.requests[page.path] == 2
    assert all(site.requests[p.path] == 1 for p in site.pages[1:])  # their dates did not change

    # the same dates again: nothing is fetched again
    third = _run(feeds, settings, es, updates=NO_RECHECK)
    assert third.articles["update_listed"] == 0 and third.articles["updated"] == 0
    assert site.requests[page.path] == 2
    assert _docs(es, names)[url]["version"] == 2


def test_feed_dated_refetches_per_run_are_bounded_oldest_handled_first(
    site: DemoSite, settings: Settings, es: Elasticsearch
) -> None:
    """A feed that dates every entry anew on each fetch: at most NEWSMON_UPDATE_MAX refetches a
    run, those whose recorded date is oldest first, so every entry gets its turn."""
    names = IndexNames(settings.index_prefix)
    feeds = _feeds(site, settings)
    _list(site)  # page n dated NOW - n hours: page 3 has the oldest recorded date
    _run(feeds, settings, es, updates=NO_RECHECK)
    two = UpdateSettings(recheck_max=0, update_max=2)

    _list(site, {n: NOW + timedelta(hours=1) for n in range(4)})  # every entry re-dated
    second = _run(feeds, settings, es, updates=two)
    assert (second.articles["update_listed"], second.articles["update_deferred"]) == (2, 2)
    assert [site.requests[p.path] for p in site.pages] == [1, 1, 2, 2]

    _list(site, {n: NOW + timedelta(hours=2) for n in range(4)})  # and again
    third = _run(feeds, settings, es, updates=two)
    assert (third.articles["update_listed"], third.articles["update_deferred"]) == (2, 2)
    assert [site.requests[p.path] for p in site.pages] == [2, 2, 2, 2]  # the others' turn
    recorded = sorted(d["feed_date"][:13] for d in _docs(es, names).values())
    assert recorded == ["2026-11-30T13", "2026-11-30T13", "2026-11-30T14", "2026-11-30T14"]


def test_rechecks_count_not_modified_update_changed_pages_and_keep_their_bounds(
    site: DemoSite, settings: Settings, es: Elasticsearch
) -> None:
    names = IndexNames(settings.index_prefix)
    feeds = _feeds(site, settings)
    _list(site)
    _run(feeds, settings, es, updates=NO_RECHECK)
    later = datetime.now(UTC) + timedelta(hours=7)  # past NEWSMON_RECHECK_AFTER (6h)
    two = UpdateSettings(recheck_max=2, clock=lambda: later)

    # two of the four pages (the per-run bound) are asked again with their ETag: 304
    second = _run(feeds, settings, es, updates=two)
    assert (second.articles["rechecked"], second.articles["recheck_not_modified"]) == (2, 2)
    rechecked = [p for p in site.pages if site.requests[p.path] == 2]
    rest = [p for p in site.pages if site.requests[p.path] == 1]
    assert len(rechecked) == 2 and len(rest) == 2

    # the other two next; one of them has changed meanwhile
    changed = rest[0]
    site.add_page(changed.path, _with_paragraph(changed))
    third = _run(feeds, settings, es, updates=two)
    assert third.articles["rechecked"] == 2
    assert third.articles["recheck_not_modified"] == 1 and third.articles["updated"] == 1
    assert all(site.requests[p.path] == 2 for p in site.pages)
    doc = _docs(es, names)[site.url_of(changed)]
    assert doc["version"] == 2 and ADDED in doc["text"]
    assert _matching(es, names, "zebrafish quintessence") == [site.url_of(changed)]

    # every page was checked at `later`: none is due again at that time (per-article bound)
    fourth = _run(feeds, settings, es, updates=two)
    assert fourth.articles["rechecked"] == 0
    assert all(site.requests[p.path] == 2 for p in site.pages)
    # ... and due again 7 hours on; the updated page answers 304 to its new ETag
    much_later = later + timedelta(hours=7)
    fifth = _run(
        feeds, settings, es, updates=UpdateSettings(recheck_max=10, clock=lambda: much_later)
    )
    assert (fifth.articles["rechecked"], fifth.articles["recheck_not_modified"]) == (4, 4)
    assert fifth.articles["updated"] == 0
    assert _docs(es, names)[site.url_of(changed)]["version"] == 2
    # articles indexed longer ago than NEWSMON_RECHECK_WITHIN (3d) are no longer re-checked
    old = later + timedelta(days=4)
    sixth = _run(feeds, settings, es, updates=UpdateSettings(recheck_max=10, clock=lambda: old))
    assert sixth.articles["rechecked"] == 0


def test_rechecks_use_last_modified_and_compare_the_text_of_a_page_without_validators(
    news_pages: list[DemoPage], settings: Settings, es: Elasticsearch
) -> None:
    """One page answers If-Modified-Since with 304; one sends no validators at all: the same
    text is unchanged, a new paragraph an update."""
    first, second = _pages(news_pages, 2)
    bodies = {"/dated.html": first.html, "/plain.html": second.html}
    modified = "Mon, 30 Nov 2026 10:00:00 GMT"
    server = Server()
    try:

        def dated(handler: Handler) -> None:
            if handler.headers.get("If-Modified-Since") == modified:
                handler.reply(304, b"")
            else:
                handler.reply(200, bodies["/dated.html"], Last_Modified=modified)

        server.routes["/dated.html"] = dated
        server.routes["/plain.html"] = lambda handler: handler.reply(200, bodies["/plain.html"])
        items = [
            (server.base + "/dated.html", first.title, NOW),
            (server.base + "/plain.html", second.title, NOW),
        ]
        feed = render_rss("Plain", server.base, items)
        server.routes["/feed.xml"] = lambda handler: handler.reply(200, feed, "application/rss+xml")
        Path(settings.feeds_file).write_text(
            f"feeds:\n  - id: plain\n    name: Plain\n    url: {server.base}/feed.xml\n"
        )
        feeds = load_feeds(settings.feeds_file)
        _run(feeds, settings, es, updates=NO_RECHECK)
        clock = [datetime.now(UTC) + timedelta(hours=7)]
        every = UpdateSettings(recheck_max=10, clock=lambda: clock[0])

        again = _run(feeds, settings, es, updates=every)
        assert again.articles["rechecked"] == 2
        assert again.articles["recheck_not_modified"] == 1  # /dated.html, by Last-Modified
        assert again.articles["recheck_unchanged"] == 1  # /plain.html: 200, the same text
        assert again.articles["updated"] == 0

        bodies["/plain.html"] = _with_paragraph(second)
        clock[0] += timedelta(hours=7)
        changed = _run(feeds, settings, es, updates=every)
        assert (changed.articles["recheck_not_modified"], changed.articles["updated"]) == (1, 1)
        names = IndexNames(settings.index_prefix)
        assert _matching(es, names, "zebrafish quintessence") == [server.base + "/plain.html"]
        sent = [h.get("If-Modified-Since") for path, h in server.requests if path == "/dated.html"]
        assert sent == [None, modified, modified]
    finally:
        server.close()


def test_an_update_after_a_rollover_lands_in_the_backing_index_that_holds_it(
    site: DemoSite, settings: Settings, es: Elasticsearch
) -> None:
    names = IndexNames(settings.index_prefix)
    feeds = _feeds(site, settings)
    _list(site)
    _run(feeds, settings, es, updates=NO_RECHECK)
    assert rollover_articles(es, names).rolled
    page = site.pages[1]
    site.add_page(page.path, _with_paragraph(page))
    _list(site, {1: NOW + timedelta(hours=2)})
    second = _run(feeds, settings, es, updates=NO_RECHECK)
    assert second.articles["updated"] == 1

    docs = _docs(es, names)
    assert len(docs) == 4
    assert {d["_index"] for d in docs.values()} == {f"{names.articles}-000001"}
    assert docs[site.url_of(page)]["version"] == 2
    assert _matching(es, names, "zebrafish quintessence") == [site.url_of(page)]


def test_an_update_alerts_a_rule_it_now_matches_once_and_never_one_that_alerted_the_story(
    site: DemoSite, settings: Settings, es: Elasticsearch
) -> None:
    names = IndexNames(settings.index_prefix)
    feeds = _feeds(site, settings)
    _list(site)
    _run(feeds, settings, es, updates=NO_RECHECK)
    page = site.pages[0]
    doc = _docs(es, names)[site.url_of(page)]
    old_words = " ".join(doc["text"].split()[:3]).replace('"', "")
    rules = rules_from(
        "alerts:\n"
        f"  - id: before\n    name: Before\n    query: '\"{old_words}\"'\n"
        "    recipients: [desk@example.org]\n"
        "  - id: added\n    name: Added\n    query: zebrafish\n"
        "    recipients: [desk@example.org]\n"
    ).rules
    alerts = AlertSettings(lag=timedelta(0))
    decide(es, names, rules, alerts, now=datetime.now(UTC))
    assert [d["story_id"] for d in ledger_docs(es, names, kind="story", rule_id="before")] == [
        doc["story_id"]
    ]
    assert ledger_docs(es, names, kind="story", rule_id="added") == []

    site.add_page(page.path, _with_paragraph(page))
    _list(site, {0: NOW + timedelta(hours=1)})
    assert _run(feeds, settings, es, updates=NO_RECHECK).articles["updated"] == 1
    report = decide(es, names, rules, alerts, now=datetime.now(UTC))

    assert report.counts["stories_decided"] == 1
    assert report.counts["already_alerted"] == 1  # "before" matched the updated story again
    [added] = ledger_docs(es, names, kind="story", rule_id="added")
    assert added["story_id"] == doc["story_id"]
    assert any("Zebrafish" in s for s in added["snippets"])
    assert len(ledger_docs(es, names, kind="story", rule_id="before")) == 1

    # an unchanged story is not seen again
    quiet = decide(es, names, rules, alerts, now=datetime.now(UTC))
    assert quiet.counts["stories_decided"] == 0 and quiet.counts["matches"] == 0
    assert len(ledger_docs(es, names, kind="story")) == 2


def test_update_settings_from_the_environment() -> None:
    from newsmon.config import ConfigError

    default = UpdateSettings.from_env({})
    assert (default.recheck_after, default.recheck_max) == (timedelta(hours=6), 50)
    off = UpdateSettings.from_env({"NEWSMON_RECHECK_MAX": "0", "NEWSMON_RECHECK_AFTER": "12h"})
    assert (off.recheck_after, off.recheck_max) == (timedelta(hours=12), 0)
    with pytest.raises(ConfigError, match="NEWSMON_RECHECK_MAX"):
        UpdateSettings.from_env({"NEWSMON_RECHECK_MAX": "many"})
    assert UpdateSettings.from_env({"NEWSMON_UPDATE_MAX": "7"}).update_max == 7
    assert default.update_max == 200
    with pytest.raises(ConfigError, match="NEWSMON_UPDATE_MAX"):
        UpdateSettings.from_env({"NEWSMON_UPDATE_MAX": "-1"})
    with pytest.raises(ConfigError, match="NEWSMON_RECHECK_WITHIN"):
        UpdateSettings.from_env({"NEWSMON_RECHECK_WITHIN": "soon"})
