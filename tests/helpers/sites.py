"""Loopback sites: an HTTP server whose routes a test writes, a sentinel that only counts the
connections it accepts, and the feeds file of a demo site."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from newsmon.config import FeedConfig, Settings, load_feeds
from newsmon.dev.demo import DemoSite

Route = Callable[["Handler"], object]


class Handler(BaseHTTPRequestHandler):
    """Answers each GET with the :class:`Server`'s route for its path (404 without one)."""

    server: _Httpd

    def do_GET(self) -> None:
        owner = self.server.owner
        owner.requests.append((self.path, dict(self.headers)))
        route = owner.routes.get(self.path.split("?", 1)[0])
        if route is None:
            self.reply(404, b"not here", "text/plain")
        else:
            route(self)

    def reply(
        self, status: int, body: bytes, content_type: str = "text/html", **headers: str
    ) -> None:
        """One complete response; ``Last_Modified=...`` sends a ``Last-Modified`` header."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Httpd(ThreadingHTTPServer):
    daemon_threads = True
    owner: Server

    def get_request(self) -> tuple[socket.socket, Any]:
        request = super().get_request()
        self.owner.connections += 1
        return request

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hanging up on purpose (caps, deadlines) are expected here


class Server:
    """A loopback HTTP server that counts the connections it accepts."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.connections = 0
        self.stop = threading.Event()
        self.httpd = _Httpd((host, 0), Handler)
        self.httpd.owner = self
        self.port = self.httpd.server_address[1]
        self.base = f"http://{host}:{self.port}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def redirect(location: str, status: int = 302) -> Route:
    """A route that answers with a redirect to ``location``."""

    def route(handler: Handler) -> None:
        handler.reply(status, b"", Location=location)

    return route


class Sentinel:
    """TCP listeners on 127.0.0.1, 127.0.0.3 and ::1 that accept and count connections, and
    answer nothing."""

    def __init__(self) -> None:
        self.accepted = 0
        self.lock = threading.Lock()
        self.listeners: list[socket.socket] = []
        self.ports: dict[str, int] = {}
        self.stop = threading.Event()
        for host, family in (("127.0.0.3", socket.AF_INET), ("127.0.0.1", socket.AF_INET)):
            self.listen(host, family)
        if socket.has_ipv6:
            with contextlib.suppress(OSError):  # no IPv6 loopback here
                self.listen("::1", socket.AF_INET6)

    def listen(self, host: str, family: int = socket.AF_INET, port: int = 0) -> int:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(16)
        sock.settimeout(0.05)
        self.listeners.append(sock)
        self.ports.setdefault(host, sock.getsockname()[1])
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()
        return int(sock.getsockname()[1])

    def _accept(self, sock: socket.socket) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self.lock:
                self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.stop.set()
        for sock in self.listeners:
            sock.close()


def write_feeds(site: DemoSite, settings: Settings) -> list[FeedConfig]:
    """The site's feeds, written to ``settings.feeds_file`` and loaded from it."""
    Path(settings.feeds_file).write_text(site.feeds_yaml())
    return load_feeds(settings.feeds_file)
