"""The newsmon Airflow plugin's app, on a test's indices, and the links in received emails."""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from newsmon.alerts import AlertSettings
from newsmon.config import Settings
from newsmon.store import IndexNames

from .paths import REPO
from .smtp import Received, plain_text

SECRET = b"test-secret-0123456789abcdef"


def plugin_module() -> ModuleType:
    """``plugins/newsmon_app.py``, imported as Airflow imports it (the folder on sys.path)."""
    folder = str(REPO / "plugins")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module("newsmon_app")


def context(
    settings: Settings,
    es: Elasticsearch,
    names: IndexNames,
    rules_file: Path,
    *,
    base: str = "/newsmon",
    secret: bytes | None = SECRET,
) -> object:
    module = plugin_module()
    return module.Context(
        settings,
        es,
        names,
        AlertSettings(rules_file=str(rules_file)),
        secret,
        base=base,
        kibana="http://127.0.0.1:5601/app/dashboards#/view/newsmon-overview",
    )


def links_in(received: Received) -> dict[str, list[str]]:
    """The action links of an email's text part, by label (Mute, Snooze, Unsubscribe)."""
    found: dict[str, list[str]] = {}
    for label, url in re.findall(
        r"^\s*(Mute this story|Snooze this alert for a day|Unsubscribe from this alert|"
        r"This alert in newsmon): (\S+)$",
        plain_text(received),
        re.MULTILINE,
    ):
        found.setdefault(label.split()[0], []).append(url)
    return found


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["t"][0]


def app_client(make_context: Callable[[], object], **kwargs: Any) -> TestClient:
    """A client of the app mounted at /newsmon, as the Airflow API server mounts it."""
    from fastapi import FastAPI

    root = FastAPI()
    root.mount("/newsmon", plugin_module().create_app(make_context, **kwargs))
    return TestClient(root)
