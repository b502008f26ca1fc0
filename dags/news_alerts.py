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
        from newsmon_airflow import decide_alerts

        return decide_alerts("immediate")

    @task
    def send(decided: dict[str, Any]) -> dict[str, Any]:
        """Email every decided, unsent batch; the ledger records sent, retry or failed."""
        from newsmon_airflow import send_alerts

        return send_alerts("immediate")

    send(decide())


news_alerts()
