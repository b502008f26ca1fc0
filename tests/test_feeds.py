"""parse_feed on small inline feeds of every flavour, and fetch_feed against a loopback server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_network
from typing import ClassVar

import pytest

from newsmon.config import FeedConfig, FetchSettings
from newsmon.sources.feeds import FeedOutcome, fetch_feed, parse_feed
from newsmon.sources.fetch import Fetcher, FetchOutcome, Validators

FEED_URL = "https://news.example/feeds/main.xml"


def _one(content: bytes, content_type: str | None = "application/rss+xml") -> str | None:
    """The title of the only entry."""
    entries, skipped, problem = parse_feed(content, FEED_URL, content_type=content_type)
    assert (len(entries), skipped, problem) == (1, 0, None)
    return entries[0].title


# --- formats -------------------------------------------------------------------------------------

RSS20 = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>News</title><link>https://news.example/</link>
<item>
  <title>First &amp; foremost</title>
  <link>https://news.example/a/1?utm_source=rss&amp;id=9</link>
  <description>&lt;p&gt;Hello &lt;b&gt;world&lt;/b&gt;,
    &lt;br/&gt;again&amp;nbsp;&amp;amp; again&lt;/p&gt;
  </description>
  <pubDate>Tue, 03 Jun 2025 14:30:00 +0500</pubDate>
  <author>ed@dawn.com (Ed Itor)</author>
  <category>Politics</category><category> Pakistan </category><category>Politics</category>
  <guid isPermaLink="false">x1</guid>
</item>
<item><title>No link, guid not a permalink</title><guid isPermaLink="false">abc-123</guid></item>
<item><title>Guid is the link</title><guid>https://news.example/a/3</guid></item>
<item><title>Same as the first</title><link>https://news.example/a/1?id=9#comments</link></item>
<item><title>Relative link</title><link>/a/4</link></item>
<item><title>Mail link</title><link>mailto:desk@news.example</link></item>
<item><title>Bad host</title><link>https://exa mple/5</link></item>
</channel></rss>"""


def test_rss_20() -> None:
    entries, skipped, problem = parse_feed(RSS20, FEED_URL, content_type="application/rss+xml")
    assert problem is None
    assert skipped == 3  # no link, mailto:, invalid URL
    assert [e.url for e in entries] == [
        "https://news.example/a/1?utm_source=rss&id=9",
        "https://news.example/a/3",
        "https://news.example/a/4",
    ]
    first = entries[0]
    assert first.canonical_url == "https://news.example/a/1?id=9"
    assert first.title == "First & foremost"
    assert first.summary == "Hello world , again & again"  # &nbsp; is a space too
    assert first.published_at == datetime(2025, 6, 3, 9, 30, tzinfo=UTC)
    assert first.published_at.utcoffset() == timedelta(0)
    assert first.authors == ("Ed Itor",)
    assert first.tags == ("Politics", "Pakistan")
    assert entries[1].title == "Guid is the link"
    assert entries[1].summary is None
    assert entries[1].published_at is None
    assert entries[1].authors == ()


def test_rss_091() -> None:
    content = b"""<?xml version="1.0"?>
<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"
  "http://my.netscape.com/publish/formats/rss-0.91.dtd">
<rss version="0.91"><channel><title>Old</title><link>http://old.example/</link>
<description>d</description><language>en</language>
<item><title>Old one</title><link>http://old.example/1.html</link>
<description>Plain &amp; simple</description></item>
</channel></rss>"""
    entries, skipped, problem = parse_feed(content, "http://old.example/rss.xml")
    assert (skipped, problem) == (0, None)
    assert [(e.url, e.title, e.summary) for e in entries] == [
        ("http://old.example/1.html", "Old one", "Plain & simple")
    ]


def test_rss_10_rdf() -> None:
    content = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
  xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel rdf:about="http://rdf.example/"><title>RDF</title><link>http://rdf.example/</link>
