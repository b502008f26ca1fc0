"""Index templates, indices and write aliases: ``newsmon es init``, and what runs check first."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elasticsearch.exceptions import BadRequestError

from ..config import ConfigError
from .client import ROLLED, Client, IndexNames

__all__ = ["InitReport", "ensure_indices", "indices_ready", "load_template", "template_names"]

log = logging.getLogger(__name__)


def load_template(config_dir: str | Path, name: str) -> dict[str, Any]:
    path = Path(config_dir) / "elasticsearch" / f"{name}.template.json"
    try:
        body: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read index template: {exc.strerror}", file=str(path)) from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"invalid JSON: {exc.msg}", file=str(path), line=exc.lineno) from exc
    for key in ("version", "template"):
        if key not in body:
            raise ConfigError("missing key", file=str(path), field=key)
    return body


@dataclass(frozen=True)
class InitReport:
    templates: dict[str, int]  # name -> version now installed
    created: tuple[str, ...]  # indices created by this call


def template_names(config_dir: str | Path) -> list[str]:
    """The index templates in ``config_dir/elasticsearch``, articles first."""
    found = sorted(
        p.name.removesuffix(".template.json")
        for p in (Path(config_dir) / "elasticsearch").glob("*.template.json")
    )
    if "articles" not in found:
        raise ConfigError("no articles.template.json", file=str(Path(config_dir) / "elasticsearch"))
    return sorted(found, key=lambda n: n != "articles")


def ensure_indices(client: Client, names: IndexNames, config_dir: str | Path) -> InitReport:
    """Install every index template and create the indices and write aliases. Idempotent."""
    versions: dict[str, int] = {}
    created: list[str] = []
    templates = template_names(config_dir)
    for name in templates:
        body = load_template(config_dir, name)
        client.indices.put_index_template(
            name=names.template(name),
            index_patterns=[names.pattern(name)],
            template=body["template"],
            version=body["version"],
            priority=body.get("priority", 200),
            meta=body.get("_meta"),
        )
        versions[name] = int(body["version"])
    for name in templates:
        target = names.index(name)
        if name in ROLLED:
            exists = client.indices.exists_alias(name=target)
            first = f"{target}-000001"
            if not exists and _create(client, first, aliases={target: {"is_write_index": True}}):
                created.append(first)
        elif not client.indices.exists(index=target) and _create(client, target):
            created.append(target)
        _add_new_fields(client, target, load_template(config_dir, name))
    client.cluster.health(
        index=",".join(names.index(n) for n in templates), wait_for_status="yellow", timeout="30s"
    )
    return InitReport(templates=versions, created=tuple(created))


def _add_new_fields(client: Client, target: str, template: Mapping[str, Any]) -> None:
    """Add fields a newer template defines to indices created from an older one (existing
    fields keep their mapping; changing those needs a new index, see docs/upgrading.md)."""
    wanted = template["template"].get("mappings", {}).get("properties", {})
    current = client.indices.get_mapping(index=target)
    for index, body in current.items():
        missing = _missing_fields(wanted, body.get("mappings", {}).get("properties", {}))
        if missing:
            client.indices.put_mapping(index=index, properties=missing)
            log.info("added fields %s to %s", ", ".join(sorted(missing)), index)


def _missing_fields(wanted: Mapping[str, Any], have: Mapping[str, Any]) -> dict[str, Any]:
    """The part of ``wanted`` (mapping properties) that ``have`` lacks: new fields, new
    sub-fields of objects, new multi-fields; Elasticsearch merges them into the mapping."""
    missing: dict[str, Any] = {}
    for name, spec in wanted.items():
        old = have.get(name)
        if old is None:
            missing[name] = spec
        elif "properties" in spec:
            inner = _missing_fields(spec["properties"], old.get("properties", {}))
            if inner:
                missing[name] = {k: v for k, v in spec.items() if k != "properties"}
                missing[name]["properties"] = inner
        elif set(spec.get("fields", {})) - set(old.get("fields", {})):
            missing[name] = spec  # an existing field's definition, with its new multi-fields
    return missing


def _create(client: Client, index: str, **kwargs: Any) -> bool:
    try:
        client.indices.create(index=index, **kwargs)
    except BadRequestError as exc:
        if exc.error == "resource_already_exists_exception":
            return False  # another worker created it first
        raise
    return True


def indices_ready(client: Client, names: IndexNames, config_dir: str | Path) -> None:
    """Create the indices (:func:`ensure_indices`) unless all of them exist already."""
    wanted = ",".join(names.index(n) for n in template_names(config_dir))
    if not client.indices.exists(index=wanted):
        ensure_indices(client, names, config_dir)
