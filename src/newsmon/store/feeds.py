"""Feed-state documents: conditional-GET validators and health, one per feed id."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from ..sources.fetch import Validators
from .bulk import BulkReport, bulk_write
from .client import Client, IndexNames, es_time, exists, mget

__all__ = [
    "FeedRun",
    "FeedState",
    "articles_per_day",
    "feed_state_docs",
    "load_feed_states",
    "save_feed_states",
]


@dataclass(frozen=True)
class FeedState:
    feed_id: str
    validators: Validators = field(default_factory=Validators)
    consecutive_failures: int = 0
    last_success_at: datetime | None = None
    failing_since: datetime | None = None
    recent_failures: tuple[Mapping[str, Any], ...] = ()  # newest last: {at, outcome, reason, …}
    successful_fetches: int = 0
    avg_entries: float | None = None
    saved_at: datetime | None = None  # end of the last run that saved this state


def load_feed_states(
    client: Client, names: IndexNames, feed_ids: Sequence[str]
) -> dict[str, FeedState]:
    if not feed_ids:
        return {}
    states: dict[str, FeedState] = {}
    for feed_id, src in mget(client, names.feeds, feed_ids).items():
        success = src.get("last_success_at")
        failing = src.get("failing_since")
        average = src.get("avg_entries")
        states[feed_id] = FeedState(
            feed_id=feed_id,
            validators=Validators(etag=src.get("etag"), last_modified=src.get("last_modified")),
            consecutive_failures=int(src.get("consecutive_failures") or 0),
            last_success_at=es_time(success),
            failing_since=es_time(failing),
            recent_failures=tuple(src.get("recent_failures") or ()),
            successful_fetches=int(src.get("successful_fetches") or 0),
            avg_entries=float(average) if average is not None else None,
            saved_at=es_time(src.get("last_fetched_at")),
        )
    return states


def feed_state_docs(
    client: Client, names: IndexNames, feed_ids: Sequence[str]
) -> dict[str, Mapping[str, Any]]:
    """The stored state documents of the feeds among ``feed_ids`` that have one."""
    if not feed_ids or not exists(client, names.feeds):
        return {}
    return mget(client, names.feeds, feed_ids)


def articles_per_day(
    client: Client, names: IndexNames, feed_ids: Sequence[str], *, first: date, now: datetime
) -> dict[str, tuple[tuple[str, int], ...]]:
    """feed id -> (UTC day, articles indexed that day) for each day from ``first`` to ``now``."""
    if not feed_ids or not exists(client, names.articles):
        return {}
    today = now.astimezone(UTC).date()
    response = client.search(
        index=names.articles,
        size=0,
        query={
            "bool": {
                "filter": [
                    {"terms": {"feed_id": list(feed_ids)}},
                    {"range": {"indexed_at": {"gte": first.isoformat(), "lte": now.isoformat()}}},
                ]
            }
        },
        aggs={
            "feeds": {
                "terms": {"field": "feed_id", "size": len(feed_ids)},
                "aggs": {
                    "days": {
                        "date_histogram": {
                            "field": "indexed_at",
                            "calendar_interval": "day",
                            "format": "yyyy-MM-dd",
                            "min_doc_count": 0,
                            "extended_bounds": {
                                "min": first.isoformat(),
                                "max": today.isoformat(),
                            },
                        }
                    }
                },
            }
        },
    )
    out: dict[str, tuple[tuple[str, int], ...]] = {}
    for bucket in response["aggregations"]["feeds"]["buckets"]:
        out[bucket["key"]] = tuple(
            (b["key_as_string"], int(b["doc_count"])) for b in bucket["days"]["buckets"]
        )
    return out


@dataclass(frozen=True)
class FeedRun:
    """What one run learnt of a feed: stored as its state document."""

    url: str
    validators: Validators
    outcome: str
    reason: str | None
    status: int | None
    fetched_at: datetime
    last_success_at: datetime | None
    entries: int
    new_articles: int
    health: Mapping[str, Any]  # newsmon.health.next_state: failures, failing_since, averages


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def save_feed_states(client: Client, names: IndexNames, runs: Mapping[str, FeedRun]) -> BulkReport:
    """Store the state documents of feeds (feed id -> its run), replacing the previous ones."""
    docs = {
        feed_id: {
            "feed_id": feed_id,
            "url": run.url,
            "etag": run.validators.etag,
            "last_modified": run.validators.last_modified,
            "last_outcome": run.outcome,
            "last_reason": run.reason,
            "last_status": run.status,
            "last_fetched_at": _iso(run.fetched_at),
            "last_success_at": _iso(run.last_success_at),
            "last_entries": run.entries,
            "last_new_articles": run.new_articles,
            **run.health,
        }
        for feed_id, run in runs.items()
    }
    return bulk_write(client, names.feeds, (("index", k, v) for k, v in docs.items()))
