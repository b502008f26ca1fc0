"""The ingest cycle end to end: loopback news site, fetch, extract, the real Elasticsearch node."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from newsmon.config import Settings, load_feeds
from newsmon.dev.demo import DemoSite
from newsmon.pipeline import ingest
from newsmon.store import IndexNames, connect, ensure_indices
from newsmon.urls import canonical_url, url_id

from .helpers.paths import FIXTURES, NEWS_PAGES, SEED
from .helpers.sites import write_feeds

pytestmark = pytest.mark.es


def _count(es: Elasticsearch, settings: Settings, **query: object) -> int:
    names = IndexNames(settings.index_prefix)
    body = {"query": query} if query else {}
    return int(es.count(index=names.articles, **body)["count"])


def _page_requests(site: DemoSite) -> int:
    """Article downloads: neither the feeds nor robots.txt (asked once per host and run)."""
    return sum(
        n for path, n in site.requests.items() if not path.startswith(("/feeds/", "/robots.txt"))
    )


def test_cycle_indexes_every_page_once_and_second_cycle_costs_nothing(
    es: Elasticsearch, settings: Settings, news_site: DemoSite
) -> None:
    feeds = write_feeds(news_site, settings)
    ensure_indices(connect(settings), IndexNames(settings.index_prefix), settings.config_dir)
    unique = {canonical_url(news_site.url_of(p)) for p in news_site.pages}

    first = ingest(feeds, settings)

    assert first.feeds["fetched"] == 3
    assert first.articles["entries"] == len(news_site.pages)
    assert first.articles["indexed"] == len(unique)
    assert first.articles["index_failed"] == 0
    assert _count(es, settings) == len(unique)
    # every page was fetched exactly once, and nearly all extracted from the page itself
    assert _page_requests(news_site) == len(unique)
    assert _count(es, settings, term={"extraction": "full"}) >= 0.95 * len(unique)
    docs = es.search(index=IndexNames(settings.index_prefix).articles, size=500)["hits"]["hits"]
    for hit in docs:
        src = hit["_source"]
        assert hit["_id"] == url_id(src["canonical_url"])
        assert src["feed_id"].startswith("demo-feed")
        assert src["tags"] == ["demo"]
        assert src["title"] and src["indexed_at"] and src["fetched_at"]
        assert src["published_at"]  # the page's date, or the feed's as fallback
        assert src["feed_guid"] == src["url"]  # the demo feeds' guid / Atom id is the link

    feed_requests = sum(n for p, n in news_site.requests.items() if p.startswith("/feeds/"))
    second = ingest(feeds, settings)

    assert second.feeds["not_modified"] == 3
    assert second.articles["indexed"] == 0
    assert _count(es, settings) == len(unique)
    assert _page_requests(news_site) == len(unique)  # no page fetched again
    assert sum(n for p, n in news_site.requests.items() if p.startswith("/feeds/")) == (
        feed_requests + 3
    )


def test_changed_feed_fetches_only_the_new_article(
    es: Elasticsearch, settings: Settings, news_pages: list, news_site: DemoSite
) -> None:
    feeds = write_feeds(news_site, settings)
    ingest(feeds, settings)
    before = dict(news_site.requests)
    extra = news_pages[0]
    new_url = news_site.add_page("/extra.example/2024/new-story.html", extra.html)
    items = [(new_url, "A new story", datetime(2024, 6, 1, tzinfo=UTC))] + [
        (news_site.url_of(p), p.title, datetime(2024, 1, 1, tzinfo=UTC))
        for p in news_site.pages[0::3]
    ]
    news_site.set_feed("feed1", items)

    summary = ingest(feeds, settings)

    assert summary.feeds["fetched"] == 1 and summary.feeds["not_modified"] == 2
    assert summary.articles["indexed"] == 1
    assert summary.articles["already_indexed"] == len(items) - 1
    fetched_pages = {
        p: n - before.get(p, 0)
        for p, n in news_site.requests.items()
        if n != before.get(p, 0) and not p.startswith(("/feeds/", "/robots.txt"))
    }
    assert fetched_pages == {"/extra.example/2024/new-story.html": 1}
    assert _count(es, settings, term={"canonical_url": canonical_url(new_url)}) == 1


def test_rerun_after_lost_feed_state_creates_no_duplicate(
    es: Elasticsearch, settings: Settings, news_site: DemoSite
) -> None:
    feeds = write_feeds(news_site, settings)
    ingest(feeds, settings)
    total = _count(es, settings)
    names = IndexNames(settings.index_prefix)
    for feed in feeds:
        es.delete(index=names.feeds, id=feed.id, refresh=True)

    again = ingest(feeds, settings)

    assert again.feeds["fetched"] == 3  # no validators left: full fetches
    assert again.articles["already_indexed"] == total
    assert again.articles["indexed"] == 0
    assert _count(es, settings) == total


def test_broken_feed_and_pages_do_not_stop_the_others(
    es: Elasticsearch, settings: Settings, news_pages: list
) -> None:
    with DemoSite(news_pages[:6], feed_count=1) as site:
        site.add_page("/feeds/broken.xml", b"<html><body>not a feed</body></html>", "text/html")
        missing = f"{site.base_url}/nowhere.example/gone.html"
        binary = site.add_page("/files.example/photo.png", b"\x89PNG....", "image/png")
        empty = site.add_page("/empty.example/blank.html", b"<html><body></body></html>")
        items = [(site.url_of(p), p.title, datetime(2024, 1, 1, tzinfo=UTC)) for p in site.pages]
        items += [
            (missing, "Gone story", datetime(2024, 2, 1, tzinfo=UTC)),
            (empty, "Empty story", datetime(2024, 2, 2, tzinfo=UTC)),
            (binary, "A photo", datetime(2024, 2, 3, tzinfo=UTC)),
        ]
        site.set_feed("feed1", items)
        yaml_text = site.feeds_yaml() + (
            f"  - id: broken\n    name: Broken\n    url: {site.base_url}/feeds/broken.xml\n"
            f"  - id: unreachable\n    name: Unreachable\n    url: http://127.0.0.1:9/feed.xml\n"
        )
        Path(settings.feeds_file).write_text(yaml_text)
        feeds = load_feeds(settings.feeds_file)

        summary = ingest(feeds, settings)

    assert summary.feeds["fetched"] == 1
    assert summary.feeds["feed_invalid"] == 1
    assert summary.feeds["fetch_failed"] == 1 and summary.feeds["connection_error"] == 1
    assert summary.articles["indexed"] == 9
    assert summary.articles["http_error"] == 1
    assert summary.articles["not_html"] == 1
    assert summary.articles["extraction_empty"] == 1
    assert summary.articles["fallback"] == 3
    names = IndexNames(settings.index_prefix)
    gone = es.get(index=names.articles, id=url_id(canonical_url(missing)))["_source"]
    assert gone["extraction"] == "feed_fallback"
    assert gone["title"] == "Gone story"
    assert gone["fetch_outcome"] == "http_error" and gone["http_status"] == 404
    assert any("broken" in p and "feed_invalid" in p for p in summary.problems)
    ids = ["broken", "unreachable", "demo-feed1"]
    states = {d["_id"]: d["_source"] for d in es.mget(index=names.feeds, ids=ids)["docs"]}
    assert states["unreachable"]["consecutive_failures"] == 1
    assert states["demo-feed1"]["consecutive_failures"] == 0


def test_refused_documents_are_reported_and_their_feed_is_read_again(
    es: Elasticsearch, settings: Settings, news_pages: list
) -> None:
    names = IndexNames(settings.index_prefix)
    ensure_indices(es, names, settings.config_dir)
    with DemoSite(news_pages[:5], feed_count=1) as site:
        feeds = write_feeds(site, settings)
        es.indices.put_settings(
            index=names.first_articles_index, settings={"index.blocks.write": True}
        )
        try:
            refused = ingest(feeds, settings)
        finally:
            es.indices.put_settings(
                index=names.first_articles_index, settings={"index.blocks.write": False}
            )
        state = es.get(index=names.feeds, id="demo-feed1")["_source"]
        again = ingest(feeds, settings)

    assert refused.articles["index_failed"] == 5 and refused.articles["indexed"] == 0
    assert any("cluster_block_exception" in p for p in refused.problems)
    assert state["etag"] is None  # validators not advanced: the items were not safely indexed
    assert again.feeds["fetched"] == 1  # so the feed is read in full again, not a 304
    assert again.articles["indexed"] == 5
    assert _count(es, settings) == 5


def test_seed_page_is_indexed_with_the_title_once_and_only_its_paragraphs(
    es: Elasticsearch, settings: Settings
) -> None:
    html = (FIXTURES / "seed" / "bolnews-us-defence-secretary.html").read_bytes()
    with DemoSite([], feed_count=0) as site:
        url = site.add_page("/www.bolnews.com/pakistan/2021/08/us-defence-secretary/", html)
        title = "US Defence secretary wants to improve Pak-US ties"
        site.set_feed("bol", [(url + "?utm_source=rss", title, datetime(2021, 8, 11, tzinfo=UTC))])
        site.feed_names.append("bol")
        summary = ingest(write_feeds(site, settings), settings)

    assert summary.articles["indexed"] == 1
    doc = es.get(index=IndexNames(settings.index_prefix).articles, id=url_id(canonical_url(url)))
    src = doc["_source"]
    assert src["canonical_url"] == canonical_url(url)  # the utm_source parameter is gone
    assert src["title"] == title
    assert src["text"] == (SEED / "expected-body.txt").read_text(encoding="utf-8").strip()
    assert src["extraction"] == "full" and src["language"] == "en"


def _page(title: str, canonical: str, body: str) -> bytes:
    paragraphs = "".join(f"<p>{body} Paragraph {n} adds detail number {n}.</p>" for n in range(8))
    return (
        f'<html lang="en"><head><title>{title}</title><link rel="canonical" href="{canonical}">'
        f"</head><body><article><h1>{title}</h1>{paragraphs}</article></body></html>"
    ).encode()


def test_a_page_whose_canonical_url_is_indexed_is_that_document(
    es: Elasticsearch, settings: Settings
) -> None:
    body = "The city council approved the new bus routes after a long public hearing."
    other = "A different article about the harbour that shares nothing with the first one."
    with DemoSite([], feed_count=0) as site:
        canonical = f"{site.base_url}/news/2024/bus-routes"
        first = site.add_page("/story?id=1", _page("Bus routes approved", canonical, body))
        print_url = site.add_page("/print/1", _page("Bus routes approved", canonical, body))
        liar = site.add_page("/harbour", _page("Harbour news", canonical, other))
        site.set_feed("a", [(first, "Bus routes approved", datetime(2024, 3, 1, tzinfo=UTC))])
        site.feed_names.append("a")
        feeds = write_feeds(site, settings)
        ingest(feeds, settings)
        site.set_feed(
            "a",
            [
                (first, "Bus routes approved", datetime(2024, 3, 1, tzinfo=UTC)),
                (print_url, "Bus routes approved (print)", datetime(2024, 3, 1, tzinfo=UTC)),
                (liar, "Harbour news", datetime(2024, 3, 2, tzinfo=UTC)),
            ],
        )
        second = ingest(feeds, settings)
        es.delete(index=IndexNames(settings.index_prefix).feeds, id="demo-a", refresh=True)
        third = ingest(feeds, settings)  # no validators: the feed is read in full again

    names = IndexNames(settings.index_prefix)
    holder = es.get(index=names.articles, id=url_id(canonical_url(canonical)))["_source"]
    # the first page was stored under its canonical URL, the print version joined it …
    assert holder["url_keys"] == sorted(
        [canonical_url(canonical), canonical_url(first), canonical_url(print_url)]
    )
    assert second.articles["same_canonical"] == 1
    # … and the page that claims the same canonical with another title stays its own document
    harbour = es.get(index=names.articles, id=url_id(canonical_url(liar)))["_source"]
    assert harbour["title"] == "Harbour news" and harbour["url_keys"] == [canonical_url(liar)]
    assert _count(es, settings) == 2
    # nothing is fetched again: all three URLs are known now
    assert third.articles["already_indexed"] == 3 and third.articles["fetched"] == 0


FOOTER = [
    "Read More News On",
    "Catch all the Pakistan News, Breaking News Event and Latest News Updates on The BOL News",
    "Download The BOL News App to get the Daily News Update & Follow us on Google News.",
]


def test_lines_a_site_repeats_are_learned_and_removed(
    es: Elasticsearch, settings: Settings
) -> None:
    truth = json.loads((NEWS_PAGES / "ground-truth.json").read_text())
    bodies = [v["articleBody"] for _k, v in sorted(truth.items())[:4]]
    with DemoSite([], feed_count=0) as site:
        items = []
        names_ = ["Alpha", "Bravo", "Charlie", "Delta"]
        for n, (body, name) in enumerate(zip(bodies, names_, strict=True)):
            paragraphs = [p for p in body.split("\n") if p.strip()][:12] + FOOTER
            page = (
                f'<html lang="en"><head><title>{name} story</title><meta property='
                f'"article:published_time" content="2024-05-0{n + 1}T10:00:00+00:00"></head>'
                f"<body><article><h1>{name} story</h1>"
                + "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
                + "</article></body></html>"
            ).encode()
            url = site.add_page(f"/www.bolnews.com/story-{n}/", page)
            items.append((url, f"{name} story", datetime(2024, 5, n + 1, tzinfo=UTC)))
        site.set_feed("bol", items)
        site.feed_names.append("bol")
        summary = ingest(write_feeds(site, settings), settings)

    names = IndexNames(settings.index_prefix)
    texts = [
        es.get(index=names.articles, id=url_id(canonical_url(url)))["_source"]["text"]
        for url, _t, _d in items
    ]
    # one batch: the footer is seen in 4 articles on 4 days, so it goes from every one of them
    assert summary.articles["boilerplate_lines_removed"] == 4 * len(FOOTER)
    for text, body in zip(texts, bodies, strict=True):
        assert not any(line in text for line in FOOTER)
        first = next(p for p in body.split("\n") if p.strip())
        assert first.strip()[:60] in text  # the article itself is intact


def test_init_adds_new_fields_to_indices_made_by_an_older_version(
    es: Elasticsearch, settings: Settings
) -> None:
    names = IndexNames(settings.index_prefix)
    old = {"dynamic": "strict", "properties": {"url": {"type": "keyword"}}}
    es.indices.create(
        index=names.first_articles_index,
        mappings=old,
        aliases={names.articles: {"is_write_index": True}},
    )
    ensure_indices(es, names, settings.config_dir)
    ensure_indices(es, names, settings.config_dir)  # idempotent
    fields = es.indices.get_mapping(index=names.articles)[names.first_articles_index]
    properties = fields["mappings"]["properties"]
    assert properties["url"] == {"type": "keyword"}  # kept as it was
    assert properties["story_id"]["type"] == "keyword" and properties["url_keys"]


def test_init_adds_new_sub_fields_and_multi_fields_to_existing_fields(
    es: Elasticsearch, settings: Settings
) -> None:
    names = IndexNames(settings.index_prefix)
    old = {
        "dynamic": "strict",
        "properties": {
            "feed_id": {"type": "keyword"},
            "recent_failures": {"type": "object", "properties": {"at": {"type": "date"}}},
        },
    }
    es.indices.create(index=names.feeds, mappings=old)
    ensure_indices(es, names, settings.config_dir)
    properties = es.indices.get_mapping(index=names.feeds)[names.feeds]["mappings"]["properties"]
    failures = properties["recent_failures"]["properties"]
    assert failures["at"] == {"type": "date"}  # kept
    assert failures["reason"]["type"] == "text" and failures["outcome"]["type"] == "keyword"
    assert properties["failing_since"]["type"] == "date"


def test_missing_fields_names_only_what_an_older_mapping_lacks() -> None:
    from newsmon.store.schema import _missing_fields

    title = {"type": "text", "fields": {"raw": {"type": "keyword"}}}
    wanted = {"title": title, "url": {"type": "keyword"}, "o": {"properties": {"a": {}, "b": {}}}}
    assert _missing_fields(wanted, wanted) == {}
    have = {"title": {"type": "text"}, "url": {"type": "keyword"}, "o": {"properties": {"a": {}}}}
    assert _missing_fields(wanted, have) == {"title": title, "o": {"properties": {"b": {}}}}
