# ruff: noqa: RUF001  (the shipped rule's name has an en dash, as users write it)
"""Alerts end to end: the real Elasticsearch node, a real SMTP server on loopback (aiosmtpd).

Articles come from ingesting served pages (the seed story and the shared news pages) or, where a
test needs controlled texts and story ids, are written with ``bulk_write``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from newsmon.alerts import (
    AlertSettings,
    RuleSet,
    SendResult,
    SmtpSettings,
    decide,
    deliver,
    email_id,
    load_rules,
    message_id_for,
    preview,
    run_alerts,
    validate_queries,
)
from newsmon.alerts.fanout import recipient_message_id
from newsmon.config import Settings, load_feeds
from newsmon.dev.demo import DemoPage, DemoSite
from newsmon.pipeline import ingest
from newsmon.store import IndexNames

from .helpers.alerts import article_doc, ledger_docs, rules_from, write_articles
from .helpers.paths import FIXTURES, REPO
from .helpers.smtp import SENDER, Handler, Received, plain_text

pytestmark = pytest.mark.es

FAST = AlertSettings(lag=timedelta(0), retry_after=timedelta(minutes=5))
SEED_TITLE = "US Defence secretary wants to improve Pak-US ties"


def _html(received: Received) -> str:
    body = received.message.get_body(("html",))
    assert body is not None
    return str(body.get_content())


def _items(received: Received) -> list[str]:
    """The story titles an email lists (its numbered lines)."""
    return re.findall(r"^\d+\. (.+)$", plain_text(received), re.MULTILINE)


# --- ingest real pages, alert, and alert once ---------------------------------------------------


def test_ingested_pages_alert_once_per_story_with_highlighted_snippets(
    es: Elasticsearch,
    settings: Settings,
    names: IndexNames,
    news_pages: list[DemoPage],
    smtp: tuple[Handler, SmtpSettings],
) -> None:
    handler, smtp_settings = smtp
    shipped = load_rules(REPO / "config" / "alerts.yaml")
    afghanistan = shipped.get("afghanistan-daily").model_copy(
        update={"mode": "immediate", "schedule": None, "enabled": True}
    )
    rule_set = RuleSet((shipped.get("pak-us-defence"), afghanistan), shipped.source)
    seed = (FIXTURES / "seed" / "bolnews-us-defence-secretary.html").read_bytes()
    with DemoSite(news_pages, feed_count=2) as site:
        url = site.add_page("/www.bolnews.com/pakistan/2021/08/us-defence-secretary/", seed)
        site.set_feed("bol", [(url, SEED_TITLE, datetime(2021, 8, 11, tzinfo=UTC))])
        site.feed_names.append("bol")
        Path(settings.feeds_file).write_text(site.feeds_yaml())
        summary = ingest(load_feeds(settings.feeds_file), settings, client=es)
    assert summary.articles["indexed"] == len(news_pages) + 1

    first = run_alerts(es, names, rule_set, FAST, smtp_settings)

    assert first.problems == []
    assert first.counts["emails_sent"] == 2  # two emails, afghanistan-daily's in two messages
    assert len(handler.received) == 3
    by_rule = {r.message["X-Newsmon-Rule"]: r for r in handler.received}
    assert set(by_rule) == {"pak-us-defence", "afghanistan-daily"}

    # the seed story: Pakistan and the US on defence
    pak = by_rule["pak-us-defence"]
    assert pak.mail_from == SENDER
    assert pak.rcpt_tos == ["defence-desk@example.org"]
    assert pak.message["Subject"] == f"[newsmon] Pakistan–US defence ties: {SEED_TITLE}"
    assert _items(pak) == [SEED_TITLE]
    text = plain_text(pak)
    # the passages where the rule's rarer words are marked most (a phrase is marked as a
    # whole: tests/test_alert_snippets.py)
    assert "*Defence*" in text and "*Army*" in text
    assert "<em>" in _html(pak)
    assert "www.bolnews.com/pakistan/2021/08/us-defence-secretary/" in text
    [decision] = ledger_docs(es, names, rule_id="pak-us-defence", kind="story")
    assert decision["status"] == "sent"
    assert pak.message["Message-ID"] == message_id_for(decision["batch_key"], SENDER)
    email_doc = es.get(index=names.index("alert-ledger"), id=email_id(decision["batch_key"]))
    assert email_doc["_source"]["status"] == "sent"
    assert email_doc["_source"]["smtp_code"] == 250

    # several stories for the wider rule: one item per story, every story once
    afg = by_rule["afghanistan-daily"]
    copies = [r for r in handler.received if r.message["X-Newsmon-Rule"] == "afghanistan-daily"]
    assert sorted(r.rcpt_tos[0] for r in copies) == ["editor@example.org", "south-asia@example.org"]
    assert [len(r.rcpt_tos) for r in copies] == [1, 1]  # one message each
    assert plain_text(copies[0]) == plain_text(copies[1])  # the same stories (links aside)
    decisions = ledger_docs(es, names, rule_id="afghanistan-daily", kind="story")
    stories = {d["story_id"] for d in decisions}
    assert len(stories) == len(decisions) >= 3
    assert len(_items(afg)) == len(stories)
    assert SEED_TITLE in _items(afg)
    assert re.search(r"\*(Afghanistan|Afghan|Taliban|Kabul)\*", plain_text(afg))
    matching = es.search(
        index=names.articles,
        size=0,
        query={"query_string": {"query": afghanistan.query, "fields": ["title", "text"]}},
        aggs={"stories": {"cardinality": {"field": "story_id"}}},
    )
    assert matching["aggregations"]["stories"]["value"] == len(stories)

    # again: nothing new, nothing sent; and an ingest with nothing new changes nothing
    second = run_alerts(es, names, rule_set, FAST, smtp_settings)
    assert second.counts["emails_sent"] == 0 and second.counts["stories_decided"] == 0
    assert len(handler.received) == 3


def test_stories_are_grouped_new_articles_only_and_filters_apply(
    es: Elasticsearch, names: IndexNames, smtp: tuple[Handler, SmtpSettings]
) -> None:
    handler, smtp_settings = smtp
    rule_set = rules_from(
        "alerts:\n"
        "  - id: floods\n"
        "    name: Floods\n"
        "    query: flood* NOT cricket\n"
        "    filters: {languages: [en]}\n"
        "    recipients: [desk@example.org]\n"
    )
    text = "Monsoon floods hit the valley; rescue teams were sent."
    write_articles(
        es,
        names,
        # one story told by three outlets
        article_doc(1, "Floods in Swat", text, story_id="story-swat", domain="dawn.com"),
        article_doc(2, "Swat floods", text, story_id="story-swat", domain="geo.tv"),
        article_doc(3, "Swat flooding", text, story_id="story-swat", domain="bolnews.com"),
        # an article the story clustering has not seen: a story of its own
        article_doc(4, "Flood warning for Sindh", "The flood warning stays.", story_id=None),
        # a story the stories index knows: its outlet count comes from there
        article_doc(5, "Floods in Bangladesh", text, story_id="story-bd"),
        # not for this rule: the NOT clause, the language filter
        article_doc(6, "Cricket washed out by floods", "Flooded cricket ground.", story_id="c"),
        article_doc(7, "Inondations", "Floods en français", language="fr", story_id="fr"),
    )
    es.index(
        index=names.stories, id="story-bd", document={"story_id": "story-bd", "outlet_count": 6}
    )

    report = run_alerts(es, names, rule_set, FAST, smtp_settings)

    assert report.counts["stories_decided"] == 3
    [received] = handler.received
    assert sorted(_items(received)) == [
        "Flood warning for Sindh",
        "Floods in Bangladesh",
        "Floods in Swat",  # the story's first article
    ]
    text_part = plain_text(received)
    assert "also in 2 other outlets" in text_part  # three outlets ran the Swat story
    assert "also in 5 other outlets" in text_part  # from the stories index
    assert "*floods*" in text_part.lower()
    decisions = {d["story_id"]: d for d in ledger_docs(es, names, kind="story")}
    assert set(decisions) == {"story-swat", "article-4", "story-bd"}
    assert decisions["story-swat"]["matched_articles"] == 3
    assert decisions["story-swat"]["article_id"] == "article-1"

    # a later article of a story already alerted: no new email; a back-dated new story: alerted
    old = (datetime.now(UTC) - timedelta(days=400)).isoformat()
    write_articles(
        es,
        names,
        article_doc(8, "Swat floods recede", text, story_id="story-swat", domain="tribune.com.pk"),
        article_doc(
            9, "Floods of 2024, a look back", text, story_id="story-back", published_at=old
        ),
    )
    again = run_alerts(es, names, rule_set, FAST, smtp_settings)

    assert again.counts["already_alerted"] == 1
    assert again.counts["stories_decided"] == 1
    assert len(handler.received) == 2
    assert _items(handler.received[1]) == ["Floods of 2024, a look back"]
    state = es.get(index=names.index("alert-state"), id="floods")["_source"]
    assert state["last_new_stories"] == 1 and state["last_matches"] == 2


def test_crash_between_decided_and_sent_sends_exactly_one_email_on_retry(
    es: Elasticsearch, names: IndexNames, smtp: tuple[Handler, SmtpSettings]
) -> None:
    handler, smtp_settings = smtp
    rule_set = rules_from(
        "alerts:\n  - id: quake\n    name: Quake\n    query: earthquake\n"
        "    recipients: [desk@example.org]\n"
    )
    write_articles(es, names, article_doc(1, "Earthquake in Quetta", "An earthquake shook Quetta."))

    def crash(message: Any, settings: SmtpSettings) -> SendResult:
        raise KeyboardInterrupt("killed between decided and sent")

    with pytest.raises(KeyboardInterrupt):
        run_alerts(es, names, rule_set, FAST, smtp_settings, send=crash)

    assert handler.received == []
    [decision] = ledger_docs(es, names, kind="story")
    assert decision["status"] == "pending"  # decided, not sent
    [claim] = ledger_docs(es, names, kind="email")
    assert claim["status"] == "retry" and "interrupted" in claim["smtp_reason"]

    retry = run_alerts(es, names, rule_set, FAST, smtp_settings)
    assert retry.counts["emails_sent"] == 1 and retry.counts["stories_decided"] == 0
    [received] = handler.received
    assert _items(received) == ["Earthquake in Quetta"]
    assert received.message["Message-ID"] == message_id_for(decision["batch_key"], SENDER)

    assert run_alerts(es, names, rule_set, FAST, smtp_settings).counts["emails_sent"] == 0
    assert len(handler.received) == 1
    [email_doc] = ledger_docs(es, names, kind="email")
    assert (email_doc["status"], email_doc["attempts"]) == ("sent", 1)


def test_a_killed_sender_is_taken_over_after_the_claim_timeout(
    es: Elasticsearch, names: IndexNames, smtp: tuple[Handler, SmtpSettings]
) -> None:
    handler, smtp_settings = smtp
    rules = rules_from(
        "alerts:\n  - id: quake\n    name: Quake\n    query: earthquake\n"
        "    recipients: [desk@example.org]\n"
    ).rules
    write_articles(es, names, article_doc(1, "Earthquake in Quetta", "An earthquake shook Quetta."))
    now = datetime.now(UTC)
    decide(es, names, rules, FAST, now=now)
    [decision] = ledger_docs(es, names, kind="story")
    # a worker claimed the batch, then was killed (no chance to release it)
    es.index(
        index=names.index("alert-ledger"),
        id=email_id(decision["batch_key"]),
        document={
            "kind": "email",
            "batch_key": decision["batch_key"],
            "status": "sending",
            "claimed_at": now.isoformat(),
            "attempts": 0,
        },
        refresh=True,
    )

    busy = deliver(es, names, smtp_settings, FAST, now=now + timedelta(minutes=1))
    assert busy.counts["batches_busy"] == 1 and handler.received == []

    later = deliver(es, names, smtp_settings, FAST, now=now + timedelta(minutes=11))
    assert later.counts["emails_sent"] == 1 and len(handler.received) == 1
    assert deliver(es, names, smtp_settings, FAST, now=now + timedelta(minutes=12)).emails == []
    assert len(handler.received) == 1


def test_smtp_451_is_retried_later_and_550_is_recorded_failed(
    es: Elasticsearch, names: IndexNames, smtp: tuple[Handler, SmtpSettings]
) -> None:
    handler, smtp_settings = smtp
    rule_set = rules_from(
        "alerts:\n"
        "  - id: quake\n    name: Quake\n    query: earthquake\n"
        "    recipients: [desk@example.org]\n"
        "  - id: drought\n    name: Drought\n    query: drought\n"
        "    recipients: [gone@example.org]\n"
    )
    write_articles(
        es,
        names,
        article_doc(1, "Earthquake in Quetta", "An earthquake shook Quetta."),
        article_doc(2, "Drought in Thar", "The drought goes on."),
    )
    handler.rcpt_replies = {
        "desk@example.org": "451 4.7.1 Greylisted, try again later",
        "gone@example.org": "550 5.1.1 No such user",
    }
    now = datetime.now(UTC)

    first = run_alerts(es, names, rule_set, FAST, smtp_settings, now=now)

    assert handler.received == []
    assert (first.counts["emails_retry"], first.counts["emails_failed"]) == (1, 1)
    quake = ledger_docs(es, names, rule_id="quake")
    assert {d["kind"]: d["status"] for d in quake} == {"story": "retry", "email": "retry"}
    [quake_email] = [d for d in quake if d["kind"] == "email"]
    assert quake_email["smtp_code"] == 451 and "Greylisted" in quake_email["smtp_reason"]
    drought = ledger_docs(es, names, rule_id="drought")
    assert {d["kind"]: d["status"] for d in drought} == {"story": "failed", "email": "failed"}
    [drought_email] = [d for d in drought if d["kind"] == "email"]
    assert drought_email["smtp_code"] == 550 and "No such user" in drought_email["smtp_reason"]

    # not due yet: nothing is tried
    assert run_alerts(es, names, rule_set, FAST, smtp_settings, now=now).emails == []
    handler.rcpt_replies = {}
    later = run_alerts(es, names, rule_set, FAST, smtp_settings, now=now + timedelta(minutes=6))
    assert [e["rule_id"] for e in later.emails] == ["quake"]  # the failed one stays failed
    [received] = handler.received
    assert received.rcpt_tos == ["desk@example.org"] and _items(received) == [
        "Earthquake in Quetta"
    ]
    quake = ledger_docs(es, names, rule_id="quake")
    assert {d["kind"]: d["status"] for d in quake} == {"story": "sent", "email": "sent"}
    [quake_email] = [d for d in quake if d["kind"] == "email"]
    assert quake_email["attempts"] == 2


def test_a_recipient_greylisted_alone_gets_the_email_later(
    es: Elasticsearch, names: IndexNames, smtp: tuple[Handler, SmtpSettings]
) -> None:
    handler, smtp_settings = smtp
    rule_set = rules_from(
        "alerts:\n  - id: quake\n    name: Quake\n    query: earthquake\n"
        "    recipients: [desk@example.org, late@example.org]\n"
    )
    write_articles(es, names, article_doc(1, "Earthquake in Quetta", "An earthquake shook Quetta."))
    handler.rcpt_replies = {"late@example.org": "450 4.2.1 Mailbox busy"}
    now = datetime.now(UTC)

    run_alerts(es, names, rule_set, FAST, smtp_settings, now=now)
    handler.rcpt_replies = {}
    run_alerts(es, names, rule_set, FAST, smtp_settings, now=now + timedelta(minutes=6))

    assert [r.rcpt_tos for r in handler.received] == [["desk@example.org"], ["late@example.org"]]
    [email_doc] = ledger_docs(es, names, kind="email")
    assert email_doc["status"] == "sent" and email_doc["recipients_left"] == []
    assert email_doc["delivered_to"] == ["desk@example.org", "late@example.org"]
    for got in handler.received:  # each their own message, its Message-ID made from the batch's
        assert got.message["Message-ID"] == recipient_message_id(
            email_doc["message_id"], got.rcpt_tos[0], alone=False
        )


def test_digest_collects_the_period_and_sends_when_it_ends(
    es: Elasticsearch, names: IndexNames, smtp: tuple[Handler, SmtpSettings]
) -> None:
    handler, smtp_settings = smtp
    now = datetime.now(UTC)
    due = (now + timedelta(hours=2)).replace(second=0, microsecond=0)
    rule_set = rules_from(
        "alerts:\n  - id: quakes\n    name: Quakes digest\n    query: earthquake\n"
        "    recipients: [desk@example.org]\n    mode: digest\n"
        f"    schedule: daily {due:%H:%M} UTC\n"
    )

    def run(mode: str, at: datetime) -> Any:
        return run_alerts(es, names, rule_set, FAST, smtp_settings, mode=mode, now=at)  # type: ignore[arg-type]

    write_articles(es, names, article_doc(1, "Earthquake in Quetta", "An earthquake shook Quetta."))
    run("digest", now)
    write_articles(
        es, names, article_doc(2, "Earthquake in Gilgit", "Another earthquake, in Gilgit.")
    )
    run("digest", datetime.now(UTC) + timedelta(minutes=1))
    run("immediate", due)  # immediate runs never send digests
    assert handler.received == []

    done = run("digest", due + timedelta(seconds=1))

    assert done.counts["emails_sent"] == 1
    [received] = handler.received
    assert received.message["Subject"] == "[newsmon] Quakes digest: 2 new stories (digest)"
    assert sorted(_items(received)) == ["Earthquake in Gilgit", "Earthquake in Quetta"]
    period = f"{due - timedelta(days=1):%Y-%m-%d %H:%M} to {due:%Y-%m-%d %H:%M} (UTC)"
    assert f"Digest: {period}" in plain_text(received)
    assert run("digest", due + timedelta(minutes=5)).emails == []


# --- validation and preview on the real node ----------------------------------------------------


def test_queries_are_validated_by_elasticsearch(es: Elasticsearch, names: IndexNames) -> None:
    rule_set = rules_from(
        "alerts:\n"
        "  - id: good\n    name: Good\n    query: 'Pakistan AND \"US defence\"~3'\n"
        "    recipients: [a@example.org]\n"
        "  - id: broken\n    name: Broken\n    query: 'Pakistan AND (US OR'\n"
        "    recipients: [a@example.org]\n"
        "  - id: unknown\n    name: Unknown\n    query: 'colour:red AND Pakistan'\n"
        "    recipients: [a@example.org]\n"
    )

    explained, problems = validate_queries(es, names, rule_set)

    assert "title:pakistan" in explained["good"] and '"us defence"~3' in explained["good"]
    broken, unknown = problems
    error = broken.error("alerts.yaml")
    assert (error.line, error.field) == (8, "alerts[1] (id 'broken').query")
    assert error.reason.startswith("invalid query: Cannot parse 'Pakistan AND (US OR'")
    assert "Encountered" in error.reason and "column 19" in error.reason
    assert unknown.field == "alerts[2] (id 'unknown').query"
    assert "articles have no field 'colour'" in unknown.message


def test_preview_counts_per_day_samples_and_warns_of_floods(
    es: Elasticsearch, names: IndexNames
) -> None:
    now = datetime.now(UTC).replace(hour=12)
    days = [now - timedelta(days=d) for d in (0, 1, 1, 3)]
    docs = [
        article_doc(
            n,
            f"Cricket news {n}",
            "The cricket match in Lahore.",
            published_at=d.isoformat(),
            story_id=f"s{n}",
        )
        for n, d in enumerate(days)
    ]
    docs += [
        article_doc(
            10 + n,
            f"Cricket score {n}",
            "More cricket.",
            published_at=now.isoformat(),
            story_id=f"flood{n}",
        )
        for n in range(25)
    ]
    write_articles(es, names, *docs)
    rule = rules_from(
        "alerts:\n  - id: cricket\n    name: Cricket\n    query: cricket\n"
        "    recipients: [a@example.org]\n"
    ).rules[0]

    result = preview(
        es, names, rule, since=timedelta(days=7), sample=3, now=now, time_field="published_at"
    )

    assert (result.articles, result.stories) == (29, 29)
    per_day = {day: stories for day, _articles, stories in result.per_day}
    assert len(per_day) == 7  # every day of the week asked for, quiet ones too
    assert per_day[f"{now:%Y-%m-%d}"] == 26
    assert per_day[f"{now - timedelta(days=1):%Y-%m-%d}"] == 2
    assert per_day[f"{now - timedelta(days=2):%Y-%m-%d}"] == 0
    assert len(result.samples) == 3
    assert all("<em>cricket</em>" in s["snippets"][0].lower() for s in result.samples)
    text = result.render()
    assert "[cricket]" in text.lower()
    assert result.flood_warning() is not None and "would flood an inbox" in text

    quiet = preview(
        es,
        names,
        rule,
        since=timedelta(days=7),
        now=now - timedelta(days=1, hours=-1),
        time_field="published_at",
    )
    assert quiet.flood_warning() is None


# --- the command line ----------------------------------------------------------------------------


def test_cli_check_preview_and_run(
    es: Elasticsearch,
    settings: Settings,
    names: IndexNames,
    smtp: tuple[Handler, SmtpSettings],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from newsmon.cli import main

    handler, smtp_settings = smtp
    for key, value in {
        "NEWSMON_ES_URL": settings.es_url,
        "NEWSMON_INDEX_PREFIX": settings.index_prefix,
        "NEWSMON_CONFIG_DIR": settings.config_dir,
        "NEWSMON_SMTP_HOST": "127.0.0.1",
        "NEWSMON_SMTP_PORT": str(smtp_settings.port),
        "NEWSMON_SMTP_FROM": SENDER,
        "NEWSMON_ALERTS_LAG": "0s",
        "NEWSMON_KIBANA_URL": "https://kibana.example.org",
    }.items():
        monkeypatch.setenv(key, value)
    write_articles(es, names, article_doc(1, "Earthquake in Quetta", "An earthquake shook Quetta."))

    assert main(["alerts", "check"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{settings.config_dir}/alerts.yaml: 2 rules (1 enabled), valid")
    assert "pak-us-defence (immediate): +((terms.title:pakistan terms.text:pakistan)" in out

    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "alerts:\n  - id: one\n    name: One\n    query: 'quake AND (x OR'\n"
        "    recipients: [a@example.org]\n"
    )
    assert main(["alerts", "check", "--rules", str(broken)]) == 2
    err = capsys.readouterr().err
    assert f"{broken}:4: alerts[0] (id 'one').query: invalid query: Cannot parse" in err

    rules = tmp_path / "quakes.yaml"
    rules.write_text(
        "alerts:\n  - id: quakes\n    name: Quakes\n    query: earthquake\n"
        "    recipients: [desk@example.org]\n"
    )
    assert main(["alerts", "preview", "quakes", "--rules", str(rules), "--since", "2d"]) == 0
    out = capsys.readouterr().out
    assert "last 2 days by indexed_at: 1 article(s), 1 story" in out  # as run sees them
    assert "…An [earthquake] shook Quetta.…" in out
    assert main(["alerts", "preview", "nope", "--rules", str(rules)]) == 2
    assert "no rule 'nope' (rules: quakes)" in capsys.readouterr().err

    summary = tmp_path / "summary.json"
    assert main(["alerts", "run", "--rules", str(rules), "--summary-json", str(summary)]) == 0
    out = capsys.readouterr().out
    assert "email sent: rule quakes, 1 story to desk@example.org" in out
    [received] = handler.received
    assert "Search in Kibana: https://kibana.example.org/app/discover#/" in plain_text(received)
    assert main(["alerts", "run", "--rules", str(rules)]) == 0
    assert len(handler.received) == 1


def test_paging_splitting_and_email_caps_on_small_limits(
    es: Elasticsearch,
    names: IndexNames,
    smtp: tuple[Handler, SmtpSettings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import newsmon.alerts.evaluate as alerts

    handler, smtp_settings = smtp
    # tiny limits: more stories than buckets, more hits than a page, a group of 2, 3 listed
    for name, value in {"STORY_BUCKETS": 2, "PAGE": 2, "GROUP": 2, "MAX_ITEMS": 3}.items():
        monkeypatch.setattr(alerts, name, value)
    rule_set = rules_from(
        "alerts:\n"
        "  - id: broken\n    name: Broken\n    query: 'flood AND ('\n"
        "    recipients: [a@example.org]\n"
        "  - id: floods\n    name: Floods\n    query: flood*\n"
        "    recipients: [desk@example.org]\n"
    )
    text = "The flood waters rose."
    write_articles(
        es,
        names,
        *[article_doc(n, f"Flood {n}", text, story_id=f"s{n}") for n in range(1, 6)],
        article_doc(6, "Flood 1, again", text, story_id="s1"),
        article_doc(7, "Flood without a story", text, story_id=None),
        article_doc(8, "Another flood without a story", text, story_id=None),
    )

    report = run_alerts(es, names, rule_set, FAST, smtp_settings)

    assert report.counts["rule_errors"] == 1
    assert any(p.startswith("rule broken: search failed:") for p in report.problems)
    assert report.counts["stories_decided"] == 7  # s1..s5 and the two loose articles
    assert report.counts["matches"] == 8
    [received] = handler.received
    assert len(_items(received)) == 3
    assert "Note: 4 more matching stories not listed here." in plain_text(received)
    assert "3 new stories, 8 articles" in plain_text(received)
    # the broken rule's window did not advance
    assert not es.exists(index=names.index("alert-state"), id="broken")
    assert es.get(index=names.index("alert-state"), id="floods")["_source"]["last_matches"] == 8


def test_a_batch_recorded_sent_is_repaired_not_resent(
    es: Elasticsearch, names: IndexNames, smtp: tuple[Handler, SmtpSettings]
) -> None:
    handler, smtp_settings = smtp
    rules = rules_from(
        "alerts:\n  - id: quake\n    name: Quake\n    query: earthquake\n"
        "    recipients: [desk@example.org]\n"
    ).rules
    write_articles(es, names, article_doc(1, "Earthquake in Quetta", "An earthquake shook Quetta."))
    decide(es, names, rules, FAST)
    [decision] = ledger_docs(es, names, kind="story")
    # the email went out and was recorded, then the worker died before updating the story
    es.index(
        index=names.index("alert-ledger"),
        id=email_id(decision["batch_key"]),
        document={
            "kind": "email",
            "batch_key": decision["batch_key"],
            "status": "sent",
            "item_ids": [decision["_id"]],
        },
        refresh=True,
    )

    report = deliver(es, names, smtp_settings, FAST)

    assert report.emails == [] and handler.received == []
    [decision] = ledger_docs(es, names, kind="story")
    assert decision["status"] == "sent"
