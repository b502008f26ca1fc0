"""Costs as the index grows: the pipeline's write path over up to 100,000 articles.

Variants of the shared pages (news-pages and WCXB, each extracted once) go through the
pipeline's batch writer into fresh indices of the real node, as a run writes fetched pages:
boilerplate lines learned and removed, story candidates searched, articles bulk-created, story
documents updated. Every variant gets a sentence of its own, so it is a new article; every
tenth is a syndicated copy of an earlier variant on another site, so stories grow too.

At each checkpoint (``--at``, default 10k / 50k / 100k) it reports the write time per 1,000
articles over the last stretch, the story-candidate lookup p50/p95 (one search at a time, 50
samples), the lines index (documents, bytes), Elasticsearch disk per article, and this
process's peak RSS (the writer's, which also holds the extracted shared pages).

    python bench/scale.py [--at 10000 50000 100000] [--keep]

Last line: ``articles=… cost_growth=… lookup_p95_ms=… disk_per_article_kb=… rss_mb=…``
(``cost_growth``: time per 1,000 articles at the last checkpoint ÷ at the first).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import sys
import time
import uuid
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from newsmon.article import Article
from newsmon.config import FeedConfig, Settings
from newsmon.dev.demo import load_pages
from newsmon.dev.local import local_node_url
from newsmon.extract.isolate import InProcessExtractor
from newsmon.pipeline import RunSummary, _BatchWriter, _Work, build_article
from newsmon.sources.feeds import FeedEntry
from newsmon.store import IndexNames, connect, ensure_indices
from newsmon.store.stories import candidates
from newsmon.text.fingerprints import fingerprint
from newsmon.text.stories import CANDIDATES, WINDOW
from newsmon.urls import url_id

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
SITES = 50
FEED = FeedConfig(id="scale", name="Scale", url="https://feeds.example/scale.xml")


def base_articles() -> list[Article]:
    extractor = InProcessExtractor()
    out: list[Article] = []
    for directory in ("news-pages", "wcxb-articles"):
        for page in load_pages(SHARED / directory):
            if not page.original_url:
                continue
            extracted = extractor.extract(page.html, page.original_url).page
            if extracted is not None and len(extracted.text.split()) >= 80:
                out.append(build_article(page.original_url, page.original_url, extracted))
    return out


def variant(base: Article, n: int, rng: random.Random, now: datetime) -> Article:
    site = f"site{n % SITES}.example"
    url = f"https://www.{site}/news/{n}"
    extra = (
        f"Update {n}: {rng.choice(['officials', 'residents', 'analysts'])} said on day {n % 97}."
    )
    return replace(
        base,
        url=url,
        canonical_url=url,
        domain=site,
        site_name=site,
        text=base.text + "\n\n" + extra,
        published_at=now - timedelta(minutes=n % 5000),
        fetched_at=now,
    )


def work(article: Article) -> _Work:
    entry = FeedEntry(
        url=article.url,
        canonical_url=article.canonical_url,
        title=article.title,
        summary=None,
        published_at=article.published_at,
    )
    return _Work(entry, FEED, url_id(article.canonical_url), attempts=1, replace=False)


def lookup_ms(es: object, names: IndexNames, samples: list[Article]) -> list[float]:
    times = []
    for article in samples:
        fp = fingerprint(article.text)
        if fp is None:
            continue
        started = time.perf_counter()
        candidates(
            es,  # type: ignore[arg-type]
            names,
            [(fp.text_hash, fp.bands)],
            exclude=[],
            window=WINDOW,
            size=CANDIDATES,
        )
        times.append((time.perf_counter() - started) * 1000)
    return times


def store_bytes(es: object, index: str) -> tuple[int, int]:
    stats = es.indices.stats(index=index, metric="store,docs")["_all"]["primaries"]  # type: ignore[attr-defined]
    return int(stats["docs"]["count"]), int(stats["store"]["size_in_bytes"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--at", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the bench indices")
    args = parser.parse_args()
    es_url = os.environ.get("NEWSMON_ES_URL") or local_node_url()
    if not es_url:
        print("no Elasticsearch: run `newsmon es up` or set NEWSMON_ES_URL", file=sys.stderr)
        return 3
    settings = Settings(
        es_url=es_url,
        index_prefix=f"bench-scale-{uuid.uuid4().hex[:8]}-",
        config_dir=str(REPO / "config"),
    )
    es = connect(settings)
    names = IndexNames(settings.index_prefix)
    ensure_indices(es, names, settings.config_dir)
    rng = random.Random(args.seed)
    print("extracting the shared pages once…", file=sys.stderr)
    bases = base_articles()
    now = datetime.now(UTC)
    summary = RunSummary()
    writer = _BatchWriter(es, names, summary)
    rows: list[tuple[int, float, float, float, int, int, float, float]] = []
    written: list[Article] = []
    done, stretch_started, last = 0, time.perf_counter(), 0
    try:
        for checkpoint in sorted(args.at):
            while done < checkpoint:
                if done % 10 == 9 and written:
                    source = rng.choice(written[-2000:])  # a syndicated copy on another site
                    copy = variant(source, done, rng, now)
                    article = replace(copy, text=source.text)
                else:
                    article = variant(bases[done % len(bases)], done, rng, now)
                    written.append(article)
                writer.add(work(article), article)
                done += 1
            writer.flush()
            es.indices.refresh(index=f"{names.articles},{names.index('lines')}")
            per_1000 = (time.perf_counter() - stretch_started) / (done - last) * 1000
            samples = lookup_ms(es, names, rng.sample(written, min(50, len(written))))
            lines_docs, lines_bytes = store_bytes(es, names.index("lines"))
            count, art_bytes = store_bytes(es, names.articles)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            p50 = statistics.median(samples)
            p95 = statistics.quantiles(samples, n=20)[-1]
            rows.append((done, per_1000, p50, p95, lines_docs, lines_bytes, art_bytes / count, rss))
            print(
                f"{done:>7} articles: {per_1000:6.1f} s per 1,000 | lookup p50 {p50:5.1f} ms "
                f"p95 {p95:5.1f} ms | lines {lines_docs} docs {lines_bytes / 2**20:.1f} MiB | "
                f"{art_bytes / count / 1024:.1f} KiB per article | rss {rss:.0f} MB",
                file=sys.stderr,
            )
            stretch_started, last = time.perf_counter(), done
    finally:
        if not args.keep:
            for name in es.indices.get(index=f"{settings.index_prefix}*", expand_wildcards="all"):
                es.indices.delete(index=name)
            templates = es.options(ignore_status=404).indices.get_index_template(
                name=f"{settings.index_prefix}*"
            )
            for t in templates.get("index_templates", []):
                es.indices.delete_index_template(name=t["name"])
    kinds = Counter({k: v for k, v in summary.articles.items() if k.startswith("story_")})
    print(f"stories: {dict(kinds)}; problems: {len(summary.problems)}", file=sys.stderr)
    first, final = rows[0], rows[-1]
    print(
        f"articles={final[0]} cost_growth={final[1] / first[1]:.2f} lookup_p95_ms={final[3]:.1f} "
        f"disk_per_article_kb={final[6] / 1024:.1f} rss_mb={final[7]:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
