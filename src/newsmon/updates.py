"""Articles updated in place: fetched again when their feed lists them with a newer date, or when
a periodic re-check of their page (a conditional GET) finds it changed (docs/updates.md).

An update rewrites the article's document where it is (same id, same story, in the backing index
that holds it): its text and the fields rules match, ``version`` one more, ``updated_at`` set.
A page that answers 304, or whose extracted text hashes as before, only has its check recorded.
Re-checks are bounded per article (not more often than ``NEWSMON_RECHECK_AFTER``), by age (only
articles indexed in the last ``NEWSMON_RECHECK_WITHIN``) and per run (``NEWSMON_RECHECK_MAX``).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from .article import Article, ArticleSource
from .config import ConfigError, Settings, parse_duration
from .extract.isolate import Extraction, Extractor
from .extract.page import ExtractedPage
from .sources.feeds import FeedEntry
from .sources.fetch import Fetcher, FetchOutcome, FetchResult, Validators
from .sources.robots import RobotsCache
from .store import Client, IndexNames
from .store.articles import (
    IndexedState,
    load_articles,
    recheck_candidates,
    update_articles,
    write_articles,
)
from .store.client import es_iso
from .store.lines import ElasticsearchLineStore
from .text.boilerplate import ArticleText, clean_batch
from .text.dedup import fingerprint

__all__ = ["Listed", "UpdateSettings", "content_hash", "listed_newer", "update_in_place"]

log = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class UpdateSettings:
    """``NEWSMON_RECHECK_*``; ``clock`` (the time checks are judged and stamped by) for tests."""

    recheck_after: timedelta = timedelta(hours=6)  # an article's page, at most once per this
    recheck_within: timedelta = timedelta(days=3)  # only articles indexed this recently
    recheck_max: int = 50  # pages re-checked per run; 0: no periodic re-checks
    update_max: int = 200  # feed-dated refetches per run (longest-handled first; the rest wait)
    clock: Callable[[], datetime] = _utcnow

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> UpdateSettings:
        env = os.environ if environ is None else environ
        default = cls()

        def duration(name: str, fallback: timedelta) -> timedelta:
            raw = env.get(name, "").strip()
            if not raw:
                return fallback
            try:
                return parse_duration(raw)
            except ValueError as exc:
                raise ConfigError(f"{exc} (got {raw!r})", file="environment", field=name) from None

        def count(name: str, fallback: int) -> int:
            raw = env.get(name, "").strip()
            if raw and not raw.isdigit():
                raise ConfigError(
                    f"must be a whole number (got {raw!r})", file="environment", field=name
                )
            return int(raw) if raw else fallback

        return cls(
            recheck_after=duration("NEWSMON_RECHECK_AFTER", default.recheck_after),
            recheck_within=duration("NEWSMON_RECHECK_WITHIN", default.recheck_within),
            recheck_max=count("NEWSMON_RECHECK_MAX", default.recheck_max),
            update_max=count("NEWSMON_UPDATE_MAX", default.update_max),
        )


@dataclass(frozen=True)
class Listed:
    """An indexed article its feed lists with a later date than the one recorded."""

    doc_id: str  # the document holding it
    url: str  # the link the feed gives now
    date: datetime  # the date it gives
    recorded: datetime  # the date its document records (the last one handled)


def listed_newer(entry: FeedEntry, state: IndexedState) -> Listed | None:
    """Whether the feed now dates ``entry`` later than what the article's document records: the
    feed's date when it was last read, else (a document from before updates) its published date
    when that came from the feed, else when it was indexed."""
    listed = entry.listed_date
    if listed is None:
        return None
    recorded = state.feed_date
    if recorded is None and state.published_at_source == "feed":
        recorded = state.published_at
    recorded = recorded or state.indexed_at
    if recorded is None or listed <= recorded or state.extraction == ArticleSource.REJECTED:
        return None
    return Listed(state.doc_id, entry.url, listed, recorded)


def content_hash(text: str) -> str:
    """What tells a changed page: the hash of its extracted text (not of its bytes, which change
    with every advertisement and timestamp)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class _Job:
    doc_id: str
    article: Article
    url: str
    listed: datetime | None  # a feed-listed update; None: a periodic re-check

    @property
    def kind(self) -> str:
        return "update" if self.listed is not None else "recheck"


