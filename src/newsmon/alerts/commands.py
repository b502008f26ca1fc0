"""``newsmon alerts status | history | test-email | mute | snooze | unsubscribe``.

The command line of the alert management functions; :mod:`newsmon.cli` registers them and
hands over how to read the settings and rules (``load``), so this module needs no development
tools.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..config import ConfigError, Settings, parse_duration
from ..store import IndexNames, connect, ensure_indices
from .actions import Action, apply
from .links import LinkSettings
from .rules import RuleSet
from .settings import AlertSettings
from .smtp import SendStatus, SmtpSettings
from .status import alert_history, alert_status, render_rows
from .testmail import test_email

__all__ = ["add_commands"]

Load = Callable[[argparse.Namespace], tuple[Settings, AlertSettings, RuleSet]]


def _open(args: argparse.Namespace, load: Load) -> tuple[Any, IndexNames, AlertSettings, RuleSet]:
    settings, alert_settings, rule_set = load(args)
    es = connect(settings)
    names = IndexNames(settings.index_prefix)
    ensure_indices(es, names, settings.config_dir)
    return es, names, alert_settings, rule_set


def _check_rule(rule_set: RuleSet, rule_id: str | None) -> None:
    if rule_id is not None:
        rule_set.get(rule_id)  # ConfigError naming the known rules


def _moment(text: str, option: str) -> datetime:
    """``2026-12-05T08:00`` (UTC unless it says), or a duration from now (``2h``, ``1d``)."""
    now = datetime.now(UTC)
    try:
        return now - parse_duration(text) if option == "--since" else now + parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"{text!r} is neither a time (2026-12-05T08:00) nor a duration (2h, 1d)",
            file="command line",
            field=option,
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _print_rows(rows: list[Any], as_json: bool, empty: str) -> None:
    if as_json:
        print(json.dumps([r.as_dict() for r in rows], ensure_ascii=False, indent=2))
    else:
        print(render_rows(rows, empty=empty))


def cmd_status(args: argparse.Namespace, load: Load) -> int:
    es, names, _settings, rule_set = _open(args, load)
    _check_rule(rule_set, args.rule)
    rows = alert_status(es, names, rule_set.rules, rule_id=args.rule, recent=args.recent)
    _print_rows(rows, args.json, "no alert emails queued, held or sent")
    return 0


def cmd_history(args: argparse.Namespace, load: Load) -> int:
    es, names, _settings, _rules = _open(args, load)
    since = _moment(args.since, "--since") if args.since else None
    rows = alert_history(es, names, rule_id=args.rule, since=since, with_stories=args.json)
    _print_rows(rows, args.json, "no alert email tried" + (f" since {args.since}" * bool(since)))
    return 0


def cmd_test_email(args: argparse.Namespace, load: Load) -> int:
    es, names, alert_settings, rule_set = _open(args, load)
    rule = rule_set.get(args.rule)
    result = test_email(
        es, names, rule, args.to, SmtpSettings.from_env(), LinkSettings.from_env(), alert_settings
    )
    print(f"test email {result.status} to {args.to}: {result.reason}")
    return 0 if result.status == SendStatus.SENT else 1


def _act(args: argparse.Namespace, load: Load, action: Action) -> int:
    es, names, _settings, rule_set = _open(args, load)
    if action.rule_id not in {r.id for r in rule_set.rules}:
        print(
            f"newsmon: note: rule {action.rule_id!r} is not in {rule_set.source}", file=sys.stderr
        )
    print(apply(es, names, action, via="cli"))
    return 0


def cmd_mute(args: argparse.Namespace, load: Load) -> int:
    return _act(args, load, Action("mute", args.rule, story_id=args.story))


def cmd_snooze(args: argparse.Namespace, load: Load) -> int:
    until = _moment(args.until, "--until")
    return _act(args, load, Action("snooze", args.rule, until=until))


def cmd_unsubscribe(args: argparse.Namespace, load: Load) -> int:
    try:
        action = Action("unsubscribe", args.rule, recipient=args.address)
    except ValueError as exc:
        raise ConfigError(str(exc), file="command line", field="ADDRESS") from None
    return _act(args, load, action)


def add_commands(alerts_sub: Any, load: Load, rules_help: str) -> None:
    """Add the management subcommands to ``newsmon alerts``."""

    def add(name: str, func: Callable[[argparse.Namespace, Load], int], **kw: Any) -> Any:
        parser = alerts_sub.add_parser(name, **kw)
        parser.add_argument("--rules", help=rules_help)
        parser.set_defaults(func=lambda args: func(args, load))
        return parser

    status = add("status", cmd_status, help="emails queued, due, retrying, held, sent, failed")
    status.add_argument("--rule", help="only this rule")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument("--recent", type=int, default=20, help="emails sent or failed to list")

    history = add("history", cmd_history, help="the emails tried, newest first")
    history.add_argument("--rule", help="only this rule")
    history.add_argument("--since", help="a time (2026-12-01T00:00) or how long ago (7d)")
    history.add_argument("--json", action="store_true", help="print JSON (with story titles)")

    test = add("test-email", cmd_test_email, help="send a rule's latest matches, as a test")
    test.add_argument("rule", help="the rule id")
    test.add_argument("--to", required=True, metavar="ADDRESS", help="where to send it")

    mute = add("mute", cmd_mute, help="never alert this story for this rule again")
    mute.add_argument("rule", help="the rule id")
    mute.add_argument("story", help="the story id (as in the email's mute link or status)")

    snooze = add("snooze", cmd_snooze, help="hold a rule's emails until a time")
    snooze.add_argument("rule", help="the rule id")
    snooze.add_argument(
        "--until", required=True, help="a time (2026-12-05T08:00, UTC unless given) or 8h, 2d"
    )

    unsub = add("unsubscribe", cmd_unsubscribe, help="stop a rule's emails to one address")
    unsub.add_argument("rule", help="the rule id")
    unsub.add_argument("address", help="the recipient's address")
