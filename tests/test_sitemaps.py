"""News sitemaps and sitemap indexes as a source: parsing, limits, and fetching from a loopback
server with conditional GET."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from ipaddress import ip_network

import pytest

from newsmon.config import ConfigError, FeedConfig, FetchSettings, parse_feeds
from newsmon.sources.feeds import MAX_ENTRIES, MAX_FEED_BYTES, FeedOutcome
from newsmon.sources.fetch import Fetcher, Validators
from newsmon.sources.sitemaps import MAX_CHILDREN, fetch_sitemap, gunzip, read_sitemap

from .helpers.sites import Server

NS = (
    'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
    'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"'
)


def _news(base: str, *items: tuple[str, str, str]) -> bytes:
    urls = "".join(
        f"<url><loc>{base}{path}</loc><news:news><news:publication><news:name>Site</news:name>"
        f"<news:language>en</news:language></news:publication>"
        f"<news:publication_date>{date}</news:publication_date>"
        f"<news:title>{title}</news:title><news:keywords>a, b</news:keywords></news:news></url>"
        for path, title, date in items
    )
    return f'<?xml version="1.0" encoding="UTF-8"?><urlset {NS}>{urls}</urlset>'.encode()


def _index(*children: tuple[str, str]) -> bytes:
    items = "".join(
        f"<sitemap><loc>{url}</loc><lastmod>{mod}</lastmod></sitemap>" for url, mod in children
    )
    return (
        f'<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"{items}</sitemapindex>"
    ).encode()


def test_a_news_sitemap_gives_links_titles_dates_and_keywords() -> None:
    content = _news(
        "https://s.example",
        ("/2024/05/one", "Why 2 &lt; 3", "2024-05-01T10:00:00+02:00"),
        ("/2024/05/two", "Two", "2024-05-02"),
    )
    sitemap = read_sitemap(content)
    assert sitemap.problem is None and not sitemap.is_index
    assert [e["link"] for e in sitemap.entries] == [
        "https://s.example/2024/05/one",
        "https://s.example/2024/05/two",
    ]
    assert sitemap.entries[0]["title"] == "Why 2 < 3"
    assert sitemap.entries[0]["published_parsed"][:4] == (2024, 5, 1, 8)
    assert [t["term"] for t in sitemap.entries[0]["tags"]] == ["a", "b"]


def test_a_plain_sitemap_uses_lastmod() -> None:
    content = (
        b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url>'
        b"<loc>https://s.example/a</loc><lastmod>2024-05-03T00:00:00Z</lastmod></url></urlset>"
    )
    entry = read_sitemap(content).entries[0]
    assert "title" not in entry and entry["updated_parsed"][:3] == (2024, 5, 3)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"<html><body>no</body></html>", "not a sitemap (root element 'html')"),
        (b"<urlset><url><loc>x", "not a readable sitemap"),
        (
            b'<!DOCTYPE urlset [<!ENTITY a "b">]><urlset><url><loc>&a;</loc></url></urlset>',
            "refused: the sitemap declares the XML entity 'a'",
        ),
        (
            b'<!DOCTYPE urlset [<!ENTITY x SYSTEM "file:///etc/passwd">]><urlset/>',
            "refused: the sitemap declares the XML entity 'x'",
        ),
    ],
    ids=["html", "truncated", "entity", "external-entity"],
)
def test_what_is_not_a_sitemap(content: bytes, problem: str) -> None:
    result = read_sitemap(content)
    assert result.entries == [] and result.problem is not None
    assert result.problem.startswith(problem)


def test_a_huge_sitemap_is_read_up_to_the_entry_cap() -> None:
    items = [(f"/a/{n}", f"T{n}", "2024-05-01") for n in range(MAX_ENTRIES + 50)]
    sitemap = read_sitemap(_news("https://s.example", *items))
    assert len(sitemap.entries) == MAX_ENTRIES


def test_the_type_field_of_a_feed() -> None:
    feeds = parse_feeds(
        "feeds:\n  - id: s\n    name: S\n    url: https://s.example/news-sitemap.xml\n"
        "    type: sitemap\n"
    )
    assert feeds[0].type == "sitemap"
    assert parse_feeds("feeds:\n  - id: f\n    name: F\n    url: https://f.example/\n")[0].type == (
        "feed"
    )
    with pytest.raises(ConfigError, match="type"):
        parse_feeds("feeds:\n  - id: f\n    name: F\n    url: https://f.example/\n    type: x\n")


# --- fetched from a server -----------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[Server]:
    served = Server("127.0.0.1")
    try:
        yield served
    finally:
        served.close()


def _fetcher() -> Fetcher:
    return Fetcher(FetchSettings(allow_networks=(ip_network("127.0.0.0/8"),), deadline=10))


def test_a_sitemap_index_reads_its_newest_same_site_children(server: Server) -> None:
    base = server.base
    children = [(f"{base}/sm-{n}.xml", f"2024-05-0{n}") for n in range(1, MAX_CHILDREN + 2)]
    children.append(("http://127.0.0.2:9/elsewhere.xml", "2024-05-09"))
    server.routes["/index.xml"] = lambda h: h.reply(200, _index(*children), "application/xml")
    for n in range(1, MAX_CHILDREN + 2):
        body = _news(base, (f"/news/{n}", f"Story {n}", f"2024-05-0{n}"))
        server.routes[f"/sm-{n}.xml"] = lambda h, b=body: h.reply(200, b, "text/xml")
    feed = FeedConfig(id="s", name="S", url=base + "/index.xml", type="sitemap")
    with _fetcher() as fetcher:
        result = fetch_sitemap(fetcher, feed)
    assert result.outcome is FeedOutcome.FETCHED
    newest = list(range(MAX_CHILDREN + 1, 1, -1))  # the oldest child is left for later
    assert [e.url for e in result.entries] == [f"{base}/news/{n}" for n in newest]
    assert [e.title for e in result.entries] == [f"Story {n}" for n in newest]
    assert (
        result.reason is not None and "1 child sitemap(s) on other sites ignored" in result.reason
    )
    requested = [path for path, _ in server.requests]
    assert "/sm-1.xml" not in requested


def test_a_sitemap_is_fetched_conditionally(server: Server) -> None:
    body = _news(server.base, ("/news/1", "One", "2024-05-01"))

    def route(handler: object) -> None:
        if handler.headers.get("If-None-Match") == '"v1"':  # type: ignore[attr-defined]
            handler.reply(304, b"")  # type: ignore[attr-defined]
        else:
            handler.reply(200, body, "application/xml", ETag='"v1"')  # type: ignore[attr-defined]

    server.routes["/news.xml"] = route
    feed = FeedConfig(id="s", name="S", url=server.base + "/news.xml", type="sitemap")
    with _fetcher() as fetcher:
        first = fetch_sitemap(fetcher, feed)
        second = fetch_sitemap(fetcher, feed, first.validators)
    assert first.outcome is FeedOutcome.FETCHED and first.validators == Validators(etag='"v1"')
    assert [e.url for e in first.entries] == [server.base + "/news/1"]
    assert second.outcome is FeedOutcome.NOT_MODIFIED and second.entries == ()


def test_a_broken_sitemap_is_feed_invalid_and_a_missing_one_fetch_failed(server: Server) -> None:
    server.routes["/bad.xml"] = lambda h: h.reply(200, b"<html>no</html>", "text/html")
    with _fetcher() as fetcher:
        bad = fetch_sitemap(fetcher, FeedConfig(id="b", name="B", url=server.base + "/bad.xml"))
        gone = fetch_sitemap(fetcher, FeedConfig(id="g", name="G", url=server.base + "/gone.xml"))
    assert bad.outcome is FeedOutcome.INVALID and bad.reason is not None
    assert gone.outcome is FeedOutcome.FETCH_FAILED and gone.status == 404


# --- gzip-compressed sitemaps (sitemap.xml.gz) ---------------------------------------------------


def test_a_gzip_sitemap_is_read_like_a_plain_one() -> None:
    plain = _news("https://s.example", ("/a", "A", "2024-05-01"))
    sitemap = read_sitemap(gzip.compress(plain))
    assert sitemap.problem is None
    assert [e["link"] for e in sitemap.entries] == ["https://s.example/a"]
    assert read_sitemap(gzip.compress(plain)).entries == read_sitemap(plain).entries


def test_a_gzip_bomb_is_refused_without_decompressing_it_whole() -> None:
    # 32 MiB of zeros after the urlset start, some 32 KiB compressed
    bomb = gzip.compress(b"<urlset>" + b"\0" * (MAX_FEED_BYTES * 4), compresslevel=9)
    assert len(bomb) < MAX_FEED_BYTES
    result = read_sitemap(bomb)
    assert result.entries == []
    assert result.problem == f"gzip sitemap decompresses to over the {MAX_FEED_BYTES}-byte limit"
    out, problem = gunzip(gzip.compress(b"x" * 101), limit=100)
    assert out is None and problem is not None and "over the 100-byte limit" in problem
    assert gunzip(gzip.compress(b"x" * 100), limit=100) == (b"x" * 100, None)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (gzip.compress(b"<urlset/>")[:-12], "truncated"),
        (b"\x1f\x8b\x08\x00garbage", "not a readable gzip sitemap"),
    ],
    ids=["truncated", "garbage"],
)
def test_a_broken_gzip_sitemap_is_a_problem(content: bytes, problem: str) -> None:
    result = read_sitemap(content)
    assert result.entries == [] and result.problem is not None and problem in result.problem


@pytest.mark.parametrize("media_type", ["application/x-gzip", "application/gzip", ""])
def test_a_gzip_sitemap_index_and_children_from_a_server(server: Server, media_type: str) -> None:
    base = server.base
    index = gzip.compress(_index((f"{base}/sm-1.xml.gz", "2024-05-01")))
    child = gzip.compress(_news(base, ("/news/1", "Story 1", "2024-05-01")))
    kind = media_type or "application/octet-stream"
    server.routes["/sitemap.xml.gz"] = lambda h: h.reply(200, index, kind, ETag='"g1"')
    server.routes["/sm-1.xml.gz"] = lambda h: h.reply(200, child, kind)
    feed = FeedConfig(id="s", name="S", url=base + "/sitemap.xml.gz", type="sitemap")
    with _fetcher() as fetcher:
        result = fetch_sitemap(fetcher, feed)
    assert result.outcome is FeedOutcome.FETCHED, result.reason
    assert [(e.url, e.title) for e in result.entries] == [(f"{base}/news/1", "Story 1")]
    assert result.validators == Validators(etag='"g1"')


def test_a_gzip_bomb_from_a_server_is_feed_invalid(server: Server) -> None:
    bomb = gzip.compress(b"<urlset>" + b" " * (MAX_FEED_BYTES * 2), compresslevel=9)
    server.routes["/big.xml.gz"] = lambda h: h.reply(200, bomb, "application/x-gzip")
    feed = FeedConfig(id="s", name="S", url=server.base + "/big.xml.gz", type="sitemap")
    with _fetcher() as fetcher:
        result = fetch_sitemap(fetcher, feed)
    assert result.outcome is FeedOutcome.INVALID
    assert result.reason is not None and "decompresses to over" in result.reason
