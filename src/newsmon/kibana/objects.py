"""Saved objects as newsmon reads and writes them: the ndjson files, and the index prefix.

A :class:`SavedObject` is one line of a ``config/kibana/*.ndjson`` file in Kibana's export
format; :func:`with_prefix` rewrites the committed objects (written for ``newsmon-``) for
another ``NEWSMON_INDEX_PREFIX``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import ConfigError, read_config_file

DEFAULT_PREFIX = "newsmon-"  # the index prefix the committed objects are written for
BASE_FILE = "newsmon.ndjson"  # data views, searches, charts and the dashboard
ALERTS_FILE = "alerts.ndjson"  # one saved search per alert rule
SUPPORTED_TYPES = ("index-pattern", "search", "lens", "dashboard")
RECORDS = "___records___"  # Lens' pseudo field of a document count


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


def compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def render_ndjson(objects: Iterable[Mapping[str, Any]]) -> str:
    return "".join(compact_json(obj) + "\n" for obj in objects)


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
