"""Article extraction: raw HTML in, clean article text and metadata out.

The heavy lifting (finding the main content, metadata, dates) is done by trafilatura and
htmldate; this module decodes bytes, picks the settings, and turns the result into the
:class:`ExtractedPage` the rest of newsmon works with:

* ``text`` is the article body as the user reads it: one paragraph per block, blocks separated
  by one blank line, whitespace normalised, no title line at the start (page templates often
  repeat the headline) and no ad-slot labels ("Advertisement", "Advertisement - Scroll to
  continue", ...). Nothing else is removed: a line that could be content stays.
* When trafilatura keeps only part of an article split across containers, a second
  extraction (readability, then recall mode) replaces the text if it adds article text.
* Metadata: title, authors, publication date (timezone-aware), language, site name,
  description, image and the canonical URL the page declares. Title and authors are chosen
  here from the page's own candidates (<h1>, og:title, JSON-LD, <title>, meta tags) rather than
  taken from trafilatura: the headline the reader sees, without the site name; the article's
  authors, not the publisher or a byline's date.

``extract_page`` never raises on bad input: it logs and returns ``None`` when no article text
can be extracted (a ``MemoryError`` is passed on: newsmon.isolate runs it under a memory
limit). It takes HTML as ``str`` or ``bytes``; compressed files (``.html.gz``) are the
caller's business.

Quality is measured by ``bench/extraction_quality.py`` (word-level bag-of-words F1 against two
ground-truth sets, title/author/date accuracy on WCXB); the settings and rules below were chosen
with it (docs/extraction.md).
"""

from __future__ import annotations

import codecs
import copy
import html
import itertools
import json
import logging
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

import trafilatura
from trafilatura.external import try_readability

log = logging.getLogger(__name__)

__all__ = ["ExtractedPage", "decode_html", "extract_page"]

# An lxml.html.HtmlElement (lxml ships no type hints, trafilatura is untyped here).
HtmlTree = Any


@dataclass(frozen=True)
class ExtractedPage:
    """What newsmon keeps of a fetched article page."""

    title: str | None
    text: str  # article body: paragraphs separated by one blank line, no title line, stripped
    authors: tuple[str, ...]
    published_at: datetime | None  # timezone-aware (UTC if the page gives no zone)
    language: str | None  # e.g. "en"
    site_name: str | None
    description: str | None
    image: str | None  # absolute http(s) URL or None
    page_canonical_url: str | None  # rel=canonical / og:url made absolute; None if absent


# --------------------------------------------------------------------------------------------
# trafilatura settings
# --------------------------------------------------------------------------------------------

# Chosen by measurement (bench/extraction_quality.py, news-pages + WCXB): comments off, the
# rest at trafilatura's balanced defaults scored best; precision/fast/no-tables/dedup lost F1.
TRAFILATURA_OPTIONS: Final[Mapping[str, Any]] = {
    "include_comments": False,
    "favor_precision": False,
    "favor_recall": False,
    "include_tables": True,
    "fast": False,
    "deduplicate": False,
}
# Second try when the balanced pass finds no text at all (measured: recovers pages the
# balanced pass drops, costs nothing on the others); also the second extraction of an article
# split across containers.
TRAFILATURA_RETRY_OPTIONS: Final[Mapping[str, Any]] = {
    **TRAFILATURA_OPTIONS,
    "favor_recall": True,
}

# htmldate: look for the original publication date (not the last update), keep time and zone.
DATE_OUTPUT_FORMAT: Final = "%Y-%m-%dT%H:%M:%S%z"


# --------------------------------------------------------------------------------------------
# decoding
# --------------------------------------------------------------------------------------------

_BOMS: Final[tuple[tuple[bytes, str], ...]] = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# Labels browsers decode differently from Python's codec of the same name (WHATWG Encoding
# standard): latin-1/ASCII pages are decoded as windows-1252, GB2312 as GBK/GB18030.
_LABEL_OVERRIDES: Final[Mapping[str, str]] = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "iso-8859-9": "cp1254",
    "latin5": "cp1254",
    "tis-620": "cp874",
    "iso-8859-11": "cp874",
    "gb2312": "gb18030",
    "gb_2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "x-sjis": "shift_jis",
}

_CHARSET_PARAM_RE: Final = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9._:\-]+)""", re.I)
_META_CHARSET_RE: Final = re.compile(
    rb"""<meta\b[^>]*?\bcharset\s*=\s*["']?\s*([A-Za-z0-9._:\-]+)""", re.I | re.S
)
_XML_DECL_RE: Final = re.compile(rb"""^\s*<\?xml[^>]*\bencoding\s*=\s*["']([A-Za-z0-9._\-]+)""")
_META_SCAN_BYTES: Final = 16384


def _codec_for(label: str | None, *, in_document: bool = False) -> str | None:
    """Python codec name for a charset label, or None if unknown."""
    if not label:
        return None
    cleaned = label.strip().strip("\"'").lower()
    cleaned = _LABEL_OVERRIDES.get(cleaned, cleaned)
    try:
        name = codecs.lookup(cleaned).name
    except LookupError:
        return None
    # a document that can declare its charset in ASCII is not UTF-16: browsers read UTF-8
    return "utf-8" if in_document and name.startswith("utf-16") else name


def _try_decode(data: bytes, codec: str | None) -> str | None:
    if codec is None:
        return None
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def _declared_in_document(data: bytes) -> str | None:
    head = data[:_META_SCAN_BYTES]
    match = _META_CHARSET_RE.search(head) or _XML_DECL_RE.search(head)
    if match is None:
        return None
    return match.group(1).decode("ascii", "replace")


