"""news_digest: evaluate the digest alert rules and send the digests whose period has ended.

Runs every few minutes (NEWSMON_DIGEST_SCHEDULE, default every 5); each rule's own schedule
(``hourly`` or ``daily 08:00 Asia/Karachi``) decides which period a story joins and when that
digest is due, so one DAG serves every schedule. SMTP from the Connection ``newsmon_smtp``.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import dag, task


@dag(
    dag_id="news_digest",
    schedule=os.environ.get("NEWSMON_DIGEST_SCHEDULE", "*/5 * * * *"),
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
def news_digest() -> None:
    @task
    def decide() -> dict[str, Any]:
        """Add the new stories of each digest rule to its current period."""
        from newsmon_airflow import decide_alerts

        return decide_alerts("digest")

    @task
    def send(decided: dict[str, Any]) -> dict[str, Any]:
        """Email every digest whose period has ended (and 4xx retries that are due)."""
        from newsmon_airflow import send_alerts

        return send_alerts("digest")

    send(decide())


news_digest()
