"""What the alert emails are doing: queued, due, retrying, held, snoozed, sent, failed.

Read from the ledger alone (``newsmon alerts status`` / ``history``, the Airflow pages): a
batch not sent yet is one of

- ``queued``: decided, due later (a digest whose period has not ended);
- ``due``: to be sent by the next run;
- ``retrying``: an attempt failed with a 4xx or a lost connection; ``next_attempt_at`` says
  when the next one is;
- ``sending``: a run claimed it and is sending it (or died; the claim times out);
- ``held``: its rule is disabled or not in the rules file: sent only if the rule comes back;
- ``snoozed``: its rule is snoozed until ``until``;

and an email tried is ``sent``, ``retrying`` or ``failed`` (with the SMTP reply).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..store import Client, IndexNames, ledger
from ..store.client import es_time
from ..store.ledger import Status
from .actions import Honoured, honoured
from .deliver import email_id
from .rules import AlertRule

__all__ = [
    "BatchStatus",
    "alert_history",
    "alert_status",
    "render_rows",
    "reply_of",
    "state_counts",
]

TITLES = 5  # story titles kept per row


@dataclass(frozen=True)
class BatchStatus:
    """One email (a rule's batch) and where it is."""

    rule_id: str
    batch_key: str
    state: str
    stories: int
    recipients: tuple[str, ...]
    titles: tuple[str, ...] = ()
    story_ids: tuple[str, ...] = ()
    due_at: datetime | None = None
    next_attempt_at: datetime | None = None
    sent_at: datetime | None = None
    updated_at: datetime | None = None
    attempts: int = 0
    smtp_code: int | None = None
    smtp_reason: str | None = None
    until: datetime | None = None  # snoozed until
    refused: tuple[str, ...] = field(default_factory=tuple)
    delivered: tuple[str, ...] = field(default_factory=tuple)  # recipients who have it

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, datetime):
                out[key] = value.isoformat()
            elif isinstance(value, tuple):
                out[key] = list(value)
        return out


def _state(
    items: Sequence[Mapping[str, Any]],
    rule_id: str,
    active: set[str] | None,
    honour: Honoured,
    now: datetime,
) -> tuple[str, datetime | None]:
    statuses = {i.get("status") for i in items}
    if Status.SENDING in statuses:
        return "sending", None
    if active is not None and rule_id not in active:
        return "held", None
    until = honour.snoozed_until(rule_id, now)
    if until is not None:
        return "snoozed", until
    if Status.RETRY in statuses:
        return "retrying", None
    due = min((es_time(i.get("due_at")) or now for i in items), default=now)
    return ("due" if due <= now else "queued"), None


def _row(
    rule_id: str,
    batch_key: str,
    state: str,
    items: Sequence[Mapping[str, Any]],
    email: Mapping[str, Any] | None,
    until: datetime | None = None,
) -> BatchStatus:
    email = email or {}
    first = items[0] if items else {}
    dues = [t for t in (es_time(i.get("due_at")) for i in items) if t is not None]
    return BatchStatus(
        rule_id=rule_id,
        batch_key=batch_key,
        state=state,
        stories=len(items) or int(email.get("item_count") or 0),
        recipients=tuple(email.get("recipients") or first.get("recipients") or ()),
        titles=tuple(str(i.get("title") or "") for i in items[:TITLES]),
        story_ids=tuple(str(i.get("story_id") or i.get("_id")) for i in items[:TITLES]),
        due_at=min(dues) if dues else None,
        next_attempt_at=es_time(email.get("next_attempt_at")),
        sent_at=es_time(email.get("sent_at")),
        updated_at=es_time(email.get("updated_at") or first.get("updated_at")),
        attempts=int(email.get("attempts") or 0),
        smtp_code=email.get("smtp_code"),
        smtp_reason=email.get("smtp_reason"),
        until=until,
        refused=tuple(email.get("refused") or ()),
        delivered=tuple(email.get("delivered_to") or ()),
    )


