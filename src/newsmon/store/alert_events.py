"""What alerts need from the events index and the ledger to group stories by event: the event
of each story (with its title and outlets), and a rule's earlier decisions on those events
(docs/events.md, "Alerts by event")."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .client import Client, IndexNames
from .events import event_sources_of_stories
from .ledger import ledger_index

__all__ = ["EventSummary", "event_decisions", "story_events"]

CHUNK = 500  # ids per terms query
MAX_OUTLETS = 50  # outlet names an alert keeps of an event
PAGE = 1000
DECISION_FIELDS = (
    "event_id",
    "status",
    "batch_key",
    "due_at",
    "period",
    "event_repeat",
    "story_id",
    "skip_reason",
)


@dataclass(frozen=True)
class EventSummary:
    """An event as an alert shows it."""

    event_id: str
    title: str
    outlets: tuple[str, ...]
    outlet_count: int
    story_count: int


def story_events(
    es: Client, names: IndexNames, story_ids: Iterable[str]
) -> dict[str, EventSummary]:
    """story id -> its event, for the stories among ``story_ids`` that are in one (the events
    index is refreshed first; without an events index, none is)."""
    found = event_sources_of_stories(
        es,
        names,
        story_ids,
        fields=("title", "outlets", "outlet_count", "story_count"),
        fresh=True,
        missing_ok=True,
    )
    summaries: dict[str, EventSummary] = {}  # one per event, shared by its stories
    out: dict[str, EventSummary] = {}
    for story, (event_id, src) in found.items():
        if event_id not in summaries:
            outlets = tuple(str(o) for o in src.get("outlets") or () if o)
            summaries[event_id] = EventSummary(
                event_id=event_id,
                title=str(src.get("title") or ""),
                outlets=outlets[:MAX_OUTLETS],
                outlet_count=int(src.get("outlet_count") or len(outlets)),
                story_count=int(src.get("story_count") or 1),
            )
        out[story] = summaries[event_id]
    return out


def event_decisions(
    es: Client, names: IndexNames, wanted: Mapping[str, Iterable[str]]
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(rule id, event id) -> the rule's story decisions on that event already in the ledger
    (:data:`DECISION_FIELDS` and ``_id``), oldest first, for ``wanted``: rule id ->
    event ids. The ledger is refreshed first."""
    pairs = [(rule, sorted(set(events))) for rule, events in wanted.items()]
    pairs = [(rule, events) for rule, events in pairs if events]
    if not pairs:
        return {}
    index = ledger_index(names)
    es.indices.refresh(index=index, ignore_unavailable=True)
    out: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for rule_id, events in pairs:
        for start in range(0, len(events), CHUNK):
            chunk = events[start : start + CHUNK]
            query = {
                "bool": {
                    "filter": [
                        {"term": {"kind": "story"}},
                        {"term": {"rule_id": rule_id}},
                        {"terms": {"event_id": chunk}},
                    ]
                }
            }
            after: list[Any] | None = None
            while True:
                hits = es.search(
                    index=index,
                    query=query,
                    size=PAGE,
                    sort=[{"decided_at": "asc"}, {"story_id": "asc"}],
                    source_includes=list(DECISION_FIELDS),
                    search_after=after,
                    ignore_unavailable=True,
                )["hits"]["hits"]
                for hit in hits:
                    src = hit["_source"]
                    out[(rule_id, str(src["event_id"]))].append({"_id": hit["_id"], **src})
                if len(hits) < PAGE:
                    break
                after = list(hits[-1]["sort"])
    return dict(out)
