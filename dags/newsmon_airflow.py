"""Glue shared by newsmon's DAGs: settings from Airflow Connections, on top of the environment.

Imported only inside tasks, so DAG parsing does no I/O.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from newsmon.config import Settings

ES_CONN_ID = os.environ.get("NEWSMON_ES_CONN_ID", "newsmon_es")
CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


def newsmon_settings() -> Settings:
    """Settings from NEWSMON_* variables, Elasticsearch from the ``newsmon_es`` Connection."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    from newsmon.config import Settings

    if "NEWSMON_CONFIG_DIR" not in os.environ and (CONFIG_DIR / "elasticsearch").is_dir():
        os.environ["NEWSMON_CONFIG_DIR"] = str(CONFIG_DIR)
    settings = Settings.from_env()
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
