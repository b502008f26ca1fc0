"""Elasticsearch: the client, the index templates and aliases, article and feed-state documents.

Only features of a bare Elasticsearch node are used (no ingest pipelines, scripts, analysis-common
or percolator), so the core runs on Elastic's test distribution as on a full cluster.
A broken dependency (ES down) raises; per-document failures are values.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from elastic_transport import Urllib3HttpNode
from elasticsearch import Elasticsearch, helpers
from elasticsearch.exceptions import BadRequestError

from .config import ConfigError, Settings
from .fetch import Validators

__all__ = [
    "BulkReport",
    "FeedState",
    "IndexNames",
    "IndexedState",
    "bulk_write",
    "connect",
    "ensure_indices",
    "indexed_states",
    "load_feed_states",
    "save_feed_states",
    "template_names",
]

log = logging.getLogger(__name__)

ROLLED = ("articles",)  # indices behind a write alias (name-000001, name-000002, …)


@dataclass(frozen=True)
class IndexNames:
    """Every index name is derived from one prefix, so test runs and tenants never collide.

    ``config/elasticsearch/<name>.template.json`` defines index ``<prefix><name>``; names in
    :data:`ROLLED` are aliases over ``<prefix><name>-NNNNNN`` backing indices.
    """

    prefix: str

    def index(self, name: str) -> str:
        """The name to read and write ``name`` (an alias for rolled indices)."""
        return f"{self.prefix}{name}"

    @property
    def articles(self) -> str:
        """The alias to read and write articles (write index: the newest backing index)."""
        return self.index("articles")

    @property
    def first_articles_index(self) -> str:
        return f"{self.prefix}articles-000001"

    @property
    def feeds(self) -> str:
        return self.index("feeds")

    @property
    def stories(self) -> str:
        return self.index("stories")

    def template(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def pattern(self, name: str) -> str:
        return f"{self.index(name)}-*" if name in ROLLED else self.index(name)


# Answers that mean "busy or briefly unavailable, try again": too many requests, and a gateway
# or node that cannot serve the request right now. Any other error is final.
RETRY_STATUSES = (429, 502, 503, 504)


class _PatientNode(Urllib3HttpNode):
    """A node connection that waits before handing back a busy answer (:data:`RETRY_STATUSES`):
    the client retries such answers at once, so the wait is what spaces the retries out. It
    doubles with each busy answer in a row on this thread, up to ``backoff_max``; after the
    answer to the last attempt (``max_retries`` retries) there is no wait."""

    backoff: float = 1.0
    backoff_max: float = 30.0
    max_retries: int = 3
    _streak = threading.local()

    def perform_request(self, *args: Any, **kwargs: Any) -> Any:
        response = super().perform_request(*args, **kwargs)
        if response.meta.status not in RETRY_STATUSES:
            self._streak.count = 0
            return response
        count = getattr(self._streak, "count", 0)
        self._streak.count = count + 1
        attempt = count % (self.max_retries + 1)  # of this request, when all were busy
        if attempt == self.max_retries:
            return response  # the client gives up now
        wait = min(self.backoff * 2**attempt, self.backoff_max)
        if wait > 0:
            log.info("Elasticsearch answered %s; waiting %.2fs", response.meta.status, wait)
            time.sleep(wait)
        return response


def connect(settings: Settings) -> Elasticsearch:
    """A client for the configured cluster (``NEWSMON_ES_*``).

    Every request is retried ``es_max_retries`` times on a timeout, a connection error or a
    :data:`RETRY_STATUSES` answer, waiting ``es_retry_backoff`` seconds (doubled each time, at
    most ``es_retry_backoff_max``) in between; :func:`bulk_write` retries refused documents with
    the same settings.
    """
    node_class = type(
        "PatientNode",
        (_PatientNode,),
        {
            "backoff": settings.es_retry_backoff,
            "backoff_max": settings.es_retry_backoff_max,
            "max_retries": settings.es_max_retries,
        },
    )
    kwargs: dict[str, Any] = {
        "node_class": node_class,
        "request_timeout": settings.es_timeout,
        "retry_on_timeout": True,
        "retry_on_status": RETRY_STATUSES,
        "max_retries": settings.es_max_retries,
        "retry_backoff_base": settings.es_retry_backoff,
        "retry_backoff_cap": settings.es_retry_backoff_max,
    }
    if settings.es_api_key:
        kwargs["api_key"] = settings.es_api_key
    elif settings.es_username:
        kwargs["basic_auth"] = (settings.es_username, settings.es_password or "")
    if settings.es_url.startswith("https"):
        kwargs["verify_certs"] = settings.es_verify_certs
        if settings.es_ca_certs:
            kwargs["ca_certs"] = settings.es_ca_certs
    return Elasticsearch(settings.es_url, **kwargs)


# --- templates and aliases ----------------------------------------------------------------------


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


def ensure_indices(client: Elasticsearch, names: IndexNames, config_dir: str | Path) -> InitReport:
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


def _add_new_fields(client: Elasticsearch, target: str, template: Mapping[str, Any]) -> None:
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


def _create(client: Elasticsearch, index: str, **kwargs: Any) -> bool:
    try:
        client.indices.create(index=index, **kwargs)
    except BadRequestError as exc:
        if exc.error == "resource_already_exists_exception":
            return False  # another worker created it first
        raise
    return True


# --- article documents --------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexedState:
    """What the index already holds for one article id."""

    extraction: str | None
    fetch_outcome: str | None
    fetch_attempts: int
    doc_id: str  # the document holding it (another id when found through url_keys)
    indexed_at: datetime | None = None


def indexed_states(
    client: Elasticsearch, names: IndexNames, urls: Mapping[str, str]
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
                indexed_at=_time(src.get("indexed_at")),
            )
            matched = {hit["_id"]} & set(chunk) | {
                by_url[k] for k in src.get("url_keys") or [] if k in by_url
            }
            for doc_id in matched:
                found[doc_id] = state
    return found


@dataclass
class BulkReport:
    """Per-document results of a bulk write."""

    ok: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # 409: already there (create) or changed
    failed: dict[str, str] = field(default_factory=dict)  # id -> reason
    # Of ``failed``: still busy/unavailable (429, 5xx) after every retry, worth a later try;
    # the others (4xx) were refused for what they are (a value the mapping cannot take…).
    retryable: set[str] = field(default_factory=set)
    # Refused documents stored instead as a minimal document with the reason (by the caller).
    rejected: dict[str, str] = field(default_factory=dict)  # id -> reason

    def merge(self, other: BulkReport) -> None:
        self.ok += other.ok
        self.conflicts += other.conflicts
        self.failed.update(other.failed)
        self.retryable |= other.retryable
        self.rejected.update(other.rejected)

    def refused(self) -> dict[str, str]:
        """The failed documents that retrying would not help."""
        return {k: v for k, v in self.failed.items() if k not in self.retryable}

    def counts(self) -> Counter[str]:
        return Counter(
            indexed=len(self.ok),
            duplicate=len(self.conflicts),
            index_failed=len(self.failed),
            index_rejected=len(self.rejected),
        )


def _actions(
    index: str,
    docs: Iterable[tuple[str, str, Mapping[str, Any]]],
    meta: Mapping[str, Mapping[str, Any]],
) -> Iterator[dict[str, Any]]:
    for op, doc_id, source in docs:
        action: dict[str, Any] = {
            "_op_type": op,
            "_index": index,
            "_id": doc_id,
            **meta.get(doc_id, {}),
        }
        if op == "update":
            action["doc"] = source
        else:
            action["_source"] = source
        yield action


def bulk_write(
    client: Elasticsearch,
    index: str,
    docs: Iterable[tuple[str, str, Mapping[str, Any]]],
    *,
    max_retries: int | None = None,
    refresh: bool = False,
    meta: Mapping[str, Mapping[str, Any]] | None = None,
) -> BulkReport:
    """Write ``(op, id, source)`` triples (op ``create``, ``index``, or ``update`` with a partial
    document) with the bulk helper; ``meta`` adds action metadata per id (e.g. ``if_seq_no`` and
    ``if_primary_term`` for optimistic concurrency).

    :data:`RETRY_STATUSES` answers, for the whole request or for single items (e.g. 429
    ``es_rejected_execution_exception`` when the write queue is full), are retried with
    exponential backoff: ``max_retries`` times (default: the client's, set by :func:`connect`),
    waiting the client's ``retry_backoff_base`` seconds, doubled each time up to its
    ``retry_backoff_cap``. A ``create`` that finds the document already there (also when an
    earlier attempt wrote it) is a duplicate, not an error; any other item error is reported with
    its reason, those still busy after every retry also in ``retryable``. A transport failure
    (cluster down) raises.
    """
    retries, backoff, backoff_max = _retry_policy(client, max_retries)
    report = BulkReport()
    results = helpers.streaming_bulk(
        client,
        _actions(index, docs, meta or {}),
        chunk_size=200,
        max_chunk_bytes=20 * 1024 * 1024,
        raise_on_error=False,
        raise_on_exception=True,
        max_retries=retries,
        initial_backoff=backoff,
        max_backoff=backoff_max,
        retry_on_status=RETRY_STATUSES,
    )
    for ok, info in results:
        ((op, item),) = info.items()
        doc_id = str(item.get("_id"))
        if ok:
            report.ok.append(doc_id)
        elif item.get("status") == 409:
            report.conflicts.append(doc_id)
        else:
            error = item.get("error") or {}
            reason = error.get("reason") if isinstance(error, dict) else str(error)
            kind = error.get("type") if isinstance(error, dict) else "error"
            report.failed[doc_id] = f"{item.get('status')} {kind}: {reason}"[:500]
            status = item.get("status")
            if status in RETRY_STATUSES or not isinstance(status, int) or status >= 500:
                report.retryable.add(doc_id)  # the cluster's trouble, not the document's
            log.warning("bulk %s of %s failed: %s", op, doc_id, report.failed[doc_id])
    if refresh:
        client.indices.refresh(index=index)
    return report


def _retry_policy(client: Elasticsearch, max_retries: int | None) -> tuple[int, float, float]:
    """(retries, first wait, longest wait) for refused bulk items: the client's own settings
    (kept per request by the client, else its transport's), as :func:`connect` set them."""

    def option(name: str) -> Any:
        value = getattr(client, f"_{name}", None)
        if not isinstance(value, int | float):  # not given: a "default" marker
            value = getattr(client.transport, name, None)
        return value

    retries = int(option("max_retries") or 0) if max_retries is None else max_retries
    backoff = float(option("retry_backoff_base") or 1.0)
    backoff_max = float(option("retry_backoff_cap") or 30.0)
    return max(0, retries), backoff, max(backoff, backoff_max)


# --- feed state ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedState:
    feed_id: str
    validators: Validators = field(default_factory=Validators)
    consecutive_failures: int = 0
    last_success_at: datetime | None = None
    failing_since: datetime | None = None
    recent_failures: tuple[Mapping[str, Any], ...] = ()  # newest last: {at, outcome, reason, …}
    successful_fetches: int = 0
    avg_entries: float | None = None
    saved_at: datetime | None = None  # end of the last run that saved this state


def load_feed_states(
    client: Elasticsearch, names: IndexNames, feed_ids: Sequence[str]
) -> dict[str, FeedState]:
    if not feed_ids:
        return {}
    response = client.mget(index=names.feeds, ids=list(feed_ids))
    states: dict[str, FeedState] = {}
    for doc in response["docs"]:
        if not doc.get("found"):
            continue
        src = doc["_source"]
        success = src.get("last_success_at")
        failing = src.get("failing_since")
        average = src.get("avg_entries")
        states[doc["_id"]] = FeedState(
            feed_id=doc["_id"],
            validators=Validators(etag=src.get("etag"), last_modified=src.get("last_modified")),
            consecutive_failures=int(src.get("consecutive_failures") or 0),
            last_success_at=datetime.fromisoformat(success) if success else None,
            failing_since=datetime.fromisoformat(failing) if failing else None,
            recent_failures=tuple(src.get("recent_failures") or ()),
            successful_fetches=int(src.get("successful_fetches") or 0),
            avg_entries=float(average) if average is not None else None,
            saved_at=_time(src.get("last_fetched_at")),
        )
    return states


def _time(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def save_feed_states(
    client: Elasticsearch, names: IndexNames, docs: Mapping[str, Mapping[str, Any]]
) -> BulkReport:
    """Store feed-state documents (one per feed id), replacing the previous ones."""
    return bulk_write(client, names.feeds, (("index", k, v) for k, v in docs.items()))
