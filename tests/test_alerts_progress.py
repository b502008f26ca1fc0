"""Alerts report their progress at INFO per rule, and their states keep their stored values."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from elasticsearch import Elasticsearch

from newsmon.alerts import AlertSettings, LedgerStatus, SendStatus, SmtpSettings, run_alerts
from newsmon.store import IndexNames

from .helpers.alerts import article_doc, ledger_docs, rules_from, write_articles
from .helpers.smtp import Handler

FAST = AlertSettings(lag=timedelta(0))


def test_states_keep_the_values_stored_in_the_ledger() -> None:
    assert [s.value for s in LedgerStatus] == [
        "pending",
        "sending",
        "sent",
        "retry",
        "failed",
        "skipped",
    ]
    assert [s.value for s in SendStatus] == ["sent", "retry", "failed"]
    assert f"emails_{LedgerStatus.SENT}" == "emails_sent"


@pytest.mark.es
def test_a_run_logs_per_rule_what_it_matched_decided_and_sent(
    es: Elasticsearch,
    names: IndexNames,
    smtp: tuple[Handler, SmtpSettings],
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler, smtp_settings = smtp
    rules = rules_from(
        "alerts:\n"
        "  - id: quakes\n    name: Quakes\n    query: earthquake\n"
        "    recipients: [desk@example.org, night@example.org]\n"
        "  - id: floods\n    name: Floods\n    query: flood\n"
        "    recipients: [desk@example.org]\n"
    )
    text = "An earthquake shook the city at dawn."
    write_articles(
        es,
        names,
        article_doc(1, "Earthquake", text, story_id="s1"),
        article_doc(2, "Earthquake, again", text, story_id="s1"),
        article_doc(3, "Another earthquake", text, story_id="s2"),
    )

    with caplog.at_level(logging.INFO, logger="newsmon.alerts"):
        report = run_alerts(es, names, rules, FAST, smtp_settings)

    assert report.problems == [] and len(handler.received) == 2  # a message per recipient
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("newsmon.alerts.")]
    assert "rule quakes: matched 3 article(s), 2 stories" in messages
    assert "rule quakes: decided 2 stories" in messages
    assert any(
        m.startswith("rule quakes: sent email to 2 recipient(s): 2 stories") for m in messages
    )
    assert not any(m.startswith("rule floods:") for m in messages)  # nothing to say
    assert {d["status"] for d in ledger_docs(es, names, kind="story")} == {"sent"}
    # the library configures no logging (a NullHandler at most)
    handlers = logging.getLogger("newsmon").handlers
    assert all(isinstance(h, logging.NullHandler) for h in handlers)
