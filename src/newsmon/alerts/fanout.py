"""One message per recipient: each copy of an alert email carries that recipient's own links.

RFC 8058's one-click ``List-Unsubscribe`` must unsubscribe the person who clicks without asking
who they are, so its link names one address; a rule with several recipients therefore sends
each of them a message of their own (own ``To``, ``List-Unsubscribe``, footer links and a
Message-ID derived from the batch's). The batch stays one email document in the ledger: each
recipient the server accepted is added to its ``delivered_to`` as soon as the server accepts
(before the next copy goes), so a retry, or a run after a crash, sends only to those who have
not got it (docs/alerts.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from ..store import Client, IndexNames, ledger
from ..store.client import es_iso
from .email import AlertEmail, compose, message_id_for
from .links import LinkSettings, email_links
from .smtp import SendResult, SendStatus, SmtpSettings

__all__ = ["ledger_progress", "recipient_message_id", "send_each"]

Send = Callable[[EmailMessage, SmtpSettings], SendResult]


def recipient_message_id(message_id: str, recipient: str, *, alone: bool) -> str:
    """The Message-ID of ``recipient``'s copy: the batch's own when they are its only recipient,
    else one made from it and the address (the same on every attempt; as long as the batch's,
    so the header is not folded)."""
    if alone:
        return message_id
    domain = message_id.strip("<>").rpartition("@")[2]
    seed = f"{message_id}\n{recipient.lower()}".encode("utf-8", "surrogatepass")
    return f"<newsmon.{hashlib.sha256(seed).hexdigest()[:32]}@{domain}>"


def _unique(addresses: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for address in addresses:
        if address.lower() not in seen:
            seen.add(address.lower())
            out.append(address)
    return out


def send_each(
    alert: AlertEmail,
    smtp: SmtpSettings,
    links: LinkSettings,
    *,
    now: datetime,
    send: Send,
    delivered: Sequence[str] = (),
    on_delivered: Callable[[str], None] = lambda address: None,
    batch_recipients: Sequence[str] = (),
) -> SendResult:
    """Send ``alert`` to each of its recipients not in ``delivered`` (accepted by an earlier
    attempt), one message each; ``on_delivered`` is called with each address the server
    accepted, right away; ``batch_recipients``: all the batch's recipients (default: the
    alert's), which decide the copies' Message-IDs. The result sums them up as one send of a
    message to all of them would: ``sent`` when one or more accepted (the others in
    ``refused``, those refused for now also in ``retry_recipients``), else ``retry`` or
    ``failed``.

    A failure that is not about an address (no connection, a 421, MAIL or DATA refused, TLS,
    authentication) ends the round: the recipients not tried yet share it, and no server is
    asked once per recipient in vain.
    """
    batch_id = alert.message_id or message_id_for(alert.batch_key, smtp.sender)
    got = {a.lower() for a in delivered}
    everyone = _unique(alert.recipients)
    alone = len(_unique(batch_recipients or everyone)) == 1
    todo = [a for a in everyone if a.lower() not in got]
    if not todo:
        status = SendStatus.SENT if got else SendStatus.FAILED
        reason = "delivered to every recipient before" if got else "no recipient left"
        return SendResult(status, None, reason, batch_id)
    accepted: list[str] = []
    later: list[str] = []
    refused: list[str] = []
    replies: list[tuple[str, SendResult]] = []
    stop: SendResult | None = None
    for address in todo:
        if stop is not None:
            (later if stop.status == SendStatus.RETRY else refused).append(address)
            continue
        result = _send_one(alert, address, batch_id, alone, smtp, links, now, send)
        replies.append((address, result))
        if result.status == SendStatus.SENT and address not in result.refused:
            accepted.append(address)
            on_delivered(address)
            continue
        if result.status == SendStatus.RETRY or address in result.retry_recipients:
            later.append(address)
        else:
            refused.append(address)
        if address not in result.refused and not result.reason.startswith("cannot compose"):
            stop = result  # not about this address (connection, TLS, MAIL, DATA): the same for all
    return _summary(batch_id, accepted, later, refused, replies)


def _send_one(
    alert: AlertEmail,
    address: str,
    batch_id: str,
    alone: bool,
    smtp: SmtpSettings,
    links: LinkSettings,
    now: datetime,
    send: Send,
) -> SendResult:
    one = replace(
        alert,
        recipients=(address,),
        message_id=recipient_message_id(batch_id, address, alone=alone),
    )
    one = replace(one, links=email_links(one, links, now=now))
    try:
        message = compose(one, smtp, now=now)
    except ValueError as exc:  # nothing a resend would fix (e.g. a bad stored address)
        return SendResult(SendStatus.FAILED, None, f"cannot compose the email: {exc}", batch_id)
    return send(message, smtp)


def _summary(
    batch_id: str,
    accepted: list[str],
    later: list[str],
    refused: list[str],
    replies: list[tuple[str, SendResult]],
) -> SendResult:
    """The copies' results as one, worded as one transaction to them all would be."""
    if accepted:
        status = SendStatus.SENT
    elif later:
        status = SendStatus.RETRY
    else:
        status = SendStatus.FAILED
    ok = next((r for a, r in replies if a in accepted), None)
    bad = [(a, r) for a, r in replies if a not in accepted]
    again = [r for a, r in bad if a in later]
    # the code of what is still to do decides: the 4xx to retry, else the 250, else the 5xx
    decisive = again[-1] if again else ok if ok is not None else bad[-1][1] if bad else None
    total = len(accepted) + len(later) + len(refused)
    refusals = "; ".join(_refusal(a, r) for a, r in bad)
    if ok is not None and not bad:
        reason = ok.reason
    elif ok is not None:
        reason = f"{ok.reason}; accepted for {len(accepted)} of {total} recipients, refused: "
        reason += refusals
    elif all(a in r.refused for a, r in bad):
        reason = "every recipient refused: " + refusals
    else:  # one failure that was not about an address, shared by the rest
        reason = bad[-1][1].reason
    untried = len(later) + len(refused) - len(bad)
    if untried:
        reason += f" ({untried} more recipient{'s' if untried > 1 else ''} not tried after it)"
    return SendResult(
        status,
        decisive.code if decisive is not None else None,
        reason,
        batch_id,
        refused=tuple(later + refused),
        retry_recipients=tuple(later),
    )


def _refusal(address: str, result: SendResult) -> str:
    """``address code text``: how one recipient's copy was refused."""
    prefix = "every recipient refused: "
    if address in result.refused and result.reason.startswith(prefix):
        return result.reason.removeprefix(prefix)
    return f"{address} {result.reason}"


def ledger_progress(
    es: Client, names: IndexNames, doc_id: str, before: Mapping[str, Any], now: datetime
) -> Callable[[str], None]:
    """What records, on the email document ``doc_id``, each recipient the server accepted
    (``delivered_to``; the first one also sets ``sent_at``)."""
    got = list(before.get("delivered_to") or ())
    first = not before.get("sent_at")

    def record(address: str) -> None:
        nonlocal first
        got.append(address)
        changes: dict[str, Any] = {"delivered_to": list(got), "updated_at": es_iso(now)}
        if first:
            changes["sent_at"] = es_iso(now)
            first = False
        ledger.update_email(es, names, doc_id, changes)

    return record
