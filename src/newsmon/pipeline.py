"""One ingest cycle: feeds → new article URLs → fetch + extract → Elasticsearch.

Nothing is lost: an article whose page cannot be fetched or extracted is indexed from its feed
item (``extraction: feed_fallback``) and fetched again on a later run when the failure was
transient; a feed's conditional-GET validators are only advanced once every new article it listed
is in the index, so a crash between the two makes the next run see the same items again.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from .article import Article, ArticleSource
from .config import FeedConfig, Settings
from .extract.isolate import Extraction, Extractor, open_extractor
from .extract.page import ExtractedPage
from .health import next_state
from .sources.feeds import FeedEntry, FeedOutcome, FeedResult, fetch_feed
from .sources.fetch import Fetcher, FetchOutcome, FetchResult
from .sources.robots import RobotsCache
from .sources.sitemaps import fetch_sitemap
from .store import BulkReport, Client, IndexNames, connect, indices_ready
from .store.articles import (
    IndexedState,
    articles_by_id,
    indexed_states,
    update_articles,
    write_articles,
)
from .store.client import refresh
from .store.feeds import FeedRun, FeedState, load_feed_states, save_feed_states
from .store.lines import ElasticsearchLineStore
from .store.stories import StoryMember, story_members, update_stories
from .text.boilerplate import ArticleText, clean_batch
from .text.dedup import StoryMatcher
from .text.events import EventMatcher, assign_events, settle_events
from .text.stories import assign_stories
from .updates import Listed, UpdateSettings, content_hash, listed_newer, update_in_place
from .urls import InvalidURL, canonical_url, domain, same_site, url_id

__all__ = ["RunSummary", "build_article", "feed_batches", "ingest"]

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

# Failures worth another try on a later run (the page may come back, robots.txt may change);
# others are final.
TRANSIENT = frozenset(
    {
        FetchOutcome.TIMEOUT,
        FetchOutcome.CONNECTION_ERROR,
        FetchOutcome.HTTP_ERROR,
        FetchOutcome.ROBOTS,
    }
)
MAX_FETCH_ATTEMPTS = 3
MAX_PROBLEMS = 50
INDEX_BATCH = 100  # documents per bulk request: fetched work reaches the index as it goes


def _quiet(message: str) -> None:
    """No progress output beyond the log."""


@dataclass
class RunSummary:
    """Counts of every feed and article outcome of a run, and the first problems seen."""

    feeds: Counter[str] = field(default_factory=Counter)
    articles: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def problem(self, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(message)

    def merge(self, other: RunSummary) -> None:
        self.feeds.update(other.feeds)
        self.articles.update(other.articles)
        for message in other.problems:
            self.problem(message)
        self.seconds = max(self.seconds, other.seconds)

    def as_dict(self) -> dict[str, Any]:
        """Small and JSON-serialisable (what a DAG task returns)."""
        return {
            "feeds": dict(self.feeds),
            "articles": dict(self.articles),
            "problems": list(self.problems),
            "seconds": round(self.seconds, 3),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSummary:
        return cls(
            feeds=Counter(data.get("feeds") or {}),
            articles=Counter(data.get("articles") or {}),
            problems=list(data.get("problems") or []),
            seconds=float(data.get("seconds") or 0.0),
        )

    def render(self) -> str:
        lines = [f"run summary ({self.seconds:.1f}s)"]
        names = [name for counts in (self.feeds, self.articles) for name, n in counts.items() if n]
        width = max([22, *(len(name) + 2 for name in names)])  # a long counter name widens both
        for title, counts in (("feeds", self.feeds), ("articles", self.articles)):
            lines.append(f"  {title}:")
            rows = [f"    {name:<{width}}{n:>7}" for name, n in sorted(counts.items()) if n]
            lines.extend(rows or ["    (nothing)"])
        if self.problems:
            lines.append(f"  problems (first {len(self.problems)}):")
            lines.extend(f"    {p}" for p in self.problems)
        return "\n".join(lines)


def _logged(progress: Progress) -> Progress:
    def both(message: str) -> None:
        log.info("%s", message)
        progress(message)

    return both


def _per_feed(work: Sequence[_Work], written: set[str]) -> dict[str, tuple[int, int]]:
    """feed id -> (new articles to fetch, of them now in the index)."""
    counts: dict[str, tuple[int, int]] = {}
    for w in work:
        new, indexed = counts.get(w.feed.id, (0, 0))
        counts[w.feed.id] = (new + 1, indexed + (w.doc_id in written))
    return counts


def feed_batches(feeds: Sequence[FeedConfig], size: int) -> list[list[str]]:
    """Enabled feed ids in batches of ``size`` (the unit of one mapped Airflow task)."""
    ids = [f.id for f in feeds if f.enabled]
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def build_article(
    url: str,
    canonical: str,
    page: ExtractedPage | None,
    *,
    entry: FeedEntry | None = None,
    feed: FeedConfig | None = None,
    fetched: FetchResult | None = None,
    now: datetime | None = None,
    attempts: int = 1,
    failed: Extraction | None = None,
) -> Article:
    """The record of one article: the page's fields, the feed's as fallback; ``failed``: the
    extraction that crashed or timed out on the page."""
    published = page.published_at if page else None
    source = "page" if published else None
    if published is None and entry is not None and entry.published_at is not None:
        published, source = entry.published_at, "feed"
    if page is not None:
        title, text = page.title or (entry.title if entry else None), page.text
        extraction = ArticleSource.FULL
    else:
        title = entry.title if entry else None
        text = (entry.summary if entry else None) or ""
        extraction = ArticleSource.FEED_FALLBACK
    site = domain(canonical)
    return Article(
        url=url,
        canonical_url=canonical,
        page_canonical_url=page.page_canonical_url if page else None,
        final_url=fetched.final_url if fetched else None,
        domain=site,
        site_name=(page.site_name if page else None) or site,
        title=title,
        text=text,
        description=page.description if page else None,
        feed_summary=entry.summary if entry else None,
        feed_guid=entry.guid if entry else None,
        authors=tuple(page.authors if page and page.authors else entry.authors if entry else ()),
        published_at=published,
        published_at_source=source,
        language=(page.language if page else None) or (feed.language if feed else None),
        image=page.image if page else None,
        feed_id=feed.id if feed else None,
        tags=tuple(feed.tags) if feed else (),
        extraction=extraction,
        fetch_outcome=fetched.outcome.value if fetched else None,
        fetch_reason=fetched.reason if fetched else None,
        http_status=fetched.status if fetched else None,
        fetch_attempts=attempts,
        fetched_at=now or datetime.now(UTC),
        extraction_error=failed.outcome.value if failed else None,
        extraction_error_reason=failed.reason if failed else None,
        feed_date=entry.listed_date if entry else None,
        etag=fetched.validators.etag if fetched and page else None,
        last_modified=fetched.validators.last_modified if fetched and page else None,
        content_hash=content_hash(page.text) if page else None,
        shapes=page.shapes if page else (),
    )


@dataclass(frozen=True)
class _Work:
    """One article to fetch in this run."""

    entry: FeedEntry
    feed: FeedConfig
    doc_id: str
    attempts: int
    replace: bool  # overwrite a feed_fallback document (op "index") instead of "create"


def _retryable(state: IndexedState) -> bool:
    return (
        state.extraction == "feed_fallback"
        and state.fetch_outcome in TRANSIENT
        and state.fetch_attempts < MAX_FETCH_ATTEMPTS
    )


def _fetch_article(
    fetcher: Fetcher, extractor: Extractor, work: _Work, robots: RobotsCache | None = None
) -> tuple[_Work, FetchResult, Extraction | None]:
    verdict = robots.check(work.entry.url) if robots is not None else None
    if verdict is not None and not verdict.allowed:  # indexed from the feed item instead
        return work, FetchResult(work.entry.url, FetchOutcome.ROBOTS, reason=verdict.reason), None
    result = fetcher.get_html(work.entry.url)
    extraction = None
    if result.ok:
        url = result.final_url or work.entry.url
        extraction = extractor.extract(result.body, url, result.content_type)
    return work, result, extraction


def ingest(
    feeds: Sequence[FeedConfig],
    settings: Settings,
    *,
    client: Client | None = None,
    progress: Progress = _quiet,
    extractor: Extractor | None = None,
    updates: UpdateSettings | None = None,
) -> RunSummary:
    """Run one cycle over ``feeds`` (disabled ones are skipped) and return its summary.

    Pages are extracted by ``extractor``, by default worker processes with the limits of
    ``settings.extract`` (newsmon.extract.isolate). Raises when Elasticsearch is unreachable;
    every other failure is counted in the summary. Progress (per feed, per tenth of the
    articles) is logged at INFO and also handed to ``progress``. Indexed articles that changed
    are updated in place (``updates``, by default from the environment: newsmon.updates).
    """
    progress = _logged(progress)
    update = updates or UpdateSettings.from_env()
    started = time.monotonic()
    names = IndexNames(settings.index_prefix)
    es = client or connect(settings)
    indices_ready(es, names, settings.config_dir)
    summary = RunSummary()
    active = [f for f in feeds if f.enabled]
    summary.feeds["disabled"] += len(feeds) - len(active)
    states = load_feed_states(es, names, [f.id for f in active])
    own_extractor = extractor is None
    pages = extractor or open_extractor(settings.extract)
    try:
        with Fetcher(settings.fetch) as fetcher:
            feed_results = _fetch_feeds(fetcher, active, states, settings, summary, progress)
            listed: list[Listed] = []  # indexed articles the feeds list with a newer date
            work, unsettled = _plan(es, names, active, feed_results, states, summary, listed)
            _settle_stories(es, names, unsettled, summary)
            progress(f"{len(work)} new article(s) to fetch")
            written = _fetch_and_index(es, names, fetcher, pages, work, settings, summary, progress)
            args = (listed, settings, update, summary.articles, summary.problem)
            update_in_place(es, names, fetcher, pages, [f.id for f in active], *args)
    finally:
        if own_extractor:
            pages.close()
    _save_states(es, names, active, feed_results, states, work, written)
    # searchable now, and `newsmon stories` right after a run lists its stories
    refresh(es, f"{names.articles},{names.stories}")
    for feed_id, (new, indexed) in sorted(_per_feed(work, written).items()):
        progress(f"feed {feed_id}: {new} new article(s), {indexed} indexed")
    summary.seconds = time.monotonic() - started
    return summary


def _fetch_feeds(
    fetcher: Fetcher,
    feeds: Sequence[FeedConfig],
    states: Mapping[str, FeedState],
    settings: Settings,
    summary: RunSummary,
    progress: Progress,
) -> dict[str, FeedResult]:
    results: dict[str, FeedResult] = {}
    if not feeds:
        return results
    workers = min(settings.fetch.workers, len(feeds))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="newsmon-feed") as pool:
        futures = [
            pool.submit(
                fetch_sitemap if feed.type == "sitemap" else fetch_feed,
                fetcher,
                feed,
                states[feed.id].validators if feed.id in states else None,
            )
            for feed in feeds
        ]
        for n, (feed, future) in enumerate(zip(feeds, futures, strict=True), start=1):
            result = future.result()
            results[feed.id] = result
            summary.feeds[result.outcome.value] += 1
            summary.articles["entries"] += len(result.entries)
            if result.skipped_entries:
                summary.articles["entry_without_link"] += result.skipped_entries
            detail = f"{len(result.entries)} entries"
            if result.outcome is FeedOutcome.FETCH_FAILED and result.fetch_outcome is not None:
                summary.feeds[result.fetch_outcome.value] += 1
            if result.outcome in (FeedOutcome.FETCH_FAILED, FeedOutcome.INVALID):
                detail = str(result.reason)
                summary.problem(f"feed {feed.id}: {result.outcome.value} ({detail})")
            progress(f"[{n}/{len(feeds)}] feed {feed.id}: {result.outcome.value}, {detail}")
    return results


def _plan(
    es: Client,
    names: IndexNames,
    feeds: Sequence[FeedConfig],
    results: Mapping[str, FeedResult],
    states: Mapping[str, FeedState],
    summary: RunSummary,
    listed: list[Listed],
) -> tuple[list[_Work], set[str]]:
    """The articles to fetch, and the ids of indexed ones a run may have left unsettled:
    written after their feed's state was last saved, so that run stopped before the end and
    perhaps before their stories were updated."""
    candidates: dict[str, tuple[FeedEntry, FeedConfig]] = {}
    for feed in feeds:
        for entry in results[feed.id].entries:
            doc_id = url_id(entry.canonical_url)
            if doc_id in candidates:
                summary.articles["duplicate"] += 1
            else:
                candidates[doc_id] = (entry, feed)
    known = indexed_states(es, names, {i: e.canonical_url for i, (e, _f) in candidates.items()})
    work: list[_Work] = []
    unsettled: set[str] = set()
    for doc_id, (entry, feed) in candidates.items():
        state = known.get(doc_id)
        if state is None:
            work.append(_Work(entry, feed, doc_id, attempts=1, replace=False))
        elif _retryable(state):
            summary.articles["refetch_fallback"] += 1
            work.append(_Work(entry, feed, state.doc_id, state.fetch_attempts + 1, replace=True))
        else:
            summary.articles["already_indexed"] += 1
            saved = states[feed.id].saved_at if feed.id in states else None
            if state.indexed_at is not None and (saved is None or state.indexed_at > saved):
                unsettled.add(state.doc_id)
            if (newer := listed_newer(entry, state)) is not None:
                listed.append(newer)  # fetched again after the new articles (newsmon.updates)
    return work, unsettled


def _settle_stories(
    es: Client,
    names: IndexNames,
    ids: set[str],
    summary: RunSummary,
    events: EventMatcher | None = None,
) -> None:
    """Add articles a stopped run wrote to their story documents again (adding one twice is
    harmless), and their stories to events, so a crash between the article write and the
    story or event update loses nothing."""
    if not ids:
        return
    written = story_members(es, names, sorted(ids))
    summary.articles["stories_settled"] += len(written)
    summary.articles["stories_updated"] += update_stories(es, names, written)
    matcher = events or EventMatcher.for_run()
    summary.articles.update(settle_events(es, names, sorted(ids), matcher))


def _fetch_and_index(
    es: Client,
    names: IndexNames,
    fetcher: Fetcher,
    extractor: Extractor,
    work: Sequence[_Work],
    settings: Settings,
    summary: RunSummary,
    progress: Progress,
) -> set[str]:
    """Fetch, extract and index ``work``; returns the ids (of ``work``) now in the index."""
    if not work:
        return set()
    step = max(1, len(work) // 10)
    writer = _BatchWriter(es, names, summary)
    robots = RobotsCache(fetcher, settings.fetch.max_crawl_delay) if settings.fetch.robots else None
    with ThreadPoolExecutor(settings.fetch.workers, thread_name_prefix="newsmon-page") as pool:
        for n, (item, result, extraction) in enumerate(
            pool.map(lambda w: _fetch_article(fetcher, extractor, w, robots), work), start=1
        ):
            page = extraction.page if extraction else None
            summary.articles[result.outcome.value] += 1
            failed = extraction if extraction and extraction.failed else None
            if page is None:
                summary.articles["fallback"] += 1
                if failed:  # a timeout, crash or memory blow-up: not retried (docs/isolation.md)
                    summary.articles[f"extraction_{failed.outcome.value}"] += 1
                    reason = f"extraction {failed.outcome.value}: {failed.reason}"
                else:
                    if result.ok:
                        summary.articles["extraction_empty"] += 1
                    reason = result.reason or "no article text found"
                summary.problem(f"article {item.entry.url}: {result.outcome.value} ({reason})")
            article = build_article(
                item.entry.url,
                item.entry.canonical_url,
                page,
                entry=item.entry,
                feed=item.feed,
                fetched=result,
                attempts=item.attempts,
                failed=failed,
            )
            writer.add(item, article)
            if n % step == 0 or n == len(work):
                progress(f"articles {n}/{len(work)} fetched")
    writer.flush()
    summary.articles.update(writer.report.counts())
    for doc_id, reason in writer.report.failed.items():
        summary.problem(f"index {doc_id}: {reason}")
    progress(
        f"indexed {len(writer.report.ok)}, duplicates {len(writer.report.conflicts)}, "
        f"failed {len(writer.report.failed)}"
    )
    return writer.done


def _page_key(item: _Work, page_canonical: str | None) -> str | None:
    """The page's own canonical URL when it names another URL of the same site for it."""
    if not page_canonical or item.replace:
        return None
    try:
        key = canonical_url(page_canonical)
    except InvalidURL:
        return None
    entry_key = item.entry.canonical_url
    if key == entry_key or urlsplit(key).path in ("", "/") or not same_site(key, entry_key):
        return None
    return key


