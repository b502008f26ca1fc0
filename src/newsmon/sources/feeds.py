"""RSS 0.9x/1.0/2.0, Atom and JSON Feed feeds: fetch (conditionally) and parse into entries.

A broken feed is a value (:class:`FeedResult` with an outcome and a reason), never an exception,
so one bad feed never stops the others.

Feeds come from anyone, so before feedparser sees a document a quick expat pass over it (stopped
at the first entry past :data:`MAX_ENTRIES`) checks its XML entity declarations and cuts a feed
with too many entries there, so parsing time and memory stay bounded; documents over
:data:`MAX_FEED_BYTES` are refused unread. Short internal entities whose value holds no
reference or markup (``<!ENTITY nbsp "&#160;">``) are expanded here, as character references,
when all their references add at most :data:`MAX_ENTITY_EXPANSION` characters; any other
declaration (external, parameter, nested, long: expansion bombs, files or internal hosts read)
refuses the document with the reason, as does any declaration in a document that is not
well-formed. JSON Feed documents go to :mod:`newsmon.sources.jsonfeed`.
"""

from __future__ import annotations

import calendar
import html
import io
import itertools
import logging
import re
import xml.parsers.expat
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urljoin

import feedparser

from ..config import FeedConfig
from ..urls import InvalidURL, canonical_url
from .fetch import Fetcher, FetchOutcome, FetchResult, Validators
from .jsonfeed import JsonFeedError, looks_like_json_feed, read_json_feed

__all__ = [
    "FeedEntry",
    "FeedOutcome",
    "FeedResult",
    "ParsedFeed",
    "entries_from",
    "fetch_feed",
    "parse_feed",
    "read_feed",
]

log = logging.getLogger(__name__)

MAX_ENTRIES = 500  # per fetch; a feed listing more is truncated (and says so in the reason)
MAX_FEED_BYTES = 8 * 1024 * 1024  # a larger document is refused unparsed (feedparser: ~16x in RAM)
MAX_ENTITY_CHARS = 64  # an internal entity stands for a character or a short phrase
MAX_ENTITY_EXPANSION = 256 * 1024  # characters all references to declared entities may add
_DECLARATION = re.compile(r"""<!ENTITY\s+[^\s%]+\s+(?:"[^"]*"|'[^']*')\s*>""")
_REFERENCE = re.compile(r"&([^;&\s]+);")
_ENTRY_START = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:item|entry)[\s/>]", re.IGNORECASE)


def _declaration_pattern(codec: str) -> re.Pattern[bytes]:
    """``<!ENTITY`` in any letter case, as bytes in ``codec``."""
    letters = (
        b"(?:" + b"|".join(re.escape(c.encode(codec)) for c in sorted({ch, ch.lower()})) + b")"
        for ch in "<!ENTITY"
    )
    return re.compile(b"".join(letters))


def _char_ref_pattern(codec: str) -> re.Pattern[bytes]:
    """``&#123;`` / ``&#x1F;`` (the ``;`` optional, as feedparser reads them) in ``codec``."""

    def one_of(chars: str) -> bytes:
        return b"(?:" + b"|".join(re.escape(c.encode(codec)) for c in chars) + b")"

    digits, hexdigits = one_of("0123456789"), one_of("0123456789abcdefABCDEF")
    start, semicolon = re.escape("&#".encode(codec)), re.escape(";".encode(codec))
    number = b"(" + one_of("xX") + hexdigits + b"+|" + digits + b"+)"
    return re.compile(start + number + b"(?:" + semicolon + b")?")


# the encodings feedparser recognises from a document's first bytes (BOM or "<?xm"), and ASCII
_FAMILIES = (
    ((b"\xff\xfe\x00\x00", b"<\x00\x00\x00"), "utf-32-le"),
    ((b"\x00\x00\xfe\xff", b"\x00\x00\x00<"), "utf-32-be"),
    ((b"\xff\xfe", b"<\x00"), "utf-16-le"),
    ((b"\xfe\xff", b"\x00<"), "utf-16-be"),
    ((b"\x4c\x6f\xa7\x94",), "cp037"),
)
_CHAR_REFS = {codec: _char_ref_pattern(codec) for _, codec in _FAMILIES} | {
    "ascii": _char_ref_pattern("ascii")
}


def _family(content: bytes) -> str:
    """How the document's markup is encoded: "ascii" for every ASCII-compatible charset."""
    return next((codec for heads, codec in _FAMILIES if content.startswith(heads)), "ascii")


