"""Teaser cards found by where they sit in the page (newsmon.extract.structure) and learned per
domain by the template learner: a card's text goes once the same place carried a card in
enough articles on enough days; the article's own paragraphs, lists and links never get a
shape."""

from __future__ import annotations

import html
import json
import re
from datetime import date, timedelta

from newsmon.extract.page import extract_page
from newsmon.extract.structure import line_shapes
from newsmon.text.boilerplate import DEFAULT_RULES, ArticleText, MemoryLineStore, clean_batch

from .helpers.paths import NEWS_PAGES

SITE = "https://gazette.example"
DAY = date(2024, 3, 1)
TOPICS = ["harbour", "council", "railway", "museum", "reservoir", "festival", "airport", "bridge"]


def _texts() -> list[list[str]]:
    truth = json.loads((NEWS_PAGES / "ground-truth.json").read_text("utf-8"))
    out = []
    for key in sorted(truth):
        lines = [p.strip() for p in truth[key]["articleBody"].split("\n") if len(p.strip()) > 80]
        if len(lines) >= 4:
            out.append(lines[:4])
    return out


TEXTS = _texts()


def paragraphs(n: int) -> list[str]:
    """Real articles' paragraphs (the news pages' hand-marked texts)."""
    return TEXTS[n]


def blurb(k: int) -> str:
    """A card's text: the first sentence of another story."""
    return re.split(r"(?<=[.!?])\s", paragraphs(k)[0], maxsplit=1)[0][:200]


def card(k: int, kind: str) -> str:
    other = blurb(k)
    return (
        f'<div class="{kind}"><a href="/news/{k}/">Headline of story {k} about the '
        f"{TOPICS[k % len(TOPICS)]}</a><p>{html.escape(other)}</p></div>"
    )


def page(n: int, *, own_list: bool = False) -> str:
    body = [f"<p>{html.escape(p)}</p>" for p in paragraphs(n)]
    # the cards show stories of other days, not in the tests' batches
    body.insert(2, card(20 + 4 * n, "c-entry-box"))
    if own_list:  # the article's own list of links to the site's pages: content
        body.insert(
            1,
            "<ul><li><a href='/guides/1/'>The planning permission guide</a></li>"
            "<li><a href='/guides/2/'>How assembly budgets work</a></li>"
            "<li>Ask your local councillor for the consultation dates</li></ul>"
            "<p>Residents can read <a href='/guides/3/'>the assembly's own summary of the "
            "project</a> before the consultation opens next month in the town hall.</p>",
        )
    river = "".join(card(20 + 4 * n + k, "c-river__item") for k in (1, 2, 3))
    return (
        "<html><body><header><nav><a href='/world/'>World</a></nav></header><main><article>"
        f"<h1>Story {n}</h1><div class='article-body'>{''.join(body)}"
        f"<div class='c-river'>{river}</div></div></article></main></body></html>"
    )


def extracted(n: int, **kwargs: bool) -> tuple[str, tuple[str, ...]]:
    result = extract_page(page(n, **kwargs), f"{SITE}/news/{n}/")
    assert result is not None
    return result.text, result.shapes


def test_a_teaser_cards_text_gets_the_shape_of_its_place_and_the_article_none() -> None:
    text, shapes = extracted(0)
    lines = text.split("\n\n")
    assert len(shapes) == len(lines)
    by_line = dict(zip(lines, shapes, strict=True))
    for p in paragraphs(0):
        assert by_line[p] == ""
    inline = by_line[blurb(20)]
    river = [by_line[blurb(k)] for k in (21, 22, 23)]
    assert inline and river[0]
    assert len(set(river)) == 1  # the same place on the page
    assert inline != river[0]
    # the same places on another page of the site, with other text, have the same shapes
    text5, shapes5 = extracted(5)
    again = dict(zip(text5.split("\n\n"), shapes5, strict=True))
    assert again[blurb(40)] == inline
    assert again[blurb(41)] == river[0]


def test_the_articles_own_lists_and_links_get_no_shape() -> None:
    text, shapes = extracted(0, own_list=True)
    by_line = dict(zip(text.split("\n\n"), shapes, strict=True))
    own = [line for line in by_line if any(w in line for w in ("guide", "budgets", "Resid"))]
    assert len(own) == 3
    assert all(by_line[line] == "" for line in own)


