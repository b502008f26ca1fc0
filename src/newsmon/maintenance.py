"""Housekeeping run by newsmon itself: ``newsmon es maintain`` and the ``news_maintenance`` DAG.

It rolls the articles alias over to a new backing index by age or size, and deletes what is
kept only for a while: line sightings older than their retention, the ledger's decided stories
and finished emails (sent or failed) older than theirs, and the state of rules no longer
evaluated. Articles and stories are kept. See docs/maintenance.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .config import ConfigError, Settings, parse_duration
from .store import Client, IndexNames, connect, indices_ready
from .store.client import es_iso
from .store.maintenance import Rollover, delete_matching, rollover_articles

__all__ = ["MaintenanceReport", "MaintenanceSettings", "maintain"]


@dataclass(frozen=True)
class MaintenanceSettings:
    """``NEWSMON_ROLLOVER_*`` and ``NEWSMON_*_RETENTION``; an empty value switches one off."""

    rollover_max_age: str | None = "30d"
    rollover_max_size: str | None = "50gb"  # of a primary shard
    rollover_max_docs: int | None = None
    lines_retention: timedelta | None = timedelta(days=90)
    ledger_retention: timedelta | None = timedelta(days=180)
    state_retention: timedelta | None = timedelta(days=90)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MaintenanceSettings:
        env = os.environ if environ is None else environ
        default = cls()
        problems: list[str] = []

        def text(name: str, fallback: str | None) -> str | None:
            raw = env.get(name)
            return fallback if raw is None else (raw.strip() or None)

        def duration(name: str, fallback: timedelta | None) -> timedelta | None:
            raw = env.get(name)
            if raw is None:
                return fallback
            if not raw.strip():
                return None
            try:
                return parse_duration(raw)
            except ValueError as exc:
                problems.append(f"{name}: {exc}")
                return fallback

        docs = text("NEWSMON_ROLLOVER_MAX_DOCS", None)
        if docs is not None and not docs.isdigit():
            problems.append(f"NEWSMON_ROLLOVER_MAX_DOCS: {docs!r} is not a whole number")
            docs = None
        age = text("NEWSMON_ROLLOVER_MAX_AGE", default.rollover_max_age)
        if age is not None:
            duration("NEWSMON_ROLLOVER_MAX_AGE", None)  # checked: Elasticsearch takes "30d"
        settings = cls(
            rollover_max_age=age,
            rollover_max_size=text("NEWSMON_ROLLOVER_MAX_SIZE", default.rollover_max_size),
            rollover_max_docs=int(docs) if docs else None,
            lines_retention=duration("NEWSMON_LINES_RETENTION", default.lines_retention),
            ledger_retention=duration("NEWSMON_LEDGER_RETENTION", default.ledger_retention),
            state_retention=duration("NEWSMON_ALERT_STATE_RETENTION", default.state_retention),
        )
        if problems:
            raise ConfigError("; ".join(problems), file="environment")
        return settings


@dataclass
class MaintenanceReport:
    rollover: Rollover | None = None
    deleted: dict[str, int] = field(default_factory=dict)  # index -> documents deleted
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Small and JSON-serialisable (what a DAG task returns)."""
        roll = self.rollover
        return {
            "rolled_over": bool(roll and roll.rolled),
            "write_index": (roll.new_index if roll.rolled else roll.old_index) if roll else None,
            "deleted": dict(self.deleted),
            "dry_run": self.dry_run,
        }

    def render(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        lines = []
        roll = self.rollover
        if roll is None:
            lines.append("rollover: off")
        elif roll.rolled:
            what = "would roll" if roll.dry_run else "rolled"
            lines.append(f"rollover: {what} over {roll.old_index} -> {roll.new_index}")
        else:
            met = ", ".join(k for k in roll.conditions) or "no condition"
            lines.append(f"rollover: {roll.old_index} stays the write index ({met} not met)")
        for index, count in self.deleted.items():
            lines.append(f"{index}: {verb} {count} old document(s)")
        return "\n".join(lines)


def _before(field_name: str, cutoff: datetime) -> dict[str, Any]:
    return {"range": {field_name: {"lt": es_iso(cutoff)}}}


def retention_queries(
    names: IndexNames, settings: MaintenanceSettings, now: datetime
) -> dict[str, dict[str, Any]]:
    """index -> the query of its documents past retention."""
    queries: dict[str, dict[str, Any]] = {}
    if settings.lines_retention is not None:
        cutoff = now - settings.lines_retention
        day = cutoff.astimezone(UTC).date().isoformat()  # a strict_date field
        queries[names.index("lines")] = {  # seen before the cutoff (day: sightings before seen_at)
            "bool": {
                "should": [
                    _before("seen_at", cutoff),
                    {
                        "bool": {
                            "must_not": [{"exists": {"field": "seen_at"}}],
                            "filter": [{"range": {"day": {"lt": day}}}],
                        }
                    },
                ],
                "minimum_should_match": 1,
            }
        }
    if settings.ledger_retention is not None:
        cutoff = now - settings.ledger_retention
        queries[names.index("alert-ledger")] = {
            "bool": {
                "should": [
                    {
                        "bool": {
                            "filter": [{"term": {"kind": "story"}}, _before("decided_at", cutoff)]
                        }
                    },
                    {
                        "bool": {
                            "filter": [
                                {"term": {"kind": "email"}},
                                {"terms": {"status": ["sent", "failed"]}},
                                _before("updated_at", cutoff),
                            ]
                        }
                    },
                ],
                "minimum_should_match": 1,
            }
        }
    if settings.state_retention is not None:
        queries[names.index("alert-state")] = _before(
            "evaluated_at", now - settings.state_retention
        )
    return queries


def maintain(
    settings: Settings,
    maintenance: MaintenanceSettings | None = None,
    *,
    client: Client | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
) -> MaintenanceReport:
    """Roll over and prune once; idempotent (a second run right after does nothing)."""
    maintenance = maintenance or MaintenanceSettings.from_env()
    now = now or datetime.now(UTC)
    es = client or connect(settings)
    names = IndexNames(settings.index_prefix)
    indices_ready(es, names, settings.config_dir)
    report = MaintenanceReport(dry_run=dry_run)
    if (
        maintenance.rollover_max_age
        or maintenance.rollover_max_size
        or maintenance.rollover_max_docs is not None
    ):
        report.rollover = rollover_articles(
            es,
            names,
            max_age=maintenance.rollover_max_age,
            max_primary_shard_size=maintenance.rollover_max_size,
            max_docs=maintenance.rollover_max_docs,
            dry_run=dry_run,
        )
    for index, query in retention_queries(names, maintenance, now).items():
        report.deleted[index] = delete_matching(es, index, query, dry_run=dry_run)
    return report