# Encodings a web page can really be in (WHATWG Encoding standard); statistical detection is
# limited to these, so an English page is not "detected" as a DOS code page.
_WEB_ENCODINGS: Final = (
    "utf_8",
    "cp1252",
    "cp1250",
    "cp1251",
    "cp1253",
    "cp1254",
    "cp1255",
    "cp1256",
    "cp1257",
    "cp1258",
    "cp874",
    "iso8859_2",
    "iso8859_4",
    "iso8859_5",
    "iso8859_6",
    "iso8859_7",
    "iso8859_8",
    "iso8859_10",
    "iso8859_13",
    "iso8859_14",
    "iso8859_15",
    "iso8859_16",
    "koi8_r",
    "koi8_u",
    "mac_cyrillic",
    "gb18030",
    "big5",
    "shift_jis",
    "euc_jp",
    "iso2022_jp",
    "euc_kr",
)
# The legacy encoding pages in a language used before UTF-8 (what browsers fall back to).
# Breaks ties in detection: single-byte code pages often decode a page equally well.
_LEGACY_BY_LANGUAGE: Final[Mapping[str, str]] = {
    **dict.fromkeys(("ru", "uk", "bg", "sr", "mk", "be", "kk", "ky", "tg", "mn"), "cp1251"),
    **dict.fromkeys(("pl", "cs", "sk", "hu", "sl", "hr", "bs", "ro", "sq"), "cp1250"),
    **dict.fromkeys(("lt", "lv", "et"), "cp1257"),
    **dict.fromkeys(("ar", "fa", "ur"), "cp1256"),
    "el": "cp1253",
    "tr": "cp1254",
    "az": "cp1254",
    "he": "cp1255",
    "vi": "cp1258",
    "th": "cp874",
    "ja": "shift_jis",
    "zh": "gb18030",
    "ko": "euc_kr",
}
_HTML_LANG_RE: Final = re.compile(rb"<html\b[^>]*?\blang\s*=\s*[\"']?\s*([A-Za-z]{2,3})", re.I)
# detection results with a "chaos" this close to the best one's count as a tie
_DETECTION_TIE: Final = 0.01


def _detected(data: bytes) -> str | None:
    """Best guess for undeclared, non-UTF-8 bytes: charset_normalizer limited to web
    encodings, ties broken in favour of the legacy encoding of the page's ``<html lang>``
    (windows-1252 when there is none, as browsers do)."""
    lang_match = _HTML_LANG_RE.search(data[:_META_SCAN_BYTES])
    lang = lang_match.group(1).decode("ascii").lower() if lang_match else ""
    preferred = codecs.lookup(_LEGACY_BY_LANGUAGE.get(lang, "cp1252")).name
    try:
        import charset_normalizer  # a dependency of requests and trafilatura

        results = list(
            charset_normalizer.from_bytes(data[:200_000], cp_isolation=list(_WEB_ENCODINGS))
        )
    except Exception:  # detection is a best effort
        log.debug("charset detection failed", exc_info=True)
        results = []
    if not results:
        return preferred
    best = min(results, key=lambda match: match.chaos)
    for match in results:
        if match.chaos <= best.chaos + _DETECTION_TIE and preferred in {
            _codec_for(name) for name in match.could_be_from_charset
        }:
            return preferred
    return str(best.encoding)


def decode_html(data: bytes, content_type: str | None = None) -> str:
    """Decode an HTML document the way a browser would; never raises.

    Order: a byte-order mark (it is unambiguous), then the ``charset`` of the HTTP
    ``Content-Type`` header, then ``<meta charset>`` / ``<meta http-equiv>`` (or an XML
    declaration) in the first 16 KiB, then UTF-8, then statistical detection, then
    windows-1252. A declared charset is only used if the bytes decode with it without error,
    so a lying header or meta tag falls through to the next source.
    """
    try:
        for bom, bom_codec in _BOMS:
            if data.startswith(bom):
                return data[len(bom) :].decode(bom_codec, errors="replace")

        candidates: list[str | None] = []
        if content_type:
            match = _CHARSET_PARAM_RE.search(content_type)
            if match:
                candidates.append(_codec_for(match.group(1)))
        candidates.append(_codec_for(_declared_in_document(data), in_document=True))
        candidates.append("utf-8")
        for codec in candidates:
            decoded = _try_decode(data, codec)
            if decoded is not None:
                return decoded
        detected = _try_decode(data, _codec_for(_detected(data)))
        if detected is not None:
            return detected
        return data.decode("cp1252", errors="replace")
    except Exception:  # pragma: no cover - defensive: decoding must never break a crawl
        log.warning("could not decode HTML, falling back to UTF-8 with replacement", exc_info=True)
        return data.decode("utf-8", errors="replace")


# --------------------------------------------------------------------------------------------
# text cleanup
# --------------------------------------------------------------------------------------------

_SPACE_RE: Final = re.compile(r"[\s\u200b\u2060\ufeff]+")