def test_no_shape_without_a_same_site_link_or_a_page_address() -> None:
    offsite = page(0).replace('href="/news/', 'href="https://elsewhere.example/news/')
    result = extract_page(offsite, f"{SITE}/news/0/")
    assert result is not None and result.shapes == ()
    tree_page = extract_page(page(0), None)
    assert tree_page is not None and tree_page.shapes == ()
    assert line_shapes(None, None, "text") == ()  # type: ignore[arg-type]


def title(n: int) -> str:
    return f"Assembly approves the {TOPICS[n % len(TOPICS)]} plan"


def articles(count: int, start: int = 0) -> list[ArticleText]:
    out = []
    for n in range(start, start + count):
        text, shapes = extracted(n)
        out.append(
            ArticleText(f"d{n}", "gazette.example", title(n), text, DAY + timedelta(n), shapes)
        )
    return out


def test_cards_go_once_their_place_was_seen_in_enough_articles_on_enough_days() -> None:
    store = MemoryLineStore()
    need = DEFAULT_RULES.shape_min_articles
    first = clean_batch(store, articles(need - 1))
    assert all(c.removed == 0 for c in first)  # not yet the site's template
    later = clean_batch(store, articles(3, start=need - 1))
    for n, cleaned in enumerate(later, start=need - 1):
        assert cleaned.text.split("\n\n") == paragraphs(n)
        assert cleaned.removed == 4  # the inline card and the three of the river


def test_cards_stay_without_their_shapes_or_when_the_learner_is_off() -> None:
    from dataclasses import replace

    store = MemoryLineStore()
    items = articles(8)
    plain = [replace(a, shapes=()) for a in items]
    assert all(c.removed == 0 for c in clean_batch(MemoryLineStore(), plain))
    off = replace(DEFAULT_RULES, learn_shapes=False)
    assert all(c.removed == 0 for c in clean_batch(store, items, off))
    # shapes that do not line up with the paragraphs are ignored
    short = [replace(a, shapes=a.shapes[:-1]) for a in items]
    assert all(c.removed == 0 for c in clean_batch(MemoryLineStore(), short))


def test_a_card_line_the_article_also_has_as_its_own_stays() -> None:
    items = articles(8)
    last = items[-1]
    lines = last.text.split("\n\n")
    card_line = blurb(48)  # the inline card of story 7
    assert card_line in lines
    text = last.text + "\n\n" + card_line
    own = ArticleText(last.doc_id, last.domain, last.title, text, last.day, (*last.shapes, ""))
    cleaned = clean_batch(MemoryLineStore(), [*items[:-1], own])[-1]
    kept = cleaned.text.split("\n\n")
    assert kept.count(card_line) == 2


def test_a_card_whose_headline_is_written_without_spaces_gets_a_shape() -> None:
    headline = "商品の改造が商標法違反に"  # one "word" by spaces, twelve characters
    blurb_text = (
        "先日、不正に改造した携帯電話を販売したとして、商標法違反の疑いで男性が逮捕された。"
    )
    cjk_card = (
        f'<div class="c-entry-box"><a href="/news/9/">{headline}</a><p>{blurb_text}</p></div>'
    )
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs(0))
    result = extract_page(
        f"<html><body><article><div class='article-body'>{body}{cjk_card}</div></article>"
        "</body></html>",
        f"{SITE}/news/0/",
    )
    assert result is not None
    by_line = dict(zip(result.text.split("\n\n"), result.shapes, strict=True))
    assert by_line[blurb_text]
    assert all(by_line[p] == "" for p in paragraphs(0))


def test_a_card_whose_first_link_is_to_another_site_still_gets_its_shape() -> None:
    source = '<a href="https://agency.example/wire/">Wire agency of the region</a>'
    with_source = page(0).replace('<div class="c-entry-box">', f'<div class="c-entry-box">{source}')
    result = extract_page(with_source, f"{SITE}/news/0/")
    assert result is not None
    by_line = dict(zip(result.text.split("\n\n"), result.shapes, strict=True))
    assert by_line[blurb(20)]
