"""canonical_url / url_id: one key per article, never one key for two articles."""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass, replace
from typing import Final
from urllib.parse import quote

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from tld import is_tld

from newsmon.urls import (
    AMP_PARAMS,
    HOST_ALIASES,
    INDEX_FILES,
    InvalidURL,
    canonical_url,
    is_tracking_param,
    same_site,
    url_id,
)

# --- examples ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # scheme and host case
        ("HTTP://Example.COM/a", "http://example.com/a"),
        ("hTTpS://WWW.Dawn.Com/News/1", "https://dawn.com/News/1"),  # www. is an alias
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
    assert canonical_url(url) == "https://facebook.com/permalink.php?id=456&story_fbid=123"


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
        ("https://www.ڈان.pk/", "https://xn--mgb6dzj.pk/"),
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
        ('https://example.com/a"b<1>d', "https://example.com/a%22b%3C1%3Ed"),
        # ...but a tag is markup after the link, not part of it
        ('https://example.com/a"b<c>d', "https://example.com/a%22b"),
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
        # the trailing slash of a non-root path is dropped (it used to be kept)
        ("https://example.com/news/", "https://example.com/news"),
        ("https://example.com/news", "https://example.com/news"),
        ("https://example.com/a/b/./", "https://example.com/a/b"),
        ("https://example.com/a/b/../", "https://example.com/a"),
        ("https://example.com/a//", "https://example.com/a"),
        ("https://example.com/", "https://example.com/"),
        # dots inside names are not segments
        ("https://example.com/a..b/.c", "https://example.com/a..b/.c"),
    ],
)
def test_dot_segments_and_trailing_slash(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def test_trailing_slash_gives_the_same_id() -> None:
    a = url_id(canonical_url("https://example.com/news/story/"))
    b = url_id(canonical_url("https://example.com/news/story"))
    assert a == b


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


# --- host aliases, AMP, index files --------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.example.com/a", "https://example.com/a"),
        ("https://m.example.com/a", "https://example.com/a"),
        ("https://mobile.example.com/a", "https://example.com/a"),
        ("https://amp.theguardian.com/world/x", "https://theguardian.com/world/x"),
        ("https://WWW.Example.COM:443/a", "https://example.com/a"),
        ("http://www.example.com:8080/a", "http://example.com:8080/a"),
        # combinations, one label at a time while a registrable domain remains
        ("https://www.m.example.com/a", "https://example.com/a"),
        ("https://m.www.example.com/a", "https://example.com/a"),
        ("https://m.bbc.co.uk/news", "https://bbc.co.uk/news"),
        ("https://www.m.bbc.co.uk/news", "https://bbc.co.uk/news"),
        ("https://m.foo.blogspot.com/x", "https://foo.blogspot.com/x"),
        ("https://www.ڈان.pk/a", "https://xn--mgb6dzj.pk/a"),
        ("https://www.a.example/news", "https://a.example/news"),  # unknown TLD: one label
        # what remains would be a public suffix alone (or one label): kept as it is
        ("https://m.co/a", "https://m.co/a"),
        ("https://www.m.co/a", "https://m.co/a"),
        ("https://www.co.uk/a", "https://www.co.uk/a"),
        ("https://m.com.pk/a", "https://m.com.pk/a"),
        ("https://www.github.io/a", "https://www.github.io/a"),  # private suffixes count too
        ("https://m.blogspot.com/a", "https://m.blogspot.com/a"),
        ("https://www.ck/a", "https://www.ck/a"),  # *.ck, !www.ck: www.ck is the domain
        ("https://www.ศึกษา.ไทย/a", "https://www.xn--12c1fe0br.xn--o3cw4h/a"),  # IDN suffix
        ("https://www.localhost/a", "https://www.localhost/a"),
        ("https://amp.dev/a", "https://amp.dev/a"),
        ("https://www.amp.dev/a", "https://amp.dev/a"),
        # only a leading alias label, only these four
        ("https://news.www.example.com/a", "https://news.www.example.com/a"),
        ("https://www2.example.com/a", "https://www2.example.com/a"),
        ("https://edition.cnn.com/a", "https://edition.cnn.com/a"),
        ("https://mobil.example.com/a", "https://mobil.example.com/a"),
        # addresses are not names
        ("http://127.0.0.1:8765/a", "http://127.0.0.1:8765/a"),
        ("http://www.1.2.3/a", "http://www.1.2.3/a"),
        ("http://[::1]/a", "http://[::1]/a"),
    ],
)
def test_host_aliases(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize(
    ("amp", "plain"),
    [
        # rel=amphtml links of real pages in ../shared/data/news-pages and the page's own URL
        (
            "https://9to5mac.com/2019/11/18/techy-gift-guide/amp/",
            "https://9to5mac.com/2019/11/18/techy-gift-guide/",
        ),
        (
            "https://www.sciencealert.com/nasa-finds-water/amp",
            "https://www.sciencealert.com/nasa-finds-water",
        ),
        (
            "https://www.moneycontrol.com/news/x-4656421.html/amp",
            "https://www.moneycontrol.com/news/x-4656421.html",
        ),
        (
            "https://www.foxnews.com/entertainment/van-der-beek.amp",
            "https://www.foxnews.com/entertainment/van-der-beek",
        ),
        (
            "https://phys.org/news/2019-11-hibernating.amp",
            "https://phys.org/news/2019-11-hibernating",
        ),
        (
            "https://www.nytimes.com/2019/11/18/business/trade.amp.html",
            "https://www.nytimes.com/2019/11/18/business/trade.html",
        ),
        (
            "https://www.aljazeera.com/amp/news/2019/11/x-191120070028895.html",
            "https://www.aljazeera.com/news/2019/11/x-191120070028895.html",
        ),
        (
            "https://www.cnbc.com/amp/2019/11/19/coty.html",
            "https://www.cnbc.com/2019/11/19/coty.html",
        ),
        (
            "https://example.org/.amp/2019/11/opening-bell",
            "https://example.org/2019/11/opening-bell",
        ),
        (
            "https://www.theverge.com/platform/amp/2019/11/19/20973355/star-trek",
            "https://www.theverge.com/2019/11/19/20973355/star-trek",
        ),
        (
            "https://m.jpost.com/Breaking-News/Son-608399/amp",
            "https://www.jpost.com/Breaking-News/Son-608399",
        ),
        (
            "https://thehill.com/homenews/news/471033-meth?amp",
            "https://thehill.com/homenews/news/471033-meth",
        ),
        (
            "https://www.nj.com/2019/11/florida-man.html?outputType=amp",
            "https://www.nj.com/2019/11/florida-man.html",
        ),
        (
            "https://www.latimes.com/business/story/2019-11-19/gannett?_amp=true",
            "https://www.latimes.com/business/story/2019-11-19/gannett",
        ),
        (
            "https://www.nbcdfw.com/news/local/rescue-565107452.html?amp=y",
            "https://www.nbcdfw.com/news/local/rescue-565107452.html",
        ),
        (
            "http://www.spokesman.com/stories/2019/nov/19/meth/?amp-content=amp",
            "http://www.spokesman.com/stories/2019/nov/19/meth/",
        ),
        (
            "https://blog.comwrap.com/patientenakte?hs_amp=true",
            "https://blog.comwrap.com/patientenakte",
        ),
        (
            "https://tribune.com.pk/story/2378694/data?amp=1",
            "https://tribune.com.pk/story/2378694/data",
        ),
        (
            "https://tribune.com.pk/story/2378694/data?amp=TRUE",
            "https://tribune.com.pk/story/2378694/data",
        ),
        (
            "https://tribune.com.pk/story/2378694/data?amp_js_v=a6&amp_gsa=1&amp=1&usqp=mq331AQIUAKwASCAAgM%3D",
            "https://tribune.com.pk/story/2378694/data",
        ),
        # combinations
        ("https://amp.example.com/amp/news/story-1/amp/?amp=1", "https://example.com/news/story-1"),
        ("https://example.com/news/story-1/amp/index.html", "https://example.com/news/story-1"),
        ("https://example.com/amp/x/", "https://example.com/x"),
        ("https://example.com/%61mp/news/x", "https://example.com/news/x"),
    ],
)
def test_amp_variants_share_the_key(amp: str, plain: str) -> None:
    assert canonical_url(amp) == canonical_url(plain)


@pytest.mark.parametrize(
    "url",
    [
        # "amp" inside a path may be a section or a slug: left alone (BBC's /news/amp/<id> and
        # Sky's /story/amp/<slug> are not merged for that reason)
        "https://example.com/campaign/amp/stuff",
        "https://bbc.com/news/amp/world-europe-50473792",
        "https://example.com/news/amp-stories/x",
        "https://example.com/news/ampere",
        "https://example.com/amp-is-dead",
        "https://example.com/news/AMP",
        "https://example.com/news/x.AMP",
        "https://example.com/news/amp.html",
        "https://example.com/platform/x/amp-y",
        "https://example.com/x/platform/amp/y",
        "https://example.com/amp%2Fx",
        "https://example.com/news/x.amp%2F",
        # AMP switches only with a value that switches AMP on
        "https://example.com/x?amp=0",
        "https://example.com/x?amp=foo",
        "https://example.com/x?outputType=json",
        "https://example.com/x?ampere=1",
    ],
)
def test_amp_lookalikes_kept(url: str) -> None:
    assert canonical_url(url) == url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/news/index.html", "https://example.com/news"),
        ("https://example.com/news/index.htm", "https://example.com/news"),
        ("https://example.com/news/index.shtml", "https://example.com/news"),
        ("https://example.com/news/index.php", "https://example.com/news"),
        ("https://example.com/news/default.asp", "https://example.com/news"),
        ("https://example.com/news/Default.aspx", "https://example.com/news"),
        ("https://example.com/index.html", "https://example.com/"),
        ("https://example.com/index.php?p=123", "https://example.com/?p=123"),
        ("https://edition.cnn.com/2019/11/18/x/index.html", "https://edition.cnn.com/2019/11/18/x"),
        # only as the last segment, and only these names
        ("https://example.com/index.php/2019/x", "https://example.com/index.php/2019/x"),
        ("https://example.com/news/index.json", "https://example.com/news/index.json"),
        ("https://example.com/news/home.html", "https://example.com/news/home.html"),
        ("https://example.com/news/myindex.html", "https://example.com/news/myindex.html"),
    ],
)
def test_index_files_dropped(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize(
    "name",
    ["id", "p", "story_fbid", "idx", "article", "page", "storyid", "aid", "nid", "articleId"],
)
def test_article_id_parameters_survive_the_new_rules(name: str) -> None:
    noisy = f"https://www.example.com/amp/news/index.php?{name}=42&amp=1&utm_source=x"
    assert canonical_url(noisy) == f"https://example.com/news?{name}=42"
    other = noisy.replace("=42", "=43")
    assert canonical_url(other) != canonical_url(noisy)


def test_known_article_keys() -> None:
    variants = [
        "https://www.dawn.com/news/1900000/some-title",
        "https://m.dawn.com/news/1900000/some-title/",
        "https://amp.dawn.com/amp/news/1900000/some-title?amp=1#top",
        "HTTPS://WWW.DAWN.COM/news/1900000/some-title/amp/?utm_source=rss",
    ]
    assert {canonical_url(v) for v in variants} == {"https://dawn.com/news/1900000/some-title"}


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://www.dawn.com/news/1", "https://dawn.com/news/2"),
        ("https://m.dawn.com/news/1", "http://amp.dawn.com/x?y=1#z"),
        ("https://WWW.Dawn.com:443/", "https://dawn.com"),
        ("https://m.bbc.co.uk/news", "https://www.bbc.co.uk/sport"),
        ("http://[::1]:8080/a", "http://[::1]:8080/b"),
    ],
)
def test_same_site(a: str, b: str) -> None:
    assert same_site(a, b)
    assert same_site(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://dawn.com/news/1", "https://dawn.com.evil.example/news/1"),
        ("https://dawn.com/news/1", "https://evil-dawn.com/news/1"),
        ("https://edition.cnn.com/a", "https://www.cnn.com/a"),  # another host: not the same
        ("https://news.example.com/a", "https://example.com/a"),
        ("https://example.com/a", "https://example.com:8443/a"),
        ("https://example.co.uk/a", "https://example.com/a"),
        ("https://www.co.uk/a", "https://co.uk/a"),
        ("https://example.com/a", "/a"),
        ("https://example.com/a", "javascript:alert(1)"),
        ("https://example.com/a", ""),
        ("not a url", "not a url"),
    ],
)
def test_not_same_site(a: str, b: str) -> None:
    assert not same_site(a, b)
    assert not same_site(b, a)


