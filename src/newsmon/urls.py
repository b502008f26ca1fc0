"""URL identity: one canonical form per article URL, and the document id derived from it.

The rules are conservative on purpose: merging two different articles is worse than missing a
duplicate, so only parts that never identify an article are dropped (see docs/urls.md).
"""

from __future__ import annotations

import hashlib
import ipaddress
import posixpath
import re
import string
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

__all__ = ["InvalidURL", "canonical_url", "is_tracking_param", "url_id"]

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
    }
)

_UNRESERVED = "-._~"
_UNRESERVED_CHARS = frozenset(string.ascii_letters + string.digits + _UNRESERVED)
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_BARE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_HOST = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")


class InvalidURL(ValueError):
    """The text is not an absolute http(s) URL."""


def is_tracking_param(name: str) -> bool:
    lowered = name.lower()
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
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise InvalidURL(f"host {host!r} is not a valid domain name") from exc
    if not _HOST.fullmatch(host):
        raise InvalidURL(f"host {host!r} is not a valid domain name")
    return host


def _normalise_escape(match: re.Match[str]) -> str:
    char = chr(int(match.group(0)[1:], 16))
    return char if char in _UNRESERVED_CHARS else match.group(0).upper()


def _normalise_path(path: str) -> str:
    # Decode percent-escapes of unreserved characters only, upper-case the rest, and resolve
    # dot segments; a trailing slash is kept because some sites serve different pages for it.
    # Escaped reserved characters (%2F) and non-UTF-8 bytes (%E9) stay as they are: decoding
    # them would merge different paths. A bare '%' becomes %25 so a second pass cannot decode it.
    path = quote(path, safe="/:@!$&'()*+,;=" + _UNRESERVED + "%")
    path = _BARE_PERCENT.sub("%25", path)
    path = _PERCENT.sub(_normalise_escape, path)
    if not path:
        return "/"
    trailing = path.endswith("/")
    resolved = posixpath.normpath(path)
    if resolved.startswith("//"):
        resolved = "/" + resolved.lstrip("/")
    if trailing and resolved != "/":
        resolved += "/"
    return resolved


def canonical_url(url: str) -> str:
    """Return the canonical form of an absolute http(s) URL.

    Lower-cases scheme and host (IDNA-encoded), drops default ports, userinfo, fragments and
    tracking parameters, sorts the remaining query parameters (keeping repeated and blank ones)
    and normalises percent-encoding and dot segments in the path.
    """
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"{url!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidURL(f"{url!r}: only http and https URLs are supported")
    host = _normalise_host(parts.hostname or "")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    netloc = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    params = [
        (k, v)
        # surrogateescape keeps non-UTF-8 bytes (?q=caf%E9) distinct instead of U+FFFD
        for k, v in parse_qsl(parts.query, keep_blank_values=True, errors="surrogateescape")
        if not is_tracking_param(k)
    ]
    query = urlencode(sorted(params), doseq=True, quote_via=quote, errors="surrogateescape")
    return urlunsplit((scheme, netloc, _normalise_path(parts.path), query, ""))


def url_id(canonical: str) -> str:
    """The Elasticsearch ``_id`` of the article at ``canonical`` (a canonical URL)."""
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
