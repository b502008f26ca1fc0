"""Rollover of the articles alias, and deleting old documents without ``_delete_by_query``.

The bare node has no reindex module (so no ``_delete_by_query``): old documents are found with a
point-in-time search, page by page in ``_shard_doc`` order, and deleted with bulk requests
(docs/maintenance.md).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .bulk import bulk_write
from .client import Client, IndexNames, exists

__all__ = ["Rollover", "delete_matching", "rollover_articles"]

log = logging.getLogger(__name__)

PAGE = 1000  # documents per page of the point-in-time search (and per bulk delete)
KEEP_ALIVE = "2m"  # of the point in time, renewed with every page


@dataclass(frozen=True)
class Rollover:
    rolled: bool  # with dry_run: whether it would
    old_index: str
    new_index: str
    conditions: Mapping[
        str, bool
    ]  # as Elasticsearch evaluated them, e.g. {"[max_age: 30d]": false}
    dry_run: bool = False


def rollover_articles(
    es: Client,
    names: IndexNames,
    *,
    max_age: str | None = None,
    max_primary_shard_size: str | None = None,
    max_docs: int | None = None,
    dry_run: bool = False,
) -> Rollover:
    """Roll the articles alias over to a new backing index when one of the conditions is met
    (none given: unconditionally). Reads keep covering every backing index; writes of new
    articles go to the new one."""
    conditions: dict[str, Any] = {}
    if max_age:
        conditions["max_age"] = max_age
    if max_primary_shard_size:
        conditions["max_primary_shard_size"] = max_primary_shard_size
    if max_docs is not None:
        conditions["max_docs"] = max_docs
    options: dict[str, Any] = {"conditions": conditions} if conditions else {}
    response = es.indices.rollover(alias=names.articles, dry_run=dry_run, **options)
    met = dict(response.get("conditions") or {})
    would = dry_run and (any(met.values()) or not conditions)  # a dry run never rolls over
    return Rollover(
        rolled=bool(response.get("rolled_over")) or would,
        old_index=str(response.get("old_index")),
        new_index=str(response.get("new_index")),
        conditions=met,
        dry_run=dry_run,
    )


def delete_matching(
    es: Client, index: str, query: Mapping[str, Any], *, dry_run: bool = False
) -> int:
    """Delete every document of ``index`` (a name, an alias or a pattern) that ``query``
    matches; returns how many were deleted (with ``dry_run``: how many would be). Documents
    written while it runs are not seen (the point in time is taken at the start)."""
    if not exists(es, index):
        return 0
    pit = es.open_point_in_time(index=index, keep_alive=KEEP_ALIVE)["id"]
    deleted = 0
    after: list[Any] | None = None
    try:
        while True:
            body: dict[str, Any] = {
                "query": dict(query),
                "size": PAGE,
                "sort": [{"_shard_doc": "asc"}],
                "_source": False,
                "pit": {"id": pit, "keep_alive": KEEP_ALIVE},
                "track_total_hits": False,
            }
            if after is not None:
                body["search_after"] = after
            response = es.search(**body)
            pit = response.get("pit_id", pit)
            hits = response["hits"]["hits"]
            if not hits:
                break
            after = hits[-1]["sort"]
            if dry_run:
                deleted += len(hits)
                continue
            meta = {h["_id"]: {"_index": h["_index"]} for h in hits}
            report = bulk_write(es, index, [("delete", h["_id"], {}) for h in hits], meta=meta)
            if report.failed:
                raise RuntimeError(
                    "could not delete old documents of " + index + f": {report.failed}"
                )
            deleted += len(report.ok) + len(report.conflicts)
    finally:
        es.close_point_in_time(id=pit)
    log.info("%s: %d document(s) %s", index, deleted, "to delete" if dry_run else "deleted")
    return deleted
