"""The events index: one document per happening, over the stories that report it
(docs/events.md). Which event a story joins is decided in :mod:`newsmon.text.events`; this
module finds candidate events, and merges stories and articles into event documents."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .bulk import merge_documents
from .client import Client, IndexNames, es_iso, locate, mget, msearch

__all__ = [
    "EventChange",
    "event_candidates",
    "event_ids_by_prefix",
    "event_sources_of_stories",
    "events_index",
    "events_of_stories",
    "find_event",
    "list_events",
    "update_events",
]

LISTED_FIELDS = (
    "event_id",
    "title",
    "first_url",
    "outlets",
    "outlet_count",
    "story_count",
    "article_count",
    "first_seen",
    "last_seen",
)
MAX_LISTED = 1000  # story and article ids, outlets kept on an event document
MAX_MEMBERS = 200  # stories whose signature the event keeps (the ones matched against)
MAX_NAMES = 500
MAX_QUERY_NAMES = 64  # names of a story asked for in a candidate search

Doc = MutableMapping[str, Any]


def events_index(names: IndexNames) -> str:
    return names.index("events")


@dataclass(frozen=True)
class EventChange:
    """What to add to one event: stories joining it (their signature as
    ``EventSignature.to_source()`` plus ``url`` and ``seen``, the ISO time newsmon indexed the
    story's first article) and articles (``(article_id, outlet, seen)``) of its stories; an
    outlet is a site's name."""

    members: tuple[Mapping[str, Any], ...] = ()
    articles: tuple[tuple[str, str, str], ...] = ()


def event_candidates(
    es: Client,
    names: IndexNames,
    stories: Sequence[tuple[Sequence[str], datetime]],
    *,
    window: timedelta,
    size: int,
) -> list[list[tuple[str, Mapping[str, Any]]]]:
    """For each ``(names, published)``: up to ``size`` events whose stories were published
    within ``window`` of it and that share one of the names, those sharing the most first, as
    ``(event id, source with members)``. One ``_msearch``."""
    bodies = [
        {
            "query": {
                "bool": {
                    "filter": [
                        {"range": {"last_published": {"gte": es_iso(when - window)}}},
                        {"range": {"first_published": {"lte": es_iso(when + window)}}},
                    ],
                    "should": [{"term": {"names": n}} for n in sorted(found)[:MAX_QUERY_NAMES]],
                    "minimum_should_match": 1,
                }
            },
            "size": size,
            "_source": ["members"],
        }
        for found, when in stories
    ]
    out: list[list[tuple[str, Mapping[str, Any]]]] = []
    for response in msearch(es, events_index(names), bodies):
        if "error" in response:
            raise RuntimeError(f"event candidate search failed: {response['error']}")
        out.append([(h["_id"], h.get("_source") or {}) for h in response["hits"]["hits"]])
    return out


def events_of_stories(
    es: Client, names: IndexNames, story_ids: Iterable[str], *, fresh: bool = False
) -> dict[str, str]:
    """story id -> the id of the event holding it, for the stories among ``story_ids`` that
    are in one. ``fresh``: refresh the index first (a run stopped a moment ago may have
    written events not searchable yet)."""
    found = event_sources_of_stories(es, names, story_ids, fields=(), fresh=fresh)
    return {story: event_id for story, (event_id, _source) in found.items()}


def event_sources_of_stories(
    es: Client,
    names: IndexNames,
    story_ids: Iterable[str],
    *,
    fields: Sequence[str],
    fresh: bool = False,
    missing_ok: bool = False,
) -> dict[str, tuple[str, Mapping[str, Any]]]:
    """story id -> (the id of the event holding it, that event's ``fields``), for the stories
    among ``story_ids`` that are in one; the lowest event id when several claim a story.
    ``fresh``: refresh the index first; ``missing_ok``: no events index holds no event."""
    wanted = sorted(set(story_ids))
    if not wanted:
        return {}
    index = events_index(names)
    if fresh:
        es.indices.refresh(index=index, ignore_unavailable=missing_ok)
    out: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        hits = es.search(
            index=index,
            query={"terms": {"story_ids": chunk}},
            source_includes=["story_ids", *fields],
            size=len(chunk),
            ignore_unavailable=missing_ok,
        )["hits"]["hits"]
        chosen = set(chunk)
        for h in sorted(hits, key=lambda h: str(h["_id"])):
            for story in h["_source"].get("story_ids") or ():
                if story in chosen:
                    out.setdefault(story, (str(h["_id"]), h["_source"]))
    return out


def _union(values: list[str], more: Iterable[str], cap: int) -> list[str]:
    for v in more:
        if v and v not in values and len(values) < cap:
            values.append(v)
    return values


def _merge(
    event: Mapping[str, Any] | None,
    event_id: str,
    change: EventChange,
    title_of: Callable[[Sequence[Mapping[str, Any]]], str],
) -> Doc:
    """An event document with ``change`` added; applying it twice changes nothing."""
    out: Doc = dict(event or {"event_id": event_id})
    members: list[Mapping[str, Any]] = list(out.get("members") or [])
    known = {m.get("story_id") for m in members}
    for m in sorted(change.members, key=lambda m: (str(m.get("when")), str(m["story_id"]))):
        if m["story_id"] not in known and len(members) < MAX_MEMBERS:
            members.append(dict(m))
            known.add(m["story_id"])
    story_ids = _union(
        list(out.get("story_ids") or []), (m["story_id"] for m in change.members), MAX_LISTED
    )
    reporters = (str(m.get("outlet") or "") for m in members)
    outlets = _union(list(out.get("outlets") or []), reporters, MAX_LISTED)
    outlets = _union(outlets, (outlet for _a, outlet, _s in change.articles), MAX_LISTED)
    article_ids = list(out.get("article_ids") or [])
    count = int(out.get("article_count") or len(article_ids))
    for article_id, _outlet, _seen in change.articles:
        if article_id not in article_ids:
            count += 1  # beyond MAX_LISTED ids a re-applied article may count twice: harmless
            if len(article_ids) < MAX_LISTED:
                article_ids.append(article_id)
    names = _union(
        list(out.get("names") or []), (n for m in members for n in m.get("names") or ()), MAX_NAMES
    )
    seen = [
        s
        for s in (*(m.get("seen") for m in change.members), *(s for _a, _d, s in change.articles))
        if s
    ]
    published = [str(m["when"]) for m in members if m.get("when")]
    if seen:
        out["first_seen"] = min(filter(None, [out.get("first_seen"), *seen]))
        out["last_seen"] = max(filter(None, [out.get("last_seen"), *seen]))
    if published:
        out["first_published"] = min(published)
        out["last_published"] = max(published)
    first = min(members, key=lambda m: (str(m.get("when")), str(m["story_id"])), default=None)
    out.update(
        members=members,
        story_ids=story_ids,
        story_count=len(story_ids),
        outlets=outlets,
        outlet_count=len(outlets),
        article_ids=article_ids,
        article_count=count,
        names=names,
        title=title_of(members) or out.get("title"),
        first_url=(first or {}).get("url") or out.get("first_url"),
    )
    return out


def update_events(
    es: Client,
    names: IndexNames,
    changes: Mapping[str, EventChange],
    title_of: Callable[[Sequence[Mapping[str, Any]]], str],
) -> int:
    """Apply ``changes`` (event id -> what to add) by read-merge-write with optimistic
    concurrency, retried on conflict, so concurrent workers never lose each other's stories.
    An event id not yet in the index is created. Returns the events written."""
    index = events_index(names)
    remaining = {k: v for k, v in changes.items() if v.members or v.articles}
    written = len(remaining)
    merge_documents(
        es,
        index,
        remaining,
        lambda existing, event_id, change: _merge(existing, event_id, change, title_of),
        what="events",
    )
    return written


def find_event(es: Client, names: IndexNames, some_id: str) -> Mapping[str, Any] | None:
    """An event document by its id, or by the id of one of its stories or articles."""
    index = events_index(names)
    event = mget(es, index, [some_id]).get(some_id)
    if event is not None:
        return event
    story_id = some_id
    article = locate(es, names.articles, [some_id], fields=["story_id"])
    if article and article[some_id][1].get("story_id"):
        story_id = str(article[some_id][1]["story_id"])
    for key in dict.fromkeys([story_id, some_id]):
        hits = es.search(index=index, query={"term": {"story_ids": key}}, size=1)["hits"]["hits"]
        if hits:
            source: Mapping[str, Any] = hits[0]["_source"]
            return source
    return None


def list_events(
    es: Client,
    names: IndexNames,
    *,
    since: datetime | None = None,
    min_outlets: int = 1,
    size: int = 50,
) -> list[Mapping[str, Any]]:
    """Events last seen since ``since`` (all without) reported by at least ``min_outlets``
    outlets, the most recently seen first, with the fields :data:`LISTED_FIELDS`."""
    filters: list[dict[str, Any]] = []
    if since is not None:
        filters.append({"range": {"last_seen": {"gte": es_iso(since)}}})
    if min_outlets > 1:
        filters.append({"range": {"outlet_count": {"gte": min_outlets}}})
    hits = es.search(
        index=events_index(names),
        query={"bool": {"filter": filters}},
        source_includes=list(LISTED_FIELDS),
        sort=[{"last_seen": {"order": "desc", "unmapped_type": "date"}}, {"event_id": "asc"}],
        size=size,
    )["hits"]["hits"]
    return [h["_source"] for h in hits]


def event_ids_by_prefix(es: Client, names: IndexNames, prefix: str, *, limit: int = 5) -> list[str]:
    """Ids of up to ``limit`` events whose id starts with ``prefix``."""
    prefix = prefix.strip().lower()
    if not prefix:
        return []
    hits = es.search(
        index=events_index(names),
        query={"prefix": {"event_id": prefix}},
        source_includes=["event_id"],
        size=limit,
    )["hits"]["hits"]
    return [str(h["_id"]) for h in hits]
