"""Keyword alerts: rules from YAML, evaluation over new articles, a ledger, email.

Rooms: :mod:`.rules` (the rule model, YAML, queries and their validation), :mod:`.settings`
(``NEWSMON_ALERTS*``), :mod:`.evaluate` (which (rule, story) pairs are new: ``decide``),
:mod:`.deliver` (claim, send, record: ``deliver``, ``run_alerts``; one message per recipient:
:mod:`.fanout`), :mod:`.notes` (failing feeds behind a rule), :mod:`.preview` (backtest a
rule), :mod:`.email` (compose the message),
:mod:`.smtp` (send it), :mod:`.untrusted` (making outside text safe), :mod:`.report`.
Elasticsearch is reached through :mod:`newsmon.store.alerting` and :mod:`newsmon.store.ledger`.
"""

from ..store.ledger import Status as LedgerStatus
from .deliver import SendFunction, deliver, email_id, open_alerts, run_alerts
from .email import AlertEmail, AlertItem, compose, message_id_for
from .evaluate import decide, decision_id
from .notes import failing_note, rule_feeds, source_notes
from .preview import Preview, preview
from .report import RunReport
from .rules import (
    AlertRule,
    DigestSchedule,
    Mode,
    QueryProblem,
    RuleFilters,
    RuleSet,
    kibana_link,
    load_rules,
    parse_rules,
    rule_query,
    validate_queries,
)
from .settings import AlertSettings, parse_duration
from .smtp import DEFAULT_PORTS, SECURITY_MODES, SendResult, SendStatus, SmtpSettings, send
from .untrusted import check_address, parse_sender

__all__ = [
    "DEFAULT_PORTS",
    "SECURITY_MODES",
    "AlertEmail",
    "AlertItem",
    "AlertRule",
    "AlertSettings",
    "DigestSchedule",
    "LedgerStatus",
    "Mode",
    "Preview",
    "QueryProblem",
    "RuleFilters",
    "RuleSet",
    "RunReport",
    "SendFunction",
    "SendResult",
    "SendStatus",
    "SmtpSettings",
    "check_address",
    "compose",
    "decide",
    "decision_id",
    "deliver",
    "email_id",
    "failing_note",
    "kibana_link",
    "load_rules",
    "message_id_for",
    "open_alerts",
    "parse_duration",
    "parse_rules",
    "parse_sender",
    "preview",
    "rule_feeds",
    "rule_query",
    "run_alerts",
    "send",
    "source_notes",
    "validate_queries",
]
