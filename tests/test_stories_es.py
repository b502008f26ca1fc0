"""Story clusters end to end on the real node: syndicated copies join the original's story."""

from __future__ import annotations

import html
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from newsmon.config import Settings, load_feeds
from newsmon.dev.demo import DemoPage, DemoSite
from newsmon.pipeline import ingest
from newsmon.store import IndexNames
from newsmon.urls import canonical_url, url_id

from .helpers.paths import FIXTURES, SEED

pytestmark = pytest.mark.es

SEED_TITLE = "US Defence secretary wants to improve Pak-US ties"
SEED_PATH = "/www.bolnews.com/pakistan/2021/08/us-defence-secretary-wants-to-improve-pak-us-ties/"


def _paragraphs() -> list[str]:
    return (SEED / "expected-body.txt").read_text(encoding="utf-8").strip().split("\n\n")


def syndicated_copy(site: str, title: str, paragraphs: list[str]) -> bytes:
    """Another outlet's page: its own template and boilerplate around the wire text."""
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    nav = "".join(
        f'<li><a href="/{s}">{s.title()}</a></li>'
        for s in ("pakistan", "world", "business", "sport", "opinion")
    )
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title)} | {site}</title>
<meta property="og:title" content="{html.escape(title)}">
<meta property="og:site_name" content="{site}">
<meta property="article:published_time" content="2021-08-11T09:30:00+05:00">
</head><body>
<header><div class="logo">{site}</div><nav><ul>{nav}</ul></nav>
<form><input placeholder="Search {site}"></form></header>
<main><article>
<h1>{html.escape(title)}</h1>
<div class="byline">Agencies | Published August 11, 2021</div>
<div class="article-body">{body}
<p>Follow {site} on Twitter and Facebook for the latest updates.</p>
</div></article>
<aside><h3>Most read</h3><ul><li><a href="/a">Rupee gains against dollar</a></li>
<li><a href="/b">Heavy rain expected in Karachi</a></li></ul></aside></main>
<footer><p>Copyright 2021 {site}. All rights reserved.</p>
<a href="/privacy">Privacy policy</a> <a href="/contact">Contact us</a></footer>
</body></html>""".encode()


class Outlets:
    """Several news sites on loopback, each on its own address (so each is its own outlet),
    each page listed in a feed of its site."""

    def __init__(self, settings: Settings, pages: dict[str, tuple[str, str, bytes]]) -> None:
        # pages: {path: (outlet address, title, html)}
        self.sites: dict[str, DemoSite] = {}
        self.urls: dict[str, str] = {}
        lines = ["feeds:"]
        for n, (path, (address, title, page)) in enumerate(pages.items(), start=1):
            site = self.sites.get(address) or DemoSite([], feed_count=0, host=address).start()
            self.sites[address] = site
            self.urls[path] = site.add_page(path, page)
            site.set_feed(f"f{n}", [(self.urls[path], title, datetime(2021, 8, 11, tzinfo=UTC))])
            lines += [
                f"  - id: feed-{n}",
                f"    name: Feed {n}",
                f"    url: {site.feed_url(f'f{n}')}",
            ]
        Path(settings.feeds_file).write_text("\n".join(lines) + "\n")

    def id(self, path: str) -> str:
        return url_id(canonical_url(self.urls[path]))

    def stop(self) -> None:
        for site in self.sites.values():
            site.stop()


def _source(es: Elasticsearch, settings: Settings, doc_id: str) -> dict:
    return es.get(index=IndexNames(settings.index_prefix).articles, id=doc_id)["_source"]


def test_syndicated_copy_of_the_seed_joins_its_story(es: Elasticsearch, settings: Settings) -> None:
    paragraphs = _paragraphs()
    seed_html = (FIXTURES / "seed" / "bolnews-us-defence-secretary.html").read_bytes()
    copy = [f"ISLAMABAD (APP) \u2013 {paragraphs[0]}", *paragraphs[1:-1]]  # dateline, last one cut
    other_title = "Pentagon chief, army chief discuss Afghanistan in telephone call"
    app_path = "/www.app.com.pk/national/austin-bajwa-call/"
    outlets = Outlets(
        settings,
        {
            SEED_PATH: ("127.0.0.2", SEED_TITLE, seed_html),
            app_path: ("127.0.0.3", other_title, syndicated_copy("APP", other_title, copy)),
        },
    )
    try:
        summary = ingest(load_feeds(settings.feeds_file), settings)
    finally:
        outlets.stop()

    assert summary.articles["indexed"] == 2
    seed_id = outlets.id(SEED_PATH)
    original = _source(es, settings, seed_id)
    syndicated = _source(es, settings, outlets.id(app_path))
    assert original["story_id"] == seed_id
    assert syndicated["story_id"] == seed_id
    assert syndicated["duplicate_of"] == seed_id
    story = es.get(index=IndexNames(settings.index_prefix).stories, id=seed_id)["_source"]
    assert story["article_count"] == 2
    assert sorted(story["outlets"]) == ["127.0.0.2", "127.0.0.3"]
    assert story["outlet_count"] == 2
    assert story["title"] == SEED_TITLE
    assert story["first_article_id"] == seed_id


def test_copies_across_runs_join_and_unrelated_articles_do_not(
    es: Elasticsearch, settings: Settings, news_pages: list[DemoPage]
) -> None:
    paragraphs = _paragraphs()
    seed_html = (FIXTURES / "seed" / "bolnews-us-defence-secretary.html").read_bytes()
    first = Outlets(settings, {SEED_PATH: ("127.0.0.2", SEED_TITLE, seed_html)})
    try:
        ingest(load_feeds(settings.feeds_file), settings)
    finally:
        first.stop()
    # a later run on other outlets: a trimmed copy, a lightly edited copy, another story
    edited = [p.replace("discussed", "talked about") for p in paragraphs[:-2]]
    other = news_pages[3]
    trimmed_path, edited_path = "/tribune.com.pk/story/2315/defence/", "/www.geo.tv/latest/361/"
    other_path = "/unrelated.example/world/other-story/"
    t1, t2 = "Austin, Bajwa discuss Afghan situation", "Austin calls Bajwa"
    later = Outlets(
        settings,
        {
            trimmed_path: ("127.0.0.4", t1, syndicated_copy("Tribune", t1, paragraphs[:-3])),
            edited_path: ("127.0.0.5", t2, syndicated_copy("Geo", t2, edited)),
            other_path: ("127.0.0.6", other.title, other.html),
        },
    )
    try:
        summary = ingest(load_feeds(settings.feeds_file), settings)
    finally:
        later.stop()

    seed_story = first.id(SEED_PATH)
    assert _source(es, settings, later.id(trimmed_path))["story_id"] == seed_story
    assert _source(es, settings, later.id(edited_path))["story_id"] == seed_story
    assert _source(es, settings, later.id(other_path))["story_id"] != seed_story
    assert summary.articles["story_near"] + summary.articles["story_exact"] == 2
    assert summary.articles["story_new"] == 1

    done = subprocess.run(
        [sys.executable, "-m", "newsmon.cli", "story", seed_story, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={
            "NEWSMON_ES_URL": settings.es_url,
            "NEWSMON_INDEX_PREFIX": settings.index_prefix,
            "PATH": "/usr/bin:/bin",
        },
    )
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["story"]["article_count"] == 3
    assert shown["story"]["outlet_count"] == 3
    assert {a["title"] for a in shown["articles"]} == {SEED_TITLE, t1, t2}
