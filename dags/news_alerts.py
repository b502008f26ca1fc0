"""news_alerts: after every ingest, evaluate the immediate alert rules and send their emails.

Scheduled on the Asset ``newsmon_articles`` that news_ingest updates. ``decide`` records each new
(rule, story) pair in the alert ledger; ``send`` emails every decided batch not sent yet (and
4xx retries that are due). SMTP comes from the Connection ``newsmon_smtp`` (the smtp
provider's fields), Elasticsearch from ``newsmon_es``; rules from NEWSMON_ALERTS.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Asset, dag, task

# The Asset news_ingest's summarize task updates (defined identically there).
ARTICLES = Asset(name="newsmon_articles", uri="newsmon://articles", group="newsmon")


@dag(
    dag_id="news_alerts",
    schedule=[ARTICLES],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=30),
    default_args={
        "retries": 3,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
    },
    tags=["newsmon", "alerts"],
    doc_md=__doc__,
)
def news_alerts() -> None:
    @task
    def decide() -> dict[str, Any]:
        """Evaluate the immediate rules over the articles indexed since their last run."""
        from newsmon_airflow import newsmon_settings

        from newsmon.alerts import decide, open_alerts

        es, names, alert_settings, rules = open_alerts(newsmon_settings())
        return decide(es, names, rules.enabled("immediate"), alert_settings).as_dict()

    @task
    def send(decided: dict[str, Any]) -> dict[str, Any]:
        """Email every decided, unsent batch; the ledger records sent, retry or failed."""
        from newsmon_airflow import newsmon_settings, smtp_settings

        from newsmon.alerts import deliver, open_alerts
        from newsmon.health import source_notes

        settings = newsmon_settings()
        es, names, alert_settings, rules = open_alerts(settings)
        notes = source_notes(es, names, rules.enabled("immediate"), settings.feeds_file)
        report = deliver(
            es, names, smtp_settings(), alert_settings, modes=("immediate",), source_notes=notes
        )
        return report.as_dict()

    send(decide())


news_alerts()
