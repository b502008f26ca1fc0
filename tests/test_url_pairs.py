"""URL identity on the cases other URL normalisers document, and on those issue #13 found."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsmon.urls import canonical_url, is_tracking_param, url_id

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
        ('https://example.com/abc"><img', "https://example.com/abc%22%3E%3Cimg"),
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