Batch = list[tuple["_Work", str, Article]]  # (work, the id to write under, the article)


def _member(doc_id: str, article: Article) -> StoryMember:
    return StoryMember(
        article_id=doc_id,
        story_id=article.story_id,
        title=article.title,
        url=article.url,
        domain=article.domain,
        indexed_at=article.indexed_at.astimezone(UTC).isoformat() if article.indexed_at else None,
    )


class _BatchWriter:
    """Writes articles in batches: boilerplate lines out, story assigned, bulk-created, the
    page's canonical URL honoured, story documents updated."""

    def __init__(self, es: Client, names: IndexNames, summary: RunSummary) -> None:
        self.es, self.names, self.summary = es, names, summary
        self.report = BulkReport()
        self.done: set[str] = set()  # work ids now safely in the index
        self.matcher = StoryMatcher()
        self.events = EventMatcher.for_run()
        self.lines = ElasticsearchLineStore(es, names)
        self.batch: Batch = []

    def add(self, item: _Work, article: Article) -> None:
        key = _page_key(item, article.page_canonical_url)
        keys = tuple(sorted({item.entry.canonical_url, *([key] if key else [])}))
        self.batch.append(
            (item, url_id(key) if key else item.doc_id, replace(article, url_keys=keys))
        )
        if len(self.batch) >= INDEX_BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.batch:
            return
        batch, self.batch = self._clean(self.batch), []
        assigned, counts = assign_stories(
            self.es, self.names, [(i, a) for _w, i, a in batch], self.matcher
        )
        self.summary.articles.update(counts)
        indexed_at = datetime.now(UTC)  # stamped at write time: "new since" for alerts
        batch = [
            (w, i, replace(a, indexed_at=indexed_at))
            for (w, i, _a), a in zip(batch, assigned, strict=True)
        ]
        ops = [("index" if w.replace else "create", i, a) for w, i, a in batch]
        report = write_articles(self.es, self.names, ops)
        ok, conflicts = set(report.ok), set(report.conflicts)
        # Written under the page's canonical URL, which another document holds already.
        moved = [(w, i, a) for w, i, a in batch if i in conflicts and i != w.doc_id]
        merged = self._same_canonical(moved)
        # not the same article after all: index it under its own URL
        retry = [
            (w, replace(a, url_keys=(w.entry.canonical_url,)))
            for w, _i, a in moved
            if w.doc_id not in merged
        ]
        again = write_articles(self.es, self.names, [("create", w.doc_id, a) for w, a in retry])
        report.conflicts = [c for c in report.conflicts if c not in {i for _w, i, _a in moved}]
        report.merge(again)
        stored = self._store_refused(batch, report)
        self.report.merge(report)
        settled = set(again.ok) | set(again.conflicts) | merged | stored
        for w, i, _a in batch:
            if i in ok or (i == w.doc_id and i in conflicts) or w.doc_id in settled:
                self.done.add(w.doc_id)
        written = [_member(i, a) for _w, i, a in batch if i in ok]
        written += [_member(w.doc_id, a) for w, a in retry if w.doc_id in set(again.ok)]
        self.summary.articles["stories_updated"] += update_stories(self.es, self.names, written)
        fresh = [(i, a) for _w, i, a in batch if i in ok]
        fresh += [(w.doc_id, a) for w, a in retry if w.doc_id in set(again.ok)]
        self.summary.articles.update(assign_events(self.es, self.names, fresh, self.events))
        # Already there under their own URL: written by a run that may have stopped before it
        # updated their stories (not yet searchable when this run planned its work).
        there = {i for w, i, _a in batch if i == w.doc_id and i in conflicts}
        there |= {w.doc_id for w, _a in retry if w.doc_id in set(again.conflicts)}
        _settle_stories(self.es, self.names, there, self.summary, self.events)

    def _store_refused(self, batch: Batch, report: BulkReport) -> set[str]:
        """An article Elasticsearch refused for what it is (a value the mapping cannot take, a
        document too large…) would be refused again on every run: store a minimal document
        instead (``extraction: rejected``, the reason in ``index_error``), so its URL counts as
        handled and the reason is searchable; a fallback document being replaced keeps its
        content and gets the reason. Moves those from ``report.failed`` to ``report.rejected``
        and returns their work ids; one refused even so stays failed (its feed is read again)."""
        refused = report.refused()
        creates: list[tuple[str, str, Article]] = []
        updates: dict[str, dict[str, Any]] = {}
        found: dict[str, tuple[_Work, str]] = {}  # work id -> (work, the id that was refused)
        for w, i, article in batch:
            key = i if i in refused else w.doc_id if w.doc_id in refused else None
            if key is None or w.doc_id in found:
                continue
            found[w.doc_id] = (w, key)
            reason = refused[key]
            kind = reason.split(" ", 2)[1].rstrip(":") if " " in reason else ""
            if w.replace:
                updates[w.doc_id] = {
                    "index_error": reason,
                    "index_error_type": kind,
                    "fetch_attempts": w.attempts,
                }
            else:
                minimal = _minimal_article(w, article)
                rejected = replace(minimal, index_error=reason, index_error_type=kind)
                creates.append(("create", w.doc_id, rejected))
        if not found:
            return set()
        written = write_articles(self.es, self.names, creates)
        written.merge(update_articles(self.es, self.names, updates))
        stored = set(written.ok) | set(written.conflicts)
        for doc_id, (w, key) in found.items():
            reason = refused[key]
            if doc_id in stored:
                report.failed.pop(key, None)
                report.retryable.discard(key)
                report.rejected[doc_id] = reason
                self.summary.problem(f"article {w.entry.url}: refused by the index ({reason})")
            else:
                self.summary.problem(
                    f"article {w.entry.url}: refused by the index ({reason}), and so was the "
                    f"document recording that ({written.failed.get(doc_id)})"
                )
        return stored

    def _clean(self, batch: Batch) -> Batch:
        """The batch with each full article's boilerplate lines removed."""
        full = [
            (n, i, a)
            for n, (_w, i, a) in enumerate(batch)
            if a.extraction is ArticleSource.FULL and a.text
        ]
        items = [
            ArticleText(
                i,
                a.domain,
                a.title,
                a.text,
                a.published_at.astimezone(UTC).date() if a.published_at else None,
                a.shapes,
            )
            for _n, i, a in full
        ]
        out = list(batch)
        for (n, _i, a), cleaned in zip(full, clean_batch(self.lines, items), strict=True):
            if cleaned.removed:
                out[n] = (out[n][0], out[n][1], a.with_text(cleaned.text, cleaned.removed))
                self.summary.articles["boilerplate_lines_removed"] += cleaned.removed
        return out

    def _same_canonical(self, moved: Batch) -> set[str]:
        """Pages whose canonical URL is already indexed are that document: add their URL to it,
        when the titles agree (otherwise the canonical is not trusted). Returns the work ids
        merged so."""
        if not moved:
            return set()
        found = articles_by_id(
            self.es, self.names, [i for _w, i, _a in moved], fields=["title", "url_keys"]
        )
        updates: dict[str, list[str]] = {}
        merged: set[str] = set()
        for w, i, article in moved:
            src = found.get(i)
            if src is not None and _same_title(src.get("title"), article.title):
                keys = updates.setdefault(i, list(src.get("url_keys") or []))
                keys += [k for k in article.url_keys if k not in keys]
                merged.add(w.doc_id)
        updated = update_articles(
            self.es, self.names, {i: {"url_keys": sorted(k)} for i, k in updates.items()}
        )
        if updated.failed:
            raise RuntimeError(f"could not add URLs to their canonical documents: {updated.failed}")
        self.summary.articles["same_canonical"] += len(merged)
        return merged


