"""Article documents: what is indexed already, and the document of an article record."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from ..article import Article, ArticleSource
from ..text.terms import aligned
from .bulk import BulkReport, bulk_write
from .client import Client, IndexNames, es_iso, es_time, locate

__all__ = [
    "IndexedState",
    "articles_by_id",
    "from_document",
    "indexed_states",
    "load_articles",
    "match_fields",
    "recheck_candidates",
    "to_document",
    "update_articles",
    "write_articles",
]


@dataclass(frozen=True)
class IndexedState:
    """What the index already holds for one article id."""

    extraction: str | None
    fetch_outcome: str | None
    fetch_attempts: int
    doc_id: str  # the document holding it (another id when found through url_keys)
    indexed_at: datetime | None = None
    feed_date: datetime | None = None  # the latest date its feed gave it (newsmon.updates)
    published_at: datetime | None = None
    published_at_source: str | None = None


def indexed_states(
    client: Client, names: IndexNames, urls: Mapping[str, str]
) -> dict[str, IndexedState]:
    """Which articles are already indexed: ``urls`` maps each candidate's id to its canonical
    URL; an article counts as indexed under its own id or under another document that lists the
    URL in ``url_keys`` (a page whose own canonical URL differs from the feed's link)."""
    found: dict[str, IndexedState] = {}
    ids = list(urls)
    by_url = {url: doc_id for doc_id, url in urls.items()}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        keys = [urls[i] for i in chunk]
        response = client.search(
            index=names.articles,
            query={"bool": {"should": [{"ids": {"values": chunk}}, {"terms": {"url_keys": keys}}]}},
            source_includes=[
                "extraction",
                "fetch_outcome",
                "fetch_attempts",
                "url_keys",
                "indexed_at",
                "feed_date",
                "published_at",
                "published_at_source",
            ],
            size=2 * len(chunk),
        )
        for hit in response["hits"]["hits"]:
            src = hit.get("_source") or {}
            state = IndexedState(
                extraction=src.get("extraction"),
                fetch_outcome=src.get("fetch_outcome"),
                fetch_attempts=int(src.get("fetch_attempts") or 1),
                doc_id=hit["_id"],
                indexed_at=es_time(src.get("indexed_at")),
                feed_date=es_time(src.get("feed_date")),
                published_at=es_time(src.get("published_at")),
                published_at_source=src.get("published_at_source"),
            )
            matched = {hit["_id"]} & set(chunk) | {
                by_url[k] for k in src.get("url_keys") or [] if k in by_url
            }
            for doc_id in matched:
                found[doc_id] = state
    return found


# --- the article record as a document -----------------------------------------------------------

_DATES = ("published_at", "fetched_at", "indexed_at", "updated_at", "checked_at", "feed_date")
_LISTS = ("authors", "tags", "url_keys", "lsh_bands")


NOT_INDEXED: Final = frozenset({"shapes"})  # record fields that stay out of the document


def to_document(article: Article) -> dict[str, Any]:
    """The Elasticsearch document of ``article``: dates in UTC ISO 8601, lists as lists, unset
    fields left out. A rejected article keeps no text (the index refused it once)."""
    doc: dict[str, Any] = {}
    for f in fields(article):
        if f.name in NOT_INDEXED:
            continue
        value = getattr(article, f.name)
        if isinstance(value, datetime):
            value = value.astimezone(UTC).isoformat()
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, StrEnum):
            value = value.value
        if value is not None and value != []:
            doc[f.name] = value
    if article.extraction is ArticleSource.REJECTED:
        doc.pop("text", None)
    else:
        doc["word_count"] = article.word_count
    doc.update(match_fields(doc))
    return doc


