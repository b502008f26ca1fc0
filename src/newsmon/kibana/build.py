"""The saved objects newsmon ships: data views, saved searches, Lens charts and the dashboard.

``newsmon kibana export`` writes them to ``config/kibana/*.ndjson`` (:func:`export_files`),
one saved search per alert rule in ``alerts.ndjson``. Every object has a fixed id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..alerts import AlertRule, RuleSet
from .objects import ALERTS_FILE, BASE_FILE, DEFAULT_PREFIX, RECORDS, compact_json, render_ndjson

# The model each attribute layout was written for; Kibana migrates newer on import.
MIGRATION_VERSIONS = {
    "index-pattern": "8.0.0",
    "search": "8.0.0",
    "lens": "8.9.0",
    "dashboard": "8.9.0",
}
PANEL_VERSION = "8.9.0"


def _object(
    kind: str, id_: str, attributes: dict[str, Any], refs: list[dict[str, str]]
) -> dict[str, Any]:
    return {
        "id": id_,
        "type": kind,
        "managed": False,
        "coreMigrationVersion": "8.8.0",
        "typeMigrationVersion": MIGRATION_VERSIONS[kind],
        "attributes": attributes,
        "references": refs,
    }


_LINK = {"id": "url", "params": {"type": "a", "urlTemplate": None, "labelTemplate": None}}


def _data_view(
    id_: str, name: str, index: str, time_field: str | None, formats: Mapping[str, Any]
) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "title": f"{DEFAULT_PREFIX}{index}",
        "name": name,
        "fieldFormatMap": compact_json(dict(formats)),
        "fieldAttrs": "{}",
        "runtimeFieldMap": "{}",
        "sourceFilters": compact_json([{"value": "lsh_bands"}, {"value": "url_keys"}])
        if index == "articles"
        else "[]",
        "allowNoIndex": False,
    }
    if time_field:
        attributes["timeFieldName"] = time_field
    return _object("index-pattern", id_, attributes, [])


_INDEX_REF = "kibanaSavedObjectMeta.searchSourceJSON.index"


def _search(
    id_: str,
    title: str,
    description: str,
    view: str,
    columns: Sequence[str],
    sort: Sequence[tuple[str, str]],
    query: str = "",
    filters: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """A saved search (Discover session); ``filters`` as (field, values) "is one of" pills."""
    refs = [{"name": _INDEX_REF, "type": "index-pattern", "id": view}]
    filter_objects = []
    for i, clause in enumerate(filters):
        ((name, values),) = clause["terms"].items()
        ref_name = f"kibanaSavedObjectMeta.searchSourceJSON.filter[{i}].meta.index"
        refs.append({"name": ref_name, "type": "index-pattern", "id": view})
        filter_objects.append(
            {
                "meta": {
                    "alias": None,
                    "negate": False,
                    "disabled": False,
                    "type": "phrases",
                    "key": name,
                    "params": list(values),
                    "indexRefName": ref_name,
                },
                "query": {
                    "bool": {
                        "should": [{"match_phrase": {name: value}} for value in values],
                        "minimum_should_match": 1,
                    }
                },
                "$state": {"store": "appState"},
            }
        )
    source = {
        "query": {"query": query, "language": "lucene"},
        "highlightAll": True,
        "filter": filter_objects,
        "indexRefName": _INDEX_REF,
    }
    attributes = {
        "title": title,
        "description": description,
        "columns": list(columns),
        "sort": [[f, d] for f, d in sort],
        "grid": {},
        "hideChart": False,
        "isTextBasedQuery": False,
        "kibanaSavedObjectMeta": {"searchSourceJSON": compact_json(source)},
    }
    return _object("search", id_, attributes, refs)


_LAYER = "layer1"
_COUNT = {
    "label": "Articles",
    "customLabel": True,
    "dataType": "number",
    "operationType": "count",
    "isBucketed": False,
    "scale": "ratio",
    "sourceField": RECORDS,
    "params": {"emptyAsNull": True},
}


def _date_histogram(field_: str) -> dict[str, Any]:
    return {
        "label": field_,
        "dataType": "date",
        "operationType": "date_histogram",
        "sourceField": field_,
        "isBucketed": True,
        "scale": "interval",
        "params": {"interval": "auto", "includeEmptyRows": True, "dropPartials": False},
    }


def _terms(field_: str, label: str, size: int, order_by: str, other: bool = True) -> dict[str, Any]:
    return {
        "label": label,
        "customLabel": True,
        "dataType": "string",
        "operationType": "terms",
        "sourceField": field_,
        "isBucketed": True,
        "scale": "ordinal",
        "params": {
            "size": size,
            "orderBy": {"type": "column", "columnId": order_by},
            "orderDirection": "desc",
            "otherBucket": other,
            "missingBucket": False,
            "parentFormat": {"id": "terms"},
        },
    }


def _lens(
    id_: str,
    title: str,
    description: str,
    view: str,
    visualization_type: str,
    columns: Mapping[str, Mapping[str, Any]],
    visualization: Mapping[str, Any],
    query: str = "",
) -> dict[str, Any]:
    state = {
        "datasourceStates": {
            "formBased": {
                "layers": {
                    _LAYER: {
                        "columns": dict(columns),
                        "columnOrder": list(columns),
                        "incompleteColumns": {},
                    }
                }
            }
        },
        "visualization": dict(visualization),
        "query": {"query": query, "language": "lucene"},
        "filters": [],
        "internalReferences": [],
        "adHocDataViews": {},
    }
    refs = [
        {"name": f"indexpattern-datasource-layer-{_LAYER}", "type": "index-pattern", "id": view}
    ]
    attributes = {
        "title": title,
        "description": description,
        "visualizationType": visualization_type,
        "state": state,
    }
    return _object("lens", id_, attributes, refs)


def _xy(split: str | None, series: str = "bar_stacked") -> dict[str, Any]:
    layer: dict[str, Any] = {
        "layerId": _LAYER,
        "layerType": "data",
        "seriesType": series,
        "xAccessor": "when",
        "accessors": ["count"],
    }
    if split:
        layer["splitAccessor"] = split
    return {
        "legend": {"isVisible": True, "position": "right"},
        "valueLabels": "hide",
        "fittingFunction": "None",
        "preferredSeriesType": series,
        "layers": [layer],
    }


ARTICLE_COLUMNS = ("title", "domain", "language", "story_id", "url")
ARTICLES = "newsmon-articles"
ARTICLES_INDEXED = "newsmon-articles-indexed"
STORIES = "newsmon-stories"
EVENTS = "newsmon-events"
FEEDS = "newsmon-feeds"
LEDGER = "newsmon-alert-ledger"
DASHBOARD = "newsmon-overview"


def rule_search_id(rule: AlertRule) -> str:
    return f"{DEFAULT_PREFIX}rule-{rule.id}"


def rule_search(rule: AlertRule) -> dict[str, Any]:
    """The saved search of an alert rule: its query and its filters, on the articles."""
    how = rule.mode + (f", {rule.schedule}" if rule.schedule else "")
    state = "" if rule.enabled else "; disabled"
    return _search(
        rule_search_id(rule),
        f"Alert: {rule.name}",
        f"Articles matching alert rule {rule.id} ({how}{state}), from config/alerts.yaml. "
        "Generated by `newsmon kibana export`; edit the rule, not this search.",
        ARTICLES,
        ARTICLE_COLUMNS,
        [("published_at", "desc")],
        query=rule.search.query,  # as alerts run it: words normalised (newsmon.alerts.query)
        filters=rule.filters.clauses(),
    )


def _base_objects() -> list[dict[str, Any]]:
    link = {f: _LINK for f in ("url", "canonical_url", "page_canonical_url", "final_url")}
    article_formats = {
        **link,
        "word_count": {"id": "number", "params": {"pattern": "0,0"}},
        "similarity": {"id": "percent", "params": {"pattern": "0.[0]%"}},
    }
    views = [
        _data_view(ARTICLES, "newsmon articles", "articles", "published_at", article_formats),
        _data_view(
            ARTICLES_INDEXED,
            "newsmon articles (by indexing time)",
            "articles",
            "indexed_at",
            article_formats,
        ),
        _data_view(STORIES, "newsmon stories", "stories", "last_seen", {"first_url": _LINK}),
        _data_view(EVENTS, "newsmon events", "events", "last_seen", {"first_url": _LINK}),
        _data_view(FEEDS, "newsmon feeds", "feeds", None, {"url": _LINK}),
        _data_view(
            LEDGER,
            "newsmon alert ledger",
            "alert-ledger",
            "decided_at",
            {"url": _LINK, "kibana_url": _LINK},
        ),
    ]
    searches = [
        _search(
            "newsmon-latest-articles",
            "Latest articles",
            "Newest articles first.",
            ARTICLES,
            ARTICLE_COLUMNS,
            [("published_at", "desc")],
        ),
        _search(
            "newsmon-stories-most-outlets",
            "Stories with most outlets",
            "Stories seen in the time range, the most widely published first.",
            STORIES,
            ("title", "outlet_count", "article_count", "first_seen", "first_url"),
            [("outlet_count", "desc"), ("article_count", "desc")],
        ),
        _search(
            "newsmon-feed-errors",
            "Feed errors",
            "Feeds whose last fetch failed, the longest failing first.",
            FEEDS,
            (
                "feed_id",
                "last_outcome",
                "last_status",
                "last_reason",
                "consecutive_failures",
                "failing_since",
                "last_success_at",
                "url",
            ),
            [("consecutive_failures", "desc")],
            query="NOT last_outcome:(fetched OR not_modified)",
        ),
        _search(
            "newsmon-alert-hits",
            "Alert hits",
            "Stories alerted per rule, newest first.",
            LEDGER,
            ("rule_id", "title", "outlet", "status", "also_in", "url"),
            [("decided_at", "desc")],
            query="kind:story",
        ),
        _search(
            "newsmon-biggest-events",
            "Biggest events",
            "Events seen in the time range, those reported by the most outlets first.",
            EVENTS,
            ("title", "outlet_count", "story_count", "outlets", "first_published", "first_url"),
            [("outlet_count", "desc"), ("story_count", "desc")],
        ),
    ]
    charts = [
        _lens(
            "newsmon-lens-articles-by-outlet",
            "Articles over time by outlet",
            "Articles per publication date, the 10 busiest outlets (domains).",
            ARTICLES,
            "lnsXY",
            {
                "outlet": _terms("domain", "Outlet", 10, "count"),
                "when": _date_histogram("published_at"),
                "count": _COUNT,
            },
            _xy("outlet"),
        ),
        _lens(
            "newsmon-lens-top-domains",
            "Top domains",
            "Articles and stories per domain.",
            ARTICLES,
            "lnsDatatable",
            {
                "domain": _terms("domain", "Domain", 20, "count", other=False),
                "count": _COUNT,
                "stories": {
                    "label": "Stories",
                    "customLabel": True,
                    "dataType": "number",
                    "operationType": "unique_count",
                    "sourceField": "story_id",
                    "isBucketed": False,
                    "scale": "ratio",
                    "params": {"emptyAsNull": False},
                },
            },
            {
                "layerId": _LAYER,
                "layerType": "data",
                "columns": [{"columnId": "domain"}, {"columnId": "count"}, {"columnId": "stories"}],
            },
        ),
        _lens(
            "newsmon-lens-languages",
            "Languages",
            "Articles per language.",
            ARTICLES,
            "lnsPie",
            {"language": _terms("language", "Language", 10, "count"), "count": _COUNT},
            {
                "shape": "donut",
                "layers": [
                    {
                        "layerId": _LAYER,
                        "layerType": "data",
                        "primaryGroups": ["language"],
                        "metrics": ["count"],
                        "numberDisplay": "percent",
                        "categoryDisplay": "default",
                        "legendDisplay": "default",
                        "nestedLegend": False,
                    }
                ],
            },
        ),
        _lens(
            "newsmon-lens-alert-hits",
            "Alert hits by rule",
            "Stories alerted per rule.",
            LEDGER,
            "lnsXY",
            {
                "rule": _terms("rule_id", "Rule", 10, "count"),
                "when": _date_histogram("decided_at"),
                "count": {**_COUNT, "label": "Stories"},
            },
            _xy("rule"),
            query="kind:story",
        ),
    ]
    layout = [  # (object, panel type, x, y, w, h)
        (charts[0], 0, 0, 48, 14),
        (charts[1], 0, 14, 16, 15),
        (charts[2], 16, 14, 16, 15),
        (charts[3], 32, 14, 16, 15),
        (searches[1], 0, 29, 24, 15),
        (searches[2], 24, 29, 24, 15),
        (searches[0], 0, 44, 48, 16),
    ]
    panels, refs = [], []
    for n, (target, x, y, w, h) in enumerate(layout, 1):
        index = f"p{n}"
        panels.append(
            {
                "version": PANEL_VERSION,
                "type": target["type"],
                "gridData": {"x": x, "y": y, "w": w, "h": h, "i": index},
                "panelIndex": index,
                "embeddableConfig": {"enhancements": {}},
                "panelRefName": f"panel_{index}",
            }
        )
        refs.append({"name": f"{index}:panel_{index}", "type": target["type"], "id": target["id"]})
    dashboard = _object(
        "dashboard",
        DASHBOARD,
        {
            "title": "newsmon overview",
            "description": "Articles over time by outlet, top domains, languages, alert hits, "
            "the biggest stories and failing feeds.",
            "panelsJSON": compact_json(panels),
            "optionsJSON": compact_json(
                {
                    "useMargins": True,
                    "syncColors": False,
                    "syncCursor": True,
                    "syncTooltips": False,
                    "hidePanelTitles": False,
                }
            ),
            "timeRestore": True,
            "timeFrom": "now-7d",
            "timeTo": "now",
            "refreshInterval": {"pause": True, "value": 60000},
            "kibanaSavedObjectMeta": {
                "searchSourceJSON": compact_json(
                    {"query": {"query": "", "language": "lucene"}, "filter": []}
                )
            },
        },
        refs,
    )
    return [*views, *searches, *charts, dashboard]


def build_objects(rule_set: RuleSet) -> dict[str, list[dict[str, Any]]]:
    """Every saved object newsmon ships, by file name under ``config/kibana``."""
    return {BASE_FILE: _base_objects(), ALERTS_FILE: [rule_search(r) for r in rule_set.rules]}


def export_files(rule_set: RuleSet) -> dict[str, str]:
    """The text of each ``config/kibana`` file, as :func:`build_objects` makes it."""
    return {name: render_ndjson(objs) for name, objs in build_objects(rule_set).items()}
