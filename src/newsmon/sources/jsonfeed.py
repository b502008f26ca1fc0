"""JSON Feed 1.0 / 1.1 (https://www.jsonfeed.org/version/1.1/) read into feedparser-like entries.

feedparser 6 reads XML only, while feed discovery and the fetcher accept
``application/feed+json``: this module turns such a document into the mappings
:mod:`newsmon.sources.feeds` reads from feedparser (``link``, ``id``, ``title`` with its
``title_detail``, ``summary``, ``published_parsed``, ``authors``, ``tags``), so one code path
makes the entries. Bounded like the XML path: the caller caps the size, :func:`json.loads` is
linear, nesting too deep for it is an error, and only the first ``max_entries`` items are read.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

__all__ = ["JsonFeed", "looks_like_json_feed", "parse_date", "read_json_feed"]

_VERSIONS = ("https://jsonfeed.org/version/1", "http://jsonfeed.org/version/1")


class JsonFeedError(ValueError):
    """The document is JSON but not a JSON Feed."""


class JsonFeed:
    """What :func:`read_json_feed` found: entries as feedparser would give them."""

    def __init__(self, version: str, entries: list[dict[str, Any]], total: int) -> None:
        self.version = version
        self.entries = entries
        self.total = total  # items in the document, before the cap


def looks_like_json_feed(content: bytes) -> bool:
    """Whether the document's first non-blank character opens a JSON object. The media type
    is not asked: servers send JSON Feeds as ``application/json``, ``text/plain``…, and an XML
    feed sent as JSON still starts with ``<``."""
    head = content[:1024].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"{")


def parse_date(value: object) -> time.struct_time | None:
    """An ISO 8601 / W3C date-time (``2024-05-01T10:00:00Z``, ``2024-05-01``) as a UTC
    ``struct_time``, as feedparser gives dates; None when it is not one."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.timetuple()
    return time.gmtime(parsed.timestamp())


def _authors(item: dict[str, Any]) -> list[dict[str, str]]:
    raw = item.get("authors")
    people = raw if isinstance(raw, list) else []
    single = item.get("author")  # JSON Feed 1.0
    if isinstance(single, dict):
        people = [*people, single]
    return [
        {"name": person["name"]}
        for person in people[:20]
        if isinstance(person, dict) and isinstance(person.get("name"), str)
    ]


def _entry(item: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    url = item.get("url")
    if isinstance(url, str):
        entry["link"] = url
        entry["links"] = [{"rel": "alternate", "type": "text/html", "href": url}]
    external = item.get("external_url")
    if isinstance(external, str) and "link" not in entry:
        entry["link"] = external
    guid = item.get("id")
    if isinstance(guid, (str, int)) and not isinstance(guid, bool):
        entry["id"] = str(guid)
        entry["guidislink"] = False  # a JSON Feed id is an id, whatever it looks like
    title = item.get("title")
    if isinstance(title, str):
        entry["title"] = title
        entry["title_detail"] = {"type": "text/plain"}
    html_body, text_body = item.get("content_html"), item.get("content_text")
    summary = item.get("summary")
    if isinstance(summary, str):
        entry["summary"], entry["summary_detail"] = summary, {"type": "text/plain"}
    elif isinstance(html_body, str):
        entry["summary"], entry["summary_detail"] = html_body, {"type": "text/html"}
    elif isinstance(text_body, str):
        entry["summary"], entry["summary_detail"] = text_body, {"type": "text/plain"}
    for source, key in (
        ("date_published", "published_parsed"),
        ("date_modified", "updated_parsed"),
    ):
        parsed = parse_date(item.get(source))
        if parsed is not None:
            entry[key] = parsed
    entry["authors"] = _authors(item)
    tags = item.get("tags")
    if isinstance(tags, list):
        entry["tags"] = [{"term": tag} for tag in tags[:50] if isinstance(tag, str)]
    return entry


def read_json_feed(content: bytes, max_entries: int) -> JsonFeed:
    """Parse a JSON Feed; raises :class:`JsonFeedError` (a ValueError) when it is not one."""
    try:
        document = json.loads(content)
    except RecursionError as exc:
        raise JsonFeedError("JSON nested too deep") from exc
    except (UnicodeError, ValueError) as exc:
        raise JsonFeedError(f"not JSON: {exc}"[:200]) from exc
    if not isinstance(document, dict):
        raise JsonFeedError("not a JSON Feed: the document is not a JSON object")
    version = document.get("version")
    if not isinstance(version, str) or not version.startswith(_VERSIONS):
        raise JsonFeedError(f"not a JSON Feed: version {str(version)[:80]!r}")
    items = document.get("items")
    if not isinstance(items, list):
        raise JsonFeedError("not a JSON Feed: it has no list of items")
    entries = [_entry(item) for item in items[:max_entries] if isinstance(item, dict)]
    label = "json11" if version.rstrip("/").endswith("1.1") else "json1"
    return JsonFeed(label, entries, len(items))
