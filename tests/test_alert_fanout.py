"""A rule with several recipients sends each of them a message of their own, with their own
RFC 8058 one-click unsubscribe; who accepted is recorded as it happens, so a run cut off halfway
sends only to the rest — on the real node and a real SMTP server on loopback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from newsmon.alerts import AlertSettings, SendResult, SmtpSettings, run_alerts, send
from newsmon.alerts.actions import honoured
from newsmon.alerts.fanout import recipient_message_id
from newsmon.alerts.links import LinkSettings
from newsmon.alerts.status import alert_status
from newsmon.alerts.tokens import verify
from newsmon.config import Settings
from newsmon.store import IndexNames

from .helpers.alerts import article_doc, ledger_docs, rules_from, write_articles
from .helpers.plugin import SECRET, app_client, context, links_in, token_of
from .helpers.smtp import Handler

FAST = AlertSettings(lag=timedelta(0))
LINKS = LinkSettings("http://testserver/newsmon", SECRET)
PEOPLE = ["desk@example.org", "night@example.org", "ayesha@example.org"]
RULES = (
    "alerts:\n  - id: quake\n    name: Quake\n    query: earthquake\n"
    f"    recipients: [{', '.join(PEOPLE)}]\n"
)


def _email(es: Elasticsearch, names: IndexNames) -> dict[str, object]:
    [doc] = ledger_docs(es, names, kind="email")
    return doc


@pytest.mark.es
def test_each_recipient_gets_a_message_with_their_own_one_click_unsubscribe(
    es: Elasticsearch,
    settings: Settings,
    names: IndexNames,
    smtp: tuple[Handler, SmtpSettings],
    tmp_path: Path,
) -> None:
    handler, smtp_settings = smtp
    rules_file = tmp_path / "alerts.yaml"
    rules_file.write_text(RULES)
    write_articles(es, names, article_doc(1, "Earthquake in Quetta", "An earthquake shook Quetta."))

    report = run_alerts(es, names, rules_from(RULES), FAST, smtp_settings, links=LINKS)

    assert report.counts["emails_sent"] == 1  # one email of the batch, in three messages
    assert [r.rcpt_tos for r in handler.received] == [[p] for p in PEOPLE]
    doc = _email(es, names)
    assert (doc["status"], doc["attempts"], doc["recipients_left"]) == ("sent", 1, [])
    assert doc["delivered_to"] == PEOPLE
    [row] = alert_status(es, names, rules_from(RULES).rules)
    assert (row.state, row.delivered) == ("sent", tuple(PEOPLE))
    unsubscribe = {}
    for got in handler.received:
        message, person = got.message, got.rcpt_tos[0]
        assert message["To"] == person
        assert message["Message-ID"] == recipient_message_id(
            str(doc["message_id"]), person, alone=False
        )
        links = links_in(got)
        assert message["List-Unsubscribe"] == f"<{links['Unsubscribe'][0]}>"  # = the footer's
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        action, _nonce = verify(token_of(links["Unsubscribe"][0]), SECRET)
        assert (action.kind, action.address) == ("unsubscribe", person)  # theirs alone
        unsubscribe[person] = links["Unsubscribe"][0].removeprefix("http://testserver")
    assert len({r.message["Message-ID"] for r in handler.received}) == 3

    # night@ clicks "Unsubscribe" in their mail client: RFC 8058's POST, no question asked
    client = app_client(lambda: context(settings, es, names, rules_file))
    done = client.post(unsubscribe["night@example.org"], data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "night@example.org unsubscribed" in done.text
    assert dict(honoured(es, names, ["quake"]).unsubscribed) == {"quake": {"night@example.org"}}

    write_articles(es, names, article_doc(2, "Earthquake in Ziarat", "An earthquake hit Ziarat."))
    run_alerts(es, names, rules_from(RULES), FAST, smtp_settings, links=LINKS)
    assert [r.rcpt_tos for r in handler.received[3:]] == [[PEOPLE[0]], [PEOPLE[2]]]


@pytest.mark.es
def test_a_run_cut_off_between_recipients_resends_only_to_those_not_accepted(
    es: Elasticsearch, names: IndexNames, smtp: tuple[Handler, SmtpSettings]
) -> None:
    handler, smtp_settings = smtp
    rule_set = rules_from(RULES)
    write_articles(es, names, article_doc(1, "Earthquake in Quetta", "An earthquake shook Quetta."))
    calls: list[str] = []

    def cut_off(message: EmailMessage, settings: SmtpSettings) -> SendResult:
        calls.append(str(message["To"]))
        if len(calls) == 2:  # the run is stopped before the second message goes
            raise KeyboardInterrupt
        return send(message, settings)

    now = datetime.now(UTC)
    with pytest.raises(KeyboardInterrupt):
        run_alerts(es, names, rule_set, FAST, smtp_settings, now=now, send=cut_off)

    assert [r.rcpt_tos for r in handler.received] == [[PEOPLE[0]]]
    doc = _email(es, names)
    assert doc["status"] == "retry" and str(doc["smtp_reason"]).startswith("interrupted")
    assert doc["delivered_to"] == [PEOPLE[0]]  # recorded when the server accepted it
    [row] = alert_status(es, names, rule_set.rules)
    assert (row.state, row.delivered) == ("due", (PEOPLE[0],))  # what `alerts status` shows

    report = run_alerts(es, names, rule_set, FAST, smtp_settings, now=now + timedelta(seconds=1))

    assert report.counts["emails_sent"] == 1
    assert [r.rcpt_tos for r in handler.received] == [[p] for p in PEOPLE]  # desk@ once
    doc = _email(es, names)
    assert (doc["status"], doc["delivered_to"]) == ("sent", PEOPLE)
    assert {d["status"] for d in ledger_docs(es, names, kind="story")} == {"sent"}
    quiet = run_alerts(es, names, rule_set, FAST, smtp_settings, now=now + timedelta(hours=3))
    assert quiet.emails == [] and len(handler.received) == 3
