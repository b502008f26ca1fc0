"""OPML import and export: subscription lists from other feed readers become ``feeds.yaml``
entries, and ``feeds.yaml`` becomes a list they read.

The file is parsed with defusedxml (no entity expansion, no DTD or external fetches), so a
hostile file cannot blow up memory or make newsmon read files or URLs. Each ``<outline>`` with
an ``xmlUrl`` is one feed; the titles of the outlines it is nested in and its ``category``
attribute become its tags. A bad outline is reported with its line and skipped; feeds already
in the list (same canonical URL) are skipped too.
"""

from __future__ import annotations

import logging
import re
import xml.sax
from collections.abc import Sequence
from dataclasses import dataclass, field
from xml.sax.handler import ContentHandler
from xml.sax.saxutils import escape, quoteattr
from xml.sax.xmlreader import AttributesImpl, Locator

import defusedxml.sax
from defusedxml import DefusedXmlException
from pydantic import ValidationError

from ..config import ConfigError, FeedConfig
from ..urls import InvalidURL, canonical_url
from .feedlist import feed_keys, slug, suggest_id

__all__ = [
    "OpmlImport",
    "OpmlOutline",
    "OpmlProblem",
    "export_opml",
    "import_opml",
    "parse_opml",
]

log = logging.getLogger(__name__)

MAX_BYTES = 10 * 1024 * 1024
MAX_TAGS = 10
_LANGUAGE = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$"


@dataclass(frozen=True)
class OpmlOutline:
    """One ``<outline>`` that names a feed."""

    line: int
    url: str
    title: str | None
    tags: tuple[str, ...]
    language: str | None = None


@dataclass(frozen=True)
class OpmlProblem:
    line: int | None
    message: str

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line else source
        return f"{where}: {self.message}"


@dataclass
class OpmlImport:
    """What an import yields: new feeds, duplicates left out, bad outlines skipped."""

    feeds: list[FeedConfig] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)  # feed id -> OPML line
    duplicates: list[tuple[int, str, str]] = field(default_factory=list)  # line, url, known id
    problems: list[OpmlProblem] = field(default_factory=list)


def _attr(attrs: AttributesImpl, name: str) -> str | None:
    """An attribute by name, case-insensitively (``xmlUrl``, ``xmlurl``…), stripped."""
    for key in attrs.getNames():
        if key.lower() == name.lower():
            value = " ".join(str(attrs.getValue(key)).split())
            return value or None
    return None


def _tags(values: Sequence[str]) -> tuple[str, ...]:
    """``/News/World, Tech`` → ``news``, ``world``, ``tech``."""
    out: list[str] = []
    for value in values:
        for part in value.replace(",", "/").split("/"):
            tag = slug(part, 64)
            if tag and tag not in out:
                out.append(tag)
    return tuple(out[:MAX_TAGS])


class _Handler(ContentHandler):
    def __init__(self) -> None:
        super().__init__()
        self.locator: Locator | None = None
        self.outlines: list[OpmlOutline] = []
        self.problems: list[OpmlProblem] = []
        self.root: str | None = None
        self.in_body = False
        self.folders: list[str | None] = []  # one per open <outline>: its title if a folder

    def setDocumentLocator(self, locator: Locator) -> None:
        self.locator = locator

    @property
    def line(self) -> int | None:
        return self.locator.getLineNumber() if self.locator is not None else None

    def startElement(self, name: str, attrs: AttributesImpl) -> None:
        if self.root is None:
            self.root = name
        if name == "body":
            self.in_body = True
        if name != "outline" or not self.in_body:
            return
        url = _attr(attrs, "xmlUrl")
        title = _attr(attrs, "title") or _attr(attrs, "text")
        if url is None:
            kind = (_attr(attrs, "type") or "").lower()
            if kind in ("rss", "atom"):
                self.problems.append(OpmlProblem(self.line, f"{kind} outline without xmlUrl"))
            self.folders.append(title)
            return
        self.folders.append(None)
        categories = [f for f in self.folders[:-1] if f]
        category = _attr(attrs, "category")
        if category:
            categories.append(category)
        language = _attr(attrs, "language")
        self.outlines.append(OpmlOutline(self.line or 0, url, title, _tags(categories), language))

    def endElement(self, name: str) -> None:
        if name == "outline" and self.in_body and self.folders:
            self.folders.pop()
        elif name == "body":
            self.in_body = False


