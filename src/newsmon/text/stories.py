"""Story clusters in Elasticsearch: which story a new article joins, and the story documents.

The matching itself (fingerprints, verification, the same-domain guard) is :mod:`newsmon.dedup`;
this module finds candidates in the index — one ``_msearch`` per batch, each search asking for
articles of the last days that share the exact text hash or an LSH band — and keeps one document
per story in the stories index (see docs/stories.md).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from elasticsearch import Elasticsearch

from ..store import IndexNames, bulk_write
from .dedup import DocInfo, Fingerprint, StoryMatcher, best_match, fingerprint

__all__ = ["StoryView", "assign_stories", "get_story", "update_stories"]

log = logging.getLogger(__name__)

WINDOW = timedelta(days=7)  # how far back a new article looks for its story
CANDIDATES = 10  # per article, best-scoring (most shared bands) first
MAX_LISTED = 1000  # article ids and outlets kept on a story document
CONFLICT_RETRIES = 5

Doc = MutableMapping[str, Any]


def _info(doc_id: str, doc: Mapping[str, Any], fp: Fingerprint, story: str | None) -> DocInfo:
    return DocInfo(
        doc_id=doc_id,
        domain=str(doc.get("domain") or ""),
        title=doc.get("title"),
        fingerprint=fp,
        story_id=story,
    )


def _query(fp: Fingerprint, exclude: Sequence[str]) -> dict[str, Any]:
    should: list[dict[str, Any]] = [{"term": {"text_hash": {"value": fp.text_hash, "boost": 100}}}]
    should += [{"term": {"lsh_bands": band}} for band in fp.bands]
    return {
        "bool": {
            "should": should,
            "minimum_should_match": 1,
            "filter": [{"range": {"indexed_at": {"gte": f"now-{WINDOW.days}d"}}}],
            "must_not": [{"ids": {"values": list(exclude)}}],
        }
    }


def assign_stories(
    es: Elasticsearch,
    names: IndexNames,
    batch: Sequence[tuple[str, Doc]],
    matcher: StoryMatcher,
) -> dict[str, int]:
    """Set ``story_id`` (and fingerprint fields) on each ``(doc_id, doc)`` about to be written.

    Candidates are indexed articles of the last :data:`WINDOW` and the articles met earlier in
    this run (``matcher``: they are not searchable yet). Returns counts by match kind.
    """
    counts: dict[str, int] = defaultdict(int)
    pending: list[tuple[str, Doc, Fingerprint]] = []
    for doc_id, doc in batch:
        text = doc.get("text") or ""
        fp = fingerprint(text) if doc.get("extraction") == "full" else None
        if fp is None or not fp.bands:
            doc["story_id"] = doc_id  # too little text to compare: a story of its own
            counts["story_new"] += 1
            continue
        doc["text_hash"] = fp.text_hash
        doc["lsh_bands"] = list(fp.bands)
        pending.append((doc_id, doc, fp))
    if not pending:
        return dict(counts)
    ids = [doc_id for doc_id, _, _ in pending]
    searches: list[dict[str, Any]] = []
    for _doc_id, _doc, fp in pending:
        searches.append({"index": names.articles})
        searches.append(
            {
                "query": _query(fp, ids),
                "size": CANDIDATES,
                "_source": ["title", "domain", "text", "story_id"],
            }
        )
    responses = es.msearch(searches=searches)["responses"]
    known: dict[str, DocInfo] = {}  # a candidate of several new articles is fingerprinted once
    for (doc_id, doc, fp), response in zip(pending, responses, strict=True):
        if "error" in response:
            raise RuntimeError(f"story candidate search failed: {response['error']}")
        candidates = []
        for hit in response["hits"]["hits"]:
            if hit["_id"] not in known:
                src = hit.get("_source") or {}
                fp_hit = fingerprint(src.get("text") or "")
                known[hit["_id"]] = _info(hit["_id"], src, fp_hit, src.get("story_id"))
            candidates.append(known[hit["_id"]])
        info = _info(doc_id, doc, fp, None)
        match = best_match(info, [*candidates, *matcher.candidates(fp)])
        if match is None:
            doc["story_id"] = doc_id
            counts["story_new"] += 1
        else:
            doc["story_id"] = match.story_id
            doc["duplicate_of"] = match.doc_id
            doc["similarity"] = round(match.similarity.jaccard, 4)
            counts[f"story_{match.kind}"] += 1
        matcher.add(_info(doc_id, doc, fp, doc["story_id"]))
    return dict(counts)


def _merge(story: Doc | None, story_id: str, docs: Iterable[tuple[str, Mapping[str, Any]]]) -> Doc:
    """A story document with ``docs`` (written articles) added; re-applying is harmless."""
    out: Doc = dict(story or {"story_id": story_id, "article_ids": [], "outlets": []})
    article_ids: list[str] = list(out.get("article_ids") or [])
    outlets: list[str] = list(out.get("outlets") or [])
    count = int(out.get("article_count") or len(article_ids))
    for doc_id, doc in sorted(docs, key=lambda d: str(d[1].get("indexed_at") or "")):
        if not out.get("first_article_id"):
            out.update(
                first_article_id=doc_id,
                title=doc.get("title"),
                first_url=doc.get("url"),
                first_domain=doc.get("domain"),
            )
        if doc_id not in article_ids:
            count += (
                1  # beyond MAX_LISTED ids, a re-applied article may count twice: rare, harmless
            )
            if len(article_ids) < MAX_LISTED:
                article_ids.append(doc_id)
        domain = doc.get("domain")
        if domain and domain not in outlets and len(outlets) < MAX_LISTED:
            outlets.append(domain)
        seen = str(doc.get("indexed_at") or "")
        if seen:
            out["first_seen"] = min(filter(None, [out.get("first_seen"), seen]))
            out["last_seen"] = max(filter(None, [out.get("last_seen"), seen]))
    out.update(
        article_ids=article_ids, outlets=outlets, article_count=count, outlet_count=len(outlets)
    )
    return out


def update_stories(
    es: Elasticsearch, names: IndexNames, written: Sequence[tuple[str, Mapping[str, Any]]]
) -> int:
    """Add written articles to their story documents (optimistic concurrency, retried on
    conflict, so concurrent workers never lose each other's articles). Returns stories touched."""
    by_story: dict[str, list[tuple[str, Mapping[str, Any]]]] = defaultdict(list)
    for doc_id, doc in written:
        if doc.get("story_id"):
            by_story[str(doc["story_id"])].append((doc_id, doc))
    remaining = dict(by_story)
    for _attempt in range(CONFLICT_RETRIES):
        if not remaining:
            break
        found = es.mget(index=names.stories, ids=list(remaining))["docs"]
        ops: list[tuple[str, str, Mapping[str, Any]]] = []
        meta: dict[str, dict[str, Any]] = {}
        for item in found:
            story_id = item["_id"]
            existing = item.get("_source") if item.get("found") else None
            merged = _merge(existing, story_id, remaining[story_id])
            if existing is None:
                ops.append(("create", story_id, merged))
            else:
                ops.append(("index", story_id, merged))
                meta[story_id] = {
                    "if_seq_no": item["_seq_no"],
                    "if_primary_term": item["_primary_term"],
                }
        report = bulk_write(es, names.stories, ops, meta=meta)
        if report.failed:
            raise RuntimeError(f"could not update stories: {report.failed}")
        remaining = {k: remaining[k] for k in report.conflicts}
    if remaining:
        raise RuntimeError(
            f"stories still conflicting after {CONFLICT_RETRIES} tries: {list(remaining)}"
        )
    return len(by_story)


@dataclass(frozen=True)
class StoryView:
    story: Mapping[str, Any]
    articles: list[Mapping[str, Any]]  # title, url, domain, site_name, published_at, indexed_at

    def render(self) -> str:
        s = self.story
        lines = [
            f"story {s.get('story_id')}: {s.get('title')}",
            f"  {s.get('article_count')} article(s) in {s.get('outlet_count')} outlet(s): "
            + ", ".join(s.get("outlets") or []),
            f"  first seen {s.get('first_seen')}  last seen {s.get('last_seen')}",
            f"  first: {s.get('first_url')}",
        ]
        for a in self.articles:
            when = a.get("published_at") or a.get("indexed_at") or ""
            lines.append(f"  - {str(when)[:16]:<16}  {a.get('domain', ''):<28} {a.get('title')}")
            lines.append(f"    {a.get('url')}")
        return "\n".join(lines)


def get_story(es: Elasticsearch, names: IndexNames, story_or_article_id: str) -> StoryView | None:
    """A story and its articles, by story id or by the id of any of its articles."""
    found = es.mget(index=names.stories, ids=[story_or_article_id])["docs"][0]
    if not found.get("found"):
        hit = es.search(
            index=names.articles,
            query={"ids": {"values": [story_or_article_id]}},
            source_includes=["story_id"],
            size=1,
        )["hits"]["hits"]
        if not hit or not hit[0]["_source"].get("story_id"):
            return None
        found = es.mget(index=names.stories, ids=[hit[0]["_source"]["story_id"]])["docs"][0]
        if not found.get("found"):
            return None
    story = found["_source"]
    fields = ["title", "url", "domain", "site_name", "published_at", "indexed_at"]
    hits = es.search(
        index=names.articles,
        query={"term": {"story_id": story["story_id"]}},
        source_includes=fields,
        sort=[{"indexed_at": "asc"}],
        size=200,
    )["hits"]["hits"]
    return StoryView(story=story, articles=[h["_source"] for h in hits])
