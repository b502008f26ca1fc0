"""news_ingest: fetch every enabled feed, index the new articles, announce them as an Asset.

Each mapped task ingests one batch of feeds (the batch size comes from
NEWSMON_FEED_BATCH_SIZE) and is named by its feed ids in the UI; its log shows the progress per
feed and the batch's run summary, and ``summarize`` logs the run's. The schedule comes from
NEWSMON_INGEST_SCHEDULE (default every 15 minutes).
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Asset, dag, task

ARTICLES = Asset(name="newsmon_articles", uri="newsmon://articles", group="newsmon")
log = logging.getLogger("newsmon.dags.news_ingest")


def _log_lines(text: str) -> None:
    """A rendered summary as one log line per line (a dict on one line is unreadable)."""
    for line in text.splitlines():
        log.info("%s", line)


@dag(
    dag_id="news_ingest",
    schedule=os.environ.get("NEWSMON_INGEST_SCHEDULE", "*/15 * * * *"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=60),
    default_args={
        "retries": 3,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
    },
    tags=["newsmon"],
    doc_md=__doc__,
)
def news_ingest() -> None:
    @task
    def plan_batches() -> list[list[str]]:
        """Make sure the indices exist; split the enabled feeds into batches of ids."""
        from newsmon_airflow import newsmon_settings

        from newsmon.config import load_feeds
        from newsmon.pipeline import feed_batches
        from newsmon.store import IndexNames, connect, ensure_indices

        settings = newsmon_settings()
        ensure_indices(connect(settings), IndexNames(settings.index_prefix), settings.config_dir)
        return feed_batches(load_feeds(settings.feeds_file), settings.feed_batch_size)

    @task(max_active_tis_per_dag=4, map_index_template="{{ feed_batch }}")
    def ingest_batch(feed_ids: list[str]) -> dict[str, Any]:
        """Ingest one batch of feeds; returns the counts of every outcome."""
        from airflow.sdk import get_current_context
        from newsmon_airflow import newsmon_settings

        from newsmon.config import load_feeds
        from newsmon.pipeline import ingest

        # the mapped task's name in the UI (rendered even when the task fails after this)
        get_current_context()["feed_batch"] = ", ".join(feed_ids)  # type: ignore[typeddict-unknown-key]
        settings = newsmon_settings()
        wanted = set(feed_ids)
        feeds = [f for f in load_feeds(settings.feeds_file) if f.id in wanted]
        summary = ingest(feeds, settings)
        _log_lines(summary.render())
        return summary.as_dict()

    @task(outlets=[ARTICLES])
    def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
        """Add up the batches; the outlet tells Asset-scheduled DAGs there may be new articles."""
        from newsmon.pipeline import RunSummary

        total = RunSummary()
        for result in results:
            total.merge(RunSummary.from_dict(result))
        _log_lines(total.render())
        return total.as_dict()

    summarize(ingest_batch.expand(feed_ids=plan_batches()))


news_ingest()
