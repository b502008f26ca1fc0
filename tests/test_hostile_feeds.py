"""Hostile feed documents: entity bombs, external entities, huge and broken feeds.

An audit hook records every file opened and every socket connected or name resolved while a
document is parsed, so "no file read, no network" is observed, not assumed. A sentinel
listener on a forbidden loopback address counts connections.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest

from newsmon.config import FeedConfig, FetchSettings
from newsmon.sources.feeds import (
    MAX_ENTRIES,
    MAX_FEED_BYTES,
    FeedOutcome,
    fetch_feed,
    parse_feed,
    read_feed,
)
from newsmon.sources.fetch import Fetcher, FetchOutcome

from .helpers.sites import Sentinel, Server

FEED_URL = "https://news.example/feed.xml"
MARGIN = 2.5  # CPU seconds of slack (tracemalloc slows parsing several times over)
MB = 1024 * 1024

# --- observing file and network access -----------------------------------------------------------

_WATCHED = (
    "open",
    "socket.connect",
    "socket.getaddrinfo",
    "socket.gethostbyname",
    "urllib.Request",
)
_recording: list[list[tuple[str, str]]] = []
_lock = threading.RLock()  # an audit event raised inside the hook must not deadlock


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _recording and event in _WATCHED:
        with _lock:
            if _recording:
                _recording[-1].append((event, repr(args[:2])[:300]))


sys.addaudithook(_audit)  # hooks cannot be removed; it records only inside ``_observed``


@contextmanager
def _observed() -> Iterator[list[tuple[str, str]]]:
    events: list[tuple[str, str]] = []
    with _lock:
        _recording.append(events)
    try:
        yield events
    finally:
        with _lock:
            _recording.remove(events)


def _io(events: list[tuple[str, str]], secret: str | None = None) -> list[tuple[str, str]]:
    """Network events, and file opens that are not Python loading its own modules."""
    found = []
    for event, detail in events:
        if event == "open" and (".py" in detail or "__pycache__" in detail):
            continue
        if event == "open" and secret is None and "passwd" not in detail:
            continue
        if (
            event == "open"
            and secret is not None
            and secret not in detail
            and "passwd" not in detail
        ):
            continue
        found.append((event, detail))
    return found


class _Bounded:
    """CPU time of this thread and peak Python memory of a block.

    The parsers run in the calling thread, so its CPU time is the work they did; unlike wall
    time, other processes on a busy machine do not add to it.
    """

    seconds = 0.0
    peak = 0

    def __init__(self, memory: bool = True) -> None:
        self.memory = memory  # tracemalloc slows parsing several times over

    def __enter__(self) -> _Bounded:
        self.started = time.thread_time()
        if self.memory:
            tracemalloc.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.memory:
            self.peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        self.seconds = time.thread_time() - self.started


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text("SECRET-7f3a9c-MARKER\n")
    return path


def _parse(
    content: bytes, content_type: str | None = "application/rss+xml", *, memory: bool = True
) -> Any:
    with _observed() as events, _Bounded(memory) as bounds:
        parsed = read_feed(content, FEED_URL, content_type=content_type)
    return parsed, events, bounds


def test_the_observer_sees_file_reads_and_connections(secret: Path, sentinel: Sentinel) -> None:
    """The instruments of this file work: a real read and a real connection are seen."""
    with _observed() as events:
        assert "SECRET-7f3a9c" in secret.read_text()
        socket.create_connection(("127.0.0.3", sentinel.ports["127.0.0.3"]), timeout=2).close()
    seen = _io(events, str(secret))
    assert [event for event, _ in seen] == ["open", "socket.getaddrinfo", "socket.connect"]
    assert str(secret) in seen[0][1]
    deadline = time.monotonic() + 60  # a wait, not a bound: it ends once the connection is seen
    while sentinel.accepted == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sentinel.accepted == 1


# --- entity expansion ----------------------------------------------------------------------------


def _laughs(levels: int, *, one_line: bool) -> bytes:
    sep = "" if one_line else "\n"
    declarations = [f'<!ENTITY lol0 "{"lol" * 10}">']
    declarations += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, levels)]
    return (
        f'<?xml version="1.0"?>{sep}<!DOCTYPE rss [{sep}{sep.join(declarations)}{sep}]>{sep}'
        '<rss version="2.0"><channel><title>T</title><item>'
        f"<title>&lol{levels - 1};</title><link>https://bomb.example/1</link></item>"
        "</channel></rss>"
    ).encode()


def _quadratic() -> bytes:
    big = "x" * 50_000
    refs = "&big;" * 50_000  # 2.5 GB once expanded
    return (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY big "{big}">]><rss version="2.0">'
        f"<channel><title>T</title><item><title>{refs}</title>"
        "<link>https://bomb.example/1</link></item></channel></rss>"
    ).encode()


ENTITY_BOMBS = {
    "billion-laughs": _laughs(10, one_line=False),
    "billion-laughs-one-line": _laughs(10, one_line=True),
    "six-levels-one-line": _laughs(6, one_line=True),  # 1 MB: under expat's own limit
    "quadratic-blowup": _quadratic(),
    "parameter-entities": (
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY % p "<!ENTITY q \'boom\'>"> %p;]>'
        b'<rss version="2.0"><channel><title>T</title><item><title>&q;</title>'
        b"<link>https://bomb.example/1</link></item></channel></rss>"
    ),
    "utf-16-billion-laughs": _laughs(10, one_line=True).decode().encode("utf-16"),
    "lower-case-in-a-broken-document": b"<rss><!doctype rss [<!entity a 'b'>]><item>&a;",
}


@pytest.mark.parametrize("name", list(ENTITY_BOMBS))
def test_entity_declarations_are_refused_before_parsing(name: str) -> None:
    parsed, events, bounds = _parse(ENTITY_BOMBS[name])
    assert parsed.entries == []
    assert parsed.problem is not None
    assert parsed.problem.startswith("refused: the document declares")
    assert "does not expand entities" in parsed.problem
    assert _io(events) == []
    assert bounds.seconds < 1.0 + MARGIN
    assert bounds.peak < 16 * MB


def test_entity_bomb_through_fetch_feed(sentinel: Sentinel) -> None:
    server = Server("127.0.0.2")
    server.routes["/feed"] = lambda h: h.reply(200, ENTITY_BOMBS["billion-laughs"], "text/xml")
    settings = FetchSettings(allow_networks=(ip_network("127.0.0.2/32"),), deadline=5.0)
    try:
        with Fetcher(settings) as fetcher:
            result = fetch_feed(fetcher, FeedConfig(id="bomb", url=server.base + "/feed", name="b"))
    finally:
        server.close()
    assert result.outcome is FeedOutcome.INVALID
    assert result.fetch_outcome is FetchOutcome.OK
    assert result.reason is not None and "'lol0'" in result.reason
    assert result.entries == ()


def _declaring(declarations: str, title: str, items: int = 3) -> bytes:
    rest = "".join(
        f"<item><title>t{i}</title><link>https://ent.example/{i}</link></item>"
        for i in range(2, items + 1)
    )
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE rss [\n{declarations}\n]>\n<rss version="2.0">'
        f"<channel><title>T</title><item><title>{title}</title>"
        f"<link>https://ent.example/1</link></item>{rest}</channel></rss>"
    ).encode()


@pytest.mark.parametrize("codec", ["utf-8", "iso-8859-1"])
def test_harmless_internal_entities_are_expanded(
    codec: str, secret: Path, sentinel: Sentinel
) -> None:
    content = (
        _declaring(
            '<!ENTITY nbsp "&#160;">\n<!ENTITY mdash "&#8212;">\n<!ENTITY site \'Daily\'>',
            "A&nbsp;&mdash;&nbsp;&site; caf\u00e9",
        )
        .decode()
        .replace('version="1.0"?>', f'version="1.0" encoding="{codec}"?>')
        .encode(codec)
    )
    parsed, events, bounds = _parse(content)
    assert parsed.problem is None
    assert [e.title for e in parsed.entries] == ["A \u2014 Daily caf\u00e9", "t2", "t3"]
    assert _io(events, str(secret)) == []
    assert sentinel.accepted == 0
    assert bounds.peak < 16 * MB


@pytest.mark.parametrize(
    ("declarations", "title", "why"),
    [
        (f'<!ENTITY long "{"x" * 65}">', "&long;", "over 64 characters"),
        ('<!ENTITY a "&#38;#169;">', "&a;", "refers to the entity '#169'"),
        ('<!ENTITY tag "&#60;b&#62;x&#60;/b&#62;">', "&tag;", "holds markup"),
        ('<!ENTITY unparsed SYSTEM "x.gif" NDATA gif>', "x", "external entity 'unparsed'"),
        ('<!ENTITY many "' + "y" * 64 + '">', "&many;" * 4200, "expand to over 262144"),
    ],
    ids=["long", "nested", "markup", "unparsed", "many-references"],
)
def test_internal_entities_that_could_grow_are_refused(
    declarations: str, title: str, why: str
) -> None:
    if "NDATA" in declarations:
        declarations = '<!NOTATION gif SYSTEM "image/gif">\n' + declarations
    parsed, events, bounds = _parse(_declaring(declarations, title))
    assert parsed.entries == []
    assert parsed.problem is not None and parsed.problem.startswith(
        "refused: the document declares"
    )
    assert why in parsed.problem
    assert _io(events) == []
    assert bounds.peak < 16 * MB


def test_internal_entity_in_a_broken_document_is_refused() -> None:
    content = _declaring('<!ENTITY nbsp "&#160;">', "a&nbsp;b").replace(b"</channel>", b"")
    content = content.replace(b"<item>", b"<item><oops>", 1)
    parsed, _, _ = _parse(content)
    assert parsed.entries == []
    assert parsed.problem is not None and "not well-formed" in parsed.problem


# --- external entities ---------------------------------------------------------------------------


def _xxe(doctype: str, title: str = "&xxe;") -> bytes:
    return (
        f'<?xml version="1.0"?>\n{doctype}\n<rss version="2.0"><channel><title>T</title>'
        f"<item><title>x{title}y</title><link>https://xxe.example/1</link></item>"
        "</channel></rss>"
    ).encode()


XXE = {
    "file-passwd": '<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
    "file-passwd-multiline": '<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>',
    "file-secret": '<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{secret}">]>',
    "file-secret-public-id": '<!DOCTYPE rss [<!ENTITY xxe PUBLIC "-//X//Y" "{secret}">]>',
    "http-sentinel": '<!DOCTYPE rss [<!ENTITY xxe SYSTEM "http://127.0.0.3:{port}/x">]>',
    "http-sentinel-parameter": (
        '<!DOCTYPE rss [<!ENTITY % dtd SYSTEM "http://127.0.0.3:{port}/evil.dtd"> %dtd;]>'
    ),
}


@pytest.mark.parametrize("name", list(XXE))
def test_external_entities_read_no_file_and_open_no_connection(
    name: str, secret: Path, sentinel: Sentinel
) -> None:
    doctype = XXE[name].format(secret=secret, port=sentinel.ports["127.0.0.3"])
    parsed, events, _ = _parse(_xxe(doctype))
    assert parsed.entries == []
    assert parsed.problem is not None and parsed.problem.startswith("refused:")
    assert _io(events, str(secret)) == []
    assert "SECRET-7f3a9c" not in repr(parsed)
    assert sentinel.accepted == 0


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE rss SYSTEM "http://127.0.0.3:{port}/rss.dtd">',
        '<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" "file://{secret}">',
        '<!DOCTYPE rss SYSTEM "file:///etc/passwd">',
    ],
    ids=["http-dtd", "netscape-public-id-file", "file-dtd"],
)
def test_external_dtd_without_entities_is_parsed_but_never_loaded(
    doctype: str, secret: Path, sentinel: Sentinel
) -> None:
    content = _xxe(doctype.format(secret=secret, port=sentinel.ports["127.0.0.3"]), "&amp;")
    parsed, events, _ = _parse(content)
    assert parsed.problem is None
    assert [(e.url, e.title) for e in parsed.entries] == [("https://xxe.example/1", "x&y")]
    assert _io(events, str(secret)) == []
    assert sentinel.accepted == 0


def test_xinclude_is_not_processed(secret: Path, sentinel: Sentinel) -> None:
    content = (
        b'<?xml version="1.0"?><rss version="2.0" xmlns:xi="http://www.w3.org/2001/XInclude">'
        b"<channel><title>T</title><item><title>inc</title><link>https://xi.example/1</link>"
        b'<description><xi:include href="file://' + str(secret).encode() + b'" parse="text"/>'
        b'<xi:include href="http://127.0.0.3:%d/x"/></description></item></channel></rss>'
        % sentinel.ports["127.0.0.3"]
    )
    parsed, events, _ = _parse(content)
    assert [e.url for e in parsed.entries] == ["https://xi.example/1"]
    assert "SECRET-7f3a9c" not in repr(parsed)
    assert _io(events, str(secret)) == []
    assert sentinel.accepted == 0


def test_html_entities_without_declarations_still_work() -> None:
    content = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><item>'
        b"<title>Caf&eacute;&nbsp;&amp; bar &#8212; &#x263A;</title>"
        b"<link>https://ent.example/1</link></item></channel></rss>"
    )
    parsed, _, _ = _parse(content)
    assert parsed.problem is None
    assert [e.title for e in parsed.entries] == ["Caf\u00e9 & bar \u2014 \u263a"]


@pytest.mark.parametrize("codec", ["utf-8", "cp1252", "utf-16", "utf-16-be", "utf-32", "cp037"])
@pytest.mark.parametrize("strict", [True, False], ids=["well-formed", "broken"])
def test_impossible_character_references_become_replacement_characters(
    codec: str, strict: bool
) -> None:
    """Surrogates and code points past U+10FFFF crashed feedparser's lenient parser."""
    title = "&#xD800;|&#XDFFF;|&#1114112;|&#" + "9" * 5000 + ";|&#xDC00|&#65;|&#x00000042;"
    document = (
        f'<?xml version="1.0" encoding="{codec}"?><rss version="2.0"><channel><title>T</title>'
        f"<item><title>{title}</title><link>https://refs.example/1</link></item>"
        + ("</channel></rss>" if strict else "<b>")
    )
    content = (
        ("\ufeff" + document).encode(codec) if codec == "utf-16-be" else document.encode(codec)
    )
    parsed, _, _ = _parse(content)
    assert parsed.problem is None
    assert [e.title for e in parsed.entries] == ["\ufffd|\ufffd|\ufffd|\ufffd|\ufffd|A|B"]


