"""Per-article throughput: newsmon's work per page next to plain trafilatura, in one run.

newsmon's per-article work is what the pipeline does after a page is downloaded: decode and
extract (newsmon.extract.page, in a worker process of newsmon.extract.isolate as the pipeline does),
canonicalise the URL and derive the id, build the Elasticsearch document and serialise it. The
same work with the extraction in this process (``in_process``) is timed alongside: the
difference is what the worker process costs. The baseline is
``trafilatura.extract(html, url=url)`` with the library's defaults. All run over the same
decompressed pages in memory, interleaved round by round (this machine is noisy), so the
ratios compare like with like.

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

from newsmon.config import ExtractSettings
from newsmon.dev.demo import DemoPage, load_pages
from newsmon.extract.isolate import ExtractionPool, Extractor, InProcessExtractor
from newsmon.pipeline import build_article
from newsmon.store.articles import to_document
from newsmon.urls import canonical_url, url_id


def pipeline_work(extractor: Extractor) -> Callable[[DemoPage], int]:
    def work(page: DemoPage) -> int:
        extracted = extractor.extract(page.html, page.original_url).page
        canonical = canonical_url(page.original_url)
        doc = build_article(page.original_url, canonical, extracted)
        return len(url_id(canonical)) + len(json.dumps(to_document(doc)))

    return work


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
    # one page at a time, like the baseline: one worker process
    with ExtractionPool(ExtractSettings(workers=1)) as pool:
        sides: dict[str, Callable[[DemoPage], int]] = {
            "pipeline": pipeline_work(pool),
            "in_process": pipeline_work(InProcessExtractor()),
            "trafilatura": trafilatura_work,
        }
        print(f"{len(pages)} pages, {args.rounds} rounds; warming up", file=sys.stderr)
        for work in sides.values():
            timed(work, pages[:5])
        times: dict[str, list[float]] = {name: [] for name in sides}
        for n in range(args.rounds):
            # rotate the order so no side always runs on a warmer machine
            names = list(sides)
            names = names[n % len(names) :] + names[: n % len(names)]
            for name in names:
                times[name].append(timed(sides[name], pages))
            print(
                f"round {n + 1}: " + "  ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()),
                file=sys.stderr,
            )
    rate = {name: len(pages) / statistics.median(t) for name, t in times.items()}
    print(
        f"in_process_pages_per_s={rate['in_process']:.1f} "
        f"in_process_ratio={rate['in_process'] / rate['trafilatura']:.3f}",
    )
    print(
        f"pipeline_pages_per_s={rate['pipeline']:.1f} "
        f"trafilatura_pages_per_s={rate['trafilatura']:.1f} "
        f"ratio={rate['pipeline'] / rate['trafilatura']:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
