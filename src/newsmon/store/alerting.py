"""The searches of keyword alerts: matching new articles, their first articles and snippets,
outlets per story, query validation, previews, and the feeds behind a domain filter.

A rule reaches this module as a :class:`RuleSearch` (its Lucene query and term filters); the
answers come back as values, never as Elasticsearch responses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..text.terms import widen_marks
from .client import PARALLEL, Client, IndexNames, es_iso, es_time, exists, mget, msearch

__all__ = [
    "ITEM_FIELDS",
    "SEARCH_FIELDS",
    "Failed",
    "FirstArticles",
    "Found",
    "HitsPage",
    "Listing",
    "PreviewCounts",
    "RuleSearch",
    "StoryCounts",
    "Validation",
    "Window",
    "article_sources",
    "count_matches",
    "count_stories",
    "feeds_publishing",
    "first_articles",
    "highlight_in_full",
    "list_matches",
    "outlet_counts",
    "preview_search",
    "story_members",
    "term_filters",
    "validate",
]

SEARCH_FIELDS = ("terms.title", "terms.text")  # what a word without a field searches
# the normalised fields whose matches the highlighter marks in the original (newsmon.text.terms)
MATCHED_FIELDS = {name: [f"terms.{name}", f"exact.{name}"] for name in ("title", "text")}
ITEM_FIELDS = ("title", "url", "canonical_url", "site_name", "domain", "published_at", "indexed_at")
FRAGMENT_CHARS = 180  # characters per highlight fragment
FAST_HIGHLIGHT_CHARS = 20_000  # text analysed for snippets on the first pass
STORY_CHUNK = 1000  # stories per outlet-count aggregation
ID_CHUNK = 200  # articles per search by ids
MEMBERS_PER_SEARCH = 9999  # articles one search of stories' members returns at most


def term_filters(filters: Iterable[tuple[str, Sequence[str]]]) -> list[dict[str, Any]]:
    """One ``terms`` filter per field that lists values (a document matches any of them)."""
    return [{"terms": {name: list(values)}} for name, values in filters if values]


@dataclass(frozen=True)
class RuleSearch:
    """What an alert rule looks for: a Lucene query (Kibana's syntax) on title and text, and
    term filters (field, values): every listed field must hold one of its values."""

    rule_id: str
    query: str
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()
    fields: tuple[str, ...] = SEARCH_FIELDS  # what words without a field search

    def lucene(self) -> dict[str, Any]:
        return {
            "query_string": {
                "query": self.query,
                "fields": list(self.fields),
                "default_operator": "OR",
                "analyze_wildcard": True,
            }
        }

    def as_query(self, *extra_filters: Mapping[str, Any]) -> dict[str, Any]:
        """The Elasticsearch query: the Lucene query, ``extra_filters`` and the term filters."""
        return {
            "bool": {
                "must": [self.lucene()],
                "filter": [*extra_filters, *term_filters(self.filters)],
            }
        }


@dataclass(frozen=True)
class Window:
    """The articles indexed, or updated in place (``updated_at``, newsmon.updates), after
    ``start`` up to and including ``end``."""

    start: datetime
    end: datetime

    def clause(self) -> dict[str, Any]:
        span = {"gt": es_iso(self.start), "lte": es_iso(self.end)}
        return {
            "bool": {
                "should": [{"range": {"indexed_at": span}}, {"range": {"updated_at": span}}],
                "minimum_should_match": 1,
            }
        }


@dataclass(frozen=True)
class Failed:
    """A search that Elasticsearch answered with an error."""

    reason: str


def _failure(response: Mapping[str, Any]) -> Failed | None:
    if "error" not in response:
        return None
    error = response.get("error") or {}
    if isinstance(error, Mapping):
        cause = (error.get("root_cause") or [error])[0]
        return Failed(f"{cause.get('type')}: {cause.get('reason')}"[:500])
    return Failed(str(error)[:500])


def _highlight(fragments: int, *, full: bool) -> dict[str, Any]:
    """Highlighting: long texts are first analysed only so far (most snippets are early, and
    analysis is most of the cost); an article left without a snippet is done again in full."""
    fields: dict[str, Any] = {
        "text": {
            "fragment_size": FRAGMENT_CHARS,
            "number_of_fragments": fragments,
            "matched_fields": MATCHED_FIELDS["text"],
        }
    }
    if full:
        fields["title"] = {"number_of_fragments": 0, "matched_fields": MATCHED_FIELDS["title"]}
    return {
        "pre_tags": ["<em>"],
        "post_tags": ["</em>"],
        "fields": fields,
        **({} if full else {"max_analyzed_offset": FAST_HIGHLIGHT_CHARS}),
    }


def _marks(hit: Mapping[str, Any]) -> dict[str, list[str]]:
    """A hit's highlighted fragments, each mark widened to its whole word."""
    found = hit.get("highlight") or {}
    return {name: [widen_marks(f) for f in fragments] for name, fragments in found.items()}


# --- matching: which stories each rule matched in its window -------------------------------------


@dataclass(frozen=True)
class StoryCounts:
    """What one rule matched in a window: matching articles per story id (at most the
    ``buckets`` asked for), whether more stories matched, and the matching articles that have
    no story id."""

    stories: dict[str, int]
    more: bool
    loose: int


_NO_STORY = {"bool": {"must_not": [{"exists": {"field": "story_id"}}]}}


def count_stories(
    es: Client,
    names: IndexNames,
    groups: Sequence[tuple[Window, Sequence[RuleSearch]]],
    *,
    buckets: int,
) -> list[dict[str, StoryCounts] | Failed]:
    """Per group of rules sharing a window, in order: the stories each rule matched, by rule
    id — one search per group (a ``filters`` aggregation with a bucket per rule) — or why the
    search failed."""
    bodies = [
        {
            "query": {"bool": {"filter": [window.clause()]}},
            "size": 0,
            "track_total_hits": False,
            "aggs": {
                "rules": {
                    "filters": {"filters": {s.rule_id: s.as_query() for s in searches}},
                    "aggs": {
                        "stories": {"terms": {"field": "story_id", "size": buckets}},
                        "loose": {"missing": {"field": "story_id"}},
                    },
                }
            },
        }
        for window, searches in groups
    ]
    out: list[dict[str, StoryCounts] | Failed] = []
    for (_, searches), response in zip(groups, msearch(es, names.articles, bodies), strict=True):
        failed = _failure(response)
        if failed is not None:
            out.append(failed)
            continue
        found = response["aggregations"]["rules"]["buckets"]
        out.append(
            {
                s.rule_id: StoryCounts(
                    stories={
                        b["key"]: int(b["doc_count"])
                        for b in found[s.rule_id]["stories"]["buckets"]
                    },
                    more=int(found[s.rule_id]["stories"]["sum_other_doc_count"]) > 0,
                    loose=int(found[s.rule_id]["loose"]["doc_count"]),
                )
                for s in searches
            }
        )
    return out


@dataclass(frozen=True)
class Listing:
    """One page of a rule's matching articles in a window, oldest indexed first: all of them,
    or only those without a story id; ``after`` is where the previous page ended."""

    search: RuleSearch
    window: Window
    loose_only: bool
    after: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class HitsPage:
    hits: tuple[tuple[str, str | None], ...]  # (article id, story id or None)
    next: Listing | None  # the following page, when this one was full


def list_matches(
    es: Client, names: IndexNames, listings: Sequence[Listing], *, page: int
) -> list[HitsPage | Failed]:
    """One page of ``page`` matching articles per listing, in order (hit by hit: for the rules
    with more stories than the aggregation lists, and for articles without a story id)."""
    bodies = []
    for listing in listings:
        extra = [listing.window.clause(), *([_NO_STORY] if listing.loose_only else [])]
        body: dict[str, Any] = {
            "query": listing.search.as_query(*extra),
            "size": page,
            "_source": False,
            "docvalue_fields": ["story_id"],
            "sort": [{"indexed_at": "asc"}, {"canonical_url": "asc"}],
            "track_total_hits": False,
        }
        if listing.after is not None:
            body["search_after"] = list(listing.after)
        bodies.append(body)
    out: list[HitsPage | Failed] = []
    for listing, response in zip(listings, msearch(es, names.articles, bodies), strict=True):
        failed = _failure(response)
        if failed is not None:
            out.append(failed)
            continue
        found = response["hits"]["hits"]
        hits = []
        for hit in found:
            story = (hit.get("fields") or {}).get("story_id") or []
            hits.append((hit["_id"], str(story[0]) if story else None))
        following = None
        if len(found) == page:
            following = Listing(
                listing.search, listing.window, listing.loose_only, tuple(found[-1]["sort"])
            )
        out.append(HitsPage(tuple(hits), following))
    return out


# --- the articles an email shows -----------------------------------------------------------------


@dataclass(frozen=True)
class FirstArticles:
    """The articles a rule matches among ``ids``: story ids — of each story, its earliest
    indexed matching article in ``window`` — or, with ``stories=False``, the ids of articles
    without a story. ``highlight``: with highlighted fragments (texts analysed only so far)."""

    search: RuleSearch
    window: Window
    ids: tuple[str, ...]
    stories: bool = True
    highlight: bool = False


@dataclass(frozen=True)
class Found:
    """A matching article: its id, the fields asked for, its highlighted fragments by field."""

    article_id: str
    source: Mapping[str, Any]
    highlight: Mapping[str, Sequence[str]]


def first_articles(
    es: Client, names: IndexNames, requests: Sequence[FirstArticles], *, fragments: int
) -> list[list[Found] | Failed]:
    """The articles of each request (fields :data:`ITEM_FIELDS` and ``story_id``), in order."""
    bodies: list[dict[str, Any]] = []
    for request in requests:
        body: dict[str, Any] = {
            "_source": [*ITEM_FIELDS, "story_id"],
            "track_total_hits": False,
            "size": len(request.ids),
        }
        if request.highlight:
            body["highlight"] = _highlight(fragments, full=False)
        if request.stories:
            stories = {"terms": {"story_id": list(request.ids)}}
            body["query"] = request.search.as_query(request.window.clause(), stories)
            body["collapse"] = {"field": "story_id"}
            body["sort"] = [{"indexed_at": "asc"}]
        else:
            body["query"] = request.search.as_query({"ids": {"values": list(request.ids)}})
        bodies.append(body)
    out: list[list[Found] | Failed] = []
    for response in msearch(es, names.articles, bodies):
        failed = _failure(response)
        out.append(
            failed
            if failed is not None
            else [
                Found(hit["_id"], hit["_source"], _marks(hit)) for hit in response["hits"]["hits"]
            ]
        )
    return out


def highlight_in_full(
    es: Client,
    names: IndexNames,
    requests: Sequence[tuple[RuleSearch, Sequence[str]]],
    *,
    fragments: int,
) -> list[dict[str, Mapping[str, Sequence[str]]]]:
    """Per (rule, article ids): each article's highlighted fragments, its whole text analysed
    (and its title); an article the search does not find, or a failed search, has none."""
    bodies = [
        {
            "query": search.as_query({"ids": {"values": list(ids)}}),
            "size": len(ids),
            "_source": False,
            "highlight": _highlight(fragments, full=True),
        }
        for search, ids in requests
    ]
    return [
        {hit["_id"]: _marks(hit) for hit in (response.get("hits") or {}).get("hits") or ()}
        for response in msearch(es, names.articles, bodies)
    ]


def article_sources(
    es: Client, names: IndexNames, ids: Iterable[str], fields: Sequence[str]
) -> dict[str, Mapping[str, Any]]:
    """Per article id found: its ``fields`` (a search by ids, which an alias over several
    indices answers where ``_mget`` cannot), :data:`ID_CHUNK` ids per search, a few at once."""
    wanted = sorted(set(ids))
    bodies = [
        {
            "query": {"ids": {"values": wanted[i : i + ID_CHUNK]}},
            "size": len(wanted[i : i + ID_CHUNK]),
            "_source": list(fields),
            "track_total_hits": False,
        }
        for i in range(0, len(wanted), ID_CHUNK)
    ]
    return {
        hit["_id"]: hit.get("_source") or {}
        for response in msearch(es, names.articles, bodies)
        for hit in (response.get("hits") or {}).get("hits") or ()
    }


def _indexed_order(member: tuple[str, Mapping[str, Any]]) -> tuple[datetime, str]:
    src = member[1]
    return es_time(src.get("indexed_at")) or datetime.max.replace(tzinfo=UTC), str(
        src.get("canonical_url")
    )


def story_members(
    es: Client, names: IndexNames, window: Window, story_ids: Iterable[str]
) -> dict[str, list[tuple[str, Mapping[str, Any]]]]:
    """Per story id: its articles in ``window`` as (id, fields :data:`ITEM_FIELDS` and
    ``story_id``), earliest indexed first (then by URL), :data:`STORY_CHUNK` stories per
    search. A story whose search found more than :data:`MEMBERS_PER_SEARCH` articles, or
    failed, is left out."""
    wanted = sorted(set(story_ids))
    chunks = [wanted[i : i + STORY_CHUNK] for i in range(0, len(wanted), STORY_CHUNK)]
    bodies = [
        {
            "query": {"bool": {"filter": [window.clause(), {"terms": {"story_id": chunk}}]}},
            "size": MEMBERS_PER_SEARCH + 1,
            "_source": [*ITEM_FIELDS, "story_id"],
            "track_total_hits": False,
        }
        for chunk in chunks
    ]
    out: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for response in msearch(es, names.articles, bodies):
        hits = (response.get("hits") or {}).get("hits") or []
        if _failure(response) is not None or len(hits) > MEMBERS_PER_SEARCH:
            continue
        for hit in hits:
            src = hit.get("_source") or {}
            out.setdefault(str(src.get("story_id")), []).append((hit["_id"], src))
    for members in out.values():
        members.sort(key=_indexed_order)
    return out


def outlet_counts(es: Client, names: IndexNames, story_ids: Iterable[str]) -> dict[str, int]:
    """Outlets per story: the stories index when it has the story, else the articles we see."""
    ids = sorted(set(story_ids))
    counts: dict[str, int] = {}
    stored = mget(es, names.stories, ids, fields=["outlet_count"], missing_index_ok=True)
    for story_id, src in stored.items():
        if src.get("outlet_count") is not None:
            counts[story_id] = int(src["outlet_count"])
    missing = [i for i in ids if i not in counts]
    for start in range(0, len(missing), STORY_CHUNK):
        chunk = missing[start : start + STORY_CHUNK]
        response = es.search(
            index=names.articles,
            size=0,
            query={"terms": {"story_id": chunk}},
            aggs={
                "story": {
                    "terms": {"field": "story_id", "size": len(chunk)},
                    "aggs": {"outlets": {"cardinality": {"field": "domain"}}},
                }
            },
        )
        for bucket in response["aggregations"]["story"]["buckets"]:
            counts[bucket["key"]] = int(bucket["outlets"]["value"])
    return counts


# --- checking and trying rules -------------------------------------------------------------------


@dataclass(frozen=True)
class Validation:
    """How Elasticsearch reads a rule's Lucene query (``_validate/query`` with explain)."""

    valid: bool
    explanation: str  # of a valid query, e.g. "+(title:flood | text:flood)"
    error: str  # of an invalid one, the parser's message


def validate(es: Client, names: IndexNames, searches: Sequence[RuleSearch]) -> list[Validation]:
    """Validate each rule's Lucene query against the articles' mapping, a few at once."""

    def check(search: RuleSearch) -> Validation:
        body = es.indices.validate_query(
            index=names.articles, query=search.lucene(), explain=True
        ).body
        details = body.get("explanations") or [{}]
        if not body.get("valid"):
            error = str(details[0].get("error") or body.get("error") or "invalid query")
            return Validation(False, "", error)
        return Validation(True, str(details[0].get("explanation") or ""), "")

    with ThreadPoolExecutor(PARALLEL, thread_name_prefix="newsmon-validate") as pool:
        return list(pool.map(check, searches))


@dataclass(frozen=True)
class PreviewCounts:
    """What a rule matched over a time range: articles and stories (an article without a story
    counts as one), per day, and the newest matching articles with highlighted fragments."""

    articles: int
    stories: int
    per_day: tuple[tuple[str, int, int], ...]  # (YYYY-MM-DD, articles, stories)
    newest: tuple[Found, ...]


def preview_search(
    es: Client,
    names: IndexNames,
    search: RuleSearch,
    *,
    start: datetime,
    end: datetime,
    time_field: str,
    size: int,
    timezone: str,
    fragments: int,
    every_day: bool,
) -> PreviewCounts:
    """The rule's matches with ``time_field`` from ``start`` to ``end``: counted per day in
    ``timezone`` (``every_day``: quiet days listed too), and the newest ``size`` articles."""
    days: dict[str, Any] = {"min_doc_count": 1}
    if every_day:
        days = {
            "min_doc_count": 0,
            "extended_bounds": {
                "min": int(start.timestamp() * 1000),
                "max": int(end.timestamp() * 1000),
            },
        }
    response = es.search(
        index=names.articles,
        query=search.as_query({"range": {time_field: {"gte": es_iso(start), "lte": es_iso(end)}}}),
        size=size,
        sort=[{time_field: "desc"}],
        source_includes=[
            "title",
            "url",
            "site_name",
            "domain",
            "published_at",
            "indexed_at",
            "story_id",
        ],
        highlight={
            "pre_tags": ["<em>"],
            "post_tags": ["</em>"],
            "fields": {
                "text": {
                    "fragment_size": FRAGMENT_CHARS,
                    "number_of_fragments": fragments,
                    "matched_fields": MATCHED_FIELDS["text"],
                },
                "title": {"matched_fields": MATCHED_FIELDS["title"]},
            },
        },
        track_total_hits=True,
        aggs={
            "days": {
                "date_histogram": {
                    "field": time_field,
                    "calendar_interval": "day",
                    "time_zone": timezone,
                    **days,
                    "format": "yyyy-MM-dd",
                },
                "aggs": {
                    "stories": {"cardinality": {"field": "story_id"}},
                    "no_story": {"missing": {"field": "story_id"}},
                },
            },
            "stories": {"cardinality": {"field": "story_id"}},
            "no_story": {"missing": {"field": "story_id"}},
        },
    )
    aggs = response["aggregations"]
    return PreviewCounts(
        articles=int(response["hits"]["total"]["value"]),
        stories=int(aggs["stories"]["value"]) + int(aggs["no_story"]["doc_count"]),
        per_day=tuple(
            (
                b["key_as_string"],
                int(b["doc_count"]),
                int(b["stories"]["value"]) + int(b["no_story"]["doc_count"]),
            )
            for b in aggs["days"]["buckets"]
        ),
        newest=tuple(
            Found(hit["_id"], hit["_source"], _marks(hit)) for hit in response["hits"]["hits"]
        ),
    )


def count_matches(
    es: Client,
    names: IndexNames,
    search: RuleSearch,
    *,
    time_field: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> int:
    """How many articles the rule matches: all of them, or those with ``time_field`` from
    ``start`` to ``end``."""
    extra = []
    if time_field is not None and start is not None and end is not None:
        extra.append({"range": {time_field: {"gte": es_iso(start), "lte": es_iso(end)}}})
    return int(es.count(index=names.articles, query=search.as_query(*extra))["count"])


def feeds_publishing(
    es: Client, names: IndexNames, domains: Iterable[str], *, feeds: int
) -> set[str]:
    """The ids of the feeds (of at most ``feeds``) whose articles come from one of ``domains``;
    none before there is an articles index."""
    if not exists(es, names.articles):
        return set()
    response = es.search(
        index=names.articles,
        size=0,
        query={"terms": {"domain": sorted(domains)}},
        aggs={"feeds": {"terms": {"field": "feed_id", "size": max(feeds, 1)}}},
    )
    return {b["key"] for b in response["aggregations"]["feeds"]["buckets"]}