@pytest.mark.parametrize("prefix", [b"\x00\x00\x00<", b"\xff\xfe", b"\x00<", b"\x4c\x6f\xa7\x94"])
def test_character_references_behind_a_misleading_encoding_prefix(prefix: bytes) -> None:
    """First bytes that claim UTF-32/16 or EBCDIC in front of an ASCII document (a fuzz find)."""
    content = prefix + (
        b'<rss version="2.0"><channel><item><title>a&#99999999;b&#xDFFF;</title>'
        b"<link>https://refs.example/1</link></item>"
    )
    parsed, _, _ = _parse(content)
    assert parsed.problem is None or not parsed.problem.startswith("parser failed")


@pytest.mark.parametrize(
    ("codec", "content_type"),
    [
        ("cp037", "application/rss+xml; charset=cp037"),
        ("utf-16-le", "text/xml; charset=utf-16le"),
        ("utf-16-be", "application/xml; charset=utf-16be"),
    ],
)
def test_character_references_in_an_encoding_only_the_header_names(
    codec: str, content_type: str
) -> None:
    """No BOM, no declaration: only the Content-Type says how to read it (a fuzz find)."""
    content = (
        '<rss version="2.0"><channel><title>T</title><item><title>a&#xD800;b</title>'
        "<link>https://ok.example/1</link></item></channel></rss>"
    ).encode(codec)
    parsed, _, _ = _parse(content, content_type)
    assert parsed.problem is None
    assert [e.title for e in parsed.entries] == ["a\ufffdb"]


