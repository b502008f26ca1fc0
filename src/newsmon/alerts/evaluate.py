"""Evaluation: which (rule, story) pairs are new, decided once and for all in the ledger.

Each run evaluates every rule over the articles *indexed* since its previous evaluation and
decides which (rule, story) pairs are new by creating one ledger document per pair with a
deterministic id — the first ``create`` wins, so a story is alerted once per rule, ever — then
:mod:`.deliver` sends every decided-but-unsent batch as one email (see docs/alerts.md).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from time import monotonic
from typing import Any
from zoneinfo import ZoneInfo

from ..store import Client, IndexNames, alerting, ledger
from ..store.alert_events import story_events
from ..store.client import es_iso, refresh
from . import presearch
from .actions import honoured
from .details import MAX_ITEMS, SNIPPETS, Match, RuleWindow, first_articles, snippets
from .grouping import event_fields, mark_repeats
from .report import RunReport
from .rules import AlertRule, kibana_link
from .settings import AlertSettings

__all__ = ["MAX_ITEMS", "SNIPPETS", "decide", "decision_id", "snippets"]

log = logging.getLogger(__name__)

GROUP = 200  # rules per search of the matching pass (one aggregation bucket each)
STORY_BUCKETS = 500  # stories per rule and window the aggregation lists; more: hit by hit
PAGE = 1000  # hits per search page; more are paged with search_after


def decision_id(rule_id: str, story_key: str) -> str:
    """The ledger id of "``rule_id`` alerted ``story_key``": the same pair, the same id, ever."""
    return hashlib.sha256(f"story\n{rule_id}\n{story_key}".encode()).hexdigest()


def _stories(count: int) -> str:
    return f"{count} stor{'y' if count == 1 else 'ies'}"


def _windows(
    es: Client,
    names: IndexNames,
    rules: Sequence[AlertRule],
    end: datetime,
    first_lookback: timedelta,
) -> list[RuleWindow]:
    found = ledger.evaluated_to(es, names, [r.id for r in rules])
    out = []
    for rule in rules:
        start = found.get(rule.id, end - first_lookback)
        if start < end:
            out.append(RuleWindow(rule, alerting.Window(start, end)))
    return out


def _match_new_articles(
    es: Client, names: IndexNames, windows: Sequence[RuleWindow], report: RunReport
) -> tuple[dict[str, dict[str, Match]], set[str]]:
    """The stories each rule matched among the articles indexed in its window, by rule id.

    Rules sharing a window are searched :data:`GROUP` at a time (one aggregation bucket each); a
    group whose search fails is split until the rule at fault is alone. Articles without a
    story id, and rules matching more than :data:`STORY_BUCKETS` stories, are then listed hit
    by hit. Returns the matches and the ids of rules whose search failed.
    """
    matches: dict[str, dict[str, Match]] = {w.rule.id: {} for w in windows}
    failed: set[str] = set()
    by_span: dict[alerting.Window, list[RuleWindow]] = defaultdict(list)
    for window in windows:
        by_span[window.span].append(window)
    groups = [ws[i : i + GROUP] for ws in by_span.values() for i in range(0, len(ws), GROUP)]
    listings: list[alerting.Listing] = []
    while groups:
        split: list[list[RuleWindow]] = []
        searches = [(group[0].span, [w.rule.search for w in group]) for group in groups]
        answers = alerting.count_stories(es, names, searches, buckets=STORY_BUCKETS)
        for group, answer in zip(groups, answers, strict=True):
            if isinstance(answer, alerting.Failed):
                if len(group) > 1:
                    split += [group[: len(group) // 2], group[len(group) // 2 :]]
                else:
                    failed.add(group[0].rule.id)
                    report.counts["rule_errors"] += 1
                    report.problem(f"rule {group[0].rule.id}: search failed: {answer.reason}")
                continue
            for window in group:
                counted = answer[window.rule.id]
                found = matches[window.rule.id]
                for key, articles in counted.stories.items():
                    found[key] = Match(key, True, articles)
                if counted.more or counted.loose:
                    listings.append(
                        alerting.Listing(window.rule.search, window.span, not counted.more)
                    )
        groups = split
    while listings:  # the rare cases, hit by hit
        more: list[alerting.Listing] = []
        pages = alerting.list_matches(es, names, listings, page=PAGE)
        for listing, page in zip(listings, pages, strict=True):
            rule_id = listing.search.rule_id
            if isinstance(page, alerting.Failed):
                failed.add(rule_id)
                report.problem(f"rule {rule_id}: search failed: {page.reason}")
                continue
            if not listing.loose_only and listing.after is None:
                matches[rule_id] = {}  # more stories than buckets: count them all from hits
            for article_id, story_id in page.hits:
                key = article_id if story_id is None else story_id
                match = matches[rule_id].setdefault(
                    key,
                    Match(key, story_id is not None, article_id=key if story_id is None else None),
                )
                match.articles += 1
            if page.next is not None:
                more.append(page.next)
        listings = more
    for rule_id in failed:
        matches[rule_id] = {}  # found again next time, when the window is searched again
    return matches, failed


def _batch(rule: AlertRule, now: datetime) -> tuple[str, datetime, str | None]:
    """The batch a decision made at ``now`` joins: its key, when it is due, its period label."""
    schedule = rule.digest
    if rule.mode == "immediate" or schedule is None:
        return f"{rule.id}/immediate/{es_iso(now)}", now, None
    due = schedule.next_after(now)
    start = schedule.previous(due)
    zone = ZoneInfo(schedule.timezone)
    label = (
        f"{start.astimezone(zone):%Y-%m-%d %H:%M} to {due.astimezone(zone):%Y-%m-%d %H:%M}"
        f" ({schedule.timezone})"
    )
    return f"{rule.id}/digest/{es_iso(due)}", due, label


def _decision(
    rule: AlertRule,
    match: Match,
    detail: Mapping[str, Any],
    batch: tuple[str, datetime, str | None],
    kibana_url: str | None,
    now: datetime,
    outlets: Mapping[str, int],
) -> dict[str, Any]:
    """The ledger document of "``rule`` alerted ``match``": everything its email needs."""
    batch_key, due, period = batch
    return {
        "kind": "story",
        "rule_id": rule.id,
        "rule_name": rule.name,
        "query": rule.query,
        "recipients": list(rule.recipients),
        "mode": rule.mode,
        "batch_key": batch_key,
        "period": period,
        "kibana_url": kibana_url,
        "status": ledger.Status.PENDING,
        "due_at": es_iso(due),
        "decided_at": es_iso(now),
        "story_id": match.key,
        "article_id": detail["article_id"],
        "title": detail.get("title") or "(no title)",
        "url": detail.get("url") or detail.get("canonical_url"),
        "outlet": detail.get("site_name") or detail.get("domain"),
        "published_at": detail.get("published_at"),
        "indexed_at": detail.get("indexed_at"),
        "snippets": detail["snippets"],
        "also_in": max(outlets.get(match.key, 1) - 1, 0),
        "matched_articles": match.articles,
        "timezone": rule.zone,
    }


def decide(
    es: Client,
    names: IndexNames,
    rules: Sequence[AlertRule],
    alert_settings: AlertSettings,
    *,
    now: datetime | None = None,
) -> RunReport:
    """Evaluate ``rules`` over the articles indexed since their last evaluation; record in the
    ledger (``create``, deterministic ids) every (rule, story) pair not alerted before.

    A rule's window only advances once its decisions are safely in the ledger.
    """
    now = now or datetime.now(UTC)
    report = RunReport()
    started = monotonic()
    refresh(es, names.articles)  # everything written so far is searchable
    end = now - alert_settings.lag
    windows = {w.rule.id: w for w in _windows(es, names, rules, end, alert_settings.first_lookback)}
    report.counts["rules_evaluated"] = len(windows)
    if not windows:
        log.info("alerts: no rule to evaluate (of %d)", len(rules))
        return report
    screened = None
    if 0 < alert_settings.presearch_from <= len(windows):  # skip what cannot match (presearch)
        pairs = [(w.rule.search, w.span) for w in windows.values()]
        screened = presearch.screen(es, names, pairs, report, alert_settings.presearch_from)
        report.timed("presearch", started)
        started = monotonic()
    searched = [
        w for w in windows.values() if screened is None or w.rule.id not in screened.skipped
    ]
    matches, failed = _match_new_articles(es, names, searched, report)
    matches.update({rule_id: {} for rule_id in windows if rule_id not in matches})
    report.timed("match", started)
    for rule_id, found in matches.items():
        if found:
            articles = sum(m.articles for m in found.values())
            log.info("rule %s: matched %d article(s), %s", rule_id, articles, _stories(len(found)))

    candidates = {
        decision_id(rule_id, key): (rule_id, match)
        for rule_id, found in matches.items()
        for key, match in found.items()
    }
    report.counts["matches"] += sum(m.articles for _, m in candidates.values())
    started = monotonic()
    known = ledger.decided(es, names, candidates)
    report.counts["already_alerted"] += len(known)
    new: dict[str, list[Match]] = defaultdict(list)
    muted = honoured(es, names, matches).muted  # stories people muted for a rule: not decided
    for doc_id, (rule_id, match) in candidates.items():
        if doc_id in known:
            continue
        if (rule_id, match.key) in muted:
            report.counts["stories_muted"] += 1
            continue
        new[rule_id].append(match)
    report.timed("ledger_lookup", started)
    details = first_articles(
        es, names, windows, new, report, local_snippets=alert_settings.local_snippets
    )
    started = monotonic()
    outlets = alerting.outlet_counts(
        es, names, (m.key for ms in new.values() for m in ms if m.has_story)
    )
    events = story_events(es, names, (m.key for ms in new.values() for m in ms if m.has_story))
    report.timed("stories", started)
    started = monotonic()

    docs: dict[str, dict[str, Any]] = {}
    owner: dict[str, str] = {}
    for rule_id, fresh in new.items():
        rule = windows[rule_id].rule
        batch = _batch(rule, now)
        link = kibana_link(rule, alert_settings.kibana_url, alert_settings.kibana_data_view)
        for match in fresh:
            detail = details.get((rule_id, match.key))
            if detail is None:  # changed since the first search (replaced, deleted): next run
                failed.add(rule_id)
                continue
            doc_id = decision_id(rule_id, match.key)
            docs[doc_id] = _decision(rule, match, detail, batch, link, now, outlets)
            docs[doc_id].update(event_fields(events.get(match.key) if match.has_story else None))
            owner[doc_id] = rule_id
    rules_by_id = {w.rule.id: w.rule for w in windows.values()}
    report.counts["event_repeats"] += mark_repeats(es, names, rules_by_id, docs)
    written = ledger.create_decisions(es, names, docs)
    report.counts["stories_decided"] += len(written.ok)
    report.counts["already_alerted"] += len(written.conflicts)  # decided meanwhile elsewhere
    for doc_id, reason in written.failed.items():
        failed.add(owner[doc_id])
        report.problem(f"rule {owner[doc_id]}: ledger write failed: {reason}")
    decided = Counter(owner[i] for i in written.ok)
    for rule_id, count in sorted(decided.items()):
        log.info("rule %s: decided %s", rule_id, _stories(count))

    states = {
        w.rule.id: {
            "rule_id": w.rule.id,
            "query": w.rule.query,
            "mode": w.rule.mode,
            "evaluated_from": es_iso(w.span.start),
            "evaluated_to": es_iso(w.span.end),
            "evaluated_at": es_iso(now),
            "last_matches": sum(m.articles for m in matches[w.rule.id].values()),
            "last_new_stories": decided[w.rule.id],
        }
        for w in windows.values()
        if w.rule.id not in failed
    }
    saved = ledger.save_states(es, names, states)
    if saved.failed:
        raise RuntimeError(f"could not store alert state: {saved.failed}")
    report.counts["rules_failed"] += len(failed)
    report.timed("ledger_write", started)
    log.info(
        "alerts: %d rule(s) evaluated, %d failed; %s decided",
        len(windows),
        len(failed),
        _stories(len(written.ok)),
    )
    return report
