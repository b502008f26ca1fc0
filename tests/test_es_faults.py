"""Elasticsearch failing: busy answers, resets, timeouts, refused documents, a killed node.

Faults come from a loopback proxy in front of the real node (tests/helpers/esproxy.py); the
killed node is a separate node of this module's own, never the shared one. Whatever happens, the
end state is every article exactly once, and no feed's validators advance past an article that
is not in the index.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from elasticsearch import ApiError, Elasticsearch

from newsmon.cli import main
from newsmon.config import ConfigError, FeedConfig, Settings
from newsmon.dev import esnode
from newsmon.dev.demo import DemoPage, DemoSite
from newsmon.pipeline import RunSummary, _BatchWriter, _Work, build_article, ingest
from newsmon.sources.feeds import FeedEntry
from newsmon.store import IndexNames, bulk_write, connect, ensure_indices
from newsmon.store.articles import to_document
from newsmon.urls import canonical_url, url_id

from .helpers.esproxy import ESProxy, Fault
from .helpers.paths import REPO
from .helpers.sites import write_feeds

pytestmark = pytest.mark.es

NEWSMON = Path(sys.executable).with_name("newsmon")


def _fast(settings: Settings, url: str, **changes: Any) -> Settings:
    """``settings`` through ``url``, with short waits between retries."""
    return replace(
        settings,
        es_url=url,
        es_retry_backoff=0.05,
        es_retry_backoff_max=0.2,
        **changes,
    )


def _docs(n: int, tag: str) -> list[tuple[str, str, dict[str, Any]]]:
    docs = []
    for k in range(n):
        url = f"https://faults.example/{tag}/{k}"
        source = {
            "url": url,
            "canonical_url": url,
            "url_keys": [url],
            "title": f"Story {k}",
            "text": f"The text of story {k}.",
            "extraction": "full",
        }
        docs.append(("create", url_id(url), source))
    return docs


def _canonical_urls(es: Elasticsearch, names: IndexNames) -> Counter[str]:
    """How many documents hold each canonical URL (and each URL in ``url_keys``)."""
    es.indices.refresh(index=names.articles)
    hits = es.search(index=names.articles, size=2000, source_includes=["canonical_url", "url_keys"])
    found: Counter[str] = Counter()
    for hit in hits["hits"]["hits"]:
        src = hit["_source"]
        assert hit["_id"] == url_id(src["canonical_url"])
        found[src["canonical_url"]] += 1
        for key in set(src.get("url_keys") or []) - {src["canonical_url"]}:
            found[key] += 1
    return found


def _assert_exactly_once(es: Elasticsearch, names: IndexNames, urls: set[str]) -> None:
    found = _canonical_urls(es, names)
    assert set(found) == urls
    assert {u: n for u, n in found.items() if n != 1} == {}


def _bulk_ids(docs: list[tuple[str, str, dict[str, Any]]]) -> set[str]:
    return {i for _op, i, _d in docs}


@pytest.fixture
def proxy(es_url: str) -> Iterator[ESProxy]:
    with ESProxy(es_url) as proxy:
        yield proxy


# --- bulk_write against faults ------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_busy_answer_to_a_whole_bulk_is_retried(
    es: Elasticsearch, settings: Settings, names: IndexNames, proxy: ESProxy, status: int
) -> None:
    proxy.faults.append(Fault(status=status, times=2))
    docs = _docs(30, f"busy-{status}")

    report = bulk_write(connect(_fast(settings, proxy.url)), names.articles, docs)

    assert proxy.injected[f"status {status}"] == 2
    assert set(report.ok) == _bulk_ids(docs) and not report.failed
    _assert_exactly_once(es, names, {d["url"] for _o, _i, d in docs})


def test_bulk_the_node_applied_but_answered_503_ends_as_duplicates(
    es: Elasticsearch, settings: Settings, names: IndexNames, proxy: ESProxy
) -> None:
    proxy.faults.append(Fault(status=503, forward=True))
    docs = _docs(20, "applied-503")

    report = bulk_write(connect(_fast(settings, proxy.url)), names.articles, docs)

    assert proxy.injected["status 503"] == 1
    assert set(report.conflicts) == _bulk_ids(docs)  # the retry found them all written
    assert not report.ok and not report.failed
    _assert_exactly_once(es, names, {d["url"] for _o, _i, d in docs})


@pytest.mark.parametrize("forward", [False, True], ids=["before-node", "after-node"])
def test_connection_reset_is_retried(
    es: Elasticsearch, settings: Settings, names: IndexNames, proxy: ESProxy, forward: bool
) -> None:
    proxy.faults.append(Fault(reset=True, forward=forward))
    docs = _docs(20, f"reset-{forward}")

    report = bulk_write(connect(_fast(settings, proxy.url)), names.articles, docs)

    assert proxy.injected["reset"] == 1
    assert set(report.ok) | set(report.conflicts) == _bulk_ids(docs) and not report.failed
    assert (set(report.conflicts) == _bulk_ids(docs)) is forward
    _assert_exactly_once(es, names, {d["url"] for _o, _i, d in docs})


def test_timeout_is_retried(
    es: Elasticsearch, settings: Settings, names: IndexNames, proxy: ESProxy
) -> None:
    # the node gets the first request late, after the client gave up on it and retried
    proxy.faults.append(Fault(delay=2.0, forward=True))
    docs = _docs(20, "timeout")

    client = connect(_fast(settings, proxy.url, es_timeout=0.5))
    report = bulk_write(client, names.articles, docs)

    assert set(report.ok) | set(report.conflicts) == _bulk_ids(docs) and not report.failed
    for _ in range(50):  # let the late request reach the node too
        if proxy.injected["delay 2s"]:
            break
        time.sleep(0.1)
    time.sleep(0.5)
    _assert_exactly_once(es, names, {d["url"] for _o, _i, d in docs})


@pytest.mark.parametrize("forward", [False, True], ids=["not-forwarded", "written-then-429"])
def test_items_rejected_with_429_are_retried(
    es: Elasticsearch, settings: Settings, names: IndexNames, proxy: ESProxy, forward: bool
) -> None:
    docs = _docs(40, f"items-{forward}")
    every_third = {i for n, (_o, i, _d) in enumerate(docs) if n % 3 == 0}
    proxy.faults.append(
        Fault(
            item_status=429,
            items=lambda _op, meta, _src: meta["_id"] in every_third,
            items_forward=forward,
            times=2,
        )
    )

    report = bulk_write(connect(_fast(settings, proxy.url)), names.articles, docs)

    # first attempt: all 40 items, 14 refused; second: those 14 again, refused again; third: ok
    assert proxy.bulk_requests() == 3
    label = "item 429 after forwarding" if forward else "item 429"
    assert proxy.injected[label] == 2 * len(every_third)
    assert not report.failed
    if forward:  # the node wrote them the first time: the retry finds them there
        assert set(report.conflicts) == every_third
        assert set(report.ok) == _bulk_ids(docs) - every_third
    else:
        assert set(report.ok) == _bulk_ids(docs) and not report.conflicts
    _assert_exactly_once(es, names, {d["url"] for _o, _i, d in docs})


def test_busy_items_wait_longer_each_time_up_to_the_cap(
    es: Elasticsearch,
    settings: Settings,
    names: IndexNames,
    proxy: ESProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: list[float] = []

    clock = SimpleNamespace(sleep=waits.append, time=time.time, monotonic=time.monotonic)
    monkeypatch.setattr("elasticsearch.helpers.actions.time", clock)
    proxy.faults.append(Fault(item_status=429, times=4))
    docs = _docs(5, "backoff")
    client = connect(
        replace(
            settings,
            es_url=proxy.url,
            es_max_retries=5,
            es_retry_backoff=0.01,
            es_retry_backoff_max=0.03,
        )
    )

    report = bulk_write(client, names.articles, docs)

    assert waits == [0.01, 0.02, 0.03, 0.03]  # doubled each time, never above the cap
    assert set(report.ok) == _bulk_ids(docs)
    _assert_exactly_once(es, names, {d["url"] for _o, _i, d in docs})


@pytest.mark.parametrize("status", [429, 503])
def test_busy_answers_to_any_request_are_retried_after_a_growing_wait(
    es: Elasticsearch,
    settings: Settings,
    names: IndexNames,
    proxy: ESProxy,
    monkeypatch: pytest.MonkeyPatch,
    status: int,
) -> None:
    waits: list[float] = []
    clock = SimpleNamespace(sleep=waits.append, time=time.time, monotonic=time.monotonic)
    monkeypatch.setattr("newsmon.store.client.time", clock)
    docs = _docs(3, f"search-busy-{status}")
    bulk_write(es, names.articles, docs, refresh=True)
    proxy.faults.append(Fault(path=r"/_search\b", status=status, times=3))
    client = connect(_fast(settings, proxy.url, es_max_retries=4))

    found = client.search(index=names.articles, query={"match_all": {}})

    assert proxy.injected[f"status {status}"] == 3
    assert found["hits"]["total"]["value"] == 3
    assert waits == [0.05, 0.1, 0.2]  # doubled after each busy answer in a row, up to the cap
    waits.clear()
    client.search(index=names.articles, query={"match_all": {}})
    assert waits == []  # an answer that is not busy ends the streak

    proxy.faults.append(Fault(path=r"/_search\b", status=status, times=5))
    with pytest.raises(ApiError) as raised:
        client.search(index=names.articles, query={"match_all": {}})
    assert raised.value.status_code == status
    assert waits == [0.05, 0.1, 0.2, 0.2]  # 4 retries; no wait after the last answer


@pytest.mark.parametrize(("status", "requests"), [(429, 3), (500, 1)])
def test_items_still_busy_after_every_retry_are_reported_retryable(
    es: Elasticsearch,
    settings: Settings,
    names: IndexNames,
    proxy: ESProxy,
    status: int,
    requests: int,
) -> None:
    docs = _docs(10, f"busy-items-{status}")
    stuck = docs[4][1]
    proxy.faults.append(
        Fault(item_status=status, items=lambda _op, meta, _src: meta["_id"] == stuck, times=100)
    )

    client = connect(_fast(settings, proxy.url, es_max_retries=2))
    report = bulk_write(client, names.articles, docs)

    # 429: the first attempt and 2 retries; 500 is not retried at once, but not final either
    assert proxy.bulk_requests() == requests
    assert set(report.failed) == {stuck} and report.retryable == {stuck}
    assert report.failed[stuck].startswith(f"{status} ")
    assert report.refused() == {}
    assert report.counts()["index_failed"] == 1
    _assert_exactly_once(es, names, {d["url"] for _o, i, d in docs if i != stuck})


def test_bulk_busy_after_every_retry_raises(
    settings: Settings, names: IndexNames, proxy: ESProxy
) -> None:
    proxy.faults.append(Fault(status=503, times=1000))
    client = connect(_fast(settings, proxy.url, es_max_retries=1))

    with pytest.raises(ApiError) as raised:
        bulk_write(client, names.articles, _docs(3, "down"))

    assert raised.value.status_code == 503
    # the transport tried twice, and the bulk helper twice: 4 requests, then it gave up
    assert proxy.bulk_requests() == 4


def test_retry_settings_come_from_the_environment() -> None:
    env = {
        "NEWSMON_ES_URL": "http://127.0.0.1:9",
        "NEWSMON_ES_MAX_RETRIES": "0",
        "NEWSMON_ES_TIMEOUT": "2.5",
        "NEWSMON_ES_RETRY_BACKOFF": "0.25",
        "NEWSMON_ES_RETRY_BACKOFF_MAX": "4",
    }
    settings = Settings.from_env(env)
    assert (settings.es_max_retries, settings.es_timeout) == (0, 2.5)
    assert (settings.es_retry_backoff, settings.es_retry_backoff_max) == (0.25, 4.0)
    assert Settings.from_env({"NEWSMON_ES_URL": "http://127.0.0.1:9"}).es_max_retries == 3
    with pytest.raises(ConfigError, match="NEWSMON_ES_MAX_RETRIES"):
        Settings.from_env({**env, "NEWSMON_ES_MAX_RETRIES": "-1"})
    with pytest.raises(ConfigError, match="NEWSMON_ES_RETRY_BACKOFF"):
        Settings.from_env({**env, "NEWSMON_ES_RETRY_BACKOFF": "soon"})


# --- ingest against faults ----------------------------------------------------------------------


def _feed_urls(site: DemoSite) -> dict[str, set[str]]:
    """feed id -> canonical URLs of the articles it lists."""
    count = len(site.feed_names)
    return {
        f"demo-{name}": {canonical_url(site.url_of(p)) for p in site.pages[n::count]}
        for n, name in enumerate(site.feed_names)
    }


def _advanced(es: Elasticsearch, names: IndexNames) -> set[str]:
    """The feeds whose conditional-GET validators are stored."""
    es.indices.refresh(index=names.feeds)
    hits = es.search(index=names.feeds, size=100)["hits"]["hits"]
    return {h["_id"] for h in hits if h["_source"].get("etag") or h["_source"].get("last_modified")}


def _assert_validators_honest(es: Elasticsearch, names: IndexNames, site: DemoSite) -> set[str]:
    """No feed is marked done while one of its articles is missing from the index."""
    indexed = set(_canonical_urls(es, names))
    advanced = _advanced(es, names)
    for feed_id in advanced:
        assert _feed_urls(site)[feed_id] <= indexed, f"{feed_id} advanced with articles missing"
    return advanced


@pytest.fixture
def small_site(news_pages: list[DemoPage]) -> Iterator[DemoSite]:
    with DemoSite(news_pages[:24], feed_count=3) as site:
        yield site


def test_ingest_through_busy_and_failing_elasticsearch_indexes_everything_once(
    es: Elasticsearch, settings: Settings, small_site: DemoSite, proxy: ESProxy
) -> None:
    feeds = write_feeds(small_site, settings)
    names = IndexNames(settings.index_prefix)
    articles = f'"_index":"{names.articles}'
    proxy.faults += [
        Fault(path=r"/_search\b", status=429, times=2),  # which articles are known already
        Fault(path=r"/_mget\b", status=503),  # the feeds' states
        Fault(body_contains=articles, reset=True),  # the first article bulk: connection reset
        Fault(body_contains=articles, status=503, forward=True),  # written, but 503
        Fault(
            body_contains=articles,
            item_status=429,
            items=lambda _op, meta, _src: int(meta["_id"], 16) % 3 == 0,
            items_forward=True,
            times=1,
        ),
        Fault(body_contains=articles, item_status=429, times=1),  # every item, not forwarded
    ]
    urls = set().union(*_feed_urls(small_site).values())

    summary = ingest(feeds, _fast(settings, proxy.url))

    assert [f.fired for f in proxy.faults] == [f.times for f in proxy.faults]
    assert summary.articles["index_failed"] == 0
    assert summary.articles["indexed"] + summary.articles["duplicate"] == len(urls)
    _assert_exactly_once(es, names, urls)
    assert _assert_validators_honest(es, names, small_site) == {f.id for f in feeds}

    again = ingest(feeds, _fast(settings, proxy.url))

    assert again.feeds["not_modified"] == 3 and again.articles["indexed"] == 0
    _assert_exactly_once(es, names, urls)


def test_article_still_refused_as_busy_holds_back_only_its_feed(
    es: Elasticsearch, settings: Settings, small_site: DemoSite, proxy: ESProxy
) -> None:
    feeds = write_feeds(small_site, settings)
    names = IndexNames(settings.index_prefix)
    stuck = small_site.url_of(small_site.pages[0])  # listed by feed1
    proxy.faults.append(
        Fault(
            item_status=429,
            items=lambda _op, _meta, src: bool(src) and src.get("url") == stuck,
            times=1000,
        )
    )
    urls = set().union(*_feed_urls(small_site).values())

    first = ingest(feeds, _fast(settings, proxy.url, es_max_retries=1))

    assert first.articles["index_failed"] == 1
    assert any("es_rejected_execution_exception" in p for p in first.problems)
    _assert_exactly_once(es, names, urls - {canonical_url(stuck)})
    assert _assert_validators_honest(es, names, small_site) == {"demo-feed2", "demo-feed3"}

    proxy.faults.clear()
    second = ingest(feeds, _fast(settings, proxy.url))

    assert second.articles["indexed"] == 1
    assert second.feeds["fetched"] == 1 and second.feeds["not_modified"] == 2
    _assert_exactly_once(es, names, urls)
    assert _assert_validators_honest(es, names, small_site) == {f.id for f in feeds}


def test_run_command_fails_cleanly_when_elasticsearch_stays_unavailable(
    es: Elasticsearch,
    settings: Settings,
    news_pages: list[DemoPage],
    proxy: ESProxy,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    proxy.faults.append(Fault(status=503, times=1000))
    names = IndexNames(settings.index_prefix)
    with DemoSite(news_pages[:3], feed_count=1) as site:
        feeds_file = Path(settings.feeds_file)
        feeds_file.write_text(site.feeds_yaml())
        for key, value in {
            "NEWSMON_ES_URL": proxy.url,
            "NEWSMON_INDEX_PREFIX": settings.index_prefix,
            "NEWSMON_FETCH_ALLOW": "127.0.0.0/8",
            "NEWSMON_ES_MAX_RETRIES": "1",
            "NEWSMON_ES_RETRY_BACKOFF": "0.05",
        }.items():
            monkeypatch.setenv(key, value)

        code = main(["run", "--feeds", str(feeds_file)])

    err = capsys.readouterr().err
    assert code == 3
    assert "Elasticsearch answered 503 after every retry" in err
    assert _advanced(es, names) == set()


# --- documents the index refuses ----------------------------------------------------------------


def _work(url: str, feed: FeedConfig, *, replace_doc: bool = False, attempts: int = 1) -> _Work:
    canonical = canonical_url(url)
    entry = FeedEntry(url, canonical, f"Title of {url}", "The feed's summary.", None)
    return _Work(entry, feed, url_id(canonical), attempts=attempts, replace=replace_doc)


def test_document_the_mapping_refuses_is_stored_minimal_with_the_reason(
    es: Elasticsearch, settings: Settings, names: IndexNames
) -> None:
    feed = FeedConfig(
        id="refusals", name="Refusals", url="https://faults.example/feed", tags=("x",)
    )
    good = _work("https://faults.example/a/good", feed)
    bad = _work("https://faults.example/a/bad-date", feed)
    fallback = _work("https://faults.example/a/was-fallback", feed, replace_doc=True, attempts=2)
    es.index(
        index=names.articles,
        id=fallback.doc_id,
        document=to_document(
            build_article(
                fallback.entry.url,
                fallback.entry.canonical_url,
                None,
                entry=fallback.entry,
                feed=feed,
            )
        ),
        refresh=True,
    )
    summary = RunSummary()
    writer = _BatchWriter(es, names, summary)
    for work in (good, bad, fallback):
        article = build_article(work.entry.url, work.entry.canonical_url, None, entry=work.entry)
        article = replace(article, feed_id=feed.id)
        if work is not good:  # not a date: refused by the mapping
            article = replace(article, published_at="the day before yesterday")  # type: ignore[arg-type]
        writer.add(work, article)

    writer.flush()

    assert writer.done == {good.doc_id, bad.doc_id, fallback.doc_id}
    assert set(writer.report.ok) == {good.doc_id}
    assert set(writer.report.rejected) == {bad.doc_id, fallback.doc_id}
    assert writer.report.failed == {}
    assert writer.report.counts()["index_rejected"] == 2
    assert any(bad.entry.url in p and "published_at" in p for p in summary.problems)
    stored = es.get(index=names.articles, id=bad.doc_id)["_source"]
    assert stored["extraction"] == "rejected"
    assert stored["url"] == bad.entry.url and stored["canonical_url"] == bad.entry.canonical_url
    assert stored["url_keys"] == [bad.entry.canonical_url]
    assert stored["title"] == bad.entry.title and stored["feed_id"] == "refusals"
    assert "published_at" in stored["index_error"] and stored["index_error_type"]
    assert "text" not in stored and "published_at" not in stored
    # the fallback document it was to replace keeps its content, and gets the reason
    kept = es.get(index=names.articles, id=fallback.doc_id)["_source"]
    assert kept["extraction"] == "feed_fallback" and kept["text"] == "The feed's summary."
    assert kept["fetch_attempts"] == 2 and "published_at" in kept["index_error"]
    es.indices.refresh(index=names.articles)
    found = es.search(index=names.articles, query={"match": {"index_error": "published_at"}})
    assert {h["_id"] for h in found["hits"]["hits"]} == {bad.doc_id, fallback.doc_id}
    by_type = es.count(
        index=names.articles, query={"term": {"index_error_type": stored["index_error_type"]}}
    )
    assert by_type["count"] == 2


def test_ingest_stores_refused_articles_and_advances_their_feeds(
    es: Elasticsearch, settings: Settings, small_site: DemoSite, proxy: ESProxy
) -> None:
    feeds = write_feeds(small_site, settings)
    names = IndexNames(settings.index_prefix)
    refused = {small_site.url_of(small_site.pages[n]) for n in (0, 4)}
    proxy.faults.append(
        Fault(
            item_status=400,
            items=lambda _op, _meta, src: (
                bool(src) and src.get("url") in refused and src.get("extraction") != "rejected"
            ),
            times=1000,
        )
    )
    urls = set().union(*_feed_urls(small_site).values())

    first = ingest(feeds, _fast(settings, proxy.url))

    assert first.articles["index_rejected"] == 2 and first.articles["index_failed"] == 0
    assert first.articles["indexed"] == len(urls) - 2
    _assert_exactly_once(es, names, urls)
    assert _assert_validators_honest(es, names, small_site) == {f.id for f in feeds}
    es.indices.refresh(index=names.articles)
    rejected = es.search(index=names.articles, query={"term": {"extraction": "rejected"}})
    hits = rejected["hits"]["hits"]
    assert {h["_source"]["url"] for h in hits} == refused
    assert all(h["_source"]["index_error_type"] == "document_parsing_exception" for h in hits)

    second = ingest(feeds, _fast(settings, proxy.url))

    assert second.feeds["not_modified"] == 3
    assert second.articles["indexed"] == 0 and second.articles["index_rejected"] == 0


def test_refused_article_whose_record_is_refused_too_holds_back_its_feed(
    es: Elasticsearch, settings: Settings, small_site: DemoSite, proxy: ESProxy
) -> None:
    feeds = write_feeds(small_site, settings)
    names = IndexNames(settings.index_prefix)
    refused = small_site.url_of(small_site.pages[2])  # listed by feed3
    proxy.faults.append(
        Fault(
            item_status=400,
            items=lambda _op, _meta, src: bool(src) and src.get("url") == refused,
            times=1000,
        )
    )
    urls = set().union(*_feed_urls(small_site).values())

    summary = ingest(feeds, _fast(settings, proxy.url))

    assert summary.articles["index_failed"] == 1 and summary.articles["index_rejected"] == 0
    assert any(refused in p and "and so was" in p for p in summary.problems)
    _assert_exactly_once(es, names, urls - {canonical_url(refused)})
    assert _assert_validators_honest(es, names, small_site) == {"demo-feed1", "demo-feed2"}


def test_new_fields_are_added_to_an_index_made_from_an_older_template(
    es: Elasticsearch, settings: Settings, tmp_path: Path
) -> None:
    old = tmp_path / "config"
    shutil.copytree(REPO / "config", old)
    template_file = old / "elasticsearch" / "articles.template.json"
    template = json.loads(template_file.read_text())
    template["version"] = 3
    for name in ("index_error", "index_error_type"):
        del template["template"]["mappings"]["properties"][name]
    template_file.write_text(json.dumps(template))
    names = IndexNames(settings.index_prefix)
    ensure_indices(es, names, old)
    before = es.indices.get_mapping(index=names.articles)
    assert all("index_error" not in m["mappings"]["properties"] for m in before.values())

    report = ensure_indices(es, names, settings.config_dir)

    current = json.loads((REPO / "config" / "elasticsearch" / "articles.template.json").read_text())
    assert report.templates["articles"] == current["version"]
    after = es.indices.get_mapping(index=names.articles)
    for mapping in after.values():
        props = mapping["mappings"]["properties"]
        assert props["index_error"]["type"] == "text"
        assert props["index_error_type"]["type"] == "keyword"


# --- a node killed in the middle of a bulk load -------------------------------------------------


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _cache_root(root: Path) -> Iterator[None]:
    """esnode reads its cache root (and so which node it manages) from NEWSMON_CACHE_DIR."""
    old = os.environ.get("NEWSMON_CACHE_DIR")
    os.environ["NEWSMON_CACHE_DIR"] = str(root)
    try:
        yield
    finally:
        if old is None:
            del os.environ["NEWSMON_CACHE_DIR"]
        else:
            os.environ["NEWSMON_CACHE_DIR"] = old


@dataclass
class OwnNode:
    """A node of this module's own, in its own cache root: it may be killed."""

    root: Path
    url: str = ""
    pid: int = 0

    def start(self) -> str:
        with _cache_root(self.root):
            self.url = esnode.up(progress=_say)
            status = esnode.status()
        assert status.pid is not None and status.url == self.url
        self.pid = status.pid
        return self.url

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)

    def stop(self) -> None:
        with _cache_root(self.root):
            esnode.down()


