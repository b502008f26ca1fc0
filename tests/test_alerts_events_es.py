"""Alerts by event on the real node and a real SMTP server: real pages of different outlets,
ingested into stories and events, then alerted — one entry per event with its outlets, and
``once_per: event`` sending an event once (docs/events.md, "Alerts by event")."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from newsmon.alerts import AlertSettings, SmtpSettings, deliver, run_alerts
from newsmon.alerts.actions import Action, apply
from newsmon.alerts.links import LinkSettings
from newsmon.config import Settings, load_feeds
from newsmon.dev.demo import DemoPage
from newsmon.pipeline import ingest
from newsmon.store import IndexNames

from .helpers.alerts import ledger_docs, rules_from
from .helpers.events import DOOBIE, PLAGUE, STADIA, STADIA_GUIDE, Outlets, pages_of
from .helpers.smtp import Handler, Received, plain_text

pytestmark = pytest.mark.es

FAST = AlertSettings(lag=timedelta(0))
LINKS = LinkSettings("https://airflow.example.org/newsmon", b"0123456789abcdef-secret")
PLAGUE_OUTLETS = ("New York Post", "Smithsonian", "The Sun", "Express")


@pytest.fixture
def outlets(settings: Settings, news_pages: list[DemoPage]) -> Iterator[Outlets]:
    """Every page its own outlet; sites 0-3 the plague reports, 4-6 the Doobie Brothers, 7 a
    piece on Stadia that is no report of its launch, 8 (empty) for the Stadia launch."""
    pages = pages_of(news_pages, (*PLAGUE, *DOOBIE, STADIA_GUIDE))
    served = Outlets(settings, [*([p] for p in pages), []])
    yield served
    served.stop()


def _entries(received: Received) -> list[str]:
    """An email's numbered entries: each from its number to the first story beneath it (an
    event's) or its end, lines joined."""
    found = re.findall(r"^\d+\. (.+?)(?=\n   - |\n\n|\n-- )", plain_text(received), re.M | re.S)
    return [" ".join(part.strip() for part in entry.splitlines()) for entry in found]


def _grouped(received: Received) -> list[str]:
    """The titles of the stories listed beneath an event's entry."""
    return re.findall(r"^   - (.+)$", plain_text(received), re.MULTILINE)


def _by_rule(handler: Handler) -> dict[str, Received]:
    return {str(r.message["X-Newsmon-Rule"]): r for r in handler.received}


def _html(received: Received) -> str:
    body = received.message.get_body(("html",))
    assert body is not None
    return str(body.get_content())


def _event_ids(es: Elasticsearch, names: IndexNames) -> dict[str, str]:
    """story id -> event id, from the events index."""
    index = names.index("events")
    es.indices.refresh(index=index)
    hits = es.search(index=index, size=500, query={"match_all": {}})["hits"]["hits"]
    return {s: h["_id"] for h in hits for s in h["_source"]["story_ids"]}


