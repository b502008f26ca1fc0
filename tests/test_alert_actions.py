"""Managing alerts: signed action links, mute/snooze/unsubscribe, held emails, status and
history, the plugin's pages (FastAPI TestClient) — on the real node and a real SMTP server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from newsmon.alerts import AlertSettings, SendResult, SendStatus, SmtpSettings, run_alerts
from newsmon.alerts.actions import Action, apply, honoured
from newsmon.alerts.links import LinkSettings
from newsmon.alerts.status import alert_history, alert_status
from newsmon.alerts.tokens import TokenError, sign, verify
from newsmon.config import Settings
from newsmon.store import IndexNames

from .helpers.alerts import article_doc, ledger_docs, rules_from, write_articles
from .helpers.plugin import SECRET, app_client, context, links_in, token_of
from .helpers.smtp import SENDER, Handler, plain_text

FAST = AlertSettings(lag=timedelta(0))
LINKS = LinkSettings("http://testserver/newsmon", SECRET)
QUAKE = (
    "alerts:\n  - id: quake\n    name: Quake <b>alerts</b>\n    query: earthquake\n"
    "    recipients: [desk@example.org]\n"
)


# --- tokens (pure) -------------------------------------------------------------------------------


def test_tokens_name_one_action_and_refuse_forged_expired_malformed() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    action = Action("mute", "quake", story_id="story-1")
    token = sign(action, SECRET, now=now, valid_for=timedelta(days=30))
    assert verify(token, SECRET, now=now + timedelta(days=29))[0] == action
    body, mac = token.split(".")
    forged_body = sign(Action("mute", "quake", story_id="story-2"), SECRET, now=now).split(".")[0]
    for forged in (f"{forged_body}.{mac}", f"{body}.{mac[:-2]}AA", sign(action, b"x" * 32)):
        with pytest.raises(TokenError) as error:
            verify(forged, SECRET, now=now)
        assert error.value.reason == "forged"
    with pytest.raises(TokenError) as error:
        verify(token, SECRET, now=now + timedelta(days=30))
    assert error.value.reason == "expired"
    for junk in ("", "abc", "a.b.c", "!!.??", "x" * 5000):
        with pytest.raises(TokenError) as error:
            verify(junk, SECRET, now=now)
        assert error.value.reason in ("malformed", "forged")
    with pytest.raises(ValueError, match="not a recipient"):
        Action("unsubscribe", "quake", recipients=("a@example.org",), recipient="b@example.org")


# --- emails carry the links; the app acts on them ------------------------------------------------


@pytest.mark.es
def test_emails_have_one_click_unsubscribe_and_the_app_honours_it_once(
    es: Elasticsearch,
    settings: Settings,
    names: IndexNames,
    smtp: tuple[Handler, SmtpSettings],
    tmp_path: Path,
) -> None:
    handler, smtp_settings = smtp
    rules_file = tmp_path / "alerts.yaml"
    rules_file.write_text(QUAKE)
    rule_set = rules_from(QUAKE)
    write_articles(es, names, article_doc(1, "Earthquake in Quetta", "An earthquake shook Quetta."))
    run_alerts(es, names, rule_set, FAST, smtp_settings, links=LINKS)
    [received] = handler.received
    message = received.message
    links = links_in(received)
    assert set(links) == {"Mute", "Snooze", "Unsubscribe", "This"}
    assert message["List-Unsubscribe"] == f"<{links['Unsubscribe'][0]}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html_part = received.message.get_body(("html",))
    assert html_part is not None and links["Unsubscribe"][0] in str(html_part.get_content())

    client = app_client(lambda: context(settings, es, names, rules_file))
    url = links["Unsubscribe"][0].removeprefix("http://testserver")
    confirm = client.get(url)  # what a link scanner or a click sees: a page, no action
    assert confirm.status_code == 200 and "unsubscribe desk@example.org" in confirm.text
    assert honoured(es, names, ["quake"]).unsubscribed == {}
    one_click = {"List-Unsubscribe": "One-Click"}
    done = client.post(url, data=one_click)  # RFC 8058: what the mail client POSTs
    assert done.status_code == 200 and "desk@example.org unsubscribed" in done.text
    again = client.post(url, data=one_click)
    assert again.status_code == 409 and "used already" in again.text
    assert dict(honoured(es, names, ["quake"]).unsubscribed) == {"quake": {"desk@example.org"}}

    write_articles(es, names, article_doc(2, "Earthquake in Ziarat", "An earthquake hit Ziarat."))
    report = run_alerts(es, names, rule_set, FAST, smtp_settings, links=LINKS)
    assert report.counts["stories_unsubscribed"] == 1 and report.counts["emails_sent"] == 0
    assert len(handler.received) == 1
    skipped = [d for d in ledger_docs(es, names, kind="story") if d["status"] == "skipped"]
    assert [d["skip_reason"] for d in skipped] == ["every recipient unsubscribed"]


@pytest.mark.es
def test_forged_expired_and_replayed_links_are_refused_and_change_nothing(
    es: Elasticsearch, settings: Settings, names: IndexNames, tmp_path: Path
) -> None:
    rules_file = tmp_path / "alerts.yaml"
    rules_file.write_text(QUAKE)
    client = app_client(lambda: context(settings, es, names, rules_file))
    mute = Action("mute", "quake", story_id="story-9")
    good = sign(mute, SECRET)
    _body, mac = good.split(".")
    other = sign(Action("mute", "quake", story_id="story-1"), SECRET).split(".")[0]
    cases = {
        "forged": (f"{other}.{mac}", 403),
        "wrong key": (sign(mute, b"another-secret-0123456789"), 403),
        "expired": (sign(mute, SECRET, now=datetime.now(UTC) - timedelta(days=31)), 410),
        "malformed": ("not-a-token", 400),
    }
    for name, (token, status) in cases.items():
        for method in (client.get, client.post):
            answer = method("/newsmon/act", params={"t": token})
            assert answer.status_code == status, (name, method)
            assert "Link refused" in answer.text
    assert honoured(es, names).muted == set()
    assert client.post("/newsmon/act", params={"t": good}).status_code == 200
    replay = client.post("/newsmon/act", params={"t": good})
    assert replay.status_code == 409
    assert client.get("/newsmon/act", params={"t": good}).status_code == 409
    assert honoured(es, names).muted == {("quake", "story-9")}
    # the same action done again another way (the CLI) is harmless
    apply(es, names, mute)
    assert honoured(es, names).muted == {("quake", "story-9")}


@pytest.mark.es
def test_a_snooze_link_holds_the_rule_until_the_snooze_ends(
    es: Elasticsearch,
    settings: Settings,
    names: IndexNames,
    smtp: tuple[Handler, SmtpSettings],
    tmp_path: Path,
) -> None:
    handler, smtp_settings = smtp
    rules_file = tmp_path / "alerts.yaml"
    rules_file.write_text(QUAKE)
    rule_set = rules_from(QUAKE)
    write_articles(es, names, article_doc(1, "Earthquake in Quetta", "An earthquake shook Quetta."))
    run_alerts(es, names, rule_set, FAST, smtp_settings, links=LINKS)
    [snooze] = links_in(handler.received[0])["Snooze"]
    client = app_client(lambda: context(settings, es, names, rules_file))
    assert client.post("/newsmon/act", params={"t": token_of(snooze)}).status_code == 200

    write_articles(es, names, article_doc(2, "Earthquake in Ziarat", "An earthquake hit Ziarat."))
    now = datetime.now(UTC)
    held = run_alerts(es, names, rule_set, FAST, smtp_settings, links=LINKS, now=now)
    assert held.counts["batches_snoozed"] == 1 and len(handler.received) == 1
    [row] = [r for r in alert_status(es, names, rule_set.rules) if r.state != "sent"]
    assert row.state == "snoozed" and row.until is not None and row.until > now
    later = run_alerts(
        es, names, rule_set, FAST, smtp_settings, links=LINKS, now=now + timedelta(hours=25)
    )
    assert later.counts["emails_sent"] == 1
    assert "Earthquake in Ziarat" in plain_text(handler.received[1])


# --- held emails of disabled or removed rules ----------------------------------------------------


@pytest.mark.es
def test_pending_emails_of_a_disabled_or_other_files_rule_are_held_until_it_is_back(
    es: Elasticsearch, names: IndexNames, smtp: tuple[Handler, SmtpSettings]
) -> None:
    handler, smtp_settings = smtp
    rule_set = rules_from(QUAKE)
    write_articles(es, names, article_doc(1, "Earthquake in Quetta", "An earthquake shook Quetta."))
    now = datetime.now(UTC)

    def busy(message: Any, settings: SmtpSettings) -> SendResult:
        return SendResult(SendStatus.RETRY, 451, "451 try later", str(message["Message-ID"]))

    first = run_alerts(es, names, rule_set, FAST, smtp_settings, now=now, send=busy)
    assert first.counts["emails_retry"] == 1
    [row] = alert_status(es, names, rule_set.rules, now=now)
    assert row.state == "retrying" and row.next_attempt_at is not None
    assert "451" in (row.smtp_reason or "")

    disabled = rules_from(QUAKE + "    enabled: false\n")
    other = rules_from(QUAKE.replace("id: quake", "id: other").replace("earthquake", "flood"))
    later = now + timedelta(hours=1)
    for rules in (disabled, other):  # the rule switched off, or another rules file
        report = run_alerts(es, names, rules, FAST, smtp_settings, now=later)
        assert report.counts["batches_held"] == 1 and report.counts["emails_sent"] == 0
        assert "email held: rule quake" in report.render()
        assert [r.state for r in alert_status(es, names, rules.rules, now=later)] == ["held"]
    assert handler.received == []

    back = run_alerts(es, names, rule_set, FAST, smtp_settings, now=later)
    assert back.counts["emails_sent"] == 1 and len(handler.received) == 1
    [sent] = alert_history(es, names, rule_id="quake", with_stories=True)
    assert (sent.state, sent.attempts, sent.titles) == ("sent", 2, ("Earthquake in Quetta",))


# --- the command line ----------------------------------------------------------------------------


@pytest.mark.es
def test_cli_status_history_mute_test_email_and_unconfigured_smtp(
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
    rules_file = tmp_path / "alerts.yaml"
    rules_file.write_text(QUAKE)
    for key, value in {
        "NEWSMON_ES_URL": settings.es_url,
        "NEWSMON_INDEX_PREFIX": settings.index_prefix,
        "NEWSMON_CONFIG_DIR": settings.config_dir,
        "NEWSMON_ALERTS": str(rules_file),
        "NEWSMON_ALERTS_LAG": "0s",
        "NEWSMON_SMTP_FROM": SENDER,
        "NEWSMON_ACTIONS_URL": "http://testserver/newsmon",
        "NEWSMON_ACTION_SECRET": SECRET.decode(),
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("NEWSMON_SMTP_HOST", raising=False)
    write_articles(
        es,
        names,
        article_doc(1, "Earthquake in Quetta", "An earthquake shook Quetta.", story_id="s-1"),
        article_doc(2, "Earthquake in Ziarat", "An earthquake hit Ziarat.", story_id="s-2"),
    )

    # no mail server configured: a clear refusal, exit 2, nothing tried, nothing lost
    assert main(["alerts", "run"]) == 2
    err = capsys.readouterr().err
    assert "no mail server configured: set NEWSMON_SMTP_HOST" in err
    assert {d["status"] for d in ledger_docs(es, names, kind="story")} == {"pending"}
    assert ledger_docs(es, names, kind="email") == []
    assert main(["alerts", "status"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("STATE") and "due       quake" in out

    monkeypatch.setenv("NEWSMON_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("NEWSMON_SMTP_PORT", str(smtp_settings.port))
    assert main(["alerts", "mute", "quake", "s-2"]) == 0
    assert "story s-2 muted for alert quake" in capsys.readouterr().out
    assert main(["alerts", "run"]) == 0
    capsys.readouterr()
    [received] = handler.received
    assert "Earthquake in Quetta" in plain_text(received)
    assert "Earthquake in Ziarat" not in plain_text(received)  # muted before it went out

    assert main(["alerts", "history", "--json", "--since", "1h"]) == 0
    [email] = json.loads(capsys.readouterr().out)
    assert (email["rule_id"], email["state"], email["recipients"]) == (
        "quake",
        "sent",
        ["desk@example.org"],
    )
    assert email["titles"] == ["Earthquake in Quetta"]
    assert main(["alerts", "status", "--json", "--rule", "quake"]) == 0
    assert [r["state"] for r in json.loads(capsys.readouterr().out)] == ["sent"]

    assert main(["alerts", "test-email", "quake", "--to", "me@example.org"]) == 0
    assert "test email sent to me@example.org" in capsys.readouterr().out
    test = handler.received[-1]
    assert test.rcpt_tos == ["me@example.org"]
    assert str(test.message["Subject"]).startswith("[newsmon test] ")
    assert "TEST EMAIL" in plain_text(test) and "Earthquake in Quetta" in plain_text(test)
    assert test.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert main(["alerts", "status", "--rule", "nope"]) == 2


# --- the pages: Airflow's login, escaping ---------------------------------------------------------


@pytest.mark.es
@pytest.mark.airflow
def test_pages_need_an_airflow_login_and_escape_what_they_show(
    airflow_db: None,
    es: Elasticsearch,
    settings: Settings,
    names: IndexNames,
    smtp: tuple[Handler, SmtpSettings],
    tmp_path: Path,
) -> None:
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.configuration import conf

    _handler, smtp_settings = smtp
    rules_file = tmp_path / "alerts.yaml"
    rules_file.write_text(QUAKE)
    hostile = "Earthquake <script>alert(1)</script> in Quetta"
    Path(settings.feeds_file).write_text(
        "feeds:\n  - id: wire\n    name: Wire <i>feed</i>\n    url: https://wire.example/rss\n"
    )
    write_articles(es, names, article_doc(1, hostile, "An earthquake shook Quetta."))
    run_alerts(es, names, rules_from(QUAKE), FAST, smtp_settings)

    conf.set("api_auth", "jwt_secret", "newsmon-test-jwt-secret-0123456789")
    manager = create_auth_manager()
    manager.init()
    jwt = manager.generate_jwt(SimpleAuthManagerUser(username="admin", role="ADMIN"))
    client = app_client(lambda: context(settings, es, names, rules_file))
    pages = ["/", "/feeds", "/rules", "/rules/quake", "/rules/quake/backtest?since=2d"]
    pages = [f"/newsmon{p}" for p in pages]
    for page in pages:
        assert client.get(page).status_code == 401, page
        assert client.get(page, cookies={"_token": "forged.jwt.value"}).status_code == 403
        answer = client.get(page, headers={"Authorization": f"Bearer {jwt}"})
        assert answer.status_code == 200, (page, answer.text[:300])
        assert "<script>" not in answer.text
        assert "Quake <b>" not in answer.text
    client.cookies.set("_token", jwt)  # how the Airflow UI calls it
    rule_page = client.get("/newsmon/rules/quake").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rule_page
    assert "desk@example.org" in rule_page and ">sent<" in rule_page
    assert "Quake &lt;b&gt;alerts&lt;/b&gt;" in client.get("/newsmon/rules").text
    assert "newsmon-overview" in client.get("/newsmon/").text  # the Kibana dashboard link
    feeds = client.get("/newsmon/feeds").text
    assert ">wire<" in feeds and "never" in feeds
    assert client.get("/newsmon/rules/none").status_code == 404


# --- the operator hears about failing feeds ------------------------------------------------------


@pytest.mark.es
def test_the_operator_gets_one_email_per_failure_streak_and_one_on_recovery(
    es: Elasticsearch, names: IndexNames, smtp: tuple[Handler, SmtpSettings]
) -> None:
    from newsmon.alerts.operator import notify_operator
    from newsmon.config import FeedConfig

    handler, smtp_settings = smtp
    feeds = [FeedConfig(id="dawn", name="Dawn", url="https://www.dawn.com/feeds/home")]
    now = datetime(2026, 12, 4, 12, tzinfo=UTC)
    env = {"NEWSMON_OPERATOR_EMAIL": "ops@example.org", "NEWSMON_FEED_FAILING_AFTER": "24h"}

    def state(**fields: Any) -> None:
        es.index(index=names.feeds, id="dawn", document={"feed_id": "dawn", **fields}, refresh=True)

    def notify(at: datetime) -> dict[str, int]:
        import newsmon.alerts.operator as operator

        return dict(
            operator.operator_notices(
                es,
                names,
                feeds,
                smtp_settings,
                operator="ops@example.org",
                failing_after=timedelta(hours=24),
                now=at,
            )
        )

    failure = {
        "at": (now - timedelta(hours=1)).isoformat(),
        "outcome": "timeout",
        "reason": "timed out after 30s",
    }
    started = now - timedelta(hours=30)
    state(consecutive_failures=12, failing_since=started.isoformat(), recent_failures=[failure])
    assert notify(now - timedelta(hours=8)) == {}  # failing 22 h: not yet
    assert notify(now) == {"operator_failing": 1}
    assert notify(now + timedelta(hours=1)) == {}  # the same streak: once
    [failing] = handler.received
    assert failing.rcpt_tos == ["ops@example.org"]
    assert failing.message["Subject"] == "[newsmon] feed dawn failing since 2026-12-03 06:00 UTC"
    assert "timed out after 30s" in plain_text(failing)

    state(consecutive_failures=0, last_success_at=(now + timedelta(hours=2)).isoformat())
    assert notify(now + timedelta(hours=2)) == {"operator_recovered": 1}
    assert notify(now + timedelta(hours=3)) == {}
    assert handler.received[-1].message["Subject"] == "[newsmon] feed dawn recovered"

    again = now + timedelta(days=3)  # a new streak: a new email
    state(consecutive_failures=3, failing_since=(again - timedelta(days=2)).isoformat())
    assert notify(again) == {"operator_failing": 1} and len(handler.received) == 3
    # without an operator address (or a mail server): nothing
    assert notify_operator(es, names, "/nonexistent.yaml", smtp_settings, environ={}) == {}
    unconfigured = SmtpSettings(configured=False)
    assert notify_operator(es, names, "/nonexistent.yaml", unconfigured, environ=env) == {}


@pytest.mark.es
def test_times_in_emails_are_in_the_rules_time_zone(
    es: Elasticsearch, names: IndexNames, smtp: tuple[Handler, SmtpSettings]
) -> None:
    handler, smtp_settings = smtp
    rule_set = rules_from(QUAKE + "    timezone: Asia/Karachi\n")
    published = "2021-08-03T09:12:00+00:00"
    write_articles(
        es, names, article_doc(1, "Earthquake in Quetta", "An earthquake.", published_at=published)
    )
    run_alerts(es, names, rule_set, FAST, smtp_settings)
    [received] = handler.received
    assert "2021-08-03 14:12 PKT" in plain_text(received)