def alert_status(
    es: Client,
    names: IndexNames,
    rules: Sequence[AlertRule] | None,
    *,
    rule_id: str | None = None,
    now: datetime | None = None,
    recent: int = 20,
) -> list[BatchStatus]:
    """Every email not sent yet, then the ``recent`` last emails tried (sent, failed).

    ``rules``: the rules file's rules (its enabled ones send; others are held); None: none held.
    """
    now = now or datetime.now(UTC)
    ledger.refresh_ledger(es, names)
    active = None if rules is None else {r.id for r in rules if r.enabled}
    batches = ledger.open_stories(es, names, rule_id)
    honour = honoured(es, names, {i[0]["rule_id"] for i in batches.values()})
    emails = {d["_id"]: d for d in ledger.email_docs(es, names, ids=[email_id(k) for k in batches])}
    rows: list[BatchStatus] = []
    for batch_key, items in sorted(batches.items()):
        items.sort(key=lambda d: str(d.get("published_at") or ""), reverse=True)
        rid = items[0]["rule_id"]
        state, until = _state(items, rid, active, honour, now)
        rows.append(_row(rid, batch_key, state, items, emails.get(email_id(batch_key)), until))
    order = ["sending", "retrying", "due", "queued", "snoozed", "held"]
    rows.sort(key=lambda r: (order.index(r.state), r.rule_id, r.batch_key))
    done = [
        d
        for d in ledger.email_docs(es, names, rule_id=rule_id, size=recent * 2)
        if d.get("status") in (Status.SENT, Status.FAILED)
    ][:recent]
    rows += _with_stories(es, names, done)
    return rows


def _with_stories(
    es: Client, names: IndexNames, docs: Sequence[Mapping[str, Any]]
) -> list[BatchStatus]:
    """Rows of email documents, with the titles of their first stories (one mget)."""
    wanted = [i for d in docs for i in (d.get("item_ids") or ())[:TITLES]]
    stories = {s["_id"]: s for s in ledger.stories_of(es, names, wanted)} if wanted else {}
    rows = []
    for doc in docs:
        items = [stories[i] for i in (doc.get("item_ids") or ())[:TITLES] if i in stories]
        row = _email_row(doc)
        rows.append(_row(row.rule_id, row.batch_key, row.state, items, doc) if items else row)
    return rows


def _email_row(doc: Mapping[str, Any]) -> BatchStatus:
    state = {"retry": "retrying"}.get(str(doc.get("status")), str(doc.get("status")))
    return _row(str(doc.get("rule_id")), str(doc.get("batch_key")), state, (), doc)


def alert_history(
    es: Client,
    names: IndexNames,
    *,
    rule_id: str | None = None,
    since: datetime | None = None,
    limit: int = 200,
    with_stories: bool = False,
) -> list[BatchStatus]:
    """The emails tried (sent, retrying, failed), newest first; ``with_stories`` adds their
    story titles."""
    ledger.refresh_ledger(es, names)
    docs = ledger.email_docs(es, names, rule_id=rule_id, since=since, size=limit)
    docs = [d for d in docs if d.get("status") != Status.SENDING]
    return _with_stories(es, names, docs) if with_stories else [_email_row(d) for d in docs]


def reply_of(row: BatchStatus) -> str:
    """The SMTP reply of a row: its reason (which starts with the code when there is one)."""
    reason = row.smtp_reason or ""
    if row.smtp_code and not reason.startswith(str(row.smtp_code)):
        reason = f"{row.smtp_code} {reason}".strip()
    return reason


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment else "-"


def render_rows(rows: Iterable[BatchStatus], *, empty: str = "no alert emails") -> str:
    """A table: state, rule, stories, recipients, when, the SMTP reply."""
    lines = [f"{'STATE':<9} {'RULE':<24} {'STORIES':>7}  {'WHEN':<16}  RECIPIENTS / DETAIL"]
    count = 0
    for row in rows:
        count += 1
        if row.state == "retrying":
            when, detail = row.next_attempt_at or row.due_at, f"attempt {row.attempts + 1} next"
        elif row.state in ("sent", "failed"):
            when, detail = row.sent_at or row.updated_at, ""
        elif row.state == "snoozed":
            when, detail = row.until, "snoozed until then"
        elif row.state == "held":
            when, detail = row.due_at, "rule disabled or not in the rules file"
        else:
            when, detail = row.due_at, ""
        lines.append(
            f"{row.state:<9} {row.rule_id:<24} {row.stories:>7}  {_when(when):<16}  "
            + ", ".join(row.recipients)
        )
        reply = reply_of(row)
        for extra in (detail, reply and f"SMTP: {reply}"):
            if extra:
                lines.append(f"{'':<9} {'':<24} {'':>7}  {'':<16}  {extra}")
    if not count:
        return empty
    return "\n".join(lines)


def state_counts(rows: Iterable[BatchStatus]) -> dict[str, dict[str, int]]:
    """Emails per rule and state."""
    counts: dict[str, dict[str, int]] = {}
    for row in rows:
        by_state = counts.setdefault(row.rule_id, {})
        by_state[row.state] = by_state.get(row.state, 0) + 1
    return counts
