"""Feed health on the real Elasticsearch node: failures with reasons, the 24 h flag, recovery,
the status table and command, and the failing-sources line in alert emails (real SMTP)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from newsmon.alerts import AlertSettings, SmtpSettings, parse_rules, run_alerts
from newsmon.alerts.notes import failing_note, source_notes
from newsmon.cli import main
from newsmon.config import FeedConfig, Settings, load_feeds, parse_feeds
from newsmon.dev.demo import DemoPage, DemoSite
from newsmon.health import (
    RECENT_FAILURES,
    feed_health,
    next_state,
    render_table,
)
from newsmon.pipeline import ingest
from newsmon.sources.feeds import FeedOutcome, FeedResult
from newsmon.sources.fetch import FetchOutcome
from newsmon.store import IndexNames, bulk_write, ensure_indices
from newsmon.store.articles import match_fields
from newsmon.store.feeds import FeedState, load_feed_states

from .helpers.smtp import Handler, plain_text

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


# --- the state update itself (pure) ------------------------------------------------------------


def _failed(reason: str = "HTTP 503", status: int | None = 503) -> FeedResult:
    return FeedResult(
        "f", FeedOutcome.FETCH_FAILED, fetch_outcome=FetchOutcome.HTTP_ERROR, reason=reason,
        status=status,
    )  # fmt: skip


def _state(fields: dict[str, Any], feed_id: str = "f") -> FeedState:
    since = fields["failing_since"]
    return FeedState(
        feed_id,
        consecutive_failures=fields["consecutive_failures"],
        failing_since=datetime.fromisoformat(since) if since else None,
        recent_failures=tuple(fields["recent_failures"]),
        successful_fetches=fields["successful_fetches"],
        avg_entries=fields["avg_entries"],
    )


def test_failures_keep_their_start_their_reasons_and_only_the_last_ten() -> None:
    state = FeedState("f")
    for n in range(RECENT_FAILURES + 3):
        state = _state(next_state(state, _failed(f"HTTP 50{n % 10}"), T0 + timedelta(hours=n)))
    assert state.consecutive_failures == RECENT_FAILURES + 3
    assert state.failing_since == T0
    assert len(state.recent_failures) == RECENT_FAILURES
    assert state.recent_failures[0]["at"] == (T0 + timedelta(hours=3)).isoformat()
    assert state.recent_failures[-1] == {
        "at": (T0 + timedelta(hours=12)).isoformat(),
        "outcome": "http_error",
        "reason": "HTTP 502",
        "status": 503,
    }
    invalid = FeedResult("f", FeedOutcome.INVALID, reason="not an RSS or Atom document")
    after = next_state(state, invalid, T0 + timedelta(days=1))
    assert after["recent_failures"][-1]["outcome"] == "feed_invalid"
    assert after["failing_since"] == T0.isoformat()


def test_success_ends_the_streak_and_averages_items_per_fetch() -> None:
    state = _state(next_state(FeedState("f"), _failed(), T0))
    entries = tuple(_entry(n) for n in range(10))
    state = _state(next_state(state, FeedResult("f", FeedOutcome.FETCHED, entries), T0))
    assert (state.consecutive_failures, state.failing_since) == (0, None)
    assert len(state.recent_failures) == 1  # kept as history
    assert state.avg_entries == 10.0
    state = _state(next_state(state, FeedResult("f", FeedOutcome.FETCHED, entries[:4]), T0))
    assert state.avg_entries == 7.0
    # a 304 lists nothing new: it counts as a success but not as an empty fetch
    state = _state(next_state(state, FeedResult("f", FeedOutcome.NOT_MODIFIED), T0))
    assert (state.avg_entries, state.successful_fetches) == (7.0, 2)


def _entry(n: int) -> Any:
    from newsmon.sources.feeds import FeedEntry

    url = f"https://example.org/{n}"
    return FeedEntry(url, url, f"t{n}", None, None)


def test_failing_note_counts_only_feeds_failing_past_the_threshold() -> None:
    feeds = [
        FeedConfig(id=f"f{n}", name=f"F{n}", url=f"https://f{n}.example/rss") for n in range(4)
    ]
    states = {
        "f0": FeedState("f0", consecutive_failures=5, failing_since=T0 - timedelta(hours=30)),
        "f1": FeedState("f1", consecutive_failures=1, failing_since=T0 - timedelta(hours=2)),
        "f2": FeedState("f2", consecutive_failures=0),
    }
    assert failing_note(feeds, states, now=T0) == (
        "1 of 4 feeds behind this alert has failed for 24 h: f0"
    )
    assert failing_note(feeds, states, now=T0, failing_after=timedelta(hours=1)) == (
        "2 of 4 feeds behind this alert have failed for 1 h: f0, f1"
    )
    assert failing_note(feeds, states, now=T0 - timedelta(hours=7)) is None


# --- on the real node, through the ingest cycle ------------------------------------------------

pytestmark = pytest.mark.es


@pytest.fixture
def site(news_pages: list[DemoPage]) -> Iterator[DemoSite]:
    with DemoSite(news_pages[:6], feed_count=1) as served:
        yield served


def _feeds_file(site: DemoSite, settings: Settings) -> list[FeedConfig]:
    Path(settings.feeds_file).write_text(
        site.feeds_yaml()
        + f"  - id: later\n    name: Not there yet\n    url: {site.feed_url('later')}\n"
        + "    tags: [later]\n"
    )
    return load_feeds(settings.feeds_file)


def test_failures_are_recorded_flagged_after_the_threshold_and_reset_on_recovery(
    es: Elasticsearch, settings: Settings, site: DemoSite
) -> None:
    feeds = _feeds_file(site, settings)
    names = IndexNames(settings.index_prefix)
    started = datetime.now(UTC)
    for _ in range(3):
        ingest(feeds, settings, client=es)
    now = datetime.now(UTC)

    rows = {r.feed_id: r for r in feed_health(es, names, feeds, now=now)}
    good, bad = rows["demo-feed1"], rows["later"]
    # the second and third fetches were 304s: nothing listed, the average is of real fetches
    assert (good.status, good.consecutive_failures, good.last_entries) == ("ok", 0, 0)
    assert good.avg_entries == 6.0 and good.recent_failures == ()
    assert good.new_per_day == pytest.approx(6 / 7)
    assert sum(n for _d, n in good.new_by_day) == 6 and len(good.new_by_day) == 7
    assert bad.consecutive_failures == 3 and bad.last_success_at is None
    assert [f["outcome"] for f in bad.recent_failures] == ["http_error"] * 3
    assert all("404" in f["reason"] and f["status"] == 404 for f in bad.recent_failures)
    assert bad.failing_since is not None and started <= bad.failing_since <= now
    assert bad.failing_since.isoformat() == bad.recent_failures[0]["at"]
    assert (bad.status, bad.flagged) == ("failing", False)

    later = now + timedelta(hours=25)
    flagged = {r.feed_id: r for r in feed_health(es, names, feeds, now=later)}
    assert flagged["later"].flagged and flagged["later"].status == "FAILING"
    assert not flagged["demo-feed1"].flagged
    short = feed_health(
        es, names, feeds, now=now + timedelta(hours=3), failing_after=timedelta(hours=2)
    )
    assert [r.feed_id for r in short if r.flagged] == ["later"]

    table = render_table(list(flagged.values()), later, timedelta(hours=24))
    [bad_line] = [line for line in table.splitlines() if line.startswith("later ")]
    assert re.search(r"\b3\b.*FAILING 1d 1h.*http_error: HTTP 404", bad_line), bad_line
    [good_line] = [line for line in table.splitlines() if line.startswith("demo-feed1 ")]
    assert re.search(r"1d 1h\s+0\s+0\s+6\.0\s+0\.9\s+ok", good_line), good_line
    assert "1 of 2 enabled feeds failing for 24 h or more" in table

    site.set_feed("later", [(site.url_of(p), p.title, T0) for p in site.pages[:2]])
    ingest(feeds, settings, client=es)
    recovered = {r.feed_id: r for r in feed_health(es, names, feeds, now=later)}["later"]
    assert (recovered.consecutive_failures, recovered.failing_since) == (0, None)
    assert not recovered.flagged and recovered.status == "ok"
    assert recovered.last_success_at is not None and len(recovered.recent_failures) == 3
    assert recovered.last_entries == 2


def test_status_command_prints_the_table_and_json(
    es: Elasticsearch,
    settings: Settings,
    site: DemoSite,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    feeds = _feeds_file(site, settings)
    ingest(feeds, settings, client=es)
    monkeypatch.setenv("NEWSMON_ES_URL", settings.es_url)
    monkeypatch.setenv("NEWSMON_INDEX_PREFIX", settings.index_prefix)
    monkeypatch.setenv("NEWSMON_CONFIG_DIR", settings.config_dir)

    assert main(["feeds", "status", "--feeds", settings.feeds_file]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["FEED", "LAST", "SUCCESS"]
    assert re.search(r"^later\s+never\s+1\s+0\s+-\s+0\.0\s+failing", out, re.MULTILINE), out
    assert re.search(r"^demo-feed1\s+\d+s\s+0\s+6\s+6\.0\s+0\.9\s+ok", out, re.MULTILINE), out

    assert main(["feeds", "status", "--feeds", settings.feeds_file, "--json", "--failing"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["feed_id"] == "later" and row["consecutive_failures"] == 1
    assert row["recent_failures"][0]["status"] == 404 and row["flagged"] is False

    # a threshold shorter than the failure so far: flagged, and the exit status says so
    monkeypatch.setenv("NEWSMON_FEED_FAILING_AFTER", "0.001s")
    assert main(["feeds", "status", "--feeds", settings.feeds_file, "--failing"]) == 1
    assert "FAILING" in capsys.readouterr().out
    assert main(["feeds", "status", "--feeds", settings.feeds_file, "--failing-after", "2x"]) == 2
    assert "--failing-after" in capsys.readouterr().err


def test_new_template_fields_are_added_to_an_existing_feeds_index(
    es: Elasticsearch, settings: Settings
) -> None:
    names = IndexNames(settings.index_prefix)
    old = {
        "dynamic": "strict",
        "properties": {
            "feed_id": {"type": "keyword"},
            "consecutive_failures": {"type": "integer"},
            "last_success_at": {"type": "date"},
        },
    }
    es.indices.create(index=names.feeds, mappings=old)
    ensure_indices(es, names, settings.config_dir)
    fields = es.indices.get_mapping(index=names.feeds)[names.feeds]["mappings"]["properties"]
    assert {"failing_since", "recent_failures", "avg_entries", "successful_fetches"} <= set(fields)
    assert set(fields["recent_failures"]["properties"]) == {"at", "outcome", "reason", "status"}


# --- the failing-sources line in alert emails (real SMTP) --------------------------------------

FAST = AlertSettings(lag=timedelta(0))


FEEDS = parse_feeds(
    "feeds:\n"
    + "".join(
        f"  - id: {i}\n    name: {i}\n    url: https://{i}.example/rss\n    tags: [{t}]\n"
        for i, t in (("wire-a", "wire"), ("wire-b", "wire"), ("local", "city"))
    )
)


def _states(es: Elasticsearch, names: IndexNames, failing: dict[str, timedelta]) -> None:
    now = datetime.now(UTC)
    docs = []
    for feed in FEEDS:
        since = failing.get(feed.id)
        doc: dict[str, Any] = {"feed_id": feed.id, "url": feed.url, "consecutive_failures": 0}
        if since is not None:
            doc["consecutive_failures"] = 4
            doc["failing_since"] = (now - since).isoformat()
        docs.append(("index", feed.id, doc))
    assert not bulk_write(es, names.feeds, docs, refresh=True).failed


def _article(n: int, feed_id: str) -> tuple[str, str, dict[str, Any]]:
    now = datetime.now(UTC).isoformat()
    doc: dict[str, Any] = {
        "url": f"https://{feed_id}.example/news/{n}",
        "canonical_url": f"https://{feed_id}.example/news/{n}",
        "domain": f"{feed_id}.example",
        "title": f"Flood report {n}",
        "text": "Flood waters rose in the city.",
        "published_at": now,
        "indexed_at": now,
        "feed_id": feed_id,
        "tags": ["city" if feed_id == "local" else "wire"],
        "extraction": "full",
    }
    return ("create", f"article-{n}", {**doc, **match_fields(doc)})  # as the pipeline writes it


RULES = """\
alerts:
  - id: floods
    name: Floods
    query: flood
    recipients: [desk@example.org]
    mode: digest
    schedule: daily {due:%H:%M} UTC
  - id: city-floods
    name: City floods
    query: flood
    filters: {{tags: [city]}}
    recipients: [city@example.org]
    mode: digest
    schedule: daily {due:%H:%M} UTC