UNSPLITTABLE = {
    "rdf-about": (
        b'<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
        b' xmlns="http://purl.org/rss/1.0/"><channel rdf:about="https://x.example/"><title>T'
        b'</title></channel><item rdf:about="http://[::1"><title>bad</title></item>'
        b'<item rdf:about="https://ok.example/1"><title>good</title>'
        b"<link>https://ok.example/1</link></item></rdf:RDF>"
    ),
    "atom-id": (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><entry><title>bad</title>'
        b"<id>http://[::1</id></entry><entry><title>good</title><id>urn:x</id>"
        b'<link href="https://ok.example/1"/></entry></feed>'
    ),
    "rss-link-and-guid": (
        b'<rss version="2.0"><channel><title>T</title><item><title>bad</title>'
        b'<link>http://[::1</link><guid isPermaLink="true">http://[::1</guid></item>'
        b"<item><title>good</title><link>https://ok.example/1</link></item></channel></rss>"
    ),
}


@pytest.mark.parametrize("name", list(UNSPLITTABLE))
def test_an_unsplittable_link_skips_that_entry_only(name: str) -> None:
    """urllib raises on "http://[::1" (a fuzz find; it failed the whole feed) and feedparser
    turns it into the feed's own URL: that item is skipped, the others kept."""
    parsed, _, _ = _parse(UNSPLITTABLE[name])
    assert parsed.problem is None
    assert [(e.title, e.url) for e in parsed.entries] == [("good", "https://ok.example/1")]
    assert parsed.skipped == 1


