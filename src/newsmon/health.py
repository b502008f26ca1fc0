"""Feed health: how each feed has been doing, which feeds have been failing for a day.

The ingest cycle writes the raw facts per feed into ``<prefix>feeds`` (:func:`next_state`):
the last outcome, the recent failures with their reasons, ``failing_since``, items per fetch.
New articles per day are counted from the articles index itself (a date histogram by
``feed_id``), see docs/feed-health.md. Nothing here needs Airflow.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from .config import ConfigError, FeedConfig, parse_duration
from .sources.feeds import FeedOutcome, FeedResult
from .store import Client, IndexNames
from .store.client import es_time
from .store.feeds import FeedState, articles_per_day, feed_state_docs

__all__ = [
    "DEFAULT_FAILING_AFTER",
    "FeedHealth",
    "failing_after_from_env",
    "feed_health",
    "next_state",
    "render_table",
]

log = logging.getLogger(__name__)

DEFAULT_FAILING_AFTER = timedelta(hours=24)  # a feed failing this long is flagged
RECENT_FAILURES = 10  # failures kept per feed, newest last
AVERAGE_OVER = 20  # the running average of items per fetch weighs about this many fetches
WINDOW_DAYS = 7  # new articles per day are averaged over this many days
REASON_MAX = 300


# --- what the ingest cycle stores --------------------------------------------------------------


def next_state(previous: FeedState, result: FeedResult, now: datetime) -> dict[str, Any]:
    """The health fields of a feed's state document after one fetch ``result`` at ``now``.

    A fetched or unchanged (304) feed is a success: the failure streak ends and
    ``failing_since`` is cleared; the recent failures are kept as history. Items per fetch are
    averaged over fetches that returned a feed document (a 304 lists nothing new).
    """
    ok = result.outcome in (FeedOutcome.FETCHED, FeedOutcome.NOT_MODIFIED)
    failures = [dict(f) for f in previous.recent_failures]
    fetches, average = previous.successful_fetches, previous.avg_entries
    if ok:
        failing_since = None
        streak = 0
        if result.outcome is FeedOutcome.FETCHED:
            fetches += 1
            count = float(len(result.entries))
            weight = min(fetches, AVERAGE_OVER)
            average = count if average is None else average + (count - average) / weight
    else:
        streak = previous.consecutive_failures + 1
        failing_since = (previous.failing_since if previous.consecutive_failures else None) or now
        failure: dict[str, Any] = {
            "at": now.isoformat(),
            "outcome": _failure_outcome(result),
            "reason": (result.reason or "")[:REASON_MAX] or None,
            "status": result.status,
        }
        failures.append({k: v for k, v in failure.items() if v is not None})
    return {
        "consecutive_failures": streak,
        "failing_since": failing_since.astimezone(UTC).isoformat() if failing_since else None,
        "recent_failures": failures[-RECENT_FAILURES:],
        "successful_fetches": fetches,
        "avg_entries": round(average, 3) if average is not None else None,
    }


def _failure_outcome(result: FeedResult) -> str:
    """``timeout``, ``http_error``… for a failed download; ``feed_invalid`` for a bad document."""
    if result.outcome is FeedOutcome.FETCH_FAILED and result.fetch_outcome is not None:
        return result.fetch_outcome.value
    return result.outcome.value


# --- reading it back -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedHealth:
    """One feed's health as of ``now``."""

    feed_id: str
    url: str
    enabled: bool
    known: bool  # has a state document (fetched at least once)
    last_fetched_at: datetime | None = None
    last_success_at: datetime | None = None
    last_outcome: str | None = None
    last_reason: str | None = None
    last_status: int | None = None
    consecutive_failures: int = 0
    failing_since: datetime | None = None
    recent_failures: tuple[Mapping[str, Any], ...] = ()
    last_entries: int | None = None
    avg_entries: float | None = None
    new_per_day: float = 0.0  # new articles per day over the window
    new_by_day: tuple[tuple[str, int], ...] = ()  # (YYYY-MM-DD, count), oldest first
    flagged: bool = False  # failing for at least the threshold

    @property
    def failing(self) -> bool:
        return self.consecutive_failures > 0

    @property
    def status(self) -> str:
        if not self.enabled:
            return "disabled"
        if not self.known:
            return "not fetched yet"
        if self.flagged:
            return "FAILING"
        return "failing" if self.failing else "ok"

    def as_dict(self, now: datetime) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.astimezone(UTC).isoformat() if value else None

        age = _age(self.last_success_at, now)
        return {
            "feed_id": self.feed_id,
            "url": self.url,
            "enabled": self.enabled,
            "status": self.status,
            "flagged": self.flagged,
            "last_fetched_at": iso(self.last_fetched_at),
            "last_success_at": iso(self.last_success_at),
            "last_success_age_seconds": int(age.total_seconds()) if age is not None else None,
            "last_outcome": self.last_outcome,
            "last_reason": self.last_reason,
            "last_status": self.last_status,
            "consecutive_failures": self.consecutive_failures,
            "failing_since": iso(self.failing_since),
            "recent_failures": [dict(f) for f in self.recent_failures],
            "last_entries": self.last_entries,
            "avg_entries": self.avg_entries,
            "new_per_day": round(self.new_per_day, 2),
            "new_by_day": dict(self.new_by_day),
        }


