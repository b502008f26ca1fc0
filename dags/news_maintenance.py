"""news_maintenance: roll the articles over by age or size, delete state past its retention.

Daily by default (NEWSMON_MAINTENANCE_SCHEDULE, a cron expression). The rollover conditions and
retentions come from NEWSMON_ROLLOVER_MAX_AGE / _MAX_SIZE / _MAX_DOCS and
NEWSMON_LINES_RETENTION, NEWSMON_LEDGER_RETENTION, NEWSMON_ALERT_STATE_RETENTION (README,
docs/maintenance.md). Elasticsearch from the Connection ``newsmon_es``.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import dag, task


@dag(
    dag_id="news_maintenance",
    schedule=os.environ.get("NEWSMON_MAINTENANCE_SCHEDULE", "17 3 * * *"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=2),
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["newsmon"],
    doc_md=__doc__,
)
def news_maintenance() -> None:
    @task
    def maintain() -> dict[str, Any]:
        """Roll over and prune once; returns what was done."""
        from newsmon_airflow import newsmon_settings

        from newsmon.maintenance import maintain

        report = maintain(newsmon_settings())
        print(report.render())
        return report.as_dict()

    maintain()


news_maintenance()