# --- huge feeds ----------------------------------------------------------------------------------


def _rss_items(count: int, *, broken: bool = False, short: bool = False) -> bytes:
    item = (
        b"<item><title>Item %d%s</title><link>https://huge.example/a/%d</link>"
        b"<description>Text of item %d</description></item>"
    )
    extra = b" &bogus; <b>" if broken else b""
    if short:
        items = b"".join(
            b"<item><link>https://huge.example/a/%d</link></item>" % i for i in range(count)
        )
    else:
        items = b"".join(item % (i, extra, i, i) for i in range(count))
    tail = b"" if broken else b"</channel></rss>"
    return b'<?xml version="1.0"?><rss version="2.0"><channel><title>H</title>' + items + tail


def _atom_entries(count: int) -> bytes:
    entry = (
        b'<entry><title>E %d</title><link rel="alternate" href="https://huge.example/e/%d"/>'
        b"<id>urn:e:%d</id><updated>2025-06-03T10:00:00Z</updated></entry>"
    )
    entries = b"".join(entry % (i, i, i) for i in range(count))
    return (
        b'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        b"<title>A</title><id>urn:a</id>" + entries + b"</feed>"
    )


def _rdf_items(count: int) -> bytes:
    item = b'<rss:item rdf:about="https://huge.example/r/%d"><rss:title>R %d</rss:title>'
    item += b"<rss:link>https://huge.example/r/%d</rss:link></rss:item>"
    return (
        b'<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
        b' xmlns:rss="http://purl.org/rss/1.0/"><rss:channel rdf:about="https://huge.example/">'
        b"<rss:title>R</rss:title></rss:channel>"
        + b"".join(item % (i, i, i) for i in range(count))
        + b"</rdf:RDF>"
    )


