"""SMTP faults end to end: ``alerts run`` against a real SMTP server on loopback that answers
4xx, 5xx or hangs up where the test says, with the alert ledger on the real Elasticsearch node.

A transient fault (421/451 anywhere, a connection lost) keeps the email for a later run after a
backoff; a permanent one (5xx) is recorded with the server's reply and never tried again; a
refused recipient never stops the others; each recipient gets a message of their own, and a
resend carries the Message-ID stored at the first attempt (a recipient's copy: derived from it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from newsmon.alerts import (
    AlertSettings,
    RuleSet,
    SmtpSettings,
    email_id,
    message_id_for,
    run_alerts,
)
from newsmon.alerts.fanout import recipient_message_id
from newsmon.config import ConfigError, Settings
from newsmon.store import IndexNames

from .helpers.alerts import article_doc, ledger_docs, rules_from, write_articles
from .helpers.smtp import SENDER, Fault, FaultyHandler, faulty_smtp_server

FAST = AlertSettings(lag=timedelta(0), retry_after=timedelta(minutes=5))


@pytest.fixture
def smtp() -> Iterator[tuple[FaultyHandler, SmtpSettings]]:
    """Instead of conftest's ``smtp``: a server that fails as each test plans."""
    with faulty_smtp_server() as (handler, port):
        yield handler, SmtpSettings(port=port, sender=SENDER, timeout=5)


RULES = (
    "alerts:\n  - id: quake\n    name: Quake\n    query: earthquake\n"
    "    recipients: [{recipients}]\n"
)


def _quake(es: Elasticsearch, names: IndexNames, *recipients: str) -> RuleSet:
    write_articles(es, names, article_doc(1, "Earthquake in Quetta", "An earthquake shook Quetta."))
    return rules_from(RULES.format(recipients=", ".join(recipients or ("desk@example.org",))))


def _email(es: Elasticsearch, names: IndexNames) -> dict[str, Any]:
    [doc] = ledger_docs(es, names, kind="email")
    return doc


def _story(es: Elasticsearch, names: IndexNames) -> dict[str, Any]:
    [doc] = ledger_docs(es, names, kind="story")
    return doc