def test_an_email_lists_an_events_stories_as_one_entry_with_its_outlets(
    es: Elasticsearch,
    settings: Settings,
    names: IndexNames,
    news_pages: list[DemoPage],
    outlets: Outlets,
    smtp: tuple[Handler, SmtpSettings],
    tmp_path: Path,
) -> None:
    handler, smtp_settings = smtp
    summary = ingest(load_feeds(settings.feeds_file), settings, client=es)
    assert summary.articles["indexed"] == 8 and summary.articles["event_joined"] == 5
    rule_set = rules_from(
        "alerts:\n"
        "  - {id: plague, name: Plague, query: plague, recipients: [desk@example.org]}\n"
        "  - {id: both, name: Plague and music, query: 'plague OR Doobie',"
        " recipients: [desk@example.org]}\n"
        "  - {id: muted, name: Plague (one muted), query: plague, recipients: [desk@example.org]}\n"
    )
    sun = outlets.ids[PLAGUE[2]]  # each page here starts its story: article id = story id
    apply(es, names, Action("mute", "muted", story_id=sun))

    report = run_alerts(es, names, rule_set, FAST, smtp_settings, links=LINKS)

    assert report.problems == [] and report.counts["emails_sent"] == 3
    sent = _by_rule(handler)
    plague = sent["plague"]
    text = plain_text(plague)
    (tmp_path / "plague.txt").write_text(text)
    (tmp_path / "plague.html").write_text(_html(plague))
    print(text)  # how the email reads (pytest -s)
    [entry] = _entries(plague)  # four stories, one entry: the event, its four outlets
    assert re.search(r"(?i)plague.* — 4 outlets:", entry)
    listed = entry.partition(" — 4 outlets: ")[2].split(", ")
    assert len(listed) == 4 and all(any(n in o for o in listed) for n in PLAGUE_OUTLETS)
    assert len(_grouped(plague)) == 4
    flat = " ".join(text.split())
    decisions = ledger_docs(es, names, rule_id="plague", kind="story")
    assert len(decisions) == 4 and all(f"- {d['title']} " in flat for d in decisions)
    assert text.count("Mute this story:") == 4  # each story can still be muted on its own
    assert "4 new stories (4 about 1 event)" in text
    assert "(4 outlets)" in str(plague.message["Subject"])
    html = _html(plague)
    assert "— 4 outlets: " in html and html.count("Mute this story</a>") == 4

    # two events: two entries, each with its stories beneath
    both = sent["both"]
    entries = _entries(both)
    assert len(entries) == 2
    assert sum("4 outlets" in e for e in entries) == sum("3 outlets" in e for e in entries) == 1
    assert len(_grouped(both)) == 7
    assert "7 new stories (7 about 2 events)" in plain_text(both)

    # a muted story is left out of its event's entry; the event still says who covered it
    muted = sent["muted"]
    [entry] = _entries(muted)
    assert "4 outlets" in entry and len(_grouped(muted)) == 3
    assert not any(t.startswith("Hunter diagnosed") for t in _grouped(muted))  # the Sun's
    assert any(t.startswith("Hunter diagnosed") for t in _grouped(plague))

    # the decisions say which event: the events index's event of the story
    events = _event_ids(es, names)
    assert {d["event_id"] for d in decisions} == {events[d["story_id"]] for d in decisions}
    assert len({d["event_id"] for d in decisions}) == 1
    assert all(d["event_outlet_count"] == 4 and d["event_story_count"] == 4 for d in decisions)


def _state_reset(es: Elasticsearch, names: IndexNames) -> None:
    """Forget up to when the rules were evaluated: the next run searches their first window
    again (what a lost state document would do)."""
    index = names.index("alert-state")
    es.indices.refresh(index=index)
    for hit in es.search(index=index, size=100, query={"match_all": {}})["hits"]["hits"]:
        es.delete(index=index, id=hit["_id"], refresh=True)


