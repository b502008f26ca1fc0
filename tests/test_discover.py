"""Feed discovery against loopback sites, through newsmon's guarded fetcher."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from newsmon.cli import main
from newsmon.config import FetchSettings, parse_feeds
from newsmon.dev.demo import DemoSite, render_atom
from newsmon.sources.discover import COMMON_PATHS, discover_feeds, feed_links
from newsmon.sources.fetch import Fetcher

ITEM = datetime(2026, 11, 1, tzinfo=UTC)
HOME = """<!DOCTYPE html><html><head><title>Example News</title>
<link rel="stylesheet" href="/style.css">
<link rel="alternate" type="application/rss+xml" title="Main" href="/feeds/main.xml">
<link rel="alternate" type="application/atom+xml" href="feeds/atom.xml">
<link rel="alternate" type="application/rss+xml" href="/feeds/missing.xml">
<link rel="alternate" type="application/rss+xml" href="http://169.254.169.254/latest/rss">
<link rel="alternate" hreflang="fr" href="/fr/">
</head><body>
<a href="/about">About</a>
<a href="/category/world/feed/">World feed</a>
<a href="/feeds/main.xml?utm_source=footer">RSS</a>
<a href="/rss-not-really.xml">Looks like a feed</a>
<a href="https://elsewhere.example/rss">Someone else's feed</a>
</body></html>"""


@pytest.fixture
def fetch_settings() -> FetchSettings:
    from ipaddress import ip_network

    return FetchSettings(allow_networks=(ip_network("127.0.0.0/8"),), deadline=10, workers=2)


@pytest.fixture
def site() -> Iterator[DemoSite]:
    with DemoSite([], feed_count=0) as served:
        base = served.base_url
        served.set_feed("main", [(f"{base}/a/1", "One", ITEM), (f"{base}/a/2", "Two", ITEM)])
        served.add_page("/", HOME.encode())
        served.add_page(
            "/feeds/atom.xml",
            render_atom("Example — Atom", base, [(f"{base}/a/3", "Three", ITEM)]),
            "application/atom+xml",
        )
        world = render_atom("World", base, [(f"{base}/w/1", "W", ITEM)])
        served.add_page("/category/world/feed/", world, "application/rss+xml")
        served.add_page("/rss-not-really.xml", b"<html><body>no</body></html>", "text/xml")
        yield served


@pytest.fixture
def plain_site() -> Iterator[DemoSite]:
    """A homepage that names no feed; its feed is at one of the common paths."""
    with DemoSite([], feed_count=0, host="127.0.0.2") as served:
        served.add_page("/", b"<html><head><title>Plain</title></head><body>Hi</body></html>")
        feed = render_atom("Plain feed", served.base_url, [(f"{served.base_url}/p", "P", ITEM)])
        served.add_page("/rss.xml", feed, "application/rss+xml")
        served.add_page("/feed.xml", feed, "application/rss+xml")
        yield served


def test_feed_links_reads_alternates_and_feedlike_links_of_the_same_site() -> None:
    alternates, anchors = feed_links(HOME, "http://news.example/section/")
    assert alternates == [
        "http://news.example/feeds/main.xml",
        "http://news.example/section/feeds/atom.xml",
        "http://news.example/feeds/missing.xml",
        "http://169.254.169.254/latest/rss",
    ]
    assert anchors == [
        "http://news.example/category/world/feed/",
        "http://news.example/feeds/main.xml?utm_source=footer",
        "http://news.example/rss-not-really.xml",
    ]


def test_discover_checks_every_candidate_with_the_feed_parser(
    site: DemoSite, fetch_settings: FetchSettings
) -> None:
    with Fetcher(fetch_settings) as fetcher:
        found = discover_feeds(fetcher, site.base_url + "/")

    assert found.error is None
    assert [
        (f.url.removeprefix(site.base_url), f.title, f.entries, f.via) for f in found.feeds
    ] == [
        ("/feeds/main.xml", "Demo main", 2, "link"),
        ("/feeds/atom.xml", "Example — Atom", 1, "link"),
        ("/category/world/feed/", "World", 1, "anchor"),
    ]
    rejected = dict(found.rejected)
    assert rejected[site.base_url + "/feeds/missing.xml"].startswith("http_error")
    # the address guard applies: link-local metadata addresses are never contacted
    assert rejected["http://169.254.169.254/latest/rss"].startswith("blocked_address")
    assert "not an RSS or Atom document" in rejected[site.base_url + "/rss-not-really.xml"]
    assert not any("elsewhere" in url for url, _why in found.rejected)
    # the same feed named twice (with a tracking parameter) is fetched once; nothing probed
    assert site.requests["/feeds/main.xml"] == 1
    assert not set(COMMON_PATHS) & set(site.requests)


def test_common_paths_are_probed_when_the_page_names_no_feed(
    plain_site: DemoSite, fetch_settings: FetchSettings
) -> None:
    with Fetcher(fetch_settings) as fetcher:
        found = discover_feeds(fetcher, plain_site.base_url)
    assert [(f.url, f.via) for f in found.feeds] == [(plain_site.base_url + "/rss.xml", "path")]
    # probed in order, stopping at the first feed
    assert set(plain_site.requests) == {"/", "/feed", "/rss", "/rss.xml"}
    with Fetcher(fetch_settings) as fetcher:
        assert discover_feeds(fetcher, plain_site.base_url, probe=False).feeds == []


def test_a_feed_address_given_directly_is_reported(
    site: DemoSite, fetch_settings: FetchSettings
) -> None:
    with Fetcher(fetch_settings) as fetcher:
        found = discover_feeds(fetcher, site.feed_url("main"))
    assert [(f.title, f.via) for f in found.feeds] == [("Demo main", "given")]


def test_loopback_is_refused_without_an_allowlist(site: DemoSite) -> None:
    with Fetcher(FetchSettings(deadline=5)) as fetcher:
        found = discover_feeds(fetcher, site.base_url + "/")
    assert found.feeds == [] and found.error is not None
    assert found.error.startswith("blocked_address")
    assert site.requests["/"] == 0


def test_cli_prints_yaml_entries_ready_to_paste(
    site: DemoSite,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    existing = tmp_path / "feeds.yaml"
    existing.write_text(
        f"feeds:\n  - id: demo-main\n    name: Demo main\n    url: {site.feed_url('main')}\n"
    )
    monkeypatch.setenv("NEWSMON_FETCH_ALLOW", "127.0.0.0/8")

    assert main(["feeds", "discover", site.base_url + "/", "--feeds", str(existing)]) == 0
    captured = capsys.readouterr()
    feeds = parse_feeds("feeds:\n" + captured.out)
    # the feed already followed is reported, not printed again as an entry to paste
    assert [(f.id, f.name, f.url) for f in feeds] == [
        ("example-atom", "Example — Atom", site.base_url + "/feeds/atom.xml"),
        ("world", "World", site.base_url + "/category/world/feed/"),
    ]
    assert site.feed_url("main") not in captured.out
    assert f"already followed: {site.feed_url('main')} (feed demo-main in {existing})" in (
        captured.err
    )
    assert "not a feed: http://169.254.169.254/latest/rss (blocked_address" in captured.err

    monkeypatch.delenv("NEWSMON_FETCH_ALLOW")
    assert main(["feeds", "discover", site.base_url + "/", "--feeds", str(existing)]) == 1
    assert "blocked_address" in capsys.readouterr().err
