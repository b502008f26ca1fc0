"""URL identity: one canonical form per article URL, and the document id derived from it.

The rules are conservative on purpose: merging two different articles is worse than missing a
duplicate, so only parts that never identify an article are dropped (see docs/urls.md).
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import posixpath
import re
import string
import unicodedata
from urllib.parse import SplitResult, parse_qsl, quote, urlencode, urlsplit, urlunsplit

# tld (a dependency of trafilatura's courlan) ships the Public Suffix List and reads it from its
# own package directory: no network access as long as that file is installed.
import idna
from tld import get_tld
from tld.exceptions import TldDomainNotFound

__all__ = ["InvalidURL", "canonical_url", "domain", "is_tracking_param", "same_site", "url_id"]

DEFAULT_PORTS = {"http": 80, "https": 443}

# Parameters added by analytics, ad and social platforms. Prefix rules cover families.
TRACKING_PREFIXES = ("utm_", "mtm_", "pk_", "hsa_", "_hs", "vero_", "oly_", "__s")
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "gclsrc",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "ttclid",
        "li_fat_id",
        "igshid",
        "igsh",
        "mc_cid",
        "mc_eid",
        "mkt_tok",
        "_ga",
        "_gl",
        "ncid",
        "ocid",
        "cmpid",
        "smid",
        "smtyp",
        "sr_share",
        "ito",
        "at_medium",
        "at_campaign",
        "at_custom1",
        "at_custom2",
        "at_custom3",
        "at_custom4",
        "ns_mchannel",
        "ns_source",
        "ns_campaign",
        "ns_linkname",
        "ns_fee",
        "rssfeed",
        "feedtype",
        "cid_source",
        "spm",
        "s_cid",
        "xtor",
        "wt_mc",
        "wt.mc_id",
        "intcmp",
        "ref_src",
        "ref_url",
        "guccounter",
        "guce_referrer",
        "guce_referrer_sig",
        "src_trk",
        # affiliate and click ids (courlan's and url-normalize's lists)
        "clickid",
        "aftr_source",
        "fb_ref",
        "fb_source",
        "this_affiliate",
        "srsltid",  # Google Merchant Center / Search result links
        # added by Google's AMP cache/viewer (https://www-example-com.cdn.ampproject.org/...)
        "usqp",
        "amp_js_v",
        "amp_gsa",
    }
)

# ``ref`` names a source on many sites (?ref=rss, ?ref=homepage) but an article or a code on
# others (?ref=12345): dropped only with a value that names where the click came from.
REF_PARAMS = frozenset({"ref", "referrer", "referer"})
REF_SOURCES = frozenset(
    {
        "rss",
        "feed",
        "feeds",
        "atom",
        "home",
        "homepage",
        "hp",
        "frontpage",
        "front",
        "nav",
        "menu",
        "header",
        "footer",
        "sidebar",
        "newsletter",
        "email",
        "mail",
        "social",
        "share",
        "twitter",
        "x",
        "facebook",
        "fb",
        "linkedin",
        "reddit",
        "whatsapp",
        "telegram",
        "google",
        "search",
        "hn",
        "hackernews",
        "producthunt",
        "related",
        "recommended",
        "trending",
        "push",
        "app",
        "widget",
        "sitemap",
    }
)

# A leading label that only names a mobile/AMP/www variant of the same site. Dropped while what
# remains is a registrable domain: m.bbc.co.uk -> bbc.co.uk, but m.co and www.co.uk stay.
HOST_ALIASES = frozenset({"www", "m", "mobile", "amp"})

# Query parameters that only switch a page to its AMP rendering, with the values that do so
# (names and values compared case-insensitively). Other values (amp=0, amp=foo) are kept.
_AMP_ON = frozenset({"", "1", "true", "y", "yes"})
AMP_PARAMS: dict[str, frozenset[str]] = {
    "amp": _AMP_ON,  # WordPress AMP plugin, Drupal, tribune.com.pk, thehill.com (?amp)
    "_amp": _AMP_ON,  # latimes.com, washingtonexaminer.com
    "hs_amp": _AMP_ON,  # HubSpot
    "outputtype": frozenset({"amp"}),  # washingtonpost.com, Advance Local sites
    "amp-content": frozenset({"amp"}),  # spokesman.com
}

# Directory index files: /news/index.html is /news (compared case-insensitively, as IIS does).
INDEX_FILES = frozenset(
    {"index.html", "index.htm", "index.shtml", "index.php", "default.asp", "default.aspx"}
)

_UNRESERVED = "-._~"
_UNRESERVED_CHARS = frozenset(string.ascii_letters + string.digits + _UNRESERVED)
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_BARE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_HOST = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
# what an article's slug or id looks like (some-story, x-4656421.html, 2021): a final "amp"
# after such a segment is an AMP marker; after a plain word (/tags/amp, /r/amp) it is a name
_ARTICLE_SLUG = re.compile(r"[0-9._-]")
# characters that cannot end a URL: left over from the markup a link was cut out of (abc", abc<)
_TRAILING_JUNK = '"<>'
# C0 controls and space around a link, which browsers strip (WHATWG URL), and the tabs and
# newlines they remove anywhere in it
_SURROUNDING = "".join(map(chr, range(0x21))) + "".join(
    c for c in map(chr, range(0x80, 0x3001)) if c.isspace()
)  # str.strip() with these: linear, whatever the link holds
_TAB_OR_NEWLINE = re.compile(r"[\t\n\r]")
_TAG_START = re.compile(r"<(?=[A-Za-z/!])")  # markup after a link: <a, </a>, <br/>, <!--
_CDATA_START, _CDATA_END = "<![CDATA[", "]]>"
# a raw '"' then what follows an attribute value in markup: a tag end, space, another link
_QUOTE_THEN_MARKUP = re.compile(r'"(?=[>\s]|https?:)', re.IGNORECASE)
# "http:/x", "http:x", "http:\\x": fewer than two slashes, or backslashes, after the scheme,
# which browsers read as "http://x" ("http:///x", an empty host, is still refused)
_SCHEME_SLASHES = re.compile(r"^(https?):(?!//)([\\/]{0,2})(?=[^\\/])", re.IGNORECASE)
# a scheme written twice ("http://https://x": a template's prefix before a full link)
_DOUBLE_SCHEME = re.compile(r"^https?://(https?):?//(?=[^\\/])", re.IGNORECASE)
# & written as markup in a query copied from HTML (?a=1&amp;b=2, WordPress's &#038;)
_ESCAPED_AMPERSAND = re.compile(r"&(?:amp|#0*38|#x0*26);", re.IGNORECASE)
# Google's AMP cache: https://www-example-com.cdn.ampproject.org/c/s/www.example.com/a is the
# page https://www.example.com/a (/c/ content, /v/ viewer; /s/ marks an https origin)
_AMP_CACHE = re.compile(
    r"^https?://[^/?#]+\.cdn\.ampproject\.org/[cv]/(s/)?([^/?#]+)(.*)$", re.IGNORECASE | re.DOTALL
)
# RFC 2396's unreserved marks, escaped by some encoders (Python's quote) and not by others
# (JavaScript's encodeURIComponent): ab'c and ab%27c are one path
_PATH_MARKS = frozenset("!'()*")
# the AJAX crawling scheme's query form of a hash-bang: ?_escaped_fragment_=x is #!x
_ESCAPED_FRAGMENT = "_escaped_fragment_"
# a "#!" fragment is the path of a single-page site (https://example.com/#!/story/1001)
_HASH_BANG = "!"


class InvalidURL(ValueError):
    """The text is not an absolute http(s) URL."""


def is_tracking_param(name: str, value: str | None = None) -> bool:
    """Whether the parameter ``name`` (with ``value``, when known) only tracks the click."""
    lowered = name.lower()
    if lowered in REF_PARAMS:
        return value is not None and value.strip().lower() in REF_SOURCES
    return lowered in TRACKING_PARAMS or lowered.startswith(TRACKING_PREFIXES)


def _normalise_host(host: str) -> str:
    host = host.strip().rstrip(".").lower()
    if not host:
        raise InvalidURL("URL has no host")
    if ":" in host:  # an IPv6 literal (urlsplit has removed the brackets)
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError as exc:
            raise InvalidURL(f"host {host!r} is not a valid IPv6 address") from exc
        return host
    if not host.isascii():
        host = _idna(host)
    if not _HOST.fullmatch(host):
        raise InvalidURL(f"host {host!r} is not a valid domain name")
    return host


def _idna(host: str) -> str:
    """The ASCII form of an internationalised host name, by IDNA 2008 with the UTS #46 mapping
    that browsers use (non-transitional: ``faß.de`` is ``xn--fa-hia.de``, not ``fass.de``).
    A name IDNA 2008 refuses but IDNA 2003 takes (symbols, emoji) gets its IDNA 2003 form."""
    try:
        return idna.encode(host, uts46=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        pass
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidURL(f"host {host!r} is not a valid domain name") from exc


def _normalise_escape(match: re.Match[str]) -> str:
    char = chr(int(match.group(0)[1:], 16))
    return char if char in _UNRESERVED_CHARS else match.group(0).upper()


def _normalise_path_escape(match: re.Match[str]) -> str:
    char = chr(int(match.group(0)[1:], 16))
    return char if char in _UNRESERVED_CHARS or char in _PATH_MARKS else match.group(0).upper()


def _normalise_path(path: str) -> str:
    # Decode percent-escapes of unreserved characters only, upper-case the rest, and resolve
    # dot segments (normpath also drops the trailing slash: /news/story/ is /news/story).
    # Escaped reserved characters (%2F) and non-UTF-8 bytes (%E9) stay as they are: decoding
    # them would merge different paths. A bare '%' becomes %25 so a second pass cannot decode it.
    path = quote(path, safe="/:@!$&'()*+,;=" + _UNRESERVED + "%")
    path = _BARE_PERCENT.sub("%25", path)
    path = _PERCENT.sub(_normalise_path_escape, path)
    if not path:
        return "/"
    resolved = posixpath.normpath(path)
    if resolved.startswith("//"):
        resolved = "/" + resolved.lstrip("/")
    return _strip_path_variants(resolved)


def _strip_path_variants(path: str) -> str:
    """Drop what only selects a rendering of the same page: a trailing slash, a directory index
    file, and the AMP markers real sites put at the start or the end of the path.

    ``amp`` in the middle of a path (/news/amp/world-1, /campaign/amp/x) is left alone: there
    it may well be a section or a slug. Runs until nothing changes, so a second pass over the
    result is a no-op (canonical_url is idempotent).
    """
    segments = path.split("/")[1:]  # path is absolute and has no dot segments left
    while segments:
        last = segments[-1]
        if last == "" or last.lower() in INDEX_FILES:
            segments.pop()  # /a/index.html is /a ("" only from "/")
        elif last == "amp" and len(segments) > 1 and _ARTICLE_SLUG.search(segments[-2]):
            segments.pop()  # /2021/08/some-story/amp is the story; /tags/amp, /r/amp are not
        elif last.endswith(".amp.html") and last[: -len(".amp.html")] not in ("", ".", ".."):
            segments[-1] = last[: -len(".amp.html")] + ".html"  # nytimes.com: x.amp.html
        elif last.endswith(".amp") and last[: -len(".amp")] not in ("", ".", ".."):
            segments[-1] = last[: -len(".amp")]  # foxnews.com, phys.org: story.amp
        elif segments[0] in ("amp", ".amp") and len(segments) > 1:
            del segments[0]  # aljazeera.com, cnbc.com, space.com: /amp/news/...
        elif segments[:2] == ["platform", "amp"] and len(segments) > 2:
            del segments[:2]  # Vox Media (theverge.com, vox.com): /platform/amp/2019/...
        else:
            break
    return "/" + "/".join(segments)


def _unicode_label(label: str) -> str:
    if label.startswith("xn--"):
        try:
            return label[4:].encode("ascii").decode("punycode")
        except UnicodeError:
            return label
    return label


@functools.lru_cache(maxsize=4096)
def _suffix_labels(host: str) -> int | None:
    """How many labels of ``host`` form its public suffix (co.uk: 2), None when unsure.

    The Public Suffix List has its internationalised suffixes in Unicode, so the lookup is made
    on the Unicode form of the labels. A TLD the list does not know counts as a one-label
    suffix (the list's default rule "*"), as it does for browsers.
    """
    lookup = ".".join(_unicode_label(label) for label in host.split("."))
    try:
        suffix = get_tld(SplitResult("http", lookup, "/", "", ""))
    except TldDomainNotFound:
        return 1
    except ValueError:
        return None
    return suffix.count(".") + 1 if isinstance(suffix, str) else None


def _strip_host_aliases(host: str) -> str:
    """Drop leading www./m./mobile./amp. labels while what remains is a registrable domain:
    two labels at least and more than its public suffix (m.co, www.co.uk and www.github.io stay).
    IP addresses and hosts whose last label is a number are never touched."""
    labels = host.split(".")
    if ":" in host or labels[-1].isdigit():
        return host
    while len(labels) > 2 and labels[0] in HOST_ALIASES:
        rest = labels[1:]
        suffix = _suffix_labels(".".join(rest))
        if suffix is None or suffix >= len(rest):
            break
        labels = rest
    return ".".join(labels)


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text) if not text.isascii() else text


def _normalise_fragment(fragment: str) -> str:
    """A ``#!`` fragment (an AJAX-crawlable address) kept, percent-encoding normalised; every
    other fragment dropped."""
    if not fragment.startswith(_HASH_BANG):
        return ""
    text = quote(_nfc(fragment), safe="/?:@!$&'()*+,;=" + _UNRESERVED + "%")
    text = _BARE_PERCENT.sub("%25", text)
    return _PERCENT.sub(_normalise_escape, text)


def _is_amp_switch(name: str, value: str) -> bool:
    values = AMP_PARAMS.get(name.lower())
    return values is not None and value.lower() in values


def _repair(url: str) -> str:
    """The link as a browser would follow it, with what the markup or a feed's template left
    around it removed: surrounding controls and spaces, tabs and newlines, a CDATA wrapper,
    markup after it (from its first tag, or a ``"`` that closes an attribute), junk
    characters at its end, the slashes after its scheme (``http:/x``, ``http:\\\\x``,
    ``http://http://x``), backslashes in its path, ``&amp;`` in its query, and Google's AMP
    cache around it."""
    text = _TAB_OR_NEWLINE.sub("", url.strip(_SURROUNDING))
    if text.startswith(_CDATA_START):
        text = text[len(_CDATA_START) :].partition(_CDATA_END)[0].strip(_SURROUNDING)
    text = _TAG_START.split(text, maxsplit=1)[0]
    quote_end = _QUOTE_THEN_MARKUP.search(text)
    if quote_end:
        text = text[: quote_end.start()]
    head, hash_sign, fragment_text = text.rstrip(_TRAILING_JUNK).partition("#")
    text = head.rstrip(_TRAILING_JUNK).strip(_SURROUNDING) + hash_sign + fragment_text
    text = _SCHEME_SLASHES.sub(lambda m: m.group(1) + "://", text, count=1)
    text = _DOUBLE_SCHEME.sub(lambda m: m.group(1) + "://", text, count=1)
    location, mark, rest = _split_at_query(text)
    if mark == "?":
        rest = _ESCAPED_AMPERSAND.sub("&", rest)  # ?a=1&#038;b=2 is ?a=1&b=2, not a fragment
    text = location.replace("\\", "/") + mark + rest
    cached = _AMP_CACHE.match(text)
    if cached:
        text = ("https://" if cached.group(1) else "http://") + cached.group(2) + cached.group(3)
    return text


def _split_at_query(text: str) -> tuple[str, str, str]:
    """``text`` split before its first ``?`` or ``#``: (scheme, host and path; the mark; rest)."""
    match = re.search(r"[?#]", text)
    if match is None:
        return text, "", ""
    return text[: match.start()], match.group(0), text[match.start() + 1 :]


def _canonical_parts(url: str) -> tuple[str, str, str, str, str]:
    text = _repair(url)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"{url!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidURL(f"{url!r}: only http and https URLs are supported")
    host = _strip_host_aliases(_normalise_host(parts.hostname or ""))
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    netloc = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    params = [
        (k, v)
        # surrogateescape keeps non-UTF-8 bytes (?q=caf%E9) distinct instead of U+FFFD
        for k, v in (
            (_nfc(k), _nfc(v))
            for k, v in parse_qsl(parts.query, keep_blank_values=True, errors="surrogateescape")
        )
        if not is_tracking_param(k, v) and not _is_amp_switch(k, v)
    ]
    fragment_text = parts.fragment
    escaped = [v for k, v in params if k == _ESCAPED_FRAGMENT]
    if len(escaped) == 1 and not fragment_text.startswith(_HASH_BANG):
        # ?_escaped_fragment_=x is how a crawler asks for #!x (and "" for the page itself)
        params = [(k, v) for k, v in params if k != _ESCAPED_FRAGMENT]
        safe = "/?:@!$&'()*+,;=" + _UNRESERVED
        fragment_text = _HASH_BANG + quote(escaped[0], safe=safe, errors="surrogateescape")
        if fragment_text == _HASH_BANG:
            fragment_text = ""
    query = urlencode(sorted(params), doseq=True, quote_via=quote, errors="surrogateescape")
    fragment = _normalise_fragment(fragment_text)
    return scheme, netloc, _normalise_path(parts.path), query, fragment


def canonical_url(url: str) -> str:
    """Return the canonical form of an absolute http(s) URL.

    Lower-cases scheme and host (IDNA-encoded) and drops its www./m./mobile./amp. alias label,
    drops default ports, userinfo, fragments, tracking parameters and AMP switches, sorts the
    remaining query parameters (keeping repeated and blank ones), normalises percent-encoding
    and dot segments in the path and drops its trailing slash, index file and AMP markers.
    """
    return urlunsplit(_canonical_parts(url))


def same_site(a: str, b: str) -> bool:
    """Whether two URLs are on the same site: the same host once canonical (so www.x.com and
    m.x.com are the same site as x.com) and the same port. The scheme does not matter. A URL
    that is not an absolute http(s) URL is on no site: the answer is then False."""
    try:
        return _canonical_parts(a)[1] == _canonical_parts(b)[1]
    except InvalidURL:
        return False


def url_id(canonical: str) -> str:
    """The Elasticsearch ``_id`` of the article at ``canonical`` (a canonical URL)."""
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def domain(url_or_host: str) -> str:
    """The host of a URL (or a bare host name), lower-cased, without a leading ``www.``: the
    ``domain`` field of an article and the unit of per-site learning."""
    text = url_or_host.strip()
    host = urlsplit(text).hostname if "/" in text else text
    return (host or "").lower().removeprefix("www.")
