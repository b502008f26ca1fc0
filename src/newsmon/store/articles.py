"""Article documents: what is indexed already, and the document of an article record."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from .client import Client, IndexNames, es_time

__all__ = ["IndexedState", "indexed_states"]


@dataclass(frozen=True)
class IndexedState:
    """What the index already holds for one article id."""

    extraction: str | None
    fetch_outcome: str | None
    fetch_attempts: int
    doc_id: str  # the document holding it (another id when found through url_keys)
    indexed_at: datetime | None = None


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
            )
            matched = {hit["_id"]} & set(chunk) | {
                by_url[k] for k in src.get("url_keys") or [] if k in by_url
            }
            for doc_id in matched:
                found[doc_id] = state
    return found
