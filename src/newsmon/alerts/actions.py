"""What people can do about an alert: mute a story for a rule, snooze a rule until a time,
unsubscribe a recipient from a rule — from the CLI, or by a signed link in an email.

The state lives in ``<prefix>alert-actions`` (:mod:`newsmon.store.actions`); evaluation skips
muted stories, delivery drops muted stories and unsubscribed recipients and holds a snoozed
rule's emails until the snooze ends (docs/alerts.md). Doing the same thing twice changes
nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from ..store import Client, IndexNames
from ..store import actions as store
from ..store.client import es_iso, es_time
from .untrusted import check_address

__all__ = ["Action", "ActionKind", "Honoured", "apply", "describe", "honoured"]

log = logging.getLogger(__name__)

ActionKind = Literal["mute", "snooze", "unsubscribe"]
KINDS: tuple[ActionKind, ...] = ("mute", "snooze", "unsubscribe")
DEFAULT_SNOOZE = timedelta(days=1)


@dataclass(frozen=True)
class Action:
    """One action on one rule.

    ``mute``: ``story_id``; ``snooze``: ``until``, or ``snooze_for`` counted from when it is
    done (what a link carries); ``unsubscribe``: ``recipients`` — the addresses the email
    went to: with one, the action is that address's; with several, the person picks theirs
    (``recipient``).
    """

    kind: ActionKind
    rule_id: str
    story_id: str | None = None
    until: datetime | None = None
    snooze_for: timedelta | None = None
    recipients: tuple[str, ...] = ()
    recipient: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown action {self.kind!r}")
        if not self.rule_id:
            raise ValueError("an action needs a rule")
        if self.kind == "mute" and not self.story_id:
            raise ValueError("mute needs a story id")
        if self.kind == "snooze" and self.until is None and self.snooze_for is None:
            raise ValueError("snooze needs an end (until) or a length")
        if self.kind == "unsubscribe":
            for address in (*self.recipients, *([self.recipient] if self.recipient else [])):
                check_address(address)
            if self.recipient is None and len(self.recipients) != 1:
                raise ValueError("unsubscribe needs the address to unsubscribe")
            if self.recipient and self.recipients and not _listed(self.recipient, self.recipients):
                raise ValueError(f"{self.recipient} is not a recipient of this email")

    @property
    def address(self) -> str | None:
        """The address an unsubscribe is for (None: still to be chosen)."""
        if self.recipient:
            return self.recipient
        return self.recipients[0] if len(self.recipients) == 1 else None

    def as_payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {"a": self.kind, "r": self.rule_id}
        if self.story_id:
            out["s"] = self.story_id
        if self.until is not None:
            out["u"] = int(self.until.timestamp())
        if self.snooze_for is not None:
            out["f"] = int(self.snooze_for.total_seconds())
        if self.recipients:
            out["to"] = list(self.recipients)
        return out

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Action:
        until = payload.get("u")
        length = payload.get("f")
        return cls(
            kind=payload["a"],
            rule_id=str(payload["r"]),
            story_id=payload.get("s"),
            until=datetime.fromtimestamp(int(until), UTC) if until is not None else None,
            snooze_for=timedelta(seconds=int(length)) if length is not None else None,
            recipients=tuple(str(a) for a in payload.get("to") or ()),
        )


def _listed(address: str, addresses: Iterable[str]) -> bool:
    return address.lower() in {a.lower() for a in addresses}


def describe(action: Action, now: datetime | None = None) -> str:
    """What the action does, in a sentence (for pages and the CLI)."""
    if action.kind == "mute":
        return f"mute story {action.story_id} for alert {action.rule_id}"
    if action.kind == "snooze":
        if action.until is not None:
            return f"snooze alert {action.rule_id} until {action.until:%Y-%m-%d %H:%M} UTC"
        hours = (action.snooze_for or DEFAULT_SNOOZE) / timedelta(hours=1)
        return f"snooze alert {action.rule_id} for {hours:g} hours"
    who = action.address or "one of " + ", ".join(action.recipients)
    return f"unsubscribe {who} from alert {action.rule_id}"


def apply(
    es: Client, names: IndexNames, action: Action, *, now: datetime | None = None, via: str = "cli"
) -> str:
    """Do ``action`` (idempotent); what was done, as a sentence."""
    now = now or datetime.now(UTC)
    doc: dict[str, Any] = {"kind": action.kind, "rule_id": action.rule_id, "at": es_iso(now)}
    doc["via"] = via
    if action.kind == "mute":
        assert action.story_id is not None
        doc_id = store.action_id("mute", action.rule_id, action.story_id)
        doc["story_id"] = action.story_id
        done = f"story {action.story_id} muted for alert {action.rule_id}"
    elif action.kind == "snooze":
        until = action.until or now + (action.snooze_for or DEFAULT_SNOOZE)
        doc_id = store.action_id("snooze", action.rule_id)
        doc["until"] = es_iso(until)
        done = f"alert {action.rule_id} snoozed until {until:%Y-%m-%d %H:%M} UTC"
    else:
        address = action.address
        if address is None:
            raise ValueError("choose the address to unsubscribe")
        doc_id = store.action_id("unsubscribe", action.rule_id, address.lower())
        doc["recipient"] = address.lower()
        done = f"{address} unsubscribed from alert {action.rule_id}"
    store.put_action(es, names, doc_id, doc)
    log.info("alerts: %s (via %s)", done, via)
    return done


@dataclass
class Honoured:
    """The mutes, snoozes and unsubscriptions in force for some rules."""

    muted: set[tuple[str, str]] = field(default_factory=set)  # (rule id, story id)
    snoozed: dict[str, datetime] = field(default_factory=dict)  # rule id -> until
    unsubscribed: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def is_muted(self, rule_id: str, story_id: str) -> bool:
        return (rule_id, story_id) in self.muted

    def snoozed_until(self, rule_id: str, now: datetime) -> datetime | None:
        until = self.snoozed.get(rule_id)
        return until if until is not None and until > now else None

    def recipients(self, rule_id: str, addresses: Iterable[str]) -> list[str]:
        """``addresses`` without those unsubscribed from ``rule_id``."""
        gone = self.unsubscribed.get(rule_id, set())
        return [a for a in addresses if a.lower() not in gone]


def honoured(es: Client, names: IndexNames, rule_ids: Iterable[str] | None = None) -> Honoured:
    """The actions in force for ``rule_ids`` (None: every rule)."""
    out = Honoured()
    for doc in store.load_actions(es, names, rule_ids):
        rule_id = doc.get("rule_id") or ""
        if doc.get("kind") == "mute" and doc.get("story_id"):
            out.muted.add((rule_id, doc["story_id"]))
        elif doc.get("kind") == "snooze":
            until = es_time(doc.get("until"))
            if until is not None:
                out.snoozed[rule_id] = until
        elif doc.get("kind") == "unsubscribe" and doc.get("recipient"):
            out.unsubscribed[rule_id].add(doc["recipient"])
    return out