HUGE: dict[str, tuple[Callable[[], bytes], str]] = {
    "rss-100k-items": (lambda: _rss_items(100_000, short=True), "https://huge.example/a/"),
    "rss-60k-items": (lambda: _rss_items(60_000), "https://huge.example/a/"),
    "broken-rss-60k-items": (lambda: _rss_items(60_000, broken=True), "https://huge.example/a/"),
    "atom-50k-entries": (lambda: _atom_entries(50_000), "https://huge.example/e/"),
    "rdf-prefixed-20k-items": (lambda: _rdf_items(20_000), "https://huge.example/r/"),
}


@pytest.mark.parametrize("name", list(HUGE))
def test_huge_feed_is_cut_at_the_entry_cap(name: str) -> None:
    make, prefix = HUGE[name]
    content = make()
    assert 2 * MB < len(content) <= MAX_FEED_BYTES
    parsed, events, bounds = _parse(content)
    assert parsed.problem is None
    assert len(parsed.entries) == MAX_ENTRIES
    assert parsed.entries[0].url == prefix + "0"
    assert parsed.entries[-1].url == prefix + str(MAX_ENTRIES - 1)
    assert parsed.note == f"more than {MAX_ENTRIES} entries; kept the first {MAX_ENTRIES}"
    assert _io(events) == []
    assert bounds.seconds < 5.0 + MARGIN
    assert bounds.peak < 64 * MB


