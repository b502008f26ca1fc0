"""Bounded, SSRF-guarded HTTP GET for feeds and article pages.

Every request has connect/read timeouts *and* a total deadline that covers name resolution, the
TCP connect, the TLS handshake and the body (resolution runs in a worker thread that is waited
for only until the deadline; a watchdog shuts the socket when it passes, so a server dripping
bytes cannot hold a worker), a byte cap counted after decompression, a redirect cap, and an
address check on every connection: the host is resolved once, every resolved address is checked,
and the socket connects to the checked address, so DNS rebinding between check and connect is
impossible. Failures are values (:class:`FetchResult` with an outcome and a reason), never
exceptions.
"""

from __future__ import annotations

import contextvars
import ipaddress
import logging
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, DecodeError, NewConnectionError
from urllib3.util import connection as urllib3_connection

from ..config import FetchSettings, Network
from .clock import SYSTEM_CLOCK, Clock

__all__ = [
    "FetchOutcome",
    "FetchResult",
    "Fetcher",
    "Resolver",
    "Validators",
    "address_allowed",
    "system_resolver",
]

log = logging.getLogger(__name__)

HTML_TYPES = ("text/html", "application/xhtml+xml")
FEED_TYPES = (
    "application/rss+xml",
    "application/atom+xml",
    "application/rdf+xml",
    "application/xml",
    "text/xml",
    "application/x-rss+xml",
    "application/feed+json",
    "text/rss+xml",
    "text/plain",
    "text/html",
    "application/octet-stream",
)
# what the fetcher asks for and decodes; a body in any other coding would reach the parsers as
# undecoded bytes (or be decoded by an optional codec without the caller asking for it)
DECODED_CODINGS = ("gzip", "x-gzip", "deflate", "identity")

Resolver = Callable[[str, int], Sequence[str]]
"""Resolves (host, port) to IP address strings; raises OSError when the name does not resolve."""


def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver (getaddrinfo), addresses in its order of preference."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class FetchOutcome(StrEnum):
    OK = "fetched"
    NOT_MODIFIED = "not_modified"
    HTTP_ERROR = "http_error"
    TIMEOUT = "timeout"
    TOO_LARGE = "too_large"
    WRONG_TYPE = "not_html"
    BLOCKED = "blocked_address"
    CONNECTION_ERROR = "connection_error"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    INVALID_URL = "invalid_url"
    ROBOTS = "robots_disallowed"  # not fetched: the site's robots.txt disallows it (robots.py)
    ERROR = "internal_error"  # a bug or a library crash on this input: logged with a traceback


