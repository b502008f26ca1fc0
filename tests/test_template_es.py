"""A syndicating site's template, end to end on the real node: related links, teaser cards and
long copyright lines leave the indexed text; the articles' own lines, a sentence after a
lead-in and a newsletter's recurring opening stay."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from newsmon.config import Settings, load_feeds
from newsmon.dev.demo import DemoSite
from newsmon.pipeline import ingest
from newsmon.store import IndexNames
from newsmon.urls import canonical_url, url_id

from .helpers.paths import NEWS_PAGES

pytestmark = pytest.mark.es

START = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
COPYRIGHT = (
    "Copyright {year} Wire Agency Ltd. All rights reserved. This material may not be "
    "published, broadcast, rewritten or redistributed in whole or in part without permission."
)
SENTENCE = "Related: the agency said on Monday that its reporters would keep covering the story."


def stories(count: int) -> list[tuple[str, list[str]]]:
    """(headline, paragraphs) of real articles: the hand-marked texts of the news pages."""
    truth = json.loads((NEWS_PAGES / "ground-truth.json").read_text("utf-8"))
    out = []
    for key in sorted(truth):
        paragraphs = [p.strip() for p in truth[key]["articleBody"].split("\n") if p.strip()]
        if 4 <= len(paragraphs) <= 20 and len(paragraphs[0]) > 80:
            words = re.findall(r"[A-Za-z]+", paragraphs[0])[:9]
            out.append((" ".join(words).capitalize() + " " + key[:6], paragraphs))
        if len(out) == count:
            return out
    raise AssertionError("not enough shared pages")


def wire_page(n: int, headline: str, paragraphs: list[str], related: list[str]) -> bytes:
    """Article n of the wire site: its text, with the template's related links, teaser cards
    and copyright line among and after the paragraphs."""

    def a(k: int) -> str:
        return f'<a href="/news/{k}/">{html.escape(related[k])}</a>'

    published = START + timedelta(days=n)
    cards = "".join(
        f'<div class="card">{a(k)}<p>Teaser blurb number {k} for story {n}, '
        f"with a line of its own about what story {k} says.</p></div>"
        for k in (4, 5)
    )
    body = [
        f"<p>{html.escape(paragraphs[0])}</p>",
        f"<p><strong>Read more:</strong> {a(0)}</p>",
        *(f"<p>{html.escape(p)}</p>" for p in paragraphs[1:-1]),
        f"<p>Trending: {a(1)}</p>",
        f"<p>{html.escape(SENTENCE)}</p>" if n == 6 else "",
        f"<p>{html.escape(paragraphs[-1])}</p>",
        f"<p><em>{html.escape(COPYRIGHT.format(year=published.year))}</em></p>",
        f"<h3>See also</h3><ul><li>{a(2)}</li><li>{a(3)}</li></ul>",
        f'<section class="more"><h2>You may also like</h2>{cards}</section>',
    ]
    title = html.escape(headline)
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>{title} | Wire</title><meta property="og:title" content="{title}">
<meta property="article:published_time" content="{published.isoformat()}">
</head><body><header><nav><a href="/world/">World</a> <a href="/sport/">Sport</a></nav></header>
<main><article><h1>{title}</h1><div class="body">{"".join(body)}</div></article></main>
<footer><a href="/privacy/">Privacy policy</a></footer></body></html>""".encode()


