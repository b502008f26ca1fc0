"""Kibana saved objects: data views, saved searches, Lens charts and a dashboard (docs/kibana.md).

The objects are generated here (:func:`build_objects`; ``newsmon kibana export`` writes them to
``config/kibana/*.ndjson``, one saved search per alert rule) and imported from those files with
Kibana's saved-objects import API, ``overwrite=true``: every object has a fixed id, so importing
again replaces the objects instead of adding copies. Before anything is sent, :func:`check_objects`
checks that every reference resolves and every field an object uses exists in the index template
of its data view with a type that supports the use.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from ..alerts.core import AlertRule, RuleSet
from ..config import ConfigError, _EnvReader, read_config_file
from ..store import load_template, template_names

__all__ = [
    "DEFAULT_PREFIX",
    "FieldInfo",
    "ImportReport",
    "KibanaError",
    "KibanaSettings",
    "SavedObject",
    "build_objects",
    "check_objects",
    "export_files",
    "import_objects",
    "index_fields",
    "kibana_dir",
    "load_objects",
    "query_fields",
    "render_ndjson",
    "search_query",
    "wait_until_available",
    "with_prefix",
]

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "newsmon-"  # the index prefix the committed objects are written for
BASE_FILE = "newsmon.ndjson"  # data views, searches, charts and the dashboard
ALERTS_FILE = "alerts.ndjson"  # one saved search per alert rule
SUPPORTED_TYPES = ("index-pattern", "search", "lens", "dashboard")
# The model each attribute layout was written for; Kibana migrates newer on import.
MIGRATION_VERSIONS = {
    "index-pattern": "8.0.0",
    "search": "8.0.0",
    "lens": "8.9.0",
    "dashboard": "8.9.0",
}
PANEL_VERSION = "8.9.0"
RECORDS = "___records___"  # Lens' pseudo field of a document count
AGGREGATABLE = frozenset(
    {
        "keyword",
        "constant_keyword",
        "boolean",
        "date",
        "date_nanos",
        "ip",
        "long",
        "integer",
        "short",
        "byte",
        "double",
        "float",
        "half_float",
        "scaled_float",
        "unsigned_long",
    }
)
NUMERIC = frozenset(
    {"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float"}
)
READY_LEVELS = ("available", "degraded")  # degraded: some plugin is, saved objects still work
RETRY_STATUSES = (502, 503, 504)  # Kibana (or its proxy) not ready yet


class KibanaError(RuntimeError):
    """Kibana cannot be reached, refused the request, or refused some objects."""


# --- index templates: which fields a data view has ----------------------------------------------


@dataclass(frozen=True)
class FieldInfo:
    type: str
    searchable: bool
    aggregatable: bool


def index_fields(template: Mapping[str, Any]) -> dict[str, FieldInfo]:
    """Every field of an index template's mappings (``a.b`` for objects and multi-fields)."""
    found: dict[str, FieldInfo] = {}

    def walk(properties: Mapping[str, Any], path: str) -> None:
        for name, spec in properties.items():
            full = f"{path}{name}"
            kind = str(spec.get("type", "object"))
            if "properties" in spec:
                walk(spec["properties"], f"{full}.")
            if kind in ("object", "nested"):
                continue
            indexed = spec.get("index", True) is not False
            doc_values = spec.get("doc_values", kind != "text") is not False
            found[full] = FieldInfo(
                type=kind,
                searchable=indexed or (doc_values and kind in AGGREGATABLE),
                aggregatable=kind in AGGREGATABLE and doc_values,
            )
            walk(spec.get("fields", {}), f"{full}.")

    walk(template.get("template", {}).get("mappings", {}).get("properties", {}), "")
    return found


def _templates(config_dir: str | Path) -> dict[str, dict[str, FieldInfo]]:
    return {
        name: index_fields(load_template(config_dir, name)) for name in template_names(config_dir)
    }


# --- saved objects: load, check, prefix ---------------------------------------------------------


