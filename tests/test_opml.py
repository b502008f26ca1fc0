"""OPML import: nested outlines and categories become tags, duplicates and bad outlines are
skipped with their line, hostile XML is refused, and ``--into`` keeps the file's comments."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsmon.cli import main
from newsmon.config import ConfigError, load_feeds, parse_feeds
from newsmon.sources.opml import import_opml, parse_opml

from .helpers.paths import FIXTURES

OPML = FIXTURES / "opml"
EXISTING = """\
# Feeds we follow. Keep this comment.
feeds:
  # the BBC
  - id: bbc-world
    name: BBC News — World
    url: https://feeds.bbci.co.uk/news/world/rss.xml
    tags: [world]   # trailing comment
  - id: world
    name: Taken id
    url: https://other.example/rss

# end of list
"""


def _read(name: str) -> bytes:
    return (OPML / name).read_bytes()


def test_outlines_become_feed_entries_with_tags_and_duplicates_are_skipped() -> None:
    result = import_opml(_read("subscriptions.opml"), "subs.opml", parse_feeds(EXISTING))

    got = [(f.id, f.name, f.url, f.tags, f.language) for f in result.feeds]
    assert got == [
        (
            "al-jazeera-all",
            "Al Jazeera — All",
            "https://www.aljazeera.com/xml/rss/all.xml",
            ("news", "world", "middle-east", "wire-services"),
            None,
        ),
        (
            "daily-local-city",
            "Daily Local: City",
            "http://local.example/feed/?utm_source=opml",
            ("news",),
            "en-GB",
        ),
        ("tech-blog", "Tech blog", "https://blog.example.org/atom.xml", (), None),
    ]
    assert result.lines == {"al-jazeera-all": 8, "daily-local-city": 11, "tech-blog": 15}
    assert result.duplicates == [
        (9, "https://feeds.bbci.co.uk/news/world/rss.xml", "bbc-world"),
        (16, "http://LOCAL.example/feed/", "daily-local-city"),
    ]
    problems = [p.render("subs.opml") for p in result.problems]
    assert problems == [
        "subs.opml:13: xmlUrl: 'gopher://old.example/feed': only http and https URLs are supported",
        "subs.opml:14: rss outline without xmlUrl",
    ]


def test_ids_avoid_the_ones_taken() -> None:
    data = b'<opml><body><outline text="World" xmlUrl="https://w.example/rss"/></body></opml>'
    [feed] = import_opml(data, "x.opml", parse_feeds(EXISTING)).feeds
    assert feed.id == "world-2"


@pytest.mark.parametrize(
    ("name", "line"), [("billion-laughs.opml", 3), ("external-entity.opml", 2)]
)
def test_entities_are_refused_before_anything_expands(name: str, line: int) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_opml(_read(name), name)
    assert caught.value.file == name and caught.value.line == line
    assert "entities" in caught.value.reason
    assert "lol" not in str(caught.value).replace("name='lol'", "")  # nothing expanded


def test_broken_xml_names_the_line_and_other_documents_are_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_opml(_read("broken.opml"), "broken.opml")
    assert (caught.value.file, caught.value.line) == ("broken.opml", 6)
    assert "not well-formed" in caught.value.reason
    rss = b'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title></channel></rss>'
    with pytest.raises(ConfigError, match=r"not an OPML document \(root element 'rss'\)"):
        parse_opml(rss, "feed.xml")


def test_cli_appends_to_the_feeds_file_keeping_its_comments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "feeds.yaml"
    target.write_text(EXISTING)
    opml = str(OPML / "subscriptions.opml")

    assert main(["feeds", "import-opml", opml, "--into", str(target)]) == 1  # 2 bad outlines
    err = capsys.readouterr().err
    assert "subscriptions.opml:13: xmlUrl" in err
    assert "already followed: " in err and "(feed bbc-world)" in err
    assert "3 new, 2 already followed, 2 skipped" in err

    text = target.read_text()
    before, _sep, _after = EXISTING.partition("\n# end of list")
    assert text.startswith(before) and text.endswith("\n# end of list\n")
    assert "  # from subscriptions.opml, line 8\n  - id: al-jazeera-all\n" in text
    feeds = load_feeds(target)
    assert [f.id for f in feeds] == [
        "bbc-world",
        "world",
        "al-jazeera-all",
        "daily-local-city",
        "tech-blog",
    ]
    assert feeds[2].tags == ("news", "world", "middle-east", "wire-services")

    # a second import finds everything there already and leaves the file as it is
    assert main(["feeds", "import-opml", opml, "--into", str(target)]) == 1
    assert "0 new, 5 already followed, 2 skipped" in capsys.readouterr().err
    assert target.read_text() == text


def test_cli_prints_entries_ready_to_paste(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    existing = tmp_path / "feeds.yaml"
    existing.write_text(EXISTING)
    data = (
        b'<?xml version="1.0"?>\n<opml version="1.0"><body>\n'
        b'<outline text="Yes: &quot;quoted&quot; #1" xmlUrl="https://q.example/rss"'
        b' category="true"/>\n</body></opml>\n'
    )
    source = tmp_path / "one.opml"
    source.write_bytes(data)

    assert main(["feeds", "import-opml", str(source), "--feeds", str(existing)]) == 0
    out = capsys.readouterr().out
    [feed] = parse_feeds("feeds:\n" + out)
    assert (feed.id, feed.name, feed.tags) == ("yes-quoted-1", 'Yes: "quoted" #1', ("true",))


def test_cli_refuses_a_hostile_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "feeds.yaml"
    target.write_text(EXISTING)
    laughs = str(OPML / "billion-laughs.opml")
    assert main(["feeds", "import-opml", laughs, "--into", str(target)]) == 2
    assert "billion-laughs.opml:3: refused" in capsys.readouterr().err
    assert target.read_text() == EXISTING
