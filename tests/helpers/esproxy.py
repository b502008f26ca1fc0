"""A loopback HTTP proxy in front of a real Elasticsearch node that injects faults by rule.

Each :class:`Fault` matches requests (method, path, a string in the body) and, for its first
``times`` matches, answers a status of its own (before or after forwarding the request), resets
the connection, delays, calls a hook (e.g. to kill the node), or rewrites single items of a bulk
request: items not forwarded get a synthetic error, forwarded ones have their real result
replaced by one (so the node holds a document the client was told it did not write).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

ItemFilter = Callable[[str, dict[str, Any], dict[str, Any] | None], bool]  # op, meta, source

ERROR_TYPES = {
    400: ("document_parsing_exception", "[1:1] failed to parse: injected by the test proxy"),
    429: (
        "es_rejected_execution_exception",
        "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, "
        "replica_bytes=0, all_bytes=0, coordinating_operation_bytes=0, max_coordinating_and_"
        "primary_bytes=0] (injected by the test proxy)",
    ),
    500: ("illegal_state_exception", "injected by the test proxy"),
    502: ("bad_gateway", "injected by the test proxy"),
    503: ("unavailable_shards_exception", "primary shard is not active (test proxy)"),
    504: ("gateway_timeout", "injected by the test proxy"),
}


@dataclass
class Fault:
    """What to do with matching requests, for the first ``times`` of them after ``skip``."""

    path: str = r"/_bulk\b"  # regex searched in the request path
    method: str | None = None  # any
    body_contains: str | None = None
    times: int = 1
    skip: int = 0
    status: int | None = None  # answer this status (with an Elasticsearch-like error body)
    forward: bool = False  # send the request to the node first (it may have applied it)
    reset: bool = False  # close the connection without an answer
    delay: float = 0.0  # seconds to wait before doing anything else
    hook: Callable[[], None] | None = None  # called once the request went to the node
    item_status: int | None = None  # for bulk requests: an error result for matching items
    items: ItemFilter | None = None  # which items (default: all)
    items_forward: bool = False  # forward matching items and replace their real result
    seen: int = 0
    fired: int = 0

    def _take(self, method: str, path: str, body: bytes) -> bool:
        if self.method and method != self.method:
            return False
        if not re.search(self.path, path):
            return False
        if self.body_contains and self.body_contains.encode() not in body:
            return False
        self.seen += 1
        if self.seen <= self.skip or self.fired >= self.times:
            return False
        self.fired += 1
        return True


def _error_body(status: int) -> dict[str, Any]:
    kind, reason = ERROR_TYPES.get(status, ("error", "injected by the test proxy"))
    return {"error": {"type": kind, "reason": reason}, "status": status}


@dataclass
class _BulkItem:
    op: str
    meta: dict[str, Any]
    lines: list[bytes]
    source: dict[str, Any] | None


def _bulk_items(body: bytes) -> Iterator[_BulkItem]:
    lines = [line for line in body.split(b"\n") if line.strip()]
    n = 0
    while n < len(lines):
        header = json.loads(lines[n])
        ((op, meta),) = header.items()
        if op == "delete":
            yield _BulkItem(op, meta, [lines[n]], None)
            n += 1
        else:
            yield _BulkItem(op, meta, lines[n : n + 2], json.loads(lines[n + 1]))
            n += 2


@dataclass
class ESProxy:
    """``with ESProxy(node_url) as proxy:`` serves on ``proxy.url``; add faults to ``faults``."""

    upstream: str
    faults: list[Fault] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)  # "METHOD path" -> count
    injected: Counter[str] = field(default_factory=Counter)  # what was done -> count

    def __post_init__(self) -> None:
        parts = urlsplit(self.upstream)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 9200
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> ESProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def bulk_requests(self) -> int:
        return sum(n for key, n in self.requests.items() if re.search(r"/_bulk\b", key))

    # --- internals -------------------------------------------------------------------------------

    def _match(self, method: str, path: str, body: bytes) -> Fault | None:
        with self._lock:
            self.requests[f"{method} {path.split('?', 1)[0]}"] += 1
            for fault in self.faults:
                if fault._take(method, path, body):
                    return fault
        return None

    def _note(self, what: str, n: int = 1) -> None:
        with self._lock:
            self.injected[what] += n

    def _forward(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        hook: Callable[[], None] | None = None,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send the request to the node; raises OSError when it cannot be reached."""
        conn = http.client.HTTPConnection(self._host, self._port, timeout=60)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            if hook is not None:
                hook()
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp.getheaders(), data
        except http.client.HTTPException as exc:
            raise ConnectionResetError(str(exc)) from exc
        finally:
            conn.close()

    def _bulk(
        self, fault: Fault, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Forward the bulk request without the faulted items (unless ``items_forward``), then
        put their error results in place."""
        items = list(_bulk_items(body))
        hit = [fault.items is None or fault.items(i.op, i.meta, i.source) for i in items]
        status = fault.item_status or 429
        sent = [i for i, h in zip(items, hit, strict=True) if not h or fault.items_forward]
        results: list[dict[str, Any]] = []
        code, resp_headers = 200, [("X-Elastic-Product", "Elasticsearch")]
        if sent:
            payload = b"\n".join(line for i in sent for line in i.lines) + b"\n"
            code, resp_headers, data = self._forward(method, path, headers, payload, fault.hook)
            if code != 200:
                return code, resp_headers, data
            results = json.loads(data)["items"]
        answered = iter(results)
        out: list[dict[str, Any]] = []
        for item, faulted in zip(items, hit, strict=True):
            real = next(answered) if (not faulted or fault.items_forward) else None
            if not faulted:
                assert real is not None
                out.append(real)
                continue
            kind, reason = ERROR_TYPES.get(status, ("error", "injected by the test proxy"))
            index = item.meta.get("_index") or path.strip("/").split("/")[0]
            out.append(
                {
                    item.op: {
                        "_index": index,
                        "_id": item.meta.get("_id"),
                        "status": status,
                        "error": {"type": kind, "reason": reason},
                    }
                }
            )
            self._note(f"item {status}{' after forwarding' if fault.items_forward else ''}")
        errors = any("error" in next(iter(r.values())) for r in out)
        data = json.dumps({"errors": errors, "took": 1, "items": out}).encode()
        keep = [(k, v) for k, v in resp_headers if k.lower() == "x-elastic-product"]
        return 200, keep or [("X-Elastic-Product", "Elasticsearch")], data

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                skip = {"host", "content-length", "connection", "accept-encoding"}
                headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
                fault = proxy._match(self.command, self.path, body)
                try:
                    if fault is None:
                        self._answer(*proxy._forward(self.command, self.path, headers, body))
                        return
                    if fault.delay:
                        time.sleep(fault.delay)
                        proxy._note(f"delay {fault.delay:g}s")
                    if fault.item_status is not None or fault.items is not None:
                        self._answer(*proxy._bulk(fault, self.command, self.path, headers, body))
                        return
                    if fault.forward or fault.hook is not None:
                        answer = proxy._forward(self.command, self.path, headers, body, fault.hook)
                        if fault.status is None and not fault.reset:
                            self._answer(*answer)
                            return
                    if fault.reset:
                        proxy._note("reset")
                        self._reset()
                        return
                    status = fault.status or 503
                    proxy._note(f"status {status}")
                    data = json.dumps(_error_body(status)).encode()
                    self._answer(status, [("X-Elastic-Product", "Elasticsearch")], data)
                except OSError:
                    # the node is unreachable: so is the proxy, as a client would see it directly
                    proxy._note("upstream unreachable")
                    self._reset()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

            def _answer(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
                self.send_response(status)
                drop = {"content-length", "transfer-encoding", "connection", "content-encoding"}
                names = {k.lower() for k, _v in headers}
                for key, value in headers:
                    if key.lower() not in drop:
                        self.send_header(key, value)
                if "content-type" not in names:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    with contextlib.suppress(OSError):  # the client gave up (timed out)
                        self.wfile.write(data)

            def _reset(self) -> None:
                """Close with a TCP reset, answering nothing."""
                self.close_connection = True
                try:
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    os.close(self.connection.detach())
                except OSError:
                    pass

        return Handler