# Lines that are nothing but an ad slot's label: "Advertisement", "ADVERTISEMENT", "Ad",
# "Advertisement - Scroll to continue", "Story continues below advertisement",
# "SKIP ADVERTISEMENT", ... Matched against the whole line (case-insensitive, trailing
# punctuation allowed), so a sentence that merely mentions advertising is never touched.
_AD: Final = r"(?:advert(?:isement|isment)?s?|ads?)"
_AD_CONTINUES: Final = (
    r"(?:(?:the\s+)?(?:story|article|content|text|post)\s+continues?"
    r"|continue\s+reading"
    r"|scroll(?:\s+down)?\s+to\s+continue(?:\s+reading)?(?:\s+with\s+(?:the\s+)?content)?)"
)
_AD_LABEL_RE: Final = re.compile(
    rf"""
    (?:
        (?:paid\s+|sponsored\s+)?advert(?:isement|isment)?s?
      | ad
      | scroll(?:\s+down)?\s+to\s+continue(?:\s+reading)?(?:\s+with\s+(?:the\s+)?content)?
      | {_AD}\s*[-\u2013\u2014:|\u00b7\u2022/]?\s*{_AD_CONTINUES}(?:\s+below)?
      | {_AD_CONTINUES}\s+(?:below|after)(?:\s+(?:this\s+|the\s+)?{_AD})?
      | skip\s+(?:this\s+)?{_AD}
    )
    [\s.:!\u2026]*
    """,
    re.I | re.X,
)


def _normalise_line(line: str) -> str:
    return _SPACE_RE.sub(" ", line).strip()


def _clean_text(raw: str, titles: tuple[str, ...] = ()) -> str:
    """Normalise trafilatura's plain-text output into the article body the user sees."""
    text = unicodedata.normalize("NFC", raw)
    lines = [_normalise_line(line) for line in text.splitlines()]
    lines = [line for line in lines if line and not _AD_LABEL_RE.fullmatch(line)]
    title_keys = {key for key in (_comparable(t) for t in titles) if key}
    while lines and _comparable(lines[0]) in title_keys:
        lines.pop(0)
    return "\n\n".join(lines)


# --------------------------------------------------------------------------------------------
# metadata helpers
# --------------------------------------------------------------------------------------------


