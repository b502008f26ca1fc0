"""Glue shared by newsmon's DAGs: settings from Airflow Connections, on top of the environment.

Imported only inside tasks, so DAG parsing does no I/O.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from newsmon.alerts import SmtpSettings
    from newsmon.alerts.links import LinkSettings
    from newsmon.config import Settings

ES_CONN_ID = os.environ.get("NEWSMON_ES_CONN_ID", "newsmon_es")
SMTP_CONN_ID = os.environ.get("NEWSMON_SMTP_CONN_ID", "newsmon_smtp")
ACTIONS_CONN_ID = os.environ.get("NEWSMON_ACTIONS_CONN_ID", "newsmon_actions")
CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


def newsmon_settings() -> Settings:
    """Settings from NEWSMON_* variables, Elasticsearch from the ``newsmon_es`` Connection."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    from newsmon.config import Settings
    from newsmon.dev.local import local_node_url

    # A task log shows newsmon's progress (INFO), not a line per Elasticsearch request.
    logging.getLogger("elastic_transport").setLevel(logging.WARNING)
    if "NEWSMON_CONFIG_DIR" not in os.environ and (CONFIG_DIR / "elasticsearch").is_dir():
        os.environ["NEWSMON_CONFIG_DIR"] = str(CONFIG_DIR)
    settings = Settings.from_env(local_node=local_node_url)
    try:
        conn = BaseHook.get_connection(ES_CONN_ID)
    except AirflowNotFoundException:
        return settings  # no Connection: the environment (NEWSMON_ES_URL…) decides
    scheme = conn.schema if conn.schema in ("http", "https") else "http"
    extra = conn.extra_dejson
    return replace(
        settings,
        es_url=f"{scheme}://{conn.host}:{conn.port or 9200}",
        es_username=conn.login or None,
        es_password=conn.password or None,
        es_api_key=extra.get("api_key") or None,
        es_ca_certs=extra.get("ca_certs") or settings.es_ca_certs,
        es_verify_certs=bool(extra.get("verify_certs", settings.es_verify_certs)),
    )


def smtp_settings() -> SmtpSettings:
    """SMTP from the ``newsmon_smtp`` Connection, read as the smtp provider reads its own.

    Host, port, login and password; in extra ``from_email``, ``timeout``, and ``disable_ssl`` /
    ``disable_tls`` (both default false: implicit TLS, as the provider does). Without the
    Connection, the ``NEWSMON_SMTP_*`` environment decides.
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    from newsmon.alerts import DEFAULT_PORTS, SmtpSettings

    try:
        conn = BaseHook.get_connection(SMTP_CONN_ID)
    except AirflowNotFoundException:
        return SmtpSettings.from_env()
    extra = conn.extra_dejson

    def flag(name: str) -> bool:
        value = extra.get(name, False)
        return (
            value.strip().lower() in ("1", "true", "yes", "on")
            if isinstance(value, str)
            else bool(value)
        )

    security = (
        "ssl" if not flag("disable_ssl") else "starttls" if not flag("disable_tls") else "none"
    )
    return SmtpSettings(
        host=conn.host or SmtpSettings.host,
        port=int(conn.port or DEFAULT_PORTS[security]),
        username=conn.login or None,
        password=conn.password or None,
        security=security,
        sender=extra.get("from_email")
        or os.environ.get("NEWSMON_SMTP_FROM", "").strip()
        or SmtpSettings.sender,
        timeout=float(extra.get("timeout") or 30),
        configured=bool(conn.host),
    )


def link_settings() -> LinkSettings:
    """Action links: ``NEWSMON_ACTIONS_URL``, signed with ``NEWSMON_ACTION_SECRET`` or the
    password of the ``newsmon_actions`` Connection (whose host, if set, is the base URL)."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    from newsmon.alerts.links import LinkSettings
    from newsmon.alerts.tokens import check_secret

    settings = LinkSettings.from_env()
    if settings.enabled:
        return settings
    try:
        conn = BaseHook.get_connection(ACTIONS_CONN_ID)
    except AirflowNotFoundException:
        return settings
    secret = check_secret(conn.password, ACTIONS_CONN_ID) if conn.password else settings.secret
    base = settings.base_url or (conn.host or "").rstrip("/") or None
    return replace(settings, base_url=base, secret=secret)


def decide_alerts(mode: str) -> dict[str, Any]:
    """Evaluate the enabled rules of ``mode`` ("immediate" or "digest") over the articles
    indexed since their last run; the decisions go to the alert ledger. A rule that
    ``newsmon alerts check`` rejects is not run (a problem of the report), as with
    ``newsmon alerts run``; its warnings are logged."""
    from newsmon.alerts import decide, open_alerts
    from newsmon.alerts.checks import runnable_rules

    settings = newsmon_settings()
    es, names, alert_settings, rules = open_alerts(settings)
    checked = runnable_rules(es, names, rules, settings.feeds_file, mode)  # type: ignore[arg-type]
    report = decide(es, names, checked.rules, alert_settings)
    for refused in checked.refused:
        report.problem(refused)
    return report.as_dict()


def send_alerts(mode: str) -> dict[str, Any]:
    """Email the decided batches of ``mode`` that are due (and 4xx retries that are due), with a
    note when feeds behind a rule have been failing."""
    from newsmon.alerts import deliver, open_alerts, source_notes

    settings = newsmon_settings()
    es, names, alert_settings, rules = open_alerts(settings)
    notes = source_notes(es, names, rules.enabled(mode), settings.feeds_file)
    report = deliver(
        es,
        names,
        smtp_settings(),
        alert_settings,
        modes=(mode,),
        source_notes=notes,
        rules=rules.enabled(),  # the batches of disabled or removed rules are held
        links=link_settings(),
    )
    if mode == "immediate":  # a feed failing for long (or back): the operator hears once
        from newsmon.alerts.operator import notify_operator

        report.counts.update(notify_operator(es, names, settings.feeds_file, smtp_settings()))
    return report.as_dict()
