"""Checking saved objects before they are sent: structure, references, fields and their types.

Every field an object uses must exist in the index template behind its data view
(``config/elasticsearch/<name>.template.json``) with a type that supports the use.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import ConfigError
from ..store import load_template, template_names
from .objects import DEFAULT_PREFIX, RECORDS, SUPPORTED_TYPES, SavedObject

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
