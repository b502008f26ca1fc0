"""Feeds as feedparser's test corpus and its issue threads describe them: the link, title, date
and guid of each entry (tests/fixtures/feeds/corpus.json, our own documents of those cases)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from newsmon.sources.feeds import read_feed

CORPUS = json.loads(
    (Path(__file__).parent / "fixtures" / "feeds" / "corpus.json").read_text(encoding="utf-8")
)
FEED_URL = "https://c.example/feed"


def _read(case: dict[str, Any]) -> Any:
    return read_feed(case["document"].encode("utf-8"), FEED_URL, content_type=case["content_type"])


@pytest.mark.parametrize("case", CORPUS, ids=[case["name"] for case in CORPUS])
def test_corpus_entry_link_title_date(case: dict[str, Any]) -> None:
    parsed = _read(case)
    assert parsed.problem is None
    got = [
        {
            "link": e.url,
            "title": e.title,
            "date": e.published_at.isoformat() if e.published_at else None,
        }
        for e in parsed.entries
    ]
    expected = [{k: x[k] for k in ("link", "title", "date")} for x in case["expect"]]
    assert got == expected


@pytest.mark.parametrize(
    "case", [c for c in CORPUS if any("guid" in x for x in c["expect"])], ids=lambda c: c["name"]
)
def test_corpus_entry_guid(case: dict[str, Any]) -> None:
    parsed = _read(case)
    for entry, expected in zip(parsed.entries, case["expect"], strict=True):
        if "guid" in expected:
            assert entry.guid == expected["guid"]


def test_json_feed_authors_and_html_summary() -> None:
    case = next(c for c in CORPUS if c["name"] == "jsonfeed-10-author")
    assert _read(case).entries[0].authors == ("Ann",)
    case = next(c for c in CORPUS if c["name"] == "jsonfeed-11")
    assert _read(case).entries[0].summary == "x"


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b'{"version": "https://example.com/not-json-feed", "items": []}', "version"),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": 3}', "no list of items"),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": [', "not JSON"),
        (b'{"a":' * 200_000, "nested too deep"),
    ],
    ids=["other-version", "items-not-a-list", "truncated", "deep-nesting"],
)
def test_a_broken_json_feed_is_a_recorded_problem(document: bytes, reason: str) -> None:
    parsed = read_feed(document, FEED_URL, content_type="application/feed+json")
    assert parsed.entries == []
    assert parsed.problem is not None and parsed.problem.startswith("not a readable feed")
    assert reason in parsed.problem


def test_an_empty_json_feed_is_a_valid_empty_feed() -> None:
    parsed = read_feed(b'{"version": "https://jsonfeed.org/version/1", "items": []}', FEED_URL)
    assert (parsed.entries, parsed.problem) == ([], None)


def test_a_json_feed_is_cut_at_the_entry_cap() -> None:
    from newsmon.sources.feeds import MAX_ENTRIES

    items = [{"id": str(i), "url": f"https://c.example/{i}"} for i in range(MAX_ENTRIES + 5)]
    document = json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": items})
    parsed = read_feed(document.encode(), FEED_URL)
    assert len(parsed.entries) == MAX_ENTRIES
    assert parsed.note == f"{MAX_ENTRIES + 5} entries; kept the first {MAX_ENTRIES}"


def test_a_json_id_is_never_taken_for_the_link() -> None:
    document = (
        b'{"version": "https://jsonfeed.org/version/1.1", "items": [{"id": "https://c.example/x"}]}'
    )
    parsed = read_feed(document, FEED_URL)
    assert (parsed.entries, parsed.skipped) == ([], 1)


def test_a_json_feed_through_the_fetcher_and_discovery() -> None:
    from ipaddress import ip_network

    from newsmon.config import FeedConfig, FetchSettings
    from newsmon.sources.discover import discover_feeds
    from newsmon.sources.feeds import FeedOutcome, fetch_feed
    from newsmon.sources.fetch import Fetcher

    from .helpers.sites import Server

    case = next(c for c in CORPUS if c["name"] == "jsonfeed-11")
    server = Server("127.0.0.1")
    body = case["document"].encode()
    server.routes["/feed.json"] = lambda h: h.reply(200, body, "application/feed+json")
    server.routes["/"] = lambda h: h.reply(
        200,
        b'<html><head><link rel="alternate" type="application/feed+json" href="/feed.json">'
        b"</head><body>home</body></html>",
    )
    settings = FetchSettings(allow_networks=(ip_network("127.0.0.1/32"),), deadline=10)
    try:
        with Fetcher(settings) as fetcher:
            result = fetch_feed(
                fetcher, FeedConfig(id="j", url=server.base + "/feed.json", name="J")
            )
            found = discover_feeds(fetcher, server.base + "/", probe=False)
    finally:
        server.close()
    assert result.outcome is FeedOutcome.FETCHED
    assert [e.url for e in result.entries] == [x["link"] for x in case["expect"]]
    assert [(f.url, f.entries) for f in found.feeds] == [(server.base + "/feed.json", 3)]


# --- feedparser's own corpus: tests/fixtures/feeds/feedparser_cases.json -------------------------

FEEDPARSER = json.loads(
    (Path(__file__).parent / "fixtures" / "feeds" / "feedparser_cases.json").read_text(
        encoding="utf-8"
    )
)


def _field(entry: Any, field: str) -> Any:
    if field == "date":
        return entry.published_at.isoformat() if entry.published_at else None
    return {"link": entry.url, "title": entry.title, "guid": entry.guid}[field]


@pytest.mark.parametrize("case", FEEDPARSER["cases"], ids=[c["name"] for c in FEEDPARSER["cases"]])
def test_feedparser_corpus_case(case: dict[str, Any]) -> None:
    parsed = read_feed(case["document"].encode("utf-8"), case["url"])
    assert parsed.problem is None
    assert len(parsed.entries) == case["entries"]
    for check in case["checks"]:
        if check["entry"] is None:  # no page to read: the entry is skipped
            assert check["value"] is None
            continue
        assert _field(parsed.entries[check["entry"]], check["field"]) == check["value"], check


def test_feedparser_corpus_differences_are_explained() -> None:
    checks = [c for case in FEEDPARSER["cases"] for c in case["checks"]]
    assert len(FEEDPARSER["cases"]) >= 250 and len(checks) >= 270
    for check in checks:
        if check["value"] != check["feedparser"]:
            assert check.get("why") in FEEDPARSER["why"], check
    assert "Redistribution and use" in FEEDPARSER["licence"]


@pytest.mark.parametrize(
    "document",
    [
        # the enclosure is also the item's <link>: it is the page
        b'<rss version="2.0"><channel><item><enclosure url="https://c.example/a" type="image/jpeg"'
        b' length="1"/><link>https://c.example/a</link></item></channel></rss>',
        b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><link rel="alternate" type="text/html"'
        b' href="https://c.example/a"/><link rel="enclosure" href="https://c.example/a"/></entry>'
        b"</feed>",
    ],
    ids=["rss", "atom"],
)
def test_an_enclosure_that_is_also_the_page_is_the_link(document: bytes) -> None:
    parsed = read_feed(document, FEED_URL)
    assert [e.url for e in parsed.entries] == ["https://c.example/a"]