@dataclass(frozen=True)
class Validators:
    """Conditional-GET validators remembered from the previous response."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class FetchResult:
    url: str
    outcome: FetchOutcome
    final_url: str | None = None
    status: int | None = None
    body: bytes = b""
    content_type: str | None = None
    validators: Validators = field(default_factory=Validators)
    reason: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome is FetchOutcome.OK


# --- the address guard ---------------------------------------------------------------------------


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def address_allowed(address: str, allow: Sequence[Network] = ()) -> bool:
    """Whether newsmon may connect to ``address``: public unicast, or inside ``allow``."""
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(
        address.split("%", 1)[0]
    )
    if isinstance(ip, ipaddress.IPv6Address):
        # IPv6 forms that carry an IPv4 address are judged by that address (mapped, NAT64, 6to4)
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        elif ip.sixtofour is not None:
            ip = ip.sixtofour
    if any(ip in net for net in allow):
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return False
    # is_reserved catches IPv4-compatible ::a.b.c.d, which ``is_global`` lets through
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


class BlockedAddressError(NewConnectionError):
    """The host resolves to an address newsmon must not connect to."""


@dataclass
class _Watch:
    """Per-request state: allowlist, resolver, deadline and the sockets to shut down at it."""

    allow: tuple[Network, ...]
    resolver: Resolver = system_resolver
    ends: float = float("inf")  # clock.monotonic() of the deadline
    clock: Clock = SYSTEM_CLOCK
    # Sockets, not connections: http.client drops ``conn.sock`` as soon as a response will close
    # the connection (HTTP/1.0, "Connection: close"), while the response still reads from it.
    sockets: list[socket.socket] = field(default_factory=list)
    expired: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    waiting: list[threading.Event] = field(default_factory=list)  # woken at the deadline

    def remaining(self) -> float:
        return self.ends - self.clock.monotonic()

    def wake_at_expiry(self, event: threading.Event) -> None:
        with self.lock:
            self.waiting.append(event)
            if not self.expired:
                return
        event.set()

    def attach(self, sock: socket.socket) -> None:
        with self.lock:
            if sock not in self.sockets:
                self.sockets.append(sock)
            if not self.expired:
                return
        _shutdown(sock)

    def expire(self) -> None:
        with self.lock:
            self.expired = True
            sockets = list(self.sockets)
            waiting = list(self.waiting)
        for sock in sockets:
            _shutdown(sock)
        for event in waiting:
            event.set()


def _shutdown(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _resolve(watch: _Watch, host: str, port: int) -> list[str] | None:
    """``watch.resolver(host, port)`` in a worker thread, waited for until the deadline (None:
    late).

    getaddrinfo cannot be interrupted and takes no timeout; a lookup that outlives the deadline
    is left to finish in its (daemon) thread and its answer is dropped.
    """
    answer: list[list[str] | BaseException] = []
    settled = threading.Event()  # set by the lookup's end or by the watchdog

    def run() -> None:
        try:
            answer.append(list(watch.resolver(host, port)))
        except BaseException as exc:  # handed to the waiting thread
            answer.append(exc)
        finally:
            settled.set()

    watch.wake_at_expiry(settled)
    worker = threading.Thread(target=run, name=f"newsmon-resolve-{host[:40]}", daemon=True)
    worker.start()
    settled.wait(max(watch.remaining(), 0.0))
    if not answer:
        return None
    if isinstance(answer[0], BaseException):
        raise answer[0]
    return answer[0]


_WATCH: contextvars.ContextVar[_Watch | None] = contextvars.ContextVar("newsmon_fetch_watch")


class _GuardedMixin:
    """Resolve once, check every address, connect to the checked one."""

    host: str
    port: int
    timeout: Any
    source_address: Any
    socket_options: Any

    def _new_conn(self) -> socket.socket:
        watch = _WATCH.get(None)
        if watch is None:
            raise BlockedAddressError(self, "newsmon: connection outside a guarded fetch")  # type: ignore[arg-type]
        host = self.host.strip("[]")
        if watch.remaining() <= 0:
            raise ConnectTimeoutError(self, f"deadline passed before connecting to {host}")
        try:
            addresses = _resolve(watch, host, self.port)
        except (OSError, UnicodeError, ValueError) as exc:
            raise NewConnectionError(self, f"cannot resolve {host}: {exc}") from exc  # type: ignore[arg-type]
        if addresses is None:
            raise ConnectTimeoutError(self, f"resolving {host} did not finish before the deadline")
        if not addresses:
            raise NewConnectionError(self, f"cannot resolve {host}: no address")  # type: ignore[arg-type]
        blocked = [a for a in addresses if not address_allowed(a, watch.allow)]
        if blocked:
            raise BlockedAddressError(
                self,  # type: ignore[arg-type]
                f"{host} resolves to {blocked[0]}, a private, loopback, link-local or reserved "
                "address (allow it with NEWSMON_FETCH_ALLOW)",
            )
        timeout = self.timeout
        if isinstance(timeout, (int, float)):  # the connect timeout, cut to what the deadline left
            timeout = max(min(float(timeout), watch.remaining()), 0.001)
        try:
            sock = urllib3_connection.create_connection(
                (addresses[0], self.port),
                timeout,
                source_address=self.source_address,
                socket_options=self.socket_options,
            )
        except OSError as exc:
            raise NewConnectionError(self, f"cannot connect to {host}: {exc}") from exc  # type: ignore[arg-type]
        watch.attach(sock)  # from here on the watchdog covers the TLS handshake too
        return sock

    sock: socket.socket | None

    def request(self, *args: Any, **kwargs: Any) -> None:
        watch = _WATCH.get(None)
        if watch is not None and self.sock is not None:
            watch.attach(self.sock)  # a kept-alive connection
        super().request(*args, **kwargs)  # type: ignore[misc]
        if watch is not None and self.sock is not None:
            watch.attach(self.sock)  # the (TLS) socket the response will be read from


class _GuardedHTTPConnection(_GuardedMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedMixin, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _GuardedHTTPPool,
            "https": _GuardedHTTPSPool,
        }


# --- the fetcher ---------------------------------------------------------------------------------


def _cause(exc: BaseException) -> BaseException:
    """The innermost interesting exception behind a requests error."""
    seen: set[int] = set()
    current: BaseException | None = exc
    found = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        found = current
        if isinstance(current, (BlockedAddressError, NewConnectionError)):
            return current
        reason = getattr(current, "reason", None)
        args = getattr(current, "args", ())
        nested = next((a for a in args if isinstance(a, BaseException)), None)
        current = (
            (reason if isinstance(reason, BaseException) else nested)
            or current.__cause__
            or current.__context__
        )
    return found


def _describe(exc: BaseException) -> str:
    """A short reason: the innermost cause, without urllib3's connection-object prefix."""
    cause = _cause(exc)
    text = str(cause)
    if isinstance(cause, ConnectTimeoutError) and len(cause.args) == 2:
        return str(cause.args[1])  # (connection, message)
    if isinstance(cause, NewConnectionError) and "): " in text:
        return text.split("): ", 1)[1]
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


