"""The alert ledger (``<prefix>alert-ledger``) and the rules' state (``<prefix>alert-state``).

The ledger holds one ``story`` document per decided (rule, story) pair, created once under a
deterministic id, and one ``email`` document per batch, claimed by compare-and-set before the
batch is sent (docs/alerts.md). A rule's state document (id = rule id) says up to when its
articles were evaluated.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from enum import StrEnum
from typing import Any

from elasticsearch import ConflictError, NotFoundError, helpers

from .bulk import BulkReport, bulk_write
from .client import PARALLEL, Client, IndexNames, es_iso, es_time, mget, refresh

__all__ = [
    "DUE",
    "Status",
    "claim_email",
    "create_decisions",
    "decided",
    "due_stories",
    "email_docs",
    "evaluated_to",
    "ledger_index",
    "open_stories",
    "refresh_ledger",
    "save_states",
    "state_index",
    "stories_of",
    "update_email",
    "update_stories",
]


class Status(StrEnum):
    """The ``status`` of a ledger document (a story's is its batch's once the email is tried)."""

    PENDING = "pending"  # decided, its email not tried yet
    SENDING = "sending"  # an email claimed by a worker that is sending it
    SENT = "sent"
    RETRY = "retry"  # to be tried again at ``due_at`` / ``next_attempt_at``
    FAILED = "failed"  # given up
    SKIPPED = "skipped"  # not sent: muted, or every recipient unsubscribed (``skip_reason``)


DUE = (Status.PENDING, Status.RETRY)  # stories whose email is still to be sent


def ledger_index(names: IndexNames) -> str:
    return names.index("alert-ledger")


def state_index(names: IndexNames) -> str:
    return names.index("alert-state")


# --- rule state ----------------------------------------------------------------------------------


def evaluated_to(es: Client, names: IndexNames, rule_ids: Iterable[str]) -> dict[str, datetime]:
    """Up to when each rule's articles were evaluated (rules never evaluated: absent)."""
    found: dict[str, datetime] = {}
    for rule_id, src in mget(es, state_index(names), rule_ids).items():
        when = es_time(src.get("evaluated_to"))
        if when is not None:
            found[rule_id] = when
    return found


def save_states(
    es: Client, names: IndexNames, states: Mapping[str, Mapping[str, Any]]
) -> BulkReport:
    """Store rule state documents (by rule id), replacing the previous ones."""
    return _write(es, state_index(names), [("index", k, v) for k, v in states.items()])


# --- decisions -----------------------------------------------------------------------------------


def decided(es: Client, names: IndexNames, ids: Iterable[str]) -> set[str]:
    """Those of the decision ids ``ids`` that are in the ledger already."""
    return set(mget(es, ledger_index(names), ids, source=False))


def create_decisions(
    es: Client, names: IndexNames, docs: Mapping[str, Mapping[str, Any]]
) -> BulkReport:
    """Create the decision documents (by id): one already there is a conflict, left as it is."""
    report = _write(es, ledger_index(names), [("create", k, v) for k, v in docs.items()])
    refresh(es, ledger_index(names))
    return report


PARALLEL_FROM = 2000  # documents from which a write is split into PARALLEL bulk streams


def _write(es: Client, index: str, ops: Sequence[tuple[str, str, Mapping[str, Any]]]) -> BulkReport:
    """Bulk-write ``ops``; many at once in :data:`PARALLEL` streams (measured faster: the node
    indexes one stream's request while the next is being sent)."""
    if len(ops) < PARALLEL_FROM:
        return bulk_write(es, index, ops)
    parts = [ops[i::PARALLEL] for i in range(PARALLEL)]
    report = BulkReport()
    with ThreadPoolExecutor(PARALLEL, thread_name_prefix="newsmon-ledger") as pool:
        for part in pool.map(lambda chunk: bulk_write(es, index, chunk), parts):
            report.merge(part)
    return report


def refresh_ledger(es: Client, names: IndexNames) -> None:
    refresh(es, ledger_index(names))


def due_stories(
    es: Client, names: IndexNames, modes: Sequence[str], now: datetime
) -> dict[str, list[dict[str, Any]]]:
    """Decided stories of rules in ``modes`` not sent yet (:data:`DUE`) whose batch is due at
    ``now``, by batch key; each is its document with its ``_id``."""
    query = {
        "bool": {
            "filter": [
                {"term": {"kind": "story"}},
                {"terms": {"status": [str(s) for s in DUE]}},
                {"terms": {"mode": list(modes)}},
                {"range": {"due_at": {"lte": es_iso(now)}}},
            ]
        }
    }
    batches: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for hit in helpers.scan(es, index=ledger_index(names), query={"query": query}, size=1000):
        batches[hit["_source"]["batch_key"]].append({"_id": hit["_id"], **hit["_source"]})
    return batches