# --- properties ----------------------------------------------------------------------------------

LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
ASCII_HOST = st.lists(LABEL, min_size=1, max_size=3).map(".".join)
HOST = ASCII_HOST | st.sampled_from(
    ["bücher.de", "пример.рф", "例え.jp", "127.0.0.1", "[::1]", "[2001:db8::a]", "a_b.example"]
)
NO_SPACE: Final = ("Cs", "Cc", "Zs", "Zl", "Zp")  # raw whitespace at the ends of a URL is stripped
# '<' (a tag), '"' (an attribute's end) and '\\' (a slash to browsers) end or split a link's
# path by design (test_url_pairs.py); other characters must keep every part of the URL
PATH_CHARS = st.characters(codec="utf-8", exclude_characters='#?/<"\\', exclude_categories=NO_SPACE)
HEX = st.sampled_from("0123456789abcdefABCDEF")
ESCAPE = st.tuples(HEX, HEX).map(lambda t: "%" + "".join(t))  # any %XY, valid UTF-8 or not
# hand-picked pieces that defeat naive normalisers (double decoding, bare %, encoded slash)
TRICKY = ["%2541", "%%34%31", "%25", "41", "%2F", "%E9", "%c3%a9", "%", "%zz", ".", "..", "%2E"]
PATH_PIECE = st.text(PATH_CHARS, max_size=4) | ESCAPE | st.sampled_from(TRICKY)
SEGMENT = st.lists(PATH_PIECE, max_size=3).map("".join)
PATH = st.lists(SEGMENT, max_size=4).map(lambda s: "/" + "/".join(s))
KEY_CHARS = st.characters(codec="ascii", categories=["L", "N"], include_characters="_-.")
# AMP switches (amp=1, outputType=amp) do not identify anything: not article parameters either
KEY = st.text(KEY_CHARS, min_size=1, max_size=8).filter(
    lambda k: not is_tracking_param(k) and k.lower() not in AMP_PARAMS
)
VALUE_CHARS = st.characters(
    codec="utf-8", exclude_characters='#&=<"', exclude_categories=NO_SPACE
)  # '<' and '"' (markup after a link) as in PATH_CHARS
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
@given(
    url_parts(host=ASCII_HOST),
    st.text(max_size=10).filter(lambda f: not f.startswith("!")),  # "#!" is kept: hash-bang
    st.booleans(),
)
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