def test_once_per_event_sends_an_event_once_and_a_new_event_still(
    es: Elasticsearch,
    settings: Settings,
    names: IndexNames,
    news_pages: list[DemoPage],
    outlets: Outlets,
    smtp: tuple[Handler, SmtpSettings],
) -> None:
    handler, smtp_settings = smtp
    express = outlets.sites[3]
    outlets.items[3].clear()  # the Express report comes later
    express.set_feed("news", [])
    rule_set = rules_from(
        "alerts:\n"
        "  - {id: once, name: Once per event, query: 'plague OR Stadia', once_per: event,"
        " recipients: [desk@example.org]}\n"
        "  - {id: every, name: Every story, query: 'plague OR Stadia',"
        " recipients: [desk@example.org]}\n"
    )
    assert rule_set.get("once").once_per == "event" and rule_set.get("every").once_per == "story"
    ingest(load_feeds(settings.feeds_file), settings, client=es)
    first = run_alerts(es, names, rule_set, FAST, smtp_settings)
    assert first.counts["emails_sent"] == 2
    sent = _by_rule(handler)
    # the plague event with three reports, and the WSJ's guide to Stadia (an event of its own)
    assert len(_entries(sent["once"])) == 2 and len(_grouped(sent["once"])) == 3

    # later: the Express's report of the same plague cases, and Stadia's launch (a new event)
    outlets.publish(3, pages_of(news_pages, (PLAGUE[3],)))
    outlets.publish(8, pages_of(news_pages, (STADIA[1],)))
    again = ingest(load_feeds(settings.feeds_file), settings, client=es)
    assert again.articles["indexed"] == 2 and again.articles["event_joined"] == 1
    handler.received.clear()

    second = run_alerts(es, names, rule_set, FAST, smtp_settings)

    assert second.problems == [] and second.counts["emails_sent"] == 2
    assert second.counts["event_repeats"] == 1
    sent = _by_rule(handler)
    launch = pages_of(news_pages, (STADIA[1],))[0].title.split(" | ")[0]
    [entry] = _entries(sent["once"])  # the new event only
    assert entry.startswith(launch)
    assert "Express" not in plain_text(sent["once"])
    assert len(_entries(sent["every"])) == 2  # per story: the Express report too, on its own
    assert "Express" in plain_text(sent["every"]) and _grouped(sent["every"]) == []
    express_id = outlets.ids[PLAGUE[3]]
    [repeat] = [
        d
        for d in ledger_docs(es, names, rule_id="once", kind="story")
        if d["story_id"] == express_id
    ]
    assert repeat["status"] == "skipped" and repeat["skip_reason"] == "event already alerted"
    assert repeat["event_repeat"] is True
    plague = [
        d
        for d in ledger_docs(es, names, rule_id="once", kind="story")
        if d["event_id"] == repeat["event_id"]
    ]
    assert sorted(d["status"] for d in plague) == ["sent", "sent", "sent", "skipped"]

    # again, and with the rules' windows forgotten: nothing is decided twice, nothing is sent
    handler.received.clear()
    third = run_alerts(es, names, rule_set, FAST, smtp_settings)
    _state_reset(es, names)
    fourth = run_alerts(es, names, rule_set, FAST, smtp_settings)
    assert third.counts["stories_decided"] == fourth.counts["stories_decided"] == 0
    assert fourth.counts["already_alerted"] == 12  # 6 stories for each rule
    assert handler.received == []
    assert len(ledger_docs(es, names, kind="story")) == 12


def test_a_later_report_joins_its_events_email_while_that_one_waits(
    es: Elasticsearch,
    settings: Settings,
    names: IndexNames,
    news_pages: list[DemoPage],
    outlets: Outlets,
    smtp: tuple[Handler, SmtpSettings],
) -> None:
    handler, smtp_settings = smtp
    outlets.items[3].clear()  # the Express report comes later
    outlets.sites[3].set_feed("news", [])
    rule_set = rules_from(
        "alerts:\n  - {id: once, name: Once, query: plague, once_per: event,"
        " recipients: [desk@example.org]}\n"
    )
    now = datetime.now(UTC)
    apply(es, names, Action("snooze", "once", until=now + timedelta(hours=1)), now=now)
    ingest(load_feeds(settings.feeds_file), settings, client=es)
    held = run_alerts(es, names, rule_set, FAST, smtp_settings)
    assert held.counts["stories_decided"] == 3 and held.counts["batches_snoozed"] == 1
    outlets.publish(3, pages_of(news_pages, (PLAGUE[3],)))
    ingest(load_feeds(settings.feeds_file), settings, client=es)
    joined = run_alerts(es, names, rule_set, FAST, smtp_settings)
    assert joined.counts["stories_decided"] == 1 and joined.counts["event_repeats"] == 0
    decisions = ledger_docs(es, names, rule_id="once", kind="story")
    assert len({d["batch_key"] for d in decisions}) == 1  # the Express's joined the held batch
    assert handler.received == []

    after = run_alerts(es, names, rule_set, FAST, smtp_settings, now=now + timedelta(hours=2))

    assert after.counts["emails_sent"] == 1
    [email] = handler.received
    [entry] = _entries(email)
    assert "— 4 outlets:" in entry and len(_grouped(email)) == 4


