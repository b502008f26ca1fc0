"""The ``lines`` index: which lines each domain's articles carry, shared by every worker."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from ..text.boilerplate import (
    CONTENT_SIGNATURES,
    MAX_KEYS_PER_SEARCH,
    SAMPLE_SIZE,
    LineStats,
    Sighting,
    digest,
)
from .bulk import bulk_write
from .client import Client, IndexNames, es_iso

__all__ = ["ElasticsearchLineStore"]

log = logging.getLogger(__name__)


class ElasticsearchLineStore:
    """:class:`LineStore` on the ``lines`` index, shared by every worker.

    One document per (domain, line, article) with a deterministic ``_id``, written with
    ``create``: a re-run or a racing worker finds it there (409) and nothing is counted twice.
    Sightings are refreshed before the batch's search, so repeats inside one batch count.
    """

    def __init__(self, es: Client, names: IndexNames, *, sample_size: int = SAMPLE_SIZE) -> None:
        self._es = es
        self._index = names.index("lines")
        self._sample_size = sample_size
        self._checked = False

    def _check(self) -> None:
        # Without its template the index would be auto-created with a dynamic mapping.
        if not self._checked:
            if not self._es.indices.exists(index=self._index):
                raise RuntimeError(f"index {self._index} is missing: run `newsmon es init`")
            self._checked = True

    def record(self, sightings: Sequence[Sighting]) -> None:
        if not sightings:
            return
        self._check()
        docs: dict[str, dict[str, Any]] = {}
        seen_at = es_iso(datetime.now(UTC))  # for retention (newsmon es maintain)
        for s in sightings:
            docs.setdefault(
                digest("sighting", s.domain, s.line, s.article),
                {
                    "domain": s.domain,
                    "line": s.line,
                    "article": s.article,
                    "day": s.day.isoformat(),
                    "seen_at": seen_at,
                    **{f"content_{i + 1}": c for i, c in enumerate(s.contents)},
                },
            )
        report = bulk_write(
            self._es, self._index, (("create", k, v) for k, v in docs.items()), refresh=True
        )
        if report.failed:
            # fewer sightings only means fewer removals
            log.warning("%d line sightings not recorded", len(report.failed))

    def stats(self, domain_lines: Mapping[str, Collection[str]]) -> dict[str, dict[str, LineStats]]:
        pairs = [(d, k) for d, keys in sorted(domain_lines.items()) for k in sorted(set(keys))]
        found: dict[str, dict[str, LineStats]] = {}
        if not pairs:
            return found
        self._check()
        for start in range(0, len(pairs), MAX_KEYS_PER_SEARCH):
            self._search(pairs[start : start + MAX_KEYS_PER_SEARCH], found)
        return found

    def _search(
        self, pairs: Sequence[tuple[str, str]], found: dict[str, dict[str, LineStats]]
    ) -> None:
        by_domain: dict[str, list[str]] = {}
        for domain, key in pairs:
            by_domain.setdefault(domain, []).append(key)
        query = {
            "bool": {
                "should": [
                    {"bool": {"filter": [{"term": {"domain": d}}, {"terms": {"line": keys}}]}}
                    for d, keys in by_domain.items()
                ],
                "minimum_should_match": 1,
            }
        }
        aggs = {
            "domains": {
                "terms": {"field": "domain", "size": len(by_domain)},
                "aggs": {
                    "lines": {
                        "terms": {"field": "line", "size": max(map(len, by_domain.values()))},
                        "aggs": {
                            "days": {"cardinality": {"field": "day"}},
                            **{
                                f"content_{i}": {"cardinality": {"field": f"content_{i}"}}
                                for i in range(1, CONTENT_SIGNATURES + 1)
                            },
                            "sample": {
                                "terms": {"field": "article", "size": self._sample_size},
                                "aggs": {"day": {"min": {"field": "day", "format": "strict_date"}}},
                            },
                        },
                    }
                },
            }
        }
        response = self._es.search(
            index=self._index, size=0, query=query, aggs=aggs, track_total_hits=False
        )
        for domain_bucket in response["aggregations"]["domains"]["buckets"]:
            lines = found.setdefault(str(domain_bucket["key"]), {})
            for bucket in domain_bucket["lines"]["buckets"]:
                sample = {
                    str(b["key"]): date.fromisoformat(b["day"]["value_as_string"])
                    for b in bucket["sample"]["buckets"]
                }
                lines[str(bucket["key"])] = LineStats(
                    articles=int(bucket["doc_count"]),
                    days=int(bucket["days"]["value"]),
                    contents=min(
                        int(bucket[f"content_{i}"]["value"])
                        for i in range(1, CONTENT_SIGNATURES + 1)
                    ),
                    sample=sample,
                )
