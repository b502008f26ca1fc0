"""What people did about their alerts (``<prefix>alert-actions``): muted stories, snoozed
rules, unsubscribed recipients, and the action links already used.

Each state document has a deterministic id (the kind and what it is about), so doing the same
thing twice writes the same document: repeating an action is harmless. A used link is a
``token`` document created once (``create``): a second use gets a conflict.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from elasticsearch import ConflictError, NotFoundError, helpers

from .client import Client, IndexNames, exists

__all__ = [
    "action_id",
    "actions_index",
    "get_action",
    "load_actions",
    "open_notices",
    "put_action",
    "token_used",
    "use_token",
]

STATE_KINDS = ("mute", "snooze", "unsubscribe")


def actions_index(names: IndexNames) -> str:
    return names.index("alert-actions")


def action_id(kind: str, *parts: str) -> str:
    """The id of the state document of ``kind`` about ``parts`` (rule id, story, address…)."""
    return hashlib.sha256("\n".join((kind, *parts)).encode("utf-8", "surrogatepass")).hexdigest()


def put_action(es: Client, names: IndexNames, doc_id: str, doc: Mapping[str, Any]) -> None:
    """Store a state document (the same id again replaces it), searchable at once."""
    es.index(index=actions_index(names), id=doc_id, document=dict(doc), refresh=True)


def load_actions(
    es: Client, names: IndexNames, rule_ids: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    """The state documents (mutes, snoozes, unsubscriptions) of ``rule_ids`` (None: all)."""
    index = actions_index(names)
    if not exists(es, index):
        return []
    kinds = {"terms": {"kind": list(STATE_KINDS)}}
    chunks: list[list[dict[str, Any]]] = [[kinds]]
    if rule_ids is not None:  # a terms query takes at most 65,536 values: a few at a time
        ids = sorted(set(rule_ids))
        chunks = [
            [kinds, {"terms": {"rule_id": ids[i : i + RULE_CHUNK]}}]
            for i in range(0, len(ids), RULE_CHUNK)
        ]
    return [
        {"_id": hit["_id"], **hit["_source"]}
        for filters in chunks
        for hit in helpers.scan(
            es, index=index, query={"query": {"bool": {"filter": filters}}}, size=1000
        )
    ]


RULE_CHUNK = 10_000  # rule ids per query of load_actions


def token_used(es: Client, names: IndexNames, nonce: str) -> bool:
    """Whether the action link with ``nonce`` was used already."""
    try:
        es.get(index=actions_index(names), id=action_id("token", nonce), source=False)
    except NotFoundError:
        return False
    return True


def use_token(es: Client, names: IndexNames, nonce: str, doc: Mapping[str, Any]) -> bool:
    """Record the link with ``nonce`` as used; False if it was used already."""
    try:
        es.create(
            index=actions_index(names),
            id=action_id("token", nonce),
            document={"kind": "token", **doc},
            refresh=True,
        )
    except ConflictError:
        return False
    return True


def get_action(es: Client, names: IndexNames, doc_id: str) -> dict[str, Any] | None:
    """The document ``doc_id``, or None."""
    try:
        return dict(es.get(index=actions_index(names), id=doc_id)["_source"])
    except NotFoundError:
        return None


def open_notices(es: Client, names: IndexNames) -> list[dict[str, Any]]:
    """Operator notices of failing feeds whose recovery has not been announced."""
    index = actions_index(names)
    if not exists(es, index):
        return []
    es.indices.refresh(index=index)
    query = {
        "query": {
            "bool": {
                "filter": [{"term": {"kind": "operator"}}],
                "must_not": [{"term": {"recovery_status": "sent"}}],
            }
        }
    }
    return [
        {"_id": hit["_id"], **hit["_source"]}
        for hit in helpers.scan(es, index=index, query=query, size=1000)
    ]
