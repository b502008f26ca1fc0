"""Notes on an alert's sources: "3 of 40 feeds behind this alert have failed for 24 h: …".

A rule's feeds are the enabled feeds its filters select; those failing for at least
``NEWSMON_FEED_FAILING_AFTER`` (see :mod:`newsmon.health`) are named in its emails.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from ..config import ConfigError, FeedConfig, load_feeds
from ..health import DEFAULT_FAILING_AFTER, failing_after_from_env, flagged, format_duration
from ..store import Client, IndexNames
from ..store.alerting import feeds_publishing
from ..store.client import exists
from ..store.feeds import FeedState, load_feed_states
from ..urls import domain
from .rules import AlertRule, RuleFilters

__all__ = ["failing_note", "rule_feeds", "source_notes"]

log = logging.getLogger(__name__)

MAX_IDS_IN_NOTE = 10


def rule_feeds(
    es: Client, names: IndexNames, filters: RuleFilters, feeds: Sequence[FeedConfig]
) -> list[FeedConfig]:
    """The enabled feeds a rule's filters select (all of them when it has none).

    ``feeds`` and ``tags`` filters select by the feed list; a ``domains`` filter selects the
    feeds whose own address is in one of the domains or whose articles are.
    """
    selected = [f for f in feeds if f.enabled]
    if filters.feeds:
        selected = [f for f in selected if f.id in set(filters.feeds)]
    if filters.tags:
        selected = [f for f in selected if set(f.tags) & set(filters.tags)]
    if filters.domains and selected:
        domains = {d.lower().removeprefix("www.") for d in filters.domains}
        by_articles = feeds_publishing(es, names, domains, feeds=len(feeds))
        selected = [f for f in selected if domain(f.url) in domains or f.id in by_articles]
    return selected


def failing_note(
    feeds: Sequence[FeedConfig],
    states: Mapping[str, FeedState],
    *,
    now: datetime,
    failing_after: timedelta = DEFAULT_FAILING_AFTER,
) -> str | None:
    """``3 of 40 feeds have failed for 24 h: a, b, c`` (ids capped), or None when none has."""
    failing = [
        f.id
        for f in feeds
        if (s := states.get(f.id)) is not None
        and flagged(s.failing_since, s.consecutive_failures, now, failing_after)
    ]
    if not failing:
        return None
    shown = ", ".join(failing[:MAX_IDS_IN_NOTE])
    if len(failing) > MAX_IDS_IN_NOTE:
        shown += f" and {len(failing) - MAX_IDS_IN_NOTE} more"
    total = len(feeds)
    verb = "has" if len(failing) == 1 else "have"
    return (
        f"{len(failing)} of {total} feed{'s' * (total != 1)} behind this alert {verb} failed "
        f"for {format_duration(failing_after)}: {shown}"
    )


def source_notes(
    es: Client,
    names: IndexNames,
    rules: Sequence[AlertRule],
    feeds: Sequence[FeedConfig] | str | os.PathLike[str],
    *,
    now: datetime | None = None,
    failing_after: timedelta | None = None,
) -> dict[str, tuple[str, ...]]:
    """Per rule id, the note on its failing sources for its emails (rules without: absent).

    ``feeds`` is the feed list or the path of the feeds file; a feeds file that cannot be read
    leaves the notes out (logged) rather than stopping the emails.
    """
    now = now or datetime.now(UTC)
    after = failing_after if failing_after is not None else failing_after_from_env()
    if isinstance(feeds, (str, os.PathLike)):
        try:
            feeds = load_feeds(feeds)
        except ConfigError as exc:
            log.warning("feed health left out of alert emails: %s", exc)
            return {}
    if not rules or not feeds or not exists(es, names.feeds):
        return {}
    states = load_feed_states(es, names, [f.id for f in feeds if f.enabled])
    notes: dict[str, tuple[str, ...]] = {}
    for rule in rules:
        note = failing_note(
            rule_feeds(es, names, rule.filters, feeds), states, now=now, failing_after=after
        )
        if note:
            notes[rule.id] = (note,)
    return notes
