"""The ``newsmon`` command, run as a user runs it (a subprocess)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from newsmon.config import Settings
from newsmon.dev.demo import DemoSite

from .helpers.paths import NEWS_PAGES


def newsmon(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "newsmon.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        check=False,
    )


def _truth() -> dict[str, dict[str, str]]:
    return json.loads((NEWS_PAGES / "ground-truth.json").read_text())


def test_extract_prints_one_object_per_input_in_order(tmp_path: Path) -> None:
    truth = _truth()
    ids = sorted(truth)[:3]
    paths = [str(NEWS_PAGES / "html" / f"{i}.html.gz") for i in ids]
    plain = tmp_path / "page.html"
    plain.write_bytes(gzip.decompress(Path(paths[0]).read_bytes()))
    missing = str(tmp_path / "missing.html")

    done = newsmon("extract", "--jsonl", *paths, str(plain), missing)

    lines = done.stdout.splitlines()
    assert done.returncode == 1  # one input failed
    assert len(lines) == 5
    objects = [json.loads(line) for line in lines]
    assert [o["input"] for o in objects] == [*paths, str(plain), missing]
    for obj, page_id in zip(objects[:3], ids, strict=True):
        words = set(truth[page_id]["articleBody"].split())
        got = set(obj["text"].split())
        assert len(words & got) / len(words) > 0.8, page_id
        assert obj["title"] and obj["word_count"] > 50
        assert obj["extraction"] == "full"
    assert objects[3]["text"] == objects[0]["text"]  # .html and .html.gz alike
    assert "error" in objects[4] and "missing.html" in objects[4]["input"]


def test_extract_pretty_json_by_default() -> None:
    page = sorted((NEWS_PAGES / "html").glob("*.html.gz"))[0]
    done = newsmon("extract", str(page), "--url", "https://www.example.com/a/b?utm_source=x")
    assert done.returncode == 0, done.stderr
    obj = json.loads(done.stdout)
    assert obj["url"] == "https://www.example.com/a/b?utm_source=x"
    assert obj["canonical_url"] == "https://example.com/a/b"  # www. and utm_source dropped
    assert done.stdout.count("\n") > 5  # indented


def test_feeds_check_names_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "feeds.yaml"
    bad.write_text(
        "feeds:\n  - id: ok\n    name: OK\n    url: https://a.example/rss\n"
        "  - id: bad\n    name: Bad\n    url: ftp://b.example/rss\n"
    )
    done = newsmon("feeds", "check", "--feeds", str(bad))
    assert done.returncode == 2
    assert f"{bad}:7: feeds[1] (id 'bad').url" in done.stderr
    good = newsmon("feeds", "check")
    assert good.returncode == 0 and "16 feeds" in good.stdout


@pytest.mark.es
def test_run_against_a_loopback_site_indexes_every_article_once(
    settings: Settings, news_pages: list, es: object
) -> None:
    env = {
        "NEWSMON_ES_URL": settings.es_url,
        "NEWSMON_INDEX_PREFIX": settings.index_prefix,
        "NEWSMON_FETCH_ALLOW": "127.0.0.1/32",
    }
    with DemoSite(news_pages[:20], feed_count=2) as site:
        Path(settings.feeds_file).write_text(site.feeds_yaml())
        summary_file = Path(settings.feeds_file).with_suffix(".json")
        first = newsmon(
            "run", "--feeds", settings.feeds_file, "--summary-json", str(summary_file), env=env
        )
        again = newsmon("run", "--feeds", settings.feeds_file, env=env)

    assert first.returncode == 0, first.stderr
    assert "[1/2] feed demo-feed1: fetched, 10 entries" in first.stderr
    assert "articles 20/20 fetched" in first.stderr
    summary = json.loads(summary_file.read_text())
    assert summary["articles"]["indexed"] == 20
    assert summary["feeds"]["fetched"] == 2
    assert again.returncode == 0, again.stderr
    assert "not_modified                2" in again.stdout


def test_run_says_clearly_when_elasticsearch_is_down(tmp_path: Path) -> None:
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds:\n  - id: a\n    name: A\n    url: https://a.example/rss\n")
    done = newsmon("run", "--feeds", str(feeds), env={"NEWSMON_ES_URL": "http://127.0.0.1:9"})
    assert done.returncode == 3
    assert "Elasticsearch at http://127.0.0.1:9 is not reachable" in done.stderr
