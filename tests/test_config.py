"""Feed list (YAML) and settings (environment): good config loads, mistakes say where."""

from __future__ import annotations

from ipaddress import ip_network
from pathlib import Path
from textwrap import dedent

import pytest

from newsmon.config import (
    USER_AGENT,
    ConfigError,
    FeedConfig,
    FetchSettings,
    Settings,
    load_feeds,
    parse_feeds,
)
from newsmon.urls import canonical_url

SHIPPED = Path(__file__).resolve().parents[1] / "config" / "feeds.yaml"


def _error(text: str, source: str = "feeds.yaml") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_feeds(dedent(text).lstrip("\n"), source)
    return info.value


# --- the shipped feed list -----------------------------------------------------------------------


def test_shipped_feeds_load() -> None:
    feeds = load_feeds(SHIPPED)
    assert len(feeds) >= 15
    ids = [f.id for f in feeds]
    assert len(set(ids)) == len(ids)
    assert {"bolnews", "dawn"} <= set(ids)
    by_id = {f.id: f for f in feeds}
    assert by_id["bolnews"].url == "https://www.bolnews.com/feed/"
    assert by_id["bolnews"].name == "BOL News"
    assert by_id["bolnews"].language == "en"
    assert by_id["bolnews"].tags == ("pakistan",)
    assert by_id["dawn"].url == "https://www.dawn.com/feeds/home"
    for feed in feeds:
        assert isinstance(feed, FeedConfig)
        assert feed.url.startswith(("https://", "http://")), feed.id
        assert canonical_url(feed.url)
        assert feed.name
    # no two feeds point at the same URL
    assert len({canonical_url(f.url) for f in feeds}) == len(feeds)


# --- a good document -----------------------------------------------------------------------------


def test_parse_feeds_fields_and_defaults() -> None:
    feeds = parse_feeds(
        dedent(
            """
            feeds:
              - id: one
                url: https://one.example/feed
                name: "  One  "
              - id: two.b_c-d
                url: http://two.example/rss.xml
                name: Two
                language: ur-PK
                tags: [pakistan, urdu]
                enabled: false
            """
        )
    )
    assert feeds == [
        FeedConfig(id="one", url="https://one.example/feed", name="One"),
        FeedConfig(
            id="two.b_c-d",
            url="http://two.example/rss.xml",
            name="Two",
            language="ur-PK",
            tags=("pakistan", "urdu"),
            enabled=False,
        ),
    ]
    assert feeds[0].language is None
    assert feeds[0].tags == ()
    assert feeds[0].enabled is True


def test_empty_feed_list_is_allowed() -> None:
    assert parse_feeds("feeds: []\n") == []


# --- mistakes: file, line, field -----------------------------------------------------------------


def test_bad_yaml_syntax_names_the_line() -> None:
    err = _error(
        """
        feeds:
          - id: one
            url: https://one.example/feed
            name: One
          - id: [two
            name: Two
        """
    )
    assert err.file == "feeds.yaml"
    assert err.line == 6
    assert err.field is None
    assert "invalid YAML" in str(err)
    assert str(err).startswith("feeds.yaml:6: invalid YAML")


def test_bad_indentation_names_the_line() -> None:
    err = _error(
        """
        feeds:
          - id: one
            url: https://one.example/feed
           name: One
        """
    )
    assert (err.file, err.line) == ("feeds.yaml", 4)


def test_tab_indentation_names_the_line() -> None:
    err = _error("feeds:\n  - id: one\n\turl: https://one.example/\n")
    assert (err.file, err.line) == ("feeds.yaml", 3)


def test_missing_url() -> None:
    err = _error(
        """
        feeds:
          - id: one
            url: https://one.example/feed
            name: One
          - id: two
            name: Two
        """
    )
    assert err.file == "feeds.yaml"
    assert err.line == 5  # the entry that lacks it
    assert err.field == "feeds[1] (id 'two').url"
    assert err.reason == "Field required"
    assert str(err) == "feeds.yaml:5: feeds[1] (id 'two').url: Field required"


def test_bad_url_scheme() -> None:
    err = _error(
        """
        feeds:
          - id: one
            url: https://one.example/feed
            name: One
          - id: two
            name: Two
            url: ftp://two.example/feed.xml
        """
    )
    assert err.line == 7
    assert err.field == "feeds[1] (id 'two').url"
    assert "only http and https" in err.reason
    assert "ftp://two.example/feed.xml" in str(err)


def test_url_that_is_not_a_url() -> None:
    err = _error(
        """
        feeds:
          - id: one
            url: www.one.example/feed
            name: One
        """
    )
    assert (err.line, err.field) == (3, "feeds[0] (id 'one').url")


def test_unknown_field_typo() -> None:
    err = _error(
        """
        feeds:
          - id: one
            url: https://one.example/feed
            name: One
          - id: two
            name: Two
            url: https://two.example/feed
            urll: https://two.example/feed
        """
    )
    assert err.line == 8  # the line of the unknown key itself
    assert err.field == "feeds[1] (id 'two').urll"
    assert err.reason == "unknown field (allowed: id, url, name, language, tags, enabled, type)"


