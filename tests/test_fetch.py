"""Fetcher against real loopback HTTP servers: the address guard, caps, deadlines, redirects."""

from __future__ import annotations

import gzip
import socket
import time
import zlib
from collections.abc import Iterator
from functools import cache
from ipaddress import ip_network
from typing import Any

import pytest
import urllib3.util.connection

from newsmon.config import FetchSettings
from newsmon.sources.fetch import Fetcher, FetchOutcome, Validators, address_allowed

from .helpers.clock import ManualClock
from .helpers.sites import Handler, Server, redirect

LOOPBACK = (ip_network("127.0.0.1/32"),)
PAGE = b"<!DOCTYPE html><html><head><title>Hi</title></head><body><p>Hello</p></body></html>"


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.close()


def _fetcher(clock: ManualClock | None = None, **overrides: Any) -> Fetcher:
    settings: dict[str, Any] = {
        "allow_networks": LOOPBACK,
        "connect_timeout": 2.0,
        "read_timeout": 3.0,
        "deadline": 5.0,
    }
    settings.update(overrides)
    if clock is None:
        return Fetcher(FetchSettings(**settings))
    return Fetcher(FetchSettings(**settings), clock=clock)


def _page(handler: Handler) -> None:
    etag = '"v1"'
    modified = "Tue, 03 Jun 2025 10:00:00 GMT"
    if handler.headers.get("If-None-Match") == etag:
        handler.send_response(304)
        handler.send_header("ETag", etag)
        handler.end_headers()
        return
    if handler.headers.get("If-Modified-Since") == modified:
        handler.send_response(304)
        handler.end_headers()
        return
    handler.reply(200, PAGE, "text/html; charset=utf-8", ETag=etag, Last_Modified=modified)


# --- the address guard ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("127.0.0.1", False),
        ("127.1.2.3", False),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("192.0.2.1", False),  # documentation
        ("198.18.0.1", False),  # benchmarking
        ("224.0.0.1", False),  # multicast
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("::1", False),
        ("::", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped
        ("::ffff:10.0.0.1", False),
        ("::ffff:169.254.169.254", False),
        ("::127.0.0.1", False),  # IPv4-compatible (deprecated)
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
        ("2002:a00:1::1", False),  # 6to4 of 10.0.0.1
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("fe80::1", False),
        ("fe80::1%eth0", False),
        ("fec0::1", False),  # site-local (deprecated)
        ("fc00::1", False),
        ("fd12:3456::1", False),
        ("ff02::1", False),
        ("ff0e::1", False),
        ("2001:db8::1", False),
        ("8.8.8.8", True),
        ("1.1.1.1", True),
        ("::ffff:8.8.8.8", True),
        ("64:ff9b::808:808", True),  # NAT64 of a public address (IPv6-only hosts need it)
        ("2002:808:808::1", True),
        ("2001:4860:4860::8888", True),
        ("2a00:1450:4001:80b::200e", True),
    ],
)
def test_address_allowed(address: str, allowed: bool) -> None:
    assert address_allowed(address) is allowed


@pytest.mark.parametrize(
    ("address", "allow", "allowed"),
    [
        ("127.0.0.1", ["127.0.0.1/32"], True),
        ("::ffff:127.0.0.1", ["127.0.0.1/32"], True),
        ("127.0.0.2", ["127.0.0.1/32"], False),
        ("10.1.2.3", ["10.0.0.0/8"], True),
        ("10.1.2.3", ["192.168.0.0/16", "10.1.2.3/32"], True),
        ("169.254.169.254", ["10.0.0.0/8"], False),
        ("::1", ["::1/128"], True),
        ("::1", ["127.0.0.1/32"], False),
        ("8.8.8.8", ["10.0.0.0/8"], True),
    ],
)
def test_address_allowed_with_allowlist(address: str, allow: list[str], allowed: bool) -> None:
    assert address_allowed(address, tuple(ip_network(n) for n in allow)) is allowed


