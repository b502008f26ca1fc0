"""A news sitemap as a source in an ingest cycle, on the real Elasticsearch node."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsmon.config import Settings, load_feeds
from newsmon.dev.demo import DemoSite
from newsmon.pipeline import ingest

pytestmark = pytest.mark.es


def test_a_site_without_a_feed_is_read_from_its_news_sitemap(
    settings: Settings, news_pages: list
) -> None:
    with DemoSite(news_pages[:2], feed_count=0) as site:
        urls = "".join(
            f"<url><loc>{site.url_of(p)}</loc><news:news><news:publication_date>2024-05-01"
            f"</news:publication_date><news:title>Sitemap story {n}</news:title></news:news></url>"
            for n, p in enumerate(site.pages)
        )
        site.add_page(
            "/news-sitemap.xml",
            (
                '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
                ' xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">'
                f"{urls}</urlset>"
            ).encode(),
            "application/xml",
        )
        Path(settings.feeds_file).write_text(
            "feeds:\n  - id: smap\n    name: Sitemap\n"
            f"    url: {site.base_url}/news-sitemap.xml\n    type: sitemap\n"
        )
        first = ingest(load_feeds(settings.feeds_file), settings)
        second = ingest(load_feeds(settings.feeds_file), settings)

    assert first.feeds["fetched"] == 1
    assert first.articles["entries"] == 2
    assert first.articles["indexed"] == 2
    assert second.feeds["fetched"] + second.feeds["not_modified"] == 1
    assert second.articles["indexed"] == 0