def test_unknown_top_level_field() -> None:
    err = _error(
        """
        feeds: []
        fedds: []
        """
    )
    assert (err.line, err.field) == (2, "fedds")
    assert err.reason == "unknown field (allowed: feeds)"


def test_duplicate_id_points_at_the_second() -> None:
    err = _error(
        """
        feeds:
          - id: one
            url: https://one.example/feed
            name: One
          - id: two
            url: https://two.example/feed
            name: Two
          - name: One again
            id: one
            url: https://three.example/feed
        """
    )
    assert err.line == 9
    assert err.field == "feeds[2].id"
    assert "duplicate feed id 'one'" in err.reason
    assert "feeds[0]" in err.reason


def test_duplicate_key_in_one_feed() -> None:
    # YAML loaders keep the last of two equal keys; a copy-paste slip must not pass silently
    err = _error(
        """
        feeds:
          - id: one
            url: https://one.example/feed
            name: One
            url: https://other.example/feed
        """
    )
    assert err.line == 5
    assert err.field == "feeds[0].url"
    assert "duplicate key 'url'" in err.reason


@pytest.mark.parametrize(
    ("tags", "field"),
    [
        ("pakistan", "feeds[0] (id 'one').tags"),
        ("{a: 1}", "feeds[0] (id 'one').tags"),
        ("[world, [nested]]", "feeds[0] (id 'one').tags[1]"),
        ("[world, '']", "feeds[0] (id 'one').tags[1]"),
    ],
)
def test_wrong_type_for_tags(tags: str, field: str) -> None:
    err = _error(
        f"""
        feeds:
          - id: one
            url: https://one.example/feed
            name: One
            tags: {tags}
        """
    )
    assert (err.line, err.field) == (5, field)


@pytest.mark.parametrize(
    ("line", "field", "snippet"),
    [
        ("id: One Feed", "id", "pattern"),
        ("language: english", "language", "pattern"),
        ("enabled: maybe", "enabled", "boolean"),
        ("name: ''", "name", "at least 1"),
    ],
)
def test_bad_values(line: str, field: str, snippet: str) -> None:
    key = line.split(":", 1)[0]
    base = {"id": "id: one", "url": "url: https://one.example/", "name": "name: One"}
    base[key] = line
    text = "feeds:\n  - " + "\n    ".join(base.values()) + "\n"
    with pytest.raises(ConfigError) as info:
        parse_feeds(text, "f.yaml")
    err = info.value
    assert err.field is not None and err.field.endswith(f").{field}")
    assert err.line == 2 + list(base).index(key)
    assert snippet in err.reason