def match_fields(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The fields rules match (``terms.*`` stemmed, ``exact.*`` folded) of a document's title
    and text: their words normalised and aligned with the original (newsmon.text.terms)."""
    out: dict[str, Any] = {}
    for key, stemmed in (("terms", True), ("exact", False)):
        forms = {
            name: aligned(doc[name], stemmed=stemmed)
            for name in ("title", "text")
            if isinstance(doc.get(name), str) and doc[name]
        }
        if forms:
            out[key] = forms
    return out


def from_document(source: Mapping[str, Any]) -> Article:
    """An article record from its document (as :func:`to_document` wrote it, or an older one)."""
    known = {f.name for f in fields(Article)} - NOT_INDEXED
    values: dict[str, Any] = {k: v for k, v in source.items() if k in known}
    for name in _DATES:
        values[name] = es_time(values.get(name))
    for name in _LISTS:
        values[name] = tuple(values.get(name) or ())
    values["extraction"] = ArticleSource(values.get("extraction") or ArticleSource.FULL)
    values["fetched_at"] = values["fetched_at"] or values["indexed_at"] or datetime.now(UTC)
    values.setdefault("text", "")
    canonical = str(values.get("canonical_url") or values.get("url") or "")
    values.setdefault("url", canonical)
    values.setdefault("canonical_url", canonical)
    values.setdefault("domain", "")
    values.setdefault("site_name", values["domain"])
    values.setdefault("title", None)
    return Article(**values)


def _where(client: Client, names: IndexNames, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Bulk metadata sending each write of an existing article to the backing index holding it:
    through the alias, a write goes to the newest backing index only (docs/maintenance.md)."""
    found = locate(client, names.articles, ids, fields=[])
    return {doc_id: {"_index": index} for doc_id, (index, _src) in found.items()}


def write_articles(
    client: Client, names: IndexNames, ops: Sequence[tuple[str, str, Article]]
) -> BulkReport:
    """Write ``(op, id, article)``: ``create`` a new article, or ``index`` over the document of
    an article being replaced (a feed fallback fetched again), where it is."""
    meta = _where(client, names, [i for op, i, _a in ops if op != "create"])
    docs = [(op, i, to_document(a)) for op, i, a in ops]
    return bulk_write(client, names.articles, docs, meta=meta)


def update_articles(
    client: Client, names: IndexNames, changes: Mapping[str, Mapping[str, Any]]
) -> BulkReport:
    """Partial updates of article documents, where they are: id -> the fields to change."""
    meta = _where(client, names, changes)
    ops = [("update", i, c) for i, c in changes.items()]
    return bulk_write(client, names.articles, ops, meta=meta)


def articles_by_id(
    client: Client, names: IndexNames, ids: Iterable[str], fields: Sequence[str]
) -> dict[str, Mapping[str, Any]]:
    """The ``fields`` of the articles found among ``ids``."""
    return {
        i: src for i, (_index, src) in locate(client, names.articles, ids, fields=fields).items()
    }


def load_articles(
    client: Client, names: IndexNames, ids: Iterable[str]
) -> dict[str, tuple[str, Article]]:
    """id -> (the backing index holding it, its article record) for the articles found."""
    found = locate(client, names.articles, ids)
    return {i: (index, from_document(src)) for i, (index, src) in found.items()}


def recheck_candidates(
    client: Client,
    names: IndexNames,
    *,
    checked_before: datetime,
    indexed_since: datetime,
    size: int,
    feed_ids: Sequence[str],
    exclude: Iterable[str] = (),
) -> list[str]:
    """The ids of at most ``size`` fully extracted articles of the feeds ``feed_ids`` indexed
    since ``indexed_since`` whose page was last fetched (``checked_at``, else ``fetched_at``)
    before ``checked_before``, the longest unchecked first."""
    if size <= 0 or not feed_ids:
        return []
    before = es_iso(checked_before)
    response = client.search(
        index=names.articles,
        query={
            "bool": {
                "filter": [
                    {"term": {"extraction": ArticleSource.FULL.value}},
                    {"terms": {"feed_id": list(feed_ids)}},
                    {"range": {"indexed_at": {"gte": es_iso(indexed_since)}}},
                    {
                        "bool": {
                            "should": [
                                {"range": {"checked_at": {"lt": before}}},
                                {
                                    "bool": {
                                        "must_not": [{"exists": {"field": "checked_at"}}],
                                        "filter": [{"range": {"fetched_at": {"lt": before}}}],
                                    }
                                },
                            ],
                            "minimum_should_match": 1,
                        }
                    },
                ],
                "must_not": [{"ids": {"values": list(exclude)}}],
            }
        },
        sort=[
            {"checked_at": {"order": "asc", "missing": "_first", "unmapped_type": "date"}},
            {"fetched_at": {"order": "asc"}},
        ],
        source=False,
        size=size,
    )
    return [hit["_id"] for hit in response["hits"]["hits"]]
