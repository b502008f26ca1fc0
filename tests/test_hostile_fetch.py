"""The fetcher against hostile origins: SSRF in every spelling, drips, bombs, loops, odd bodies.

Allowlisted test servers run on 127.0.0.2 (``allow_networks=127.0.0.2/32``). A *sentinel* —
plain TCP listeners on 127.0.0.1, 127.0.0.3 and ::1 that only count the connections they
accept — is reachable but forbidden: every SSRF test asserts that it saw no connection and
that the fetcher opened no socket at all.
"""

from __future__ import annotations

import gzip
import socket
import struct
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from ipaddress import ip_network
from typing import Any

import pytest
import urllib3.util.connection

from newsmon.config import FeedConfig, FetchSettings
from newsmon.extract import decode_html, extract_page
from newsmon.sources.feeds import FeedOutcome, fetch_feed
from newsmon.sources.fetch import Fetcher, FetchOutcome, FetchResult, system_resolver

from .helpers.clock import ManualClock
from .helpers.sites import Handler, Sentinel, Server, redirect

ALLOWED = (ip_network("127.0.0.2/32"),)
ORIGIN_HOST = "127.0.0.2"
MB = 1024 * 1024
PAGE = (
    b"<!DOCTYPE html><html><head><title>Harbour reopens</title></head><body><article>"
    b"<h1>Harbour reopens</h1><p>The harbour reopened on Monday after a week of repairs to the "
    b"storm wall, the port authority said in a statement.</p><p>Ferries resume their normal "
    b"timetable from Tuesday morning, and freight traffic follows later in the week.</p>"
    b"</article></body></html>"
)
RSS = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
    b"<item><title>One</title><link>https://news.example/1</link></item></channel></rss>"
)


