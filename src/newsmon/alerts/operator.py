"""Emails to the operator about sources: a feed failing longer than
``NEWSMON_FEED_FAILING_AFTER`` gets one email to ``NEWSMON_OPERATOR_EMAIL`` per failure streak,
and one when it recovers.

Each streak is a ``operator`` document in ``<prefix>alert-actions`` whose id is the feed and the
start of the streak, so a streak is announced once whatever retries or concurrent runs do; an
email that could not be sent is tried again by the next run.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

from ..config import ConfigError, FeedConfig
from ..health import flagged, format_duration
from ..store import Client, IndexNames
from ..store import actions as store
from ..store.client import es_iso, es_time, exists
from ..store.feeds import load_feed_states
from .smtp import SendResult, SendStatus, SmtpSettings, send
from .untrusted import check_address, clean

__all__ = ["OPERATOR_ENV", "notify_operator", "operator_address", "operator_notices"]

log = logging.getLogger(__name__)

OPERATOR_ENV = "NEWSMON_OPERATOR_EMAIL"
Send = Callable[[EmailMessage, SmtpSettings], SendResult]


def operator_address(environ: Mapping[str, str] | None = None) -> str | None:
    """``NEWSMON_OPERATOR_EMAIL`` (one bare address), or None."""
    env = os.environ if environ is None else environ
    raw = env.get(OPERATOR_ENV, "").strip()
    if not raw:
        return None
    try:
        return check_address(raw)
    except ValueError as exc:
        raise ConfigError(str(exc), file="environment", field=OPERATOR_ENV) from None


def _message(
    smtp: SmtpSettings, to: str, subject: str, body: str, key: str, now: datetime
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = smtp.sender
    message["To"] = to
    message["Subject"] = clean(subject, 200)
    message["Date"] = format_datetime(now)
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    message["Message-ID"] = f"<newsmon.{digest}@{smtp.sender_address.rpartition('@')[2]}>"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body)
    return message


def operator_notices(
    es: Client,
    names: IndexNames,
    feeds: Sequence[FeedConfig],
    smtp: SmtpSettings,
    *,
    operator: str | None,
    failing_after: timedelta,
    now: datetime | None = None,
    send_email: Send = send,
) -> Counter[str]:
    """Email the operator about feeds that started failing for long, or recovered; counts of
    ``operator_failing`` / ``operator_recovered`` emails sent (and ``operator_retry``)."""
    counts: Counter[str] = Counter()
    if operator is None or not feeds or not exists(es, names.feeds):
        return counts
    now = now or datetime.now(UTC)
    states = load_feed_states(es, names, [f.id for f in feeds if f.enabled])

    def deliver(message: EmailMessage, what: str) -> bool:
        result = send_email(message, smtp)
        ok = result.status == SendStatus.SENT
        counts[f"operator_{what}" if ok else "operator_retry"] += 1
        if not ok:
            log.warning("operator email (%s) not sent: %s", what, result.reason)
        return ok

    for feed in feeds:
        state = states.get(feed.id)
        if state is None or state.failing_since is None:
            continue
        if not flagged(state.failing_since, state.consecutive_failures, now, failing_after):
            continue
        doc_id = store.action_id("operator", feed.id, es_iso(state.failing_since))
        notice = store.get_action(es, names, doc_id)
        if notice is not None and notice.get("status") == "sent":
            continue
        last = state.recent_failures[-1] if state.recent_failures else {}
        reason = clean(str(last.get("reason") or last.get("outcome") or "unknown"), 300)
        body = (
            f"The feed {feed.id} ({clean(feed.name, 200)}) has failed"
            f" {state.consecutive_failures} time(s) in a row since"
            f" {state.failing_since:%Y-%m-%d %H:%M} UTC (more than"
            f" {format_duration(failing_after)}).\n\nURL: {feed.url}\nLast reason: {reason}\n\n"
            "`newsmon feeds status --failing` lists every failing feed. You will get one more"
            " email when it recovers.\n"
        )
        message = _message(
            smtp,
            operator,
            f"[newsmon] feed {feed.id} failing since {state.failing_since:%Y-%m-%d %H:%M} UTC",
            body,
            doc_id,
            now,
        )
        sent = deliver(message, "failing")
        store.put_action(
            es,
            names,
            doc_id,
            {
                "kind": "operator",
                "feed_id": feed.id,
                "failing_since": es_iso(state.failing_since),
                "status": "sent" if sent else "retry",
                "notified_at": es_iso(now) if sent else None,
                "reason": reason,
                "at": es_iso(now),
            },
        )
    for notice in store.open_notices(es, names):
        if notice.get("status") != "sent":
            continue  # the failing email itself is still to go
        state = states.get(str(notice.get("feed_id")))
        since = es_time(notice.get("failing_since"))
        if state is None or (state.failing_since is not None and state.failing_since == since):
            continue  # still the same streak (or the feed is no longer listed)
        feed_id = str(notice["feed_id"])
        body = (
            f"The feed {feed_id} works again"
            + (
                f" (last success {state.last_success_at:%Y-%m-%d %H:%M} UTC)"
                if state.last_success_at
                else ""
            )
            + f"; it had been failing since {since:%Y-%m-%d %H:%M} UTC.\n"
            if since
            else f"The feed {feed_id} works again.\n"
        )
        message = _message(
            smtp, operator, f"[newsmon] feed {feed_id} recovered", body, notice["_id"] + "+", now
        )
        if deliver(message, "recovered"):
            store.put_action(
                es,
                names,
                notice["_id"],
                {
                    **{k: v for k, v in notice.items() if k != "_id"},
                    "recovery_status": "sent",
                    "recovered_at": es_iso(now),
                },
            )
    return counts


def notify_operator(
    es: Client,
    names: IndexNames,
    feeds_file: str,
    smtp: SmtpSettings,
    *,
    now: datetime | None = None,
    environ: Mapping[str, str] | None = None,
) -> Counter[str]:
    """:func:`operator_notices` as configured by the environment (``NEWSMON_OPERATOR_EMAIL``,
    ``NEWSMON_FEED_FAILING_AFTER``), over the feeds of ``feeds_file``; nothing without an
    operator address or a mail server."""
    from ..config import load_feeds
    from ..health import failing_after_from_env

    operator = operator_address(environ)
    if operator is None or not smtp.configured:
        return Counter()
    try:
        feeds = load_feeds(feeds_file)
    except ConfigError as exc:
        log.warning("operator emails left out: %s", exc)
        return Counter()
    return operator_notices(
        es,
        names,
        feeds,
        smtp,
        operator=operator,
        failing_after=failing_after_from_env(environ),
        now=now,
    )