def update_in_place(
    es: Client,
    names: IndexNames,
    fetcher: Fetcher,
    extractor: Extractor,
    feed_ids: Sequence[str],
    listed: Sequence[Listed],
    settings: Settings,
    updates: UpdateSettings,
    counts: Counter[str],
    problem: Callable[[str], None],
) -> int:
    """Fetch again the articles ``listed`` with a newer date and up to ``recheck_max`` of the
    feeds ``feed_ids`` due for a re-check (so parallel runs over other feeds never re-check the
    same pages); update those whose page changed. Counts go to ``counts``; returns the number of
    articles updated."""
    now = updates.clock()
    by_id: dict[str, Listed] = {}
    for item in listed:
        if item.doc_id not in by_id or item.date > by_id[item.doc_id].date:
            by_id[item.doc_id] = item
    if len(by_id) > updates.update_max:
        # a feed that dates every entry anew on each fetch must not refetch its whole list every
        # run: those handled longest ago first; the others keep their recorded date and are
        # fetched when the feed next lists them so (or re-checked first)
        waiting = sorted(by_id.values(), key=lambda item: (item.recorded, item.doc_id))
        counts["update_deferred"] += len(waiting) - updates.update_max
        by_id = {item.doc_id: item for item in waiting[: updates.update_max]}
    due = (
        recheck_candidates(
            es,
            names,
            checked_before=now - updates.recheck_after,
            indexed_since=now - updates.recheck_within,
            size=updates.recheck_max,
            feed_ids=feed_ids,
            exclude=by_id,
        )
        if updates.recheck_max > 0
        else []
    )
    if not by_id and not due:
        return 0
    found = load_articles(es, names, [*by_id, *due])
    jobs: list[_Job] = []
    for doc_id, (_index, article) in found.items():
        found_listed = by_id.get(doc_id)
        url, date = (found_listed.url, found_listed.date) if found_listed else (article.url, None)
        jobs.append(_Job(doc_id, article, url, date))
        counts["update_listed" if found_listed else "rechecked"] += 1
    robots = RobotsCache(fetcher, settings.fetch.max_crawl_delay) if settings.fetch.robots else None
    with ThreadPoolExecutor(settings.fetch.workers, thread_name_prefix="newsmon-update") as pool:
        fetched = list(pool.map(lambda job: _fetch(fetcher, extractor, job, robots), jobs))
    changed: list[tuple[_Job, ExtractedPage, FetchResult]] = []
    touched: dict[str, dict[str, Any]] = {}
    checked = es_iso(updates.clock())
    for job, result, extraction in fetched:
        touch: dict[str, Any] = {"checked_at": checked}
        if job.listed is not None:
            touch["feed_date"] = es_iso(job.listed)  # this date is handled, whatever the answer
        page = extraction.page if extraction else None
        if result.outcome is FetchOutcome.NOT_MODIFIED:
            counts[f"{job.kind}_not_modified"] += 1
        elif page is None:
            counts[f"{job.kind}_failed"] += 1
            if job.listed is not None:
                why = result.reason or (extraction.reason if extraction else None) or "no text"
                problem(f"update {job.url}: {result.outcome.value} ({why})")
        elif _unchanged(job.article, page):
            counts[f"{job.kind}_unchanged"] += 1
            touch.update(_validators(result), content_hash=content_hash(page.text))
        else:
            changed.append((job, page, result))
            continue
        touched[job.doc_id] = touch
    done = _write_updates(es, names, changed, updates.clock(), counts, problem)
    written = update_articles(es, names, touched)
    for doc_id, reason in written.failed.items():
        problem(f"update check {doc_id}: not recorded ({reason})")
    if done:
        log.info("updates: %d article(s) updated in place", done)
    return done