@dataclass(frozen=True)
class SavedObject:
    """One line of an ndjson file, and where it was read."""

    body: dict[str, Any]
    source: str = "<objects>"
    line: int | None = None

    @property
    def type(self) -> str:
        return str(self.body.get("type"))

    @property
    def id(self) -> str:
        return str(self.body.get("id"))

    @property
    def attributes(self) -> dict[str, Any]:
        value = self.body.get("attributes")
        return value if isinstance(value, dict) else {}

    @property
    def references(self) -> list[dict[str, Any]]:
        value = self.body.get("references")
        return [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []

    @property
    def label(self) -> str:
        return f"{self.type} {self.id!r}"

    def error(self, message: str, where: str | None = None) -> ConfigError:
        field_ = f"{self.label}" + (f" {where}" if where else "")
        return ConfigError(message, file=self.source, line=self.line, field=field_)


def kibana_dir(config_dir: str | Path) -> Path:
    return Path(config_dir) / "kibana"


def parse_ndjson(text: str, source: str = "<objects>") -> list[SavedObject]:
    """The objects of one ndjson text; a line that is not a JSON object is a ConfigError."""
    objects = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            body = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"invalid JSON: {exc.msg} (column {exc.colno})", file=source, line=number
            ) from None
        if not isinstance(body, dict):
            raise ConfigError("each line must be one JSON object", file=source, line=number)
        objects.append(SavedObject(body, source, number))
    return objects


def load_objects(paths: Iterable[str | Path]) -> list[SavedObject]:
    """The saved objects of the given ndjson files, in order."""
    objects: list[SavedObject] = []
    for path in paths:
        objects += parse_ndjson(read_config_file(path, "saved objects file"), os.fspath(path))
    return objects


def object_files(config_dir: str | Path) -> list[Path]:
    files = sorted(kibana_dir(config_dir).glob("*.ndjson"))
    if not files:
        raise ConfigError("no *.ndjson saved objects", file=str(kibana_dir(config_dir)))
    return files


def _json_attribute(obj: SavedObject, path: Sequence[str], problems: list[ConfigError]) -> Any:
    """A JSON-encoded string attribute (``searchSourceJSON``, ``panelsJSON``…), decoded."""
    value: Any = obj.attributes
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    where = "attributes." + ".".join(path)
    if value is None:
        return None
    if not isinstance(value, str):
        problems.append(obj.error("must be a JSON-encoded string", where))
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        problems.append(obj.error(f"invalid JSON: {exc.msg} (column {exc.colno})", where))
        return None


_QUOTED = re.compile(r'"(?:\\.|[^"\\])*"')
_ESCAPED = re.compile(r"\\.")
_FIELD = re.compile(r"(?:^|(?<=[\s(!+\-]))([A-Za-z_@][\w.@*]*)\s*(?::|[<>]=?)")
_EXISTS = re.compile(r"_exists_\s*:\s*([\w.@*]+)")


def query_fields(query: str) -> set[str]:
    """The fields a Lucene or KQL query names (``field:value``, ``field > 3``, ``_exists_``)."""
    plain = _ESCAPED.sub(" ", query)
    plain = _QUOTED.sub(" ", plain)
    fields = {m.group(1) for m in _FIELD.finditer(plain)} - {"_exists_"}
    fields |= {m.group(1) for m in _EXISTS.finditer(plain)}
    return {f for f in fields if f not in ("_id", "_index")}


