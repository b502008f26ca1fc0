"""Feed discovery: find a site's RSS/Atom feeds from its homepage.

Everything is downloaded through newsmon's own :class:`~newsmon.fetch.Fetcher`, so the address
guard, size caps and timeouts apply to the homepage and to every candidate. Candidates come from
the page's ``<link rel="alternate">`` feeds, then its ``<a href>`` links that look like feeds (same
site), then, when the page names none that work, a few common feed paths. Each candidate is
fetched and parsed with :func:`~newsmon.feeds.parse_feed`; only real feeds are reported.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import feedparser

from ..urls import InvalidURL, canonical_url, same_site
from .feeds import parse_feed
from .fetch import FEED_TYPES, Fetcher, FetchOutcome

__all__ = ["COMMON_PATHS", "Discovery", "FoundFeed", "discover_feeds", "feed_links"]

log = logging.getLogger(__name__)

COMMON_PATHS = (
    "/feed",
    "/rss",
    "/rss.xml",
    "/feed.xml",
    "/atom.xml",
    "/index.xml",
    "/feeds/posts/default",
    "/?feed=rss2",
)
MAX_CANDIDATES = 12  # feeds named by the page that are checked
MAX_LINK_CANDIDATES = 6  # of which at most this many from <a href> links
_FEEDISH = re.compile(
    r"(^|[/._-])(rss|atom|feeds?|rdf)([/._-]|$)|\.(rss|atom|rdf|xml)$|[?&]feed=", re.IGNORECASE
)


@dataclass(frozen=True)
class FoundFeed:
    url: str  # where the feed was found (after redirects)
    title: str | None
    entries: int
    via: str  # "link" (rel=alternate), "anchor" (<a href>), "path" (common path), "given"


@dataclass
class Discovery:
    site: str
    feeds: list[FoundFeed] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (url, why not a feed)
    error: str | None = None  # the homepage could not be read


class _Links(HTMLParser):
    def __init__(self, base: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base = base
        self.alternates: list[tuple[str, str | None]] = []  # (href, title)
        self.anchors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k.lower(): (v or "").strip() for k, v in attrs}
        href = values.get("href")
        if tag == "base" and href:
            self.base = urljoin(self.base, href)
        elif tag == "link" and href:
            rels = values.get("rel", "").lower().split()
            kind = values.get("type", "").lower().split(";")[0].strip()
            if "alternate" in rels and kind in FEED_TYPES:
                self.alternates.append((urljoin(self.base, href), values.get("title") or None))
        elif tag == "a" and href:
            parts = urlsplit(href)
            if _FEEDISH.search(parts.path + ("?" + parts.query if parts.query else "")):
                self.anchors.append(urljoin(self.base, href))


def feed_links(page: str, url: str) -> tuple[list[str], list[str]]:
    """The feed URLs a page names: (``<link rel="alternate">`` feeds, feed-like ``<a>`` links
    on the same site), absolute, in page order, without repeats."""
    parser = _Links(url)
    parser.feed(page)
    parser.close()
    alternates = list(dict.fromkeys(h for h, _t in parser.alternates if _http(h)))
    anchors = [
        h
        for h in dict.fromkeys(parser.anchors)
        if _http(h) and h not in alternates and _same_site(h, url)
    ]
    return alternates, anchors


def _http(url: str) -> bool:
    return urlsplit(url).scheme in ("http", "https")


def _same_site(a: str, b: str) -> bool:
    try:
        return same_site(canonical_url(a), canonical_url(b))
    except InvalidURL:
        return False


def _key(url: str) -> str:
    try:
        return canonical_url(url)
    except InvalidURL:
        return url


def _title(body: bytes) -> str | None:
    parsed = feedparser.parse(body, sanitize_html=False, resolve_relative_uris=False)
    raw = parsed.feed.get("title") if parsed.get("feed") else None
    if not isinstance(raw, str):
        return None
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", raw)).split())
    return text[:200] or None


def _check(fetcher: Fetcher, url: str, via: str, report: Discovery, seen: set[str]) -> bool:
    """Fetch ``url`` as a feed; record it as found or rejected. True when it is a feed."""
    key = _key(url)
    if key in seen:
        return False
    seen.add(key)
    result = fetcher.get_feed(url)
    if not result.ok:
        report.rejected.append((url, f"{result.outcome.value}: {result.reason or ''}".strip()))
        return False
    final = result.final_url or url
    final_key = _key(final)
    if final_key != key:
        if final_key in {_key(f.url) for f in report.feeds}:
            return False  # another address of a feed already found
        seen.add(final_key)
    entries, skipped, problem = parse_feed(result.body, final, content_type=result.content_type)
    if problem:
        report.rejected.append((url, problem))
        return False
    report.feeds.append(FoundFeed(final, _title(result.body), len(entries) + skipped, via))
    return True


def discover_feeds(
    fetcher: Fetcher,
    url: str,
    *,
    probe: bool = True,
    paths: Sequence[str] = COMMON_PATHS,
    max_candidates: int = MAX_CANDIDATES,
) -> Discovery:
    """The feeds of the site at ``url``. Never raises for network or content problems: a
    homepage that cannot be read is ``error``; candidates that are not feeds are ``rejected``.

    Common ``paths`` are probed (``probe``) only when the page names no working feed.
    """
    report = Discovery(site=url)
    seen: set[str] = set()
    page = fetcher.get_html(url)
    if page.outcome is FetchOutcome.WRONG_TYPE:
        # not an HTML page: perhaps the address of a feed itself
        if _check(fetcher, url, "given", report, seen):
            return report
        report.rejected.clear()
    if not page.ok:
        report.error = f"{page.outcome.value}: {page.reason or ''}".strip()
        return report
    base = page.final_url or url
    text = page.body.decode(_charset(page.content_type), errors="replace")
    alternates, anchors = feed_links(text, base)
    candidates = [(h, "link") for h in alternates]
    candidates += [(h, "anchor") for h in anchors[:MAX_LINK_CANDIDATES]]
    for href, via in candidates[:max_candidates]:
        _check(fetcher, href, via, report, seen)
    if probe and not report.feeds:
        for path in paths:  # aliases of one feed are common: the first that works is enough
            if _check(fetcher, urljoin(base, path), "path", report, seen):
                break
    return report


def _charset(content_type: str | None) -> str:
    match = re.search(r"charset=([\w.-]+)", content_type or "", re.IGNORECASE)
    if match:
        try:
            "".encode(match.group(1))
        except LookupError:
            return "utf-8"
        return match.group(1)
    return "utf-8"