def _clean_field(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    cleaned = _normalise_line(unicodedata.normalize("NFC", value))
    return cleaned or None


def _absolute_http_url(value: str | None, base: str | None) -> str | None:
    if not value:
        return None
    candidate = value.strip()
    if not candidate:
        return None
    try:
        if base:
            candidate = urljoin(base, candidate)
        elif candidate.startswith("//"):
            candidate = "https:" + candidate
        parts = urlsplit(candidate)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return candidate


def _host(url: str | None) -> str | None:
    try:
        return urlsplit(url).hostname if url else None
    except ValueError:
        return None


def _canonical_url(tree: HtmlTree, base: str | None) -> str | None:
    for link in tree.iterfind(".//link[@href]"):
        rel = (link.get("rel") or "").lower().split()
        if "canonical" in rel:
            return _absolute_http_url(link.get("href"), base)
    for meta in tree.iterfind(".//meta[@content]"):
        if (meta.get("property") or meta.get("name") or "").strip().lower() == "og:url":
            return _absolute_http_url(meta.get("content"), base)
    return None


_LANG_RE: Final = re.compile(r"^\s*([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]+)*\s*$")


def _language(tree: HtmlTree) -> str | None:
    candidates: list[str | None] = [tree.get("lang"), tree.get("xml:lang")]
    for meta in tree.iterfind(".//meta[@content]"):
        key = (meta.get("http-equiv") or meta.get("property") or meta.get("name") or "").lower()
        if key in ("content-language", "og:locale", "language", "dc.language"):
            candidates.append(meta.get("content"))
    for candidate in candidates:
        if candidate:
            match = _LANG_RE.match(candidate.split(",")[0])
            if match:
                return match.group(1).lower()
    return None


def _published_at(value: object) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        log.debug("unparseable date from htmldate: %r", value)
        return None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _date_params() -> dict[str, Any]:
    # max_date: htmldate rejects dates after today (computed per call: workers run for days)
    return {
        "original_date": True,
        "extensive_search": True,
        "outputformat": DATE_OUTPUT_FORMAT,
        "max_date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }


# --------------------------------------------------------------------------------------------
# page metadata read from the tree: headings, meta tags, JSON-LD
# --------------------------------------------------------------------------------------------


_INVISIBLE_TAGS: Final = frozenset({"script", "style", "noscript", "template", "svg"})
_BREAKING_TAGS: Final = frozenset(
    {"br", "div", "p", "li", "ul", "ol", "section", "header", "footer", "h1", "h2", "h3", "h4"}
)
# Page chrome: a heading inside these (and not inside the article) is the site's, not the
# article's: the logo's <h1>, "Menu", "Follow us", widget titles.
_CHROME_TAGS: Final = frozenset({"nav", "aside", "footer"})
_CHROME_ROLES: Final = frozenset({"navigation", "complementary", "contentinfo", "search"})
_ARTICLE_TAGS: Final = frozenset({"article", "main"})
_ARTICLE_ROLES: Final = frozenset({"main", "article"})
# schema.org types whose "headline"/"author"/"datePublished" describe the page's article
_JSONLD_ARTICLE_TYPES: Final = frozenset(
    {
        "article",
        "newsarticle",
        "blogposting",
        "techarticle",
        "reportagenewsarticle",
        "opinionnewsarticle",
        "analysisnewsarticle",
        "backgroundnewsarticle",
        "reviewnewsarticle",
        "liveblogposting",
        "scholarlyarticle",
        "socialmediaposting",
        "report",
        "howto",
        "review",
    }
)
# types whose "name" is the site's (or its owner's) name
_JSONLD_SITE_TYPES: Final = frozenset({"website", "organization", "newsmediaorganization"})
_SITE_NAME_METAS: Final = frozenset(
    {"og:site_name", "application-name", "apple-mobile-web-app-title", "twitter:site"}
    | {"article:publisher", "publisher"}
)
# meta tags naming the author (a URL, e.g. a Facebook profile in article:author, is skipped)
_AUTHOR_METAS: Final = (
    "author",
    "parsely-author",
    "sailthru.author",
    "dc.creator",
    "article:author",
)
_MAX_HEADING_PARTS: Final = 30


@dataclass(frozen=True)
class _Heading:
    """An <h1> of the page."""

    text: str
    in_article: bool  # inside <article>/<main>
    in_chrome: bool  # in nav/aside/footer
    in_page_header: bool  # in a page header (<header>, role=banner) outside the article
    parts: tuple[str, ...]  # its own text and its descendants' texts (a headline wrapped in
    # a date, a label or a counter is one of them)


@dataclass(frozen=True)
class _JsonLdObject:
    types: frozenset[str]
    data: Mapping[str, Any]


@dataclass(frozen=True)
class _PageMeta:
    """What the page says about itself, collected in one pass over the tree."""

    headings: tuple[_Heading, ...]
    og_title: str | None
    twitter_title: str | None
    html_title: str | None
    jsonld_headline: str | None
    site_names: tuple[str, ...]
    jsonld_authors: tuple[str, ...]
    jsonld_authors_are_organisations: bool
    meta_authors: tuple[str, ...]


def _visible_text(element: HtmlTree) -> str:
    """Text of an element with word boundaries kept at block tags and <br>; no script text."""
    parts: list[str] = []

    def add(text: str) -> None:
        # "Headline<span class="block">Subtitle</span>": styled onto two lines, glued in the
        # markup; a lower-case letter followed by a capital across a tag boundary is a break
        if parts and parts[-1][-1:].islower() and text[:1].isupper():
            parts.append(" ")
        parts.append(text)

    def walk(node: HtmlTree, top: bool) -> None:
        tag = node.tag if isinstance(node.tag, str) else None
        if tag is not None and tag.lower() not in _INVISIBLE_TAGS:
            breaking = tag.lower() in _BREAKING_TAGS
            if breaking:
                parts.append(" ")
            if node.text:
                add(node.text)
            for child in node:
                walk(child, False)
            if breaking:
                parts.append(" ")
        if node.tail and not top:
            add(node.tail)

    walk(element, True)
    return _normalise_line("".join(parts))


def _meta_text(value: object) -> str | None:
    """A metadata string as shown: entities decoded (JSON-LD often double-escapes), NFC,
    whitespace normalised."""
    if not isinstance(value, str):
        return None
    text = value
    for _ in range(2):
        if "&" not in text:
            break
        text = html.unescape(text)
    return _clean_field(text)


def _heading(element: HtmlTree) -> _Heading | None:
    text = _meta_text(_visible_text(element))
    if not text:
        return None
    in_article = in_header = in_chrome = False
    parent = element.getparent()
    while parent is not None:
        tag = parent.tag.lower() if isinstance(parent.tag, str) else ""
        role = (parent.get("role") or "").strip().lower()
        if tag in _ARTICLE_TAGS or role in _ARTICLE_ROLES:
            in_article = True
        elif tag == "header" or role == "banner":
            in_header = in_header or not in_article
        elif tag in _CHROME_TAGS or role in _CHROME_ROLES:
            in_chrome = True
        parent = parent.getparent()
    parts: list[str] = []
    for node in itertools.islice(element.iter(), _MAX_HEADING_PARTS):
        if not isinstance(node.tag, str):
            continue
        own = _meta_text((node.text or "") + "".join(child.tail or "" for child in node))
        if own:
            parts.append(own)
        if node is not element:
            inner = _meta_text(_visible_text(node))
            if inner:
                parts.append(inner)
    return _Heading(text, in_article, in_chrome, in_header and not in_article, tuple(parts))


def _jsonld_types(data: Mapping[str, Any]) -> frozenset[str]:
    value = data.get("@type")
    values = value if isinstance(value, list) else [value]
    return frozenset(v.strip().lower() for v in values if isinstance(v, str))


def _jsonld_objects(tree: HtmlTree) -> list[_JsonLdObject]:
    """Every JSON-LD object of the page, top level and @graph members, in document order."""
    objects: list[_JsonLdObject] = []
    for script in tree.iterfind(".//script[@type]"):
        if (script.get("type") or "").strip().lower() != "application/ld+json" or not script.text:
            continue
        try:
            data = json.loads(script.text, strict=False)
        except (ValueError, RecursionError):  # broken JSON-LD is common
            continue
        pending: list[Any] = [data]
        while pending and len(objects) < 200:
            item = pending.pop(0)
            if isinstance(item, list):
                pending[:0] = item
            elif isinstance(item, dict):
                objects.append(_JsonLdObject(_jsonld_types(item), item))
                graph = item.get("@graph")
                if isinstance(graph, (list, dict)):
                    pending[:0] = graph if isinstance(graph, list) else [graph]
    return objects


def _is_reference(value: str) -> bool:
    """A profile URL or a numeric id where a name should be."""
    return value.lower().startswith(("http://", "https://")) or value.isdigit()


def _jsonld_person_names(
    value: object, by_id: Mapping[str, Mapping[str, Any]]
) -> tuple[list[str], bool]:
    """Names in a JSON-LD "author" value (persons, organisations or plain strings) and
    whether all of them are organisations."""
    names: list[str] = []
    organisations = True
    for entry in value if isinstance(value, list) else [value]:
        if isinstance(entry, str):
            node: Mapping[str, Any] = {"name": entry}
        elif isinstance(entry, dict):
            node = entry
            ref = entry.get("@id")
            if "name" not in entry and isinstance(ref, str) and ref in by_id:
                node = by_id[ref]
        else:
            continue
        name = node.get("name")
        if isinstance(name, list):
            name = ", ".join(str(part) for part in name if isinstance(part, str))
        cleaned = _meta_text(name)
        if not cleaned or _is_reference(cleaned):
            continue
        names.append(cleaned)
        organisations = organisations and bool(_jsonld_types(node) & _JSONLD_SITE_TYPES)
    return names, organisations and bool(names)


def _page_meta(tree: HtmlTree) -> _PageMeta:
    headings = tuple(h for h in (_heading(el) for el in tree.iter("h1")) if h is not None)
    title_element = tree.find(".//head//title")  # not an inline SVG's <title>
    html_title = _meta_text(title_element.text_content()) if title_element is not None else None
    og_title = twitter_title = None
    site_names: list[str] = []
    meta_authors: dict[str, list[str]] = {}
    for meta in tree.iterfind(".//meta[@content]"):
        key = (meta.get("property") or meta.get("name") or "").strip().lower()
        value = _meta_text(meta.get("content"))
        if not value:
            continue
        if key == "og:title":
            og_title = og_title or value
        elif key == "twitter:title":
            twitter_title = twitter_title or value
        elif key in _SITE_NAME_METAS and not _is_reference(value):
            site_names.append(value.lstrip("@"))
        elif key in _AUTHOR_METAS and not _is_reference(value):
            meta_authors.setdefault(key, []).append(value)

    objects = _jsonld_objects(tree)
    by_id = {obj.data["@id"]: obj.data for obj in objects if isinstance(obj.data.get("@id"), str)}
    headline = None
    authors: list[str] = []
    organisations = False
    author_seen = False
    for obj in objects:
        is_article = bool(obj.types & _JSONLD_ARTICLE_TYPES)
        if is_article and headline is None:
            headline = _meta_text(obj.data.get("headline"))
        if is_article and not author_seen and "author" in obj.data:
            # the first article object that names an author is the page's article
            author_seen = True
            authors, organisations = _jsonld_person_names(obj.data["author"], by_id)
        publisher = obj.data.get("publisher")
        if isinstance(publisher, dict):
            site_names.extend(n for n in [_meta_text(publisher.get("name"))] if n)
        if obj.types & _JSONLD_SITE_TYPES:
            site_names.extend(n for n in [_meta_text(obj.data.get("name"))] if n)
    first_meta_authors = next(
        (meta_authors[key][0] for key in _AUTHOR_METAS if meta_authors.get(key)), None
    )
    return _PageMeta(
        headings=headings,
        og_title=og_title,
        twitter_title=twitter_title,
        html_title=html_title,
        jsonld_headline=headline,
        site_names=tuple(dict.fromkeys(site_names)),
        jsonld_authors=tuple(dict.fromkeys(authors)),
        jsonld_authors_are_organisations=organisations,
        meta_authors=_split_names(first_meta_authors),
    )


# --------------------------------------------------------------------------------------------
# title
# --------------------------------------------------------------------------------------------

# Between a headline and a site name: " | ", " - ", " -- ", en/em dash, middle dot, bullet,
# guillemets (U+00BB, U+203A), " / ", " ~ ", " :: " (spaces around it).
_TITLE_SEP: Final = r"(?:[|\u2013\u2014\u00b7\u2022\u00bb\u203a/~]|-{1,2}|::)"
_TITLE_SEP_RE: Final = re.compile(rf"\s+{_TITLE_SEP}\s+")
# "Site Name: Headline" -- only stripped when "Site Name" is exactly a known site name
_TITLE_COLON_RE: Final = re.compile(r":\s+")
_SITE_BEFORE_SEP_RE: Final = re.compile(rf"^(.+?)\s*(?:{_TITLE_SEP}|:)\s*$")
_SITE_AFTER_SEP_RE: Final = re.compile(rf"^\s*(?:{_TITLE_SEP}|:)\s+(.+)$")
# a host label ("motleyfool" of www.motleyfool.com) matches a title part that contains it
# or is contained in it, if the two differ by at most this many letters ("Bridgestone Tires"
# on tires.bridgestone.com, "mattressnap.com")
_HOST_MATCH_SLACK: Final = 8
_GENERIC_HOST_LABELS: Final = frozenset(
    {"www", "m", "amp", "co", "com", "org", "net", "gov", "ac", "edu", "blog", "blogs", "news"}
)
# Dice overlap of content words (4+ letters) an <h1> needs with a metadata title to count as
# the page's headline when several candidates or none match exactly
_H1_AGREEMENT: Final = 0.3
_QUOTES: Final = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})