def parse_opml(data: bytes, source: str = "<opml>") -> tuple[list[OpmlOutline], list[OpmlProblem]]:
    """The feed outlines of an OPML document and the outlines that could not be read.

    Raises ConfigError (file and line) for a document that is not well-formed XML, declares
    entities or is not OPML.
    """
    if len(data) > MAX_BYTES:
        raise ConfigError(f"larger than {MAX_BYTES // (1024 * 1024)} MB", file=source)
    handler = _Handler()
    try:
        defusedxml.sax.parseString(
            data, handler, forbid_dtd=False, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException as exc:
        raise ConfigError(
            f"refused: the document declares entities or external references ({exc})",
            file=source,
            line=handler.line,
        ) from None
    except xml.sax.SAXParseException as exc:
        raise ConfigError(
            f"not well-formed XML: {exc.getMessage()}", file=source, line=exc.getLineNumber()
        ) from None
    if handler.root != "opml":
        raise ConfigError(
            f"not an OPML document (root element {handler.root!r})", file=source, line=1
        )
    return handler.outlines, handler.problems


def import_opml(
    data: bytes, source: str = "<opml>", existing: Sequence[FeedConfig] = ()
) -> OpmlImport:
    """Feed entries for the outlines of an OPML document that ``existing`` does not have."""
    outlines, problems = parse_opml(data, source)
    result = OpmlImport(problems=list(problems))
    known = feed_keys(existing)
    taken = {f.id for f in existing}
    for outline in outlines:
        try:
            key = canonical_url(outline.url)
        except InvalidURL as exc:
            result.problems.append(OpmlProblem(outline.line, f"xmlUrl: {exc}"))
            continue
        if key in known:
            result.duplicates.append((outline.line, outline.url, known[key]))
            continue
        name = (outline.title or "")[:200] or key
        language = outline.language
        if language and not _valid_language(language):
            language = None
        feed_id = suggest_id(outline.url, outline.title, set(taken))
        try:
            feed = FeedConfig(
                id=feed_id, name=name, url=outline.url, language=language, tags=outline.tags
            )
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"]) or "outline"
            result.problems.append(OpmlProblem(outline.line, f"{where}: {error['msg']}"))
            continue
        taken.add(feed_id)
        known[key] = feed_id
        result.feeds.append(feed)
        result.lines[feed_id] = outline.line
    result.problems.sort(key=lambda p: p.line or 0)
    return result


def export_opml(
    feeds: Sequence[FeedConfig], title: str = "newsmon feeds", *, include_disabled: bool = False
) -> bytes:
    """The feeds as an OPML 2.0 subscription list that feed readers (and :func:`import_opml`)
    read: one ``<outline type="rss">`` per feed with its name, URL, language and, in
    ``category``, its tags. Disabled feeds are left out unless ``include_disabled``."""
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<opml version="2.0">',
        f"  <head><title>{escape(title)}</title></head>",
        "  <body>",
    ]
    for feed in feeds:
        if not feed.enabled and not include_disabled:
            continue
        attrs = {
            "type": "rss",
            "text": feed.name,
            "title": feed.name,
            "xmlUrl": feed.url,
            "language": feed.language,
            "category": ",".join(t.replace(",", " ") for t in feed.tags) or None,
        }
        rendered = " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items() if v)
        lines.append(f"    <outline {rendered}/>")
    lines += ["  </body>", "</opml>", ""]
    return "\n".join(lines).encode("utf-8")


def _valid_language(value: str) -> bool:
    return re.fullmatch(_LANGUAGE, value) is not None
