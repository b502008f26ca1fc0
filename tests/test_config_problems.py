"""A configuration file's mistakes all at once, each as ``file:line: field: message``."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from newsmon.alerts import parse_rules
from newsmon.config import ConfigError, parse_feeds

from .helpers.cli import newsmon

FEEDS = """\
feeds:
  - id: dawn
    name: Dawn
    url: https://www.dawn.com/feeds/home
  - id: dawn-again
    name: Dawn again
    url: https://dawn.com/feeds/home/
  - id: bad
    name: Bad
    url: ftp://x.example/rss
  - id: typo
    nam: Typo
    url: https://b.example/rss
  - id: dawn
    name: Second dawn
    url: https://c.example/rss
"""


def _error(text: str, parse: object = parse_feeds, source: str = "feeds.yaml") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(dedent(text), source)  # type: ignore[operator]
    return info.value


def test_every_problem_of_a_file_is_reported_in_its_order() -> None:
    err = _error(FEEDS)
    assert err.lines() == [
        "feeds.yaml:7: feeds[1] (id 'dawn-again').url: the same URL as feeds[0] (id 'dawn'): "
        "each feed once, with one id",
        "feeds.yaml:10: feeds[2] (id 'bad').url: Value error, 'ftp://x.example/rss': only http "
        "and https URLs are supported",
        "feeds.yaml:12: feeds[3] (id 'typo').nam: unknown field (allowed: id, url, name, "
        "language, tags, enabled, type)",
        "feeds.yaml:11: feeds[3] (id 'typo').name: Field required",
        "feeds.yaml:14: feeds[4].id: duplicate feed id 'dawn' (first used by feeds[0])",
    ]
    # the error itself is the first problem, counting the rest (one line where one fits)
    assert (err.file, err.line, err.field) == ("feeds.yaml", 7, "feeds[1] (id 'dawn-again').url")
    assert err.reason.endswith("(and 4 more problems)")


def test_one_problem_is_one_error() -> None:
    err = _error("feeds:\n  - id: a\n    name: A\n    url: https://a.example/rss\n    tag: [x]\n")
    assert err.problems == (err,)
    assert err.lines() == [
        "feeds.yaml:5: feeds[0] (id 'a').tag: unknown field (allowed: id, url, name, language, "
        "tags, enabled, type)"
    ]


def test_duplicate_keys_are_all_reported() -> None:
    err = _error(
        "feeds:\n  - id: a\n    id: b\n    name: A\n    url: https://a.example/rss\n"
        "  - id: c\n    name: C\n    name: D\n    url: https://c.example/rss\n"
    )
    assert [line.split(": ", 1)[0] for line in err.lines()] == ["feeds.yaml:3", "feeds.yaml:8"]
    assert all("duplicate key" in line for line in err.lines())


def test_a_misspelt_recipients_field_says_unknown_field_first() -> None:
    err = _error(
        """\
        alerts:
          - id: one
            name: One
            query: quake
            recipient: [a@example.org]
        """,
        parse_rules,
        "alerts.yaml",
    )
    assert err.field == "alerts[0] (id 'one').recipient"
    assert err.reason.startswith("unknown field (allowed: ")
    assert err.lines()[1] == "alerts.yaml:2: alerts[0] (id 'one').recipients: Field required"


def test_the_cli_lists_every_problem(tmp_path: Path) -> None:
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(FEEDS)
    for command in (["feeds", "check"], ["run"]):  # run applies exactly the checks check does
        done = newsmon(
            *command, "--feeds", str(feeds), env={"NEWSMON_ES_URL": "http://127.0.0.1:9"}
        )
        assert done.returncode == 2, done.stderr
        lines = done.stderr.splitlines()
        assert lines[0] == f"newsmon: configuration error: 5 problems in {feeds}"
        assert lines[1].startswith(f"{feeds}:7: feeds[1] (id 'dawn-again').url: the same URL")
        assert lines[3].startswith(f"{feeds}:12: feeds[3] (id 'typo').nam: unknown field")
        assert len(lines) == 6