def _at(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- transient: kept, retried after a backoff ---------------------------------------------------

TRANSIENT = {
    "421 at connect": (Fault(greeting="421 4.3.2 Too busy, try later"), 421, "Too busy"),
    "421 at MAIL": (Fault(mail="421 4.3.2 Shutting down"), 421, "Shutting down"),
    "451 at MAIL": (Fault(mail="451 4.3.0 Local problem"), 451, "Local problem"),
    "421 at RCPT": (Fault(rcpt={"*": "421 4.3.2 Shutting down"}), 421, "Shutting down"),
    "451 at RCPT": (Fault(rcpt={"*": "451 4.7.1 Greylisted"}), 451, "Greylisted"),
    "421 at DATA end": (Fault(data="421 4.3.2 Shutting down"), 421, "Shutting down"),
    "451 at DATA end": (Fault(data="451 4.3.0 Queue full"), 451, "Queue full"),
    "dropped before DATA": (Fault(drop="before_data"), None, "connection lost"),
    "dropped after DATA": (Fault(drop="after_data"), None, "connection lost"),
    "no reply to MAIL": (Fault(stall=3, stall_at="mail"), None, "timed out"),
    "no reply after DATA": (Fault(stall=3, stall_at="data"), None, "timed out"),
}
KEPT_BY_THE_SERVER = ("dropped after DATA", "no reply after DATA")  # the reply was lost
# each recipient gets their own message (own connection); a fault about the server or the
# connection stops the round (the other recipient shares it), a refused address does not
ABOUT_THE_ADDRESS = ("451 at RCPT",)


@pytest.mark.parametrize("fault", list(TRANSIENT))
def test_transient_fault_keeps_the_email_for_a_later_run(
    es: Elasticsearch, names: IndexNames, smtp: tuple[FaultyHandler, SmtpSettings], fault: str
) -> None:
    handler, smtp_settings = smtp
    plan, code, text = TRANSIENT[fault]
    rule_set = _quake(es, names, "desk@example.org", "geo@example.org")
    handler.plan = [plan]
    if plan.stall:
        smtp_settings = replace(smtp_settings, timeout=0.5)
    now = datetime.now(UTC) + timedelta(seconds=1)

    first = run_alerts(es, names, rule_set, FAST, smtp_settings, now=now)

    assert (first.counts["emails_retry"], first.counts["emails_sent"]) == (1, 0)
    doc = _email(es, names)
    assert (doc["status"], doc["attempts"], doc["smtp_code"]) == ("retry", 1, code)
    assert text in doc["smtp_reason"]
    assert doc["next_attempt_at"] == _at(now + timedelta(minutes=5))
    story = _story(es, names)
    assert (story["status"], story["due_at"]) == ("retry", doc["next_attempt_at"])
    stored_id = doc["message_id"]
    assert stored_id == message_id_for(story["batch_key"], SENDER)
    # desk@'s copy went first: kept when the server had it and the reply was lost; geo@ got
    # theirs when the fault was about desk@'s address only, and is not asked again
    first_round = [r.rcpt_tos for r in handler.received]
    if fault in KEPT_BY_THE_SERVER:
        assert first_round == [["desk@example.org"]]
    elif fault in ABOUT_THE_ADDRESS:
        assert first_round == [["geo@example.org"]]
        assert doc["recipients_left"] == ["desk@example.org"]
        assert doc["delivered_to"] == ["geo@example.org"]
    else:
        assert first_round == []
    connections = handler.connections
    assert connections == (2 if fault in ABOUT_THE_ADDRESS else 1)  # stopped after the fault

    early = run_alerts(es, names, rule_set, FAST, smtp_settings, now=now + timedelta(minutes=4))
    assert early.emails == [] and handler.connections == connections  # not due: no connection

    later = run_alerts(es, names, rule_set, FAST, smtp_settings, now=now + timedelta(minutes=6))

    assert later.counts["emails_sent"] == 1
    second_round = [r.rcpt_tos for r in handler.received[len(first_round) :]]
    if fault in ABOUT_THE_ADDRESS:
        assert second_round == [["desk@example.org"]]
    else:  # at most one duplicate (desk@'s, kept by the server), recognisable as such
        assert second_round == [["desk@example.org"], ["geo@example.org"]]
    for got in handler.received:
        assert got.message["Message-ID"] == recipient_message_id(
            stored_id, got.rcpt_tos[0], alone=False
        )
    doc = _email(es, names)
    assert (doc["status"], doc["attempts"], doc["smtp_code"]) == ("sent", 2, 250)
    assert sorted(doc["delivered_to"]) == ["desk@example.org", "geo@example.org"]
    assert _story(es, names)["status"] == "sent"
    quiet = run_alerts(es, names, rule_set, FAST, smtp_settings, now=now + timedelta(hours=3))
    assert quiet.emails == [] and handler.connections == connections + len(second_round)


def test_backoff_doubles_and_a_fault_that_never_ends_is_given_up(
    es: Elasticsearch, names: IndexNames, smtp: tuple[FaultyHandler, SmtpSettings]
) -> None:
    handler, smtp_settings = smtp
    rule_set = _quake(es, names)
    handler.plan = [Fault(rcpt={"*": "451 4.7.1 Greylisted"})] * 3
    alert_settings = replace(FAST, max_attempts=3)
    now = datetime.now(UTC) + timedelta(seconds=1)

    run_alerts(es, names, rule_set, alert_settings, smtp_settings, now=now)
    assert _email(es, names)["next_attempt_at"] == _at(now + timedelta(minutes=5))
    second = now + timedelta(minutes=5)
    run_alerts(es, names, rule_set, alert_settings, smtp_settings, now=second)
    assert _email(es, names)["next_attempt_at"] == _at(second + timedelta(minutes=10))
    third = second + timedelta(minutes=10)
    last = run_alerts(es, names, rule_set, alert_settings, smtp_settings, now=third)

    assert last.counts["emails_failed"] == 1
    doc = _email(es, names)
    assert (doc["status"], doc["attempts"], doc["smtp_code"]) == ("failed", 3, 451)
    assert doc["smtp_reason"].startswith("gave up after 3 attempts:")
    assert "Greylisted" in doc["smtp_reason"]
    assert _story(es, names)["status"] == "failed"
    after = run_alerts(es, names, rule_set, alert_settings, smtp_settings, now=third + timedelta(1))
    assert after.emails == [] and handler.connections == 3 and handler.received == []


# --- permanent: recorded with the server's reply, never retried ---------------------------------

PERMANENT = {
    "554 at connect": (Fault(greeting="554 5.7.1 Go away"), 554, "Go away"),
    "553 at MAIL": (Fault(mail="553 5.7.1 Sender not allowed"), 553, "Sender not allowed"),
    "550 at RCPT": (Fault(rcpt={"*": "550 5.1.1 No such user"}), 550, "No such user"),
    "550 at DATA end": (Fault(data="550 5.7.1 Message refused as spam"), 550, "refused as spam"),
    "552 at DATA end": (Fault(data="552 5.3.4 Message too big"), 552, "too big"),
}


@pytest.mark.parametrize("fault", list(PERMANENT))
def test_permanent_refusal_is_recorded_and_never_retried(
    es: Elasticsearch, names: IndexNames, smtp: tuple[FaultyHandler, SmtpSettings], fault: str
) -> None:
    handler, smtp_settings = smtp
    plan, code, text = PERMANENT[fault]
    rule_set = _quake(es, names)
    handler.plan = [plan]
    now = datetime.now(UTC)

    first = run_alerts(es, names, rule_set, FAST, smtp_settings, now=now)

    assert first.counts["emails_failed"] == 1 and handler.received == []
    assert first.emails[0]["code"] == code and text in first.emails[0]["reason"]
    doc = _email(es, names)
    assert (doc["status"], doc["attempts"], doc["smtp_code"]) == ("failed", 1, code)
    assert text in doc["smtp_reason"] and "next_attempt_at" not in doc
    assert _story(es, names)["status"] == "failed"
    for hours in (1, 5, 30):
        later = run_alerts(
            es, names, rule_set, FAST, smtp_settings, now=now + timedelta(hours=hours)
        )
        assert later.emails == []
    assert handler.connections == 1 and handler.received == []


# --- several recipients: one refused never stops the others -------------------------------------


@pytest.mark.parametrize("late_later", ["250", "550 5.1.1 Mailbox disabled"])
def test_a_refused_recipient_does_not_stop_the_others(
    es: Elasticsearch,
    names: IndexNames,
    smtp: tuple[FaultyHandler, SmtpSettings],
    late_later: str,
) -> None:
    handler, smtp_settings = smtp
    rule_set = _quake(es, names, "desk@example.org", "gone@example.org", "late@example.org")
    refusals = {"gone@example.org": "550 5.1.1 No such user", "late@example.org": "451 4.2.1 Busy"}
    second = {} if late_later == "250" else {"late@example.org": late_later}
    handler.plan = [Fault(rcpt=refusals)] * 3 + [Fault(rcpt=second)]  # a connection each
    now = datetime.now(UTC)

    first = run_alerts(es, names, rule_set, FAST, smtp_settings, now=now)

    [got] = handler.received
    assert got.rcpt_tos == ["desk@example.org"]  # the accepted one gets it now
    assert first.emails[0]["status"] == "retry"
    doc = _email(es, names)
    assert doc["recipients_left"] == ["late@example.org"]  # only the 4xx one is tried again
    assert "gone@example.org 550 5.1.1 No such user" in doc["smtp_reason"]
    assert "accepted for 1 of 3 recipients" in doc["smtp_reason"]

    run_alerts(es, names, rule_set, FAST, smtp_settings, now=now + timedelta(minutes=6))
    run_alerts(es, names, rule_set, FAST, smtp_settings, now=now + timedelta(hours=5))

    assert handler.rcpts.count("gone@example.org") == 1  # a 550 is never asked again
    assert handler.rcpts.count("desk@example.org") == 1  # nor is whoever got it
    assert handler.rcpts.count("late@example.org") == 2
    doc = _email(es, names)
    # it reached desk@ (and late@ when accepted): the email counts as sent; refusals stay
    assert (doc["status"], doc["attempts"], doc["recipients_left"]) == ("sent", 2, [])
    assert _story(es, names)["status"] == "sent"
    assert "No such user" in doc["smtp_reason"]  # the first attempt's reply, kept
    if late_later == "250":
        assert [r.rcpt_tos for r in handler.received] == [
            ["desk@example.org"],
            ["late@example.org"],
        ]
        assert doc["refused"] == ["gone@example.org"]
    else:
        assert len(handler.received) == 1
        assert doc["refused"] == ["gone@example.org", "late@example.org"]
        assert "Mailbox disabled" in doc["smtp_reason"]
    stored = doc["message_id"]
    for got in handler.received:  # each their own message, the same on a resend
        assert got.message["To"] == got.rcpt_tos[0]
        assert got.message["Message-ID"] == recipient_message_id(
            stored, got.rcpt_tos[0], alone=False
        )


def test_a_retry_for_the_leftover_recipients_never_reaches_the_others_again(
    es: Elasticsearch, names: IndexNames, smtp: tuple[FaultyHandler, SmtpSettings]
) -> None:
    handler, smtp_settings = smtp
    rule_set = _quake(es, names, "desk@example.org", "late@example.org")
    handler.plan = [
        Fault(),  # desk@'s message
        Fault(rcpt={"late@example.org": "450 4.2.1 Mailbox busy"}),  # late@'s
        Fault(drop="before_data"),  # the retry for late@ loses its connection
        Fault(greeting="421 4.3.2 Too busy"),  # and the next one is turned away
    ]
    now = datetime.now(UTC)

    for minutes in (0, 6, 20, 60):
        run_alerts(es, names, rule_set, FAST, smtp_settings, now=now + timedelta(minutes=minutes))

    assert [r.rcpt_tos for r in handler.received] == [["desk@example.org"], ["late@example.org"]]
    assert handler.rcpts.count("desk@example.org") == 1
    doc = _email(es, names)
    assert (doc["status"], doc["attempts"], doc["recipients_left"]) == ("sent", 4, [])


def test_the_stored_message_id_survives_a_change_of_sender(
    es: Elasticsearch, names: IndexNames, smtp: tuple[FaultyHandler, SmtpSettings]
) -> None:
    handler, smtp_settings = smtp
    rule_set = _quake(es, names)
    handler.plan = [Fault(drop="after_data")]
    now = datetime.now(UTC)
    run_alerts(es, names, rule_set, FAST, smtp_settings, now=now)
    stored = _email(es, names)["message_id"]

    moved = replace(smtp_settings, sender="newsmon@other.example")
    run_alerts(es, names, rule_set, FAST, moved, now=now + timedelta(minutes=6))

    first, duplicate = handler.received
    assert duplicate.mail_from == "newsmon@other.example"
    assert first.message["Message-ID"] == duplicate.message["Message-ID"] == stored
    assert stored.endswith("@newsmon.test>")  # decided under the first sender, kept
    doc = es.get(index=names.index("alert-ledger"), id=email_id(_story(es, names)["batch_key"]))
    assert doc["_source"]["status"] == "sent"


# --- settings ------------------------------------------------------------------------------------


def test_claim_timeout_comes_from_the_environment() -> None:
    settings = Settings()
    assert AlertSettings.from_env(settings, {}).claim_timeout == timedelta(minutes=10)
    env = {"NEWSMON_ALERTS_CLAIM_TIMEOUT": "90s"}
    assert AlertSettings.from_env(settings, env).claim_timeout == timedelta(seconds=90)
    for bad in ("0s", "soon", "-5m"):
        with pytest.raises(ConfigError) as error:
            AlertSettings.from_env(settings, {"NEWSMON_ALERTS_CLAIM_TIMEOUT": bad})
        assert error.value.field == "NEWSMON_ALERTS_CLAIM_TIMEOUT"
        assert error.value.file == "environment"


def test_max_attempts_comes_from_the_environment() -> None:
    settings = Settings()
    assert AlertSettings.from_env(settings, {}).max_attempts == 12
    env = {"NEWSMON_ALERTS_MAX_ATTEMPTS": "3"}
    assert AlertSettings.from_env(settings, env).max_attempts == 3
    for bad in ("0", "2.5", "many"):
        with pytest.raises(ConfigError) as error:
            AlertSettings.from_env(settings, {"NEWSMON_ALERTS_MAX_ATTEMPTS": bad})
        assert error.value.field == "NEWSMON_ALERTS_MAX_ATTEMPTS"


def test_compose_uses_the_stored_message_id_and_refuses_a_malformed_one() -> None:
    from newsmon.alerts import AlertEmail, AlertItem, compose

    item = AlertItem("s1", "Earthquake in Quetta", "https://dawn.com/1", "dawn.com", None, ())
    alert = AlertEmail("quake", "Quake", "earthquake", ("desk@example.org",), (item,), "quake/b1")
    smtp = SmtpSettings(sender="newsmon@other.example")
    assert compose(alert, smtp)["Message-ID"] == message_id_for("quake/b1", smtp.sender)
    stored = "<newsmon.0123abcd@newsmon.test>"
    assert compose(replace(alert, message_id=stored), smtp)["Message-ID"] == stored
    for bad in ("newsmon.1@x", "<a b@x>", "<x@y>\r\nBcc: evil@example.org", "<@x>"):
        with pytest.raises(ValueError, match="not a Message-ID"):
            compose(replace(alert, message_id=bad), smtp)
