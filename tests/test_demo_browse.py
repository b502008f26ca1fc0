"""The demo's sites (syndicated copies on other loopback addresses, home pages with feed links)
and the commands that look at what a run indexed: ``stories``, ``story PREFIX``, ``search``."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import requests

from newsmon.browse import unique_prefix
from newsmon.config import Settings, load_feeds
from newsmon.dev.demo import DemoNetwork, DemoPage, DemoSite, trimmed_copy
from newsmon.pipeline import ingest

from .helpers.cli import newsmon
from .helpers.paths import NEWS_PAGES


def test_a_trimmed_copy_loses_its_last_paragraph_only() -> None:
    page = b"<html><body><p>One.</p><p class='x'>Two.</p><p>Three.</p><footer/></body></html>"
    assert (
        trimmed_copy(page) == b"<html><body><p>One.</p><p class='x'>Two.</p><footer/></body></html>"
    )
    assert trimmed_copy(b"<html>no paragraphs</html>") == b"<html>no paragraphs</html>"


def test_a_prefix_names_one_id_or_says_why_not(capsys: pytest.CaptureFixture[str]) -> None:
    ids = ["abcd1111", "abcd2222", "beef0000"]
    docs = {i: {"id": i} for i in ids}

    def lookup(prefix: str) -> dict[str, str] | None:
        return unique_prefix(
            prefix,
            docs.get,
            lambda p: [i for i in ids if i.startswith(p)],
            "stories'",
            f"none starts {prefix}",
        )

    assert lookup("beef0000") == {"id": "beef0000"}  # a whole id
    assert lookup("beef") == {"id": "beef0000"}  # its one prefix
    assert lookup("abcd") is None  # two ids start so
    assert (
        "'abcd' is the start of several stories' ids (abcd1111, abcd2222…)"
        in capsys.readouterr().err
    )
    assert lookup("abc") is None  # too short to be a prefix
    assert "none starts abc" in capsys.readouterr().err
    assert lookup("dead") is None
    assert "none starts dead" in capsys.readouterr().err


def test_the_home_page_links_every_feed() -> None:
    with DemoSite([], feed_count=0, home=True, name="Local News") as site:
        site.set_feed("world", [])
        site.set_feed("sport", [])
        home = requests.get(site.base_url + "/", timeout=30)
    assert home.status_code == 200
    for name in ("world", "sport"):
        assert (
            f'<link rel="alternate" type="application/rss+xml" title="{name}.xml" '
            f'href="{site.base_url}/feeds/{name}.xml">' in home.text
        )
    with DemoSite([], feed_count=0) as plain:  # the tests' sites keep "/" free
        assert requests.get(plain.base_url + "/", timeout=30).status_code == 404


def test_a_port_in_use_is_one_line_and_an_exit(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        done = newsmon(
            "demo-site", "--pages", str(NEWS_PAGES), "--limit", "2", "--port", port,
            "--write-feeds", str(tmp_path / "feeds.yaml"),
        )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"newsmon: cannot serve the demo on port {port}: Address already in use "
        "(another demo running? DEMO_PORT=… or --port picks another)"
    ]
    assert not (tmp_path / "feeds.yaml").exists()


@pytest.mark.es
def test_syndicated_copies_make_multi_outlet_stories_the_commands_list(
    settings: Settings, news_pages: list[DemoPage]
) -> None:
    pages = news_pages[:10]  # every 5th page copied twice: 2 stories in 3 outlets
    network = DemoNetwork(pages, feed_count=2, every=5).start()
    try:
        Path(settings.feeds_file).write_text(network.feeds_yaml())
        feeds = load_feeds(settings.feeds_file)
        assert [f.id for f in feeds] == [
            "demo-feed1",
            "demo-feed2",
            "copies2-feed1",
            "copies3-feed1",
        ]
        summary = ingest(feeds, settings)
    finally:
        network.stop()
    assert network.page_count == 14
    assert summary.articles["indexed"] == 14
    assert summary.articles["story_new"] == 10
    assert summary.articles["story_exact"] + summary.articles["story_near"] == 4

    env = {"NEWSMON_ES_URL": settings.es_url, "NEWSMON_INDEX_PREFIX": settings.index_prefix}
    listed = newsmon("stories", "--min-outlets", "3", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    stories = json.loads(listed.stdout)
    assert len(stories) == 2
    paths = {p.path for p in (pages[0], pages[5])}  # the copied pages, whichever outlet first
    assert {"/" + s["first_url"].split("/", 3)[3] for s in stories} == paths
    assert all(s["outlet_count"] == 3 and s["short_id"] == s["story_id"][:12] for s in stories)
    table = newsmon("stories", "--since", "1h", env=env)
    assert table.stdout.splitlines()[0].split() == [
        "STORY",
        "OUTLETS",
        "ARTICLES",
        "LAST",
        "SEEN",
        "TITLE",
    ]
    assert len(table.stdout.splitlines()) == 1 + 10

    story = stories[0]
    shown = newsmon("story", story["short_id"][:8], env=env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"story {story['story_id']}: ")
    assert "3 article(s) in 3 outlet(s): 127.0.0.1, 127.0.0.2, 127.0.0.3" in shown.stdout
    article_id = json.loads(newsmon("story", story["story_id"], "--json", env=env).stdout)
    assert len(article_id["articles"]) == 3
    nothing = newsmon("story", "ffffffffffff", env=env)
    assert nothing.returncode == 1
    assert "no story or article with an id starting ffffffffffff" in nothing.stderr

    word = max((w for w in story["title"].split() if w.isalpha()), key=len)
    found = newsmon("search", word, "--json", env=env)
    assert found.returncode == 0, found.stderr
    result = json.loads(found.stdout)
    assert result["total"] >= 3
    assert {a["domain"] for a in result["articles"]} >= {"127.0.0.1", "127.0.0.2", "127.0.0.3"}
    only = json.loads(newsmon("search", word, "--feed", "copies2-feed1", "--json", env=env).stdout)
    assert {a["feed_id"] for a in only["articles"]} == {"copies2-feed1"}
    broken = newsmon("search", "quake AND (x OR", env=env)
    assert broken.returncode == 2
    assert "cannot run the query" in broken.stderr and "Traceback" not in broken.stderr