# a document expat cannot read is searched in every encoding feedparser may decode it from
_ENTITY_DECLARATIONS = tuple(
    _declaration_pattern(codec)
    for codec in ("ascii", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be", "cp037")
)
# a tag is "<" then a letter, "/" or "!": "2 < 3 and 5 > 4" has none
_TAGS = re.compile(r"<(?:/?[A-Za-z][^<>]*|![^<>]*)>")
_MARKUP_TYPES = ("text/html", "application/xhtml+xml")
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
    guid: str | None = None  # the entry's own id (RSS guid, Atom id) when the feed gives one
    updated_at: datetime | None = None  # its <updated>/lastmod/date_modified, when given

    @property
    def listed_date(self) -> datetime | None:
        """The latest date the feed gives the entry (a later one: the article changed)."""
        dates = [d for d in (self.published_at, self.updated_at) if d is not None]
        return max(dates) if dates else None


@dataclass
class _Prescan:
    """What the expat pass found before feedparser runs."""

    refused: str | None = None  # why the document must not be parsed at all
    cut_at: int | None = None  # byte offset of the first entry past the cap
    open_elements: tuple[str, ...] = ()  # elements still open at ``cut_at``
    malformed: bool = False
    entities: dict[str, str] = field(default_factory=dict)  # declared, checked, to expand


class _StopScan(Exception):
    pass


def _prescan(content: bytes, max_entries: int) -> _Prescan:
    state = _Prescan()
    parser = xml.parsers.expat.ParserCreate()  # no namespaces: element names as written
    parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[str] = []
    entries = 0

    def start(name: str, attrs: object) -> None:
        nonlocal entries
        if name.rpartition(":")[2] in ("item", "entry"):
            entries += 1
            if entries > max_entries:
                state.cut_at = parser.CurrentByteIndex
                state.open_elements = tuple(stack)
                raise _StopScan
        stack.append(name)

    def end(name: str) -> None:
        if stack:
            stack.pop()

    def entity(
        name: str,
        is_parameter: bool,
        value: str | None,
        base: str | None,
        system_id: str | None,
        public_id: str | None,
        notation: str | None,
    ) -> None:
        state.refused = _refuse_entity(name, is_parameter, value, system_id, public_id, notation)
        if state.refused:
            raise _StopScan
        state.entities[name] = value or ""

    def end_doctype() -> None:
        if state.entities:
            state.refused = _refuse_expansion(content, state.entities)
            if state.refused:
                raise _StopScan

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.EntityDeclHandler = entity
    parser.EndDoctypeDeclHandler = end_doctype
    try:
        parser.Parse(content, True)
    except _StopScan:
        pass
    except (xml.parsers.expat.ExpatError, ValueError, LookupError):
        # not well-formed (or in an encoding expat cannot read): feedparser's lenient parser
        # will read it, so look for declarations and entries the crude way
        state.malformed = True
        if _declares_entities(content):
            state.refused = (
                "refused: the document declares XML entities (<!ENTITY>) and is not "
                "well-formed; newsmon does not expand entities it cannot check first"
            )
        else:
            starts = _ENTRY_START.finditer(content)
            past = next(itertools.islice(starts, max_entries, None), None)
            state.cut_at = past.start() if past else None
    return state


def _refuse_entity(
    name: str,
    is_parameter: bool,
    value: str | None,
    system_id: str | None,
    public_id: str | None,
    notation: str | None,
) -> str | None:
    """Why the declaration of entity ``name`` makes the document unsafe, or None when it is a
    short internal text (``<!ENTITY nbsp "&#160;">``), which feedparser expands itself."""
    shown = repr(name[:50])
    if is_parameter:
        return (
            f"refused: the document declares the XML parameter entity {shown}; newsmon does "
            "not expand entities that declare other entities"
        )
    if value is None or system_id is not None or public_id is not None or notation:
        return (
            f"refused: the document declares the XML external entity {shown}; newsmon does "
            "not expand entities (external entities read files or other hosts)"
        )
    if "&" in value or "<" in value:
        inner = _REFERENCE.search(value)
        what = f"refers to the entity {inner.group(1)[:50]!r}" if inner else "holds markup"
        return (
            f"refused: the document declares the XML entity {shown}, which {what}; newsmon "
            "does not expand entities within entities (entity bombs)"
        )
    if len(value) > MAX_ENTITY_CHARS:
        return (
            f"refused: the document declares the XML entity {shown} of {len(value)} "
            f"characters; newsmon does not expand entities over {MAX_ENTITY_CHARS} characters"
        )
    return None


def _refuse_expansion(content: bytes, declared: Mapping[str, str]) -> str | None:
    """Refuse a document whose references to its declared entities would expand it by more
    than :data:`MAX_ENTITY_EXPANSION` characters (counted on the bytes, so an over-estimate)."""
    codec = _family(content)
    total = 0
    for name, value in declared.items():
        try:
            reference = f"&{name};".encode(codec)
        except UnicodeError:
            continue  # a name the document's encoding cannot write is never referenced
        total += content.count(reference) * len(value)
        if total > MAX_ENTITY_EXPANSION:
            return (
                f"refused: the document declares XML entities (first {next(iter(declared))!r}) "
                f"whose references expand to over {MAX_ENTITY_EXPANSION} characters; newsmon "
                "does not expand entities that far (entity bombs)"
            )
    return None


def _expand_entities(content: bytes, entities: Mapping[str, str]) -> bytes:
    """The document with its (checked) internal entities expanded and their declarations
    removed, so feedparser never meets a declaration. A reference becomes the entity's text
    written as character references, which every encoding can carry."""
    codec = _family(content)
    text = content.decode("latin-1" if codec == "ascii" else codec, errors="replace")
    text = _DECLARATION.sub("", text)
    for name, value in entities.items():
        text = text.replace(f"&{name};", "".join(f"&#{ord(c)};" for c in value))
    return text.encode("latin-1" if codec == "ascii" else codec, errors="replace")


def _declares_entities(content: bytes) -> bool:
    return any(pattern.search(content) for pattern in _ENTITY_DECLARATIONS)


def _safe_char_refs(content: bytes, codecs: Iterable[str] | None = None) -> bytes:
    """Numeric character references to surrogates or beyond U+10FFFF, as U+FFFD.

    feedparser's lenient parser turns ``&#xD800;`` or ``&#1114112;`` into an exception
    instead of a replacement character. References are looked for as bytes in ``codecs``: by
    default ASCII and, when the first bytes say UTF-16/32 or EBCDIC, that encoding too.
    """
    for codec in dict.fromkeys(codecs or ("ascii", _family(content))):
        content = _CHAR_REFS[codec].sub(_char_ref_replacer(codec), content)
    return content


def _char_ref_replacer(codec: str) -> Callable[[re.Match[bytes]], bytes]:
    replacement = "&#xFFFD;".encode(codec)

    def replace(match: re.Match[bytes]) -> bytes:
        digits = match.group(1).decode(codec)
        hexadecimal = digits[:1] in ("x", "X")
        number = (digits[1:] if hexadecimal else digits).lstrip("0") or "0"
        if len(number) > 8:
            return replacement
        value = int(number, 16 if hexadecimal else 10)
        if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
            return replacement
        return match.group(0)

    return replace


def _cut(content: bytes, scan: _Prescan) -> bytes:
    """The document up to its first entry past the cap, its open elements closed."""
    wide = _family(content) != "ascii" or b"\x00" in content[:4]
    if scan.cut_at is None or wide:
        return content  # not ASCII-compatible: parsed whole, the size cap bounds it
    closing = "".join(f"</{name}>" for name in reversed(scan.open_elements))
    return content[: scan.cut_at] + closing.encode("ascii", "ignore")


@dataclass(frozen=True)
class ParsedFeed:
    """What :func:`read_feed` found in a document."""

    entries: list[FeedEntry]
    skipped: int  # entries without a usable http(s) link
    problem: str | None  # why the document is not a usable feed, or None
    note: str | None = None  # something the caller should know (entries cut at the cap)


@dataclass(frozen=True)
class FeedResult:
    feed_id: str
    outcome: FeedOutcome
    entries: tuple[FeedEntry, ...] = ()
    validators: Validators = field(default_factory=Validators)
    fetch_outcome: FetchOutcome | None = None  # why the fetch failed, when it did
    reason: str | None = None  # why it failed; for a fetched feed, a note (entries cut)
    skipped_entries: int = 0  # entries without a usable http(s) link
    status: int | None = None
    seconds: float = 0.0


def _plain_text(value: str | None, limit: int = 2000, *, markup: bool = True) -> str | None:
    """``value`` as plain text: tags removed and entities decoded when it is HTML (``markup``),
    only its white space normalised when the feed says it is text."""
    if not value:
        return None
    if markup:
        value = html.unescape(_TAGS.sub(" ", _HIDDEN.sub(" ", value)))
    text = _SPACE.sub(" ", value).strip()
    return text[:limit] or None


def _is_markup(entry: Mapping[str, Any], key: str) -> bool:
    """Whether feedparser read the entry's ``key`` as HTML (its ``<key>_detail.type``)."""
    detail = entry.get(f"{key}_detail")
    kind = detail.get("type") if isinstance(detail, Mapping) else None
    return not isinstance(kind, str) or kind.lower() in _MARKUP_TYPES


def _text_field(entry: Mapping[str, Any], key: str, limit: int) -> str | None:
    value = entry.get(key)
    return (
        _plain_text(value, limit, markup=_is_markup(entry, key)) if isinstance(value, str) else None
    )


def _entry_date(
    entry: Mapping[str, Any],
    keys: Sequence[str] = ("published_parsed", "updated_parsed", "created_parsed"),
) -> datetime | None:
    for key in keys:
        parsed = entry.get(key)
        if parsed:
            try:
                return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
            except (OverflowError, ValueError, TypeError):
                continue
    return None


def _entry_link(entry: Mapping[str, Any], base: str) -> str | None:
    """Where the article is: FeedBurner's original link, else the entry's page (its
    ``rel="alternate"`` link, an HTML one first), else its guid when that is a permalink.
    An enclosure (the entry's image, audio or video) is never the article — unless the entry
    also names that URL as its page (``<link>`` or ``rel="alternate"``)."""
    enclosures: set[str] = set()
    alternates: list[tuple[int, str]] = []
    for item in entry.get("links") or ():
        if not isinstance(item, Mapping) or not isinstance(item.get("href"), str):
            continue
        rel = item.get("rel", "alternate")
        if rel == "enclosure":
            enclosures.add(item["href"].strip())
        elif rel == "alternate":
            kind = item.get("type")
            html_page = not isinstance(kind, str) or kind.lower() in (*_MARKUP_TYPES, "")
            alternates.append((0 if html_page else 1, item["href"]))
    candidates: list[str] = []
    original = entry.get("feedburner_origlink")
    if isinstance(original, str):
        candidates.append(original)
    candidates += [href for _, href in sorted(alternates, key=lambda pair: pair[0])]
    link = entry.get("link")
    if isinstance(link, str):
        candidates.append(link)
    guid = entry.get("id")
    if isinstance(guid, str) and entry.get("guidislink", True):
        candidates.append(guid)
    pages = {href.strip() for _, href in alternates}
    for candidate in candidates:
        if candidate.strip() in enclosures and candidate.strip() not in pages:
            continue
        try:
            absolute = urljoin(base, candidate.strip())
        except ValueError:  # "http://[::1": urllib cannot even split it
            continue
        if absolute == base:  # feedparser's answer for an empty or unparsable link: the feed
            continue
        if absolute.lower().startswith(("http://", "https://")):
            return absolute
    return None


def _guid(entry: Mapping[str, Any]) -> str | None:
    guid = entry.get("id")
    return guid.strip()[:1000] or None if isinstance(guid, str) else None


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
    parsed = read_feed(content, url, content_type=content_type)
    return parsed.entries, parsed.skipped, parsed.problem


def read_feed(content: bytes, url: str, *, content_type: str | None = None) -> ParsedFeed:
    """:func:`parse_feed` with a note when the feed's entries were cut at :data:`MAX_ENTRIES`."""
    if len(content) > MAX_FEED_BYTES:
        return ParsedFeed([], 0, f"feed is {len(content)} bytes, over the {MAX_FEED_BYTES} limit")
    if looks_like_json_feed(content):
        return _read_json(content, url)
    try:
        scan = _prescan(content, MAX_ENTRIES)
        if scan.refused:
            return ParsedFeed([], 0, scan.refused)
        note = None
        if scan.cut_at is not None:
            content = _cut(content, scan)
            note = f"more than {MAX_ENTRIES} entries; kept the first {MAX_ENTRIES}"
            log.info("%s: %s", url, note)
        if scan.entities:
            content = _expand_entities(content, scan.entities)
        content = _safe_char_refs(content)
        try:
            return _parse(content, url, content_type, note)
        except (ValueError, OverflowError, UnicodeError):
            # feedparser may decode a document otherwise than its first bytes say (a charset
            # in the Content-Type, a BOM after junk): look for references in every encoding
            everywhere = _safe_char_refs(content, _CHAR_REFS)
            if everywhere == content:
                raise
            return _parse(everywhere, url, content_type, note)
    except Exception as exc:  # a parser bug on one document is that feed's outcome
        log.warning("%s: feed parser failed", url, exc_info=True)
        return ParsedFeed([], 0, f"parser failed: {type(exc).__name__}: {exc}"[:300])


def entries_from(raws: Iterable[Mapping[str, Any]], url: str) -> tuple[list[FeedEntry], int]:
    """Feed entries from feedparser's (or the JSON Feed reader's) mappings, and how many had
    no usable link; an entry listed twice is kept once."""
    entries: list[FeedEntry] = []
    skipped = 0
    seen: set[str] = set()
    for raw in raws:
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
                title=_text_field(raw, "title", 1000),
                summary=_text_field(raw, "summary", 2000),
                published_at=_entry_date(raw),
                authors=_authors(raw),
                tags=_tags(raw),
                guid=_guid(raw),
                updated_at=_entry_date(raw, ("updated_parsed",)),
            )
        )
    return entries, skipped


