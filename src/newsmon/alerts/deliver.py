"""Delivery: every decided, unsent batch becomes one email — claimed, sent (one message per
recipient, :mod:`.fanout`), recorded.

A batch is claimed in the ledger first (its email document, created or compare-and-set), so
two workers never send it both; the result is recorded on the email document and its
stories: ``sent``, ``retry`` (SMTP 4xx: due again after a backoff) or ``failed`` (5xx). See
docs/alerts.md.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

from ..config import Settings
from ..store import Client, IndexNames, connect, ensure_indices, ledger
from ..store.client import es_iso, es_time
from ..store.ledger import Status
from . import evaluate
from .actions import Honoured, honoured
from .email import AlertEmail, AlertItem, message_id_for
from .evaluate import decide
from .fanout import ledger_progress, send_each
from .grouping import item_event
from .links import LinkSettings
from .report import RunReport
from .rules import AlertRule, Mode, RuleSet, load_rules
from .settings import AlertSettings
from .smtp import SendResult, SendStatus, SmtpSettings, require_configured
from .smtp import send as smtp_send

__all__ = ["SendFunction", "deliver", "email_id", "open_alerts", "run_alerts"]

log = logging.getLogger(__name__)

SendFunction = Callable[[EmailMessage, SmtpSettings], SendResult]


def email_id(batch_key: str) -> str:
    """The ledger id of the email of batch ``batch_key``."""
    return hashlib.sha256(f"email\n{batch_key}".encode()).hexdigest()


def _claim(
    es: Client,
    names: IndexNames,
    batch_key: str,
    items: Sequence[Mapping[str, Any]],
    now: datetime,
    claim_timeout: timedelta,
    message_id: str,
) -> tuple[Mapping[str, Any] | None, int]:
    """Take the right to send ``batch_key``: (the email document before, attempts so far) or
    (None, -1) when another worker holds it, and (the document, -1) when it was already sent
    or failed.

    A batch is free when it has no email document yet, or one in ``retry``, or a ``sending``
    claim older than ``claim_timeout`` (its worker died). The first claim stores
    ``message_id``; every later attempt keeps the stored one."""
    first = items[0]
    claim = {
        "kind": "email",
        "rule_id": first["rule_id"],
        "batch_key": batch_key,
        "mode": first.get("mode"),
        "recipients": first.get("recipients"),
        "status": Status.SENDING,
        "claimed_at": es_iso(now),
        "updated_at": es_iso(now),
        "attempts": 0,
        "item_ids": [i["_id"] for i in items],
        "item_count": len(items),
        "message_id": message_id,
    }

    def take(current: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        if current is None:
            return claim
        status = current.get("status")
        if status in (Status.SENT, Status.FAILED):
            return None
        if status == Status.SENDING:
            claimed = es_time(current.get("claimed_at")) or now
            if now - claimed < claim_timeout:
                return None  # another worker is sending it (or died less than a timeout ago)
        return {
            **current,
            **claim,
            "attempts": int(current.get("attempts") or 0),
            "message_id": current.get("message_id") or message_id,
        }

    before, won = ledger.claim_email(es, names, email_id(batch_key), take)
    if not won:
        done = before is not None and before.get("status") in (Status.SENT, Status.FAILED)
        return (before, -1) if done else (None, -1)
    if before is None:
        return {}, 0
    return before, int(before.get("attempts") or 0)


def _alert_email(
    batch_key: str,
    items: Sequence[Mapping[str, Any]],
    recipients: Sequence[str] | None,
    message_id: str | None = None,
) -> AlertEmail:
    ordered = sorted(
        items,
        key=lambda d: (d.get("published_at") or d.get("indexed_at") or "", d["_id"]),
        reverse=True,
    )
    first = items[0]
    listed = ordered[: evaluate.MAX_ITEMS]
    notes: tuple[str, ...] = ()
    if len(ordered) > len(listed):
        rest = len(ordered) - len(listed)
        notes = (f"{rest} more matching stor{'y' if rest == 1 else 'ies'} not listed here.",)
    return AlertEmail(
        rule_id=first["rule_id"],
        rule_name=first.get("rule_name") or first["rule_id"],
        query=first.get("query") or "",
        recipients=tuple(recipients or first.get("recipients") or ()),
        items=tuple(
            AlertItem(
                story_id=d.get("story_id") or d["_id"],
                title=d.get("title") or "(no title)",
                url=d.get("url") or "",
                outlet=d.get("outlet") or "",
                published_at=es_time(d.get("published_at")),
                snippets=tuple(d.get("snippets") or ()),
                also_in=int(d.get("also_in") or 0),
                **item_event(d),
            )
            for d in listed
        ),
        batch_key=batch_key,
        mode=first.get("mode") or "immediate",
        period=first.get("period"),
        kibana_url=first.get("kibana_url"),
        total_matches=sum(int(d.get("matched_articles") or 1) for d in ordered),
        notes=notes,
        timezone=first.get("timezone") or "UTC",
        message_id=message_id,
    )


def deliver(
    es: Client,
    names: IndexNames,
    smtp: SmtpSettings,
    alert_settings: AlertSettings,
    *,
    modes: Sequence[Mode] = ("immediate", "digest"),
    now: datetime | None = None,
    send: SendFunction | None = None,
    source_notes: Mapping[str, Sequence[str]] | None = None,
    rules: Sequence[AlertRule] | None = None,
    links: LinkSettings | None = None,
) -> RunReport:
    """Send every due batch of decided stories not sent yet, one email per (rule, batch).

    ``source_notes`` adds lines to a rule's emails, by rule id (its failing feeds, see
    :func:`newsmon.alerts.notes.source_notes`). ``rules``: the enabled rules of the rules file
    in use; the batches of any other rule (disabled, removed, in another file) are held —
    left pending and sent once the rule is back (None: every rule's batches go). Batches of a
    snoozed rule are held until the snooze ends; muted stories and unsubscribed recipients
    are left out (docs/alerts.md). ``links``: the action links (default: the environment).

    A batch is claimed in the ledger first (its email document, created or compare-and-set), so
    two workers never send it both; the result is recorded on the email document and its
    stories: ``sent``, ``retry`` (SMTP 4xx: due again after a backoff) or ``failed`` (5xx).
    """
    now = now or datetime.now(UTC)
    send_email = send or smtp_send
    links = links if links is not None else LinkSettings.from_env()
    report = RunReport()
    ledger.refresh_ledger(es, names)
    due = ledger.due_stories(es, names, modes, now)
    active = None if rules is None else {r.id for r in rules}
    honour = honoured(es, names, {i[0]["rule_id"] for i in due.values()})
    if due and send is None:
        require_configured(smtp)  # before any claim: nothing is marked as tried
    for batch_key, all_items in sorted(due.items()):
        items = _sendable(es, names, batch_key, all_items, active, honour, now, report)
        if not items:
            continue
        before, attempts = _claim(
            es,
            names,
            batch_key,
            items,
            now,
            alert_settings.claim_timeout,
            message_id_for(batch_key, smtp.sender),
        )
        ids = [i["_id"] for i in items]
        if attempts < 0:
            if before is not None:  # sent or failed, but the stories were not updated: repair
                listed = set(before.get("item_ids") or ())
                done = [i for i in ids if i in listed]
                repaired = {"status": before["status"], "updated_at": es_iso(now)}
                ledger.update_stories(es, names, done, repaired)
                late = [i for i in ids if i not in listed]
                if late:  # joined the batch after it went out: the next batch takes them
                    moved = {"batch_key": f"{batch_key}+", "updated_at": es_iso(now)}
                    ledger.update_stories(es, names, late, moved)
            else:
                report.counts["batches_busy"] += 1
            continue
        before = before or {}
        left = list(before.get("recipients_left") or ())
        alert = _alert_email(batch_key, items, left or None, before.get("message_id"))
        if source_notes and source_notes.get(alert.rule_id):
            alert = replace(alert, notes=alert.notes + tuple(source_notes[alert.rule_id]))
        alert = replace(alert, recipients=tuple(honour.recipients(alert.rule_id, alert.recipients)))
        try:  # one message per recipient, each with its own links (.fanout)
            result = send_each(
                alert,
                smtp,
                links,
                now=now,
                send=send_email,
                delivered=before.get("delivered_to") or (),
                on_delivered=ledger_progress(es, names, email_id(batch_key), before, now),
                batch_recipients=items[0].get("recipients") or (),
            )
        except BaseException as exc:
            # Interrupted between "decided" and "sent": release the claim so the next run
            # resends (the same Message-ID); a hard kill is released by the claim timeout.
            ledger.update_email(
                es,
                names,
                email_id(batch_key),
                {
                    "status": Status.RETRY,
                    "smtp_reason": f"interrupted: {type(exc).__name__}: {exc}"[:500],
                    "updated_at": es_iso(now),
                },
            )
            raise
        if result.status == SendStatus.SENT:
            log.info(
                "rule %s: sent email to %d recipient(s): %d stor%s (batch %s)",
                alert.rule_id,
                len(alert.recipients) - len(result.refused),
                len(ids),
                "y" if len(ids) == 1 else "ies",
                batch_key,
            )
        status = _record(es, names, batch_key, ids, result, before, now, alert_settings)
        report.counts[f"emails_{status}"] += 1
        report.counts[f"stories_{status}"] += len(ids)
        report.emails.append(
            {
                "rule_id": alert.rule_id,
                "batch_key": batch_key,
                "status": str(status),
                "code": result.code,
                "reason": None if status == Status.SENT else result.reason[:500],
                "items": len(ids),
                "recipients": list(alert.recipients),
                "message_id": result.message_id,
            }
        )
        if status != Status.SENT:
            report.problem(f"rule {alert.rule_id}: email {status} ({result.reason})")
    return report


def _sendable(
    es: Client,
    names: IndexNames,
    batch_key: str,
    items: Sequence[dict[str, Any]],
    active: set[str] | None,
    honour: Honoured,
    now: datetime,
    report: RunReport,
) -> list[dict[str, Any]]:
    """The stories of a due batch to send now: none while its rule is held or snoozed; muted
    stories, and all when no recipient is left, are recorded ``skipped``."""
    rule_id = items[0]["rule_id"]
    if active is not None and rule_id not in active:
        report.counts["batches_held"] += 1
        report.held.append({"rule_id": rule_id, "batch_key": batch_key, "items": len(items)})
        return []
    until = honour.snoozed_until(rule_id, now)
    if until is not None:
        report.counts["batches_snoozed"] += 1
        report.held.append(
            {
                "rule_id": rule_id,
                "batch_key": batch_key,
                "items": len(items),
                "until": es_iso(until),
            }
        )
        return []
    muted = [i for i in items if honour.is_muted(rule_id, i.get("story_id") or i["_id"])]
    kept = [i for i in items if i not in muted]
    skip = {"status": Status.SKIPPED, "updated_at": es_iso(now)}
    if muted:
        ledger.update_stories(
            es, names, [i["_id"] for i in muted], {**skip, "skip_reason": "muted"}
        )
        report.counts["stories_muted"] += len(muted)
    if kept and all(i.get("event_repeat") for i in kept):  # only more coverage: no digest
        reason = "only more coverage of events alerted before"
        ledger.update_stories(es, names, [i["_id"] for i in kept], {**skip, "skip_reason": reason})
        report.counts["stories_event_repeats_skipped"] += len(kept)
        return []
    if kept and not honour.recipients(rule_id, kept[0].get("recipients") or ()):
        reason = "every recipient unsubscribed"
        ledger.update_stories(es, names, [i["_id"] for i in kept], {**skip, "skip_reason": reason})
        report.counts["stories_unsubscribed"] += len(kept)
        return []
    return kept


def _record(
    es: Client,
    names: IndexNames,
    batch_key: str,
    ids: Sequence[str],
    result: SendResult,
    before: Mapping[str, Any],
    now: datetime,
    alert_settings: AlertSettings,
) -> Status:
    """Write how a send ended on the batch's email document and its stories; the status.

    ``before`` is the email document as claimed: an attempt for the recipients an earlier one
    left over (4xx) keeps the earlier result — the email stays sent to those who got it, and
    only the recipients still left are tried again, so no one gets it twice for a refusal.
    """
    attempts = int(before.get("attempts") or 0) + 1
    status = Status(result.status)
    left = list(before.get("recipients_left") or ())
    delivered_before = bool(left and before.get("sent_at")) or bool(before.get("delivered_to"))
    refused = list(result.refused)
    reason = result.reason
    if left:  # the earlier permanent refusals stay on record
        refused = [r for r in before.get("refused") or () if r not in left] + refused
        reason = f"{reason} (earlier: {before.get('smtp_reason') or ''})"
    record: dict[str, Any] = {
        "status": status,
        "attempts": attempts,
        "message_id": result.message_id,
        "smtp_code": result.code,
        "smtp_reason": reason[:500] or None,
        "refused": refused,
        "recipients_left": [],
        "updated_at": es_iso(now),
    }
    if status == Status.SENT and not delivered_before:
        record["sent_at"] = es_iso(now)
    if status == Status.SENT and result.retry_recipients:  # some said "try later": only they
        status = Status.RETRY
        record["recipients_left"] = list(result.retry_recipients)
    elif status == Status.RETRY:  # the same recipients as this attempt, or those it names
        record["recipients_left"] = list(result.retry_recipients) or left
    if status == Status.RETRY and attempts >= alert_settings.max_attempts:
        status = Status.FAILED
        record["smtp_reason"] = f"gave up after {attempts} attempts: {reason}"[:500]
        record["recipients_left"] = []
    if status == Status.FAILED and delivered_before:  # it reached the others: it was sent
        status = Status.SENT
    record["status"] = status
    story_changes: dict[str, Any] = {"status": status, "updated_at": es_iso(now)}
    if status == Status.RETRY:
        backoff = min(alert_settings.retry_after * 2 ** (attempts - 1), timedelta(hours=2))
        record["next_attempt_at"] = story_changes["due_at"] = es_iso(now + backoff)
    ledger.update_email(es, names, email_id(batch_key), record)
    ledger.update_stories(es, names, ids, story_changes)
    return status


def open_alerts(
    settings: Settings, client: Client | None = None
) -> tuple[Client, IndexNames, AlertSettings, RuleSet]:
    """What a run needs: a client, the indices (created if missing), the settings, the rules."""
    es = client or connect(settings)
    names = IndexNames(settings.index_prefix)
    ensure_indices(es, names, settings.config_dir)
    alert_settings = AlertSettings.from_env(settings)
    return es, names, alert_settings, load_rules(alert_settings.rules_file)


def run_alerts(
    es: Client,
    names: IndexNames,
    rule_set: RuleSet,
    alert_settings: AlertSettings,
    smtp: SmtpSettings,
    *,
    mode: Mode | None = None,
    now: datetime | None = None,
    send: SendFunction | None = None,
    source_notes: Mapping[str, Sequence[str]] | None = None,
    links: LinkSettings | None = None,
) -> RunReport:
    """Decide (the enabled rules of ``mode``, or all), then deliver what is due; the batches
    of rules not enabled in ``rule_set`` are held."""
    now = now or datetime.now(UTC)
    report = decide(es, names, rule_set.enabled(mode), alert_settings, now=now)
    modes: tuple[Mode, ...] = (mode,) if mode else ("immediate", "digest")
    delivered = deliver(
        es,
        names,
        smtp,
        alert_settings,
        modes=modes,
        now=now,
        send=send,
        source_notes=source_notes,
        rules=rule_set.enabled(),
        links=links,
    )
    report.merge(delivered)
    return report