def failing_after_from_env(environ: Mapping[str, str] | None = None) -> timedelta:
    """``NEWSMON_FEED_FAILING_AFTER`` (e.g. ``24h``, ``2d``), default 24 hours."""
    env = os.environ if environ is None else environ
    raw = env.get("NEWSMON_FEED_FAILING_AFTER", "").strip()
    if not raw:
        return DEFAULT_FAILING_AFTER
    try:
        return parse_duration(raw)
    except ValueError as exc:
        raise ConfigError(
            str(exc), file="environment", field="NEWSMON_FEED_FAILING_AFTER"
        ) from None


def flagged(failing_since: datetime | None, streak: int, now: datetime, after: timedelta) -> bool:
    """Whether a feed failing ``streak`` times in a row since ``failing_since`` is flagged."""
    return streak > 0 and failing_since is not None and now - failing_since >= after


def feed_health(
    es: Client,
    names: IndexNames,
    feeds: Sequence[FeedConfig],
    *,
    now: datetime | None = None,
    failing_after: timedelta = DEFAULT_FAILING_AFTER,
    days: int = WINDOW_DAYS,
) -> list[FeedHealth]:
    """The health of ``feeds`` (in their order) from their state documents and articles."""
    now = now or datetime.now(UTC)
    ids = [f.id for f in feeds]
    docs = feed_state_docs(es, names, ids)
    per_day = new_articles_per_day(es, names, ids, now=now, days=days)
    out: list[FeedHealth] = []
    for feed in feeds:
        src = docs.get(feed.id)
        by_day = per_day.get(feed.id, ())
        average_new = sum(n for _d, n in by_day) / days
        if src is None:
            unknown = FeedHealth(feed.id, feed.url, feed.enabled, known=False)
            out.append(replace(unknown, new_per_day=average_new, new_by_day=by_day))
            continue
        streak = int(src.get("consecutive_failures") or 0)
        since = es_time(src.get("failing_since"))
        if streak and since is None:  # written before failing_since existed
            failures = src.get("recent_failures") or ()
            since = es_time(failures[-streak]["at"]) if len(failures) >= streak else None
        average = src.get("avg_entries")
        out.append(
            FeedHealth(
                feed_id=feed.id,
                url=feed.url,
                enabled=feed.enabled,
                known=True,
                last_fetched_at=es_time(src.get("last_fetched_at")),
                last_success_at=es_time(src.get("last_success_at")),
                last_outcome=src.get("last_outcome"),
                last_reason=src.get("last_reason"),
                last_status=src.get("last_status"),
                consecutive_failures=streak,
                failing_since=since,
                recent_failures=tuple(src.get("recent_failures") or ()),
                last_entries=src.get("last_entries"),
                avg_entries=float(average) if average is not None else None,
                new_per_day=average_new,
                new_by_day=by_day,
                flagged=feed.enabled and flagged(since, streak, now, failing_after),
            )
        )
    return out