# --- properties: variants of one article share its key, different articles never do -------------

SUFFIXES = ["com", "org", "de", "pk", "co.uk", "com.pk", "com.au", "xn--p1ai", "example", "news"]
ALNUM = string.ascii_lowercase + string.digits
NAME_LABEL = st.builds(
    str.__add__, st.text(ALNUM, min_size=1, max_size=6), st.sampled_from(["", "", "-news", "-24"])
)
SUB_LABEL = NAME_LABEL.filter(lambda label: label not in HOST_ALIASES)
ALIAS = st.sampled_from(sorted(HOST_ALIASES))
# "amp" and other marker look-alikes are article segments where they are not markers
LOOKALIKE = st.sampled_from(["amp", "AMP", "amp-stories", "amp.html", "platform", "index", "x.AMP"])
SEGMENT_TEXT = (
    st.text(string.ascii_letters + string.digits + "_~-", min_size=1, max_size=10)
    | st.sampled_from(["news", "2021", "story", "world", "article-123456"])
    | LOOKALIKE
)
EXTENSION = st.sampled_from(["", "", ".html", ".php", ".cms", ".aspx"])
ID_KEYS = ["id", "p", "story_fbid", "idx", "article", "page", "storyid", "aid", "nid"]
ID_KEY = st.sampled_from(ID_KEYS) | KEY
# AMP switch names with a value that does not switch AMP on are kept like any parameter
LOOKALIKE_PARAM = st.sampled_from([("amp", "0"), ("amp", "no"), ("outputType", "json")])
ID_VALUE = st.text(string.ascii_letters + string.digits + "_-", max_size=8)
DEFAULT = {"http": 80, "https": 443}
AMP_QUERY = [
    ("amp", ""),
    ("amp", "1"),
    ("amp", "true"),
    ("outputType", "amp"),
    ("_amp", "true"),
    ("usqp", "mq331AQIUAKwASCAAgM%3D"),
    ("amp_js_v", "a6"),
    ("amp_gsa", "1"),
]