"""


def _digest(
    es: Elasticsearch, names: IndexNames, smtp: tuple[Handler, SmtpSettings]
) -> dict[str, str]:
    handler, smtp_settings = smtp
    assert not bulk_write(es, names.articles, [_article(1, "wire-a"), _article(2, "local")]).failed
    now = datetime.now(UTC) + timedelta(seconds=1)
    due = (now + timedelta(hours=2)).replace(second=0, microsecond=0)
    rule_set = parse_rules(RULES.format(due=due), "alerts.yaml")
    decided = run_alerts(es, names, rule_set, FAST, smtp_settings, mode="digest", now=now)
    assert decided.counts["stories_decided"] == 3 and handler.received == []
    notes = source_notes(es, names, rule_set.rules, FEEDS)
    report = run_alerts(
        es, names, rule_set, FAST, smtp_settings, mode="digest", now=due, source_notes=notes
    )
    assert report.counts["emails_sent"] == 2
    return {r.rcpt_tos[0]: plain_text(r) for r in handler.received}


def test_digest_says_how_many_sources_behind_the_rule_failed_for_a_day(
    es: Elasticsearch, settings: Settings, smtp: tuple[Handler, SmtpSettings]
) -> None:
    names = IndexNames(settings.index_prefix)
    ensure_indices(es, names, settings.config_dir)
    _states(es, names, {"wire-b": timedelta(hours=30), "local": timedelta(hours=3)})

    texts = _digest(es, names, smtp)

    line = "Note: 1 of 3 feeds behind this alert has failed for 24 h: wire-b"
    assert line in texts["desk@example.org"].splitlines()
    # the city rule's only source fails, but for 3 hours only: no line
    assert "failed for" not in texts["city@example.org"]
    assert load_feed_states(es, names, ["wire-b"])["wire-b"].consecutive_failures == 4


def test_digest_of_healthy_sources_has_no_failing_line(
    es: Elasticsearch, settings: Settings, smtp: tuple[Handler, SmtpSettings]
) -> None:
    names = IndexNames(settings.index_prefix)
    ensure_indices(es, names, settings.config_dir)
    _states(es, names, {})

    texts = _digest(es, names, smtp)

    assert len(texts) == 2
    assert all("failed for" not in text for text in texts.values())
    assert all("Flood report" in text for text in texts.values())


def test_the_sources_behind_a_rule_are_the_feeds_its_filters_select(
    es: Elasticsearch, settings: Settings
) -> None:
    from newsmon.alerts import RuleFilters
    from newsmon.alerts.notes import rule_feeds

    names = IndexNames(settings.index_prefix)
    ensure_indices(es, names, settings.config_dir)
    _op, doc_id, doc = _article(1, "local")
    doc["domain"] = "city-paper.example"  # the feed's articles live on another host
    assert not bulk_write(es, names.articles, [("create", doc_id, doc)], refresh=True).failed

    def ids(**filters: Any) -> list[str]:
        return [f.id for f in rule_feeds(es, names, RuleFilters(**filters), FEEDS)]

    assert ids() == ["wire-a", "wire-b", "local"]
    assert ids(tags=("wire",)) == ["wire-a", "wire-b"]
    assert ids(feeds=("local", "wire-b")) == ["wire-b", "local"]
    assert ids(domains=("www.wire-a.example",)) == ["wire-a"]
    assert ids(domains=("city-paper.example",)) == ["local"]
    assert ids(domains=("city-paper.example",), tags=("wire",)) == []
