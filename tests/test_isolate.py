"""Extraction in worker processes: pathological pages, hangs, crashes, memory blow-ups."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from elasticsearch import Elasticsearch

from newsmon.config import ConfigError, ExtractSettings, Settings, load_feeds
from newsmon.dev.demo import DemoPage, DemoSite
from newsmon.extract.isolate import (
    ExtractionOutcome,
    ExtractionPool,
    InProcessExtractor,
    open_extractor,
)
from newsmon.extract.page import extract_page
from newsmon.pipeline import ingest
from newsmon.store import IndexNames
from newsmon.urls import canonical_url, url_id

from .helpers import extract_faults
from .helpers.extract_faults import FaultyPages, UntilHung, by_marker, worker_pid
from .helpers.paths import REPO

PARAGRAPH = (
    "<p>The council approved the new budget after a long debate about schools and roads, "
    "and the mayor said the vote settled a question the city had argued over for years.</p>"
)
NORMAL = b"<html><body><article>" + PARAGRAPH.encode() * 3 + b"</article></body></html>"


def _settings(**changes: object) -> ExtractSettings:
    values: dict[str, object] = {"timeout": 5.0, "memory_mb": 512, "workers": 2}
    values.update(changes)
    return ExtractSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def hung(tmp_path: Path) -> UntilHung:
    """The pools' wait here: a page takes as long as it takes; a page that says it hangs
    times out at once. So no outcome depends on the machine's speed (one test below uses the
    real timer, on a page that never answers)."""
    flags = tmp_path / "hung"
    flags.mkdir()
    return UntilHung(flags)


@pytest.fixture
def pool(hung: UntilHung) -> Iterator[ExtractionPool]:
    with ExtractionPool(_settings(), target=by_marker, wait=hung) as p:
        yield p


def _gone(pid: int) -> bool:
    """The process has exited (reaped, or a zombie waiting for its parent to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _wait_gone(pids: list[int], seconds: float = 10.0) -> list[int]:
    """The pids still running after waiting up to ``seconds`` for them to exit."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if not _gone(pid)]
        if not alive:
            return []
        time.sleep(0.05)
    return [pid for pid in pids if not _gone(pid)]


def _pid_of(pool: ExtractionPool) -> int:
    result = pool.extract(NORMAL, "https://example.com/ok")
    assert result.outcome is ExtractionOutcome.OK and result.page is not None
    return worker_pid(result.page.text)


# --- real pages, real pathological pages -----------------------------------------------------


def test_pool_extracts_real_pages_exactly_as_in_process(
    news_pages: list[DemoPage], hung: UntilHung
) -> None:
    with ExtractionPool(_settings(), wait=hung) as pool:
        for page in news_pages[:4]:
            expected = extract_page(page.html, page.original_url)
            result = pool.extract(page.html, page.original_url)
            assert result.outcome is ExtractionOutcome.OK
            assert result.page == expected


def _deeply_nested(depth: int) -> bytes:
    return b"<html><body>" + b"<div>" * depth + PARAGRAPH.encode() * 5 + b"</div>" * depth


def _broken_markup() -> bytes:
    return (
        b"<html><body><article><h1>Broken <b>markup</h1><p>Unclosed <i>italic "
        + PARAGRAPH.encode()[3:] * 4
        + b"<div><p><table><tr><td>cell<p>"
        + b"</div>" * 50
        + b"\x00\xff\xfe <<<>>> &#xFFFFFFFF; <![CDATA[ <p>"
        + PARAGRAPH.encode()
        + b"</td></span></html></html>"
    )


@pytest.mark.parametrize(
    "body",
    [_deeply_nested(100_000), _broken_markup()],
    ids=["100k-nested-divs", "broken-markup"],
)
def test_pathological_pages_get_the_in_process_result(body: bytes, hung: UntilHung) -> None:
    expected = extract_page(body, "https://example.com/patho")
    with ExtractionPool(_settings(memory_mb=1024), wait=hung) as pool:
        result = pool.extract(body, "https://example.com/patho")
        assert not result.failed, result
        assert result.page == expected
        assert result.outcome is (
            ExtractionOutcome.OK if expected is not None else ExtractionOutcome.EMPTY
        )
        assert pool.extract(NORMAL, "https://example.com/ok").outcome is ExtractionOutcome.OK


def test_broken_markup_keeps_the_article_text(hung: UntilHung) -> None:
    with ExtractionPool(_settings(), wait=hung) as pool:
        result = pool.extract(_broken_markup(), "https://example.com/broken")
    assert result.page is not None
    assert "the mayor said the vote settled a question" in result.page.text


def test_giant_page_beyond_the_memory_limit_is_recorded_and_the_pool_goes_on(
    hung: UntilHung,
) -> None:
    giant = (
        b"<html><head><title>Giant</title></head><body><article><h1>Giant</h1>"
        + PARAGRAPH.encode() * 150_000  # ~30 MB
        + b"</article></body></html>"
    )
    assert len(giant) > 25_000_000
    with ExtractionPool(_settings(memory_mb=256, workers=1), wait=hung) as pool:
        result = pool.extract(giant, "https://example.com/giant")
        assert result.outcome is ExtractionOutcome.MEMORY
        assert result.page is None and result.reason == "MemoryError"
        after = pool.extract(NORMAL, "https://example.com/ok")
        assert after.outcome is ExtractionOutcome.OK


def test_a_page_too_large_to_receive_is_a_memory_outcome_too(hung: UntilHung) -> None:
    """A page the worker cannot even receive within its limit (the buffer alone is larger) is
    recorded as out of memory, not as a crash, and the next page gets a fresh worker."""
    with ExtractionPool(_settings(memory_mb=256, workers=1), wait=hung) as pool:
        result = pool.extract(b"<p>" + b"x" * 400_000_000, "https://example.com/huge")
        assert (result.outcome, result.reason) == (ExtractionOutcome.MEMORY, "MemoryError")
        after = pool.extract(NORMAL, "https://example.com/ok")
        assert after.outcome is ExtractionOutcome.OK


def test_what_a_worker_logs_is_logged_in_the_parent(
    caplog: pytest.LogCaptureFixture, hung: UntilHung
) -> None:
    caplog.set_level(logging.INFO)  # workers log at the parent's level when they start
    with ExtractionPool(_settings(), wait=hung) as pool:
        result = pool.extract(b"   ", "https://example.com/blank")
    assert result.outcome is ExtractionOutcome.EMPTY
    [record] = [r for r in caplog.records if r.name == "newsmon.extract.page"]
    assert record.levelno == logging.INFO
    assert record.getMessage() == "no HTML document to extract from: https://example.com/blank"


# --- injected misbehaviour ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("marker", "outcome", "reason", "replaced"),
    [
        (extract_faults.HANG, ExtractionOutcome.TIMEOUT, "no result after 5s", True),
        (extract_faults.SEGFAULT, ExtractionOutcome.CRASHED, "SIGSEGV", True),
        (extract_faults.MEMORY, ExtractionOutcome.MEMORY, "MemoryError", True),
        (
            extract_faults.EXIT,
            ExtractionOutcome.CRASHED,
            f"exit code {extract_faults.EXIT_CODE}",
            True,
        ),
        (extract_faults.RAISE, ExtractionOutcome.ERROR, "ValueError: cannot handle", False),
    ],
    ids=["hang", "segfault", "memory", "exit", "exception"],
)
def test_misbehaving_extraction_is_recorded_and_the_pool_keeps_serving(
    marker: bytes, outcome: ExtractionOutcome, reason: str, replaced: bool, hung: UntilHung
) -> None:
    marker = hung.marker if marker == extract_faults.HANG else marker  # hangs, saying so
    with ExtractionPool(_settings(memory_mb=256, workers=1), by_marker, wait=hung) as pool:
        before = _pid_of(pool)
        result = pool.extract(NORMAL + marker, "https://example.com/bad")
        assert result.outcome is outcome
        assert result.failed and result.page is None
        assert result.reason is not None and result.reason.startswith(reason)
        after = _pid_of(pool)
        assert (after != before) is replaced
        if replaced:
            assert _wait_gone([before]) == []
        assert pool.extract(NORMAL, "https://example.com/ok2").outcome is ExtractionOutcome.OK


def test_the_real_timer_ends_a_page_that_never_answers() -> None:
    """The pool's own wait (``settings.timeout`` of wall-clock time): a page that never answers
    can only end as a timeout, however slow the machine; its worker is killed, not kept."""
    with ExtractionPool(_settings(timeout=0.2, workers=1), by_marker) as pool:
        result = pool.extract(NORMAL + extract_faults.HANG, "https://example.com/hang")
        assert result.outcome is ExtractionOutcome.TIMEOUT
        assert result.reason == "no result after 0.2s"
        assert pool.worker_pids() == []


def test_an_idle_worker_killed_from_outside_costs_no_page(pool: ExtractionPool) -> None:
    victim = _pid_of(pool)
    os.kill(victim, signal.SIGKILL)
    assert _wait_gone([victim]) == []
    assert _pid_of(pool) != victim  # a fresh worker took the page, which did not "crash"


def test_threads_share_the_pool_and_a_hang_holds_only_its_own_worker(hung: UntilHung) -> None:
    settings = _settings(workers=2)
    results: dict[int, ExtractionOutcome] = {}
    with ExtractionPool(settings, by_marker, wait=hung) as pool:

        def run(n: int) -> None:
            body = NORMAL + (hung.marker if n == 0 else b"")
            results[n] = pool.extract(body, f"https://example.com/{n}").outcome

        threads = [threading.Thread(target=run, args=(n,)) for n in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert len(pool.worker_pids()) <= settings.workers
    assert results[0] is ExtractionOutcome.TIMEOUT
    assert [results[n] for n in range(1, 12)] == [ExtractionOutcome.OK] * 11


def test_workers_are_recycled_after_their_page_budget(hung: UntilHung) -> None:
    with ExtractionPool(_settings(workers=1, pages_per_worker=3), by_marker, wait=hung) as pool:
        pids = [_pid_of(pool) for _ in range(7)]
    assert pids[0] == pids[1] == pids[2]
    assert pids[3] == pids[4] == pids[5] != pids[0]
    assert pids[6] not in (pids[0], pids[3])
    assert _wait_gone(pids) == []


def test_close_stops_every_worker_and_refuses_more_work(hung: UntilHung) -> None:
    pool = ExtractionPool(_settings(workers=2), by_marker, wait=hung)  # HANG: silent, no timeout
    hanging: dict[str, ExtractionOutcome] = {}

    def hang() -> None:
        hanging["outcome"] = pool.extract(
            NORMAL + extract_faults.HANG, "https://example.com/h"
        ).outcome

    thread = threading.Thread(target=hang)
    thread.start()
    deadline = time.monotonic() + extract_faults.NEVER  # only a broken pool waits this long
    while not pool.worker_pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    idle = _pid_of(pool)  # a second worker: the first one is busy hanging
    pids = pool.worker_pids()
    assert idle in pids and len(pids) == 2

    pool.close()
    thread.join(extract_faults.NEVER)

    assert hanging["outcome"] is ExtractionOutcome.CRASHED  # killed by close(), not left hanging
    assert _wait_gone(pids) == []
    assert pool.worker_pids() == []
    with pytest.raises(RuntimeError, match="closed"):
        pool.extract(NORMAL, "https://example.com/late")
    pool.close()  # idempotent


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_with_a_killed_parent(tmp_path: Path) -> None:
    """The parent is SIGKILLed with one idle and one hung worker: neither is left behind."""
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os, signal, sys, threading, time
            sys.path.insert(0, {str(REPO)!r})
            from newsmon.config import ExtractSettings
            from newsmon.extract.isolate import ExtractionPool
            from {extract_faults.__name__} import HANG, by_marker

            if __name__ == "__main__":
                pool = ExtractionPool(ExtractSettings(workers=2, timeout=600), by_marker)
                threading.Thread(
                    target=pool.extract, args=(HANG, "https://example.com/h"), daemon=True
                ).start()
                while not pool.worker_pids():
                    time.sleep(0.05)
                pool.extract(b"<p>ok</p>", "https://example.com/ok")  # a second, idle worker
                pids = pool.worker_pids()
                with open(f"/proc/{{pids[0]}}/stat") as stat:  # the fork server: their parent
                    server = int(stat.read().rsplit(")", 1)[1].split()[1])
                print(" ".join(map(str, pids)), server, flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    *pids, server = [int(p) for p in done.stdout.split()]
    assert len(pids) == 2 and server != os.getpid()
    assert _wait_gone([*pids, server]) == []


def test_the_pool_works_in_a_daemonic_process(tmp_path: Path) -> None:
    """As in a task of Airflow's CeleryExecutor, forked from a daemonic Celery pool process."""
    script = tmp_path / "daemonic.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import multiprocessing

            from newsmon.config import ExtractSettings
            from newsmon.extract.isolate import ExtractionPool

            def run(queue):
                try:
                    with ExtractionPool(ExtractSettings(workers=1, timeout=30)) as pool:
                        result = pool.extract({NORMAL!r}, "https://example.com/a")
                    queue.put(f"{{result.outcome}} {{len(result.page.text.split())}} words")
                except Exception as exc:
                    queue.put(repr(exc))

            if __name__ == "__main__":
                ctx = multiprocessing.get_context("spawn")
                queue = ctx.Queue()
                child = ctx.Process(target=run, args=(queue,), daemon=True)
                child.start()
                print(queue.get(timeout=50), flush=True)
                child.join(10)
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    expected = extract_page(NORMAL, "https://example.com/a")
    assert expected is not None
    assert done.stdout.split() == ["ok", str(len(expected.text.split())), "words"]


def test_workers_do_not_run_the_main_script_again(tmp_path: Path) -> None:
    """A program's top-level code (the `airflow` command under Celery) runs once, not per worker."""
    runs = tmp_path / "runs.txt"
    script = tmp_path / "program.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os

            from newsmon.config import ExtractSettings
            from newsmon.extract.isolate import ExtractionPool

            with open({str(runs)!r}, "a") as log:
                log.write(f"{{os.getpid()}}\\n")

            if __name__ == "__main__":
                with ExtractionPool(ExtractSettings(workers=2, timeout=30)) as pool:
                    for n in range(3):
                        result = pool.extract({NORMAL!r}, f"https://example.com/{{n}}")
                        print(result.outcome, flush=True)
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok"] * 3
    assert len(runs.read_text().split()) == 1


def test_newsmon_extract_reports_a_page_beyond_the_memory_limit(tmp_path: Path) -> None:
    giant = tmp_path / "giant.html"
    giant.write_bytes(b"<html><body><article>" + PARAGRAPH.encode() * 150_000)
    normal = tmp_path / "normal.html"
    normal.write_bytes(NORMAL)
    done = subprocess.run(
        [sys.executable, "-m", "newsmon.cli", "extract", "--jsonl", str(giant), str(normal)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NEWSMON_EXTRACT_MEMORY_MB": "128"},
        check=False,
    )
    assert done.returncode == 1, done.stderr
    first, second = (json.loads(line) for line in done.stdout.splitlines())
    assert first == {"input": str(giant), "error": "extraction memory: MemoryError"}, done.stderr
    assert second["extraction"] == "full"
    assert "the mayor said the vote settled a question" in second["text"]


# --- in-process mode and settings --------------------------------------------------------------


def test_isolation_off_extracts_in_process_and_still_records_errors() -> None:
    settings = Settings.from_env({"NEWSMON_EXTRACT_ISOLATION": "0"}).extract
    extractor = open_extractor(settings, by_marker)
    assert isinstance(extractor, InProcessExtractor)
    with extractor:
        ok = extractor.extract(NORMAL, "https://example.com/ok")
        bad = extractor.extract(NORMAL + extract_faults.RAISE, "https://example.com/bad")
    assert ok.page is not None and worker_pid(ok.page.text) == os.getpid()
    assert bad.outcome is ExtractionOutcome.ERROR
    assert bad.reason == "ValueError: cannot handle https://example.com/bad"


def test_extract_settings_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "NEWSMON_EXTRACT_TIMEOUT": "2.5",
            "NEWSMON_EXTRACT_MEMORY_MB": "300",
            "NEWSMON_EXTRACT_WORKERS": "3",
            "NEWSMON_EXTRACT_PAGES_PER_WORKER": "10",
        }
    ).extract
    assert settings == ExtractSettings(
        isolation=True, timeout=2.5, memory_mb=300, workers=3, pages_per_worker=10
    )
    assert Settings.from_env({}).extract.workers == (os.cpu_count() or 1)
    assert isinstance(open_extractor(settings), ExtractionPool)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("NEWSMON_EXTRACT_TIMEOUT", "soon", "must be a number"),
        ("NEWSMON_EXTRACT_TIMEOUT", "0", "must be at least"),
        ("NEWSMON_EXTRACT_MEMORY_MB", "64", "must be at least 128"),
        ("NEWSMON_EXTRACT_MEMORY_MB", "300.5", "must be a whole number"),
        ("NEWSMON_EXTRACT_WORKERS", "0", "must be at least 1"),
        ("NEWSMON_EXTRACT_ISOLATION", "maybe", "must be true or false"),
    ],
)
def test_bad_extract_settings_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        Settings.from_env({name: value})
    assert caught.value.field == name
    assert repr(value) in str(caught.value)