class Fetcher:
    """One HTTP session for a run: shared connection pools, per-host politeness."""

    def __init__(
        self,
        settings: FetchSettings,
        *,
        resolver: Resolver = system_resolver,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.settings = settings
        self.resolver = resolver  # how host names become addresses (tests: a fake DNS)
        self.clock = clock  # what the deadline is measured on (tests: a clock they move)
        self._session = requests.Session()
        self._session.trust_env = False  # proxies from the environment would bypass the guard
        # redirects are followed by hand in _get; requests' own counter would raise
        # TooManyRedirects on the first redirect when max_redirects is 0
        adapter = _GuardedAdapter(
            pool_connections=32, pool_maxsize=max(settings.workers, 4), max_retries=0
        )
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers.update(
            {
                "User-Agent": settings.user_agent,
                "Accept-Encoding": "gzip, deflate",
                "Accept-Language": "en;q=0.9, *;q=0.5",
            }
        )
        self._hosts: dict[str, threading.Semaphore] = {}
        self._hosts_lock = threading.Lock()
        self._intervals: dict[str, float] = {}  # host -> seconds between request starts
        self._last_start: dict[str, float] = {}  # host -> when its latest request may start

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _polite(self, url: str) -> Iterator[None]:
        host = (urlsplit(url).hostname or "").lower()
        with self._hosts_lock:
            gate = self._hosts.setdefault(host, threading.Semaphore(self.settings.per_host))
        with gate:
            yield

    def set_host_interval(self, url_or_origin: str, seconds: float) -> None:
        """Space requests to the host of ``url_or_origin`` at least ``seconds`` apart (a
        robots.txt Crawl-delay); the larger of this and ``settings.host_interval`` applies."""
        host = (urlsplit(url_or_origin).hostname or "").lower()
        with self._hosts_lock:
            self._intervals[host] = max(0.0, seconds)

    def _space(self, url: str) -> None:
        """Wait (on the fetcher's clock) for this request's turn at its host: request starts
        to one host are spaced by its interval. Each caller reserves the next slot, so waiting
        workers leave in order and never together."""
        host = (urlsplit(url).hostname or "").lower()
        with self._hosts_lock:
            interval = max(self.settings.host_interval, self._intervals.get(host, 0.0))
            now = self.clock.monotonic()
            last = self._last_start.get(host)
            start = now if last is None else max(now, last + interval)
            self._last_start[host] = start
        if start > now:
            turn = threading.Event()
            timer = self.clock.call_later(start - now, turn.set)
            try:
                turn.wait()
            finally:
                timer.cancel()

    def get_html(self, url: str, validators: Validators | None = None) -> FetchResult:
        """Fetch an article page (HTML only), conditionally when validators are given."""
        return self.get(
            url,
            accept="text/html,application/xhtml+xml;q=0.9,*/*;q=0.1",
            media_types=HTML_TYPES,
            validators=validators,
        )

    def get_feed(self, url: str, validators: Validators | None = None) -> FetchResult:
        """Fetch a feed, conditionally when validators from the last fetch are given."""
        accept = "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5"
        return self.get(url, accept=accept, media_types=FEED_TYPES, validators=validators)

    def get(
        self,
        url: str,
        *,
        accept: str = "*/*",
        media_types: Sequence[str] | None = None,
        validators: Validators | None = None,
    ) -> FetchResult:
        self._space(url)  # before the deadline starts: waiting for a turn is not the fetch's time
        deadline = self.settings.deadline
        started = self.clock.monotonic()
        watch = _Watch(
            allow=self.settings.allow_networks,
            resolver=self.resolver,
            ends=started + deadline,
            clock=self.clock,
        )
        attempt = _Attempt(url, deadline, watch, started)
        token = _WATCH.set(attempt.watch)
        timer = self.clock.call_later(deadline, attempt.watch.expire)
        try:
            with self._polite(url):
                return self._get(attempt, accept, media_types, validators)
        except Exception as exc:  # one URL must never stop a run: record it, log the traceback
            log.exception("unexpected error fetching %s", url)
            return attempt.done(FetchOutcome.ERROR, f"{type(exc).__name__}: {exc}")
        finally:
            timer.cancel()
            _WATCH.reset(token)

    def _get(
        self,
        attempt: _Attempt,
        accept: str,
        media_types: Sequence[str] | None,
        validators: Validators | None,
    ) -> FetchResult:
        s = self.settings
        headers = {"Accept": accept}
        if validators and validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators and validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
        current = attempt.url
        for _hop in range(s.max_redirects + 1):
            if urlsplit(current).scheme.lower() not in ("http", "https"):
                return attempt.done(
                    FetchOutcome.INVALID_URL, f"not an http(s) URL: {current[:200]}"
                )
            remaining = attempt.remaining()
            if remaining <= 0:
                return attempt.done(FetchOutcome.TIMEOUT)
            timeout = (min(s.connect_timeout, remaining), min(s.read_timeout, remaining))
            try:
                response = self._session.get(
                    current, headers=headers, timeout=timeout, stream=True, allow_redirects=False
                )
            except requests.exceptions.InvalidURL as exc:
                return attempt.done(FetchOutcome.INVALID_URL, str(exc))
            except (requests.exceptions.Timeout, TimeoutError) as exc:
                return attempt.done(FetchOutcome.TIMEOUT, _describe(exc))
            except (requests.exceptions.RequestException, OSError, ValueError) as exc:
                blocked = isinstance(_cause(exc), BlockedAddressError)
                outcome = FetchOutcome.BLOCKED if blocked else FetchOutcome.CONNECTION_ERROR
                return attempt.done(outcome, _describe(exc))
            with response:
                if response.is_redirect:
                    current = urljoin(current, response.headers.get("Location", ""))
                    continue
                return self._read(attempt, response, current, media_types)
        return attempt.done(
            FetchOutcome.TOO_MANY_REDIRECTS, f"more than {s.max_redirects} redirects"
        )

    def _read(
        self,
        attempt: _Attempt,
        response: requests.Response,
        final_url: str,
        media_types: Sequence[str] | None,
    ) -> FetchResult:
        limit = self.settings.max_bytes
        attempt.final_url, attempt.status = final_url, response.status_code
        attempt.content_type = response.headers.get("Content-Type")
        if response.status_code == 304:
            return attempt.done(FetchOutcome.NOT_MODIFIED)
        if not 200 <= response.status_code < 300:
            return attempt.done(
                FetchOutcome.HTTP_ERROR, f"HTTP {response.status_code} {response.reason}"
            )
        media = _media_type(attempt.content_type)
        if media_types is not None and media and media not in media_types:
            return attempt.done(FetchOutcome.WRONG_TYPE, f"content type {media}")
        declared = response.headers.get("Content-Length", "")
        codings = [
            c.strip() for c in response.headers.get("Content-Encoding", "").lower().split(",")
        ]
        unknown = [c for c in codings if c and c not in DECODED_CODINGS]
        if unknown:
            return attempt.done(FetchOutcome.WRONG_TYPE, f"content encoding {unknown[0]}"[:100])
        encoded = any(c and c != "identity" for c in codings)
        if declared.isdigit() and int(declared) > limit and not encoded:
            return attempt.done(FetchOutcome.TOO_LARGE, f"Content-Length {declared} > {limit}")
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.raw.stream(64 * 1024, decode_content=True):
                size += len(chunk)
                if size > limit:
                    return attempt.done(FetchOutcome.TOO_LARGE, f"body over {limit} bytes")
                chunks.append(chunk)
        except Exception as exc:  # any failure while reading is this URL's outcome
            reason = _describe(exc)
            if isinstance(exc, DecodeError):
                reason = f"cannot decode the {', '.join(codings)} body: {reason}"
            timed_out = "timed out" in reason.lower()
            outcome = FetchOutcome.TIMEOUT if timed_out else FetchOutcome.CONNECTION_ERROR
            return attempt.done(outcome, reason)
        validators = Validators(
            etag=response.headers.get("ETag"), last_modified=response.headers.get("Last-Modified")
        )
        return attempt.done(FetchOutcome.OK, body=b"".join(chunks), validators=validators)


@dataclass
class _Attempt:
    """One fetch in progress: its clock and what is known of the response so far."""

    url: str
    deadline: float
    watch: _Watch
    started: float  # on watch.clock
    final_url: str | None = None
    status: int | None = None
    content_type: str | None = None

    def remaining(self) -> float:
        return self.deadline - (self.watch.clock.monotonic() - self.started)

    def done(
        self,
        outcome: FetchOutcome,
        reason: str | None = None,
        *,
        body: bytes = b"",
        validators: Validators | None = None,
    ) -> FetchResult:
        failed = outcome not in (FetchOutcome.OK, FetchOutcome.NOT_MODIFIED)
        timed_out = outcome is FetchOutcome.TIMEOUT and (not reason or self.remaining() <= 0)
        # once the watchdog has shut the socket, an "end" of the response may be that shutdown:
        # a status line and no more reads as a complete, empty HTTP/1.0 response
        if self.watch.expired or (failed and timed_out):
            outcome, reason = FetchOutcome.TIMEOUT, f"total deadline of {self.deadline:g}s passed"
            body, validators = b"", None
        return FetchResult(
            url=self.url,
            outcome=outcome,
            final_url=self.final_url,
            status=self.status,
            body=body,
            content_type=self.content_type,
            validators=validators or Validators(),
            reason=reason[:300] if reason else None,
            seconds=self.watch.clock.monotonic() - self.started,
        )
