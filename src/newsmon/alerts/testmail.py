"""A test email: a rule's latest matches, sent now to one address, marked as a test.

Nothing is recorded in the ledger: the stories stay undecided for the rule's real emails.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from ..store import Client, IndexNames
from ..store.client import es_iso, es_time
from .email import AlertEmail, AlertItem, compose
from .links import LinkSettings, email_links
from .preview import preview
from .rules import AlertRule, kibana_link
from .settings import AlertSettings
from .smtp import SendResult, SmtpSettings, require_configured, send
from .untrusted import check_address

__all__ = ["test_email"]

LOOKBACK = timedelta(days=30)
STORIES = 5


def test_email(
    es: Client,
    names: IndexNames,
    rule: AlertRule,
    to: str,
    smtp: SmtpSettings,
    links: LinkSettings,
    alert_settings: AlertSettings,
    *,
    now: datetime | None = None,
) -> SendResult:
    """Send ``rule``'s latest matches (newest first, by indexing time, 30 days back) to ``to``."""
    now = now or datetime.now(UTC)
    check_address(to)
    require_configured(smtp)
    found = preview(es, names, rule, since=LOOKBACK, time_field="indexed_at", sample=STORIES)
    items = tuple(
        AlertItem(
            story_id=str(s.get("story_id") or s.get("url") or ""),
            title=str(s.get("title") or "(no title)"),
            url=str(s.get("url") or s.get("canonical_url") or ""),
            outlet=str(s.get("site_name") or s.get("domain") or ""),
            published_at=es_time(s.get("published_at")),
            snippets=tuple(s.get("snippets") or ()),
        )
        for s in found.samples
    )
    if not items:
        items = (
            AlertItem("none", "(no matching article in the last 30 days)", "", "newsmon", now, ()),
        )
    alert = AlertEmail(
        rule_id=rule.id,
        rule_name=rule.name,
        query=rule.query,
        recipients=(to,),
        items=items,
        batch_key=f"{rule.id}/test/{es_iso(now)}",
        kibana_url=kibana_link(rule, alert_settings.kibana_url, alert_settings.kibana_data_view),
        total_matches=found.articles,
        timezone=rule.zone,
        test=True,
    )
    links_of = email_links(alert, links, now=now)
    if links_of is not None:  # a mute link keeps a story out of the rule's emails to come
        alert = replace(alert, links=replace(links_of, snooze=None))
    return send(compose(alert, smtp, now=now), smtp)