# --- the pipeline ------------------------------------------------------------------------------


@pytest.mark.es
def test_ingest_indexes_a_hung_and_a_crashed_page_from_the_feed_and_the_rest_in_full(
    es: Elasticsearch, settings: Settings, news_pages: list[DemoPage], hung: UntilHung
) -> None:
    with DemoSite(news_pages[:8], feed_count=1) as site:
        urls = [site.url_of(p) for p in site.pages]
        hung_url, crashed = urls[2], urls[5]
        items = [
            (url, f"Feed title {n}", datetime(2024, 1, 1, tzinfo=UTC)) for n, url in enumerate(urls)
        ]
        site.set_feed("feed1", items)
        Path(settings.feeds_file).write_text(site.feeds_yaml())
        feeds = load_feeds(settings.feeds_file)
        faulty = FaultyPages(
            hang=(urlsplit(hung_url).path,), crash=(urlsplit(crashed).path,), flags=str(hung.flags)
        )
        limits = replace(settings.extract, timeout=2.0, workers=2)

        with ExtractionPool(limits, faulty, wait=hung) as pool:
            summary = ingest(feeds, settings, extractor=pool)
            workers = pool.worker_pids()
        assert workers and _wait_gone(workers) == []
        names = IndexNames(settings.index_prefix)

        assert summary.articles["fetched"] == len(urls)
        assert summary.articles["indexed"] == len(urls)
        assert summary.articles["extraction_timeout"] == 1
        assert summary.articles["extraction_crashed"] == 1
        assert summary.articles["fallback"] == 2
        assert any(hung_url in p and "extraction timeout" in p for p in summary.problems)
        docs = {
            d["_id"]: d["_source"]
            for d in es.mget(index=names.articles, ids=[url_id(canonical_url(u)) for u in urls])[
                "docs"
            ]
        }
        by_url = {canonical_url(u): docs[url_id(canonical_url(u))] for u in urls}
        timed_out, segfaulted = by_url[canonical_url(hung_url)], by_url[canonical_url(crashed)]
        assert timed_out["extraction"] == segfaulted["extraction"] == "feed_fallback"
        assert timed_out["extraction_error"] == "timeout"
        assert timed_out["extraction_error_reason"] == "no result after 2s"
        assert timed_out["title"] == "Feed title 2"
        assert segfaulted["extraction_error"] == "crashed"
        assert segfaulted["extraction_error_reason"] == "SIGSEGV"
        assert timed_out["fetch_outcome"] == "fetched"
        others = [
            d
            for u, d in by_url.items()
            if u not in (canonical_url(hung_url), canonical_url(crashed))
        ]
        assert len(others) == len(urls) - 2
        for doc in others:
            assert doc["extraction"] == "full" and "extraction_error" not in doc
            assert doc["word_count"] > 50

        # not retried: the next run (feed state lost, so the feed lists them all again)
        # fetches none of them, whatever the extractor would do now
        for feed in feeds:
            es.delete(index=names.feeds, id=feed.id, refresh=True)
        requests = sum(n for path, n in site.requests.items() if not path.startswith("/feeds/"))
        again = ingest(feeds, settings)
        assert again.articles["already_indexed"] == len(urls)
        assert again.articles["fetched"] == 0
        assert (
            sum(n for path, n in site.requests.items() if not path.startswith("/feeds/"))
            == requests
        )
