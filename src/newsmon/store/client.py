"""The Elasticsearch client and the requests every part of newsmon shares.

Only features of a bare Elasticsearch node are used (no ingest pipelines, scripts, analysis-common
or percolator), so the core runs on Elastic's test distribution as on a full cluster.
A broken dependency (ES down) raises; per-document failures are values.

:mod:`newsmon.store` is the only package that talks to Elasticsearch: the rest of newsmon calls
its named functions and holds a :data:`Client` only to hand it back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from elastic_transport import Urllib3HttpNode
from elasticsearch import ApiError, Elasticsearch, NotFoundError, TransportError

from ..config import Settings

__all__ = [
    "ApiError",
    "Client",
    "IndexNames",
    "NotFoundError",
    "TransportError",
    "backing_indices",
    "connect",
    "es_time",
    "exists",
    "failure_kind",
    "locate",
    "mget",
    "msearch",
    "refresh",
]

log = logging.getLogger(__name__)

Client = Elasticsearch  # what connect() returns; other packages only pass it along

MSEARCH_CHUNK = 200  # searches per _msearch request
MGET_CHUNK = 2000  # ids per _mget request
PARALLEL = 4  # requests of one msearch/mget call in flight at once

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


# --- requests shared by every index ------------------------------------------------------------


def msearch(es: Client, index: str, bodies: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Run search ``bodies`` on ``index``: in chunks of :data:`MSEARCH_CHUNK`, a few requests at
    once; the responses in the order of ``bodies`` (an error is a response with ``error``)."""
    chunks = [bodies[i : i + MSEARCH_CHUNK] for i in range(0, len(bodies), MSEARCH_CHUNK)]

    def run(chunk: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        searches: list[Mapping[str, Any]] = []
        for body in chunk:
            searches += [{"index": index}, body]
        return list(es.msearch(searches=searches)["responses"])

    if len(chunks) <= 1:
        return [r for chunk in chunks for r in run(chunk)]
    with ThreadPoolExecutor(PARALLEL, thread_name_prefix="newsmon-msearch") as pool:
        return [r for responses in pool.map(run, chunks) for r in responses]


def mget(
    es: Client,
    index: str,
    ids: Iterable[str],
    *,
    fields: Sequence[str] | None = None,
    source: bool = True,
    missing_index_ok: bool = False,
) -> dict[str, Mapping[str, Any]]:
    """The documents found among ``ids`` (id -> source; ``{}`` with ``source=False``), fetched in
    chunks of :data:`MGET_CHUNK`, a few at once. ``fields`` limits the source to those fields.
    A missing index raises, or finds nothing with ``missing_index_ok``."""
    wanted = list(dict.fromkeys(ids))
    chunks = [wanted[i : i + MGET_CHUNK] for i in range(0, len(wanted), MGET_CHUNK)]
    options: dict[str, Any] = {}
    if not source:
        options["source"] = False
    elif fields is not None:
        options["source_includes"] = list(fields)

    def run(chunk: list[str]) -> list[tuple[str, Mapping[str, Any]]]:
        try:
            docs = es.mget(index=index, ids=chunk, **options)["docs"]
        except NotFoundError:
            if missing_index_ok:
                return []
            raise
        return [(d["_id"], d.get("_source") or {}) for d in docs if d.get("found")]

    if len(chunks) <= 1:
        return dict(pair for chunk in chunks for pair in run(chunk))
    with ThreadPoolExecutor(PARALLEL, thread_name_prefix="newsmon-mget") as pool:
        return dict(pair for found in pool.map(run, chunks) for pair in found)


def backing_indices(es: Client, index: str) -> list[str]:
    """The concrete indices behind ``index``, newest first (itself when it is no alias)."""
    try:
        aliases = es.indices.get_alias(name=index)
    except NotFoundError:
        return [index]
    return sorted(aliases, reverse=True)


def locate(
    es: Client, index: str, ids: Iterable[str], *, fields: Sequence[str] | None = None
) -> dict[str, tuple[str, Mapping[str, Any]]]:
    """id -> (the concrete index holding it, its source) for the documents found among ``ids``
    in ``index``, which may be an alias over several backing indices (after a rollover), where
    ``_mget`` on the alias fails. Each backing index is asked in turn, newest first, with a
    real-time ``_mget`` (a document written a moment ago is found). ``fields=[]``: no source."""
    remaining = list(dict.fromkeys(ids))
    found: dict[str, tuple[str, Mapping[str, Any]]] = {}
    if not remaining:  # every batch of new articles asks for none: no request then
        return found
    for concrete in backing_indices(es, index):
        if not remaining:
            break
        docs = mget(
            es,
            concrete,
            remaining,
            fields=fields or None,
            source=fields != [],
            missing_index_ok=True,
        )
        found.update((doc_id, (concrete, src)) for doc_id, src in docs.items())
        remaining = [i for i in remaining if i not in docs]
    return found


def exists(es: Client, *indices: str) -> bool:
    """Whether every one of ``indices`` (names or aliases) exists."""
    return bool(es.indices.exists(index=",".join(indices)))


def refresh(es: Client, index: str) -> None:
    """Make everything written to ``index`` so far searchable."""
    es.indices.refresh(index=index)


def failure_kind(exc: BaseException) -> Literal["unreachable", "busy"] | None:
    """What an exception from a store call says of the cluster: ``unreachable`` (no answer:
    connection refused, timeout, TLS), ``busy`` (429 or 5xx after every retry), or None (any
    other error)."""
    if isinstance(exc, TransportError):
        return "unreachable"
    if isinstance(exc, ApiError) and (exc.status_code >= 500 or exc.status_code == 429):
        return "busy"
    return None


def es_time(value: object) -> datetime | None:
    """A date as Elasticsearch stores it (ISO 8601, ``Z`` or an offset, or none: UTC) as an
    aware datetime; None for nothing or a value that is no date."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def es_iso(moment: datetime) -> str:
    """A moment as Elasticsearch dates are precise: UTC, milliseconds (so windows meet exactly)."""
    moment = moment.astimezone(UTC)
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