def new_articles_per_day(
    es: Client,
    names: IndexNames,
    feed_ids: Sequence[str],
    *,
    now: datetime,
    days: int = WINDOW_DAYS,
) -> dict[str, tuple[tuple[str, int], ...]]:
    """Articles indexed per UTC day over the last ``days`` days (today included), per feed."""
    today = now.astimezone(UTC).date()
    return articles_per_day(es, names, feed_ids, first=today - timedelta(days=days - 1), now=now)


# --- rendering -----------------------------------------------------------------------------------


def _age(moment: datetime | None, now: datetime) -> timedelta | None:
    return max(now - moment, timedelta(0)) if moment else None


def format_age(age: timedelta | None) -> str:
    """``45s``, ``12m``, ``5h 3m``, ``2d 4h``, or ``never``."""
    if age is None:
        return "never"
    seconds = int(age.total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours < 1:
        return f"{minutes}m"
    if days < 1:
        return f"{hours}h {minutes % 60}m"
    return f"{days}d {hours % 24}h"


def format_duration(value: timedelta) -> str:
    """``24 h``, ``90 min``, ``2 d`` (for messages)."""
    seconds = int(value.total_seconds())
    if seconds % 86400 == 0 and seconds >= 2 * 86400:
        return f"{seconds // 86400} d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min"


@dataclass(frozen=True)
class _Column:
    title: str
    width: int
    right: bool = False


_COLUMNS = (
    _Column("FEED", 24),
    _Column("LAST SUCCESS", 12),
    _Column("FAILS", 5, right=True),
    _Column("ITEMS", 5, right=True),
    _Column("AVG", 5, right=True),
    _Column("NEW/DAY", 7, right=True),
    _Column("FLAG", 15),
    _Column("LAST REASON", 0),
)


def render_table(rows: Sequence[FeedHealth], now: datetime, failing_after: timedelta) -> str:
    """A fixed-width table, one line per feed, and a closing count of flagged feeds."""

    def cell(column: _Column, text: str) -> str:
        if not column.width:
            return text
        text = text if len(text) <= column.width else text[: column.width - 1] + "…"
        return text.rjust(column.width) if column.right else text.ljust(column.width)

    lines = ["  ".join(cell(c, c.title) for c in _COLUMNS).rstrip()]
    for row in rows:
        flag = row.status
        if row.failing and row.failing_since is not None:
            flag += f" {format_age(_age(row.failing_since, now))}"
        reason = ""
        if row.failing:
            last = row.recent_failures[-1] if row.recent_failures else {}
            outcome = last.get("outcome") or row.last_outcome or ""
            reason = f"{outcome}: {last.get('reason') or row.last_reason or ''}".strip(": ")
        values = (
            row.feed_id,
            format_age(_age(row.last_success_at, now)) if row.known else "-",
            str(row.consecutive_failures),
            "-" if row.last_entries is None else str(row.last_entries),
            "-" if row.avg_entries is None else f"{row.avg_entries:.1f}",
            f"{row.new_per_day:.1f}",
            flag,
            " ".join(reason.split())[:120],
        )
        lines.append("  ".join(cell(c, v) for c, v in zip(_COLUMNS, values, strict=True)).rstrip())
    flagged = sum(r.flagged for r in rows)
    enabled = sum(r.enabled for r in rows)
    lines.append("")
    lines.append(
        f"{flagged} of {enabled} enabled feed{'s' * (enabled != 1)} failing for "
        f"{format_duration(failing_after)} or more; new/day: articles indexed per day over the "
        f"last {WINDOW_DAYS} days"
    )
    return "\n".join(lines)