def newsletter_page(n: int, headline: str, paragraphs: list[str]) -> bytes:
    published = START + timedelta(days=7 * n)
    body = ["Hey there! \U0001f44b", "Skander here.", *paragraphs, "Until next week,", "Skander"]
    title = html.escape(headline)
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>{title}</title><meta property="article:published_time" content="{published.isoformat()}">
</head><body><article><h1>{title}</h1>
{"".join(f"<p>{html.escape(p)}</p>" for p in body)}
<p>Subscribe to get the next issue in your inbox.</p></article></body></html>""".encode()


class Sites:
    """Sites on loopback addresses, one feed each."""

    def __init__(self, settings: Settings) -> None:
        self.sites: dict[str, DemoSite] = {}
        self.urls: dict[tuple[str, int], str] = {}
        self.settings = settings

    def publish(self, address: str, pages: list[tuple[str, bytes, datetime]]) -> None:
        site = DemoSite([], feed_count=0, host=address).start()
        self.sites[address] = site
        items = []
        for n, (title, page, published) in enumerate(pages):
            url = site.add_page(f"/news/{n}/", page)
            self.urls[(address, n)] = url
            items.append((url, title, published))
        site.set_feed("news", items)
        lines = ["feeds:"]
        for k, s in enumerate(self.sites.values()):
            lines += [f"  - id: site-{k}", f"    name: Site {k}", f"    url: {s.feed_url('news')}"]
        Path(self.settings.feeds_file).write_text("\n".join(lines) + "\n")

    def text(self, es: Elasticsearch, address: str, n: int) -> str:
        doc_id = url_id(canonical_url(self.urls[(address, n)]))
        index = IndexNames(self.settings.index_prefix).articles
        source = es.get(index=index, id=doc_id)["_source"]
        assert source["extraction"] == "full"
        return str(source["text"])

    def stop(self) -> None:
        for site in self.sites.values():
            site.stop()


@pytest.fixture
def sites(settings: Settings) -> object:
    owner = Sites(settings)
    yield owner
    owner.stop()


def test_a_sites_template_leaves_the_text_and_its_articles_stay(
    es: Elasticsearch, settings: Settings, sites: Sites
) -> None:
    wire = stories(7)
    headlines = [h for h, _ in wire]
    related = {n: [headlines[(n + k) % 7] for k in range(1, 7)] for n in range(7)}
    sites.publish(
        "127.0.0.21",
        [
            (h, wire_page(n, h, p, related[n]), START + timedelta(days=n))
            for n, (h, p) in enumerate(wire)
        ],
    )
    letters = stories(11)[7:]
    sites.publish(
        "127.0.0.22",
        [
            (h, newsletter_page(n, h, p), START + timedelta(days=7 * n))
            for n, (h, p) in enumerate(letters)
        ],
    )
    summary = ingest(load_feeds(settings.feeds_file), settings)
    assert summary.articles["indexed"] == 11
    es.indices.refresh(index=IndexNames(settings.index_prefix).articles)

    for n, (_headline, paragraphs) in enumerate(wire):
        text = sites.text(es, "127.0.0.21", n)
        lines = text.split("\n\n")
        for other in related[n]:  # related links, "See also" list, teaser cards' headlines
            assert other not in text
        for label in ("Read more", "Trending", "See also", "You may also like", "Teaser blurb"):
            assert label not in text
        assert "Wire Agency Ltd" not in text  # the long copyright line
        assert [line for line in lines if line != SENTENCE] == paragraphs
        assert (SENTENCE in lines) == (n == 6)  # a sentence after a lead-in is the article's

    # an alert on a related headline finds its own story only
    index = IndexNames(settings.index_prefix).articles
    for n, headline in enumerate(headlines):
        hits = es.search(
            index=index,
            query={
                "multi_match": {"query": headline, "type": "phrase", "fields": ["title", "text"]}
            },
        )["hits"]["hits"]
        assert [h["_id"] for h in hits] == [url_id(canonical_url(sites.urls[("127.0.0.21", n)]))]

    for n, (_headline, paragraphs) in enumerate(letters):
        text = sites.text(es, "127.0.0.22", n)
        assert text.startswith("Hey there! \U0001f44b\n\nSkander here.\n\n" + paragraphs[0])
        assert all(p in text.split("\n\n") for p in paragraphs)


def test_related_links_seen_twice_are_not_yet_the_sites_template(
    es: Elasticsearch, settings: Settings, sites: Sites
) -> None:
    wire = stories(2)
    headlines = [h for h, _ in wire] + [f"Other headline number {k} of the site" for k in range(6)]
    sites.publish(
        "127.0.0.23",
        [
            (h, wire_page(n, h, p, headlines[n + 1 : n + 7]), START + timedelta(days=n))
            for n, (h, p) in enumerate(wire)
        ],
    )
    summary = ingest(load_feeds(settings.feeds_file), settings)
    assert summary.articles["indexed"] == 2
    for n in range(2):
        text = sites.text(es, "127.0.0.23", n)
        assert "Read more: " + headlines[n + 1] in text.split("\n\n")
        assert "Wire Agency Ltd" in text


def blurb(paragraphs: list[str]) -> str:
    """A teaser card's text: the first sentence of a story."""
    return re.split(r"(?<=[.!?])\s", paragraphs[0], maxsplit=1)[0][:200]


