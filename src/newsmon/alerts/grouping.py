"""Alerts by event: each decision records the event of its story, and a rule with
``once_per: event`` does not send a later report of an event it has alerted on
(docs/events.md, "Alerts by event").

The email groups a batch's stories by the ``event_id`` recorded here (:mod:`.email`). Which
decisions are *repeats* is decided when they are created, from the ledger: a story whose event
the rule has alerted on — a decision of that event, not a repeat itself, whose email was tried
(``sending``, ``sent``, ``retry``; a muted, unsubscribed or failed one does not count: the
event never reached anyone). An immediate rule records a repeat ``skipped`` (``skip_reason:
event already alerted``); a digest keeps it in its batch, listed under "more coverage" of the
event (a digest with nothing but repeats is not sent). A story whose event waits in another
batch never tried (``pending``: the rule is snoozed, or a run stopped before sending) joins
that batch, so the event's first email has all its reports. The decision id stays
:func:`newsmon.alerts.evaluate.decision_id` of (rule, story), so a rerun decides nothing twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from ..store import Client, IndexNames
from ..store.alert_events import EventSummary, event_decisions
from ..store.ledger import Status
from .rules import AlertRule

__all__ = ["REPEAT_REASON", "event_fields", "item_event", "mark_repeats"]

REPEAT_REASON = "event already alerted"
ALERTED = (Status.SENDING, Status.SENT, Status.RETRY)  # its email was tried


def event_fields(event: EventSummary | None) -> dict[str, Any]:
    """The event fields of a decision document (none for a story in no event)."""
    if event is None:
        return {}
    return {
        "event_id": event.event_id,
        "event_title": event.title,
        "event_outlets": list(event.outlets),
        "event_outlet_count": event.outlet_count,
        "event_story_count": event.story_count,
    }


def item_event(decision: Mapping[str, Any]) -> dict[str, Any]:
    """The event fields of an :class:`~.email.AlertItem` from its decision document."""
    if not decision.get("event_id"):
        return {}
    return {
        "event_id": str(decision["event_id"]),
        "event_title": str(decision.get("event_title") or ""),
        "event_outlets": tuple(str(o) for o in decision.get("event_outlets") or ()),
        "event_outlet_count": int(decision.get("event_outlet_count") or 0),
        "event_repeat": bool(decision.get("event_repeat")),
    }


def _earlier(
    earlier: Iterable[Mapping[str, Any]], batch_key: str
) -> tuple[bool, Mapping[str, Any] | None]:
    """Of one rule's earlier decisions on one event: whether one alerted it (its email was
    tried: ``sending``, ``sent``, ``retry``), else the first one still waiting in another batch
    whose email was never tried (``pending``: a snoozed rule's, or a run that stopped before
    sending), which a later report joins. Repeats themselves do not count."""
    waiting = None
    for d in earlier:
        if d.get("event_repeat"):
            continue
        if d.get("status") in ALERTED:
            return True, None
        if d.get("status") == Status.PENDING and d.get("batch_key") != batch_key:
            waiting = waiting or d
    return False, waiting


def mark_repeats(
    es: Client,
    names: IndexNames,
    rules: Mapping[str, AlertRule],
    docs: Mapping[str, MutableMapping[str, Any]],
) -> int:
    """Mark the decisions in ``docs`` (id -> document, not written yet) of ``once_per: event``
    rules whose event the rule alerted on before as repeats, and move those whose event waits
    in a batch not tried yet into that batch; how many were repeats."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for doc in docs.values():
        rule = rules.get(doc["rule_id"])
        if rule is not None and rule.once_per == "event" and doc.get("event_id"):
            wanted[rule.id].add(doc["event_id"])
    if not wanted:
        return 0
    earlier = event_decisions(es, names, wanted)
    repeats = 0
    for doc_id, doc in docs.items():
        if doc["rule_id"] not in wanted or not doc.get("event_id"):
            continue
        before = [
            d for d in earlier.get((doc["rule_id"], doc["event_id"]), ()) if d["_id"] != doc_id
        ]
        alerted, waiting = _earlier(before, doc["batch_key"])
        if waiting is not None:  # the event's first email is still to go: in that one
            doc.update({k: waiting.get(k) for k in ("batch_key", "due_at", "period")})
        if not alerted:
            continue
        repeats += 1
        doc["event_repeat"] = True
        if doc.get("mode") != "digest":
            doc["status"] = Status.SKIPPED
            doc["skip_reason"] = REPEAT_REASON
    return repeats