def open_stories(
    es: Client, names: IndexNames, rule_id: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Decided stories whose email is not done (pending, sending, retry), by batch key, each
    with its ``_id`` — whether due or not, whatever the rules file says now."""
    filters: list[dict[str, Any]] = [
        {"term": {"kind": "story"}},
        {"terms": {"status": [str(Status.PENDING), str(Status.SENDING), str(Status.RETRY)]}},
    ]
    if rule_id is not None:
        filters.append({"term": {"rule_id": rule_id}})
    query = {"query": {"bool": {"filter": filters}}}
    batches: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for hit in helpers.scan(es, index=ledger_index(names), query=query, size=1000):
        batches[hit["_source"]["batch_key"]].append({"_id": hit["_id"], **hit["_source"]})
    return batches


def email_docs(
    es: Client,
    names: IndexNames,
    *,
    rule_id: str | None = None,
    since: datetime | None = None,
    ids: Iterable[str] | None = None,
    size: int = 50,
) -> list[dict[str, Any]]:
    """Email documents, newest first: of ``rule_id``, updated since ``since``, or by ``ids``."""
    if ids is not None:
        return [{"_id": k, **v} for k, v in mget(es, ledger_index(names), ids).items()]
    filters: list[dict[str, Any]] = [{"term": {"kind": "email"}}]
    if rule_id is not None:
        filters.append({"term": {"rule_id": rule_id}})
    if since is not None:
        filters.append({"range": {"updated_at": {"gte": es_iso(since)}}})
    found = es.search(
        index=ledger_index(names),
        query={"bool": {"filter": filters}},
        sort=[{"updated_at": {"order": "desc", "unmapped_type": "date"}}],
        size=size,
    )
    return [{"_id": h["_id"], **h["_source"]} for h in found["hits"]["hits"]]


def stories_of(es: Client, names: IndexNames, ids: Iterable[str]) -> list[dict[str, Any]]:
    """The story documents ``ids`` (an email's ``item_ids``) that exist."""
    return [{"_id": k, **v} for k, v in mget(es, ledger_index(names), ids).items()]


def update_stories(
    es: Client, names: IndexNames, ids: Iterable[str], changes: Mapping[str, Any]
) -> None:
    """Apply ``changes`` to the story documents ``ids``; raises if any could not be updated."""
    report = bulk_write(
        es, ledger_index(names), (("update", i, changes) for i in ids), refresh=True
    )
    if report.failed:
        raise RuntimeError(f"could not update the alert ledger: {report.failed}")


# --- emails --------------------------------------------------------------------------------------

Take = Callable[[Mapping[str, Any] | None], Mapping[str, Any] | None]


def claim_email(
    es: Client, names: IndexNames, doc_id: str, take: Take
) -> tuple[Mapping[str, Any] | None, bool]:
    """Compare-and-set the email document ``doc_id``.

    ``take`` gets the stored document (None: there is none yet) and returns the document to
    store in its place, or None to leave it. The write only succeeds if no other worker wrote
    the document meanwhile (``create``, or ``if_seq_no``/``if_primary_term``). Returns the
    document as it was before (None if there was none) and whether this write won.
    """
    index = ledger_index(names)
    try:
        current = es.get(index=index, id=doc_id)
    except NotFoundError:
        claim = take(None)
        if claim is None:
            return None, False
        try:
            es.create(index=index, id=doc_id, document=dict(claim), refresh=True)
        except ConflictError:
            return None, False
        return None, True
    before: Mapping[str, Any] = current["_source"]
    claim = take(before)
    if claim is None:
        return before, False
    try:
        es.index(
            index=index,
            id=doc_id,
            document=dict(claim),
            if_seq_no=current["_seq_no"],
            if_primary_term=current["_primary_term"],
            refresh=True,
        )
    except ConflictError:
        return before, False
    return before, True


def update_email(es: Client, names: IndexNames, doc_id: str, changes: Mapping[str, Any]) -> None:
    """Apply ``changes`` to the email document ``doc_id`` (searchable at once)."""
    es.update(index=ledger_index(names), id=doc_id, doc=dict(changes), refresh=True)