def test_huge_feed_through_fetch_feed_records_the_cut() -> None:
    content = _rss_items(100_000, short=True)
    server = Server("127.0.0.2")
    server.routes["/feed"] = lambda h: h.reply(200, content, "application/rss+xml")
    settings = FetchSettings(
        allow_networks=(ip_network("127.0.0.2/32"),), deadline=10.0, max_bytes=16 * MB
    )
    try:
        with Fetcher(settings) as fetcher:
            result = fetch_feed(fetcher, FeedConfig(id="huge", url=server.base + "/feed", name="h"))
    finally:
        server.close()
    assert result.outcome is FeedOutcome.FETCHED
    assert len(result.entries) == MAX_ENTRIES
    assert result.reason == f"more than {MAX_ENTRIES} entries; kept the first {MAX_ENTRIES}"


def test_document_over_the_size_cap_is_refused_unread() -> None:
    content = b'<rss version="2.0"><channel>' + b" " * MAX_FEED_BYTES + b"</channel></rss>"
    parsed, _, bounds = _parse(content)
    assert parsed.entries == []
    assert parsed.problem == f"feed is {len(content)} bytes, over the {MAX_FEED_BYTES} limit"
    assert bounds.peak < MB


def test_one_enormous_text_node_is_bounded() -> None:
    content = (
        b'<rss version="2.0"><channel><title>T</title><item><title>t</title>'
        b"<link>https://big.example/1</link><description>"
        + b"word " * MB
        + b"</description></item></channel></rss>"
    )
    parsed, _, bounds = _parse(content)
    assert [e.url for e in parsed.entries] == ["https://big.example/1"]
    assert parsed.entries[0].summary is not None and len(parsed.entries[0].summary) <= 2000
    assert bounds.seconds < 5.0 + MARGIN
    assert bounds.peak < 24 * len(content)  # feedparser holds ~16x a text node


def test_deep_nesting_is_bounded() -> None:
    depth = 100_000
    content = (
        b'<rss version="2.0"><channel><title>T</title><item><title>deep</title>'
        b"<link>https://deep.example/1</link><description>"
        + b"<div>" * depth
        + b"x"
        + b"</div>" * depth
        + b"</description></item></channel></rss>"
    )
    parsed, _, bounds = _parse(content, memory=False)
    assert parsed.problem is None
    assert [e.url for e in parsed.entries] == ["https://deep.example/1"]
    assert bounds.seconds < 10.0 + MARGIN


# --- not feeds at all ----------------------------------------------------------------------------

NOT_FEEDS = {
    "html-page": (
        b"<!DOCTYPE html><html><head><title>Home</title></head><body>"
        + b"<p>Welcome <a href='/a'>in</a></p>" * 5000
        + b"</body></html>",
        "text/html; charset=utf-8",
    ),
    "invalid-xml": (b'<?xml version="1.0"?><rss><channel><<<>>>&&&</rss' * 1000, "text/xml"),
    "random-bytes": (bytes(range(256)) * 4096, "application/rss+xml"),
    "json": (b'{"items": [' + b'{"url": "https://j.example/1"},' * 10_000 + b"{}]}", "text/plain"),
    "nul-bytes": (b"\x00" * MB, "application/xml"),
}


@pytest.mark.parametrize("name", list(NOT_FEEDS))
def test_not_a_feed_is_a_recorded_problem(name: str) -> None:
    content, content_type = NOT_FEEDS[name]
    parsed, events, bounds = _parse(content, content_type)
    assert parsed.entries == []
    assert parsed.problem is not None
    assert parsed.problem.startswith(("not a readable feed: ", "not an RSS or Atom document"))
    assert _io(events) == []
    assert bounds.seconds < 5.0 + MARGIN
    assert bounds.peak < 64 * MB


def test_html_served_as_a_feed_through_fetch_feed() -> None:
    server = Server("127.0.0.2")
    html, _ = NOT_FEEDS["html-page"]
    server.routes["/feed"] = lambda h: h.reply(200, html, "application/rss+xml")
    settings = FetchSettings(allow_networks=(ip_network("127.0.0.2/32"),), deadline=5.0)
    try:
        with Fetcher(settings) as fetcher:
            result = fetch_feed(fetcher, FeedConfig(id="html", url=server.base + "/feed", name="h"))
    finally:
        server.close()
    assert result.outcome is FeedOutcome.INVALID
    assert result.reason is not None
    assert result.reason.startswith(("not a readable feed: ", "not an RSS or Atom document"))


def test_parse_feed_keeps_its_shape() -> None:
    entries, skipped, problem = parse_feed(_rss_items(3), FEED_URL)
    assert (len(entries), skipped, problem) == (3, 0, None)
