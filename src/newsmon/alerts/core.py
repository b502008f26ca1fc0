"""Keyword alerts: rules from YAML, evaluation with ``_msearch``, a ledger in Elasticsearch, email.

A rule is a Lucene query (Kibana's syntax) over the title and text of articles, optional filters
and recipients. Each run evaluates every rule over the articles *indexed* since its previous
evaluation, decides which (rule, story) pairs are new by creating one ledger document per pair
with a deterministic id — the first ``create`` wins, so a story is alerted once per rule, ever —
and then sends every decided-but-unsent batch as one email (see docs/alerts.md).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from email.message import EmailMessage
from time import monotonic
from typing import Annotated, Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from elasticsearch import ConflictError, Elasticsearch, NotFoundError, helpers
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..config import (
    ConfigError,
    Settings,
    _EnvReader,
    check_unique_ids,
    load_yaml_model,
    read_config_file,
    yaml_line,
)
from ..store import IndexNames, bulk_write
from .mail import (
    AlertEmail,
    AlertItem,
    SendResult,
    SmtpSettings,
    check_address,
    compose,
    message_id_for,
)
from .mail import send as smtp_send

__all__ = [
    "AlertRule",
    "AlertSettings",
    "DigestSchedule",
    "Preview",
    "QueryProblem",
    "RuleSet",
    "RunReport",
    "decide",
    "deliver",
    "load_rules",
    "open_alerts",
    "parse_duration",
    "parse_rules",
    "preview",
    "rule_query",
    "run_alerts",
    "validate_queries",
]

log = logging.getLogger(__name__)

Mode = Literal["immediate", "digest"]

SEARCH_FIELDS = ("title", "text")
GROUP = 200  # rules per search of the matching pass (one aggregation bucket each)
STORY_BUCKETS = 500  # stories per rule and window the aggregation lists; more: hit by hit
PAGE = 1000  # hits per search page; more are paged with search_after
MSEARCH_CHUNK = 20  # searches per _msearch request
MSEARCH_WORKERS = 2  # _msearch requests in flight
MAX_ITEMS = 50  # stories listed in one email; the rest are counted and linked
SNIPPETS = 2  # highlighted fragments per story
FLOOD_STORIES_PER_DAY = 20  # preview warns above this
MAX_SNIPPET_CHARS = 400
FAST_HIGHLIGHT_CHARS = 20_000  # text analysed for snippets on the first pass
ITEM_FIELDS = ("title", "url", "canonical_url", "site_name", "domain", "published_at", "indexed_at")


# --- rules ---------------------------------------------------------------------------------------

RuleId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
Label = Annotated[str, Field(min_length=1, max_length=256)]
_SCHEDULE = re.compile(
    r"^(?:(?P<hourly>hourly)|daily\s+(?P<hour>[01]?\d|2[0-3]):(?P<minute>[0-5]\d))"
    r"(?:\s+(?P<tz>[A-Za-z][A-Za-z0-9_+/-]*))?$"
)


@dataclass(frozen=True)
class DigestSchedule:
    """When a digest is sent: every hour on the hour, or daily at HH:MM, in a time zone."""

    every: Literal["hourly", "daily"]
    hour: int = 0
    minute: int = 0
    timezone: str = "UTC"

    @classmethod
    def parse(cls, text: str) -> DigestSchedule:
        match = _SCHEDULE.fullmatch(" ".join(text.split()))
        if match is None:
            raise ValueError(
                f"{text!r}: expected 'hourly [TIME/ZONE]' or 'daily HH:MM [TIME/ZONE]'"
                " (e.g. 'daily 08:00 Asia/Karachi')"
            )
        tz = match["tz"] or "UTC"
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {tz!r} (an IANA name like Europe/London)"
            ) from None
        if match["hourly"]:
            return cls("hourly", timezone=tz)
        return cls("daily", int(match["hour"]), int(match["minute"]), tz)

    def next_after(self, moment: datetime) -> datetime:
        """The first send time strictly after ``moment`` (UTC)."""
        zone = ZoneInfo(self.timezone)
        local = moment.astimezone(zone)
        if self.every == "hourly":
            base = local.replace(minute=0, second=0, microsecond=0)
            candidates = (base + timedelta(hours=n) for n in range(0, 4))
        else:
            candidates = (
                datetime.combine(
                    local.date() + timedelta(days=n), time(self.hour, self.minute), zone
                )
                for n in range(0, 3)
            )
        for candidate in candidates:
            utc = candidate.astimezone(UTC)
            if utc > moment:
                return utc
        raise AssertionError("unreachable: a later send time always exists")  # pragma: no cover

    def previous(self, due: datetime) -> datetime:
        """The send time before ``due``: the start of the period that ends at ``due``."""
        moment = self.next_after(due - timedelta(hours=2 if self.every == "hourly" else 26))
        while (following := self.next_after(moment)) < due:
            moment = following
        return moment

    def __str__(self) -> str:
        if self.every == "hourly":
            return f"hourly {self.timezone}"
        return f"daily {self.hour:02d}:{self.minute:02d} {self.timezone}"


class RuleFilters(BaseModel):
    """Only articles that match every given list (each list: any of its values)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    feeds: tuple[Label, ...] = ()
    domains: tuple[Label, ...] = ()
    languages: tuple[Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")], ...] = ()
    tags: tuple[Label, ...] = ()

    def clauses(self) -> list[dict[str, Any]]:
        fields = (
            ("feed_id", self.feeds),
            ("domain", tuple(d.lower().removeprefix("www.") for d in self.domains)),
            ("language", self.languages),
            ("tags", self.tags),
        )
        return [{"terms": {name: list(values)}} for name, values in fields if values]

    def lucene(self) -> str:
        """The same filters in Lucene syntax (for the Kibana link)."""
        fields = (
            ("feed_id", self.feeds),
            ("domain", self.domains),
            ("language", self.languages),
            ("tags", self.tags),
        )
        return " AND ".join(
            f"{name}:(" + " OR ".join(_quote_lucene(v) for v in values) + ")"
            for name, values in fields
            if values
        )


def _quote_lucene(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class AlertRule(BaseModel):
    """One alert: what to look for, in which articles, who hears about it and how often."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    id: RuleId
    name: Label
    query: Annotated[str, Field(min_length=1, max_length=10_000)]
    filters: RuleFilters = RuleFilters()
    recipients: tuple[str, ...] = Field(min_length=1, max_length=100)
    mode: Mode = "immediate"
    schedule: str | None = None
    enabled: bool = True

    @field_validator("recipients")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for address in value:
            check_address(address)  # one bare address: nothing that could add a header
        if len({a.lower() for a in value}) != len(value):
            raise ValueError("an address is listed twice")
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is not None:
            DigestSchedule.parse(value)
        return value

    @model_validator(mode="after")
    def _schedule_for_digests(self) -> AlertRule:
        if self.mode == "digest" and self.schedule is None:
            raise ValueError("a digest rule needs a schedule ('hourly' or 'daily HH:MM TZ')")
        if self.mode == "immediate" and self.schedule is not None:
            raise ValueError("schedule is only for mode: digest")
        return self

    @property
    def digest(self) -> DigestSchedule | None:
        return DigestSchedule.parse(self.schedule) if self.schedule else None


class _AlertsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alerts: list[AlertRule]


@dataclass(frozen=True)
class RuleSet:
    """The rules of one file, and where each rule's query is written (for error messages)."""

    rules: tuple[AlertRule, ...]
    source: str = "<alerts>"
    query_lines: Mapping[str, int | None] = field(default_factory=dict)

    def get(self, rule_id: str) -> AlertRule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        known = ", ".join(r.id for r in self.rules) or "none"
        raise ConfigError(f"no rule {rule_id!r} (rules: {known})", file=self.source)

    def enabled(self, mode: Mode | None = None) -> list[AlertRule]:
        return [r for r in self.rules if r.enabled and (mode is None or r.mode == mode)]


def parse_rules(text: str, source: str = "<alerts>") -> RuleSet:
    """Parse and validate an alerts YAML document (schema only; see :func:`validate_queries`)."""
    parsed, root = load_yaml_model(text, source, _AlertsFile, "alerts")
    check_unique_ids([r.id for r in parsed.alerts], root, source, "alerts", "rule")
    lines = {r.id: yaml_line(root, ["alerts", i, "query"]) for i, r in enumerate(parsed.alerts)}
    return RuleSet(tuple(parsed.alerts), source, lines)


def load_rules(path: str | os.PathLike[str]) -> RuleSet:
    """Load and validate the alert rules in ``path``."""
    return parse_rules(read_config_file(path, "alerts file"), os.fspath(path))


def rule_query(rule: AlertRule, *extra_filters: Mapping[str, Any]) -> dict[str, Any]:
    """The rule as an Elasticsearch query: its Lucene query on title and text, its filters."""
    return {
        "bool": {
            "must": [
                {
                    "query_string": {
                        "query": rule.query,
                        "fields": list(SEARCH_FIELDS),
                        "default_operator": "OR",
                        "analyze_wildcard": True,
                    }
                }
            ],
            "filter": [*extra_filters, *rule.filters.clauses()],
        }
    }


@dataclass(frozen=True)
class QueryProblem:
    rule_id: str
    line: int | None
    field: str  # e.g. "alerts[0] (id 'pak-us').query"
    message: str

    def error(self, source: str) -> ConfigError:
        return ConfigError(self.message, file=source, line=self.line, field=self.field)


_PARSE_ERROR = re.compile(r"(Cannot parse .*?)(?:\s*Was expecting|$)", re.S)
_UNMAPPED = re.compile(r"unmapped fields \[([^\]]*)\]")


def validate_queries(
    es: Elasticsearch,
    names: IndexNames,
    rule_set: RuleSet,
    only: Sequence[AlertRule] | None = None,
) -> tuple[dict[str, str], list[QueryProblem]]:
    """Check every rule's query (or those of ``only``) with ``_validate/query``.

    Returns how Elasticsearch reads each valid query (its explanation) and the problems: syntax
    errors with the parser's explanation, and fields that articles do not have.
    """

    def check(rule: AlertRule) -> tuple[AlertRule, Mapping[str, Any]]:
        body = es.indices.validate_query(
            index=names.articles, query=rule_query(rule)["bool"]["must"][0], explain=True
        )
        return rule, body.body

    explained: dict[str, str] = {}
    problems: list[QueryProblem] = []
    with ThreadPoolExecutor(MSEARCH_WORKERS) as pool:
        for rule, body in pool.map(check, rule_set.rules if only is None else only):
            line = rule_set.query_lines.get(rule.id)
            where = f"alerts[{rule_set.rules.index(rule)}] (id {rule.id!r}).query"
            details = body.get("explanations") or [{}]
            if not body.get("valid"):
                error = str(details[0].get("error") or body.get("error") or "invalid query")
                found = _PARSE_ERROR.search(error)
                message = " ".join((found.group(1) if found else error).split())
                problems.append(QueryProblem(rule.id, line, where, f"invalid query: {message}"))
                continue
            explanation = str(details[0].get("explanation") or "")
            unknown = sorted(
                {f for m in _UNMAPPED.finditer(explanation) for f in m.group(1).split(",")}
                - {"null", ""}
            )
            if unknown:
                problems.append(
                    QueryProblem(
                        rule.id,
                        line,
                        where,
                        f"articles have no field {', '.join(map(repr, unknown))}"
                        f" (Elasticsearch reads the query as: {explanation})",
                    )
                )
            explained[rule.id] = explanation
    return explained, problems


# --- settings ------------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``24h``, ``7d``, ``2w`` → a timedelta."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 30m, 24h or 7d")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


@dataclass(frozen=True)
class AlertSettings:
    """How alerts run (``NEWSMON_ALERTS*``, ``NEWSMON_KIBANA_*``)."""

    rules_file: str = "config/alerts.yaml"
    kibana_url: str | None = None
    kibana_data_view: str | None = None
    lag: timedelta = timedelta(seconds=15)  # indexed_at this recent waits for the next run
    first_lookback: timedelta = timedelta(days=1)  # what a new rule sees on its first run
    retry_after: timedelta = timedelta(minutes=5)  # first retry of a 4xx; doubles, up to 2 h
    claim_timeout: timedelta = timedelta(minutes=10)  # a batch "sending" longer is taken over
    max_attempts: int = 12  # 4xx/connection retries of one email before it is given up (~15 h)

    @classmethod
    def from_env(
        cls, settings: Settings, environ: Mapping[str, str] | None = None
    ) -> AlertSettings:
        env = os.environ if environ is None else environ
        reader = _EnvReader(env)

        def duration(name: str, default: timedelta, *, positive: bool = False) -> timedelta:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                value = parse_duration(raw)
            except ValueError as exc:
                raise ConfigError(str(exc), file="environment", field=name) from None
            if positive and value <= timedelta(0):
                raise ConfigError(
                    f"must be longer than 0 (got {raw!r})", file="environment", field=name
                )
            return value

        kibana = env.get("NEWSMON_KIBANA_URL", "").strip().rstrip("/") or None
        if kibana and not kibana.startswith(("http://", "https://")):
            raise ConfigError(
                f"must be an http(s) URL (got {kibana!r})",
                file="environment",
                field="NEWSMON_KIBANA_URL",
            )
        return cls(
            rules_file=reader.text(
                "NEWSMON_ALERTS", os.path.join(settings.config_dir, "alerts.yaml")
            ),
            kibana_url=kibana,
            kibana_data_view=env.get("NEWSMON_KIBANA_DATA_VIEW", "").strip() or None,
            lag=duration("NEWSMON_ALERTS_LAG", cls.lag),
            first_lookback=duration("NEWSMON_ALERTS_FIRST_LOOKBACK", cls.first_lookback),
            retry_after=duration("NEWSMON_ALERTS_RETRY_AFTER", cls.retry_after),
            claim_timeout=duration(
                "NEWSMON_ALERTS_CLAIM_TIMEOUT", cls.claim_timeout, positive=True
            ),
            max_attempts=reader.integer("NEWSMON_ALERTS_MAX_ATTEMPTS", cls.max_attempts),
        )


def _rison(value: str) -> str:
    return "'" + value.replace("!", "!!").replace("'", "!'") + "'"


def kibana_link(
    rule: AlertRule, base: str | None, data_view: str | None = None, since: str = "now-7d"
) -> str | None:
    """A Discover link running the rule's query (Lucene) and filters, or None without a base."""
    if not base:
        return None
    lucene = f"({rule.query})"
    if rule.filters.lucene():
        lucene += " AND " + rule.filters.lucene()
    source = f"dataSource:(dataViewId:{_rison(data_view)},type:dataView)," if data_view else ""
    app = f"({source}query:(language:lucene,query:{_rison(lucene)}))"
    global_ = f"(time:(from:{since},to:now))"
    safe = "()',:!"
    return f"{base}/app/discover#/?_g={quote(global_, safe=safe)}&_a={quote(app, safe=safe)}"


# --- evaluation: which (rule, story) pairs are new ---------------------------------------------


def _ms(moment: datetime) -> datetime:
    """Millisecond precision, like Elasticsearch dates (so windows meet exactly)."""
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _iso(moment: datetime) -> str:
    return _ms(moment).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def decision_id(rule_id: str, story_key: str) -> str:
    """The ledger id of "``rule_id`` alerted ``story_key``": the same pair, the same id, ever."""
    return hashlib.sha256(f"story\n{rule_id}\n{story_key}".encode()).hexdigest()


def email_id(batch_key: str) -> str:
    return hashlib.sha256(f"email\n{batch_key}".encode()).hexdigest()


def _msearch(
    es: Elasticsearch, index: str, bodies: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """Run the searches in chunks of :data:`MSEARCH_CHUNK`, a few requests at once, in order."""
    chunks = [bodies[i : i + MSEARCH_CHUNK] for i in range(0, len(bodies), MSEARCH_CHUNK)]

    def run(chunk: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        searches: list[Mapping[str, Any]] = []
        for body in chunk:
            searches += [{"index": index}, body]
        return list(es.msearch(searches=searches)["responses"])

    if len(chunks) <= 1:
        return [r for chunk in chunks for r in run(chunk)]
    with ThreadPoolExecutor(MSEARCH_WORKERS, thread_name_prefix="newsmon-msearch") as pool:
        return [r for responses in pool.map(run, chunks) for r in responses]


def _error_text(response: Mapping[str, Any]) -> str:
    error = response.get("error") or {}
    if isinstance(error, Mapping):
        cause = (error.get("root_cause") or [error])[0]
        return f"{cause.get('type')}: {cause.get('reason')}"[:500]
    return str(error)[:500]


@dataclass
class RunReport:
    """Counts of an alerts run, and the first problems seen (what a DAG task returns)."""

    counts: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    emails: list[dict[str, Any]] = field(default_factory=list)  # rule, batch, status, items
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
        for phase, seconds in other.seconds.items():
            self.seconds[phase] = round(self.seconds.get(phase, 0.0) + seconds, 3)

    def as_dict(self) -> dict[str, Any]:
        return {
            "counts": dict(self.counts),
            "problems": list(self.problems),
            "emails": list(self.emails),
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
        if self.problems:
            lines.append(f"  problems (first {len(self.problems)}):")
            lines += [f"    {p}" for p in self.problems]
        return "\n".join(lines)


@dataclass(frozen=True)
class _Window:
    rule: AlertRule
    start: datetime  # exclusive
    end: datetime  # inclusive


@dataclass
class _Match:
    """One story a rule matched in its window."""

    key: str  # the story id, or the article id for an article without one
    has_story: bool
    articles: int = 0  # matching articles of the story in the window
    article_id: str | None = None  # known for an article without a story id


def _windows(
    es: Elasticsearch,
    names: IndexNames,
    rules: Sequence[AlertRule],
    end: datetime,
    first_lookback: timedelta,
) -> list[_Window]:
    index = names.index("alert-state")
    found: dict[str, datetime] = {}
    for offset in range(0, len(rules), 1000):
        ids = [r.id for r in rules[offset : offset + 1000]]
        for doc in es.mget(index=index, ids=ids)["docs"]:
            when = _parse_time((doc.get("_source") or {}).get("evaluated_to"))
            if doc.get("found") and when is not None:
                found[doc["_id"]] = when
    out = []
    for rule in rules:
        start = found.get(rule.id, end - first_lookback)
        if start < end:
            out.append(_Window(rule, start, end))
    return out


def _in_window(window: _Window) -> dict[str, Any]:
    return {"range": {"indexed_at": {"gt": _iso(window.start), "lte": _iso(window.end)}}}


_NO_STORY = {"bool": {"must_not": [{"exists": {"field": "story_id"}}]}}


def _group_body(windows: Sequence[_Window]) -> dict[str, Any]:
    """One search for rules sharing a window: a ``filters`` aggregation with a bucket per rule,
    and in each the story ids it matched (and how many articles lack one)."""
    return {
        "query": {"bool": {"filter": [_in_window(windows[0])]}},
        "size": 0,
        "track_total_hits": False,
        "aggs": {
            "rules": {
                "filters": {"filters": {w.rule.id: rule_query(w.rule) for w in windows}},
                "aggs": {
                    "stories": {"terms": {"field": "story_id", "size": STORY_BUCKETS}},
                    "loose": {"missing": {"field": "story_id"}},
                },
            }
        },
    }


def _hits_body(window: _Window, loose_only: bool, after: list[Any] | None) -> dict[str, Any]:
    extra = [_in_window(window), *([_NO_STORY] if loose_only else [])]
    body: dict[str, Any] = {
        "query": rule_query(window.rule, *extra),
        "size": PAGE,
        "_source": False,
        "docvalue_fields": ["story_id"],
        "sort": [{"indexed_at": "asc"}, {"canonical_url": "asc"}],
        "track_total_hits": False,
    }
    if after is not None:
        body["search_after"] = after
    return body


def _match_new_articles(
    es: Elasticsearch, names: IndexNames, windows: Sequence[_Window], report: RunReport
) -> tuple[dict[str, dict[str, _Match]], set[str]]:
    """The stories each rule matched among the articles indexed in its window, by rule id.

    Rules sharing a window are searched :data:`GROUP` at a time (one aggregation bucket each); a
    group whose search fails is split until the rule at fault is alone. Articles without a
    story id, and rules matching more than :data:`STORY_BUCKETS` stories, are then listed hit
    by hit. Returns the matches and the ids of rules whose search failed.
    """
    matches: dict[str, dict[str, _Match]] = {w.rule.id: {} for w in windows}
    failed: set[str] = set()
    by_window: dict[tuple[datetime, datetime], list[_Window]] = defaultdict(list)
    for window in windows:
        by_window[(window.start, window.end)].append(window)
    groups = [ws[i : i + GROUP] for ws in by_window.values() for i in range(0, len(ws), GROUP)]
    listing: list[tuple[_Window, bool, list[Any] | None]] = []  # (window, loose only, after)
    while groups:
        split: list[list[_Window]] = []
        responses = _msearch(es, names.articles, [_group_body(g) for g in groups])
        for group, response in zip(groups, responses, strict=True):
            if "error" in response:
                if len(group) > 1:
                    split += [group[: len(group) // 2], group[len(group) // 2 :]]
                else:
                    failed.add(group[0].rule.id)
                    report.counts["rule_errors"] += 1
                    report.problem(
                        f"rule {group[0].rule.id}: search failed: {_error_text(response)}"
                    )
                continue
            buckets = response["aggregations"]["rules"]["buckets"]
            for window in group:
                bucket = buckets[window.rule.id]
                found = matches[window.rule.id]
                for story in bucket["stories"]["buckets"]:
                    found[story["key"]] = _Match(story["key"], True, int(story["doc_count"]))
                overflow = int(bucket["stories"]["sum_other_doc_count"]) > 0
                if overflow or bucket["loose"]["doc_count"]:
                    listing.append((window, not overflow, None))
        groups = split
    while listing:  # the rare cases, hit by hit
        more: list[tuple[_Window, bool, list[Any] | None]] = []
        bodies = [_hits_body(*item) for item in listing]
        for (window, loose, after), response in zip(
            listing, _msearch(es, names.articles, bodies), strict=True
        ):
            rule_id = window.rule.id
            if "error" in response:
                failed.add(rule_id)
                report.problem(f"rule {rule_id}: search failed: {_error_text(response)}")
                continue
            if not loose and after is None:
                matches[rule_id] = {}  # more stories than buckets: count them all from hits
            page = response["hits"]["hits"]
            for hit in page:
                story = (hit.get("fields") or {}).get("story_id") or []
                key = str(story[0]) if story else hit["_id"]
                match = matches[rule_id].setdefault(
                    key, _Match(key, bool(story), article_id=None if story else hit["_id"])
                )
                match.articles += 1
            if len(page) == PAGE:
                more.append((window, loose, page[-1]["sort"]))
        listing = more
    for rule_id in failed:
        matches[rule_id] = {}  # found again next time, when the window is searched again
    return matches, failed


def _already_decided(es: Elasticsearch, ledger: str, ids: Sequence[str]) -> set[str]:
    chunks = [list(ids[i : i + 2000]) for i in range(0, len(ids), 2000)]

    def found(chunk: list[str]) -> list[str]:
        docs = es.mget(index=ledger, ids=chunk, source=False)["docs"]
        return [d["_id"] for d in docs if d.get("found")]

    with ThreadPoolExecutor(MSEARCH_WORKERS) as pool:
        return {doc_id for chunk in pool.map(found, chunks) for doc_id in chunk}


def _snippets(highlight: Mapping[str, Sequence[str]]) -> list[str]:
    fragments = list(highlight.get("text") or [])[:SNIPPETS] or list(highlight.get("title") or [])
    return [f[:MAX_SNIPPET_CHARS] for f in fragments[:SNIPPETS]]


def _highlight(*, full: bool) -> dict[str, Any]:
    """Highlighting: long texts are first analysed only so far (most snippets are early, and
    analysis is most of the cost); an article left without a snippet is done again in full."""
    fields: dict[str, Any] = {"text": {"fragment_size": 180, "number_of_fragments": SNIPPETS}}
    if full:
        fields["title"] = {"number_of_fragments": 0}
    return {
        "pre_tags": ["<em>"],
        "post_tags": ["</em>"],
        "fields": fields,
        **({} if full else {"max_analyzed_offset": FAST_HIGHLIGHT_CHARS}),
    }


def _details(
    es: Elasticsearch,
    names: IndexNames,
    windows: Mapping[str, _Window],
    new: Mapping[str, Sequence[_Match]],
    report: RunReport,
) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (rule id, story key): the story's first matching article in the window — its fields
    and, for the stories an email lists (:data:`MAX_ITEMS` per rule), highlighted snippets."""
    jobs: list[tuple[str, bool, dict[str, Any]]] = []  # (rule id, listed, search)
    for rule_id, found in new.items():
        window = windows[rule_id]
        listed, rest = found[:MAX_ITEMS], found[MAX_ITEMS:]
        for part, highlight in ((listed, True), (rest, False)):
            stories = [m.key for m in part if m.has_story]
            loose = [m.article_id for m in part if not m.has_story and m.article_id]
            common: dict[str, Any] = {
                "_source": [*ITEM_FIELDS, "story_id"],
                "track_total_hits": False,
                **({"highlight": _highlight(full=False)} if highlight else {}),
            }
            if stories:  # the earliest indexed matching article of each story
                query = rule_query(
                    window.rule, _in_window(window), {"terms": {"story_id": stories}}
                )
                body = {
                    "query": query,
                    "collapse": {"field": "story_id"},
                    "sort": [{"indexed_at": "asc"}],
                    "size": len(stories),
                    **common,
                }
                jobs.append((rule_id, highlight, body))
            if loose:
                query = rule_query(window.rule, {"ids": {"values": loose}})
                jobs.append((rule_id, highlight, {"query": query, "size": len(loose), **common}))
    out: dict[tuple[str, str], dict[str, Any]] = {}
    again: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)  # rule -> article -> detail
    responses = _msearch(es, names.articles, [body for _, _, body in jobs])
    for (rule_id, shown, _), response in zip(jobs, responses, strict=True):
        if "error" in response:
            report.problem(f"rule {rule_id}: article search failed: {_error_text(response)}")
            continue
        for hit in response["hits"]["hits"]:
            src = hit["_source"]
            detail = out[(rule_id, src.get("story_id") or hit["_id"])] = {
                **src,
                "article_id": hit["_id"],
                "snippets": _snippets(hit.get("highlight") or {}),
            }
            if shown and not detail["snippets"]:
                again[rule_id][hit["_id"]] = detail
    retry = [
        (
            details,
            {
                "query": rule_query(windows[rule_id].rule, {"ids": {"values": list(details)}}),
                "size": len(details),
                "_source": False,
                "highlight": _highlight(full=True),
            },
        )
        for rule_id, details in again.items()
    ]
    for (details, _), response in zip(
        retry, _msearch(es, names.articles, [body for _, body in retry]), strict=True
    ):
        for hit in (response.get("hits") or {}).get("hits") or ():
            details[hit["_id"]]["snippets"] = _snippets(hit.get("highlight") or {})
    report.counts["snippets_full_pass"] += sum(len(d) for d in again.values())
    return out


def _outlet_counts(
    es: Elasticsearch, names: IndexNames, story_ids: Iterable[str]
) -> dict[str, int]:
    """Outlets per story: the stories index when it has the story, else the articles we see."""
    ids = sorted(set(story_ids))
    counts: dict[str, int] = {}
    for start in range(0, len(ids), 2000):
        chunk = ids[start : start + 2000]
        try:
            docs = es.mget(index=names.stories, ids=chunk, source_includes=["outlet_count"])
        except NotFoundError:
            break  # no stories index (yet)
        for doc in docs["docs"]:
            value = (doc.get("_source") or {}).get("outlet_count")
            if doc.get("found") and value is not None:
                counts[doc["_id"]] = int(value)
    missing = [i for i in ids if i not in counts]
    for start in range(0, len(missing), 1000):
        chunk = missing[start : start + 1000]
        response = es.search(
            index=names.articles,
            size=0,
            query={"terms": {"story_id": chunk}},
            aggs={
                "story": {
                    "terms": {"field": "story_id", "size": len(chunk)},
                    "aggs": {"outlets": {"cardinality": {"field": "domain"}}},
                }
            },
        )
        for bucket in response["aggregations"]["story"]["buckets"]:
            counts[bucket["key"]] = int(bucket["outlets"]["value"])
    return counts


def _batch(rule: AlertRule, now: datetime) -> tuple[str, datetime, str | None]:
    """The batch a decision made at ``now`` joins: its key, when it is due, its period label."""
    schedule = rule.digest
    if rule.mode == "immediate" or schedule is None:
        return f"{rule.id}/immediate/{_iso(now)}", now, None
    due = schedule.next_after(now)
    start = schedule.previous(due)
    zone = ZoneInfo(schedule.timezone)
    label = (
        f"{start.astimezone(zone):%Y-%m-%d %H:%M} to {due.astimezone(zone):%Y-%m-%d %H:%M}"
        f" ({schedule.timezone})"
    )
    return f"{rule.id}/digest/{_iso(due)}", due, label


def decide(
    es: Elasticsearch,
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
    now = _ms(now or datetime.now(UTC))
    report = RunReport()
    started = monotonic()
    ledger = names.index("alert-ledger")
    es.indices.refresh(index=names.articles)  # everything written so far is searchable
    end = _ms(now - alert_settings.lag)
    windows = {w.rule.id: w for w in _windows(es, names, rules, end, alert_settings.first_lookback)}
    report.counts["rules_evaluated"] = len(windows)
    if not windows:
        return report
    matches, failed = _match_new_articles(es, names, list(windows.values()), report)
    report.timed("match", started)

    candidates = {
        decision_id(rule_id, key): (rule_id, match)
        for rule_id, found in matches.items()
        for key, match in found.items()
    }
    report.counts["matches"] += sum(m.articles for _, m in candidates.values())
    started = monotonic()
    known = _already_decided(es, ledger, list(candidates))
    report.counts["already_alerted"] += len(known)
    new: dict[str, list[_Match]] = defaultdict(list)
    for doc_id, (rule_id, match) in candidates.items():
        if doc_id not in known:
            new[rule_id].append(match)
    report.timed("ledger_lookup", started)
    started = monotonic()
    details = _details(es, names, windows, new, report)
    outlets = _outlet_counts(es, names, (m.key for ms in new.values() for m in ms if m.has_story))
    report.timed("snippets", started)
    started = monotonic()

    docs: list[tuple[str, str, dict[str, Any]]] = []
    owner: dict[str, str] = {}
    for rule_id, found in new.items():
        rule = windows[rule_id].rule
        batch_key, due, period = _batch(rule, now)
        for match in found:
            detail = details.get((rule_id, match.key))
            if detail is None:  # changed since the first search (replaced, deleted): next run
                failed.add(rule_id)
                continue
            doc_id = decision_id(rule_id, match.key)
            docs.append(
                (
                    "create",
                    doc_id,
                    {
                        "kind": "story",
                        "rule_id": rule.id,
                        "rule_name": rule.name,
                        "query": rule.query,
                        "recipients": list(rule.recipients),
                        "mode": rule.mode,
                        "batch_key": batch_key,
                        "period": period,
                        "kibana_url": kibana_link(
                            rule, alert_settings.kibana_url, alert_settings.kibana_data_view
                        ),
                        "status": "pending",
                        "due_at": _iso(due),
                        "decided_at": _iso(now),
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
                        "timezone": rule.digest.timezone if rule.digest else "UTC",
                    },
                )
            )
            owner[doc_id] = rule_id
    written = bulk_write(es, ledger, docs, refresh=True)
    report.counts["stories_decided"] += len(written.ok)
    report.counts["already_alerted"] += len(written.conflicts)  # decided meanwhile elsewhere
    for doc_id, reason in written.failed.items():
        failed.add(owner[doc_id])
        report.problem(f"rule {owner[doc_id]}: ledger write failed: {reason}")
    decided = Counter(owner[i] for i in written.ok)

    states = [
        (
            "index",
            w.rule.id,
            {
                "rule_id": w.rule.id,
                "query": w.rule.query,
                "mode": w.rule.mode,
                "evaluated_from": _iso(w.start),
                "evaluated_to": _iso(w.end),
                "evaluated_at": _iso(now),
                "last_matches": sum(m.articles for m in matches[w.rule.id].values()),
                "last_new_stories": decided[w.rule.id],
            },
        )
        for w in windows.values()
        if w.rule.id not in failed
    ]
    saved = bulk_write(es, names.index("alert-state"), states)
    if saved.failed:
        raise RuntimeError(f"could not store alert state: {saved.failed}")
    report.counts["rules_failed"] += len(failed)
    report.timed("ledger_write", started)
    return report


# --- delivery: every decided, unsent batch becomes one email -----------------------------------

SendFunction = Callable[[EmailMessage, SmtpSettings], SendResult]


def _claim(
    es: Elasticsearch,
    ledger: str,
    batch_key: str,
    items: Sequence[Mapping[str, Any]],
    now: datetime,
    claim_timeout: timedelta,
    message_id: str,
) -> tuple[Mapping[str, Any] | None, int]:
    """Take the right to send ``batch_key``: (the email document before, attempts so far) or
    (None, -1) when another worker holds it or it was already sent or failed.

    The first claim stores ``message_id``; every later attempt keeps the stored one."""
    doc_id = email_id(batch_key)
    first = items[0]
    claim = {
        "kind": "email",
        "rule_id": first["rule_id"],
        "batch_key": batch_key,
        "mode": first.get("mode"),
        "recipients": first.get("recipients"),
        "status": "sending",
        "claimed_at": _iso(now),
        "updated_at": _iso(now),
        "attempts": 0,
        "item_ids": [i["_id"] for i in items],
        "item_count": len(items),
        "message_id": message_id,
    }
    try:
        current = es.get(index=ledger, id=doc_id)
    except NotFoundError:
        try:
            es.create(index=ledger, id=doc_id, document=claim, refresh=True)
        except ConflictError:
            return None, -1
        return {}, 0
    src = current["_source"]
    status = src.get("status")
    if status in ("sent", "failed"):
        return src, -1
    if status == "sending":
        claimed = _parse_time(src.get("claimed_at")) or now
        if now - claimed < claim_timeout:
            return None, -1  # another worker is sending it (or died less than a timeout ago)
    attempts = int(src.get("attempts") or 0)
    try:
        es.index(
            index=ledger,
            id=doc_id,
            document={
                **src,
                **claim,
                "attempts": attempts,
                "message_id": src.get("message_id") or message_id,
            },
            if_seq_no=current["_seq_no"],
            if_primary_term=current["_primary_term"],
            refresh=True,
        )
    except ConflictError:
        return None, -1
    return src, attempts


def _alert_email(
    batch_key: str,
    items: Sequence[Mapping[str, Any]],
    recipients: Sequence[str] | None,
    message_id: str | None = None,
) -> AlertEmail:
    ordered = sorted(
        items,
        key=lambda d: (d.get("published_at") or d.get("indexed_at") or "", d["_id"]),
        reverse=True,
    )
    first = items[0]
    listed = ordered[:MAX_ITEMS]
    notes: tuple[str, ...] = ()
    if len(ordered) > len(listed):
        rest = len(ordered) - len(listed)
        notes = (f"{rest} more matching stor{'y' if rest == 1 else 'ies'} not listed here.",)
    return AlertEmail(
        rule_id=first["rule_id"],
        rule_name=first.get("rule_name") or first["rule_id"],
        query=first.get("query") or "",
        recipients=tuple(recipients or first.get("recipients") or ()),
        items=tuple(
            AlertItem(
                story_id=d.get("story_id") or d["_id"],
                title=d.get("title") or "(no title)",
                url=d.get("url") or "",
                outlet=d.get("outlet") or "",
                published_at=_parse_time(d.get("published_at")),
                snippets=tuple(d.get("snippets") or ()),
                also_in=int(d.get("also_in") or 0),
            )
            for d in listed
        ),
        batch_key=batch_key,
        mode=first.get("mode") or "immediate",
        period=first.get("period"),
        kibana_url=first.get("kibana_url"),
        total_matches=sum(int(d.get("matched_articles") or 1) for d in ordered),
        notes=notes,
        timezone=first.get("timezone") or "UTC",
        message_id=message_id,
    )


def _pending(
    es: Elasticsearch, ledger: str, modes: Sequence[str], now: datetime
) -> dict[str, list[dict[str, Any]]]:
    """Decided stories not sent yet whose batch is due, by batch key."""
    query = {
        "bool": {
            "filter": [
                {"term": {"kind": "story"}},
                {"terms": {"status": ["pending", "retry"]}},
                {"terms": {"mode": list(modes)}},
                {"range": {"due_at": {"lte": _iso(now)}}},
            ]
        }
    }
    batches: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for hit in helpers.scan(es, index=ledger, query={"query": query}, size=1000):
        batches[hit["_source"]["batch_key"]].append({"_id": hit["_id"], **hit["_source"]})
    return batches


def _mark(es: Elasticsearch, ledger: str, ids: Iterable[str], changes: Mapping[str, Any]) -> None:
    report = bulk_write(es, ledger, (("update", i, changes) for i in ids), refresh=True)
    if report.failed:
        raise RuntimeError(f"could not update the alert ledger: {report.failed}")


def deliver(
    es: Elasticsearch,
    names: IndexNames,
    smtp: SmtpSettings,
    alert_settings: AlertSettings,
    *,
    modes: Sequence[Mode] = ("immediate", "digest"),
    now: datetime | None = None,
    send: SendFunction | None = None,
    source_notes: Mapping[str, Sequence[str]] | None = None,
) -> RunReport:
    """Send every due batch of decided stories not sent yet, one email per (rule, batch).

    ``source_notes`` adds lines to a rule's emails, by rule id (its failing feeds, see
    :func:`newsmon.health.source_notes`).

    A batch is claimed in the ledger first (its email document, created or compare-and-set), so
    two workers never send it both; the result is recorded on the email document and its
    stories: ``sent``, ``retry`` (SMTP 4xx: due again after a backoff) or ``failed`` (5xx).
    """
    now = _ms(now or datetime.now(UTC))
    send_email = send or smtp_send
    report = RunReport()
    ledger = names.index("alert-ledger")
    es.indices.refresh(index=ledger)
    for batch_key, items in sorted(_pending(es, ledger, modes, now).items()):
        before, attempts = _claim(
            es,
            ledger,
            batch_key,
            items,
            now,
            alert_settings.claim_timeout,
            message_id_for(batch_key, smtp.sender),
        )
        ids = [i["_id"] for i in items]
        if attempts < 0:
            if before is not None:  # sent or failed, but the stories were not updated: repair
                listed = set(before.get("item_ids") or ())
                done = [i for i in ids if i in listed]
                _mark(es, ledger, done, {"status": before["status"], "updated_at": _iso(now)})
                late = [i for i in ids if i not in listed]
                if late:  # joined the batch after it went out: the next batch takes them
                    _mark(es, ledger, late, {"batch_key": f"{batch_key}+", "updated_at": _iso(now)})
            else:
                report.counts["batches_busy"] += 1
            continue
        before = before or {}
        left = list(before.get("recipients_left") or ())
        alert = _alert_email(batch_key, items, left or None, before.get("message_id"))
        if source_notes and source_notes.get(alert.rule_id):
            alert = replace(alert, notes=alert.notes + tuple(source_notes[alert.rule_id]))
        try:
            message = compose(alert, smtp, now=now)
        except ValueError as exc:  # nothing a resend would fix (e.g. a bad stored address)
            message = None
            result = SendResult("failed", None, f"cannot compose the email: {exc}", "")
        try:
            if message is not None:
                result = send_email(message, smtp)
        except BaseException as exc:
            # Interrupted between "decided" and "sent": release the claim so the next run
            # resends (the same Message-ID); a hard kill is released by the claim timeout.
            es.update(
                index=ledger,
                id=email_id(batch_key),
                doc={
                    "status": "retry",
                    "smtp_reason": f"interrupted: {type(exc).__name__}: {exc}"[:500],
                    "updated_at": _iso(now),
                },
                refresh=True,
            )
            raise
        status = _record(es, ledger, batch_key, ids, result, before, now, alert_settings)
        report.counts[f"emails_{status}"] += 1
        report.counts[f"stories_{status}"] += len(ids)
        report.emails.append(
            {
                "rule_id": alert.rule_id,
                "batch_key": batch_key,
                "status": status,
                "code": result.code,
                "reason": None if status == "sent" else result.reason[:500],
                "items": len(ids),
                "recipients": list(alert.recipients),
                "message_id": result.message_id,
            }
        )
        if status != "sent":
            report.problem(f"rule {alert.rule_id}: email {status} ({result.reason})")
    return report


def _record(
    es: Elasticsearch,
    ledger: str,
    batch_key: str,
    ids: Sequence[str],
    result: SendResult,
    before: Mapping[str, Any],
    now: datetime,
    alert_settings: AlertSettings,
) -> str:
    """Write how a send ended on the batch's email document and its stories; the status.

    ``before`` is the email document as claimed: an attempt for the recipients an earlier one
    left over (4xx) keeps the earlier result — the email stays sent to those who got it, and
    only the recipients still left are tried again, so no one gets it twice for a refusal.
    """
    attempts = int(before.get("attempts") or 0) + 1
    status = result.status
    left = list(before.get("recipients_left") or ())
    delivered_before = bool(left and before.get("sent_at"))
    refused = list(result.refused)
    reason = result.reason
    if left:  # the earlier permanent refusals stay on record
        refused = [r for r in before.get("refused") or () if r not in left] + refused
        reason = f"{reason} (earlier: {before.get('smtp_reason') or ''})"
    record: dict[str, Any] = {
        "status": status,
        "attempts": attempts,
        "message_id": result.message_id,
        "smtp_code": result.code,
        "smtp_reason": reason[:500] or None,
        "refused": refused,
        "recipients_left": [],
        "updated_at": _iso(now),
    }
    if status == "sent" and not delivered_before:
        record["sent_at"] = _iso(now)
    if status == "sent" and result.retry_recipients:  # some said "try later": only they
        status = "retry"
        record["recipients_left"] = list(result.retry_recipients)
    elif status == "retry":  # the same recipients as this attempt, or those of them it names
        record["recipients_left"] = list(result.retry_recipients) or left
    if status == "retry" and attempts >= alert_settings.max_attempts:
        status = "failed"
        record["smtp_reason"] = f"gave up after {attempts} attempts: {reason}"[:500]
        record["recipients_left"] = []
    if status == "failed" and delivered_before:  # it reached the others: it was sent
        status = "sent"
    record["status"] = status
    story_changes: dict[str, Any] = {"status": status, "updated_at": _iso(now)}
    if status == "retry":
        backoff = min(alert_settings.retry_after * 2 ** (attempts - 1), timedelta(hours=2))
        record["next_attempt_at"] = story_changes["due_at"] = _iso(now + backoff)
    es.update(index=ledger, id=email_id(batch_key), doc=record, refresh=True)
    _mark(es, ledger, ids, story_changes)
    return status


def open_alerts(
    settings: Settings, client: Elasticsearch | None = None
) -> tuple[Elasticsearch, IndexNames, AlertSettings, RuleSet]:
    """What a run needs: a client, the indices (created if missing), the settings, the rules."""
    from ..store import connect, ensure_indices

    es = client or connect(settings)
    names = IndexNames(settings.index_prefix)
    ensure_indices(es, names, settings.config_dir)
    alert_settings = AlertSettings.from_env(settings)
    return es, names, alert_settings, load_rules(alert_settings.rules_file)


def run_alerts(
    es: Elasticsearch,
    names: IndexNames,
    rule_set: RuleSet,
    alert_settings: AlertSettings,
    smtp: SmtpSettings,
    *,
    mode: Mode | None = None,
    now: datetime | None = None,
    send: SendFunction | None = None,
    source_notes: Mapping[str, Sequence[str]] | None = None,
) -> RunReport:
    """Decide (the enabled rules of ``mode``, or all), then deliver what is due."""
    now = now or datetime.now(UTC)
    report = decide(es, names, rule_set.enabled(mode), alert_settings, now=now)
    modes: tuple[Mode, ...] = (mode,) if mode else ("immediate", "digest")
    delivered = deliver(
        es, names, smtp, alert_settings, modes=modes, now=now, send=send, source_notes=source_notes
    )
    report.merge(delivered)
    return report


# --- preview: what a rule would have sent ------------------------------------------------------


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
        warning = self.flood_warning()
        if warning:
            lines.append(warning)
        return "\n".join(lines)


def _terminal(fragment: str) -> str:
    """A highlight fragment for a terminal: <em>x</em> → [x], whitespace collapsed."""
    text = fragment.replace("<em>", "[").replace("</em>", "]")
    return " ".join(text.split())


def preview(
    es: Elasticsearch,
    names: IndexNames,
    rule: AlertRule,
    *,
    since: timedelta = timedelta(days=7),
    time_field: Literal["published_at", "indexed_at"] = "published_at",
    sample: int = 5,
    now: datetime | None = None,
) -> Preview:
    """Backtest ``rule``: matches per day over the last ``since``, a sample of highlighted hits."""
    now = _ms(now or datetime.now(UTC))
    zone = rule.digest.timezone if rule.digest else "UTC"
    start = now - since
    response = es.search(
        index=names.articles,
        query=rule_query(rule, {"range": {time_field: {"gte": _iso(start), "lte": _iso(now)}}}),
        size=max(sample * 4, 20),
        sort=[{time_field: "desc"}],
        source_includes=[
            "title",
            "url",
            "site_name",
            "domain",
            "published_at",
            "indexed_at",
            "story_id",
        ],
        highlight={
            "pre_tags": ["<em>"],
            "post_tags": ["</em>"],
            "fields": {
                "text": {"fragment_size": 180, "number_of_fragments": SNIPPETS},
                "title": {},
            },
        },
        track_total_hits=True,
        aggs={
            "days": {
                "date_histogram": {
                    "field": time_field,
                    "calendar_interval": "day",
                    "time_zone": zone,
                    **(
                        {  # every day, quiet ones too, when they fit on a screen
                            "min_doc_count": 0,
                            "extended_bounds": {
                                "min": int(start.timestamp() * 1000),
                                "max": int(now.timestamp() * 1000),
                            },
                        }
                        if since <= timedelta(days=62)
                        else {"min_doc_count": 1}
                    ),
                    "format": "yyyy-MM-dd",
                },
                "aggs": {
                    "stories": {"cardinality": {"field": "story_id"}},
                    "no_story": {"missing": {"field": "story_id"}},
                },
            },
            "stories": {"cardinality": {"field": "story_id"}},
            "no_story": {"missing": {"field": "story_id"}},
        },
    )
    aggs = response["aggregations"]
    per_day = tuple(
        (
            b["key_as_string"],
            int(b["doc_count"]),
            int(b["stories"]["value"]) + int(b["no_story"]["doc_count"]),
        )
        for b in aggs["days"]["buckets"]
    )
    seen: set[str] = set()
    samples: list[Mapping[str, Any]] = []
    for hit in response["hits"]["hits"]:
        key = hit["_source"].get("story_id") or hit["_id"]
        if key in seen:
            continue
        seen.add(key)
        samples.append({**hit["_source"], "snippets": _snippets(hit.get("highlight") or {})})
        if len(samples) >= sample:
            break
    return Preview(
        rule=rule,
        since=since,
        time_field=time_field,
        articles=int(response["hits"]["total"]["value"]),
        stories=int(aggs["stories"]["value"]) + int(aggs["no_story"]["doc_count"]),
        per_day=per_day,
        samples=tuple(samples),
        timezone=zone,
    )
