"""The stories index, and the article searches behind story assignment (docs/stories.md)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .bulk import merge_documents
from .client import Client, IndexNames, es_iso, locate, mget, msearch

__all__ = [
    "StoryMember",
    "candidates",
    "find_story",
    "list_stories",
    "stories_by_prefix",
    "story_members",
    "story_title",
    "update_stories",
]

LISTED_FIELDS = (
    "story_id",
    "title",
    "first_url",
    "first_domain",
    "outlets",
    "outlet_count",
    "article_count",
    "first_seen",
    "last_seen",
)

MAX_LISTED = 1000  # article ids and outlets kept on a story document
CANDIDATE_FIELDS = ("title", "domain", "text", "story_id")

Doc = MutableMapping[str, Any]


@dataclass(frozen=True)
class StoryMember:
    """What a story document keeps of one of its articles."""

    article_id: str
    story_id: str | None
    title: str | None
    url: str | None
    domain: str | None
    indexed_at: str | None  # as stored: ISO 8601


def candidates(
    es: Client,
    names: IndexNames,
    keys: Sequence[tuple[str, Sequence[str]]],
    *,
    exclude: Sequence[str],
    window: timedelta,
    size: int,
) -> list[list[tuple[str, Mapping[str, Any]]]]:
    """For each ``(text_hash, lsh_bands)``: up to ``size`` articles indexed in the last
    ``window`` that share the exact hash (first) or an LSH band, as ``(id, source)`` with the
    fields :data:`CANDIDATE_FIELDS`; ``exclude`` ids are never returned. One ``_msearch``."""
    days = max(1, window.days)
    bodies = [
        {
            "query": {
                "bool": {
                    "should": [
                        {"term": {"text_hash": {"value": text_hash, "boost": 100}}},
                        *({"term": {"lsh_bands": band}} for band in bands),
                    ],
                    "minimum_should_match": 1,
                    "filter": [{"range": {"indexed_at": {"gte": f"now-{days}d"}}}],
                    "must_not": [{"ids": {"values": list(exclude)}}],
                }
            },
            "size": size,
            "_source": list(CANDIDATE_FIELDS),
        }
        for text_hash, bands in keys
    ]
    found: list[list[tuple[str, Mapping[str, Any]]]] = []
    for response in msearch(es, names.articles, bodies):
        if "error" in response:
            raise RuntimeError(f"story candidate search failed: {response['error']}")
        found.append([(h["_id"], h.get("_source") or {}) for h in response["hits"]["hits"]])
    return found


def story_members(es: Client, names: IndexNames, ids: Iterable[str]) -> list[StoryMember]:
    """The indexed articles among ``ids``, as story members."""
    fields = ["story_id", "title", "url", "domain", "indexed_at"]
    found = locate(es, names.articles, ids, fields=fields)
    return [member(i, src) for i, (_index, src) in found.items()]


def member(article_id: str, source: Mapping[str, Any]) -> StoryMember:
    story = source.get("story_id")
    return StoryMember(
        article_id=article_id,
        story_id=str(story) if story else None,
        title=source.get("title"),
        url=source.get("url"),
        domain=source.get("domain"),
        indexed_at=str(source["indexed_at"]) if source.get("indexed_at") else None,
    )


def _merge(story: Mapping[str, Any] | None, story_id: str, members: Iterable[StoryMember]) -> Doc:
    """A story document with ``docs`` (written articles) added; re-applying is harmless."""
    out: Doc = dict(story or {"story_id": story_id, "article_ids": [], "outlets": []})
    article_ids: list[str] = list(out.get("article_ids") or [])
    outlets: list[str] = list(out.get("outlets") or [])
    count = int(out.get("article_count") or len(article_ids))
    for m in sorted(members, key=lambda m: m.indexed_at or ""):
        doc_id = m.article_id
        if not out.get("first_article_id"):
            out.update(
                first_article_id=doc_id, title=m.title, first_url=m.url, first_domain=m.domain
            )
        if doc_id not in article_ids:
            count += (
                1  # beyond MAX_LISTED ids, a re-applied article may count twice: rare, harmless
            )
            if len(article_ids) < MAX_LISTED:
                article_ids.append(doc_id)
        domain = m.domain
        if domain and domain not in outlets and len(outlets) < MAX_LISTED:
            outlets.append(domain)
        seen = m.indexed_at or ""
        if seen:
            out["first_seen"] = min(filter(None, [out.get("first_seen"), seen]))
            out["last_seen"] = max(filter(None, [out.get("last_seen"), seen]))
    out.update(
        article_ids=article_ids, outlets=outlets, article_count=count, outlet_count=len(outlets)
    )
    return out


def update_stories(es: Client, names: IndexNames, written: Sequence[StoryMember]) -> int:
    """Add written articles to their story documents (optimistic concurrency, retried on
    conflict, so concurrent workers never lose each other's articles). Returns stories touched."""
    by_story: dict[str, list[StoryMember]] = defaultdict(list)
    for member in written:
        if member.story_id:
            by_story[member.story_id].append(member)
    merge_documents(es, names.stories, by_story, _merge, what="stories")
    return len(by_story)


def find_story(
    es: Client, names: IndexNames, story_or_article_id: str
) -> tuple[Mapping[str, Any], list[Mapping[str, Any]]] | None:
    """A story document and its articles (oldest first), by story id or by the id of any of its
    articles; None when there is no such story."""
    story = mget(es, names.stories, [story_or_article_id]).get(story_or_article_id)
    if story is None:
        article = locate(es, names.articles, [story_or_article_id], fields=["story_id"])
        story_id = article[story_or_article_id][1].get("story_id") if article else None
        if not story_id:
            return None
        story = mget(es, names.stories, [story_id]).get(story_id)
        if story is None:
            return None
    fields = ["title", "url", "domain", "site_name", "published_at", "indexed_at"]
    hits = es.search(
        index=names.articles,
        query={"term": {"story_id": story["story_id"]}},
        source_includes=fields,
        sort=[{"indexed_at": "asc"}],
        size=200,
    )["hits"]["hits"]
    return story, [h["_source"] for h in hits]


def story_title(es: Client, names: IndexNames, story_id: str) -> str | None:
    """The title a story is known by: its document's, else its first article's (a story not
    written yet); None when neither has one."""
    story = mget(es, names.stories, [story_id], fields=["title"]).get(story_id)
    if story and story.get("title"):
        return str(story["title"])
    hits = es.search(
        index=names.articles,
        query={"term": {"story_id": story_id}},
        source_includes=["title"],
        sort=[{"indexed_at": "asc"}],
        size=1,
    )["hits"]["hits"]
    title = hits[0]["_source"].get("title") if hits else None
    return str(title) if title else None


def stories_by_prefix(es: Client, names: IndexNames, prefix: str, *, limit: int = 5) -> list[str]:
    """Ids of up to ``limit`` stories whose id, or one of whose articles' ids, starts with
    ``prefix`` (lower-case hex: what ids are); the story ids themselves first."""
    prefix = prefix.strip().lower()
    if not prefix:
        return []
    hits = es.search(
        index=names.stories,
        query={
            "bool": {
                "should": [
                    {"prefix": {"story_id": {"value": prefix, "boost": 10}}},
                    {"prefix": {"article_ids": prefix}},
                ],
                "minimum_should_match": 1,
            }
        },
        source_includes=["story_id"],
        size=limit,
    )["hits"]["hits"]
    return [str(h["_source"].get("story_id") or h["_id"]) for h in hits]


def list_stories(
    es: Client,
    names: IndexNames,
    *,
    since: datetime | None = None,
    min_outlets: int = 1,
    size: int = 50,
) -> list[Mapping[str, Any]]:
    """Stories last seen since ``since`` (all without) run by at least ``min_outlets`` outlets,
    the most recently seen first, with the fields :data:`LISTED_FIELDS`."""
    filters: list[dict[str, Any]] = []
    if since is not None:
        filters.append({"range": {"last_seen": {"gte": es_iso(since)}}})
    if min_outlets > 1:
        filters.append({"range": {"outlet_count": {"gte": min_outlets}}})
    hits = es.search(
        index=names.stories,
        query={"bool": {"filter": filters}},
        source_includes=list(LISTED_FIELDS),
        sort=[{"last_seen": {"order": "desc", "unmapped_type": "date"}}, {"story_id": "asc"}],
        size=size,
    )["hits"]["hits"]
    return [h["_source"] for h in hits]