def _comparable(line: str) -> str:
    """A form of a line for title comparison: case-folded words only."""
    return " ".join(re.findall(r"\w+", line.translate(_QUOTES).casefold()))


def _squashed(text: str) -> str:
    return _comparable(text).replace(" ", "")


def _content_words(text: str) -> set[str]:
    words = _comparable(text).split()
    return {word for word in words if len(word) >= 4} or set(words)


def _agreement(first: str, second: str) -> float:
    a, b = _content_words(first), _content_words(second)
    return 2 * len(a & b) / (len(a) + len(b)) if a and b else 0.0


@dataclass(frozen=True)
class _SiteNames:
    """What a site calls itself: exact names (squashed) and the labels of its host name."""

    names: frozenset[str]
    host_labels: tuple[str, ...]

    def match(self, part: str, *, fuzzy: bool = True) -> bool:
        squashed = _squashed(part)
        if not squashed:
            return False
        if squashed in self.names:
            return True
        if not fuzzy:
            return False
        for label in self.host_labels:
            if squashed == label:
                return True
            if (
                len(label) >= 4
                and len(squashed) >= 4
                and (label in squashed or squashed in label)
                and abs(len(squashed) - len(label)) <= _HOST_MATCH_SLACK
            ):
                return True
        return False

    def strip(self, title: str | None) -> str | None:
        """The title without site names before or after a separator ("Headline | Site",
        "Site - Headline", "Site: Headline", "Headline - Section | Site" when both are known)."""
        if not title:
            return title
        for _ in range(4):
            separators = list(_TITLE_SEP_RE.finditer(title))
            stripped = None
            for match in separators:  # earliest separator whose tail is a site name
                head = title[: match.start()].strip()
                if head and self.match(title[match.end() :]):
                    stripped = head
                    break
            if stripped is None:
                prefixes = [(m, True) for m in separators]
                prefixes += [(m, False) for m in _TITLE_COLON_RE.finditer(title)]
                for match, fuzzy in sorted(prefixes, key=lambda item: -item[0].start()):
                    tail = title[match.end() :].strip()
                    if tail and self.match(title[: match.start()], fuzzy=fuzzy):
                        stripped = tail
                        break
            if stripped is None:
                break
            title = stripped
        return title