@dataclass(frozen=True)
class Article:
    """The parts of an article URL that identify it."""

    scheme: str
    subdomain: str | None  # a label that is not an alias (news.example.com)
    name: str  # the registrable domain, e.g. example.co.uk
    port: int | None  # None or a non-default port
    segments: tuple[str, ...]
    query: tuple[tuple[str, str], ...]

    @property
    def host(self) -> str:
        return f"{self.subdomain}.{self.name}" if self.subdomain else self.name

    def url(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        query = "&".join(f"{k}={v}" for k, v in self.query)
        path = "/" + "/".join(self.segments)
        return f"{self.scheme}://{self.host}{port}{path}" + (f"?{query}" if query else "")


def _slug(segment: str) -> bool:
    return any(c in segment for c in "0123456789._-")


def _article_path(segments: tuple[str, ...]) -> bool:
    # markers are only markers at the ends of the path; "amp" in the middle is an article's,
    # and so is a last "amp" after a plain word (/tags/amp) and a path that is "amp" alone
    if not segments:
        return True
    return (
        (segments[0] not in ("amp", ".amp") or len(segments) == 1)
        and not (segments[-1] == "amp" and len(segments) > 1 and _slug(segments[-2]))
        and segments[:2] != ("platform", "amp")
        and all(s.lower() not in INDEX_FILES and not s.endswith(".amp") for s in segments)
    )


SEGMENTS = (
    st.tuples(st.lists(SEGMENT_TEXT, max_size=4), EXTENSION)
    .map(lambda t: (*t[0][:-1], t[0][-1] + t[1]) if t[0] else ())
    .filter(_article_path)
)
REGISTRABLE = st.builds(lambda n, s: f"{n}.{s}", NAME_LABEL, st.sampled_from(SUFFIXES)).filter(
    lambda name: not is_tld(name)  # us.com, blogspot.com are public suffixes, not sites
)


@st.composite
def articles(draw: st.DrawFn) -> Article:
    scheme = draw(st.sampled_from(["http", "https"]))
    return Article(
        scheme=scheme,
        subdomain=draw(st.none() | SUB_LABEL),
        name=draw(REGISTRABLE | st.sampled_from(["bücher.de", "пример.рф", "ڈان.pk"])),
        port=draw(st.none() | st.integers(1, 65535).filter(lambda p: p != DEFAULT[scheme])),
        segments=draw(SEGMENTS),
        query=tuple(draw(st.lists(st.tuples(ID_KEY, ID_VALUE) | LOOKALIKE_PARAM, max_size=3))),
    )


@st.composite
def variant(draw: st.DrawFn, article: Article) -> str:
    """One of the many URLs the same article is linked under."""
    scheme = draw(
        st.sampled_from([article.scheme, article.scheme.upper(), "hTTp" + article.scheme[4:]])
    )
    aliases = draw(st.lists(ALIAS, max_size=2))
    host = ".".join([*aliases, article.host])
    host = draw(st.sampled_from([host, host.upper(), host.title()]))
    port = article.port
    if port is None and draw(st.booleans()):
        port = DEFAULT[article.scheme]
    netloc = host if port is None else f"{host}:{port}"

    segments = list(article.segments)
    if len(segments) > 0 and draw(st.booleans()):
        last = segments[-1]
        if last.endswith(".html") and draw(st.booleans()):
            segments[-1] = last[: -len(".html")] + ".amp.html"
        else:
            segments[-1] = last + ".amp"
    prefixes = [[], [], ["amp"], [".amp"], ["platform", "amp"]] if segments else [[]]
    prefix = draw(st.sampled_from(prefixes))
    # a final "amp" is a marker only after an article's slug or id (some-story/amp)
    amp = ["amp"] if segments and _slug(segments[-1]) else []
    suffix = draw(
        st.lists(
            st.sampled_from([*amp, *sorted(INDEX_FILES), "Index.HTML"]), max_size=2, unique=True
        )
    )
    segments = [*prefix, *segments, *suffix]
    path = "/" + "/".join(segments)
    if draw(st.booleans()):
        path = path.rstrip("/") + "/"

    query = list(article.query)
    extra = draw(st.lists(st.sampled_from(AMP_QUERY) | st.tuples(TRACKING, VALUE), max_size=3))
    for item in extra:
        query.insert(draw(st.integers(0, len(query))), item)
    query = draw(st.permutations(query))
    text = f"{scheme}://{netloc}{path}"
    if query:
        text += "?" + "&".join(f"{k}={v}" if v or k != "amp" else k for k, v in query)
    if draw(st.booleans()):
        text += "#" + draw(st.text(max_size=8).filter(lambda f: not f.startswith("!")))
    return text


@settings(max_examples=150, deadline=None)
@given(articles(), st.data())
def test_every_variant_of_an_article_has_its_key(article: Article, data: st.DataObject) -> None:
    first, *others = [data.draw(variant(article)) for _ in range(3)]
    key = canonical_url(first)
    assert canonical_url(key) == key
    for other in others:
        assert canonical_url(other) == key
        assert same_site(other, first)


@st.composite
def other_article(draw: st.DrawFn, article: Article) -> Article:
    """The same article with one identifying part changed."""
    kind = draw(st.sampled_from(["segment", "value", "domain", "subdomain", "port"]))
    if kind == "segment":
        segments = list(article.segments)
        if len(segments) > 0 and draw(st.booleans()):
            i = draw(st.integers(0, len(segments) - 1))
            if draw(st.booleans()):
                del segments[i]
            else:
                segments[i] = draw(SEGMENT_TEXT.filter(lambda s: s != segments[i]))
        else:
            inner = len(segments) >= 2 and draw(st.booleans())  # "amp" inside: not a marker
            at = draw(st.integers(1, len(segments) - 1) if inner else st.integers(0, len(segments)))
            segments.insert(at, draw(LOOKALIKE if inner else SEGMENT_TEXT))
        changed = replace(article, segments=tuple(segments))
        assume(_article_path(changed.segments))
        return changed
    if kind == "value":
        query = list(article.query)
        if len(query) > 0 and draw(st.booleans()):
            i = draw(st.integers(0, len(query) - 1))
            key, value = query[i]
            query[i] = (key, draw(ID_VALUE.filter(lambda v: v != value)))
        else:
            query.append((draw(ID_KEY), draw(ID_VALUE)))
        return replace(article, query=tuple(query))
    if kind == "domain":
        return replace(article, name=draw(REGISTRABLE.filter(lambda n: n != article.name)))
    if kind == "subdomain":
        if article.subdomain is not None and draw(st.booleans()):
            return replace(article, subdomain=None)
        subdomain = draw(SUB_LABEL.filter(lambda s: s != article.subdomain))
        return replace(article, subdomain=subdomain)
    if article.port is not None and draw(st.booleans()):
        return replace(article, port=None)
    ports = st.integers(1, 65535).filter(lambda p: p not in (article.port, DEFAULT[article.scheme]))
    return replace(article, port=draw(ports))


@settings(max_examples=200, deadline=None)
@given(articles(), st.data())
def test_different_articles_never_share_a_key(article: Article, data: st.DataObject) -> None:
    other = data.draw(other_article(article))
    a, b = data.draw(variant(article)), data.draw(variant(other))
    assert canonical_url(a) != canonical_url(b)
    assert url_id(canonical_url(a)) != url_id(canonical_url(b))
    host_changed = (other.name, other.subdomain, other.port) != (
        article.name,
        article.subdomain,
        article.port,
    )
    assert same_site(a, b) is not host_changed


@settings(max_examples=100, deadline=None)
@given(articles(), LOOKALIKE, st.data())
def test_marker_lookalikes_are_part_of_the_article(
    article: Article, lookalike: str, data: st.DataObject
) -> None:
    # "amp" inside a path, "AMP", "amp.html", "index" without extension... identify the page
    segments = article.segments
    places = [
        (*segments[:i], lookalike, *segments[i:])
        for i in range(len(segments) + 1)
        if _article_path((*segments[:i], lookalike, *segments[i:]))
    ]
    assume(places)
    other = replace(article, segments=data.draw(st.sampled_from(places)))
    assert canonical_url(article.url()) != canonical_url(other.url())
