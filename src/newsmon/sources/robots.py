"""robots.txt (RFC 9309), fetched once per host and honoured for article downloads.

Rules come from the groups naming newsmon's product token (the User-Agent's first word, e.g.
``newsmon``), else from the ``*`` groups; the longest matching ``Allow``/``Disallow`` pattern
decides (``*`` and a final ``$`` as in RFC 9309), ``Allow`` winning a tie. ``Crawl-delay`` of
those groups becomes the host's minimum interval between requests (capped by the settings).

What the fetch of ``/robots.txt`` answers (docs/robots.md):

- 2xx: its rules (the first :data:`MAX_ROBOTS_BYTES` read);
- 4xx (none there, or not for us to read): everything allowed;
- 5xx: everything disallowed for now (the site is in trouble; RFC 9309 §2.3.1.4), asked
  again after :data:`ERROR_TTL` seconds;
- no answer (timeout, connection error, blocked address, bad URL): no verdict, the article
  download goes ahead and records its own failure.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit

from .fetch import Fetcher, FetchOutcome

__all__ = ["RobotsCache", "RobotsRules", "Verdict", "parse_robots"]

log = logging.getLogger(__name__)

MAX_ROBOTS_BYTES = 512 * 1024  # RFC 9309 asks crawlers to read at least 500 KiB
TTL = 24 * 3600.0  # seconds a robots.txt is kept (RFC 9309: at most 24 hours, as a rule)
ERROR_TTL = 600.0  # seconds a 5xx answer (everything disallowed) is kept
MAX_PATTERN = 2000  # longer rules are ignored rather than matched
_UNREACHED = frozenset(
    {
        FetchOutcome.TIMEOUT,
        FetchOutcome.CONNECTION_ERROR,
        FetchOutcome.BLOCKED,
        FetchOutcome.INVALID_URL,
        FetchOutcome.TOO_MANY_REDIRECTS,
        FetchOutcome.ERROR,
    }
)


@dataclass(frozen=True)
class _Rule:
    allow: bool
    pattern: str
    regex: re.Pattern[str]


@dataclass(frozen=True)
class RobotsRules:
    """The rules of one robots.txt for one product token."""

    rules: tuple[_Rule, ...] = ()
    crawl_delay: float | None = None
    disallow_all: bool = False  # a 5xx answer

    def allowed(self, url: str) -> tuple[bool, str | None]:
        """Whether ``url`` may be fetched, and the deciding rule (``Disallow: /x``)."""
        if self.disallow_all:
            return False, "robots.txt could not be read (server error): everything disallowed"
        parts = urlsplit(url)
        path = _normalise((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
        if path == "/robots.txt":
            return True, None
        best: _Rule | None = None
        for rule in self.rules:
            if rule.regex.match(path) and (
                best is None
                or len(rule.pattern) > len(best.pattern)
                or (len(rule.pattern) == len(best.pattern) and rule.allow)
            ):
                best = rule
        if best is None or best.allow:
            return True, None
        return False, f"Disallow: {best.pattern[:200]}"


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str | None = None


def _normalise(path: str) -> str:
    # the same percent-encoding for rules and URLs: decode, then encode what must be
    return quote(unquote(path), safe="/?=&;:@!$'()*+,~-._%")


def _regex(pattern: str) -> re.Pattern[str]:
    anchored = pattern.endswith("$")
    body = pattern[:-1] if anchored else pattern
    text = ".*".join(re.escape(piece) for piece in _normalise(body).split("*"))
    return re.compile(text + ("$" if anchored else ""), re.DOTALL)


def product_token(user_agent: str) -> str:
    """``newsmon/0.1 (+https://…)`` → ``newsmon``."""
    token = re.match(r"[A-Za-z_-]+", user_agent.strip())
    return token.group(0).lower() if token else "newsmon"


def parse_robots(text: str, token: str) -> RobotsRules:
    """The rules of ``text`` that apply to the product ``token`` (lower-case)."""
    groups: list[tuple[set[str], list[_Rule], list[float]]] = []
    in_agents = False
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if ":" not in line:
            continue
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key in ("user-agent", "useragent"):
            if not in_agents:
                groups.append((set(), [], []))
                in_agents = True
            groups[-1][0].add(value.lower())
            continue
        in_agents = False
        if not groups:
            continue  # rules before any user-agent line belong to no group
        if key in ("allow", "disallow") and value and len(value) <= MAX_PATTERN:
            if not value.startswith(("/", "*")):
                value = "/" + value
            groups[-1][1].append(_Rule(key == "allow", value, _regex(value)))
        elif key in ("crawl-delay", "crawl_delay"):
            try:
                delay = float(value)
            except ValueError:
                continue
            if delay >= 0:
                groups[-1][2].append(delay)
    own = [g for g in groups if token in {agent.split("/", 1)[0].strip() for agent in g[0]}]
    chosen = own or [g for g in groups if "*" in g[0]]
    rules = tuple(rule for g in chosen for rule in g[1])
    delays = [d for g in chosen for d in g[2]]
    return RobotsRules(rules, max(delays) if delays else None)


@dataclass
class _Entry:
    rules: RobotsRules | None  # None: no verdict (robots.txt unreachable)
    expires: float


@dataclass
class RobotsCache:
    """robots.txt per host (scheme, host and port), fetched through ``fetcher`` at most once
    per :data:`TTL`, even when several workers ask at once. A Crawl-delay is handed to the
    fetcher as the host's minimum interval, capped at ``max_crawl_delay`` seconds."""

    fetcher: Fetcher
    max_crawl_delay: float = 30.0
    _entries: dict[str, _Entry] = field(default_factory=dict)
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, url: str) -> Verdict:
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            return Verdict(True)  # the download reports the bad URL itself
        origin = f"{parts.scheme.lower()}://{parts.netloc.lower()}"
        rules = self._rules(origin)
        if rules is None:
            return Verdict(True)
        allowed, rule = rules.allowed(url)
        if allowed:
            return Verdict(True)
        return Verdict(False, f"{origin}/robots.txt: {rule}")

    def _rules(self, origin: str) -> RobotsRules | None:
        with self._lock:
            lock = self._locks.setdefault(origin, threading.Lock())
        with lock:
            now = self.fetcher.clock.monotonic()
            entry = self._entries.get(origin)
            if entry is None or entry.expires <= now:
                entry = self._fetch(origin, now)
                self._entries[origin] = entry
            return entry.rules

    def _fetch(self, origin: str, now: float) -> _Entry:
        result = self.fetcher.get(f"{origin}/robots.txt", accept="text/plain, */*;q=0.5")
        if result.outcome in _UNREACHED:
            log.info("%s/robots.txt: %s (%s): no verdict", origin, result.outcome, result.reason)
            return _Entry(None, now + ERROR_TTL)
        status = result.status or 0
        if result.ok:
            text = result.body[:MAX_ROBOTS_BYTES].decode("utf-8", errors="replace")
            rules = parse_robots(text, product_token(self.fetcher.settings.user_agent))
            if rules.crawl_delay:
                delay = min(rules.crawl_delay, self.max_crawl_delay)
                self.fetcher.set_host_interval(origin, delay)
            return _Entry(rules, now + TTL)
        if status >= 500:
            return _Entry(RobotsRules(disallow_all=True), now + ERROR_TTL)
        return _Entry(RobotsRules(), now + TTL)  # 4xx, or a body too large or of a bad type