@pytest.fixture
def origin() -> Iterator[Server]:
    srv = Server(ORIGIN_HOST)
    srv.routes["/page"] = lambda h: h.reply(200, PAGE, "text/html; charset=utf-8")
    yield srv
    srv.close()


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every address the fetcher opens a socket to. Nothing outside 127/8 is really dialled."""
    calls: list[tuple[str, int]] = []
    real = urllib3.util.connection.create_connection

    def spy(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        calls.append(address)
        if not address[0].startswith("127."):
            raise ConnectionRefusedError(f"test network: {address[0]} is not reachable")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", spy)
    return calls


def _fetcher(
    resolver: Callable[[str, int], Sequence[str]] | None = None,
    clock: ManualClock | None = None,
    **overrides: Any,
) -> Fetcher:
    settings: dict[str, Any] = {
        "allow_networks": ALLOWED,
        "connect_timeout": 2.0,
        "read_timeout": 3.0,
        "deadline": 5.0,
        "max_bytes": 2 * MB,
    }
    settings.update(overrides)
    fetch_settings = FetchSettings(**settings)
    if clock is None:
        return Fetcher(fetch_settings, resolver=resolver or system_resolver)
    return Fetcher(fetch_settings, resolver=resolver or system_resolver, clock=clock)


def _fake_dns(names: dict[str, list[str]]) -> Callable[[str, int], Sequence[str]]:
    """A resolver for made-up names; any other host goes to the system resolver."""

    def resolve(host: str, port: int) -> Sequence[str]:
        if host in names:
            return names[host]
        return system_resolver(host, port)

    return resolve


# --- SSRF ----------------------------------------------------------------------------------------

# Hosts that name a forbidden address: {p3} is the sentinel's port on 127.0.0.3, {p1} on
# 127.0.0.1, {p6} on ::1. Each is (url template, test id).
SSRF_TARGETS = [
    ("http://127.0.0.3:{p3}/", "loopback-other-than-allowed"),
    ("http://127.0.0.1:{p1}/", "loopback"),
    ("http://localhost:{p1}/", "localhost-name"),
    ("http://LOCALHOST.:{p1}/", "localhost-trailing-dot"),
    ("http://[::1]:{p6}/", "ipv6-loopback"),
    ("http://[::ffff:127.0.0.3]:{p3}/", "ipv4-mapped-ipv6"),
    ("http://[::ffff:7f00:3]:{p3}/", "ipv4-mapped-ipv6-hex"),
    ("http://[::127.0.0.3]:{p3}/", "ipv4-compatible-ipv6"),
    ("http://0.0.0.0:{p1}/", "unspecified"),
    ("http://0:{p1}/", "zero"),
    ("http://2130706435:{p3}/", "decimal"),
    ("http://0x7f000003:{p3}/", "hex-dword"),
    ("http://0x7f.3:{p3}/", "hex-short"),
    ("http://0177.0.0.3:{p3}/", "octal"),
    ("http://127.3:{p3}/", "short-form"),
    ("http://user:pw@127.0.0.3:{p3}/", "userinfo"),
    ("http://127.0.0.2:1@127.0.0.3:{p3}/", "userinfo-looks-like-allowed-host"),
    ("http://10.0.0.1/", "private-10"),
    ("http://172.16.0.1/", "private-172"),
    ("http://172.31.255.254/", "private-172-top"),
    ("http://192.168.1.1/", "private-192"),
    ("http://169.254.169.254/latest/meta-data/", "link-local-metadata"),
    ("http://[fe80::1]/", "ipv6-link-local"),
    ("http://[fd00:ec2::254]/", "ipv6-unique-local-metadata"),
    ("http://100.100.100.200/", "carrier-nat-metadata"),
    ("http://sentinel.test:{p3}/", "name-resolving-to-loopback"),
    ("http://mixed.test:{p3}/", "name-resolving-to-public-and-loopback"),
]
FAKE_NAMES = {"sentinel.test": ["127.0.0.3"], "mixed.test": ["93.184.216.34", "127.0.0.3"]}


def _url(template: str, sentinel: Sentinel) -> str:
    ports = sentinel.ports
    return template.format(
        p1=ports["127.0.0.1"], p3=ports["127.0.0.3"], p6=ports.get("::1", ports["127.0.0.1"])
    )


def _assert_refused(result: FetchResult, sentinel: Sentinel, connects: list[Any]) -> None:
    assert result.outcome is FetchOutcome.BLOCKED, (result.outcome, result.reason)
    assert result.reason and ("address" in result.reason or "resolves to" in result.reason)
    assert result.body == b""
    assert sentinel.accepted == 0


@pytest.mark.parametrize(("template", "kind"), SSRF_TARGETS, ids=[t[1] for t in SSRF_TARGETS])
def test_ssrf_article_url_is_refused_without_a_connection(
    template: str, kind: str, sentinel: Sentinel, connects: list[Any]
) -> None:
    url = _url(template, sentinel)
    with _fetcher(_fake_dns(FAKE_NAMES)) as fetcher:
        result = fetcher.get_html(url)
    _assert_refused(result, sentinel, connects)
    assert connects == []


@pytest.mark.parametrize(("template", "kind"), SSRF_TARGETS, ids=[t[1] for t in SSRF_TARGETS])
def test_ssrf_redirect_target_is_refused_without_a_connection(
    template: str, kind: str, sentinel: Sentinel, origin: Server, connects: list[Any]
) -> None:
    origin.routes["/go"] = redirect(_url(template, sentinel), 301)
    with _fetcher(_fake_dns(FAKE_NAMES)) as fetcher:
        result = fetcher.get_html(origin.base + "/go")
    _assert_refused(result, sentinel, connects)
    assert connects == [(ORIGIN_HOST, origin.port)]  # only the allowlisted origin was dialled
    assert [path for path, _ in origin.requests] == ["/go"]


@pytest.mark.parametrize(
    ("template", "kind"),
    [SSRF_TARGETS[0], SSRF_TARGETS[2], SSRF_TARGETS[10], SSRF_TARGETS[21], SSRF_TARGETS[25]],
    ids=["loopback", "localhost", "decimal", "metadata", "name-to-loopback"],
)
def test_ssrf_feed_url_goes_through_the_same_guard(
    template: str, kind: str, sentinel: Sentinel, origin: Server, connects: list[Any]
) -> None:
    target = _url(template, sentinel)
    origin.routes["/feed"] = redirect(target)
    with _fetcher(_fake_dns(FAKE_NAMES)) as fetcher:
        direct = fetch_feed(fetcher, FeedConfig(id="direct", url=target, name="direct"))
        redirected = fetch_feed(
            fetcher, FeedConfig(id="redirected", url=origin.base + "/feed", name="redirected")
        )
    for result in (direct, redirected):
        assert result.outcome is FeedOutcome.FETCH_FAILED
        assert result.fetch_outcome is FetchOutcome.BLOCKED
        assert result.entries == ()
    assert sentinel.accepted == 0
    assert connects == [(ORIGIN_HOST, origin.port)]


def test_the_sentinel_counts_connections(sentinel: Sentinel) -> None:
    """The instrument works: a connection made on purpose is counted."""
    for host in ("127.0.0.1", "127.0.0.3"):
        socket.create_connection((host, sentinel.ports[host]), timeout=2).close()
    deadline = time.monotonic() + 60  # a wait, not a bound: it ends as soon as both are seen
    while sentinel.accepted < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sentinel.accepted == 2


def test_allowlisted_origin_still_works(origin: Server, sentinel: Sentinel) -> None:
    origin.routes["/feed"] = lambda h: h.reply(200, RSS, "application/rss+xml")
    with _fetcher(_fake_dns({"news.test": [ORIGIN_HOST]})) as fetcher:
        page = fetcher.get_html(origin.base + "/page")
        named = fetcher.get_html(f"http://news.test:{origin.port}/page")
        feed = fetch_feed(fetcher, FeedConfig(id="ok", url=origin.base + "/feed", name="ok"))
    assert (page.outcome, page.body) == (FetchOutcome.OK, PAGE)
    assert (named.outcome, named.body) == (FetchOutcome.OK, PAGE)
    assert feed.outcome is FeedOutcome.FETCHED
    assert [e.url for e in feed.entries] == ["https://news.example/1"]
    assert sentinel.accepted == 0


def test_dns_rebinding_connects_to_the_checked_address(
    origin: Server, sentinel: Sentinel, connects: list[Any]
) -> None:
    """The name resolves to the allowed origin first and to the sentinel on every later lookup."""
    port = origin.port
    sentinel.listen("127.0.0.3", port=port)  # the rebound address serves the same port
    lookups: list[str] = []

    def rebinding(host: str, _port: int) -> list[str]:
        lookups.append(host)
        return [ORIGIN_HOST] if len(lookups) == 1 else ["127.0.0.3"]

    origin.routes["/close"] = lambda h: h.reply(200, PAGE, Connection="close")
    with _fetcher(rebinding) as fetcher:
        first = fetcher.get_html(f"http://rebind.test:{port}/close")
        second = fetcher.get_html(f"http://rebind.test:{port}/close")
    assert first.outcome is FetchOutcome.OK
    assert first.body == PAGE
    assert second.outcome is FetchOutcome.BLOCKED
    assert second.reason is not None and "127.0.0.3" in second.reason
    assert lookups == ["rebind.test", "rebind.test"]  # one lookup per connection, none to recheck
    assert connects == [(ORIGIN_HOST, port)]
    assert origin.connections == 1
    assert sentinel.accepted == 0


def test_dns_rebinding_from_a_public_address(sentinel: Sentinel, connects: list[Any]) -> None:
    """Checked as public, then rebound to loopback: the socket goes to the public address."""
    port = sentinel.ports["127.0.0.3"]
    answers = iter([["93.184.216.34"], ["127.0.0.3"], ["127.0.0.3"]])

    def rebinding(host: str, _port: int) -> list[str]:
        return next(answers)

    with _fetcher(rebinding) as fetcher:
        result = fetcher.get_html(f"http://rebind.test:{port}/")
    # the test network refuses the public address; what matters is where the socket went
    assert result.outcome is FetchOutcome.CONNECTION_ERROR
    assert connects == [("93.184.216.34", port)]
    assert sentinel.accepted == 0


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://127.0.0.2/pub/file",
        "gopher://127.0.0.2:70/_GET",
        "data:text/html,<p>hi</p>",
        "javascript:alert(1)",
        "dict://127.0.0.2:11211/stat",
        "ldap://127.0.0.2/",
        "//127.0.0.3/no-scheme",
    ],
)
def test_only_http_and_https(url: str, origin: Server, connects: list[Any]) -> None:
    origin.routes["/go"] = redirect(url)
    with _fetcher() as fetcher:
        direct = fetcher.get_html(url)
        redirected = fetcher.get_html(origin.base + "/go")
        feed = fetch_feed(fetcher, FeedConfig.model_construct(id="f", url=url, name="f"))
    assert direct.outcome is FetchOutcome.INVALID_URL
    assert direct.reason == f"not an http(s) URL: {url}"
    assert feed.outcome is FeedOutcome.FETCH_FAILED
    assert feed.fetch_outcome is FetchOutcome.INVALID_URL
    if url.startswith("//"):  # a scheme-relative redirect stays on http: to 127.0.0.3, refused
        assert redirected.outcome is FetchOutcome.BLOCKED
    else:
        assert redirected.outcome is FetchOutcome.INVALID_URL
        assert redirected.reason == f"not an http(s) URL: {url}"
    assert connects == [(ORIGIN_HOST, origin.port)]


# --- the deadline covers resolution and the TLS handshake ----------------------------------------


def test_slow_dns_ends_at_the_deadline(sentinel: Sentinel) -> None:
    """A lookup that takes 10 s of the fetcher's clock: the fetch ends at the 1.5 s deadline,
    while the lookup is still running (its answer is dropped)."""
    clock = ManualClock()
    release, answered = threading.Event(), threading.Event()

    def hanging(host: str, port: int) -> list[str]:
        clock.advance(10.0)
        release.wait(60)
        answered.set()
        return [ORIGIN_HOST]

    try:
        with _fetcher(hanging, clock, deadline=1.5, connect_timeout=10.0) as fetcher:
            result = fetcher.get_html("http://slow-dns.test/")
        still_resolving = not answered.is_set()
    finally:
        release.set()
    assert result.outcome is FetchOutcome.TIMEOUT
    assert result.reason == "total deadline of 1.5s passed"
    assert clock.delays == [1.5]
    assert still_resolving  # the fetch did not wait for the lookup
    assert sentinel.accepted == 0


def _raw_listener(host: str = ORIGIN_HOST) -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind((host, 0))
    sock.listen(8)
    return sock, int(sock.getsockname()[1])


def test_slow_dns_then_tls_handshake_drip_ends_at_the_deadline() -> None:
    """60 s of name resolution, then a TLS server answering one byte a second (both on the
    fetcher's clock), against a 100 s deadline and 80 s connect/read timeouts.

    Each step alone stays under its timeout; the deadline covers them together, so the
    handshake gets the 40 s the lookup left, not a timeout of its own.
    """
    clock = ManualClock()
    listener, port = _raw_listener()
    stop = threading.Event()
    sent = [0]

    def serve() -> None:
        conn, _ = listener.accept()
        conn.recv(4096)  # the ClientHello
        record = b"\x16\x03\x03\x40\x00" + b"\x02" * 0x4000  # a 16 KB handshake record
        for byte in record:
            if clock.fired.is_set() or stop.wait(0.002):
                break
            try:
                conn.sendall(bytes([byte]))
            except OSError:
                break
            sent[0] += 1
            clock.advance(1.0)
        conn.close()

    def slow(host: str, _port: int) -> list[str]:
        clock.advance(60.0)
        return [ORIGIN_HOST]

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with _fetcher(
            slow, clock, deadline=100.0, connect_timeout=80.0, read_timeout=80.0
        ) as fetcher:
            result = fetcher.get_html(f"https://tls.test:{port}/")
    finally:
        stop.set()
        listener.close()
    assert result.outcome is FetchOutcome.TIMEOUT, result.reason
    assert result.reason == "total deadline of 100s passed"
    assert clock.delays == [100.0]
    assert result.seconds == 100.0
    assert sent[0] == 40


# --- slow and endless bodies ---------------------------------------------------------------------


def _drip_route(
    server: Server, clock: ManualClock, head: bytes, body_forever: bool, sent: list[int]
) -> Callable[[Handler], None]:
    """``head``, then an endless body if asked, one byte per second of ``clock`` (moved here)
    until the fetcher's watchdog has fired."""

    def one_byte(handler: Handler, byte: bytes) -> bool:
        if clock.fired.is_set() or server.stop.wait(0.002):
            return False
        try:
            handler.wfile.write(byte)
            handler.wfile.flush()
        except OSError:
            return False
        sent[0] += 1
        clock.advance(1.0)
        return True

    def route(handler: Handler) -> None:
        for byte in head:
            if not one_byte(handler, bytes([byte])):
                return
        while body_forever and one_byte(handler, b"x"):
            pass

    return route


@pytest.mark.parametrize("where", ["headers", "body"])
def test_one_byte_a_second_ends_at_the_deadline(origin: Server, where: str) -> None:
    """Each byte well within the 20 s read timeout; the 30 s deadline ends it after 30 bytes."""
    clock, sent = ManualClock(), [0]
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n"
    if where == "headers":
        origin.routes["/drip"] = _drip_route(origin, clock, head, False, sent)
    else:

        def fast_head_slow_body(handler: Handler) -> None:
            handler.wfile.write(head)
            handler.wfile.flush()
            _drip_route(origin, clock, b"", True, sent)(handler)

        origin.routes["/drip"] = fast_head_slow_body
    with _fetcher(clock=clock, deadline=30.0, read_timeout=20.0, connect_timeout=20.0) as fetcher:
        result = fetcher.get_html(origin.base + "/drip")
    assert result.outcome is FetchOutcome.TIMEOUT
    assert result.reason == "total deadline of 30s passed"
    assert result.body == b""
    assert clock.delays == [30.0]
    assert result.seconds == 30.0
    assert sent[0] == 30


class _Measured:
    """Peak Python memory while the block runs (tracemalloc)."""

    peak = 0

    def __enter__(self) -> _Measured:
        tracemalloc.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


def _chunked(handler: Handler, total: int, chunk: bytes, sent: list[int]) -> None:
    """A chunked body of ``total`` bytes generated on the fly (2 GB is never stored)."""
    handler.wfile.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    framed = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    try:
        while sent[0] < total:
            handler.wfile.write(framed)
            sent[0] += len(chunk)
        handler.wfile.write(b"0\r\n\r\n")
    except OSError:
        pass  # the client hung up at its cap


def test_two_gigabyte_chunked_body_stops_at_the_cap(origin: Server) -> None:
    sent = [0]
    origin.routes["/huge"] = lambda h: _chunked(h, 2 * 1024 * MB, b"<p>" + b"a" * 65533, sent)
    with _fetcher(max_bytes=2 * MB) as fetcher, _Measured() as memory:
        result = fetcher.get_html(origin.base + "/huge")
    assert result.outcome is FetchOutcome.TOO_LARGE
    assert result.reason == f"body over {2 * MB} bytes"
    assert result.body == b""
    assert memory.peak < 4 * 2 * MB
    assert sent[0] < 64 * MB  # the sender stopped soon after: socket buffers, not 2 GB


def test_one_chunk_declaring_two_gigabytes(origin: Server) -> None:
    def route(handler: Handler) -> None:
        handler.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"80000000\r\n"
        )
        block = b"b" * 65536
        try:
            while not origin.stop.is_set():
                handler.wfile.write(block)
        except OSError:
            pass

    origin.routes["/chunk"] = route
    with _fetcher(max_bytes=MB) as fetcher, _Measured() as memory:
        result = fetcher.get_html(origin.base + "/chunk")
    assert result.outcome is FetchOutcome.TOO_LARGE
    assert memory.peak < 4 * MB