def test_several_problems_are_counted() -> None:
    err = _error(
        """
        feeds:
          - id: one
            name: One
          - id: two
            name: Two
        """
    )
    assert (err.line, err.field) == (2, "feeds[0] (id 'one').url")
    assert err.reason == "Field required (and 1 more problem)"


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_empty_file(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_feeds(text, "feeds.yaml")
    assert info.value.file == "feeds.yaml"
    assert "empty" in info.value.reason


def test_feeds_key_without_list() -> None:
    err = _error("feeds:\n")
    assert (err.line, err.field) == (1, "feeds")
    assert "valid list" in err.reason


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_feeds(path)
    assert info.value.file == str(path)
    assert info.value.line is None
    assert "No such file" in str(info.value)
    assert str(info.value).startswith(f"{path}: cannot read feeds file")


def test_load_feeds_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text("feeds:\n  - id: one\n    url: gopher://x/\n    name: One\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_feeds(path)
    assert (info.value.file, info.value.line) == (str(path), 3)
    assert str(info.value).startswith(f"{path}:3: feeds[0] (id 'one').url: ")


def test_load_feeds_rejects_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_bytes(b"feeds:\n  - id: caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load_feeds(path)
    assert info.value.file == str(path)
    assert "UTF-8" in info.value.reason


def test_load_feeds_accepts_a_good_file(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text("feeds:\n  - id: one\n    url: https://x.example/\n    name: One\n")
    assert [f.id for f in load_feeds(str(path))] == ["one"]


# --- settings from the environment ---------------------------------------------------------------

ES = {"NEWSMON_ES_URL": "http://es.example:9200"}


def test_settings_defaults() -> None:
    settings = Settings.from_env(ES)
    assert settings.es_url == "http://es.example:9200"
    assert settings.es_username is None
    assert settings.es_password is None
    assert settings.es_api_key is None
    assert settings.es_verify_certs is True
    assert settings.index_prefix == "newsmon-"
    assert settings.feeds_file == str(Path(settings.config_dir) / "feeds.yaml")
    assert settings.ingest_schedule == "*/15 * * * *"
    assert settings.feed_batch_size == 5
    assert settings.fetch == FetchSettings()
    assert settings.fetch.user_agent == USER_AGENT
    assert settings.fetch.allow_networks == ()
    assert settings.fetch.max_bytes == 8 * 1024 * 1024
    assert settings.fetch.max_redirects == 5
    assert settings.fetch.deadline == 30.0


def test_settings_without_es_url_still_has_one() -> None:
    assert Settings.from_env({}).es_url.startswith("http://127.0.0.1:")


def test_settings_from_values() -> None:
    settings = Settings.from_env(
        {
            **ES,
            "NEWSMON_ES_USERNAME": "elastic",
            "NEWSMON_ES_PASSWORD": "pw",
            "NEWSMON_ES_VERIFY_CERTS": "off",
            "NEWSMON_INDEX_PREFIX": "test-1.",
            "NEWSMON_CONFIG_DIR": "/etc/newsmon",
            "NEWSMON_READ_TIMEOUT": "2.5",
            "NEWSMON_MAX_BYTES": "1e6",
            "NEWSMON_MAX_REDIRECTS": "0",
            "NEWSMON_FETCH_WORKERS": " 3 ",
            "NEWSMON_USER_AGENT": "probe/1",
            "NEWSMON_FEED_BATCH_SIZE": "",  # blank means default
        }
    )
    assert settings.es_username == "elastic"
    assert settings.es_password == "pw"
    assert settings.es_verify_certs is False
    assert settings.index_prefix == "test-1."
    assert settings.config_dir == "/etc/newsmon"
    assert settings.feeds_file == "/etc/newsmon/feeds.yaml"
    assert settings.feed_batch_size == 5
    assert settings.fetch.read_timeout == 2.5
    assert settings.fetch.max_bytes == 1_000_000
    assert settings.fetch.max_redirects == 0
    assert settings.fetch.workers == 3
    assert settings.fetch.user_agent == "probe/1"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("127.0.0.1/32, ::1", (ip_network("127.0.0.1/32"), ip_network("::1/128"))),
        ("127.0.0.1", (ip_network("127.0.0.1/32"),)),
        ("10.1.2.3/8; 192.168.0.0/16,", (ip_network("10.0.0.0/8"), ip_network("192.168.0.0/16"))),
        (" , ", ()),
        ("", ()),
    ],
)
def test_fetch_allow_parsing(raw: str, expected: tuple[object, ...]) -> None:
    settings = Settings.from_env({**ES, "NEWSMON_FETCH_ALLOW": raw})
    assert settings.fetch.allow_networks == expected


@pytest.mark.parametrize("raw", ["localhost", "300.1.1.1", "127.0.0.1/33", "127.0.0.1 ::1"])
def test_fetch_allow_rejects_non_addresses(raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({**ES, "NEWSMON_FETCH_ALLOW": raw})
    assert info.value.field == "NEWSMON_FETCH_ALLOW"
    assert info.value.file == "environment"
    assert "not an IP address or CIDR" in info.value.reason


@pytest.mark.parametrize(
    ("name", "raw", "snippet"),
    [
        ("NEWSMON_READ_TIMEOUT", "abc", "must be a number"),
        ("NEWSMON_READ_TIMEOUT", "0", "at least"),
        ("NEWSMON_CONNECT_TIMEOUT", "-1", "at least"),
        ("NEWSMON_CONNECT_TIMEOUT", "nan", "finite"),
        ("NEWSMON_FETCH_DEADLINE", "inf", "finite"),
        ("NEWSMON_FETCH_DEADLINE", "30s", "must be a number"),
        ("NEWSMON_MAX_BYTES", "8MB", "must be a number"),
        ("NEWSMON_MAX_BYTES", "0.5", "at least 1"),
        ("NEWSMON_MAX_BYTES", "1000.5", "whole number"),
        ("NEWSMON_MAX_BYTES", "1e400", "finite"),
        ("NEWSMON_MAX_REDIRECTS", "-1", "at least 0"),
        ("NEWSMON_FETCH_WORKERS", "0", "at least 1"),
        ("NEWSMON_FETCH_WORKERS", "2.7", "whole number"),
        ("NEWSMON_FETCH_PER_HOST", "two", "must be a number"),
        ("NEWSMON_FEED_BATCH_SIZE", "0", "at least 1"),
        ("NEWSMON_ES_VERIFY_CERTS", "nope", "true or false"),
    ],
)
def test_bad_numbers_name_the_variable(name: str, raw: str, snippet: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({**ES, name: raw})
    err = info.value
    assert err.field == name
    assert err.file == "environment"
    assert snippet in err.reason
    assert repr(raw) in str(err)
    assert str(err).startswith(f"environment: {name}: ")


@pytest.mark.parametrize("prefix", ["News-", "_x", "-x", "a b", "x" * 42, "ü"])
def test_bad_index_prefix(prefix: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({**ES, "NEWSMON_INDEX_PREFIX": prefix})
    assert info.value.field == "NEWSMON_INDEX_PREFIX"
    assert info.value.file == "environment"


def test_config_error_message_format() -> None:
    err = ConfigError("boom", file="f.yaml", line=3, field="feeds[0].url")
    assert str(err) == "f.yaml:3: feeds[0].url: boom"
    assert (err.file, err.line, err.field, err.reason) == ("f.yaml", 3, "feeds[0].url", "boom")
    assert str(ConfigError("boom")) == "boom"
    assert isinstance(err, ValueError)
