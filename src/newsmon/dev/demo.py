"""A local news site on loopback: saved article pages and RSS/Atom feeds that list them.

Used by the tests, the benchmarks and ``newsmon demo`` so the whole pipeline runs on real pages
without the internet. Pages are served under ``/<original host>/<original path>``; feeds answer
conditional GETs (ETag and Last-Modified) like a well-behaved news site, and pages ETags (a page
rechecked unchanged answers 304).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, urlsplit
from xml.sax.saxutils import escape

__all__ = [
    "DemoNetwork",
    "DemoPage",
    "DemoSite",
    "load_pages",
    "render_atom",
    "render_home",
    "render_rss",
    "trimmed_copy",
]


@dataclass(frozen=True)
class DemoPage:
    page_id: str
    original_url: str
    html: bytes  # as served (uncompressed)
    title: str

    @property
    def path(self) -> str:
        parts = urlsplit(self.original_url)
        path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
        query = f"?{parts.query}" if parts.query else ""
        return f"/{parts.hostname}{path}{query}"


def _title(html: bytes) -> str:
    start = html.find(b"<title")
    if start < 0:
        return "Untitled"
    start = html.find(b">", start) + 1
    end = html.find(b"</title>", start)
    text = html[start:end].decode("utf-8", "replace").strip()
    return " ".join(text.split())[:300] or "Untitled"


def load_pages(directory: str | Path, limit: int | None = None) -> list[DemoPage]:
    """Pages of a shared data set: ``html/<id>.html.gz`` plus ``ground-truth.json`` or
    ``ground-truth/<id>.json`` giving each page's original URL."""
    root = Path(directory)
    urls: dict[str, str] = {}
    single = root / "ground-truth.json"
    if single.is_file():
        urls = {k: v["url"] for k, v in json.loads(single.read_text("utf-8")).items()}
    else:
        for path in sorted((root / "ground-truth").glob("*.json")):
            urls[path.stem] = json.loads(path.read_text("utf-8"))["url"]
    pages: list[DemoPage] = []
    for path in sorted((root / "html").glob("*.html.gz")):
        page_id = path.name.removesuffix(".html.gz")
        if page_id not in urls:
            continue
        html = gzip.decompress(path.read_bytes())
        pages.append(DemoPage(page_id, urls[page_id], html, _title(html)))
        if limit is not None and len(pages) >= limit:
            break
    return pages


def render_rss(title: str, link: str, items: Iterable[tuple[str, str, datetime]]) -> bytes:
    """An RSS 2.0 document listing (url, title, published) items."""
    body = "".join(
        f"<item><title>{escape(t)}</title><link>{escape(u)}</link><guid>{escape(u)}</guid>"
        f"<pubDate>{format_datetime(d)}</pubDate><description>{escape(t)}</description></item>"
        for u, t, d in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>{escape(link)}</link>"
        f"<description>{escape(title)}</description>{body}</channel></rss>"
    ).encode()


def render_atom(title: str, link: str, items: Iterable[tuple[str, str, datetime]]) -> bytes:
    """An Atom 1.0 document listing (url, title, published) items."""
    items = list(items)
    updated = max((d for _, _, d in items), default=datetime(2024, 1, 1, tzinfo=UTC)).isoformat()
    body = "".join(
        f'<entry><title>{escape(t)}</title><link rel="alternate" href="{escape(u)}"/>'
        f"<id>{escape(u)}</id><updated>{d.isoformat()}</updated>"
        f"<summary>{escape(t)}</summary></entry>"
        for u, t, d in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        f'<title>{escape(title)}</title><link href="{escape(link)}"/><id>{escape(link)}</id>'
        f"<updated>{updated}</updated>{body}</feed>"
    ).encode()


def render_home(title: str, feeds: Sequence[tuple[str, str]]) -> bytes:
    """A site's home page announcing its (url, name) feeds as browsers and readers expect."""
    links = "".join(
        f'<link rel="alternate" type="application/rss+xml" title="{escape(n)}" href="{escape(u)}">'
        for u, n in feeds
    )
    items = "".join(f'<li><a href="{escape(u)}">{escape(n)}</a></li>' for u, n in feeds)
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"{links}</head><body><h1>{escape(title)}</h1><p>Feeds:</p><ul>{items}</ul></body></html>"
    ).encode()


def trimmed_copy(html: bytes) -> bytes:
    """The page without its last paragraph, as a syndicating outlet cuts a wire story."""
    start = max(html.rfind(b"<p>"), html.rfind(b"<p "))
    end = html.find(b"</p>", start)
    if start < 0 or end < 0:
        return html
    return html[:start] + html[end + len(b"</p>") :]