class _Checker:
    """Collects every problem of a set of objects (not only the first)."""

    def __init__(
        self,
        objects: Sequence[SavedObject],
        templates: Mapping[str, Mapping[str, FieldInfo]],
        prefix: str,
    ) -> None:
        self.objects = objects
        self.templates = templates
        self.prefix = prefix
        self.problems: list[ConfigError] = []
        self.by_key = {(o.type, o.id): o for o in objects}

    def run(self) -> list[ConfigError]:
        seen: Counter[tuple[str, str]] = Counter()
        for obj in self.objects:
            seen[(obj.type, obj.id)] += 1
            if seen[(obj.type, obj.id)] == 2:
                self.problems.append(obj.error("the same type and id appear twice"))
            if self._structure(obj):
                self._references(obj)
                check = getattr(self, "_check_" + obj.type.replace("-", "_"))
                check(obj)
        return self.problems

    def _structure(self, obj: SavedObject) -> bool:
        body = obj.body
        ok = True
        if not isinstance(body.get("id"), str) or not body["id"]:
            self.problems.append(obj.error("needs a non-empty string id"))
            ok = False
        if body.get("type") not in SUPPORTED_TYPES:
            self.problems.append(
                obj.error(f"type must be one of {', '.join(SUPPORTED_TYPES)}", "type")
            )
            ok = False
        if not isinstance(body.get("attributes"), dict):
            self.problems.append(obj.error("needs an attributes object", "attributes"))
            return False
        if not isinstance(obj.attributes.get("title"), str) or not obj.attributes["title"]:
            self.problems.append(obj.error("needs a title", "attributes.title"))
        refs = body.get("references", [])
        if not isinstance(refs, list):
            self.problems.append(obj.error("must be a list", "references"))
            return False
        names: Counter[str] = Counter()
        for i, ref in enumerate(refs):
            if not isinstance(ref, dict) or not all(
                isinstance(ref.get(k), str) and ref.get(k) for k in ("name", "type", "id")
            ):
                self.problems.append(
                    obj.error("needs non-empty strings name, type and id", f"references[{i}]")
                )
                ok = False
                continue
            names[ref["name"]] += 1
            if names[ref["name"]] == 2:
                self.problems.append(
                    obj.error(f"reference name {ref['name']!r} is used twice", f"references[{i}]")
                )
        return ok

    def _references(self, obj: SavedObject) -> None:
        for i, ref in enumerate(obj.references):
            if (ref["type"], ref["id"]) not in self.by_key:
                others = [t for (t, i_) in self.by_key if i_ == ref["id"]]
                hint = f" (there is a {others[0]} with that id)" if others else ""
                self.problems.append(
                    obj.error(
                        f"reference {ref['name']!r} points to {ref['type']} {ref['id']!r}, "
                        f"which is not among the saved objects{hint}",
                        f"references[{i}]",
                    )
                )

    def _ref(self, obj: SavedObject, name: str, kind: str, where: str) -> SavedObject | None:
        """The object behind the reference ``name``, which must exist and be a ``kind``."""
        for ref in obj.references:
            if ref["name"] == name:
                if ref["type"] != kind:
                    self.problems.append(
                        obj.error(f"reference {name!r} must be a {kind}, not {ref['type']}", where)
                    )
                    return None
                return self.by_key.get((kind, ref["id"]))
        self.problems.append(obj.error(f"no reference named {name!r}", where))
        return None

    # --- fields

    def _fields_of(self, view: SavedObject) -> tuple[str, Mapping[str, FieldInfo]] | None:
        """The index template behind a data view's index pattern."""
        pattern = str(view.attributes.get("title", ""))
        if "," in pattern or not pattern.startswith(self.prefix):
            return None
        name = pattern.removeprefix(self.prefix).removesuffix("*").removesuffix("-")
        fields = self.templates.get(name)
        return (name, fields) if fields is not None else None

    def _field(
        self,
        obj: SavedObject,
        view: SavedObject | None,
        name: str,
        where: str,
        *,
        use: str = "show",  # show | query | aggregate | date | number
    ) -> None:
        if view is None:
            return
        known = self._fields_of(view)
        if known is None:
            return  # reported on the data view itself
        template, fields = known
        matches = [f for n, f in fields.items() if fnmatch.fnmatchcase(n, name)]
        if not matches:
            self.problems.append(
                obj.error(
                    f"field {name!r} is not in index template {template!r} (data view {view.id!r})",
                    where,
                )
            )
            return
        info = matches[0]
        reason = None
        if use == "query" and not any(f.searchable for f in matches):
            reason = "is not indexed, so it cannot be searched"
        elif use in ("aggregate", "date", "number") and not info.aggregatable:
            reason = (
                f"is a {info.type} field without doc values, so it cannot be aggregated or sorted"
            )
        elif use == "date" and info.type not in ("date", "date_nanos"):
            reason = f"is a {info.type} field, not a date"
        elif use == "number" and info.type not in NUMERIC:
            reason = f"is a {info.type} field, not a number"
        if reason:
            self.problems.append(obj.error(f"field {name!r} {reason}", where))

    def _query(self, obj: SavedObject, view: SavedObject | None, query: Any, where: str) -> None:
        if query is None:
            return
        if not isinstance(query, dict) or not isinstance(query.get("query", ""), str):
            self.problems.append(obj.error("must be {query, language}", where))
            return
        if query.get("language", "kuery") not in ("kuery", "lucene"):
            self.problems.append(obj.error("language must be kuery or lucene", where))
        for name in sorted(query_fields(query.get("query", ""))):
            self._field(obj, view, name, where, use="query")

    def _filters(
        self, obj: SavedObject, view: SavedObject | None, filters: Any, where: str, base: str
    ) -> None:
        if filters is None:
            return
        if not isinstance(filters, list):
            self.problems.append(obj.error("must be a list", where))
            return
        for i, item in enumerate(filters):
            meta = item.get("meta") if isinstance(item, dict) else None
            if not isinstance(meta, dict):
                self.problems.append(obj.error("needs meta", f"{where}[{i}]"))
                continue
            target = view
            if "indexRefName" in meta:
                target = self._ref(obj, str(meta["indexRefName"]), "index-pattern", f"{where}[{i}]")
            elif meta.get("index"):
                target = self.by_key.get(("index-pattern", str(meta["index"])))
            if meta.get("key"):
                self._field(obj, target, str(meta["key"]), f"{where}[{i}].meta.key", use="query")
            for name in _query_dsl_fields(item.get("query", {})):
                self._field(obj, target, name, f"{where}[{i}].query", use="query")
            if "indexRefName" in meta and not str(meta["indexRefName"]).startswith(base):
                self.problems.append(
                    obj.error(f"indexRefName should start with {base!r}", f"{where}[{i}]")
                )

    # --- per type

    def _check_index_pattern(self, obj: SavedObject) -> None:
        attrs = obj.attributes
        if self._fields_of(obj) is None:
            self.problems.append(
                obj.error(
                    f"index pattern {attrs.get('title')!r} is not {self.prefix}<name> of an index "
                    "template in config/elasticsearch",
                    "attributes.title",
                )
            )
            return
        if attrs.get("timeFieldName"):
            self._field(
                obj, obj, str(attrs["timeFieldName"]), "attributes.timeFieldName", use="date"
            )
        formats = _json_attribute(obj, ["fieldFormatMap"], self.problems)
        if isinstance(formats, dict):
            for name, fmt in formats.items():
                where = f"attributes.fieldFormatMap.{name}"
                self._field(obj, obj, name, where)
                if not isinstance(fmt, dict) or not isinstance(fmt.get("id"), str):
                    self.problems.append(obj.error("needs a format id", where))
        for key in ("fieldAttrs", "runtimeFieldMap", "sourceFilters"):
            _json_attribute(obj, [key], self.problems)

    def _check_search(self, obj: SavedObject) -> None:
        attrs = obj.attributes
        source = _json_attribute(obj, ["kibanaSavedObjectMeta", "searchSourceJSON"], self.problems)
        if not isinstance(source, dict):
            self.problems.append(
                obj.error("needs a search source", "attributes.kibanaSavedObjectMeta")
            )
            return
        view = None
        if "indexRefName" not in source:
            self.problems.append(obj.error("names no data view", "searchSourceJSON.indexRefName"))
        else:
            ref = str(source["indexRefName"])
            view = self._ref(obj, ref, "index-pattern", "searchSourceJSON.indexRefName")
        self._query(obj, view, source.get("query"), "searchSourceJSON.query")
        base = "kibanaSavedObjectMeta.searchSourceJSON.filter"
        self._filters(obj, view, source.get("filter"), "searchSourceJSON.filter", base)
        columns = attrs.get("columns", [])
        for i, column in enumerate(columns if isinstance(columns, list) else []):
            self._field(obj, view, str(column), f"attributes.columns[{i}]")
        sort = attrs.get("sort", [])
        for i, pair in enumerate(sort if isinstance(sort, list) else []):
            if not (isinstance(pair, list) and len(pair) == 2 and pair[1] in ("asc", "desc")):
                self.problems.append(
                    obj.error("must be [field, asc|desc]", f"attributes.sort[{i}]")
                )
                continue
            self._field(obj, view, str(pair[0]), f"attributes.sort[{i}]", use="aggregate")

    def _check_lens(self, obj: SavedObject) -> None:
        state = obj.attributes.get("state")
        if not isinstance(state, dict):
            self.problems.append(obj.error("needs a state", "attributes.state"))
            return
        layers = state.get("datasourceStates", {}).get("formBased", {}).get("layers")
        if not isinstance(layers, dict) or not layers:
            self.problems.append(
                obj.error("needs form-based layers", "attributes.state.datasourceStates")
            )
            return
        column_ids: set[str] = set()
        views: list[SavedObject] = []
        for layer_id, layer in layers.items():
            where = f"state.datasourceStates.formBased.layers.{layer_id}"
            view = self._ref(
                obj, f"indexpattern-datasource-layer-{layer_id}", "index-pattern", where
            )
            if view is not None:
                views.append(view)
            columns = layer.get("columns", {}) if isinstance(layer, dict) else {}
            order = layer.get("columnOrder", []) if isinstance(layer, dict) else []
            if sorted(order) != sorted(columns):
                self.problems.append(
                    obj.error("columnOrder must list each column once", f"{where}.columnOrder")
                )
            for column_id, column in columns.items():
                column_ids.add(column_id)
                self._lens_column(obj, view, column, f"{where}.columns.{column_id}")
        view = views[0] if views else None
        self._query(obj, view, state.get("query"), "state.query")
        self._filters(obj, view, state.get("filters"), "state.filters", "filter-index-pattern")
        for accessor in _accessors(state.get("visualization", {})):
            if accessor not in column_ids:
                self.problems.append(
                    obj.error(
                        f"the chart uses column {accessor!r}, which no layer has",
                        "state.visualization",
                    )
                )

    def _lens_column(
        self, obj: SavedObject, view: SavedObject | None, column: Any, where: str
    ) -> None:
        if not isinstance(column, dict):
            self.problems.append(obj.error("must be an object", where))
            return
        operation = column.get("operationType")
        source = column.get("sourceField")
        uses = {
            "date_histogram": "date",
            "terms": "aggregate",
            "unique_count": "aggregate",
            "last_value": "aggregate",
            "min": "aggregate",
            "max": "aggregate",
            "sum": "number",
            "average": "number",
            "median": "number",
            "percentile": "number",
            "standard_deviation": "number",
        }
        if operation == "count":
            if source not in (None, RECORDS):
                self._field(obj, view, str(source), f"{where}.sourceField", use="show")
        elif operation in uses:
            if not isinstance(source, str):
                self.problems.append(obj.error("needs a sourceField", where))
            else:
                self._field(obj, view, source, f"{where}.sourceField", use=uses[operation])
        else:
            self.problems.append(
                obj.error(f"operation {operation!r} is not one newsmon checks", where)
            )
        if isinstance(column.get("filter"), dict):
            self._query(obj, view, column["filter"], f"{where}.filter")

    def _check_dashboard(self, obj: SavedObject) -> None:
        panels = _json_attribute(obj, ["panelsJSON"], self.problems)
        _json_attribute(obj, ["optionsJSON"], self.problems)
        source = _json_attribute(obj, ["kibanaSavedObjectMeta", "searchSourceJSON"], self.problems)
        if isinstance(source, dict):
            self._query(obj, None, source.get("query"), "searchSourceJSON.query")
        if not isinstance(panels, list) or not panels:
            self.problems.append(obj.error("needs a list of panels", "attributes.panelsJSON"))
            return
        seen: set[str] = set()
        for i, panel in enumerate(panels):
            where = f"panelsJSON[{i}]"
            if not isinstance(panel, dict):
                self.problems.append(obj.error("must be an object", where))
                continue
            index = str(panel.get("panelIndex", ""))
            grid = panel.get("gridData", {})
            if not index or index in seen:
                self.problems.append(obj.error("needs a unique panelIndex", where))
            seen.add(index)
            if (
                not isinstance(grid, dict)
                or grid.get("i") != index
                or not all(
                    isinstance(grid.get(k), int) and grid[k] >= 0 for k in ("x", "y", "w", "h")
                )
            ):
                self.problems.append(obj.error("gridData needs x, y, w, h and i=panelIndex", where))
            elif grid["x"] + grid["w"] > 48:
                self.problems.append(obj.error("the panel is wider than the 48-column grid", where))
            if "panelRefName" in panel:
                name = f"{index}:{panel['panelRefName']}"
                self._ref(obj, name, str(panel.get("type")), where)


