"""The newsmon Airflow plugin: its pages (feed health, alerts, backtests, the email links) in
the API server at ``/newsmon``, and a "newsmon" entry in the UI's navigation."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from newsmon_app import PREFIX, create_app


class NewsmonPlugin(AirflowPlugin):
    name = "newsmon"
    fastapi_apps = [{"app": create_app(), "url_prefix": PREFIX, "name": "newsmon"}]  # noqa: RUF012
    external_views = [  # noqa: RUF012
        {
            "name": "newsmon",
            "href": PREFIX.lstrip("/") + "/",
            "destination": "nav",
            "url_route": "newsmon",
        }
    ]
