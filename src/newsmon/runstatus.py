"""Whether a run did its job: too many feeds failing is an exit status, with the likely cause.

A run over feeds that all fail (no network, no DNS, a proxy eating TLS) indexes nothing and
would otherwise exit 0. :func:`judge_feeds` turns the run summary into a verdict the CLI prints
and exits with (README: exit statuses).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["FEEDS_FAILED_EXIT", "FeedVerdict", "judge_feeds", "likely_cause"]

FEEDS_FAILED_EXIT = 4

_FAILED = ("fetch_failed", "feed_invalid")
_CAUSES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "name resolution: this machine cannot resolve the feeds' host names (no DNS, offline?)",
        re.compile(r"cannot resolve|name resolution|Name or service not known|nodename", re.I),
    ),
    (
        "TLS: certificates could not be verified (a proxy intercepting HTTPS, or missing CA "
        "certificates?)",
        re.compile(r"SSL|TLS|CERTIFICATE|handshake", re.I),
    ),
    (
        "network: the hosts resolve but cannot be reached (no route, refused, firewalled?)",
        re.compile(r"unreachable|refused|No route|timed out|timeout|deadline|reset", re.I),
    ),
)


@dataclass(frozen=True)
class FeedVerdict:
    failed: int
    total: int
    exit_status: int
    message: str | None  # what to tell the user when the run is judged failed


def likely_cause(reasons: Sequence[str]) -> str | None:
    """The cause most of ``reasons`` (feed failure reasons) point to, or None."""
    counts = [(sum(bool(p.search(r)) for r in reasons), cause) for cause, p in _CAUSES]
    best, cause = max(counts, key=lambda c: c[0])
    return cause if best * 2 > len(reasons) else None


def judge_feeds(
    feeds: Mapping[str, int], problems: Sequence[str], max_failed_share: float = 1.0
) -> FeedVerdict:
    """Failed when every fetched-for feed failed, or more than ``max_failed_share`` of them.

    ``feeds`` are the run summary's feed counters, ``problems`` its problem lines.
    """
    failed = sum(feeds.get(k, 0) for k in _FAILED)
    total = failed + feeds.get("fetched", 0) + feeds.get("not_modified", 0)
    if total == 0 or failed == 0:
        return FeedVerdict(failed, total, 0, None)
    share = failed / total
    if failed < total and share <= max_failed_share:
        return FeedVerdict(failed, total, 0, None)
    what = "every feed" if failed == total else f"{share:.0%} of the feeds"
    limit = "" if failed == total else f" (more than the allowed {max_failed_share:.0%})"
    lines = [f"newsmon: {what} failed: {failed} of {total}{limit}"]
    reasons = [p for p in problems if p.startswith("feed ")]
    cause = likely_cause(reasons)
    if cause:
        lines.append(f"  likely cause: {cause}")
    if reasons:
        lines.append(f"  e.g. {reasons[0]}")
    lines.append(
        "  without internet access, try `make demo` (a local news site on loopback addresses)"
    )
    return FeedVerdict(failed, total, FEEDS_FAILED_EXIT, "\n".join(lines))
