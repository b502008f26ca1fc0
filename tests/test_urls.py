"""canonical_url / url_id: one key per article, never one key for two articles."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from typing import Final
from urllib.parse import quote

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from newsmon.urls import InvalidURL, canonical_url, is_tracking_param, url_id

# --- examples ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # scheme and host case
        ("HTTP://Example.COM/a", "http://example.com/a"),
        ("hTTpS://WWW.Dawn.Com/News/1", "https://www.dawn.com/News/1"),
        # the path keeps its case
        ("https://example.com/Path/To/Page", "https://example.com/Path/To/Page"),
        # default ports dropped, others kept
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("https://example.com:80/a", "https://example.com:80/a"),
        ("http://example.com:443/a", "http://example.com:443/a"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        # empty path becomes "/"
        ("https://example.com", "https://example.com/"),
        ("https://example.com?id=1", "https://example.com/?id=1"),
        # fragments dropped
        ("https://example.com/a#comments", "https://example.com/a"),
        ("https://example.com/a?id=1#top", "https://example.com/a?id=1"),
        ("https://example.com/a#", "https://example.com/a"),
        # userinfo dropped, trailing dot of the host dropped
        ("https://user:secret@example.com/a", "https://example.com/a"),
        ("https://example.com./a", "https://example.com/a"),
        # IPv6 literals keep their brackets, lower-cased
        ("http://[2001:DB8::1]:8080/a", "http://[2001:db8::1]:8080/a"),
        ("http://[2001:db8::1]:80/a", "http://[2001:db8::1]/a"),
    ],
)
def test_scheme_host_port_fragment(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize(
    "param",
    [
        "utm_source=rss",
        "utm_medium=social",
        "utm_campaign=x",
        "utm_content=y",
        "utm_term=z",
        "UTM_Source=rss",
        "fbclid=IwAR0abc",
        "gclid=Cj0KC",
        "mc_cid=5e1",
        "mc_eid=9f2",
        "msclkid=1",
        "yclid=2",
        "igshid=3",
        "_ga=2.1",
        "mtm_campaign=a",
        "pk_kwd=b",
        "ocid=rss",
        "cmpid=x",
        "xtor=RSS-1",
        "at_medium=feed",
        "ns_source=a",
        "guccounter=1",
    ],
)
def test_tracking_parameters_dropped(param: str) -> None:
    assert canonical_url(f"https://example.com/story?{param}") == "https://example.com/story"
    assert (
        canonical_url(f"https://example.com/story?id=7&{param}&b=2")
        == "https://example.com/story?b=2&id=7"
    )


@pytest.mark.parametrize(
    "name", ["id", "p", "story_fbid", "idx", "article", "page", "articleid", "storyid", "q", "s"]
)
def test_article_id_parameters_kept(name: str) -> None:
    assert not is_tracking_param(name)
    one = canonical_url(f"https://example.com/read.php?{name}=1")
    two = canonical_url(f"https://example.com/read.php?{name}=2")
    assert one == f"https://example.com/read.php?{name}=1"
    assert two == f"https://example.com/read.php?{name}=2"
    assert url_id(one) != url_id(two)


def test_facebook_story_keeps_both_ids() -> None:
    url = "https://www.facebook.com/permalink.php?story_fbid=123&id=456&fbclid=zz"
    assert canonical_url(url) == "https://www.facebook.com/permalink.php?id=456&story_fbid=123"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # parameters sorted by name (then value)
        ("https://example.com/a?b=2&a=1", "https://example.com/a?a=1&b=2"),
        # repeated parameters all kept
        ("https://example.com/a?tag=x&tag=y&a=1", "https://example.com/a?a=1&tag=x&tag=y"),
        ("https://example.com/a?tag=y&tag=x", "https://example.com/a?tag=x&tag=y"),
        # blank parameters kept (and "?a" is the same as "?a=")
        ("https://example.com/a?a=&b=1", "https://example.com/a?a=&b=1"),
        ("https://example.com/a?a", "https://example.com/a?a="),
        # empty pairs and an empty query vanish
        ("https://example.com/a?&&b=1&", "https://example.com/a?b=1"),
        ("https://example.com/a?", "https://example.com/a"),
        ("https://example.com/a?utm_source=x", "https://example.com/a"),
        # "+" and %20 are the same space; an escaped "+" stays a plus
        ("https://example.com/s?q=a+b", "https://example.com/s?q=a%20b"),
        ("https://example.com/s?q=a%20b", "https://example.com/s?q=a%20b"),
        ("https://example.com/s?q=a%2Bb", "https://example.com/s?q=a%2Bb"),
        # escaped separators stay escaped
        ("https://example.com/s?q=a%26b%3Dc", "https://example.com/s?q=a%26b%3Dc"),
        # non-ASCII values are UTF-8 escaped, upper-case hex
        ("https://example.com/s?q=café", "https://example.com/s?q=caf%C3%A9"),
        ("https://example.com/s?q=caf%c3%a9", "https://example.com/s?q=caf%C3%A9"),
        # a non-UTF-8 byte keeps its identity
        ("https://example.com/s?q=caf%E9", "https://example.com/s?q=caf%E9"),
    ],
)
def test_query_normalisation(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # IDNA: Unicode hosts become their ASCII (punycode) form
        ("https://bücher.de/x", "https://xn--bcher-kva.de/x"),
        ("https://BÜCHER.de/x", "https://xn--bcher-kva.de/x"),
        ("https://xn--bcher-kva.de/x", "https://xn--bcher-kva.de/x"),
        ("https://пример.рф/", "https://xn--e1afmkfd.xn--p1ai/"),
        ("https://www.ڈان.pk/", "https://www.xn--mgb6dzj.pk/"),
    ],
)
def test_idna_hosts(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # escapes of unreserved characters decoded, other escapes upper-cased
        ("https://example.com/%7Euser/%41%62c", "https://example.com/~user/Abc"),
        ("https://example.com/%e2%82%ac", "https://example.com/%E2%82%AC"),
        ("https://example.com/caf%C3%A9", "https://example.com/caf%C3%A9"),
        # raw characters that must be escaped are escaped
        ("https://example.com/café", "https://example.com/caf%C3%A9"),
        ("https://example.com/a b", "https://example.com/a%20b"),
        ('https://example.com/a"b<c>', "https://example.com/a%22b%3Cc%3E"),
        # sub-delimiters are legal in paths and stay raw
        ("https://example.com/a;b=c,d+e", "https://example.com/a;b=c,d+e"),
        # an escaped reserved character is not the character: %2F is not a path separator
        ("https://example.com/a%2Fb", "https://example.com/a%2Fb"),
        ("https://example.com/a%2fb", "https://example.com/a%2Fb"),
        ("https://example.com/a%3Fb", "https://example.com/a%3Fb"),
        # "%25" is a literal percent sign and stays one, a bare "%" becomes "%25"
        ("https://example.com/100%25", "https://example.com/100%25"),
        ("https://example.com/%2541", "https://example.com/%2541"),
        ("https://example.com/100%", "https://example.com/100%25"),
        ("https://example.com/%zz", "https://example.com/%25zz"),
        # non-UTF-8 escapes keep their identity
        ("https://example.com/caf%E9", "https://example.com/caf%E9"),
    ],
)
def test_percent_encoding(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/a/./b/../c", "https://example.com/a/c"),
        ("https://example.com/a/b/../../c", "https://example.com/c"),
        ("https://example.com/../../a", "https://example.com/a"),
        ("https://example.com/a/%2E%2E/b", "https://example.com/b"),
        ("https://example.com/a/..", "https://example.com/"),
        # trailing slash kept, and kept apart from the slash-less form
        ("https://example.com/news/", "https://example.com/news/"),
        ("https://example.com/news", "https://example.com/news"),
        ("https://example.com/a/b/./", "https://example.com/a/b/"),
        ("https://example.com/a/b/../", "https://example.com/a/"),
        # dots inside names are not segments
        ("https://example.com/a..b/.c", "https://example.com/a..b/.c"),
    ],
)
def test_dot_segments_and_trailing_slash(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def test_trailing_slash_gives_a_different_id() -> None:
    a = url_id(canonical_url("https://example.com/news/"))
    b = url_id(canonical_url("https://example.com/news"))
    assert a != b


def test_surrounding_whitespace_ignored() -> None:
    assert canonical_url("  https://example.com/a \n") == "https://example.com/a"


@pytest.mark.parametrize(
    "url",
    [
        "",
        "   ",
        "not a url",
        "example.com/a",
        "/relative/path",
        "//example.com/a",
        "ftp://example.com/file",
        "FTP://example.com/file",
        "file:///etc/passwd",
        "mailto:editor@example.com",
        "javascript:alert(1)",
        "data:text/html,<b>x</b>",
        "ws://example.com/socket",
        "http://",
        "https://",
        "http:///a",
        "http://:80/a",
        "https://example.com:99999/",
        "https://example.com:port/",
        "https://[::1/",
        "https://[::g]/",
        "https://exa mple.com/",
        "https://<script>/",
        "https://a..b/",
    ],
)
def test_invalid_urls_raise(url: str) -> None:
    with pytest.raises(InvalidURL):
        canonical_url(url)


def test_invalid_url_is_a_value_error() -> None:
    assert issubclass(InvalidURL, ValueError)


def test_url_id_is_sha256_of_the_canonical_url() -> None:
    canonical = "https://example.com/a?id=1"
    assert url_id(canonical) == hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", url_id(canonical))
    assert url_id(canonical) == url_id("https://example.com/a?id=1")
    assert url_id(canonical) != url_id("https://example.com/a?id=2")
    assert url_id("https://example.com/é") != url_id("https://example.com/e")


def test_same_article_same_id() -> None:
    variants = [
        "https://www.dawn.com/news/1900000/some-title",
        "HTTPS://WWW.DAWN.COM:443/news/1900000/some-title#comments",
        "https://www.dawn.com/news/1900000/./some-title?utm_source=rss&utm_medium=feed",
        "https://www.dawn.com/news/1900000/x/../some-title?fbclid=abc",
    ]
    assert len({url_id(canonical_url(v)) for v in variants}) == 1


# --- properties ----------------------------------------------------------------------------------

LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
ASCII_HOST = st.lists(LABEL, min_size=1, max_size=3).map(".".join)
HOST = ASCII_HOST | st.sampled_from(
    ["bücher.de", "пример.рф", "例え.jp", "127.0.0.1", "[::1]", "[2001:db8::a]", "a_b.example"]
)
NO_SPACE: Final = ("Cs", "Cc", "Zs", "Zl", "Zp")  # raw whitespace at the ends of a URL is stripped
PATH_CHARS = st.characters(codec="utf-8", exclude_characters="#?/", exclude_categories=NO_SPACE)
HEX = st.sampled_from("0123456789abcdefABCDEF")
ESCAPE = st.tuples(HEX, HEX).map(lambda t: "%" + "".join(t))  # any %XY, valid UTF-8 or not
# hand-picked pieces that defeat naive normalisers (double decoding, bare %, encoded slash)
TRICKY = ["%2541", "%%34%31", "%25", "41", "%2F", "%E9", "%c3%a9", "%", "%zz", ".", "..", "%2E"]
PATH_PIECE = st.text(PATH_CHARS, max_size=4) | ESCAPE | st.sampled_from(TRICKY)
SEGMENT = st.lists(PATH_PIECE, max_size=3).map("".join)
PATH = st.lists(SEGMENT, max_size=4).map(lambda s: "/" + "/".join(s))
KEY_CHARS = st.characters(codec="ascii", categories=["L", "N"], include_characters="_-.")
KEY = st.text(KEY_CHARS, min_size=1, max_size=8).filter(lambda k: not is_tracking_param(k))
VALUE_CHARS = st.characters(codec="utf-8", exclude_characters="#&=", exclude_categories=NO_SPACE)
VALUE = st.text(VALUE_CHARS, max_size=6) | st.sampled_from(
    ["%26", "%3D", "%2B", "+", "%20", "%E9", "%", "%zz", "", "a%2Fb", "%23"]
)
BYTES = [b"\xe9", b"\xe8", b"caf\xe9", b"\x80", b"\xff\xfe", "é", "+", " ", "%"]
TRACKING = st.sampled_from(
    ["utm_source", "utm_medium", "UTM_Campaign", "fbclid", "gclid", "mc_cid", "mc_eid", "_ga"]
)


@dataclass(frozen=True)
class Parts:
    scheme: str
    host: str
    port: int | None
    path: str
    query: tuple[tuple[str, str], ...]
    fragment: str | None = None

    def url(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        text = f"{self.scheme}://{self.host}{port}{self.path}"
        if self.query:
            text += "?" + "&".join(f"{k}={v}" for k, v in self.query)
        if self.fragment is not None:
            text += "#" + self.fragment
        return text


@st.composite
def url_parts(draw: st.DrawFn, host: st.SearchStrategy[str] = HOST) -> Parts:
    return Parts(
        scheme=draw(st.sampled_from(["http", "https"])),
        host=draw(host),
        port=draw(st.none() | st.integers(1, 65535)),
        path=draw(PATH),
        query=tuple(draw(st.lists(st.tuples(KEY, VALUE), max_size=4))),
    )


@settings(max_examples=300, deadline=None)
@given(url_parts())
def test_canonical_url_is_idempotent(parts: Parts) -> None:
    once = canonical_url(parts.url())
    assert canonical_url(once) == once


@settings(max_examples=200, deadline=None)
@given(url_parts(), st.lists(st.tuples(TRACKING, VALUE), min_size=1, max_size=3), st.data())
def test_tracking_parameters_never_change_the_key(
    parts: Parts, tracking: list[tuple[str, str]], data: st.DataObject
) -> None:
    query = list(parts.query)
    for item in tracking:
        query.insert(data.draw(st.integers(0, len(query))), item)
    tracked = replace(parts, query=tuple(query))
    assert canonical_url(tracked.url()) == canonical_url(parts.url())


@settings(max_examples=300, deadline=None)
@given(url_parts(host=ASCII_HOST), st.text(max_size=10), st.booleans())
def test_case_fragment_and_default_port_never_change_the_key(
    parts: Parts, fragment: str, explicit_port: bool
) -> None:
    port = {"http": 80, "https": 443}[parts.scheme] if explicit_port else None
    plain = replace(parts, port=None)
    noisy = replace(
        plain, scheme=parts.scheme.upper(), host=parts.host.upper(), port=port, fragment=fragment
    )
    assert canonical_url(noisy.url()) == canonical_url(plain.url())


@settings(max_examples=300, deadline=None)
@given(
    url_parts(),
    KEY,
    st.binary(max_size=6) | st.text(max_size=6) | st.sampled_from(BYTES),
    st.binary(max_size=6) | st.text(max_size=6) | st.sampled_from(BYTES),
)
def test_changing_a_parameter_value_changes_the_key(
    parts: Parts, key: str, one: bytes | str, two: bytes | str
) -> None:
    first, second = quote(one, safe=""), quote(two, safe="")
    assume(first != second)
    a = replace(parts, query=(*parts.query, (key, first)))
    b = replace(parts, query=(*parts.query, (key, second)))
    assert canonical_url(a.url()) != canonical_url(b.url())
    assert url_id(canonical_url(a.url())) != url_id(canonical_url(b.url()))


@settings(max_examples=200, deadline=None)
@given(url_parts(), url_parts())
def test_different_canonical_urls_have_different_ids(a: Parts, b: Parts) -> None:
    ca, cb = canonical_url(a.url()), canonical_url(b.url())
    assert (ca == cb) == (url_id(ca) == url_id(cb))