def _read_json(content: bytes, url: str) -> ParsedFeed:
    try:
        document = read_json_feed(content, MAX_ENTRIES)
    except JsonFeedError as exc:
        return ParsedFeed([], 0, f"not a readable feed: {exc}"[:300])
    except Exception as exc:  # a reader bug on one document is that feed's outcome
        log.warning("%s: JSON Feed reader failed", url, exc_info=True)
        return ParsedFeed([], 0, f"parser failed: {type(exc).__name__}: {exc}"[:300])
    entries, skipped = entries_from(document.entries, url)
    note = None
    if document.total > MAX_ENTRIES:
        note = f"{document.total} entries; kept the first {MAX_ENTRIES}"
        log.info("%s: %s", url, note)
    return ParsedFeed(entries, skipped, None, note)


def _parse(content: bytes, url: str, content_type: str | None, note: str | None) -> ParsedFeed:
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    parsed = feedparser.parse(
        io.BytesIO(content),
        response_headers=headers,
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    entries, skipped = entries_from(parsed.entries[:MAX_ENTRIES], url)
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
        note = f"{len(parsed.entries)} entries; kept the first {MAX_ENTRIES}"
        log.info("%s: %s", url, note)
    return ParsedFeed(entries, skipped, problem, None if problem else note)


def fetch_source(
    fetcher: Fetcher,
    feed: FeedConfig,
    validators: Validators | None,
    *,
    get: Callable[[Fetcher, str, Validators | None], FetchResult] | None = None,
) -> tuple[FetchResult, dict[str, Any], FeedResult | None]:
    """The conditional GET every source type (feed, sitemap) starts with: the answer, the
    fields every result of it carries, and the result itself when there is nothing to read
    (unchanged, or the fetch failed). ``get`` makes the request (default: ``get_feed``)."""
    result = get(fetcher, feed.url, validators) if get else fetcher.get_feed(feed.url, validators)
    common: dict[str, Any] = {
        "feed_id": feed.id,
        "fetch_outcome": result.outcome,
        "status": result.status,
        "seconds": result.seconds,
    }
    if result.outcome is FetchOutcome.NOT_MODIFIED:
        unchanged = FeedResult(
            outcome=FeedOutcome.NOT_MODIFIED, validators=validators or Validators(), **common
        )
        return result, common, unchanged
    if not result.ok:
        failed = FeedOutcome.FETCH_FAILED
        return result, common, FeedResult(outcome=failed, reason=result.reason, **common)
    return result, common, None


def fetch_feed(
    fetcher: Fetcher, feed: FeedConfig, validators: Validators | None = None
) -> FeedResult:
    """Fetch and parse one feed; a 304 answer costs nothing and yields no entries."""
    result, common, done = fetch_source(fetcher, feed, validators)
    if done is not None:
        return done
    try:
        parsed = read_feed(
            result.body, result.final_url or feed.url, content_type=result.content_type
        )
    except Exception as exc:  # a parser crash on one feed must not stop the others
        log.exception("feed %s: parser failed", feed.id)
        parsed = ParsedFeed([], 0, f"parser failed: {type(exc).__name__}: {exc}"[:300])
    if parsed.problem:
        return FeedResult(outcome=FeedOutcome.INVALID, reason=parsed.problem, **common)
    return FeedResult(
        outcome=FeedOutcome.FETCHED,
        entries=tuple(parsed.entries),
        validators=result.validators,
        skipped_entries=parsed.skipped,
        reason=parsed.note,
        **common,
    )


def entries_by_url(entries: Iterable[FeedEntry]) -> dict[str, FeedEntry]:
    """Entries keyed by canonical URL, first occurrence kept."""
    out: dict[str, FeedEntry] = {}
    for entry in entries:
        out.setdefault(entry.canonical_url, entry)
    return out
