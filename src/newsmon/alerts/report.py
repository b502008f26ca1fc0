"""What an alerts run did: counts, the emails tried, the first problems, time per phase."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from time import monotonic
from typing import Any

__all__ = ["RunReport"]

log = logging.getLogger(__name__)


@dataclass
class RunReport:
    """Counts of an alerts run, and the first problems seen (what a DAG task returns)."""

    counts: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    emails: list[dict[str, Any]] = field(default_factory=list)  # rule, batch, status, items
    held: list[dict[str, Any]] = field(default_factory=list)  # batches not sent: rule off, snoozed
    seconds: dict[str, float] = field(default_factory=dict)  # by phase

    def timed(self, phase: str, started: float) -> None:
        self.seconds[phase] = round(self.seconds.get(phase, 0.0) + monotonic() - started, 3)

    def problem(self, message: str) -> None:
        log.warning("%s", message)
        if len(self.problems) < 50:
            self.problems.append(message)

    def merge(self, other: RunReport) -> None:
        self.counts.update(other.counts)
        for message in other.problems:
            self.problem(message)
        self.emails += other.emails
        self.held += other.held
        for phase, seconds in other.seconds.items():
            self.seconds[phase] = round(self.seconds.get(phase, 0.0) + seconds, 3)

    def as_dict(self) -> dict[str, Any]:
        return {
            "counts": dict(self.counts),
            "problems": list(self.problems),
            "emails": list(self.emails),
            "held": list(self.held),
            "seconds": dict(self.seconds),
        }

    def render(self) -> str:
        lines = ["alerts summary"]
        rows = [f"  {name:<24}{n:>7}" for name, n in sorted(self.counts.items()) if n]
        lines += rows or ["  (nothing)"]
        for email in self.emails:
            lines.append(
                f"  email {email['status']}: rule {email['rule_id']},"
                f" {email['items']} stor{'y' if email['items'] == 1 else 'ies'}"
                f" to {', '.join(email.get('recipients') or ())}"
                + (f" ({email['reason']})" if email.get("reason") else "")
            )
        for batch in self.held:
            why = f"snoozed until {batch['until']}" if batch.get("until") else "rule not enabled"
            lines.append(
                f"  email held: rule {batch['rule_id']}, {batch['items']}"
                f" stor{'y' if batch['items'] == 1 else 'ies'} ({why})"
            )
        if self.problems:
            lines.append(f"  problems (first {len(self.problems)}):")
            lines += [f"    {p}" for p in self.problems]
        return "\n".join(lines)