def _meta_titles(meta: _PageMeta) -> list[str]:
    return [
        t for t in (meta.og_title, meta.twitter_title, meta.jsonld_headline, meta.html_title) if t
    ]


def _site_names(meta: _PageMeta, host: str | None) -> _SiteNames:
    """The site's names: og:site_name and the like, JSON-LD publisher/WebSite/Organization,
    what <title> adds to og:title, the host name, and <h1>s that are the site's logo.

    trafilatura's own site name is not used: without metadata it takes a part of <title>,
    which may well be the headline.
    """
    names: set[str] = set()
    for name in meta.site_names:
        names.add(_squashed(name))
        names.update(_squashed(part) for part in _TITLE_SEP_RE.split(name))
    # "Headline | Site" in <title> next to og:title "Headline": what the title adds is the site
    short_titles = [t for t in (meta.og_title, meta.twitter_title, meta.jsonld_headline) if t]
    for full in (meta.html_title, meta.og_title):
        for short in short_titles:
            if not full or short == full:
                continue
            if full.startswith(short):
                added = _SITE_AFTER_SEP_RE.match(full[len(short) :])
                if added:
                    names.add(_squashed(added.group(1)))
            if full.endswith(short):
                added = _SITE_BEFORE_SEP_RE.match(full[: -len(short)])
                if added:
                    names.add(_squashed(added.group(1)))
    labels: list[str] = []
    if host:
        bare = host.lower().removeprefix("www.")
        names.add(_squashed(bare))
        for label in bare.split(".")[:-1]:
            label = re.sub(r"[^a-z0-9]", "", label)
            if len(label) >= 3 and label not in _GENERIC_HOST_LABELS:
                labels.append(label)
    names.discard("")
    known = _SiteNames(frozenset(names), tuple(labels))
    # An <h1> in nav/aside/footer is the site's logo or a widget title. One in the page header
    # is the logo when it is the last part of a metadata title ("Headline | Site") or does not
    # agree with any (compared without the site names known so far: "Headline | Site" agrees
    # with "Site" otherwise); else it is the headline.
    titles = [t for t in (known.strip(x) for x in _meta_titles(meta)) if t]
    last_parts = {
        _comparable(_TITLE_SEP_RE.split(t)[-1]) for t in titles if _TITLE_SEP_RE.search(t)
    }
    for heading in meta.headings:
        if heading.in_chrome or (
            heading.in_page_header
            and (
                _comparable(heading.text) in last_parts
                or not any(_agreement(heading.text, t) >= _H1_AGREEMENT for t in titles)
            )
        ):
            names.add(_squashed(heading.text))
    names.discard("")
    return _SiteNames(frozenset(names), known.host_labels)


def _page_heading(meta: _PageMeta, site: _SiteNames, meta_titles: list[str]) -> _Heading | None:
    """The <h1> that is the article's headline: not the site's name, not in the page chrome,
    and matching a metadata title exactly or agreeing with one best; with no metadata title,
    the first <h1> of the article (or the page's only one)."""
    candidates = [
        h for h in meta.headings if not h.in_chrome and not site.match(h.text, fuzzy=False)
    ]
    if not candidates:
        return None
    if meta_titles:
        stripped = {_comparable(site.strip(t) or "") for t in meta_titles}
        for heading in candidates:
            if _comparable(heading.text) in stripped:
                return heading
        score, best = max(
            ((max(_agreement(h.text, t) for t in meta_titles), h) for h in candidates),
            key=lambda item: item[0],
        )
        return best if score >= _H1_AGREEMENT else None
    in_article = [h for h in candidates if h.in_article]
    if in_article:
        return in_article[0]
    return candidates[0] if len(candidates) == 1 else None


def _choose_title(meta: _PageMeta, site: _SiteNames, fallback: str | None) -> str | None:
    """The headline a reader sees.

    1. The page's <h1> (see :func:`_page_heading`) without a site name around it -- except
       when the <h1> wraps the headline in more markup (a date, "Blog:", a comment counter)
       and a metadata title is exactly that headline, or when the <h1> is in capitals and a
       metadata title has the same words in normal case: then that metadata title.
    2. Without such an <h1>: og:title, JSON-LD headline, <title>, twitter:title, then
       trafilatura's title (``fallback``), each without the site name.
    """
    raw = (meta.og_title, meta.jsonld_headline, meta.html_title, meta.twitter_title)
    stripped = [title for title in (site.strip(t) for t in raw) if title]
    heading = _page_heading(meta, site, [t for t in raw if t])
    if heading is not None:
        headline = site.strip(heading.text) or heading.text
        key = _comparable(headline)
        parts = {_comparable(part) for part in heading.parts}
        for title in stripped:
            if _comparable(title) != key and _comparable(title) in parts:
                return title
        if headline.isupper():
            for title in stripped:
                if _comparable(title) == key and not title.isupper():
                    return title
        return headline
    if stripped:
        return stripped[0]
    return site.strip(fallback)


