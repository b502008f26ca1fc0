"""The article text's second opinion (newsmon.extract.second) and teaser lines
(newsmon.extract.teasers): rules checked on small pages, then on real pages of the shared data
sets against their hand-marked article text."""

from __future__ import annotations

import gzip
import json
import logging
import re
from collections import Counter

import pytest
import trafilatura

from newsmon.extract import extract_page
from newsmon.extract import second as second_opinion
from newsmon.extract.page import _parse
from newsmon.extract.second import _add_agreed_paragraphs
from newsmon.extract.teasers import _drop_teasers, _teaser_keys

from .helpers.paths import NEWS_PAGES, WCXB


def _f1(text: str | None, truth: str) -> float:
    got = Counter(re.findall(r"\w+", (text or "").lower()))
    want = Counter(re.findall(r"\w+", truth.lower()))
    overlap = sum((got & want).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / sum(got.values()), overlap / sum(want.values())
    return 2 * precision * recall / (precision + recall)


def _news_page(prefix: str) -> tuple[bytes, str, str]:
    truth_file = NEWS_PAGES / "ground-truth.json"
    if not truth_file.is_file():
        pytest.fail(f"shared data missing: {truth_file} (set NEWSMON_SHARED)")
    truth = json.loads(truth_file.read_text(encoding="utf-8"))
    page_id = next(k for k in truth if k.startswith(prefix))
    with gzip.open(NEWS_PAGES / "html" / f"{page_id}.html.gz", "rb") as fh:
        return fh.read(), truth[page_id]["url"], truth[page_id]["articleBody"]


def _wcxb_page(page_id: str) -> tuple[bytes, str, str]:
    truth_file = WCXB / "ground-truth" / f"{page_id}.json"
    if not truth_file.is_file():
        pytest.fail(f"shared data missing: {truth_file} (set NEWSMON_SHARED)")
    entry = json.loads(truth_file.read_text(encoding="utf-8"))
    with gzip.open(WCXB / "html" / f"{page_id}.html.gz", "rb") as fh:
        return fh.read(), entry["url"], entry["ground_truth"]["main_content"]


# --- teasers ---------------------------------------------------------------------------------

_URL = "https://news.example/2024/05/council-approves-budget"
_TEASER = "Riverside library opens its new wing to the public"


def _links_page(links: str) -> str:
    return f"<html><body><article><p>Text.</p></article><aside>{links}</aside></body></html>"


@pytest.mark.parametrize(
    ("href", "teaser"),
    [
        ("/2024/05/library-opens-new-wing", True),  # another article of the site
        ("https://www.news.example/2024/05/library-opens-new-wing", True),  # www. is the site
        ("https://m.news.example/library", True),  # a subdomain of the site
        ("https://other.example/2024/05/library-opens-new-wing", False),  # another site
        (_URL, False),  # the page itself
        ("#comments", False),
        ("mailto:desk@news.example", False),
    ],
)
def test_teaser_is_a_link_to_another_page_of_the_site(href: str, teaser: bool) -> None:
    tree = _parse(_links_page(f"<a href='{href}'>{_TEASER}</a>"))
    keys = _teaser_keys(tree, _URL)
    text = f"The council approved the budget.\n\n{_TEASER}"
    expected = "The council approved the budget." if teaser else text
    assert _drop_teasers(text, keys) == expected


def test_short_links_and_lines_with_more_than_the_link_stay() -> None:
    tree = _parse(
        _links_page(
            "<a href='/world'>World news</a>"  # fewer than 6 words: the template learner's job
            f"<p>Read the story <a href='/2024/05/library'>{_TEASER}</a> on our site.</p>"
        )
    )
    keys = _teaser_keys(tree, _URL)
    text = f"World news\n\nRead the story {_TEASER} on our site."
    assert _drop_teasers(text, keys) == text
    assert _teaser_keys(tree, None) == frozenset()


def test_bullets_and_punctuation_do_not_hide_a_teaser() -> None:
    tree = _parse(_links_page(f"<ul><li><a href='/a/b'>{_TEASER}!</a></li></ul>"))
    assert _drop_teasers(f"Body.\n\n- {_TEASER}", _teaser_keys(tree, _URL)) == "Body."
    # never the whole text
    assert _drop_teasers(_TEASER, _teaser_keys(tree, _URL)) == _TEASER


def test_related_links_leave_a_real_page() -> None:
    # cleveland.com: a "You may also like..." block of links to the site's other stories
    html, url, truth = _news_page("35b158918c")
    page = extract_page(html, url)
    assert page is not None
    assert "Who will make the Rock Hall in 2020?" not in page.text
    assert "Dave Matthews Band takes over Rock Hall Fan Vote" not in page.text
    for paragraph in truth.split("\n"):
        if paragraph.strip():
            assert paragraph.strip()[:60] in page.text
    plain = trafilatura.extract(html, url=url, include_comments=False)
    assert "Who will make the Rock Hall in 2020?" in (plain or "")
    assert _f1(page.text, truth) > _f1(plain, truth)


# --- second opinion --------------------------------------------------------------------------

_P = [
    f"Paragraph {n} of the report explains how the council will pay for road repairs in {n}."
    for n in range(5)
]


def test_a_paragraph_both_opinions_have_is_added_in_place() -> None:
    text = "\n\n".join([_P[0], _P[2]])
    both = "\n\n".join([_P[0], _P[1], _P[2]])
    # the other opinion breaks the lines differently: the same paragraphs
    other = both.replace(" of the report", "\n\nof the report")
    assert _add_agreed_paragraphs(text, both, lambda: other) == both


def _never() -> str:
    raise AssertionError("the second opinion was asked for though nothing was missing")


def test_nothing_is_added_without_agreement() -> None:
    text = _P[0]
    one = "\n\n".join([_P[0], _P[1]])
    assert _add_agreed_paragraphs(text, one, lambda: _P[0]) == text  # only one opinion has it
    assert _add_agreed_paragraphs(text, one, lambda: "") == text  # an opinion without text
    assert _add_agreed_paragraphs(one, _P[0], _never) == one  # nothing missing: not asked
    short = f"{_P[0]}\n\nShare this\n\nconst total = price(1) * 2;"
    assert _add_agreed_paragraphs(text, short, _never) == text  # labels and code
    # nothing of the text is ever removed; with nothing before it to follow, it comes first
    assert _add_agreed_paragraphs(one, _P[3], lambda: _P[3]) == f"{_P[3]}\n\n{one}"


def test_second_opinion_recovers_an_article_on_a_real_page() -> None:
    # wired.com: trafilatura keeps the first half of the story; rs-trafilatura and readability
    # both have the rest
    assert second_opinion.available(), "rs-trafilatura is part of the dev install"
    html, url, truth = _news_page("2f42ef1d3e")
    page = extract_page(html, url)
    plain = trafilatura.extract(html, url=url, include_comments=False)
    assert page is not None
    later = "A second problem is more serious."
    assert later in truth and later not in (plain or "")
    assert later in page.text
    assert _f1(plain, truth) < 0.7 < 0.95 < _f1(page.text, truth)


def test_second_opinion_leaves_code_listings_out() -> None:
    # xda-developers.com: the annotated article leaves the script out; both other extractors
    # keep it
    html, url, truth = _wcxb_page("0382")
    page = extract_page(html, url)
    assert page is not None
    assert "def run_command(cmd, shell=False):" not in page.text
    assert _f1(page.text, truth) > 0.95


def test_without_rs_trafilatura_the_text_is_trafilatura_s(monkeypatch: pytest.MonkeyPatch) -> None:
    html, url, _ = _news_page("2f42ef1d3e")
    monkeypatch.setitem(second_opinion._RS, "module", None)
    assert not second_opinion.available()
    page = extract_page(html, url)
    assert page is not None
    assert "A second problem is more serious." not in page.text


def test_a_failing_second_opinion_costs_only_itself(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(html: str, url: str | None) -> str:
        raise RuntimeError("second extractor exploded")

    html, url, _ = _news_page("35b158918c")
    monkeypatch.setattr(second_opinion, "_rs_text", boom)
    with caplog.at_level(logging.WARNING, logger="newsmon.extract.second"):
        page = extract_page(html, url)
    assert page is not None
    assert "second extractor exploded" in caplog.text
    assert "Who will make the Rock Hall in 2020?" not in page.text  # the teasers still go


def test_no_second_opinion_on_a_giant_page(monkeypatch: pytest.MonkeyPatch) -> None:
    # rs-trafilatura aborts the process when out of memory: it never sees a page that big
    def boom(html: str, url: str | None) -> str:
        raise AssertionError("rs-trafilatura called on a giant page")

    monkeypatch.setattr(second_opinion, "_rs_text", boom)
    paragraph = "<p>" + " ".join(_P) + "</p>"
    html = "<html><body><article>" + paragraph * (4_000_000 // len(paragraph) + 1) + "</article>"
    assert len(html) > second_opinion._MAX_HTML_CHARS
    assert second_opinion._second_opinion("Text.", html, None, _never, str) == "Text."
    assert second_opinion._second_opinion("Text.", "", None, _never, str) == "Text."
