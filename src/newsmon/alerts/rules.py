"""Alert rules: the YAML model, the rule as a query, and checking queries against the articles.

A rule is a Lucene query (Kibana's syntax) over the title and text of articles, optional filters
and recipients, sent at once (``immediate``) or on a schedule (``digest``); see docs/alerts.md.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..config import (
    ConfigError,
    FeedConfig,
    check_unique_ids,
    load_yaml_model,
    read_config_file,
    yaml_line,
)
from ..store import Client, IndexNames
from ..store.alerting import RuleSearch, term_filters, validate
from .query import rewrite_query
from .untrusted import check_address

__all__ = [
    "AlertRule",
    "DigestSchedule",
    "Mode",
    "QueryProblem",
    "RuleCheck",
    "RuleFilters",
    "RuleSet",
    "check_rules",
    "filter_problems",
    "kibana_link",
    "load_rules",
    "parse_rules",
    "query_warnings",
    "rule_query",
    "validate_queries",
]

Mode = Literal["immediate", "digest"]


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

    def terms(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """(article field, values) for each given list."""
        fields = (
            ("feed_id", self.feeds),
            ("domain", tuple(d.lower().removeprefix("www.") for d in self.domains)),
            ("language", self.languages),
            ("tags", self.tags),
        )
        return tuple((name, values) for name, values in fields if values)

    def clauses(self) -> list[dict[str, Any]]:
        """The filters as Elasticsearch ``terms`` filters."""
        return term_filters(self.terms())

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
    timezone: str | None = None  # for the times in its emails (default: its schedule's, else UTC)
    # "event": a later report of an event the rule has alerted on is not sent again
    once_per: Literal["story", "event"] = "story"

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None and value.upper() != "UTC":
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"unknown time zone {value!r} (an IANA name like Asia/Karachi)"
                ) from None
        return value

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

    @property
    def zone(self) -> str:
        """The time zone of the times in the rule's emails: ``timezone``, else its schedule's."""
        return self.timezone or (self.digest.timezone if self.digest else "UTC")

    @property
    def search(self) -> RuleSearch:
        """What the rule looks for, as the article searches take it: its query with the words
        normalised as the index has them (newsmon.alerts.query)."""
        return RuleSearch(self.id, rewrite_query(self.query).query, self.filters.terms())


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
    return rule.search.as_query(*extra_filters)


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
    es: Client,
    names: IndexNames,
    rule_set: RuleSet,
    only: Sequence[AlertRule] | None = None,
) -> tuple[dict[str, str], list[QueryProblem]]:
    """Check every rule's query (or those of ``only``) with ``_validate/query``.

    Returns how Elasticsearch reads each valid query (its explanation) and the problems: syntax
    errors with the parser's explanation, and fields that articles do not have.
    """
    rules = list(rule_set.rules if only is None else only)
    explained: dict[str, str] = {}
    problems: list[QueryProblem] = []
    for rule, checked in zip(rules, validate(es, names, [r.search for r in rules]), strict=True):
        line = rule_set.query_lines.get(rule.id)
        where = f"alerts[{rule_set.rules.index(rule)}] (id {rule.id!r}).query"
        if not checked.valid:
            found = _PARSE_ERROR.search(checked.error)
            message = " ".join((found.group(1) if found else checked.error).split())
            problems.append(QueryProblem(rule.id, line, where, f"invalid query: {message}"))
            continue
        explanation = checked.explanation
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


def filter_problems(
    rule_set: RuleSet,
    feeds: Sequence[FeedConfig],
    feeds_source: str = "feeds file",
    only: Sequence[AlertRule] | None = None,
) -> list[QueryProblem]:
    """Rules (of ``only``, or all) whose ``filters`` name a feed id or a tag that no feed of
    ``feeds`` has: they could never match (a typo, or a feed removed since)."""
    ids = {f.id for f in feeds}
    tags = {t for f in feeds for t in f.tags}
    problems = []
    for n, rule in enumerate(rule_set.rules):
        if only is not None and rule not in only:
            continue
        for kind, wanted, known in (
            ("feed", rule.filters.feeds, ids),
            ("tag", rule.filters.tags, tags),
        ):
            unknown = [v for v in wanted if v not in known]
            if unknown:
                problems.append(
                    QueryProblem(
                        rule.id,
                        None,
                        f"alerts[{n}] (id {rule.id!r}).filters.{kind}s",
                        f"no feed in {feeds_source} has the {kind}"
                        f"{'s' * (len(unknown) > 1)} {', '.join(map(repr, unknown))}",
                    )
                )
    return problems


def query_warnings(
    rule_set: RuleSet, only: Sequence[AlertRule] | None = None
) -> list[QueryProblem]:
    """What the reader of each rule (of ``only``, or all) should know about how its query is
    read (unquoted hyphenated words, a query newsmon cannot parse and runs as written)."""
    return [
        QueryProblem(
            rule.id,
            rule_set.query_lines.get(rule.id),
            f"alerts[{n}] (id {rule.id!r}).query",
            warning,
        )
        for n, rule in enumerate(rule_set.rules)
        if only is None or rule in only
        for warning in rewrite_query(rule.query).warnings
    ]


@dataclass(frozen=True)
class RuleCheck:
    """What ``alerts check`` says, and ``alerts run`` acts on: how Elasticsearch reads each
    valid query, the errors (a rule with one is not run) and the warnings."""

    explained: dict[str, str]
    problems: list[QueryProblem]
    warnings: list[QueryProblem]

    def runnable(self, rule_set: RuleSet) -> RuleSet:
        """``rule_set`` without the rules that have an error."""
        bad = {p.rule_id for p in self.problems}
        return replace(rule_set, rules=tuple(r for r in rule_set.rules if r.id not in bad))


def check_rules(
    es: Client,
    names: IndexNames,
    rule_set: RuleSet,
    feeds: Sequence[FeedConfig],
    only: Sequence[AlertRule] | None = None,
    feeds_source: str = "feeds file",
) -> RuleCheck:
    """Every check of the rules (or of ``only``): queries (:func:`validate_queries`), filters
    against the feeds (:func:`filter_problems`), warnings (:func:`query_warnings`)."""
    explained, problems = validate_queries(es, names, rule_set, only)
    problems += filter_problems(rule_set, feeds, feeds_source, only)
    return RuleCheck(explained, problems, query_warnings(rule_set, only))


def _rison(value: str) -> str:
    return "'" + value.replace("!", "!!").replace("'", "!'") + "'"


def kibana_link(
    rule: AlertRule, base: str | None, data_view: str | None = None, since: str = "now-7d"
) -> str | None:
    """A Discover link running the rule's query (Lucene) and filters, or None without a base."""
    if not base:
        return None
    lucene = f"({rule.search.query})"
    if rule.filters.lucene():
        lucene += " AND " + rule.filters.lucene()
    source = f"dataSource:(dataViewId:{_rison(data_view)},type:dataView)," if data_view else ""
    app = f"({source}query:(language:lucene,query:{_rison(lucene)}))"
    global_ = f"(time:(from:{since},to:now))"
    safe = "()',:!"
    return f"{base}/app/discover#/?_g={quote(global_, safe=safe)}&_a={quote(app, safe=safe)}"