# --------------------------------------------------------------------------------------------
# authors
# --------------------------------------------------------------------------------------------

_MONTH: Final = (
    r"(?:January|February|March|April|June|July|August|September|October|November|December"
    r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec)"
)
# "By", "Author", "Written by", "Article by", "Recipe by", "This post was written by" ...
_BYLINE_PREFIX_RE: Final = re.compile(
    r"^(?:(?:this\s+)?(?:post|article|story|recipe|review|words|photos?)\s+)?"
    r"(?:(?:was\s+)?(?:written|posted|published|reviewed)\s+)?"
    r"(?:by|author|authors|written\s+by|posted\s+by)\s*[:\-]?\s+",
    re.I,
)
# what a scraped byline drags along after the name: "• March 3", "Last updated ...",
# "December 8, 2025", "on Dec 9", digits
_BYLINE_SUFFIX_RE: Final = re.compile(
    rf"\s*(?:[\u2022|\u00b7]|\b(?:[Ll]ast\s+)?[Uu]pdated\b|\b[Pp]ublished\b|\b[Oo]n\s+{_MONTH}\b"
    rf"|\b{_MONTH}\b\.?(?:\s+\d.*)?$|\bMay\s+\d|\d).*$"
)


def _split_names(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    names = (_normalise_line(name) for name in value.split(";"))
    return tuple(dict.fromkeys(name for name in names if name))


def _clean_byline(name: str) -> str | None:
    cleaned = _BYLINE_SUFFIX_RE.sub("", _BYLINE_PREFIX_RE.sub("", name.strip()))
    return cleaned.strip(" ,;:-") or None


def _choose_authors(meta: _PageMeta, scraped: object) -> tuple[str, ...]:
    """The article's authors: JSON-LD's (of the article object), then the author meta tags,
    then what trafilatura found (often a byline scraped from the page, cleaned up here).
    An organisation as JSON-LD author is often the publisher filling a required field: a
    person's byline on the page is preferred to it."""
    bylines: tuple[str, ...] = ()
    if isinstance(scraped, str):
        names = (_clean_byline(name) for name in _split_names(scraped))
        bylines = tuple(dict.fromkeys(name for name in names if name))
    if meta.jsonld_authors:
        if meta.jsonld_authors_are_organisations and bylines:
            return bylines
        return meta.jsonld_authors
    return meta.meta_authors or bylines


# --------------------------------------------------------------------------------------------
# articles split across containers
# --------------------------------------------------------------------------------------------

# trafilatura sometimes keeps only one of the containers an article is split into (a lead
# block and the rest, text interrupted by a full-width figure or a newsletter box). A second
# extraction is taken instead when it has more than _MORE_TEXT times the words and what it
# adds is article text: at least _SENTENCE_SHARE of the added words are in paragraphs of
# _SENTENCE_WORDS+ words ending like a sentence (menus, teasers and link lists do not).
# Readability (trafilatura's fork) is tried first, then trafilatura in recall mode. To keep the
# cost down, nothing is tried unless the page's text runs of more than _LONG_TEXT_CHARS
# characters hold more than _MISSING_TEXT times the text extracted, and recall mode (a full
# second extraction) only when the page's <p> elements hold _MISSING_PARAGRAPHS times the
# words extracted.
# Measured on both sets (docs/extraction.md).
_MORE_TEXT: Final = 1.5
_SENTENCE_SHARE: Final = 0.6
_SENTENCE_WORDS: Final = 10
_MISSING_TEXT: Final = 1.5
_LONG_TEXT_CHARS: Final = 40
_MISSING_PARAGRAPHS: Final = 2.0
_SENTENCE_END: Final = frozenset('.!?"\u201d:')
_BLOCK_TAGS: Final = frozenset(
    {"p", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "td", "th", "dd", "dt"}
    | {"figcaption"}
)
_WORD_RE: Final = re.compile(r"\w+")


def _word_count(text: str) -> int:
    return len(_WORD_RE.findall(text))


def _adds_article_text(text: str, other: str) -> bool:
    """Whether ``other`` is much longer than ``text`` and its extra paragraphs read like
    article text."""
    if _word_count(other) <= _MORE_TEXT * _word_count(text):
        return False
    have = set(text.split("\n\n"))
    extra = [p for p in other.split("\n\n") if p and p not in have]
    counts = [len(p.split()) for p in extra]
    sentences = sum(
        n
        for p, n in zip(extra, counts, strict=True)
        if n >= _SENTENCE_WORDS and p[-1] in _SENTENCE_END
    )
    return bool(extra) and sentences >= _SENTENCE_SHARE * sum(counts)


def _block_text(element: HtmlTree) -> str:
    """The innermost text blocks of an element, one per line."""
    lines = []
    for node in element.iter():
        if not isinstance(node.tag, str) or node.tag.lower() not in _BLOCK_TAGS:
            continue
        if any(
            isinstance(child.tag, str) and child.tag.lower() in _BLOCK_TAGS
            for child in node.iterdescendants()
        ):
            continue
        line = _visible_text(node)
        if line:
            lines.append(line)
    return "\n".join(lines)


def _paragraph_words(tree: HtmlTree) -> int:
    return sum(_word_count(p.text_content()) for p in tree.iter("p"))


def _letters(text: str) -> int:
    """Characters other than whitespace."""
    return len("".join(text.split()))


# text nodes of the page long enough to be sentences rather than menu items or labels
_LONG_TEXT_XPATH: Final = (
    f"//body//text()[string-length(.) > {_LONG_TEXT_CHARS}]"
    "[not(ancestor::script or ancestor::style or ancestor::noscript or ancestor::template)]"
)


def _page_sentence_letters(tree: HtmlTree) -> int:
    """Characters (whitespace left out) of the page's long text runs, found by lxml in C:
    cheap enough to decide whether a second extraction is worth trying."""
    return sum(_letters(str(text)) for text in tree.xpath(_LONG_TEXT_XPATH))


def _complete_text(tree: HtmlTree, url: str | None, text: str, titles: tuple[str, ...]) -> str:
    """``text``, or a second extraction's when it recovers a part of the article."""
    if _page_sentence_letters(tree) <= _MISSING_TEXT * _letters(text):
        return text
    words = _word_count(text)
    summary = try_readability(copy.copy(tree))
    readable = _clean_text(_block_text(summary), titles)
    if _adds_article_text(text, readable):
        log.debug("readability recovered more of the article: %s", url)
        return readable
    if _paragraph_words(tree) > _MISSING_PARAGRAPHS * words:
        document = trafilatura.bare_extraction(
            tree, url=url, with_metadata=False, **TRAFILATURA_RETRY_OPTIONS
        )
        recalled = _clean_text(str(getattr(document, "text", None) or ""), titles)
        if _adds_article_text(text, recalled):
            log.debug("recall mode recovered more of the article: %s", url)
            return recalled
    return text


# --------------------------------------------------------------------------------------------
# extraction
# --------------------------------------------------------------------------------------------


def _parse(html: str) -> HtmlTree | None:
    if not html.strip():
        return None
    tree: HtmlTree | None = trafilatura.load_html(html)
    return tree if tree is not None and hasattr(tree, "iter") else None


def _extract(
    html: str | bytes,
    url: str | None,
    content_type: str | None,
    options: Mapping[str, Any],
    retry_options: Mapping[str, Any] | None = None,
) -> ExtractedPage | None:
    text_in = decode_html(html, content_type) if isinstance(html, bytes) else html
    tree = _parse(text_in)
    if tree is None:
        log.info("no HTML document to extract from: %s", url)
        return None
    page = _extract_tree(tree, url, options)
    if page is None and retry_options is not None:
        log.debug("no text with the default settings, retrying in recall mode: %s", url)
        page = _extract_tree(tree, url, retry_options)
    if page is None:
        log.info("no article text extracted: %s", url)
    return page


def _extract_tree(
    tree: HtmlTree, url: str | None, options: Mapping[str, Any]
) -> ExtractedPage | None:
    document = trafilatura.bare_extraction(
        tree,
        url=url,
        with_metadata=True,
        date_extraction_params=_date_params(),
        **options,
    )
    if document is None:
        return None
    site_name = _clean_field(getattr(document, "sitename", None))
    host = _host(url) or _clean_field(getattr(document, "hostname", None))
    trafilatura_title = _clean_field(getattr(document, "title", None))
    scraped_authors = getattr(document, "author", None)
    # the rules below only refine what trafilatura found: a failure in them must not cost the
    # article, so it falls back to trafilatura's title and authors / the text as extracted
    try:
        meta = _page_meta(tree)
        site = _site_names(meta, host)
        title = _choose_title(meta, site, trafilatura_title)
        short_title = site.strip(trafilatura_title)
        authors = _choose_authors(meta, scraped_authors)
    except MemoryError:
        raise  # out of the worker's memory limit: not a rule failing (newsmon.isolate)
    except Exception:
        log.warning("title/author rules failed, keeping trafilatura's: %s", url, exc_info=True)
        title, short_title = trafilatura_title, None
        authors = _split_names(scraped_authors if isinstance(scraped_authors, str) else None)
    titles = tuple(dict.fromkeys(t for t in (title, trafilatura_title, short_title) if t))
    text = _clean_text(str(getattr(document, "text", None) or ""), titles)
    if not text:
        return None
    try:
        text = _complete_text(tree, url, text, titles)
    except MemoryError:
        raise
    except Exception:
        log.warning("split-article check failed, keeping the text: %s", url, exc_info=True)
    return ExtractedPage(
        title=title,
        text=text,
        authors=authors,
        published_at=_published_at(getattr(document, "date", None)),
        language=_language(tree),
        site_name=site_name,
        description=_clean_field(getattr(document, "description", None)),
        image=_absolute_http_url(_clean_field(getattr(document, "image", None)), url),
        page_canonical_url=_canonical_url(tree, url),
    )


def extract_page(
    html: str | bytes, url: str | None = None, *, content_type: str | None = None
) -> ExtractedPage | None:
    """Extract the article of one HTML page.

    ``html`` may be text or the raw bytes of the response (decoded with :func:`decode_html`,
    using ``content_type``, the HTTP header, when given). ``url`` is the page's address; it
    helps metadata extraction and makes relative URLs absolute. Returns ``None`` when no
    article text could be extracted; never raises on bad HTML.
    """
    try:
        return _extract(html, url, content_type, TRAFILATURA_OPTIONS, TRAFILATURA_RETRY_OPTIONS)
    except MemoryError:
        raise  # the caller's business: newsmon.isolate records it and replaces the worker
    except Exception:
        log.warning("extraction failed: %s", url, exc_info=True)
        return None
