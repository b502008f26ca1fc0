"""Alert rules (YAML), schedules, durations, Kibana links: no Elasticsearch needed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from textwrap import dedent
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsmon.alerts import (
    AlertRule,
    AlertSettings,
    DigestSchedule,
    RuleFilters,
    SmtpSettings,
    compose,
    kibana_link,
    load_rules,
    parse_duration,
    parse_rules,
    rule_query,
)
from newsmon.alerts.deliver import _alert_email
from newsmon.config import ConfigError, Settings

SHIPPED = Path(__file__).resolve().parents[1] / "config" / "alerts.yaml"

GOOD = """
alerts:
  - id: pak-us
    name: Pakistan and the US
    query: Pakistan AND "United States"
    recipients: [desk@example.org]
  - id: floods
    name: Floods
    query: flood*
    filters:
      feeds: [dawn]
      domains: [www.Dawn.com]
      languages: [en, ur-PK]
      tags: [pakistan]
    recipients: [a@example.org, b@example.org]
    mode: digest
    schedule: daily 08:00 Asia/Karachi
    enabled: false
"""


def _error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_rules(dedent(text).lstrip("\n"), "alerts.yaml")
    return info.value


def test_shipped_rules_load_and_the_example_is_about_pakistan_us_defence() -> None:
    rule_set = load_rules(SHIPPED)
    rule = rule_set.get("pak-us-defence")
    assert rule.enabled and rule.mode == "immediate"
    assert "Pakistan" in rule.query and "cricket" in rule.query
    assert rule_set.query_lines["pak-us-defence"] == 8
    digest = rule_set.get("afghanistan-daily")
    assert digest.digest == DigestSchedule("daily", 8, 0, "Asia/Karachi")


def test_parse_rules_fields_and_defaults() -> None:
    rule_set = parse_rules(dedent(GOOD), "alerts.yaml")
    first, second = rule_set.rules
    assert first == AlertRule(
        id="pak-us",
        name="Pakistan and the US",
        query='Pakistan AND "United States"',
        recipients=("desk@example.org",),
    )
    assert first.mode == "immediate" and first.enabled and first.filters == RuleFilters()
    assert second.digest == DigestSchedule("daily", 8, 0, "Asia/Karachi")
    assert [r.id for r in rule_set.enabled()] == ["pak-us"]
    assert rule_set.enabled("digest") == []
    assert rule_set.query_lines == {"pak-us": 5, "floods": 9}
    with pytest.raises(ConfigError, match="no rule 'nope' \\(rules: pak-us, floods\\)"):
        rule_set.get("nope")


def test_rule_query_searches_title_and_text_with_filters() -> None:
    rule = parse_rules(dedent(GOOD)).rules[1]
    query = rule_query(rule, {"range": {"indexed_at": {"gt": "x"}}})
    assert query["bool"]["must"] == [
        {
            "query_string": {
                # a wildcard searches the words as written (folded, not stemmed)
                "query": "(exact.title:flood* OR exact.text:flood*)",
                "fields": ["terms.title", "terms.text"],
                "default_operator": "OR",
                "analyze_wildcard": True,
            }
        }
    ]
    assert query["bool"]["filter"] == [
        {"range": {"indexed_at": {"gt": "x"}}},
        {"terms": {"feed_id": ["dawn"]}},
        {"terms": {"domain": ["dawn.com"]}},  # as newsmon stores domains
        {"terms": {"language": ["en", "ur-PK"]}},
        {"terms": {"tags": ["pakistan"]}},
    ]


# --- mistakes say where --------------------------------------------------------------------------


def test_yaml_syntax_error_has_its_line() -> None:
    err = _error(
        """
        alerts:
          - id: one
            name: One
            query: "unclosed
            recipients: [a@example.org]
        """
    )
    assert err.file == "alerts.yaml" and err.line is not None and err.line >= 4
    assert "invalid YAML" in err.reason


def test_schema_error_names_rule_field_and_line() -> None:
    err = _error(
        """
        alerts:
          - id: one
            name: One
            query: x
            recipients: [a@example.org]
          - id: two
            name: Two
            query: y
            recipients: [not an address]
        """
    )
    assert (err.line, err.field) == (9, "alerts[1] (id 'two').recipients")
    assert "not a single bare email address" in err.reason
    assert str(err).startswith("alerts.yaml:9: alerts[1] (id 'two').recipients: ")


def test_missing_query_points_at_the_rule() -> None:
    err = _error(
        """
        alerts:
          - id: one
            name: One
            recipients: [a@example.org]
        """
    )
    assert (err.line, err.field, err.reason) == (2, "alerts[0] (id 'one').query", "Field required")


def test_unknown_field_in_filters_lists_the_allowed_ones() -> None:
    err = _error(
        """
        alerts:
          - id: one
            name: One
            query: x
            recipients: [a@example.org]
            filters:
              feed: [dawn]
        """
    )
    assert (err.line, err.field) == (7, "alerts[0] (id 'one').filters.feed")
    assert err.reason == "unknown field (allowed: feeds, domains, languages, tags)"


def test_unknown_field_in_a_rule() -> None:
    err = _error(
        """
        alerts:
          - id: one
            name: One
            query: x
            recipients: [a@example.org]
            recipient: [b@example.org]
        """
    )
    assert (err.line, err.field) == (6, "alerts[0] (id 'one').recipient")
    assert err.reason.startswith("unknown field (allowed: id, name, query, filters, recipients,")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("mode: digest", "a digest rule needs a schedule"),
        ("schedule: hourly", "schedule is only for mode: digest"),
        ("mode: digest\n    schedule: weekly", "expected 'hourly [TIME/ZONE]' or 'daily HH:MM"),
        ("mode: digest\n    schedule: daily 25:00", "expected 'hourly"),
        (
            "mode: digest\n    schedule: daily 08:00 Mars/Olympus",
            "unknown time zone 'Mars/Olympus'",
        ),
        ("mode: sometimes", "Input should be 'immediate' or 'digest'"),
    ],
)
def test_mode_and_schedule_mistakes(extra: str, message: str) -> None:
    text = "alerts:\n  - id: one\n    name: One\n    query: x\n    recipients: [a@example.org]\n"
    err = _error(text + "    " + extra + "\n")
    assert message in err.reason
    assert err.field is not None and err.field.startswith("alerts[0] (id 'one')")


@pytest.mark.parametrize(
    "recipient",
    [
        "Desk <desk@example.org>",
        "a@example.org, b@example.org",
        "a@example.org\r\nBcc: evil@example.org",
        "no-at-sign",
    ],
)
def test_recipients_are_single_bare_addresses(recipient: str) -> None:
    with pytest.raises(ValueError, match="bare email address"):
        AlertRule(id="x", name="x", query="x", recipients=(recipient,))


def test_duplicate_rule_id_and_duplicate_key() -> None:
    err = _error(
        """
        alerts:
          - id: one
            name: One
            query: x
            recipients: [a@example.org]
          - id: one
            name: Again
            query: y
            recipients: [a@example.org]
        """
    )
    assert (err.line, err.field) == (6, "alerts[1].id")
    assert "duplicate rule id 'one'" in err.reason
    err = _error(
        """
        alerts:
          - id: one
            name: One
            query: x
            query: y
            recipients: [a@example.org]
        """
    )
    assert (err.line, err.field) == (5, "alerts[0].query")
    assert "duplicate key 'query'" in err.reason


def test_empty_file_and_wrong_top_level_key() -> None:
    assert "expected a 'alerts:' list" in _error("\n").reason
    err = _error("alerts: []\nalert: []\n")
    assert (err.line, err.field) == (2, "alert")
    assert err.reason == "unknown field (allowed: alerts)"


# --- digest schedules ------------------------------------------------------------------------


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_daily_schedule_in_a_time_zone() -> None:
    karachi = DigestSchedule.parse("daily 08:00 Asia/Karachi")  # UTC+5, 03:00 UTC
    assert karachi.next_after(_utc(2026, 5, 1, 2, 59)) == _utc(2026, 5, 1, 3, 0)
    assert karachi.next_after(_utc(2026, 5, 1, 3, 0)) == _utc(2026, 5, 2, 3, 0)  # strictly after
    assert karachi.previous(_utc(2026, 5, 2, 3, 0)) == _utc(2026, 5, 1, 3, 0)
    assert str(karachi) == "daily 08:00 Asia/Karachi"


def test_daily_schedule_follows_summer_time() -> None:
    london = DigestSchedule.parse("daily  07:30  Europe/London")
    assert london.next_after(_utc(2026, 3, 28, 12)) == _utc(2026, 3, 29, 6, 30)  # BST starts
    assert london.next_after(_utc(2026, 3, 27, 12)) == _utc(2026, 3, 28, 7, 30)  # still GMT


def test_hourly_schedule() -> None:
    hourly = DigestSchedule.parse("hourly")
    assert hourly == DigestSchedule("hourly", timezone="UTC")
    assert hourly.next_after(_utc(2026, 5, 1, 10, 20)) == _utc(2026, 5, 1, 11)
    assert hourly.previous(_utc(2026, 5, 1, 11)) == _utc(2026, 5, 1, 10)
    kolkata = DigestSchedule.parse("hourly Asia/Kolkata")  # on the local hour: :30 UTC
    assert kolkata.next_after(_utc(2026, 5, 1, 10, 20)) == _utc(2026, 5, 1, 10, 30)


# --- settings and helpers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90s", timedelta(seconds=90)), ("15m", timedelta(minutes=15)), ("7d", timedelta(days=7))],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["7", "d", "-1d", "7 days", ""])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_alert_settings_from_env() -> None:
    settings = Settings(config_dir="/etc/newsmon")
    default = AlertSettings.from_env(settings, {})
    assert default.rules_file == "/etc/newsmon/alerts.yaml"
    assert default.kibana_url is None and default.lag == timedelta(seconds=15)
    custom = AlertSettings.from_env(
        settings,
        {
            "NEWSMON_ALERTS": "/tmp/rules.yaml",
            "NEWSMON_KIBANA_URL": "https://kibana.example.org/",
            "NEWSMON_ALERTS_LAG": "30s",
            "NEWSMON_ALERTS_FIRST_LOOKBACK": "2h",
        },
    )
    assert custom.rules_file == "/tmp/rules.yaml"
    assert custom.kibana_url == "https://kibana.example.org"
    assert (custom.lag, custom.first_lookback) == (timedelta(seconds=30), timedelta(hours=2))
    with pytest.raises(ConfigError, match="NEWSMON_KIBANA_URL"):
        AlertSettings.from_env(settings, {"NEWSMON_KIBANA_URL": "javascript:alert(1)"})
    with pytest.raises(ConfigError, match="NEWSMON_ALERTS_LAG"):
        AlertSettings.from_env(settings, {"NEWSMON_ALERTS_LAG": "soon"})


def test_kibana_link_runs_the_rule_query_with_its_filters() -> None:
    rule = AlertRule(
        id="x",
        name="x",
        query='Pakistan AND authors:"O\'Neil!" NOT cricket',
        filters=RuleFilters(feeds=("dawn",), languages=("en",)),
        recipients=("a@example.org",),
    )
    assert kibana_link(rule, None) is None
    link = kibana_link(rule, "https://kibana.example.org", data_view="news-id")
    assert link is not None and link.startswith("https://kibana.example.org/app/discover#/?_g=")
    state = unquote(link)
    assert "_g=(time:(from:now-7d,to:now))" in state
    assert "dataSource:(dataViewId:'news-id',type:dataView)" in state
    # the query as alerts run it (words normalised); rison: ' and ! are escaped with !; the
    # filters are added in Lucene syntax
    assert (
        "query:(language:lucene,query:'((terms.title:pakistan OR terms.text:pakistan)"
        ' AND authors:"O!\'Neil!!" NOT (terms.title:cricket OR terms.text:cricket))'
        ' AND feed_id:("dawn") AND language:("en")\')' in state
    )
    assert " " not in link and '"' not in link


# --- from ledger documents to an email: nothing from articles or rules reaches the headers ------

_nasty = st.text(
    st.sampled_from(list("aZ09 <>&\"'=?:;,@\r\n\t\u2028\u202e\x00é中")) | st.characters(),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(title=_nasty, rule_name=_nasty, snippet=_nasty, outlet=_nasty, url=_nasty)
def test_property_ledger_text_cannot_add_headers_or_recipients(
    title: str, rule_name: str, snippet: str, outlet: str, url: str
) -> None:
    items = [
        {
            "_id": "d1",
            "rule_id": "quakes",
            "rule_name": rule_name,
            "query": "earthquake",
            "recipients": ["desk@example.org"],
            "mode": "immediate",
            "story_id": "s1",
            "title": title,
            "url": url,
            "outlet": outlet,
            "published_at": "2026-05-01T10:00:00.000Z",
            "snippets": [f"<em>{snippet}</em> {snippet}"],
            "also_in": 2,
        }
    ]
    message = compose(
        _alert_email("quakes/immediate/x", items, None),
        SmtpSettings(sender="alerts@newsmon.test"),
        now=datetime(2026, 5, 1, tzinfo=UTC),
    )
    raw = message.as_bytes()
    head = raw.split(b"\n\n", 1)[0].decode("ascii")
    names = [line.split(":", 1)[0] for line in head.splitlines() if not line[:1].isspace()]
    assert names == [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "X-Newsmon-Rule",
        "Auto-Submitted",
        "MIME-Version",
        "Content-Type",
    ]
    assert message["To"] == "desk@example.org"
