"""Decoding a page's bytes the way a browser would: byte-order mark, HTTP and in-document
charset declarations, UTF-8, then statistical detection limited to web encodings."""

from __future__ import annotations

import codecs
import logging
import re
from collections.abc import Mapping
from typing import Final

log = logging.getLogger(__name__)

__all__ = ["decode_html"]


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
