"""News sitemaps as a source beside feeds, for sites that publish no feed.

A feed of ``type: sitemap`` points at a sitemap (https://www.sitemaps.org/protocol.html),
usually a Google News sitemap whose ``<url>`` entries carry ``<news:news>`` with a title and a
publication date, or at a sitemap index listing such sitemaps. Fetched with the same
conditional GET, size cap and address guard as a feed; the index's child sitemaps (same site
only, the :data:`MAX_CHILDREN` most recently modified) are fetched without validators.

Parsing is expat's, bounded like the feed path: a document over the feed size cap is refused
unread, any ``<!ENTITY>`` declaration refuses it (sitemaps never need one), and reading stops at
:data:`~newsmon.sources.feeds.MAX_ENTRIES` URLs.

A gzip-compressed sitemap (``sitemap.xml.gz``, as the protocol allows; recognised by its first
bytes, whatever its name or media type) is decompressed first, never past the same size cap: a
document that would decompress to more is refused without decompressing the rest.
"""

from __future__ import annotations

import logging
import time
import xml.parsers.expat
import zlib
from dataclasses import dataclass, field
from typing import Any

from ..config import FeedConfig
from ..urls import same_site
from .feeds import (
    MAX_ENTRIES,
    MAX_FEED_BYTES,
    FeedOutcome,
    FeedResult,
    entries_from,
    fetch_source,
)
from .fetch import FEED_TYPES, Fetcher, FetchResult, Validators
from .jsonfeed import parse_date

__all__ = ["Sitemap", "fetch_sitemap", "gunzip", "read_sitemap"]

log = logging.getLogger(__name__)

MAX_CHILDREN = 3  # child sitemaps of an index read per fetch, the most recent first
GZIP_MAGIC = b"\x1f\x8b"
# a .xml.gz is sent as one of these (or application/octet-stream, which feeds accept already)
GZIP_TYPES = ("application/gzip", "application/x-gzip", "application/gzip-compressed")
_ACCEPT = (
    "application/xml, text/xml;q=0.9, application/gzip;q=0.8, application/x-gzip;q=0.8, */*;q=0.5"
)


