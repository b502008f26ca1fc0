"""Talking to Kibana over HTTP: wait for it, import saved objects with overwrite.

The import uses Kibana's saved-objects import API with ``overwrite=true``: every object has a
fixed id, so importing again replaces the objects instead of adding copies.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from .objects import SavedObject, render_ndjson
from .settings import KibanaSettings

READY_LEVELS = ("available", "degraded")  # degraded: some plugin is, saved objects still work
RETRY_STATUSES = (502, 503, 504)  # Kibana (or its proxy) not ready yet


class KibanaError(RuntimeError):
    """Kibana cannot be reached, refused the request, or refused some objects."""


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
