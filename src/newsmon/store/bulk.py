"""Bulk writes with retries of busy answers; per-document results as values."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from elasticsearch import helpers

from .client import RETRY_STATUSES, Client

__all__ = ["BulkReport", "bulk_write", "merge_documents"]

log = logging.getLogger(__name__)


@dataclass
class BulkReport:
    """Per-document results of a bulk write."""

    ok: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # 409: already there (create) or changed
    failed: dict[str, str] = field(default_factory=dict)  # id -> reason
    # Of ``failed``: still busy/unavailable (429, 5xx) after every retry, worth a later try;
    # the others (4xx) were refused for what they are (a value the mapping cannot take…).
    retryable: set[str] = field(default_factory=set)
    # Refused documents stored instead as a minimal document with the reason (by the caller).
    rejected: dict[str, str] = field(default_factory=dict)  # id -> reason

    def merge(self, other: BulkReport) -> None:
        self.ok += other.ok
        self.conflicts += other.conflicts
        self.failed.update(other.failed)
        self.retryable |= other.retryable
        self.rejected.update(other.rejected)

    def refused(self) -> dict[str, str]:
        """The failed documents that retrying would not help."""
        return {k: v for k, v in self.failed.items() if k not in self.retryable}

    def counts(self) -> Counter[str]:
        return Counter(
            indexed=len(self.ok),
            duplicate=len(self.conflicts),
            index_failed=len(self.failed),
            index_rejected=len(self.rejected),
        )


def _actions(
    index: str,
    docs: Iterable[tuple[str, str, Mapping[str, Any]]],
    meta: Mapping[str, Mapping[str, Any]],
) -> Iterator[dict[str, Any]]:
    for op, doc_id, source in docs:
        action: dict[str, Any] = {
            "_op_type": op,
            "_index": index,
            "_id": doc_id,
            **meta.get(doc_id, {}),
        }
        if op == "update":
            action["doc"] = source
        else:
            action["_source"] = source
        yield action


def bulk_write(
    client: Client,
    index: str,
    docs: Iterable[tuple[str, str, Mapping[str, Any]]],
    *,
    max_retries: int | None = None,
    refresh: bool = False,
    meta: Mapping[str, Mapping[str, Any]] | None = None,
) -> BulkReport:
    """Write ``(op, id, source)`` triples (op ``create``, ``index``, or ``update`` with a partial
    document) with the bulk helper; ``meta`` adds action metadata per id (e.g. ``if_seq_no`` and
    ``if_primary_term`` for optimistic concurrency).

    :data:`RETRY_STATUSES` answers, for the whole request or for single items (e.g. 429
    ``es_rejected_execution_exception`` when the write queue is full), are retried with
    exponential backoff: ``max_retries`` times (default: the client's, set by :func:`connect`),
    waiting the client's ``retry_backoff_base`` seconds, doubled each time up to its
    ``retry_backoff_cap``. A ``create`` that finds the document already there (also when an
    earlier attempt wrote it) is a duplicate, not an error; any other item error is reported with
    its reason, those still busy after every retry also in ``retryable``. A transport failure
    (cluster down) raises.
    """
    retries, backoff, backoff_max = _retry_policy(client, max_retries)
    report = BulkReport()
    results = helpers.streaming_bulk(
        client,
        _actions(index, docs, meta or {}),
        chunk_size=200,
        max_chunk_bytes=20 * 1024 * 1024,
        raise_on_error=False,
        raise_on_exception=True,
        max_retries=retries,
        initial_backoff=backoff,
        max_backoff=backoff_max,
        retry_on_status=RETRY_STATUSES,
    )
    for ok, info in results:
        ((op, item),) = info.items()
        doc_id = str(item.get("_id"))
        if ok or (op == "delete" and item.get("status") == 404):  # a delete: gone either way
            report.ok.append(doc_id)
        elif item.get("status") == 409:
            report.conflicts.append(doc_id)
        else:
            error = item.get("error") or {}
            reason = error.get("reason") if isinstance(error, dict) else str(error)
            kind = error.get("type") if isinstance(error, dict) else "error"
            report.failed[doc_id] = f"{item.get('status')} {kind}: {reason}"[:500]
            status = item.get("status")
            if status in RETRY_STATUSES or not isinstance(status, int) or status >= 500:
                report.retryable.add(doc_id)  # the cluster's trouble, not the document's
            log.warning("bulk %s of %s failed: %s", op, doc_id, report.failed[doc_id])
    if refresh:
        client.indices.refresh(index=index)
    return report


def _retry_policy(client: Client, max_retries: int | None) -> tuple[int, float, float]:
    """(retries, first wait, longest wait) for refused bulk items: the client's own settings
    (kept per request by the client, else its transport's), as :func:`connect` set them."""

    def option(name: str) -> Any:
        value = getattr(client, f"_{name}", None)
        if not isinstance(value, int | float):  # not given: a "default" marker
            value = getattr(client.transport, name, None)
        return value

    retries = int(option("max_retries") or 0) if max_retries is None else max_retries
    backoff = float(option("retry_backoff_base") or 1.0)
    backoff_max = float(option("retry_backoff_cap") or 30.0)
    return max(0, retries), backoff, max(backoff, backoff_max)


T = TypeVar("T")
CONFLICT_RETRIES = 5


def merge_documents(
    client: Client,
    index: str,
    pending: Mapping[str, T],
    merge: Callable[[Mapping[str, Any] | None, str, T], Mapping[str, Any]],
    *,
    what: str,
) -> None:
    """Read-merge-write ``pending`` (id -> what to add) into the documents of ``index`` with
    optimistic concurrency: each document is read, ``merge(existing or None, id, addition)``
    gives its new content, and it is written only if nobody changed it meanwhile (created when
    new); a conflict reads and merges again, :data:`CONFLICT_RETRIES` times, so concurrent
    workers never lose each other's additions. ``what`` names the documents in errors."""
    remaining = dict(pending)
    for _attempt in range(CONFLICT_RETRIES):
        if not remaining:
            break
        found = client.mget(index=index, ids=list(remaining))["docs"]
        ops: list[tuple[str, str, Mapping[str, Any]]] = []
        meta: dict[str, dict[str, Any]] = {}
        for item in found:
            doc_id = item["_id"]
            existing = item.get("_source") if item.get("found") else None
            merged = merge(existing, doc_id, remaining[doc_id])
            if existing is None:
                ops.append(("create", doc_id, merged))
            else:
                ops.append(("index", doc_id, merged))
                meta[doc_id] = {
                    "if_seq_no": item["_seq_no"],
                    "if_primary_term": item["_primary_term"],
                }
        report = bulk_write(client, index, ops, meta=meta)
        if report.failed:
            raise RuntimeError(f"could not update {what}: {report.failed}")
        remaining = {k: remaining[k] for k in report.conflicts}
    if remaining:
        raise RuntimeError(
            f"{what} still conflicting after {CONFLICT_RETRIES} tries: {list(remaining)}"
        )