<description>d</description>
<items><rdf:Seq><rdf:li resource="http://rdf.example/1"/></rdf:Seq></items></channel>
<item rdf:about="http://rdf.example/1"><title>RDF item</title><link>http://rdf.example/1</link>
<description>x</description><dc:date>2025-06-03T09:30:00+01:00</dc:date>
<dc:creator>Ann</dc:creator><dc:subject>science</dc:subject></item>
</rdf:RDF>"""
    entries, skipped, problem = parse_feed(content, "http://rdf.example/index.rdf")
    assert (skipped, problem) == (0, None)
    assert len(entries) == 1
    entry = entries[0]
    assert (entry.url, entry.title, entry.summary) == ("http://rdf.example/1", "RDF item", "x")
    assert entry.published_at == datetime(2025, 6, 3, 8, 30, tzinfo=UTC)
    assert entry.authors == ("Ann",)
    assert entry.tags == ("science",)


ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><id>urn:feed</id>
<updated>2025-06-03T10:00:00Z</updated>
<entry><title type="html">&lt;em&gt;Atom&lt;/em&gt; one</title><id>urn:1</id>
  <link rel="edit" href="https://atom.example/edit/1"/>
  <link rel="replies" type="text/html" href="/comments/1"/>
  <link rel="alternate" type="text/html" href="posts/1"/>
  <updated>2025-06-03T10:00:00+02:00</updated><published>2025-06-02T08:00:00-04:00</published>
  <summary type="html">&lt;p&gt;Sum &amp;amp; more&lt;/p&gt;</summary>
  <author><name>Zed</name></author><author><name>Amy</name></author>
  <category term="tech"/></entry>
<entry><title>Updated only</title><id>urn:2</id><link href="/posts/2"/>
  <updated>2025-06-03T10:00:00Z</updated></entry>
<entry><title>No link at all</title><id>urn:3</id><updated>2025-06-03T10:00:00Z</updated></entry>
<entry><title>Enclosure only</title><id>urn:4</id>
  <link rel="enclosure" href="https://atom.example/a.mp3"/></entry>
</feed>"""


def test_atom_10_relative_links_and_alternate() -> None:
    entries, skipped, problem = parse_feed(ATOM, FEED_URL, content_type="application/atom+xml")
    assert (skipped, problem) == (2, None)
    assert [e.url for e in entries] == [
        "https://news.example/feeds/posts/1",  # relative to the feed URL, rel=alternate
        "https://news.example/posts/2",  # no rel means alternate
    ]
    first = entries[0]
    assert first.title == "Atom one"
    assert first.summary == "Sum & more"
    assert first.published_at == datetime(2025, 6, 2, 12, 0, tzinfo=UTC)  # published wins
    assert first.authors == ("Zed", "Amy")
    assert first.tags == ("tech",)
    assert entries[1].published_at == datetime(2025, 6, 3, 10, 0, tzinfo=UTC)  # updated


def test_atom_xml_base_wins_over_feed_url() -> None:
    content = ATOM.replace(b"<feed ", b'<feed xml:base="https://atom.example/blog/" ')
    entries, _, _ = parse_feed(content, FEED_URL, content_type="application/atom+xml")
    assert [e.url for e in entries] == [
        "https://atom.example/blog/posts/1",
        "https://atom.example/posts/2",
    ]


def test_dates_are_aware_utc() -> None:
    dates = {
        "Tue, 03 Jun 2025 14:30:00 GMT": datetime(2025, 6, 3, 14, 30, tzinfo=UTC),
        "Tue, 03 Jun 2025 14:30:00 -0300": datetime(2025, 6, 3, 17, 30, tzinfo=UTC),
        "Tue, 03 Jun 2025 14:30:00 EST": datetime(2025, 6, 3, 19, 30, tzinfo=UTC),
        "2025-06-03T23:30:00+05:00": datetime(2025, 6, 3, 18, 30, tzinfo=UTC),
    }
    items = "".join(
        f"<item><link>https://d.example/{i}</link><pubDate>{d}</pubDate></item>"
        for i, d in enumerate(dates)
    )
    items += "<item><link>https://d.example/bad</link><pubDate>yesterday-ish</pubDate></item>"
    content = f'<rss version="2.0"><channel><title>D</title>{items}</channel></rss>'.encode()
    entries, _, _ = parse_feed(content, FEED_URL, content_type="application/rss+xml")
    assert [e.published_at for e in entries] == [*dates.values(), None]
    for entry in entries[:-1]:
        assert entry.published_at is not None and entry.published_at.tzinfo is UTC


