"""Per-article throughput: newsmon's work per page next to plain trafilatura, in one run.

newsmon's per-article work is what the pipeline does after a page is downloaded: decode and
extract (newsmon.extract), canonicalise the URL and derive the id, build the Elasticsearch
document and serialise it. The baseline is ``trafilatura.extract(html, url=url)`` with the
library's defaults. Both run over the same decompressed pages in memory, interleaved round by
round (this machine is noisy), so the ratio compares like with like.

    python bench/throughput.py --pages ../shared/data/news-pages [--rounds 3]

Last line: ``pipeline_pages_per_s=… trafilatura_pages_per_s=… ratio=…``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence

import trafilatura

from newsmon.demo import DemoPage, load_pages
from newsmon.extract import extract_page
from newsmon.pipeline import build_article
from newsmon.urls import canonical_url, url_id


def pipeline_work(page: DemoPage) -> int:
    extracted = extract_page(page.html, page.original_url)
    canonical = canonical_url(page.original_url)
    doc = build_article(page.original_url, canonical, extracted)
    return len(url_id(canonical)) + len(json.dumps(doc))


def trafilatura_work(page: DemoPage) -> int:
    return len(trafilatura.extract(page.html, url=page.original_url) or "")


def timed(work: Callable[[DemoPage], int], pages: Sequence[DemoPage]) -> float:
    started = time.perf_counter()
    for page in pages:
        work(page)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", required=True, help="a shared data set directory")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    pages = load_pages(args.pages, limit=args.limit)
    if not pages:
        print(f"no pages under {args.pages}", file=sys.stderr)
        return 2
    print(f"{len(pages)} pages, {args.rounds} rounds; warming up", file=sys.stderr)
    timed(pipeline_work, pages[:5])
    timed(trafilatura_work, pages[:5])
    ours: list[float] = []
    theirs: list[float] = []
    for n in range(args.rounds):
        # alternate the order so neither side always runs on a warmer machine
        pair = [(ours, pipeline_work), (theirs, trafilatura_work)]
        for bucket, work in pair if n % 2 == 0 else reversed(pair):
            bucket.append(timed(work, pages))
        print(
            f"round {n + 1}: pipeline {ours[-1]:.2f}s  trafilatura {theirs[-1]:.2f}s",
            file=sys.stderr,
        )
    pipeline_rate = len(pages) / statistics.median(ours)
    trafilatura_rate = len(pages) / statistics.median(theirs)
    print(
        f"pipeline_pages_per_s={pipeline_rate:.1f} trafilatura_pages_per_s={trafilatura_rate:.1f} "
        f"ratio={pipeline_rate / trafilatura_rate:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