@pytest.fixture
def connect_spy(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every address the fetcher opens a socket to."""
    calls: list[tuple[str, int]] = []
    real = urllib3.util.connection.create_connection

    def spy(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        calls.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", spy)
    return calls


def test_allowlisted_loopback_is_fetched(server: Server, connect_spy: list[Any]) -> None:
    server.routes["/page"] = _page
    with _fetcher() as fetcher:
        result = fetcher.get_html(server.base + "/page")
    assert result.outcome is FetchOutcome.OK
    assert result.outcome.value == "fetched"
    assert result.ok
    assert result.body == PAGE
    assert result.status == 200
    assert result.final_url == server.base + "/page"
    assert result.url == server.base + "/page"
    assert result.content_type == "text/html; charset=utf-8"
    assert result.validators == Validators(
        etag='"v1"', last_modified="Tue, 03 Jun 2025 10:00:00 GMT"
    )
    assert result.reason is None
    assert result.seconds > 0
    assert server.connections == 1
    assert connect_spy == [("127.0.0.1", server.port)]
    headers = server.requests[0][1]
    assert headers["User-Agent"].startswith("newsmon/")
    assert "gzip" in headers["Accept-Encoding"]
    assert headers["Accept"].startswith("text/html")


def test_loopback_blocked_without_allowlist(server: Server, connect_spy: list[Any]) -> None:
    server.routes["/page"] = _page
    with _fetcher(allow_networks=()) as fetcher:
        result = fetcher.get_html(server.base + "/page")
    assert result.outcome is FetchOutcome.BLOCKED
    assert result.outcome.value == "blocked_address"
    assert not result.ok
    assert result.body == b""
    assert result.status is None
    assert result.reason is not None and "127.0.0.1" in result.reason
    assert server.connections == 0
    assert server.requests == []
    assert connect_spy == []


def test_localhost_name_blocked_without_allowlist(server: Server, connect_spy: list[Any]) -> None:
    server.routes["/page"] = _page
    with _fetcher(allow_networks=()) as fetcher:
        result = fetcher.get_html(f"http://localhost:{server.port}/page")
    assert result.outcome is FetchOutcome.BLOCKED
    assert result.reason is not None and "localhost" in result.reason
    assert server.connections == 0
    assert connect_spy == []


def test_allowlist_of_another_network_does_not_open_loopback(server: Server) -> None:
    with _fetcher(allow_networks=(ip_network("10.0.0.0/8"),)) as fetcher:
        result = fetcher.get(server.base + "/page")
    assert result.outcome is FetchOutcome.BLOCKED
    assert server.connections == 0


def test_redirect_to_a_blocked_loopback_address(server: Server, connect_spy: list[Any]) -> None:
    other = Server("127.0.0.2")
    try:
        other.routes["/secret"] = _page
        server.routes["/go"] = redirect(other.base + "/secret")
        with _fetcher() as fetcher:  # only 127.0.0.1/32 is allowed
            result = fetcher.get_html(server.base + "/go")
        assert result.outcome is FetchOutcome.BLOCKED
        assert result.reason is not None and "127.0.0.2" in result.reason
        assert result.body == b""
        assert [path for path, _ in server.requests] == ["/go"]
        assert other.connections == 0
        assert connect_spy == [("127.0.0.1", server.port)]
    finally:
        other.close()


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.255.255.1/",
        "http://[::1]:9/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://0.0.0.0:9/",
    ],
)
def test_redirect_to_private_address_is_refused_without_connecting(
    server: Server, connect_spy: list[Any], target: str
) -> None:
    server.routes["/go"] = redirect(target, 301)
    with _fetcher(connect_timeout=3.0) as fetcher:
        result = fetcher.get_html(server.base + "/go")
    assert result.outcome is FetchOutcome.BLOCKED
    assert connect_spy == [("127.0.0.1", server.port)]


# --- redirects -----------------------------------------------------------------------------------


def _chain(server: Server, length: int) -> None:
    for i in range(length, 0, -1):
        server.routes[f"/r{i}"] = redirect(f"/r{i - 1}")
    server.routes["/r0"] = _page


def test_redirect_chain_within_the_limit(server: Server) -> None:
    _chain(server, 3)
    with _fetcher(max_redirects=3) as fetcher:
        result = fetcher.get_html(server.base + "/r3")
    assert result.outcome is FetchOutcome.OK
    assert result.final_url == server.base + "/r0"
    assert result.url == server.base + "/r3"
    assert result.body == PAGE
    assert [p for p, _ in server.requests] == ["/r3", "/r2", "/r1", "/r0"]


def test_redirect_chain_over_the_limit(server: Server) -> None:
    _chain(server, 4)
    with _fetcher(max_redirects=3) as fetcher:
        result = fetcher.get_html(server.base + "/r4")
    assert result.outcome is FetchOutcome.TOO_MANY_REDIRECTS
    assert result.reason == "more than 3 redirects"
    assert [p for p, _ in server.requests] == ["/r4", "/r3", "/r2", "/r1"]


def test_redirect_loop_ends(server: Server) -> None:
    server.routes["/loop"] = redirect("/loop", 307)
    with _fetcher(max_redirects=5) as fetcher:
        result = fetcher.get_html(server.base + "/loop")
    assert result.outcome is FetchOutcome.TOO_MANY_REDIRECTS
    assert len(server.requests) == 6


def test_no_redirects_allowed(server: Server) -> None:
    _chain(server, 1)
    with _fetcher(max_redirects=0) as fetcher:
        result = fetcher.get_html(server.base + "/r1")
    assert result.outcome is FetchOutcome.TOO_MANY_REDIRECTS


def test_redirect_to_another_scheme(server: Server, connect_spy: list[Any]) -> None:
    server.routes["/go"] = redirect("file:///etc/passwd")
    with _fetcher() as fetcher:
        result = fetcher.get_html(server.base + "/go")
    assert result.outcome is FetchOutcome.INVALID_URL
    assert result.reason == "not an http(s) URL: file:///etc/passwd"
    assert len(connect_spy) == 1


# --- answers that are not a page ------------------------------------------------------------------


def test_http_error(server: Server) -> None:
    with _fetcher() as fetcher:
        result = fetcher.get_html(server.base + "/missing")
    assert result.outcome is FetchOutcome.HTTP_ERROR
    assert result.status == 404
    assert result.reason == "HTTP 404 Not Found"
    assert result.body == b""
    assert result.final_url == server.base + "/missing"


def test_server_error(server: Server) -> None:
    server.routes["/boom"] = lambda h: h.reply(503, b"busy")
    with _fetcher() as fetcher:
        result = fetcher.get_html(server.base + "/boom")
    assert (result.outcome, result.status) == (FetchOutcome.HTTP_ERROR, 503)


def test_wrong_content_type(server: Server) -> None:
    server.routes["/img"] = lambda h: h.reply(200, b"\x89PNG\r\n\x1a\n", "image/png")
    with _fetcher() as fetcher:
        result = fetcher.get_html(server.base + "/img")
        assert fetcher.get(server.base + "/img").outcome is FetchOutcome.OK  # no type wanted
    assert result.outcome is FetchOutcome.WRONG_TYPE
    assert result.outcome.value == "not_html"
    assert result.reason == "content type image/png"
    assert result.content_type == "image/png"
    assert result.body == b""


def test_feed_types_accepted_by_get_feed(server: Server) -> None:
    server.routes["/feed"] = lambda h: h.reply(200, b"<rss/>", "application/rss+xml")
    with _fetcher() as fetcher:
        assert fetcher.get_feed(server.base + "/feed").outcome is FetchOutcome.OK
        assert fetcher.get_html(server.base + "/feed").outcome is FetchOutcome.WRONG_TYPE


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/file", "file:///etc/passwd", "gopher://127.0.0.1/", "http://"]
)
def test_non_http_url(url: str, connect_spy: list[Any]) -> None:
    with _fetcher() as fetcher:
        result = fetcher.get_html(url)
    assert result.outcome is FetchOutcome.INVALID_URL
    assert result.outcome.value == "invalid_url"
    assert connect_spy == []


def test_connection_refused() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    with _fetcher() as fetcher:
        result = fetcher.get_html(f"http://127.0.0.1:{port}/")
    assert result.outcome is FetchOutcome.CONNECTION_ERROR


# --- conditional GET -----------------------------------------------------------------------------


def test_conditional_get_with_etag(server: Server) -> None:
    server.routes["/page"] = _page
    with _fetcher() as fetcher:
        first = fetcher.get_feed(server.base + "/page")
        second = fetcher.get_feed(server.base + "/page", first.validators)
    assert first.outcome is FetchOutcome.OK
    assert server.requests[1][1]["If-None-Match"] == '"v1"'
    assert second.outcome is FetchOutcome.NOT_MODIFIED
    assert second.outcome.value == "not_modified"
    assert second.status == 304
    assert second.body == b""
    assert "If-None-Match" not in server.requests[0][1]


def test_conditional_get_with_last_modified(server: Server) -> None:
    server.routes["/page"] = _page
    with _fetcher() as fetcher:
        validators = Validators(last_modified="Tue, 03 Jun 2025 10:00:00 GMT")
        result = fetcher.get_feed(server.base + "/page", validators)
    assert result.outcome is FetchOutcome.NOT_MODIFIED
    assert server.requests[0][1]["If-Modified-Since"] == "Tue, 03 Jun 2025 10:00:00 GMT"
    assert "If-None-Match" not in server.requests[0][1]


def test_stale_etag_gets_the_page(server: Server) -> None:
    server.routes["/page"] = _page
    with _fetcher() as fetcher:
        result = fetcher.get_feed(server.base + "/page", Validators(etag='"v0"'))
    assert result.outcome is FetchOutcome.OK
    assert result.body == PAGE


# --- size caps -----------------------------------------------------------------------------------

MB = 1024 * 1024


def test_declared_length_over_the_cap(server: Server) -> None:
    def big(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Content-Length", str(50 * MB))
        handler.end_headers()
        handler.wfile.write(b"x" * 1024)

    server.routes["/big"] = big
    with _fetcher(max_bytes=MB) as fetcher:
        result = fetcher.get_html(server.base + "/big")
    assert result.outcome is FetchOutcome.TOO_LARGE
    assert result.reason == f"Content-Length {50 * MB} > {MB}"
    assert result.body == b""


def test_undeclared_length_over_the_cap(server: Server) -> None:
    def stream(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.end_headers()  # HTTP/1.0 without a length: the body ends when the socket closes
        chunk = b"y" * 65536
        for _ in range(64):  # 4 MB
            if server.stop.is_set():
                return
            handler.wfile.write(chunk)

    server.routes["/stream"] = stream
    with _fetcher(max_bytes=MB) as fetcher:
        result = fetcher.get_html(server.base + "/stream")
    assert result.outcome is FetchOutcome.TOO_LARGE
    assert result.reason == f"body over {MB} bytes"


def test_body_exactly_at_the_cap_is_fine(server: Server) -> None:
    body = b"z" * 4096
    server.routes["/exact"] = lambda h: h.reply(200, body)
    with _fetcher(max_bytes=4096) as fetcher:
        result = fetcher.get_html(server.base + "/exact")
    assert result.outcome is FetchOutcome.OK
    assert result.body == body


@cache
def _gzip_bomb(size: int) -> bytes:
    """gzip of ``size`` zero bytes, built without holding them in memory."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(MB)
    parts = [compressor.compress(block) for _ in range(size // MB)]
    parts.append(compressor.flush())
    return b"".join(parts)


def test_gzip_body_within_the_cap_is_decoded(server: Server) -> None:
    body = gzip.compress(PAGE)
    server.routes["/gz"] = lambda h: h.reply(200, body, Content_Encoding="gzip")
    with _fetcher() as fetcher:
        result = fetcher.get_html(server.base + "/gz")
    assert result.outcome is FetchOutcome.OK
    assert result.body == PAGE


def test_gzip_bomb_stops_at_the_cap(server: Server) -> None:
    bomb = _gzip_bomb(50 * MB)
    assert len(bomb) < 100_000  # ~50 KB on the wire, 50 MB decoded
    server.routes["/bomb"] = lambda h: h.reply(200, bomb, Content_Encoding="gzip")
    with _fetcher(max_bytes=MB) as fetcher:
        result = fetcher.get_html(server.base + "/bomb")
    assert result.outcome is FetchOutcome.TOO_LARGE
    assert result.reason == f"body over {MB} bytes"
    assert result.body == b""


# --- slow servers --------------------------------------------------------------------------------


def _dripping(server: Server, clock: ManualClock, head: bytes, sent: list[int]) -> Any:
    """A route writing ``head`` at once, then one byte per second of ``clock`` (the route moves
    it) until the fetcher's watchdog has fired."""

    def drip(handler: Handler) -> None:
        handler.wfile.write(head)
        handler.wfile.flush()
        while not clock.fired.is_set() and not server.stop.wait(0.002):
            try:
                handler.wfile.write(b"x")
                handler.wfile.flush()
            except OSError:
                return
            sent[0] += 1
            clock.advance(1.0)

    return drip


def test_dripping_body_ends_at_the_deadline(server: Server) -> None:
    """A byte a second, each well within the read timeout: the 15 s deadline ends it, at 15 s of
    the fetcher's clock and after 15 body bytes."""
    clock, sent = ManualClock(), [0]
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n"
    server.routes["/drip"] = _dripping(server, clock, head, sent)
    with _fetcher(clock, deadline=15.0, read_timeout=60.0, connect_timeout=60.0) as fetcher:
        result = fetcher.get_html(server.base + "/drip")
    assert result.outcome is FetchOutcome.TIMEOUT
    assert result.reason == "total deadline of 15s passed"
    assert result.body == b""
    assert clock.delays == [15.0]  # the watchdog was armed with the deadline
    assert result.seconds == 15.0
    assert sent[0] == 15


def test_dripping_headers_end_at_the_deadline(server: Server) -> None:
    """The status line and headers a byte a second: the deadline covers them as a whole."""
    clock, sent = ManualClock(), [0]

    def drip(handler: Handler) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Padding: " + b"p" * 200
        for byte in head:
            if clock.fired.is_set() or server.stop.wait(0.002):
                return
            try:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
            except OSError:
                return
            sent[0] += 1
            clock.advance(1.0)

    server.routes["/slow-head"] = drip
    with _fetcher(clock, deadline=15.0, read_timeout=60.0, connect_timeout=60.0) as fetcher:
        result = fetcher.get_html(server.base + "/slow-head")
    assert result.outcome is FetchOutcome.TIMEOUT
    assert result.reason == "total deadline of 15s passed"
    assert clock.delays == [15.0]
    assert result.seconds == 15.0
    assert sent[0] == 15


def test_silent_server_hits_the_read_timeout(server: Server) -> None:
    """Nothing after the request: the read timeout ends it, long before the deadline's clock."""
    clock = ManualClock()  # never moved: the deadline cannot be what ends this fetch
    server.routes["/silent"] = lambda h: server.stop.wait(30)
    started = time.monotonic()
    with _fetcher(clock, deadline=5.0, read_timeout=0.5) as fetcher:
        result = fetcher.get_html(server.base + "/silent")
    assert result.outcome is FetchOutcome.TIMEOUT
    assert result.reason == "TimeoutError: timed out"  # the socket's, not the deadline's
    assert not clock.fired.is_set()
    assert time.monotonic() - started >= 0.5  # a socket timeout never ends early


def test_fetcher_is_reusable_after_a_timeout(server: Server) -> None:
    server.routes["/silent"] = lambda h: server.stop.wait(10)
    server.routes["/page"] = _page
    with _fetcher(deadline=0.5, read_timeout=3.0) as fetcher:
        assert fetcher.get_html(server.base + "/silent").outcome is FetchOutcome.TIMEOUT
        result = fetcher.get_html(server.base + "/page")
    assert result.outcome is FetchOutcome.OK
    assert result.body == PAGE


def test_an_unexpected_error_is_recorded_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    with Fetcher(FetchSettings()) as fetcher:
        monkeypatch.setattr(fetcher._session, "get", crash)
        result = fetcher.get_html("https://news.example/a")
    assert result.outcome is FetchOutcome.ERROR
    assert result.outcome.value == "internal_error"
    assert result.reason == "RuntimeError: boom"