def test_declared_two_gigabytes_is_refused_before_reading(origin: Server) -> None:
    def route(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Content-Length", str(2 * 1024 * MB))
        handler.end_headers()
        handler.wfile.write(b"x" * 1024)

    origin.routes["/big"] = route
    with _fetcher() as fetcher:
        result = fetcher.get_html(origin.base + "/big")
    assert result.outcome is FetchOutcome.TOO_LARGE
    assert result.reason == f"Content-Length {2 * 1024 * MB} > {2 * MB}"


# --- compression bombs ---------------------------------------------------------------------------


@cache
def _zeros_deflated(size: int) -> tuple[bytes, int, int]:
    """A raw deflate stream of ``size`` zero bytes, and their CRC-32 and Adler-32."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = bytes(MB)
    parts, crc, adler = [], 0, 1
    for _ in range(size // MB):
        parts.append(compressor.compress(block))
        crc, adler = zlib.crc32(block, crc), zlib.adler32(block, adler)
    parts.append(compressor.flush())
    return b"".join(parts), crc, adler


def _bomb(size: int, wrapper: str) -> bytes:
    """``size`` zero bytes, deflated once and wrapped as gzip, zlib or raw deflate."""
    raw, crc, adler = _zeros_deflated(size)
    if wrapper == "gzip":
        header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
        return header + raw + struct.pack("<II", crc, size & 0xFFFFFFFF)
    if wrapper == "zlib":
        return b"\x78\xda" + raw + struct.pack(">I", adler)
    return raw


BOMBS: dict[str, tuple[Callable[[], bytes], str]] = {
    "gzip-1GB": (lambda: _bomb(1024 * MB, "gzip"), "gzip"),
    "deflate-zlib-1GB": (lambda: _bomb(1024 * MB, "zlib"), "deflate"),
    "deflate-raw-1GB": (lambda: _bomb(1024 * MB, "raw"), "deflate"),
    "gzip-of-gzip-1GB": (lambda: gzip.compress(_bomb(1024 * MB, "gzip"), 9), "gzip, gzip"),
}


def test_the_bombs_are_what_they_claim() -> None:
    """Each decodes to zeros (checked on its first megabyte: the fetcher never reads more)."""
    wbits = {"gzip": 31, "deflate-zlib": 15, "deflate-raw": -15, "gzip-of-gzip": 31}
    for name, (make, _) in BOMBS.items():
        kind = name.removesuffix("-1GB")
        bomb = gzip.decompress(make()) if kind == "gzip-of-gzip" else make()
        assert zlib.decompressobj(wbits[kind]).decompress(bomb, MB) == bytes(MB), name


@pytest.mark.parametrize("name", list(BOMBS))
@pytest.mark.parametrize("redirected", [False, True], ids=["direct", "behind-redirect"])
def test_compression_bomb_stops_at_the_cap(origin: Server, name: str, redirected: bool) -> None:
    make, coding = BOMBS[name]
    bomb = make()
    assert len(bomb) < 2 * MB  # small on the wire, 1 GB decoded
    origin.routes["/bomb"] = lambda h: h.reply(200, bomb, Content_Encoding=coding)
    origin.routes["/go"] = redirect("/bomb")
    with _fetcher(max_bytes=2 * MB) as fetcher, _Measured() as memory:
        result = fetcher.get_html(origin.base + ("/go" if redirected else "/bomb"))
    assert result.outcome is FetchOutcome.TOO_LARGE
    assert result.reason == f"body over {2 * MB} bytes"
    assert result.body == b""
    assert result.final_url == origin.base + "/bomb"
    assert memory.peak < 8 * 2 * MB


@pytest.mark.parametrize("coding", ["br", "zstd", "compress", "gzip, br", "x-bogus"])
def test_codings_the_fetcher_did_not_ask_for_are_refused(origin: Server, coding: str) -> None:
    origin.routes["/enc"] = lambda h: h.reply(200, b"\x1b\xff\xff" * 1000, Content_Encoding=coding)
    with _fetcher() as fetcher:
        result = fetcher.get_html(origin.base + "/enc")
    assert result.outcome is FetchOutcome.WRONG_TYPE
    assert result.reason == f"content encoding {coding.split(', ')[-1]}"
    assert result.body == b""
    assert origin.requests[0][1]["Accept-Encoding"] == "gzip, deflate"


def test_corrupt_gzip_is_a_recorded_error(origin: Server) -> None:
    origin.routes["/bad"] = lambda h: h.reply(
        200, b"\x1f\x8b\x08\x00garbage" * 10, Content_Encoding="gzip"
    )
    with _fetcher() as fetcher:
        result = fetcher.get_html(origin.base + "/bad")
    assert result.outcome is FetchOutcome.CONNECTION_ERROR
    assert result.reason is not None
    assert result.reason.startswith("cannot decode the gzip body: error: Error -3")


# --- redirects -----------------------------------------------------------------------------------


def test_twenty_hop_chain_stops_at_the_redirect_cap(origin: Server) -> None:
    for i in range(20, 0, -1):
        origin.routes[f"/r{i}"] = redirect(f"/r{i - 1}")
    origin.routes["/r0"] = lambda h: h.reply(200, PAGE)
    with _fetcher() as fetcher:  # max_redirects=5, the default
        capped = fetcher.get_html(origin.base + "/r20")
    assert capped.outcome is FetchOutcome.TOO_MANY_REDIRECTS
    assert capped.reason == "more than 5 redirects"
    assert len(origin.requests) == 6
    with _fetcher(max_redirects=20) as fetcher:
        allowed = fetcher.get_html(origin.base + "/r20")
    assert (allowed.outcome, allowed.body) == (FetchOutcome.OK, PAGE)
    assert allowed.final_url == origin.base + "/r0"


def test_ping_pong_loop_between_two_urls(origin: Server) -> None:
    origin.routes["/ping"] = redirect("/pong", 307)
    origin.routes["/pong"] = redirect(origin.base + "/ping", 308)
    with _fetcher() as fetcher:
        result = fetcher.get_html(origin.base + "/ping")
    assert result.outcome is FetchOutcome.TOO_MANY_REDIRECTS
    assert [p for p, _ in origin.requests] == ["/ping", "/pong"] * 3


def test_redirect_without_location_is_an_http_error(origin: Server) -> None:
    origin.routes["/nowhere"] = lambda h: h.reply(302, b"")
    with _fetcher() as fetcher:
        result = fetcher.get_html(origin.base + "/nowhere")
    assert result.outcome is FetchOutcome.HTTP_ERROR
    assert result.reason == "HTTP 302 Found"


# --- bodies that are not what they say -----------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["image/png", "application/pdf", "application/octet-stream", "video/mp4", "application/json"],
)
def test_non_html_content_types_are_not_read(origin: Server, content_type: str) -> None:
    def typed(handler: Handler) -> None:
        handler.wfile.write(f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n".encode())
        handler.wfile.write(b"Content-Length: 1073741824\r\n\r\n" + b"\x00" * 65536)

    origin.routes["/file"] = typed
    with _fetcher() as fetcher:
        result = fetcher.get_html(origin.base + "/file")
    assert result.outcome is FetchOutcome.WRONG_TYPE
    assert result.reason == f"content type {content_type}"
    assert result.body == b""


def test_binary_body_labelled_html_is_fetched_and_yields_no_article(origin: Server) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64
    origin.routes["/fake"] = lambda h: h.reply(200, png, "text/html")
    origin.routes["/untyped"] = lambda h: h.reply(200, png, "")
    with _fetcher() as fetcher:
        labelled = fetcher.get_html(origin.base + "/fake")
        untyped = fetcher.get_html(origin.base + "/untyped")
    assert labelled.outcome is FetchOutcome.OK
    assert untyped.outcome is FetchOutcome.OK  # no type given: read, then judged by extraction
    for result in (labelled, untyped):
        assert extract_page(result.body, result.final_url, content_type=result.content_type) is None


ARTICLE = (
    "<html><head><title>Caf\u00e9 r\u00e9ouvre</title></head><body><article><h1>Caf\u00e9 "
    "r\u00e9ouvre</h1><p>Le caf\u00e9 de la gare a rouvert ses portes lundi apr\u00e8s "
    "trois mois de travaux, a annonc\u00e9 la mairie dans un communiqu\u00e9.</p><p>Les "
    "habitu\u00e9s ont retrouv\u00e9 leur terrasse et le menu d\u2019autrefois, \u00e0 "
    "quelques d\u00e9tails pr\u00e8s.</p></article></body></html>"
)


@pytest.mark.parametrize(
    ("codec", "content_type", "meta"),
    [
        ("cp1252", "text/html; charset=utf-8", ""),  # header lies
        ("cp1252", "text/html; charset=no-such-charset", ""),  # unknown label
        ("utf-8", "text/html", ""),  # no charset anywhere
        ("cp1252", "text/html", ""),  # no charset anywhere, not UTF-8
        ("cp1252", "text/html", '<meta charset="utf-8">'),  # document lies
        ("utf-8", "text/html; charset=", '<meta charset="x-unknown">'),  # empty and unknown
        ("utf-16", "text/html", ""),  # BOM only
        ("utf-8", "text/html; charset=utf-7", ""),  # a charset nobody should honour
    ],
)
def test_wrong_and_missing_charsets_decode_to_the_article(
    origin: Server, codec: str, content_type: str, meta: str
) -> None:
    document = ARTICLE.replace("<head>", f"<head>{meta}").encode(codec)
    origin.routes["/fr"] = lambda h: h.reply(200, document, content_type)
    with _fetcher() as fetcher:
        result = fetcher.get_html(origin.base + "/fr")
    assert result.outcome is FetchOutcome.OK
    text = decode_html(result.body, result.content_type)
    assert "apr\u00e8s trois mois" in text
    page = extract_page(result.body, result.final_url, content_type=result.content_type)
    assert page is not None
    assert "rouvert ses portes" in page.text


def test_utf8_labelled_latin1_by_the_header_is_read_as_latin1(origin: Server) -> None:
    """The header wins, as in a browser: mojibake, but decoded and extracted without error."""
    origin.routes["/fr"] = lambda h: h.reply(200, ARTICLE.encode(), "text/html; charset=iso-8859-1")
    with _fetcher() as fetcher:
        result = fetcher.get_html(origin.base + "/fr")
    assert result.outcome is FetchOutcome.OK
    assert "apr\u00c3\u00a8s trois mois" in decode_html(result.body, result.content_type)
    page = extract_page(result.body, result.final_url, content_type=result.content_type)
    assert page is not None and "rouvert ses portes" in page.text