def test_a_digest_lists_later_reports_as_more_coverage_and_sends_none_of_only_those(
    es: Elasticsearch,
    settings: Settings,
    names: IndexNames,
    news_pages: list[DemoPage],
    outlets: Outlets,
    smtp: tuple[Handler, SmtpSettings],
) -> None:
    handler, smtp_settings = smtp
    for site in (2, 3):  # the Sun's and the Express's reports come in the second period
        outlets.items[site].clear()
        outlets.sites[site].set_feed("news", [])
    due = (datetime.now(UTC) + timedelta(hours=2)).replace(second=0, microsecond=0)
    digest = f"mode: digest, schedule: 'daily {due:%H:%M} UTC', once_per: event"
    rule_set = rules_from(
        "alerts:\n"
        f"  - {{id: news, name: News, query: 'plague OR Stadia', {digest},"
        " recipients: [desk@example.org]}\n"
        f"  - {{id: plague, name: Plague, query: plague, {digest},"
        " recipients: [desk@example.org]}\n"
    )

    def run(at: datetime) -> Any:
        return run_alerts(es, names, rule_set, FAST, smtp_settings, mode="digest", now=at)

    ingest(load_feeds(settings.feeds_file), settings, client=es)
    run(datetime.now(UTC))  # the first period: New York Post and Smithsonian
    sent = deliver(
        es, names, smtp_settings, FAST, modes=("digest",), now=due + timedelta(seconds=1)
    )
    assert sent.counts["emails_sent"] == 2
    assert all(len(_grouped(r)) == 2 for r in handler.received)  # one event, two stories
    handler.received.clear()
    outlets.publish(2, pages_of(news_pages, (PLAGUE[2],)))
    outlets.publish(3, pages_of(news_pages, (PLAGUE[3],)))
    outlets.publish(8, pages_of(news_pages, (STADIA[1],)))
    ingest(load_feeds(settings.feeds_file), settings, client=es)
    first = run(due + timedelta(seconds=2))  # decides the second period
    assert first.counts["event_repeats"] == 4  # the Sun and the Express, for both rules
    assert handler.received == []

    second = run(due + timedelta(days=1, seconds=1))

    [news] = handler.received  # the plague rule's digest held only later reports: not sent
    assert news.message["X-Newsmon-Rule"] == "news"
    text = plain_text(news)
    print(text)  # how the email reads (pytest -s)
    assert "1 new story, 3 articles; 2 more reports of events alerted before" in text
    assert str(news.message["Subject"]) == "[newsmon] News: 1 new story (digest)"
    entries = _entries(news)
    assert len(entries) == 2
    coverage = text.split("More coverage of this event, alerted before:")
    assert len(coverage) == 2 and "Express" in coverage[1] and "The Sun" in coverage[1]
    assert second.counts["stories_event_repeats_skipped"] == 2
    skipped = [d for d in ledger_docs(es, names, rule_id="plague") if d["status"] == "skipped"]
    assert {d["skip_reason"] for d in skipped} == {"only more coverage of events alerted before"}
    assert len(skipped) == 2


def test_alerts_check_shows_once_per_event(
    settings: Settings,
    names: IndexNames,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from newsmon.cli import main

    monkeypatch.setenv("NEWSMON_ES_URL", settings.es_url)
    monkeypatch.setenv("NEWSMON_INDEX_PREFIX", settings.index_prefix)
    monkeypatch.setenv("NEWSMON_CONFIG_DIR", settings.config_dir)
    rules = tmp_path / "alerts.yaml"
    rules.write_text(
        "alerts:\n"
        "  - {id: once, name: Once, query: plague, once_per: event, recipients: [a@example.org]}\n"
        "  - {id: daily, name: Daily, query: plague, once_per: event, mode: digest,"
        " schedule: 'daily 08:00 UTC', recipients: [a@example.org]}\n"
        "  - {id: every, name: Every, query: plague, recipients: [a@example.org]}\n"
    )
    assert main(["alerts", "check", "--rules", str(rules)]) == 0
    out = capsys.readouterr().out
    assert "  once (immediate, once per event): " in out
    assert "  daily (digest, daily 08:00 UTC, once per event): " in out
    assert "  every (immediate): " in out

    rules.write_text(
        "alerts:\n  - id: bad\n    name: Bad\n    query: plague\n    once_per: day\n"
        "    recipients: [a@example.org]\n"
    )
    assert main(["alerts", "check", "--rules", str(rules)]) == 2
    err = capsys.readouterr().err
    assert f"{rules}:5: alerts[0] (id 'bad').once_per: " in err and "'event'" in err
