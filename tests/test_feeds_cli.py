"""``newsmon feeds add / disable / enable / export-opml`` on real files and a loopback site."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from newsmon.cli import main
from newsmon.config import load_feeds
from newsmon.dev.demo import DemoSite, render_atom
from newsmon.sources.opml import import_opml

ITEM = datetime(2026, 11, 1, tzinfo=UTC)
FEEDS = """# our feeds: keep this comment
feeds:
  - id: dawn   # the first one
    name: Dawn
    url: https://www.dawn.com/feeds/home
    tags: [pakistan]

  # a section comment
  - id: geo
    name: Geo
    url: https://www.geo.tv/rss/1/1
    enabled: true  # trailing comment
# the end
"""


@pytest.fixture
def feeds_file(tmp_path: Path) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(FEEDS)
    return path


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Iterator[DemoSite]:
    monkeypatch.setenv("NEWSMON_FETCH_ALLOW", "127.0.0.0/8")
    with DemoSite([], feed_count=0) as served:
        base = served.base_url
        served.add_page(
            "/",
            b'<html><head><title>Home</title><link rel="alternate" '
            b'type="application/atom+xml" href="/atom.xml"></head><body>x</body></html>',
        )
        served.add_page(
            "/atom.xml",
            render_atom("Local News", base, [(f"{base}/a/1", "One", ITEM)]),
            "application/atom+xml",
        )
        served.add_page("/broken.xml", b"<html><body>not a feed</body></html>", "text/xml")
        yield served


def test_add_discovers_validates_and_appends_keeping_comments(
    site: DemoSite, feeds_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["feeds", "add", site.base_url + "/", "--feeds", str(feeds_file), "--tags", "local, x"]
    )
    assert code == 0
    assert capsys.readouterr().out.strip() == "local-news"
    text = feeds_file.read_text()
    assert text.startswith(FEEDS.split("# the end")[0])  # everything before stays as it was
    assert "# our feeds: keep this comment" in text and "# the end" in text
    added = load_feeds(feeds_file)[-1]
    assert (added.id, added.name, added.url, added.tags) == (
        "local-news",
        "Local News",
        site.base_url + "/atom.xml",
        ("local", "x"),
    )
    # the same feed again: refused, the file unchanged
    assert main(["feeds", "add", site.base_url + "/atom.xml", "--feeds", str(feeds_file)]) == 1
    assert "already followed" in capsys.readouterr().err
    assert feeds_file.read_text() == text


def test_add_with_an_id_and_the_errors(
    site: DemoSite, feeds_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = feeds_file.read_text()
    url = site.base_url + "/atom.xml"
    assert main(["feeds", "add", url, "--feeds", str(feeds_file), "--id", "dawn"]) == 2
    assert "id 'dawn' is taken" in capsys.readouterr().err
    assert main(["feeds", "add", url, "--feeds", str(feeds_file), "--id", "Bad Id"]) == 2
    assert "id" in capsys.readouterr().err
    broken = site.base_url + "/broken.xml"
    assert main(["feeds", "add", broken, "--feeds", str(feeds_file), "--no-probe"]) == 1
    assert "no feed found" in capsys.readouterr().err
    assert feeds_file.read_text() == before
    assert main(["feeds", "add", url, "--feeds", str(feeds_file), "--id", "mine"]) == 0
    assert [f.id for f in load_feeds(feeds_file)] == ["dawn", "geo", "mine"]


def test_disable_and_enable_change_one_line(feeds_file: Path) -> None:
    assert main(["feeds", "disable", "dawn", "--feeds", str(feeds_file)]) == 0
    assert main(["feeds", "disable", "geo", "--feeds", str(feeds_file)]) == 0
    text = feeds_file.read_text()
    assert text == FEEDS.replace(
        "    tags: [pakistan]\n", "    tags: [pakistan]\n    enabled: false\n"
    ).replace("enabled: true  # trailing comment", "enabled: false  # trailing comment")
    assert [f.enabled for f in load_feeds(feeds_file)] == [False, False]
    assert main(["feeds", "disable", "geo", "--feeds", str(feeds_file)]) == 0  # already: no-op
    assert feeds_file.read_text() == text
    assert main(["feeds", "enable", "geo", "--feeds", str(feeds_file)]) == 0
    assert [f.enabled for f in load_feeds(feeds_file)] == [False, True]


def test_disable_an_unknown_id_names_the_file(
    feeds_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["feeds", "disable", "nope", "--feeds", str(feeds_file)]) == 2
    err = capsys.readouterr().err
    assert str(feeds_file) in err and "no feed with id 'nope'" in err
    assert feeds_file.read_text() == FEEDS


def test_export_opml_round_trips_through_import(
    feeds_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["feeds", "export-opml", "--feeds", str(feeds_file)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith('<?xml version="1.0" encoding="utf-8"?>\n<opml version="2.0">')
    imported = import_opml(printed.encode(), "exported.opml")
    assert imported.problems == []
    assert [(f.name, f.url, f.tags) for f in imported.feeds] == [
        ("Dawn", "https://www.dawn.com/feeds/home", ("pakistan",)),
        ("Geo", "https://www.geo.tv/rss/1/1", ()),
    ]
    main(["feeds", "disable", "geo", "--feeds", str(feeds_file)])
    out = tmp_path / "out.opml"
    assert main(["feeds", "export-opml", "--feeds", str(feeds_file), "-o", str(out)]) == 0
    assert [f.name for f in import_opml(out.read_bytes()).feeds] == ["Dawn"]
    assert main(["feeds", "export-opml", "--feeds", str(feeds_file), "-o", str(out), "--all"]) == 0
    assert [f.name for f in import_opml(out.read_bytes()).feeds] == ["Dawn", "Geo"]