class DemoSite:
    """Serve ``pages`` and ``feed_count`` feeds listing them, on 127.0.0.1 (port 0 = any)."""

    def __init__(
        self,
        pages: Sequence[DemoPage],
        *,
        feed_count: int = 3,
        port: int = 0,
        host: str = "127.0.0.1",
        home: bool = False,
        name: str = "Demo",
    ) -> None:
        self.pages = list(pages)
        self.home = home  # serve a home page linking the feeds at "/" (for feeds discover)
        self.name = name
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._routes: dict[str, tuple[bytes, str]] = {
            p.path: (p.html, "text/html") for p in self.pages
        }
        self._feeds: dict[str, tuple[bytes, str, str]] = {}  # path -> body, etag, last-modified
        # any 127.x.y.z works on Linux: one address per site makes separate "outlets"
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.base_url = f"http://{host}:{self._server.server_address[1]}"
        self.feed_names: list[str] = []
        start = datetime(2024, 1, 1, tzinfo=UTC)
        for n in range(feed_count):
            chunk = self.pages[n::feed_count]
            items = [
                (self.url_of(p), p.title, start + timedelta(hours=i)) for i, p in enumerate(chunk)
            ]
            name = f"feed{n + 1}"
            self.set_feed(name, items, atom=n % 2 == 1)
            self.feed_names.append(name)

    def url_of(self, page: DemoPage) -> str:
        return self.base_url + page.path

    def feed_url(self, name: str) -> str:
        return f"{self.base_url}/feeds/{name}.xml"

    def set_feed(
        self, name: str, items: Sequence[tuple[str, str, datetime]], *, atom: bool = False
    ) -> None:
        """Publish (or replace) a feed; its ETag changes when its content does."""
        render = render_atom if atom else render_rss
        body = render(f"Demo {name}", self.base_url, items)
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        with self._lock:
            self._feeds[f"/feeds/{name}.xml"] = (
                body,
                etag,
                format_datetime(datetime.now(UTC), usegmt=True),
            )

    def home_page(self) -> bytes:
        with self._lock:
            paths = sorted(self._feeds)
        return render_home(self.name, [(self.base_url + p, p.rsplit("/", 1)[-1]) for p in paths])

    def add_page(self, path: str, body: bytes, content_type: str = "text/html") -> str:
        with self._lock:
            self._routes[path] = (body, content_type)
        return self.base_url + path

    def feeds_yaml(self, *, prefix: str = "demo") -> str:
        lines = ["feeds:"]
        for name in self.feed_names:
            lines += [
                f"  - id: {prefix}-{name}",
                f"    name: Demo {name}",
                f"    url: {self.feed_url(name)}",
                "    language: en",
                "    tags: [demo]",
            ]
        return "\n".join(lines) + "\n"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> DemoSite:
        self._thread.start()
        return self

    def close(self) -> None:
        """Release the port of a site that was never started."""
        self._server.server_close()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> DemoSite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path
                with site._lock:
                    site.requests[path] += 1
                    feed = site._feeds.get(path)
                    # like real sites, ignore query parameters a page does not use (utm_*…)
                    page = site._routes.get(path) or site._routes.get(path.split("?", 1)[0])
                if page is None and path == "/" and site.home:
                    page = (site.home_page(), "text/html; charset=utf-8")
                if feed is not None:
                    body, etag, modified = feed
                    if self.headers.get("If-None-Match") == etag:
                        self.send_response(304)
                        self.send_header("ETag", etag)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self._send(
                        200,
                        body,
                        "application/rss+xml; charset=utf-8",
                        {"ETag": etag, "Last-Modified": modified},
                    )
                elif page is not None:
                    tag = '"' + hashlib.sha256(page[0]).hexdigest()[:20] + '"'
                    if self.headers.get("If-None-Match") == tag:  # a page rechecked, unchanged
                        self.send_response(304)
                        self.send_header("ETag", tag)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self._send(200, *page, {"ETag": tag})
                else:
                    self._send(404, b"not found", "text/plain")

            def _send(
                self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None
            ) -> None:
                gz = "gzip" in self.headers.get("Accept-Encoding", "") and len(body) > 512
                if gz:
                    body = gzip.compress(body, compresslevel=1)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                if gz:
                    self.send_header("Content-Encoding", "gzip")
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

        return Handler


class DemoNetwork:
    """The demo's news sites: the saved pages with their feeds on ``host``, and two outlets
    that syndicate every ``every``-th page on other loopback addresses (one verbatim, one
    without the last paragraph), so the same story runs in several outlets; one port for all."""

    COPIES = (("127.0.0.2", "Wire copies", False), ("127.0.0.3", "Trimmed copies", True))

    def __init__(
        self,
        pages: Sequence[DemoPage],
        *,
        feed_count: int = 3,
        port: int = 0,
        host: str = "127.0.0.1",
        every: int = 5,
    ) -> None:
        self.main = DemoSite(pages, feed_count=feed_count, port=port, host=host, home=True)
        port = self.main.port
        self.copies: list[DemoSite] = []
        try:
            for address, name, trim in self.COPIES:
                copied = [
                    DemoPage(
                        p.page_id, p.original_url, trimmed_copy(p.html) if trim else p.html, p.title
                    )
                    for p in list(pages)[::every]
                ]
                self.copies.append(
                    DemoSite(copied, feed_count=1, port=port, host=address, home=True, name=name)
                )
        except OSError:
            for site in (self.main, *self.copies):
                site.close()
            raise

    @property
    def sites(self) -> list[DemoSite]:
        return [self.main, *self.copies]

    @property
    def page_count(self) -> int:
        return sum(len(site.pages) for site in self.sites)

    def feeds_yaml(self) -> str:
        parts = [self.main.feeds_yaml()]
        parts += [
            site.feeds_yaml(prefix=f"copies{n}").removeprefix("feeds:\n")
            for n, site in enumerate(self.copies, start=2)
        ]
        return "".join(parts)

    def start(self) -> DemoNetwork:
        for site in self.sites:
            site.start()
        return self

    def stop(self) -> None:
        for site in self.sites:
            site.stop()
