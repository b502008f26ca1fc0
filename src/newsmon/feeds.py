"""RSS 0.9x/1.0/2.0 and Atom feeds: fetch (conditionally) and parse into entries.

A broken feed is a value (:class:`FeedResult` with an outcome and a reason), never an exception,
so one bad feed never stops the others.
"""

from __future__ import annotations

import calendar
import html
import io
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urljoin

import feedparser

from .config import FeedConfig
from .fetch import Fetcher, FetchOutcome, Validators
from .urls import InvalidURL, canonical_url

__all__ = ["FeedEntry", "FeedOutcome", "FeedResult", "fetch_feed", "parse_feed"]

log = logging.getLogger(__name__)

MAX_ENTRIES = 500  # per fetch; a feed listing more is truncated (and says so in the reason)
_TAGS = re.compile(r"<[^>]+>")
_HIDDEN = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>|<!--.*?-->", re.IGNORECASE | re.DOTALL)
_SPACE = re.compile(r"\s+")
_BENIGN_BOZO = (feedparser.NonXMLContentType, feedparser.CharacterEncodingOverride)


class FeedOutcome(StrEnum):
    FETCHED = "fetched"
    NOT_MODIFIED = "not_modified"
    INVALID = "feed_invalid"
    FETCH_FAILED = "fetch_failed"


@dataclass(frozen=True)
class FeedEntry:
    """One item of a feed: where the article is and what the feed says about it."""

    url: str  # absolute, as the feed gives it
    canonical_url: str
    title: str | None
    summary: str | None  # plain text
    published_at: datetime | None
    authors: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class FeedResult:
    feed_id: str
    outcome: FeedOutcome
    entries: tuple[FeedEntry, ...] = ()
    validators: Validators = field(default_factory=Validators)
    fetch_outcome: FetchOutcome | None = None  # why the fetch failed, when it did
    reason: str | None = None
    skipped_entries: int = 0  # entries without a usable http(s) link
    status: int | None = None
    seconds: float = 0.0


def _plain_text(value: str | None, limit: int = 2000) -> str | None:
    if not value:
        return None
    text = _SPACE.sub(" ", html.unescape(_TAGS.sub(" ", _HIDDEN.sub(" ", value)))).strip()
    return text[:limit] or None


def _entry_date(entry: Mapping[str, Any]) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = entry.get(key)
        if parsed:
            try:
                return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
            except (OverflowError, ValueError, TypeError):
                continue
    return None


def _entry_link(entry: Mapping[str, Any], base: str) -> str | None:
    candidates: list[str] = []
    link = entry.get("link")
    if isinstance(link, str):
        candidates.append(link)
    for item in entry.get("links") or ():
        if isinstance(item, Mapping) and item.get("rel", "alternate") == "alternate":
            href = item.get("href")
            if isinstance(href, str):
                candidates.append(href)
    guid = entry.get("id")
    if isinstance(guid, str) and entry.get("guidislink", True):
        candidates.append(guid)
    for candidate in candidates:
        absolute = urljoin(base, candidate.strip())
        if absolute.lower().startswith(("http://", "https://")):
            return absolute
    return None


def _authors(entry: Mapping[str, Any]) -> tuple[str, ...]:
    names: list[str] = []
    for author in entry.get("authors") or ():
        if isinstance(author, Mapping) and isinstance(author.get("name"), str):
            names.append(author["name"].strip())
    if not names and isinstance(entry.get("author"), str):
        names.append(entry["author"].strip())
    return tuple(dict.fromkeys(n[:200] for n in names if n))


def _tags(entry: Mapping[str, Any]) -> tuple[str, ...]:
    terms = (t.get("term") for t in entry.get("tags") or () if isinstance(t, Mapping))
    return tuple(dict.fromkeys(t.strip()[:100] for t in terms if isinstance(t, str) and t.strip()))


def parse_feed(
    content: bytes, url: str, *, content_type: str | None = None
) -> tuple[list[FeedEntry], int, str | None]:
    """Parse feed bytes. Returns (entries, entries skipped for lack of a link, problem or None).

    A problem is returned when the document is not a feed at all; a feed that is merely
    malformed but still yields entries is accepted (feedparser's lenient mode).
    """
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    parsed = feedparser.parse(
        io.BytesIO(content),
        response_headers=headers,
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    entries: list[FeedEntry] = []
    skipped = 0
    seen: set[str] = set()
    for raw in parsed.entries[:MAX_ENTRIES]:
        link = _entry_link(raw, url)
        if link is None:
            skipped += 1
            continue
        try:
            canonical = canonical_url(link)
        except InvalidURL:
            skipped += 1
            continue
        if canonical in seen:
            continue
        seen.add(canonical)
        entries.append(
            FeedEntry(
                url=link,
                canonical_url=canonical,
                title=_plain_text(raw.get("title"), 1000),
                summary=_plain_text(raw.get("summary") or raw.get("description")),
                published_at=_entry_date(raw),
                authors=_authors(raw),
                tags=_tags(raw),
            )
        )
    problem: str | None = None
    if not entries and not skipped:
        version = parsed.get("version") or ""
        exc = parsed.get("bozo_exception") if parsed.get("bozo") else None
        # an RSS/Atom document with no items is a valid, empty feed even when it came with a
        # wrong media type or charset (feedparser's benign bozo warnings)
        if exc is not None and not (version and isinstance(exc, _BENIGN_BOZO)):
            problem = f"not a readable feed: {type(exc).__name__}: {exc}"[:300]
        elif not version:
            problem = "not an RSS or Atom document"
    if len(parsed.entries) > MAX_ENTRIES:
        log.info("%s lists %d entries; kept the first %d", url, len(parsed.entries), MAX_ENTRIES)
    return entries, skipped, problem


def fetch_feed(
    fetcher: Fetcher, feed: FeedConfig, validators: Validators | None = None
) -> FeedResult:
    """Fetch and parse one feed; a 304 answer costs nothing and yields no entries."""
    result = fetcher.get_feed(feed.url, validators)
    common: dict[str, Any] = {
        "feed_id": feed.id,
        "fetch_outcome": result.outcome,
        "status": result.status,
        "seconds": result.seconds,
    }
    if result.outcome is FetchOutcome.NOT_MODIFIED:
        return FeedResult(
            outcome=FeedOutcome.NOT_MODIFIED, validators=validators or Validators(), **common
        )
    if not result.ok:
        return FeedResult(outcome=FeedOutcome.FETCH_FAILED, reason=result.reason, **common)
    try:
        entries, skipped, problem = parse_feed(
            result.body, result.final_url or feed.url, content_type=result.content_type
        )
    except Exception as exc:  # a parser crash on one feed must not stop the others
        log.exception("feed %s: parser failed", feed.id)
        entries, skipped, problem = [], 0, f"parser failed: {type(exc).__name__}: {exc}"[:300]
    if problem:
        return FeedResult(outcome=FeedOutcome.INVALID, reason=problem, **common)
    return FeedResult(
        outcome=FeedOutcome.FETCHED,
        entries=tuple(entries),
        validators=result.validators,
        skipped_entries=skipped,
        **common,
    )


def entries_by_url(entries: Iterable[FeedEntry]) -> dict[str, FeedEntry]:
    """Entries keyed by canonical URL, first occurrence kept."""
    out: dict[str, FeedEntry] = {}
    for entry in entries:
        out.setdefault(entry.canonical_url, entry)
    return out