def _fetch(
    fetcher: Fetcher, extractor: Extractor, job: _Job, robots: RobotsCache | None
) -> tuple[_Job, FetchResult, Extraction | None]:
    verdict = robots.check(job.url) if robots is not None else None
    if verdict is not None and not verdict.allowed:
        return job, FetchResult(job.url, FetchOutcome.ROBOTS, reason=verdict.reason), None
    previous = Validators(job.article.etag, job.article.last_modified)
    result = fetcher.get_html(
        job.url, previous if previous.etag or previous.last_modified else None
    )
    extraction = None
    if result.ok:
        extraction = extractor.extract(
            result.body, result.final_url or job.url, result.content_type
        )
    return job, result, extraction


def _unchanged(article: Article, page: ExtractedPage) -> bool:
    """Whether the page's text is what the article was indexed from. A document from before
    updates has no hash: its text is compared, unless boilerplate lines were taken out of it
    (then this check only records the hash to compare with next time)."""
    if article.content_hash is not None:
        return article.content_hash == content_hash(page.text)
    return bool(article.boilerplate_removed) or article.text == page.text


def _validators(result: FetchResult) -> dict[str, Any]:
    return {"etag": result.validators.etag, "last_modified": result.validators.last_modified}


def _updated(job: _Job, page: ExtractedPage, result: FetchResult, now: datetime) -> Article:
    old = job.article
    return replace(
        old,
        title=page.title or old.title,
        text=page.text,
        description=page.description or old.description,
        authors=page.authors or old.authors,
        published_at=old.published_at or page.published_at,
        published_at_source=old.published_at_source or ("page" if page.published_at else None),
        language=page.language or old.language,
        image=page.image or old.image,
        page_canonical_url=page.page_canonical_url or old.page_canonical_url,
        final_url=result.final_url or old.final_url,
        extraction=ArticleSource.FULL,
        fetch_outcome=result.outcome.value,
        fetch_reason=None,
        http_status=result.status,
        extraction_error=None,
        extraction_error_reason=None,
        boilerplate_removed=None,
        fetched_at=now,
        checked_at=now,
        updated_at=now,
        version=old.version + 1,
        feed_date=job.listed or old.feed_date,
        etag=result.validators.etag,
        last_modified=result.validators.last_modified,
        content_hash=content_hash(page.text),
    )


def _write_updates(
    es: Client,
    names: IndexNames,
    changed: Sequence[tuple[_Job, ExtractedPage, FetchResult]],
    now: datetime,
    counts: Counter[str],
    problem: Callable[[str], None],
) -> int:
    """Rewrite the changed articles where they are: boilerplate lines out, fingerprints anew, the
    story kept. Returns how many were written."""
    if not changed:
        return 0
    articles = [_updated(job, page, result, now) for job, page, result in changed]
    items = [
        ArticleText(
            job.doc_id,
            a.domain,
            a.title,
            a.text,
            a.published_at.astimezone(UTC).date() if a.published_at else None,
        )
        for (job, _p, _r), a in zip(changed, articles, strict=True)
    ]
    cleaned = clean_batch(ElasticsearchLineStore(es, names), items)
    ops: list[tuple[str, str, Article]] = []
    for (job, _p, _r), article, clean in zip(changed, articles, cleaned, strict=True):
        if clean.removed:
            article = article.with_text(clean.text, clean.removed)
        fp = fingerprint(article.text)
        article = replace(
            article,
            text_hash=fp.text_hash if fp.bands else None,
            lsh_bands=tuple(fp.bands) if fp.bands else (),
        )
        ops.append(("index", job.doc_id, article))
    report = write_articles(es, names, ops)
    counts["updated"] += len(report.ok)
    for doc_id, reason in report.failed.items():
        counts["update_write_failed"] += 1
        problem(f"update {doc_id}: not written ({reason})")
    return len(report.ok)
