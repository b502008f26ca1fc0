"""Preview: what a rule would have sent — matches per day over a past period, a sample."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from ..store import Client, IndexNames, alerting
from .evaluate import SNIPPETS, snippets
from .rules import AlertRule

__all__ = ["FLOOD_STORIES_PER_DAY", "Preview", "preview"]

FLOOD_STORIES_PER_DAY = 20  # preview warns above this


@dataclass(frozen=True)
class Preview:
    rule: AlertRule
    since: timedelta
    time_field: str
    articles: int
    stories: int
    per_day: tuple[tuple[str, int, int], ...]  # day, articles, stories
    samples: tuple[Mapping[str, Any], ...]
    timezone: str
    outside: int = 0  # matching articles outside the window shown
    by_indexed: int | None = None  # by published_at: those indexed in the window (run's view)

    @property
    def peak(self) -> tuple[str, int] | None:
        if not self.per_day:
            return None
        day, _, stories = max(self.per_day, key=lambda d: (d[2], d[0]))
        return day, stories

    def flood_warning(self) -> str | None:
        peak = self.peak
        days = max(self.since / timedelta(days=1), 1.0)
        average = self.stories / days
        if peak is None or peak[1] <= FLOOD_STORIES_PER_DAY:
            return None
        advice = (
            "narrow the query or add filters"
            if self.rule.mode == "digest"
            else "narrow the query, add filters, or use mode: digest"
        )
        return (
            f"warning: this rule would flood an inbox: {peak[1]} stories on {peak[0]},"
            f" {average:.0f} a day on average (more than {FLOOD_STORIES_PER_DAY}); {advice}"
        )

    def render(self) -> str:
        rule = self.rule
        days = self.since / timedelta(days=1)
        lines = [
            f"rule {rule.id}: {rule.name} ({rule.mode}"
            + (f", {rule.digest}" if rule.digest else "")
            + ")",
            f"query: {rule.query}",
        ]
        if rule.filters.lucene():
            lines.append(f"filters: {rule.filters.lucene()}")
        lines.append(
            f"last {days:g} days by {self.time_field}: {self.articles} article(s),"
            f" {self.stories} stor{'y' if self.stories == 1 else 'ies'}"
        )
        if self.per_day:
            lines.append(f"per day ({self.timezone}):   articles  stories")
            width = max(s for _, _, s in self.per_day) or 1
            for day, articles, stories in self.per_day:
                bar = "#" * max(1 if stories else 0, round(30 * stories / width))
                lines.append(f"  {day}  {articles:>8}  {stories:>7}  {bar}".rstrip())
        if self.samples:
            lines.append(f"sample ({len(self.samples)} stories, newest first):")
            for sample in self.samples:
                when = (sample.get(self.time_field) or "")[:16].replace("T", " ")
                outlet = sample.get("site_name") or sample.get("domain") or ""
                lines.append(f"  {when}  {outlet}: {sample.get('title')}")
                lines += [f"      …{_terminal(s)}…" for s in sample.get("snippets") or ()]
                lines.append(f"      {sample.get('url')}")
        if self.outside:
            lines.append(
                f"note: {self.outside} more matching article(s) outside this window"
                + (
                    f"; by indexed_at (what alerts run uses) {self.by_indexed} in it"
                    if self.by_indexed is not None
                    else ""
                )
            )
        warning = self.flood_warning()
        if warning:
            lines.append(warning)
        return "\n".join(lines)


def _terminal(fragment: str) -> str:
    """A highlight fragment for a terminal: <em>x</em> → [x], whitespace collapsed."""
    text = fragment.replace("<em>", "[").replace("</em>", "]")
    return " ".join(text.split())


def preview(
    es: Client,
    names: IndexNames,
    rule: AlertRule,
    *,
    since: timedelta = timedelta(days=7),
    time_field: Literal["published_at", "indexed_at"] = "indexed_at",
    sample: int = 5,
    now: datetime | None = None,
) -> Preview:
    """Backtest ``rule``: matches per day over the last ``since``, a sample of highlighted hits.

    By default by ``indexed_at``, the time ``alerts run`` windows use (a back-dated article is
    new when it is indexed). A whole number of days lists that many days: today and the days
    before it, from midnight in the rule's time zone. Matches outside the window are counted."""
    now = now or datetime.now(UTC)
    zone = rule.digest.timezone if rule.digest else "UTC"
    start = _window_start(now, since, zone)
    found = alerting.preview_search(
        es,
        names,
        rule.search,
        start=start,
        end=now,
        time_field=time_field,
        size=max(sample * 4, 20),
        timezone=zone,
        fragments=SNIPPETS,
        every_day=since <= timedelta(days=62),  # quiet days too, when they fit on a screen
    )
    seen: set[str] = set()
    samples: list[Mapping[str, Any]] = []
    for hit in found.newest:
        key = hit.source.get("story_id") or hit.article_id
        if key in seen:
            continue
        seen.add(key)
        samples.append({**hit.source, "snippets": snippets(hit.highlight)})
        if len(samples) >= sample:
            break
    total = alerting.count_matches(es, names, rule.search)
    by_indexed = None
    if time_field != "indexed_at" and total > found.articles:
        by_indexed = alerting.count_matches(
            es, names, rule.search, time_field="indexed_at", start=start, end=now
        )
    return Preview(
        rule=rule,
        since=since,
        time_field=time_field,
        articles=found.articles,
        stories=found.stories,
        per_day=found.per_day,
        samples=tuple(samples),
        timezone=zone,
        outside=max(total - found.articles, 0),
        by_indexed=by_indexed,
    )


def _window_start(now: datetime, since: timedelta, zone: str) -> datetime:
    """``now - since``; for whole days, midnight (in ``zone``) of the first of those days, so
    the day list has as many days as asked for."""
    days, rest = divmod(since, timedelta(days=1))
    if rest or not days:
        return now - since
    local = now.astimezone(ZoneInfo(zone))
    first = datetime.combine(local.date() - timedelta(days=days - 1), time(0), ZoneInfo(zone))
    return first.astimezone(UTC)
