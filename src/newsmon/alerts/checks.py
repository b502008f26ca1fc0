"""The checks of ``alerts check``, made wherever rules run: ``newsmon alerts check``, ``preview``
and ``run`` and the Airflow tasks (dags/newsmon_airflow.py) all call :func:`rule_check`, so a
rule that ``check`` rejects is never evaluated, by any of them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from ..config import load_feeds
from ..store import Client, IndexNames
from .rules import AlertRule, Mode, RuleCheck, RuleSet, check_rules

__all__ = ["RunnableRules", "rule_check", "runnable_rules"]

log = logging.getLogger(__name__)


def rule_check(
    es: Client,
    names: IndexNames,
    rule_set: RuleSet,
    feeds_file: str,
    only: Sequence[AlertRule] | None = None,
) -> RuleCheck:
    """Every check of the rules (or of ``only``); the feeds file is read only when a checked
    rule filters on feeds or tags."""
    checked = rule_set.rules if only is None else only
    filtered = any(r.filters.feeds or r.filters.tags for r in checked)
    feeds = load_feeds(feeds_file) if filtered else []
    return check_rules(es, names, rule_set, feeds, only, feeds_source=feeds_file)


@dataclass(frozen=True)
class RunnableRules:
    """The enabled rules of a mode that passed :func:`rule_check`, and what was said of them."""

    rules: list[AlertRule]
    refused: list[str]  # "rule X not run: <the error alerts check reports>"
    warnings: list[str]  # the warnings alerts check prints


def runnable_rules(
    es: Client, names: IndexNames, rule_set: RuleSet, feeds_file: str, mode: Mode | None = None
) -> RunnableRules:
    """The enabled rules (of ``mode``) that ``alerts check`` accepts; the refused ones and the
    warnings are logged (WARNING) and returned as the CLI words them."""
    checked = rule_check(es, names, rule_set, feeds_file, rule_set.enabled(mode))
    warnings = [str(w.error(rule_set.source)) for w in checked.warnings]
    refused = [f"rule {p.rule_id} not run: {p.error(rule_set.source)}" for p in checked.problems]
    for line in [*warnings, *refused]:
        log.warning("%s", line)
    return RunnableRules(checked.runnable(rule_set).enabled(mode), refused, warnings)
