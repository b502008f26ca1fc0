"""Searching the articles with a query built elsewhere (an alert rule's): ``newsmon search``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .client import Client, IndexNames, es_iso

__all__ = ["LISTED_FIELDS", "search_articles"]

LISTED_FIELDS = (
    "title",
    "url",
    "domain",
    "feed_id",
    "published_at",
    "indexed_at",
    "story_id",
    "language",
)


def search_articles(
    es: Client,
    names: IndexNames,
    query: Mapping[str, Any],
    *,
    since: datetime | None = None,
    size: int = 20,
) -> tuple[int, list[tuple[str, Mapping[str, Any]]]]:
    """(how many articles match, the ``size`` most recently indexed as (id, fields
    :data:`LISTED_FIELDS`)) for ``query``, limited to those indexed since ``since``."""
    filters = [{"range": {"indexed_at": {"gte": es_iso(since)}}}] if since is not None else []
    response = es.search(
        index=names.articles,
        query={"bool": {"must": [dict(query)], "filter": filters}},
        source_includes=list(LISTED_FIELDS),
        sort=[{"indexed_at": "desc"}, {"canonical_url": "asc"}],
        size=size,
        track_total_hits=True,
    )
    hits = response["hits"]
    return int(hits["total"]["value"]), [(h["_id"], h["_source"]) for h in hits["hits"]]
