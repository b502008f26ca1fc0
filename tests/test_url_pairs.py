"""URL identity on the cases other URL normalisers document, and on those issue #13 found."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from newsmon.urls import InvalidURL, canonical_url, is_tracking_param, url_id

PAIRS = Path(__file__).parent / "fixtures" / "urls" / "pairs.tsv"


def _pairs(kind: str) -> list[tuple[str, str, str]]:
    rows = []
    for line in PAIRS.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            row_kind, a, b, note = line.split("\t")
            if row_kind == kind:
                rows.append((a, b, note))
    return rows


@pytest.mark.parametrize(("a", "b", "note"), _pairs("same"), ids=lambda v: str(v)[:40])
def test_links_of_one_article_share_its_key(a: str, b: str, note: str) -> None:
    assert canonical_url(a) == canonical_url(b), note
    assert canonical_url(canonical_url(a)) == canonical_url(a)


@pytest.mark.parametrize(("a", "b", "note"), _pairs("distinct"), ids=lambda v: str(v)[:40])
def test_different_articles_keep_their_keys(a: str, b: str, note: str) -> None:
    assert canonical_url(a) != canonical_url(b), note
    assert url_id(canonical_url(a)) != url_id(canonical_url(b))


def test_the_pair_list_is_not_empty() -> None:
    assert len(_pairs("same")) >= 30 and len(_pairs("distinct")) >= 20


# --- the cases of issue #13, one by one ----------------------------------------------------------


def test_hash_bang_fragments_are_kept() -> None:
    one = canonical_url("https://www.wsj.com/#!/story/1001")
    two = canonical_url("https://www.wsj.com/#!/story/1002")
    assert one == "https://wsj.com/#!/story/1001"
    assert two == "https://wsj.com/#!/story/1002"
    # percent-encoding of the fragment is normalised like a path's
    assert canonical_url("https://x.example/#!/a%7eb c") == "https://x.example/#!/a~b%20c"
    # other fragments still go
    assert canonical_url("https://x.example/a#!") == "https://x.example/a#!"
    assert canonical_url("https://x.example/a#top") == "https://x.example/a"


@pytest.mark.parametrize(
    ("host", "ascii_host"),
    [
        ("faß.de", "xn--fa-hia.de"),  # IDNA 2008 keeps ß (IDNA 2003 made it "ss")
        ("FASS.de", "fass.de"),
        ("βόλος.com", "xn--nxasmm1c.com"),  # final sigma kept (IDNA 2003 maps it)
        ("\uff25\uff38\uff21\uff2d\uff30\uff2c\uff25.com", "example.com"),  # full-width, mapped
        ("bücher.de", "xn--bcher-kva.de"),
    ],
)
def test_idna_2008_hosts(host: str, ascii_host: str) -> None:
    assert canonical_url(f"https://{host}/x") == f"https://{ascii_host}/x"
    assert canonical_url(f"https://{ascii_host}/x") == f"https://{ascii_host}/x"


def test_sharp_s_is_not_ss() -> None:
    assert canonical_url("https://faß.de/") != canonical_url("https://fass.de/")


def test_a_name_idna_2008_refuses_keeps_its_idna_2003_form() -> None:
    # symbols are not valid IDNA 2008 labels; such links exist, and get the form browsers of
    # the IDNA 2003 era used rather than being refused
    assert canonical_url("https://☃.net/a") == "https://xn--n3h.net/a"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/tags/amp", "https://example.com/tags/amp"),
        ("https://www.reddit.com/r/amp/", "https://reddit.com/r/amp"),
        ("https://example.com/amp", "https://example.com/amp"),
        ("https://example.com/amp/", "https://example.com/amp"),
        # after an article's slug or id, a final "amp" is still the AMP rendering
        ("https://example.com/news/story-1/amp", "https://example.com/news/story-1"),
        ("https://example.com/2021/08/10/amp/", "https://example.com/2021/08/10"),
        ("https://example.com/x-4656421.html/amp", "https://example.com/x-4656421.html"),
    ],
)
def test_a_final_amp_segment_only_after_an_article(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize("name", ["clickid", "aftr_source", "fb_ref", "this_affiliate", "srsltid"])
def test_more_tracking_parameters(name: str) -> None:
    assert is_tracking_param(name)
    assert canonical_url(f"https://example.com/a?{name}=x1&id=3") == "https://example.com/a?id=3"


@pytest.mark.parametrize(
    "value", ["rss", "RSS", "homepage", "home", "twitter", "newsletter", "feed"]
)
def test_ref_naming_a_source_is_dropped(value: str) -> None:
    assert canonical_url(f"https://example.com/a?ref={value}") == "https://example.com/a"
    assert is_tracking_param("ref", value)


@pytest.mark.parametrize("value", ["12345", "a7", "", "story"])
def test_ref_with_any_other_value_is_kept(value: str) -> None:
    assert (
        canonical_url(f"https://example.com/a?ref={value}") == f"https://example.com/a?ref={value}"
    )
    assert not is_tracking_param("ref", value)
    assert not is_tracking_param("ref")  # without a value nothing says it tracks


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ('https://example.com/abc"', "https://example.com/abc"),
        ("https://example.com/abc<", "https://example.com/abc"),
        ("https://example.com/abc>", "https://example.com/abc"),
        ('https://example.com/abc"><img', "https://example.com/abc"),  # markup after the link
        ('https://example.com/a?id=1"', "https://example.com/a?id=1"),
        ('https://example.com/abc"#frag', "https://example.com/abc"),
        ('https://example.com/a"b', "https://example.com/a%22b"),  # inside: kept, escaped
    ],
)
def test_junk_at_the_end_of_a_link(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def test_query_is_unicode_normalised() -> None:
    nfc = canonical_url("https://example.com/s?q=caf\u00e9")
    assert canonical_url("https://example.com/s?q=cafe\u0301") == nfc
    assert canonical_url("https://example.com/s?q=cafe%CC%81") == nfc
    assert canonical_url("https://example.com/s?caf%C3%A9=1") == canonical_url(
        "https://example.com/s?cafe%CC%81=1"
    )
    # bytes that are not UTF-8 are left as they are
    assert canonical_url("https://example.com/s?q=caf%E9") == "https://example.com/s?q=caf%E9"


# --- the cases of courlan's, url-normalize's and metadata-lib's own tests ------------------------

UPSTREAM = Path(__file__).parent / "fixtures" / "urls" / "upstream.tsv"
_CONTROL = re.compile(r"\{U\+([0-9A-F]{4})\}")


def _upstream() -> list[tuple[str, str, str, str, str, str]]:
    rows = []
    for line in UPSTREAM.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            source, upstream, newsmon, a, b, why = line.split("\t")
            rows.append((source, upstream, newsmon, *(_CONTROL.sub(_char, x) for x in (a, b)), why))
    return rows


def _char(match: re.Match[str]) -> str:
    return chr(int(match.group(1), 16))


@pytest.mark.parametrize(
    ("source", "upstream", "newsmon", "a", "b", "why"),
    _upstream(),
    ids=lambda v: str(v)[:40],
)
def test_upstream_cases(source: str, upstream: str, newsmon: str, a: str, b: str, why: str) -> None:
    if newsmon == "invalid":
        with pytest.raises(InvalidURL):
            canonical_url(a)
        return
    key = canonical_url(a)
    assert canonical_url(key) == key
    if newsmon == "same":
        assert key == canonical_url(b), why
    else:
        assert newsmon == "distinct" and key != canonical_url(b), why


def test_upstream_rows_say_why_they_differ() -> None:
    rows = _upstream()
    assert {r[0] for r in rows} == {"courlan", "url-normalize", "metadata-lib"}
    for source, upstream, newsmon, _, _, why in rows:
        assert upstream in ("same", "distinct", "-") and newsmon in ("same", "distinct", "invalid")
        assert why.strip(), (source, upstream, newsmon)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/a</a>", "https://example.com/a"),
        ("https://example.com/a?id=1</div>", "https://example.com/a?id=1"),
        ('https://example.com/a" target="_blank', "https://example.com/a"),
        ('https://example.com/a"https://example.com/a"', "https://example.com/a"),
        ("https://example.com/a<br/>", "https://example.com/a"),
        ("https://example.com/a<1", "https://example.com/a%3C1"),  # not a tag: escaped
        ("<![CDATA[https://example.com/a]]>", "https://example.com/a"),
        ("\x19https://example.com/a\x06", "https://example.com/a"),
        ("https://exam\tple.com/a\n/b", "https://example.com/a/b"),
    ],
)
def test_markup_and_controls_around_a_link(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http:/www.example.com/a", "http://example.com/a"),
        ("http:example.com/a", "http://example.com/a"),
        ("HTTPS:\\\\example.com\\a\\b?q=a\\b", "https://example.com/a/b?q=a%5Cb"),
        ("http://http://www.example.com/a", "http://example.com/a"),
        ("http://https://example.com/a", "https://example.com/a"),
        ("http://https//example.com/a", "https://example.com/a"),
    ],
)
def test_slashes_after_the_scheme_as_browsers_read_them(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize("url", ["http:///a", "http:////example.com/a", "http://"])
def test_an_empty_host_is_still_refused(url: str) -> None:
    with pytest.raises(InvalidURL):
        canonical_url(url)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/a?x=1&amp;y=2", "https://example.com/a?x=1&y=2"),
        ("https://example.com/a?x=1&#038;y=2", "https://example.com/a?x=1&y=2"),
        ("https://example.com/a?x=1&#38;utm_source=rss", "https://example.com/a?x=1"),
        ("https://example.com/a&amp;b", "https://example.com/a&amp;b"),  # in a path: kept
    ],
)
def test_an_html_escaped_ampersand_in_the_query(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def test_rfc_2396_marks_are_one_path_escaped_or_not() -> None:
    assert canonical_url("https://example.com/a%27b%28c%29%21%2A") == (
        "https://example.com/a'b(c)!*"
    )
    assert canonical_url("https://example.com/a%2Fb") == "https://example.com/a%2Fb"  # not a mark


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/?_escaped_fragment_=/story/1", "https://example.com/#!/story/1"),
        ("https://example.com/?_escaped_fragment_=k%3Dv&a=1", "https://example.com/?a=1#!k=v"),
        ("https://example.com/a?_escaped_fragment_=", "https://example.com/a"),
        ("https://example.com/?_escaped_fragment_=caf%E9", "https://example.com/#!caf%E9"),
        # a page that has its own #! keeps the parameter
        (
            "https://example.com/?_escaped_fragment_=x#!/y",
            "https://example.com/?_escaped_fragment_=x#!/y",
        ),
    ],
)
def test_the_escaped_fragment_form_of_a_hash_bang(url: str, expected: str) -> None:
    assert canonical_url(url) == expected
    assert canonical_url(expected) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://www-bbc-com.cdn.ampproject.org/c/s/www.bbc.com/news/world-1.amp",
            "https://bbc.com/news/world-1",
        ),
        (
            "https://x-example.cdn.ampproject.org/v/example.com/a?amp_js_v=0.1",
            "http://example.com/a",
        ),
        # an image of the cache is no page of the site
        (
            "https://x-example.cdn.ampproject.org/i/s/example.com/a.jpg",
            "https://x-example.cdn.ampproject.org/i/s/example.com/a.jpg",
        ),
    ],
)
def test_a_page_in_googles_amp_cache_is_the_page(url: str, expected: str) -> None:
    assert canonical_url(url) == expected
