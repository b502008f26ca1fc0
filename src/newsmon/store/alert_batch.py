"""What the alerts presearch reads (newsmon.alerts.presearch, docs/alerts.md "Speed"): the
articles of a window with the strings their words were indexed from, and their filter fields."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .alerting import Window
from .client import Client, IndexNames

__all__ = ["FILTER_FIELDS", "INDEXED_FIELDS", "WindowArticle", "window_articles"]

INDEXED_FIELDS = ("terms.title", "terms.text", "exact.title", "exact.text")
FILTER_FIELDS = ("feed_id", "domain", "language", "tags")  # what a rule's filters name


@dataclass(frozen=True)
class WindowArticle:
    """An article of a window: its filter fields' values and the strings its words were
    indexed from (``terms.*``/``exact.*``, whitespace-separated, newsmon.text.terms)."""

    article_id: str
    values: Mapping[str, tuple[str, ...]]  # FILTER_FIELDS -> values
    indexed: Mapping[str, str]  # INDEXED_FIELDS -> the indexed string


def _values(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(str(v) for v in value if v is not None)
    return (str(value),)


def window_articles(
    es: Client, names: IndexNames, window: Window, *, limit: int
) -> list[WindowArticle] | None:
    """The articles of ``window`` (the window's own clause), or None when there are more than
    ``limit`` of them."""
    response = es.search(
        index=names.articles,
        query={"bool": {"filter": [window.clause()]}},
        size=limit + 1,
        source_includes=["terms", "exact", *FILTER_FIELDS],
        track_total_hits=False,
    )
    hits = response["hits"]["hits"]
    if len(hits) > limit:
        return None
    out = []
    for hit in hits:
        src = hit.get("_source") or {}
        indexed = {}
        for name in INDEXED_FIELDS:
            group, _, field = name.partition(".")
            value = (src.get(group) or {}).get(field)
            if isinstance(value, str):
                indexed[name] = value
        out.append(
            WindowArticle(
                hit["_id"],
                {name: _values(src.get(name)) for name in FILTER_FIELDS},
                indexed,
            )
        )
    return out