def test_html_in_title_and_summary_becomes_text() -> None:
    content = b"""<rss version="2.0"><channel><title>H</title><item>
<title>&lt;b&gt;Bold&lt;/b&gt;   title &amp;amp; more</title><link>https://h.example/1</link>
<description><![CDATA[<div class="x"><script>var a = 1 < 2;</script><p>Para&nbsp;one</p>
<style>p > b { color: red }</style><!-- a <b>comment</b> -->
<ul><li>item&#8217;s</li></ul><img src="a.png" alt="pic"></div>]]></description>
</item></channel></rss>"""
    entries, _, _ = parse_feed(content, FEED_URL, content_type="application/rss+xml")
    assert entries[0].title == "Bold title & more"
    # script, style and comments are not text; entities decoded, whitespace collapsed
    assert entries[0].summary == "Para one item\u2019s"


def test_long_summary_is_cut() -> None:
    text = "word " * 1000
    content = (
        f'<rss version="2.0"><channel><title>L</title><item><link>https://l.example/1</link>'
        f"<description>{text}</description><title>{'t' * 1500}</title></item></channel></rss>"
    ).encode()
    entries, _, _ = parse_feed(content, FEED_URL, content_type="application/rss+xml")
    assert entries[0].summary is not None and len(entries[0].summary) == 2000
    assert entries[0].title == "t" * 1000


def test_duplicates_inside_one_feed_collapse_to_the_first() -> None:
    items = "".join(
        f"<item><title>{t}</title><link>{u}</link></item>"
        for t, u in [
            ("one", "https://dup.example/story?id=1&amp;utm_source=rss"),
            ("two", "HTTPS://DUP.EXAMPLE:443/story?utm_medium=x&amp;id=1#top"),
            ("three", "https://dup.example/story?id=2"),
            ("four", "https://dup.example/./story?fbclid=abc&amp;id=1"),
        ]
    )
    content = f'<rss version="2.0"><channel><title>D</title>{items}</channel></rss>'.encode()
    entries, skipped, problem = parse_feed(content, FEED_URL, content_type="application/rss+xml")
    assert (skipped, problem) == (0, None)
    assert [(e.title, e.canonical_url) for e in entries] == [
        ("one", "https://dup.example/story?id=1"),
        ("three", "https://dup.example/story?id=2"),
    ]


def test_broken_xml_that_still_yields_entries() -> None:
    content = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>B</title>
