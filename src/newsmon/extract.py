"""Article extraction: raw HTML in, clean article text and metadata out.

The heavy lifting (finding the main content, metadata, dates) is done by trafilatura and
htmldate; this module decodes bytes, picks the settings, and turns the result into the
:class:`ExtractedPage` the rest of newsmon works with:

* ``text`` is the article body as the user reads it: one paragraph per block, blocks separated
  by one blank line, whitespace normalised, no title line at the start (page templates often
  repeat the headline) and no ad-slot labels ("Advertisement", "Advertisement - Scroll to
  continue", ...). Nothing else is removed: a line that could be content stays.
* Metadata: title, authors, publication date (timezone-aware), language, site name,
  description, image and the canonical URL the page declares.

``extract_page`` never raises on bad input: it logs and returns ``None`` when no article text
can be extracted. It takes HTML as ``str`` or ``bytes``; compressed files (``.html.gz``) are
the caller's business.

Quality is measured by ``bench/extraction_quality.py`` (word-level bag-of-words F1 against two
ground-truth sets); the trafilatura settings below were chosen with it.
"""

from __future__ import annotations

import codecs
import logging
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

import trafilatura

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
# balanced pass drops, costs nothing on the others).
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


def _comparable(line: str) -> str:
    """A form of a line for title comparison: case-folded words only."""
    return " ".join(re.findall(r"\w+", line.casefold()))


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


_INVISIBLE_TAGS: Final = frozenset({"script", "style", "noscript", "template", "svg"})
_BREAKING_TAGS: Final = frozenset(
    {"br", "div", "p", "li", "ul", "ol", "section", "header", "footer", "h1", "h2", "h3", "h4"}
)
# " | ", " - ", en/em dash, middle dot, bullet, guillemet or " :: " between headline and site
_TITLE_SEP_RE: Final = re.compile(r"\s+(?:[|\u2013\u2014\u00b7\u2022\u00bb]|-{1,2}|::)\s+")
# share of the <h1>'s (content) words that must occur in the metadata title for it to be used
_H1_TITLE_OVERLAP: Final = 0.3


def _visible_text(element: HtmlTree) -> str:
    """Text of an element with word boundaries kept at block tags and <br>; no script text."""
    parts: list[str] = []

    def walk(node: HtmlTree, top: bool) -> None:
        tag = node.tag if isinstance(node.tag, str) else None
        if tag is not None and tag.lower() not in _INVISIBLE_TAGS:
            breaking = tag.lower() in _BREAKING_TAGS
            if breaking:
                parts.append(" ")
            if node.text:
                parts.append(node.text)
            for child in node:
                walk(child, False)
            if breaking:
                parts.append(" ")
        if node.tail and not top:
            parts.append(node.tail)

    walk(element, True)
    return _normalise_line("".join(parts))


def _single_h1(tree: HtmlTree) -> str | None:
    """The page's headline when it has exactly one non-empty <h1>."""
    texts = [text for text in (_visible_text(h1) for h1 in tree.iter("h1")) if text]
    return texts[0] if len(texts) == 1 else None


def _strip_site_suffix(title: str, site_name: str | None, host: str | None) -> str:
    """Drop a trailing " | Site Name" (or " - example.com") from a metadata title."""
    separators = list(_TITLE_SEP_RE.finditer(title))
    if not separators:
        return title
    last = separators[-1]
    suffix = _comparable(title[last.end() :]).replace(" ", "")
    names = {_comparable(site_name or "").replace(" ", "")}
    if host:
        bare_host = host.lower().removeprefix("www.")
        for name in (bare_host, bare_host.rsplit(".", 1)[0]):
            names.add(_comparable(name).replace(" ", ""))
    names.discard("")
    if suffix and suffix in names and title[: last.start()].strip():
        return title[: last.start()].strip()
    return title


def _choose_title(
    meta_title: str | None, h1: str | None, site_name: str | None, host: str | None
) -> str | None:
    """The headline a reader sees: the single <h1> if it agrees with the metadata title
    (og:title, JSON-LD headline, <title>), else the metadata title without a site-name suffix.
    """
    if h1 and not meta_title:
        return h1
    if not meta_title:
        return None
    if h1:
        words = _comparable(h1).split()
        # content words only: "the", "of", "and" shared by any two titles prove nothing
        h1_words = [word for word in words if len(word) >= 4] or words
        title_words = set(_comparable(meta_title).split())
        shared = sum(word in title_words for word in h1_words)
        if h1_words and shared / len(h1_words) >= _H1_TITLE_OVERLAP:
            return h1
    return _strip_site_suffix(meta_title, site_name, host)


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


def _authors(value: object) -> tuple[str, ...]:
    if not isinstance(value, str):
        return ()
    names = (_normalise_line(name) for name in value.split(";"))
    return tuple(dict.fromkeys(name for name in names if name))


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
    meta_title = _clean_field(getattr(document, "title", None))
    site_name = _clean_field(getattr(document, "sitename", None))
    host = _host(url) or _clean_field(getattr(document, "hostname", None))
    title = _choose_title(meta_title, _single_h1(tree), site_name, host)
    short_title = _strip_site_suffix(meta_title, site_name, host) if meta_title else None
    titles = tuple(t for t in (title, meta_title, short_title) if t)
    text = _clean_text(str(getattr(document, "text", None) or ""), titles)
    if not text:
        return None
    return ExtractedPage(
        title=title,
        text=text,
        authors=_authors(getattr(document, "author", None)),
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
    except Exception:
        log.warning("extraction failed: %s", url, exc_info=True)
        return None