def _minimal_article(work: _Work, article: Article) -> Article:
    """What is kept of an article the index refused: its URLs, feed and title."""
    canonical = work.entry.canonical_url
    title = article.title if isinstance(article.title, str) else work.entry.title
    now = datetime.now(UTC)
    site = domain(canonical)
    return Article(
        url=work.entry.url,
        canonical_url=canonical,
        url_keys=(canonical,),
        domain=site,
        site_name=site,
        title=title[:1000] if title else None,
        text="",
        feed_id=work.feed.id,
        tags=tuple(work.feed.tags),
        extraction=ArticleSource.REJECTED,
        fetch_attempts=work.attempts,
        fetched_at=now,
        indexed_at=now,
    )


def _same_title(a: object, b: object) -> bool:
    def norm(t: object) -> str:
        return " ".join(str(t or "").casefold().split())

    return bool(norm(a)) and norm(a) == norm(b)


def _save_states(
    es: Client,
    names: IndexNames,
    feeds: Iterable[FeedConfig],
    results: Mapping[str, FeedResult],
    states: Mapping[str, FeedState],
    work: Sequence[_Work],
    written: set[str],
    now: datetime | None = None,
) -> None:
    now = now or datetime.now(UTC)
    pending: Counter[str] = Counter(w.feed.id for w in work if w.doc_id not in written)
    new: Counter[str] = Counter(w.feed.id for w in work if w.doc_id in written)
    runs: dict[str, FeedRun] = {}
    for feed in feeds:
        result = results[feed.id]
        previous = states.get(feed.id, FeedState(feed.id))
        ok = result.outcome in (FeedOutcome.FETCHED, FeedOutcome.NOT_MODIFIED)
        # Advance the validators only when everything the feed listed is safely indexed.
        validators = result.validators if ok and not pending[feed.id] else previous.validators
        runs[feed.id] = FeedRun(
            url=feed.url,
            validators=validators,
            outcome=result.outcome.value,
            reason=result.reason,
            status=result.status,
            fetched_at=now,
            last_success_at=now if ok else previous.last_success_at,
            entries=len(result.entries),
            new_articles=new[feed.id],
            health=next_state(previous, result, now),  # failures, failing_since, items per fetch
        )
    report = save_feed_states(es, names, runs)
    if report.failed:
        raise RuntimeError(f"could not store feed state: {report.failed}")
