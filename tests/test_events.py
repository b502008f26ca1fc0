"""Event matching as pure logic: names and their variants, and the rules that keep stories apart."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from newsmon.config import ConfigError
from newsmon.text.events import EventMatcher, EventRules, names_of, relate, signature, window

WHEN = datetime(2019, 11, 18, 12, tzinfo=UTC)
LEAD = (
    "South Dakota Gov. Kristi Noem's new anti-meth campaign drew ridicule on Monday. "
    "The slogan, \u201cMeth. We're on it,\u201d trended on Twitter across the United States, "
    "and Noem said the attention showed the campaign was working in South Dakota."
)
OTHER = (
    "SIOUX FALLS, S.D. \u2013 People across the nation talked about South Dakota's new "
    "anti-meth campaign led by Gov. Kristi Noem. The slogan, Meth. We're on it, went viral "
    "on Twitter on its first day, and Noem said the campaign was working."
)


def test_names_are_runs_of_capitalised_words_with_their_variants() -> None:
    found = names_of(LEAD)
    assert {"south dakota", "kristi noem", "noem", "kristi", "united states"} <= found
    assert "the" not in found and "monday" not in found  # sentence starts and days are not
    assert "meth" in found  # a capitalised word after a sentence end is kept when not common
    # a headline capitalises every word: only runs of two or more count there
    assert names_of("Rolling Stone: Doobie Brothers", title_case=True) >= {"doobie brothers"}
    assert names_of("Tour Dates", title_case=True) == {"tour dates", "tour", "dates"}
    assert names_of("Dates", title_case=True) == set()
    assert names_of("The F.B.I. said in Washington") >= {"fbi", "washington"}


def _pair() -> tuple:
    a = signature("a", "Argus Leader", "South Dakota's meth campaign goes viral", LEAD, WHEN)
    b = signature("b", "The Hill", "South Dakota doubles down on meth campaign", OTHER, WHEN)
    assert a is not None and b is not None
    return a, b


def test_two_outlets_reports_of_one_campaign_relate() -> None:
    a, b = _pair()
    assert relate(a, b) is not None
    matcher = EventMatcher()
    assert matcher.assign(a) == "a"
    assert matcher.assign(b) == "a"  # joins the first report's event
    assert matcher.assign(b) == "a"  # and stays there


def test_time_titles_and_one_outlet_keep_stories_apart() -> None:
    a, b = _pair()
    assert relate(a, replace(b, when=WHEN + timedelta(hours=73))) is None  # outside 72 h
    assert relate(a, replace(b, title_words=frozenset({"weather"}))) is None  # no title word
    assert relate(a, replace(b, names=frozenset({"twitter"}))) is None  # too few names
    # the same outlet (case aside) needs a closer match than another outlet's report
    strict = EventRules(same_outlet_words=0.9)
    assert relate(a, b, strict) is not None
    assert relate(a, replace(b, outlet="argus leader"), strict) is None


def test_the_window_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert window() == timedelta(hours=72)
    monkeypatch.setenv("NEWSMON_EVENT_WINDOW", "36h")
    assert window() == timedelta(hours=36)
    monkeypatch.setenv("NEWSMON_EVENT_WINDOW", "soon")
    with pytest.raises(ConfigError, match="NEWSMON_EVENT_WINDOW"):
        window()