def gazette_page(
    n: int, headline: str, paragraphs: list[str], cards: list[tuple[str, str]]
) -> bytes:
    """Article n of a site whose teaser cards have no lead-in and no heading: a linked headline
    and another story's first sentence, between the paragraphs and in a rail after them, in
    the article's own container. Only their place in the page tells them from the text."""

    def card(k: int, kind: str) -> str:
        return (
            f'<div class="{kind}"><a href="/news/{100 + k}/">{html.escape(cards[k][0])}</a>'
            f"<p>{html.escape(cards[k][1])}</p></div>"
        )

    published = START + timedelta(days=n)
    body = [f"<p>{html.escape(p)}</p>" for p in paragraphs]
    body.insert(2, card(0, "c-entry-box"))
    rail = "".join(card(k, "c-river__item") for k in (1, 2, 3))
    title = html.escape(headline)
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>{title}</title><meta property="article:published_time" content="{published.isoformat()}">
</head><body><main><article><h1>{title}</h1><div class="article-body">{"".join(body)}
<div class="c-river">{rail}</div></div></article></main></body></html>""".encode()


def test_teaser_cards_known_only_by_their_place_leave_the_text(
    es: Elasticsearch, settings: Settings, sites: Sites
) -> None:
    texts = stories(38)
    site, young = texts[:7], texts[7:10]
    # every page's cards show other stories' first sentences, different on every page
    shown = [(h, blurb(p)) for h, p in texts[10:]]
    cards = {n: shown[4 * n : 4 * n + 4] for n in range(7)}
    blurbs = {n: [b for _h, b in cards[n]] for n in range(7)}
    sites.publish(
        "127.0.0.24",
        [
            (h, gazette_page(n, h, p, cards[n]), START + timedelta(days=n))
            for n, (h, p) in enumerate(site)
        ],
    )
    # the same template on a site with three articles so far: not learned yet
    sites.publish(
        "127.0.0.25",
        [
            (h, gazette_page(n, h, p, cards[n]), START + timedelta(days=n))
            for n, (h, p) in enumerate(young)
        ],
    )
    summary = ingest(load_feeds(settings.feeds_file), settings)
    assert summary.articles["indexed"] == 10
    es.indices.refresh(index=IndexNames(settings.index_prefix).articles)
    for n, (_headline, paragraphs) in enumerate(site):
        assert sites.text(es, "127.0.0.24", n).split("\n\n") == paragraphs
    for n, (_headline, paragraphs) in enumerate(young):
        lines = sites.text(es, "127.0.0.25", n).split("\n\n")
        assert [line for line in lines if line not in blurbs[n]] == paragraphs
        assert set(blurbs[n]) & set(lines)
    # an alert on a card's sentence finds no article of the learned site
    index = IndexNames(settings.index_prefix).articles
    learned = {url_id(canonical_url(sites.urls[("127.0.0.24", n)])) for n in range(7)}
    for sentence in {s for n in range(7) for s in blurbs[n]}:
        hits = es.search(index=index, query={"match_phrase": {"text": sentence}}, source=False)[
            "hits"
        ]["hits"]
        assert not learned & {h["_id"] for h in hits}