def _accessors(visualization: Any) -> Iterator[str]:
    """The column ids a Lens visualization state uses."""
    if isinstance(visualization, dict):
        for key, value in visualization.items():
            if key in ("accessors", "primaryGroups", "secondaryGroups", "metrics"):
                yield from (v for v in value if isinstance(v, str))
            elif key in ("xAccessor", "splitAccessor", "metricAccessor", "columnId"):
                if isinstance(value, str):
                    yield value
            else:
                yield from _accessors(value)
    elif isinstance(visualization, list):
        for item in visualization:
            yield from _accessors(item)


def _query_dsl_fields(query: Any) -> Iterator[str]:
    """Field names of a query DSL clause (``match_phrase``, ``terms``, ``range``, ``exists``…)."""
    if isinstance(query, dict):
        for key, value in query.items():
            if key in ("match_phrase", "match", "term", "terms", "range", "prefix", "wildcard"):
                if isinstance(value, dict):
                    yield from value
            elif key == "exists" and isinstance(value, dict) and "field" in value:
                yield str(value["field"])
            else:
                yield from _query_dsl_fields(value)
    elif isinstance(query, list):
        for item in query:
            yield from _query_dsl_fields(item)


def check_objects(
    objects: Sequence[SavedObject],
    config_dir: str | Path,
    prefix: str = DEFAULT_PREFIX,
) -> list[ConfigError]:
    """Every problem of the objects: structure, references, fields and their types."""
    return _Checker(objects, _templates(config_dir), prefix).run()


