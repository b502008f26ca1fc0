"""Daily operation of the ``newsmon`` command: exit statuses that tell the truth, sentences
instead of tracebacks, each warning once."""

from __future__ import annotations

import logging
import os
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from newsmon.config import Settings
from newsmon.console import OnceFilter
from newsmon.pipeline import RunSummary

from .helpers.cli import newsmon
from .helpers.paths import NEWS_PAGES


def test_help_describes_the_command_and_its_exit_statuses() -> None:
    done = newsmon("--help")
    assert done.returncode == 0
    assert "``" not in done.stdout
    assert "follow news feeds" in done.stdout
    assert "4 every feed failed" in done.stdout


def test_a_closed_output_pipe_is_no_traceback() -> None:
    """``newsmon … | head``: the reader is gone before newsmon writes (its end is closed)."""
    page = sorted((NEWS_PAGES / "html").glob("*.html.gz"))[0]
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = newsmon("extract", str(page), stdout=write_end, stderr=subprocess.PIPE)
    finally:
        os.close(write_end)
    assert done.returncode == 141
    assert done.stderr == ""


def test_trafilatura_errors_do_not_leak_through_extract(tmp_path: Path) -> None:
    page = tmp_path / "x.html"
    page.write_text("x")  # trafilatura: "ERROR trafilatura.utils: parsed tree length: 0 …"
    done = newsmon("extract", str(page))
    assert done.returncode == 1
    assert '"error": "no article text found"' in done.stdout
    assert done.stderr == ""
    verbose = newsmon("-v", "extract", str(page))
    assert "ERROR trafilatura.utils: parsed tree length" in verbose.stderr  # -v shows it


def test_a_warning_is_shown_once() -> None:
    once = OnceFilter()

    def record(name: str, message: str) -> logging.LogRecord:
        return logging.LogRecord(name, logging.WARNING, __file__, 1, message, None, None)

    assert once.filter(record("newsmon.alerts.report", "rule a: no recipients"))
    assert not once.filter(record("newsmon.alerts.report", "rule a: no recipients"))
    assert once.filter(record("newsmon.alerts.report", "rule b: no recipients"))
    assert once.filter(record("elastic_transport", "retry"))
    assert once.filter(record("elastic_transport", "retry"))  # only newsmon's own are folded


def test_run_summary_columns_hold_long_counter_names() -> None:
    summary = RunSummary(
        feeds=Counter(fetched=3),
        articles=Counter({"indexed": 12, "extraction_memory_exceeded_twice": 1}),
    )
    rows = [line for line in summary.render().splitlines() if line.startswith("    ")]
    ends = {len(row) for row in rows}
    assert len(ends) == 1, rows  # every count ends in the same column
    assert all(row.split()[-1].isdigit() and len(row.split()) == 2 for row in rows)


@pytest.mark.es
def test_run_exits_4_when_every_feed_fails_naming_the_cause(
    settings: Settings, tmp_path: Path
) -> None:
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(
        "feeds:\n"
        + "".join(
            f"  - id: f{n}\n    name: F{n}\n    url: http://127.0.0.1:9/feed{n}\n" for n in range(3)
        )
    )
    env = {
        "NEWSMON_ES_URL": settings.es_url,
        "NEWSMON_INDEX_PREFIX": settings.index_prefix,
        "NEWSMON_FETCH_ALLOW": "127.0.0.1/32",
    }
    done = newsmon("run", "--feeds", str(feeds), env=env)
    assert done.returncode == 4, done.stderr
    assert "run summary" in done.stdout
    assert "newsmon: every feed failed: 3 of 3" in done.stderr
    assert "likely cause: network" in done.stderr
    assert "make demo" in done.stderr
    assert "Traceback" not in done.stderr