<item><title>Broken one</title><link>https://b.example/1</link>
<description>unclosed <b>bold</description></item>
<item><title>Broken two</title><link>https://b.example/2</link>
</channel>"""
    entries, skipped, problem = parse_feed(content, FEED_URL, content_type="application/rss+xml")
    assert problem is None
    assert skipped == 0
    assert [(e.url, e.title) for e in entries] == [
        ("https://b.example/1", "Broken one"),
        ("https://b.example/2", "Broken two"),
    ]
    assert entries[0].summary == "unclosed bold"


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"\x00\x01 this is not xml at all {}[]", "application/rss+xml"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "application/octet-stream"),
        (b"", "application/rss+xml"),
        (b"hello world", "text/plain"),
        (b'{"items": [{"url": "https://j.example/1"}]}', "application/json"),
        (
            b"<!DOCTYPE html><html><head><title>Home</title></head><body><h1>Welcome</h1>"
            b"<p>Read <a href='/a/1'>this</a></p></body></html>",
            "text/html; charset=utf-8",
        ),
        (
            b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><head>'
            b'<title>Home</title></head><body><p>Hi <a href="/a/1">x</a></p></body></html>',
            "application/xhtml+xml",
        ),
        (b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</tit', "text/xml"),
    ],
)
def test_not_a_feed_gives_a_problem(content: bytes, content_type: str) -> None:
    entries, skipped, problem = parse_feed(content, FEED_URL, content_type=content_type)
    assert entries == []
    assert skipped == 0
    assert problem is not None
    assert problem.startswith(("not a readable feed: ", "not an RSS or Atom document"))
    assert len(problem) <= 300


@pytest.mark.parametrize("content_type", [None, "application/rss+xml", "text/html", "text/plain"])
def test_empty_feed_is_not_a_problem(content_type: str | None) -> None:
    content = b'<?xml version="1.0"?><rss version="2.0"><channel><title>E</title></channel></rss>'
    assert parse_feed(content, FEED_URL, content_type=content_type) == ([], 0, None)


# --- character sets ------------------------------------------------------------------------------

TITLE = "Caf\u00e9 \u201cquoted\u201d \u2014 na\u00efve \u20ac5"
LATIN1_TITLE = "Caf\u00e9 cr\u00e8me \u00e0 la fran\u00e7aise \u00bd"


def _rss(title: str, encoding: str | None) -> str:
    decl = f'<?xml version="1.0" encoding="{encoding}"?>' if encoding else ""
    return (
        f'{decl}<rss version="2.0"><channel><title>T</title><item><title>{title}</title>'
        "<link>https://c.example/1</link></item></channel></rss>"
    )


def test_utf8() -> None:
    assert _one(_rss(TITLE, "utf-8").encode("utf-8")) == TITLE


def test_windows_1252_bytes_declared_utf8_in_http_header() -> None:
    content = _rss(TITLE, None).encode("cp1252")
    assert _one(content, "application/rss+xml; charset=utf-8") == TITLE


def test_windows_1252_bytes_declared_utf8_in_header_and_document() -> None:
    content = _rss(TITLE, "utf-8").encode("cp1252")
    assert _one(content, "text/xml; charset=UTF-8") == TITLE


def test_windows_1252_declared_in_the_document() -> None:
    assert _one(_rss(TITLE, "windows-1252").encode("cp1252")) == TITLE


@pytest.mark.parametrize(
    "content_type",
    [None, "application/rss+xml", "application/xml", "text/xml", "text/xml; charset=utf-8"],
)
def test_latin1_declared_in_the_document(content_type: str | None) -> None:
    # RFC 3023 says text/xml without charset is us-ascii; feedparser falls back sensibly
    assert _one(_rss(LATIN1_TITLE, "iso-8859-1").encode("latin-1"), content_type) == LATIN1_TITLE


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_with_bom(codec: str) -> None:
    text = _rss(TITLE, "utf-16")
    content = text.encode(codec) if codec == "utf-16" else ("\ufeff" + text).encode(codec)
    assert content[:2] in (b"\xff\xfe", b"\xfe\xff")
    assert _one(content) == TITLE
    assert _one(content, "application/rss+xml; charset=utf-8") == TITLE


def test_many_entries_are_capped() -> None:
    items = "".join(f"<item><link>https://m.example/{i}</link></item>" for i in range(600))
    content = f'<rss version="2.0"><channel><title>M</title>{items}</channel></rss>'.encode()
    entries, skipped, problem = parse_feed(content, FEED_URL, content_type="application/rss+xml")
    assert (len(entries), skipped, problem) == (500, 0, None)
    assert entries[-1].url == "https://m.example/499"


# --- fetch_feed against a loopback server --------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, tuple[int, dict[str, str], bytes]]] = {}
    seen: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:
        self.seen.append(dict(self.headers))
        status, headers, body = self.routes.get(self.path, (404, {}, b"missing"))
        etag = headers.get("ETag")
        if etag and self.headers.get("If-None-Match") == etag:
            status, body = 304, b""
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Handler.routes, _Handler.seen = {}, []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    settings = FetchSettings(
        allow_networks=(ip_network("127.0.0.1/32"),), deadline=5, connect_timeout=2
    )
    with Fetcher(settings) as f:
        yield f


def _feed(url: str) -> FeedConfig:
    return FeedConfig(id="loop", url=url, name="Loopback")


def test_fetch_feed_and_conditional_refetch(server: str, fetcher: Fetcher) -> None:
    headers = {"Content-Type": "application/rss+xml", "ETag": '"v1"'}
    _Handler.routes["/feed"] = (200, headers, RSS20)
    result = fetch_feed(fetcher, _feed(server + "/feed"))
    assert result.outcome is FeedOutcome.FETCHED
    assert result.feed_id == "loop"
    assert result.fetch_outcome is FetchOutcome.OK
    assert result.status == 200
    assert result.skipped_entries == 3
    assert len(result.entries) == 3
    assert result.validators == Validators(etag='"v1"')
    assert result.reason is None

    again = fetch_feed(fetcher, _feed(server + "/feed"), result.validators)
    assert _Handler.seen[-1].get("If-None-Match") == '"v1"'
    assert again.outcome is FeedOutcome.NOT_MODIFIED
    assert again.status == 304
    assert again.entries == ()
    assert again.validators == Validators(etag='"v1"')


def test_fetch_feed_relative_links_use_the_final_url(server: str, fetcher: Fetcher) -> None:
    _Handler.routes["/old"] = (301, {"Location": "/new/atom.xml"}, b"")
    _Handler.routes["/new/atom.xml"] = (200, {"Content-Type": "application/atom+xml"}, ATOM)
    result = fetch_feed(fetcher, _feed(server + "/old"))
    assert result.outcome is FeedOutcome.FETCHED
    assert [e.url for e in result.entries] == [server + "/new/posts/1", server + "/posts/2"]


def test_fetch_feed_wrong_charset_header(server: str, fetcher: Fetcher) -> None:
    content = _rss(TITLE, None).encode("cp1252")
    _Handler.routes["/cp"] = (200, {"Content-Type": "text/xml; charset=utf-8"}, content)
    result = fetch_feed(fetcher, _feed(server + "/cp"))
    assert result.outcome is FeedOutcome.FETCHED
    assert [e.title for e in result.entries] == [TITLE]


def test_fetch_feed_html_page_is_invalid(server: str, fetcher: Fetcher) -> None:
    page = b"<!DOCTYPE html><html><head><title>Home</title></head><body><p>x</p></body></html>"
    _Handler.routes["/"] = (200, {"Content-Type": "text/html; charset=utf-8"}, page)
    result = fetch_feed(fetcher, _feed(server + "/"))
    assert result.outcome is FeedOutcome.INVALID
    assert result.fetch_outcome is FetchOutcome.OK
    assert result.reason is not None and result.reason.startswith("not a")
    assert result.entries == ()


def test_fetch_feed_http_error(server: str, fetcher: Fetcher) -> None:
    result = fetch_feed(fetcher, _feed(server + "/gone"))
    assert result.outcome is FeedOutcome.FETCH_FAILED
    assert result.fetch_outcome is FetchOutcome.HTTP_ERROR
    assert result.status == 404
    assert result.reason == "HTTP 404 Not Found"


def test_fetch_feed_wrong_media_type(server: str, fetcher: Fetcher) -> None:
    _Handler.routes["/img"] = (200, {"Content-Type": "image/png"}, b"\x89PNG")
    result = fetch_feed(fetcher, _feed(server + "/img"))
    assert result.outcome is FeedOutcome.FETCH_FAILED
    assert result.fetch_outcome is FetchOutcome.WRONG_TYPE


def test_fetch_feed_blocked_without_allowlist(server: str) -> None:
    with Fetcher(FetchSettings(deadline=5)) as guarded:
        result = fetch_feed(guarded, _feed(server + "/feed"))
    assert result.outcome is FeedOutcome.FETCH_FAILED
    assert result.fetch_outcome is FetchOutcome.BLOCKED
    assert _Handler.seen == []


def test_a_parser_crash_is_this_feeds_outcome_not_the_runs(
    server: str, fetcher: Fetcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    _Handler.routes["/feed"] = (200, {"Content-Type": "application/rss+xml"}, RSS20)

    def crash(*args: object, **kwargs: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr("newsmon.sources.feeds.feedparser.parse", crash)
    result = fetch_feed(fetcher, _feed(server + "/feed"))
    assert result.outcome is FeedOutcome.INVALID
    assert result.reason == "parser failed: RecursionError: maximum recursion depth exceeded"
    assert result.entries == ()