def _rename(value: str, prefix: str) -> str:
    return (
        prefix + value.removeprefix(DEFAULT_PREFIX) if value.startswith(DEFAULT_PREFIX) else value
    )


def with_prefix(objects: Sequence[SavedObject], prefix: str) -> list[SavedObject]:
    """The objects for indices named ``<prefix>…``: index patterns and ids renamed, titles marked.

    Renaming the ids too lets several prefixes live side by side in one Kibana space.
    """
    if prefix == DEFAULT_PREFIX:
        return list(objects)
    renamed = []
    for obj in objects:
        body = json.loads(json.dumps(obj.body))
        body["id"] = _rename(obj.id, prefix)
        for ref in body.get("references", []):
            ref["id"] = _rename(str(ref.get("id")), prefix)
        attrs = body["attributes"]
        if obj.type == "index-pattern":
            attrs["title"] = ",".join(_rename(p, prefix) for p in attrs["title"].split(","))
            if attrs.get("name"):
                attrs["name"] = f"{attrs['name']} ({prefix})"
        else:
            attrs["title"] = f"{attrs['title']} ({prefix})"
        renamed.append(SavedObject(body, obj.source, obj.line))
    return renamed


# --- the objects --------------------------------------------------------------------------------


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


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
        "fieldFormatMap": _compact(dict(formats)),
        "fieldAttrs": "{}",
        "runtimeFieldMap": "{}",
        "sourceFilters": _compact([{"value": "lsh_bands"}, {"value": "url_keys"}])
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
        "kibanaSavedObjectMeta": {"searchSourceJSON": _compact(source)},
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
        query=rule.query,
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
            "panelsJSON": _compact(panels),
            "optionsJSON": _compact(
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
                "searchSourceJSON": _compact(
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


def render_ndjson(objects: Iterable[Mapping[str, Any]]) -> str:
    return "".join(_compact(obj) + "\n" for obj in objects)


def export_files(rule_set: RuleSet) -> dict[str, str]:
    """The text of each ``config/kibana`` file, as :func:`build_objects` makes it."""
    return {name: render_ndjson(objs) for name, objs in build_objects(rule_set).items()}


def search_query(obj: SavedObject) -> dict[str, Any]:
    """The Elasticsearch query Discover runs for a saved search (Lucene), time range aside."""
    source = json.loads(obj.attributes["kibanaSavedObjectMeta"]["searchSourceJSON"])
    query = source.get("query", {})
    if query.get("language") != "lucene":
        raise ValueError(f"{obj.label}: only Lucene queries can be translated here")
    must: list[dict[str, Any]] = []
    if query.get("query", "").strip():
        must.append({"query_string": {"query": query["query"], "analyze_wildcard": True}})
    filters = [f["query"] for f in source.get("filter", []) if not f["meta"].get("disabled")]
    return {"bool": {"must": must or [{"match_all": {}}], "filter": filters}}


# --- import -------------------------------------------------------------------------------------

_SPACE = re.compile(r"^[a-z0-9_-]{1,100}$")


@dataclass(frozen=True)
class KibanaSettings:
    """Where Kibana is and how to log in (``NEWSMON_KIBANA_*``)."""

    url: str = "http://127.0.0.1:5601"
    username: str | None = None
    password: str | None = None
    api_key: str | None = None
    space: str = "default"
    wait: float = 300.0  # seconds to wait for Kibana to become available
    request_timeout: float = 60.0
    poll_interval: float = 2.0

    def __post_init__(self) -> None:
        def bad(message: str, name: str) -> ConfigError:
            return ConfigError(message, file="command line or environment", field=name)

        if not self.url.startswith(("http://", "https://")):
            raise bad(f"must be an http(s) URL (got {self.url!r})", "NEWSMON_KIBANA_URL / --url")
        if (self.username is None) != (self.password is None):
            raise bad("a username needs a password and a password a username", "--username")
        if self.api_key and self.username:
            raise bad("use either a username and password or an API key", "--api-key")
        if not _SPACE.match(self.space):
            raise bad(
                f"a space id is lower-case letters, digits, _ and - (got {self.space!r})",
                "NEWSMON_KIBANA_SPACE / --space",
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> KibanaSettings:
        env = os.environ if environ is None else environ
        reader = _EnvReader(env)
        values: dict[str, Any] = {
            "url": reader.text("NEWSMON_KIBANA_URL", cls.url).rstrip("/"),
            "username": env.get("NEWSMON_KIBANA_USERNAME") or None,
            "password": env.get("NEWSMON_KIBANA_PASSWORD") or None,
            "api_key": env.get("NEWSMON_KIBANA_API_KEY") or None,
            "space": reader.text("NEWSMON_KIBANA_SPACE", cls.space),
            "wait": reader.number("NEWSMON_KIBANA_WAIT", cls.wait, minimum=0),
        }
        given = {k: v for k, v in overrides.items() if v is not None}
        if "username" in given or "api_key" in given:  # the command line replaces all auth
            values.update(username=None, password=None, api_key=None)
        values.update(given)
        values["url"] = str(values["url"]).rstrip("/")
        return cls(**values)

    def api(self, path: str) -> str:
        space = "" if self.space == "default" else f"/s/{self.space}"
        return f"{self.url}{space}{path}"


@dataclass
class ImportReport:
    imported: Counter[str] = field(default_factory=Counter)  # by type
    errors: list[str] = field(default_factory=list)
    # objects Kibana stored under another id: they exist with our id in another space
    new_ids: list[str] = field(default_factory=list)

    def render(self, settings: KibanaSettings) -> str:
        kinds = ", ".join(f"{n} {t}" for t, n in sorted(self.imported.items()))
        total = sum(self.imported.values())
        head = f"imported {total} saved object(s) into {settings.url} (space {settings.space})"
        return head + (f": {kinds}" if kinds else "")


def _session(settings: KibanaSettings) -> requests.Session:
    session = requests.Session()
    session.headers["kbn-xsrf"] = "newsmon"
    if settings.api_key:
        session.headers["Authorization"] = f"ApiKey {settings.api_key}"
    elif settings.username is not None and settings.password is not None:
        session.auth = (settings.username, settings.password)
    return session


def _denied(settings: KibanaSettings, response: requests.Response) -> KibanaError:
    how = "API key" if settings.api_key else "username and password" if settings.username else None
    hint = f"check the {how}" if how else "give --username/--password or --api-key"
    return KibanaError(
        f"Kibana at {settings.url} refused the request ({response.status_code} "
        f"{_message(response)}): {hint}"
    )


def _message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300].strip() or response.reason
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body)[:300]
    return str(body)[:300]


def wait_until_available(
    settings: KibanaSettings,
    *,
    session: requests.Session | None = None,
    progress: Callable[[str], None] = lambda m: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Poll ``GET /api/status`` until Kibana says it is available; return its version.

    Raises :class:`KibanaError` when it is not within ``settings.wait`` seconds, or refuses
    the credentials.
    """
    session = session or _session(settings)
    started = clock()
    last_said = ""
    said_at = -1e9
    while True:
        try:
            response = session.get(
                f"{settings.url}/api/status", timeout=min(settings.request_timeout, 10)
            )
        except requests.RequestException as exc:
            state = f"not reachable ({type(exc).__name__})"
        else:
            if response.status_code in (401, 403):
                raise _denied(settings, response)
            level, version = _status(response)
            if response.status_code == 200 and level in READY_LEVELS:
                if level != "available":
                    progress(f"Kibana at {settings.url} is {level}; importing anyway")
                return version
            state = f"{level or 'not ready'} (HTTP {response.status_code})"
        waited = clock() - started
        if waited >= settings.wait:
            raise KibanaError(
                f"Kibana at {settings.url} is not available after {waited:.0f}s: {state}"
            )
        if state != last_said or waited - said_at >= 15:
            progress(
                f"waiting for Kibana at {settings.url}: {state}, {waited:.0f}s "
                f"of {settings.wait:.0f}s"
            )
            last_said, said_at = state, waited
        sleep(settings.poll_interval)


def _status(response: requests.Response) -> tuple[str | None, str]:
    try:
        body = response.json()
    except ValueError:
        return None, ""
    if not isinstance(body, dict):
        return None, ""
    overall = (
        body.get("status", {}).get("overall", {}) if isinstance(body.get("status"), dict) else {}
    )
    version = (
        body.get("version", {}).get("number", "") if isinstance(body.get("version"), dict) else ""
    )
    level = overall.get("level") if isinstance(overall, dict) else None
    return (str(level) if level else None), str(version)


def _describe_error(item: Mapping[str, Any]) -> str:
    kind, ident = item.get("type", "?"), item.get("id", "?")
    title = item.get("title") or item.get("meta", {}).get("title")
    error = item.get("error", {}) if isinstance(item.get("error"), dict) else {}
    reason = str(error.get("type", "unknown"))
    if error.get("references"):
        missing = ", ".join(f"{r.get('type')} {r.get('id')!r}" for r in error["references"])
        reason += f": missing {missing}"
    if error.get("message"):
        reason += f": {error['message']}"
    named = f" ({title})" if title else ""
    return f"{kind} {ident!r}{named}: {reason}"


def import_objects(
    settings: KibanaSettings,
    objects: Sequence[SavedObject],
    *,
    session: requests.Session | None = None,
    progress: Callable[[str], None] = lambda m: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ImportReport:
    """Import ``objects`` with ``overwrite=true`` (one request), retrying while Kibana answers
    502/503/504 or cannot be reached, up to ``settings.wait`` seconds.

    Kibana answers 200 even when it refused some objects: the report lists each refusal, naming
    the object; the others are imported. Raises :class:`KibanaError` when Kibana stays
    unavailable, refuses the credentials or the whole request.
    """
    session = session or _session(settings)
    payload = render_ndjson(obj.body for obj in objects).encode("utf-8")
    url = settings.api("/api/saved_objects/_import")
    started = clock()
    while True:
        try:
            response = session.post(
                url,
                params={"overwrite": "true"},
                files={"file": ("newsmon.ndjson", payload, "application/ndjson")},
                timeout=settings.request_timeout,
            )
        except requests.RequestException as exc:
            state = f"not reachable ({type(exc).__name__}: {exc})"
        else:
            if response.status_code in (401, 403):
                raise _denied(settings, response)
            if response.status_code not in RETRY_STATUSES:
                break
            state = f"HTTP {response.status_code} {_message(response)}"
        waited = clock() - started
        if waited >= settings.wait:
            raise KibanaError(f"cannot import into Kibana at {url} after {waited:.0f}s: {state}")
        progress(f"import: Kibana {state}; trying again")
        sleep(settings.poll_interval)
    if response.status_code != 200:
        raise KibanaError(
            f"Kibana refused the import ({response.status_code}): {_message(response)}"
        )
    try:
        body = response.json()
    except ValueError:
        raise KibanaError(
            f"Kibana answered the import with non-JSON: {response.text[:200]!r}"
        ) from None
    report = ImportReport()
    for item in body.get("successResults", []) or []:
        report.imported[str(item.get("type"))] += 1
        if item.get("destinationId") and item["destinationId"] != item.get("id"):
            report.new_ids.append(
                f"{item.get('type')} {item.get('id')!r} is {item['destinationId']!r} in this space"
            )
    for item in body.get("errors", []) or []:
        report.errors.append(_describe_error(item))
    if not body.get("success", False) and not report.errors:
        report.errors.append(f"the import did not succeed: {str(body)[:300]}")
    return report
