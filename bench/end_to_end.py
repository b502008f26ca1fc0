"""End to end: feeds → fetch → extract → dedup → bulk index into the real node, next to plain
trafilatura on the same pages in the same run.

N shared pages are served from loopback sites (one address per outlet, ``--sites`` copies of
the set, so syndicated copies meet in stories) with RSS feeds; ``newsmon.pipeline.ingest`` runs
over them into fresh indices of the local node (or NEWSMON_ES_URL), once with one extraction
worker and once with two. The baseline is ``trafilatura.bare_extraction`` with metadata,
comments excluded, in this process, over the same pages' bytes. Sides alternate round by round
(this machine is noisy); the best round of each side is reported.

    python bench/end_to_end.py --pages ../shared/data/news-pages [--sites 3] [--rounds 2]

Last line: ``pages=… pages_per_s=… trafilatura_pages_per_s=… ratio=… ratio_2workers=…``
(``pages_per_s`` and ``ratio``: one worker).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from ipaddress import ip_network
from pathlib import Path

import trafilatura

from newsmon.config import ExtractSettings, FeedConfig, FetchSettings, Settings, load_feeds
from newsmon.dev.demo import DemoPage, DemoSite, load_pages
from newsmon.dev.local import local_node_url
from newsmon.pipeline import ingest
from newsmon.store import IndexNames, connect, ensure_indices

REPO = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def sites(pages: Sequence[DemoPage], count: int) -> Iterator[list[DemoSite]]:
    with contextlib.ExitStack() as stack:
        yield [
            stack.enter_context(DemoSite(pages, feed_count=1, host=f"127.0.0.{n + 2}"))
            for n in range(count)
        ]


def feeds_file(served: Sequence[DemoSite], directory: Path) -> list[FeedConfig]:
    lines = ["feeds:"]
    for n, site in enumerate(served):
        lines += [f"  - id: site{n}", f"    name: Site {n}", f"    url: {site.feed_url('feed1')}"]
    path = directory / "feeds.yaml"
    path.write_text("\n".join(lines) + "\n")
    return load_feeds(path)


def run_pipeline(
    feeds: Sequence[FeedConfig], base: Settings, workers: int
) -> tuple[float, dict[str, int]]:
    settings = replace(
        base,
        index_prefix=f"bench-e2e-{uuid.uuid4().hex[:8]}-",
        extract=replace(base.extract, workers=workers),
    )
    es = connect(settings)
    try:
        ensure_indices(es, IndexNames(settings.index_prefix), settings.config_dir)  # not timed
        started = time.perf_counter()
        summary = ingest(feeds, settings, client=es)
        seconds = time.perf_counter() - started
    finally:
        for name in es.indices.get(index=f"{settings.index_prefix}*", expand_wildcards="all"):
            es.indices.delete(index=name)
        for t in (
            es.options(ignore_status=404)
            .indices.get_index_template(name=f"{settings.index_prefix}*")
            .get("index_templates", [])
        ):
            es.indices.delete_index_template(name=t["name"])
    return seconds, dict(summary.articles)


def run_trafilatura(pages: Sequence[DemoPage], copies: int) -> float:
    started = time.perf_counter()
    for _ in range(copies):
        for page in pages:
            trafilatura.bare_extraction(
                page.html, url=page.original_url, with_metadata=True, include_comments=False
            )
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", default=str(REPO.parent / "shared" / "data" / "news-pages"))
    parser.add_argument("--limit", type=int, help="the first N pages of the set")
    parser.add_argument("--sites", type=int, default=3, help="outlets serving the set")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    pages = load_pages(args.pages, limit=args.limit)
    if not pages:
        print(f"no pages under {args.pages}", file=sys.stderr)
        return 2
    es_url = os.environ.get("NEWSMON_ES_URL") or local_node_url()
    if not es_url:
        print("no Elasticsearch: run `newsmon es up` or set NEWSMON_ES_URL", file=sys.stderr)
        return 3
    base = Settings(
        es_url=es_url,
        config_dir=str(REPO / "config"),
        fetch=FetchSettings(allow_networks=(ip_network("127.0.0.0/8"),), workers=8),
        extract=ExtractSettings(),
    )
    total = len(pages) * args.sites
    best: dict[str, float] = {}
    with sites(pages, args.sites) as served:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            feeds = feeds_file(served, Path(tmp))
            run_trafilatura(pages[:5], 1)  # warm up
            for n in range(args.rounds):
                sides = ["1worker", "2workers", "trafilatura"]
                sides = sides[n % 3 :] + sides[: n % 3]
                for side in sides:
                    if side == "trafilatura":
                        seconds = run_trafilatura(pages, args.sites)
                        counts: dict[str, int] = {}
                    else:
                        seconds, counts = run_pipeline(feeds, base, 1 if side == "1worker" else 2)
                    best[side] = min(best.get(side, seconds), seconds)
                    detail = f" indexed={counts.get('indexed')}" if counts else ""
                    print(
                        f"round {n + 1} {side:<11} {seconds:6.2f}s "
                        f"{total / seconds:6.1f} pages/s{detail}",
                        file=sys.stderr,
                    )
    one, two, plain = (total / best[s] for s in ("1worker", "2workers", "trafilatura"))
    print(
        f"pages={total} pages_per_s={one:.1f} trafilatura_pages_per_s={plain:.1f} "
        f"ratio={one / plain:.3f} ratio_2workers={two / plain:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
