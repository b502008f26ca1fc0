"""The local single-node Elasticsearch manager against a real node (never stops it: shared)."""

from __future__ import annotations

import os

import pytest
import requests

from newsmon.dev import esnode

pytestmark = pytest.mark.es


def test_up_is_idempotent_and_the_node_is_healthy() -> None:
    url = esnode.up(timeout=300)
    assert url.startswith("http://127.0.0.1:")
    first = esnode.status()

    again = esnode.up()
    assert again == url
    st = esnode.status()
    assert st.pid == first.pid, "a second up() must reuse the running node"
    assert st.running
    assert st.url == url
    assert st.pid is not None and st.pid > 0
    assert st.version == (os.environ.get("NEWSMON_ES_VERSION") or esnode.DEFAULT_VERSION)
    assert st.health in ("green", "yellow")
    assert st.home.is_dir()
    assert (st.home / "logs" / "http.ports").is_file()

    resp = requests.get(
        f"{url}/_cluster/health",
        params={"wait_for_status": "yellow", "timeout": "30s"},
        timeout=40,
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] in ("green", "yellow")
    assert body["number_of_nodes"] == 1
