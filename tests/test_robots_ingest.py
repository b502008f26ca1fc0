"""robots.txt in an ingest cycle: a disallowed article is not downloaded, it is indexed from its
feed item with the outcome ``robots_disallowed``; the others are fetched as usual."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from elasticsearch import Elasticsearch

from newsmon.config import Settings
from newsmon.dev.demo import DemoSite
from newsmon.pipeline import ingest
from newsmon.store import IndexNames
from newsmon.urls import canonical_url, url_id

from .helpers.sites import write_feeds

pytestmark = pytest.mark.es


def test_a_disallowed_article_is_indexed_from_its_feed_item(
    es: Elasticsearch, settings: Settings, news_pages: list
) -> None:
    with DemoSite(news_pages[:3], feed_count=1) as site:
        urls = [site.url_of(p) for p in site.pages]
        blocked = urlsplit(urls[0]).path
        site.add_page("/robots.txt", f"User-agent: *\nDisallow: {blocked}\n".encode(), "text/plain")
        site.set_feed(
            "feed1",
            [(u, f"Story {n}", datetime(2024, 3, n + 1, tzinfo=UTC)) for n, u in enumerate(urls)],
        )
        summary = ingest(write_feeds(site, settings), settings)
        requested = dict(site.requests)

    assert summary.articles["robots_disallowed"] == 1
    assert summary.articles["fetched"] == 2
    assert summary.articles["fallback"] == 1
    assert summary.articles["indexed"] == 3
    assert requested.get(blocked, 0) == 0  # never downloaded
    assert requested["/robots.txt"] == 1  # once for the host, not once per article
    doc = es.get(
        index=IndexNames(settings.index_prefix).articles, id=url_id(canonical_url(urls[0]))
    )
    source = doc["_source"]
    assert source["extraction"] == "feed_fallback"
    assert source["fetch_outcome"] == "robots_disallowed"
    assert source["title"] == "Story 0"
    assert f"Disallow: {blocked}" in source["fetch_reason"]
    assert any("robots_disallowed" in p for p in summary.problems)


def test_robots_can_be_switched_off(
    es: Elasticsearch, settings: Settings, news_pages: list
) -> None:
    settings = replace(settings, fetch=replace(settings.fetch, robots=False))
    with DemoSite(news_pages[:2], feed_count=1) as site:
        site.add_page("/robots.txt", b"User-agent: *\nDisallow: /\n", "text/plain")
        summary = ingest(write_feeds(site, settings), settings)
        requested = dict(site.requests)
    assert summary.articles["robots_disallowed"] == 0
    assert summary.articles["fetched"] == 2
    assert "/robots.txt" not in requested