@pytest.fixture(scope="module")
def own_node() -> Iterator[OwnNode]:
    shared_root = esnode._cache_root()  # the shared node's: never touched here
    root = Path(
        os.environ.get("NEWSMON_FAULTS_CACHE_DIR") or shared_root.with_name("newsmon-faults-node")
    )
    assert root != shared_root
    node = OwnNode(root)
    node.stop()  # one an interrupted run left behind
    shutil.rmtree(root / "node" / "data", ignore_errors=True)
    node.start()
    yield node
    node.kill()  # its data is thrown away anyway
    node.stop()


def _run(settings: Settings, es_url: str, feeds_file: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")}
    env.update(
        NEWSMON_ES_URL=es_url,
        NEWSMON_INDEX_PREFIX=settings.index_prefix,
        NEWSMON_CONFIG_DIR=settings.config_dir,
        NEWSMON_FETCH_ALLOW="127.0.0.0/8",
        NEWSMON_ES_MAX_RETRIES="2",
        NEWSMON_ES_RETRY_BACKOFF="0.2",
        NEWSMON_ES_RETRY_BACKOFF_MAX="1",
    )
    return subprocess.run(
        [str(NEWSMON), "run", "--quiet", "--feeds", str(feeds_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.mark.slow
def test_node_killed_during_bulk_load_then_rerun_reaches_the_clean_end_state(
    es: Elasticsearch, settings: Settings, news_site: DemoSite, own_node: OwnNode
) -> None:
    feeds_file = Path(settings.feeds_file)
    feeds = write_feeds(news_site, settings)
    names = IndexNames(settings.index_prefix)
    # the reference: a clean run of the same site on the shared node
    reference = replace(settings, index_prefix=f"{settings.index_prefix}ref-")
    ingest(feeds, reference)
    expected = set(_canonical_urls(es, IndexNames(reference.index_prefix)))
    assert len(expected) == len(news_site.pages)

    own = replace(settings, es_url=own_node.url)
    killed = Fault(body_contains=f'"_index":"{names.articles}', skip=1, hook=own_node.kill)
    with ESProxy(own_node.url, faults=[killed]) as proxy:
        crashed = _run(own, proxy.url, feeds_file)

    assert killed.fired == 1  # the second article bulk was on its way when the node died
    assert crashed.returncode == 3, crashed.stderr
    assert "is not reachable" in crashed.stderr and "Traceback" not in crashed.stderr

    client = connect(replace(own, es_url=own_node.start()))
    survived = _canonical_urls(client, names)
    assert len(survived) >= 100  # the first bulk (acknowledged) is there after the restart
    assert max(survived.values()) == 1
    assert _assert_validators_honest(client, names, news_site) == set()  # died before saving

    rerun = _run(own, own_node.url, feeds_file)

    assert rerun.returncode == 0, rerun.stderr
    _assert_exactly_once(client, names, expected)
    assert _assert_validators_honest(client, names, news_site) == {f.id for f in feeds}
    third = ingest(feeds, replace(own, es_url=own_node.url))
    assert third.feeds["not_modified"] == 3 and third.articles["indexed"] == 0
    _assert_exactly_once(client, names, expected)