@dataclass
class Sitemap:
    """What one sitemap document holds: URL entries (as feed-entry mappings) or, for an index,
    the child sitemaps with their ``lastmod``."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    children: list[tuple[str, str]] = field(default_factory=list)  # (lastmod or "", url)
    total: int = 0  # <url> entries in the document
    problem: str | None = None
    is_index: bool = False


class _Stop(Exception):
    pass


def gunzip(content: bytes, limit: int = MAX_FEED_BYTES) -> tuple[bytes | None, str | None]:
    """The decompressed bytes of a gzip document, never more than ``limit`` of them: (bytes,
    None), or (None, why not) when it is broken or would decompress to more than ``limit``."""
    inflater = zlib.decompressobj(wbits=31)  # gzip header and trailer, checked
    try:
        out = inflater.decompress(content, limit + 1)
    except zlib.error as exc:
        return None, f"not a readable gzip sitemap: {exc}"[:300]
    if len(out) > limit or inflater.unconsumed_tail:
        return None, f"gzip sitemap decompresses to over the {limit}-byte limit"
    if not inflater.eof:
        return None, "not a readable gzip sitemap: the compressed data is truncated"
    return out, None


def read_sitemap(content: bytes) -> Sitemap:
    """Parse a sitemap or sitemap index, gzip-compressed or not. A broken document is a
    :attr:`Sitemap.problem`."""
    result = Sitemap()
    if content.startswith(GZIP_MAGIC):
        decompressed, problem = gunzip(content)
        if decompressed is None:
            result.problem = problem
            return result
        content = decompressed
    if len(content) > MAX_FEED_BYTES:
        result.problem = f"sitemap is {len(content)} bytes, over the {MAX_FEED_BYTES} limit"
        return result
    parser = xml.parsers.expat.ParserCreate()
    parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
    path: list[str] = []
    current: dict[str, str] = {}
    text: list[str] = []
    root: list[str] = []

    def start(name: str, attrs: object) -> None:
        local = name.rpartition(":")[2]
        if not path:
            root.append(local)
            result.is_index = local == "sitemapindex"
        path.append(local)
        text.clear()
        if local in ("url", "sitemap"):
            current.clear()
            if local == "url":
                result.total += 1
                if result.total > MAX_ENTRIES:
                    raise _Stop

    def end(name: str) -> None:
        local = path.pop() if path else ""
        value = "".join(text).strip()
        text.clear()
        parent = path[-1] if path else ""
        if local in ("loc", "lastmod") and parent in ("url", "sitemap"):
            current[local] = value
        elif parent == "news" and local in ("title", "publication_date", "keywords"):
            current[f"news_{local}"] = value
        elif local == "url" and current.get("loc"):
            result.entries.append(_entry(current))
        elif local == "sitemap" and current.get("loc"):
            result.children.append((current.get("lastmod", ""), current["loc"]))

    def data(chunk: str) -> None:
        if sum(map(len, text)) < 10_000:  # one text node is a URL, a date or a title
            text.append(chunk)

    def entity(name: str, *rest: object) -> None:
        result.problem = (
            f"refused: the sitemap declares the XML entity {name[:50]!r}; newsmon does not "
            "expand entities in sitemaps"
        )
        raise _Stop

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = data
    parser.EntityDeclHandler = entity
    try:
        parser.Parse(content, True)
    except _Stop:
        pass
    except (xml.parsers.expat.ExpatError, ValueError, LookupError) as exc:
        if not result.entries and not result.children:
            result.problem = f"not a readable sitemap: {exc}"[:300]
    if result.problem is None and root and root[0] not in ("urlset", "sitemapindex"):
        result.problem = f"not a sitemap (root element {root[0][:50]!r})"
    return result


def _entry(values: dict[str, str]) -> dict[str, Any]:
    entry: dict[str, Any] = {"link": values["loc"], "guidislink": False}
    if values.get("news_title"):
        entry["title"] = values["news_title"]
        entry["title_detail"] = {"type": "text/plain"}
    published = _struct(values.get("news_publication_date"))
    if published is not None:
        entry["published_parsed"] = published
    updated = _struct(values.get("lastmod"))
    if updated is not None:
        entry["updated_parsed"] = updated
    keywords = values.get("news_keywords", "")
    entry["tags"] = [{"term": k.strip()} for k in keywords.split(",")[:50] if k.strip()]
    return entry


def _struct(value: str | None) -> time.struct_time | None:
    return parse_date(value) if value else None


def _get_sitemap(fetcher: Fetcher, url: str, validators: Validators | None) -> FetchResult:
    """A feed's conditional GET that also takes the media types a ``.xml.gz`` is sent with."""
    return fetcher.get(
        url, accept=_ACCEPT, media_types=(*FEED_TYPES, *GZIP_TYPES), validators=validators
    )


def fetch_sitemap(
    fetcher: Fetcher, feed: FeedConfig, validators: Validators | None = None
) -> FeedResult:
    """Fetch and read a sitemap source: :func:`~newsmon.sources.feeds.fetch_feed` for sitemaps."""
    result, common, done = fetch_source(fetcher, feed, validators, get=_get_sitemap)
    if done is not None:
        return done
    base = result.final_url or feed.url
    sitemap = read_sitemap(result.body)
    if sitemap.problem:
        return FeedResult(outcome=FeedOutcome.INVALID, reason=sitemap.problem, **common)
    raws = list(sitemap.entries)
    notes: list[str] = []
    if sitemap.is_index:
        children = sorted(sitemap.children, reverse=True)  # W3C dates sort as text
        local = [url for _, url in children if same_site(url, base)]
        if len(local) < len(children):
            notes.append(f"{len(children) - len(local)} child sitemap(s) on other sites ignored")
        for url in local[:MAX_CHILDREN]:
            child = _get_sitemap(fetcher, url, None)
            if not child.ok:
                notes.append(f"child sitemap {url[:200]}: {child.outcome.value} ({child.reason})")
                continue
            read = read_sitemap(child.body)
            if read.problem:
                notes.append(f"child sitemap {url[:200]}: {read.problem}")
            raws.extend(read.entries)
    if sitemap.total > MAX_ENTRIES:
        notes.append(f"more than {MAX_ENTRIES} URLs; kept the first {MAX_ENTRIES}")
    entries, skipped = entries_from(raws[:MAX_ENTRIES], base)
    return FeedResult(
        outcome=FeedOutcome.FETCHED,
        entries=tuple(entries),
        validators=result.validators,
        skipped_entries=skipped,
        reason="; ".join(notes)[:500] or None,
        **common,
    )
