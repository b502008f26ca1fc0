"""The newsmon pages in a real browser: Debian's chromium, driven headless by selenium, against
the plugin's app served over loopback HTTP on the real node. A mute link from a real email
(received by the test SMTP server) is clicked, and the next alerts run honours it.

Screenshots are kept in ``$NEWSMON_ARTIFACTS/browser`` (default: the system temp directory),
printed by the test.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from newsmon.alerts import AlertSettings, SmtpSettings, run_alerts
from newsmon.alerts.links import LinkSettings
from newsmon.alerts.testmail import test_email as send_test_email
from newsmon.config import Settings
from newsmon.store import IndexNames

from .helpers.alerts import article_doc, ledger_docs, rules_from, write_articles
from .helpers.plugin import SECRET, context, links_in, plugin_module
from .helpers.smtp import Handler, plain_text

pytestmark = [pytest.mark.es, pytest.mark.airflow, pytest.mark.slow]

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
RULES = (
    "alerts:\n  - id: quake\n    name: Quake\n    query: earthquake\n"
    "    recipients: [desk@example.org]\n"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(
    settings: Settings, es: Elasticsearch, names: IndexNames, tmp_path: Path
) -> Iterator[str]:
    """The plugin's app mounted at /newsmon, served by uvicorn on loopback: its base URL."""
    import uvicorn
    from fastapi import FastAPI

    rules_file = tmp_path / "alerts.yaml"
    rules_file.write_text(RULES)
    Path(settings.feeds_file).write_text(
        "feeds:\n  - id: wire\n    name: Wire\n    url: https://wire.example/rss\n"
    )
    port = _free_port()
    base = f"http://127.0.0.1:{port}/newsmon"
    root = FastAPI()
    made = context(settings, es, names, rules_file, base="/newsmon")
    root.mount("/newsmon", plugin_module().create_app(lambda: made))
    server = uvicorn.Server(uvicorn.Config(root, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:  # the server says when it listens
        if not thread.is_alive():
            pytest.fail("the test web server did not start")
        time.sleep(0.05)
    yield base
    server.should_exit = True
    thread.join()


@pytest.fixture
def browser() -> Iterator[object]:
    if not (shutil.which(CHROMIUM) and shutil.which(DRIVER)):
        pytest.skip(
            "needs Debian's chromium and chromium-driver (apt-get install -y chromium "
            "chromium-driver; .ci/run installs them)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--window-size=1400,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def test_a_mute_link_from_a_real_email_in_a_real_browser_and_the_next_run_honours_it(
    airflow_db: None,
    es: Elasticsearch,
    names: IndexNames,
    smtp: tuple[Handler, SmtpSettings],
    served: str,
    browser: object,
) -> None:
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.configuration import conf
    from selenium.webdriver.common.by import By

    driver: object = browser
    shots = Path(os.environ.get("NEWSMON_ARTIFACTS", tempfile.gettempdir())) / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {shots}")

    def shot(name: str) -> None:
        assert driver.save_screenshot(str(shots / f"{name}.png"))  # type: ignore[attr-defined]

    handler, smtp_settings = smtp
    rule_set = rules_from(RULES)
    write_articles(
        es,
        names,
        article_doc(1, "Earthquake in Quetta", "An earthquake shook Quetta.", story_id="s-1"),
        article_doc(2, "Earthquake in Ziarat", "An earthquake hit Ziarat.", story_id="s-2"),
    )
    links = LinkSettings(served, SECRET)
    settings = AlertSettings(lag=timedelta(0))

    # the rule's latest matches, by email, each with its mute link
    result = send_test_email(
        es, names, rule_set.get("quake"), "desk@example.org", smtp_settings, links, settings
    )
    assert str(result.status) == "sent"
    [received] = handler.received
    text = plain_text(received)
    assert len(links_in(received)["Mute"]) == 2  # one per story
    found = re.search(r"^\d+\. Earthquake in Quetta$.*?Mute this story: (\S+)", text, re.M | re.S)
    assert found is not None
    quetta = found.group(1)

    driver.get(quetta)  # type: ignore[attr-defined]
    page = driver.find_element(By.TAG_NAME, "body").text  # type: ignore[attr-defined]
    assert "This will mute the story “Earthquake in Quetta” (s-1) for alert quake" in page
    shot("1-confirm-mute")
    driver.find_element(By.ID, "confirm").click()  # type: ignore[attr-defined]
    done = driver.find_element(By.ID, "done").text  # type: ignore[attr-defined]
    assert done == "Muted the story “Earthquake in Quetta” (s-1) for alert quake."
    shot("2-muted")
    driver.get(quetta)  # type: ignore[attr-defined]
    assert "already used" in driver.find_element(By.TAG_NAME, "body").text  # type: ignore[attr-defined]

    # the next run: the muted story stays out, the other one goes
    report = run_alerts(es, names, rule_set, settings, smtp_settings, links=links)
    assert report.counts["stories_muted"] == 1 and report.counts["emails_sent"] == 1
    alert = plain_text(handler.received[-1])
    assert "Earthquake in Ziarat" in alert and "Earthquake in Quetta" not in alert
    assert {d["story_id"] for d in ledger_docs(es, names, kind="story")} == {"s-2"}

    # the pages behind Airflow's login: log in (the UI's cookie), look at them
    driver.get(f"{served}/rules/quake")  # type: ignore[attr-defined]
    assert "Log in first" in driver.find_element(By.TAG_NAME, "body").text  # type: ignore[attr-defined]
    conf.set("api_auth", "jwt_secret", "newsmon-test-jwt-secret-0123456789")
    manager = create_auth_manager()
    manager.init()
    jwt = manager.generate_jwt(SimpleAuthManagerUser(username="admin", role="ADMIN"))
    driver.add_cookie({"name": "_token", "value": jwt, "path": "/"})  # type: ignore[attr-defined]
    driver.get(f"{served}/rules/quake")  # type: ignore[attr-defined]
    body = driver.find_element(By.TAG_NAME, "body").text  # type: ignore[attr-defined]
    assert "Muted stories: s-1" in body and "sent" in body and "Earthquake in Ziarat" in body
    shot("3-rule")
    driver.find_element(By.LINK_TEXT, "backtest").click()  # type: ignore[attr-defined]
    assert "Backtest quake" in driver.find_element(By.TAG_NAME, "h1").text  # type: ignore[attr-defined]
    shot("4-backtest")
    driver.find_element(By.LINK_TEXT, "Feed health").click()  # type: ignore[attr-defined]
    assert "wire" in driver.find_element(By.TAG_NAME, "table").text  # type: ignore[attr-defined]
    shot("5-feeds")
    for name in ("1-confirm-mute", "2-muted", "3-rule", "4-backtest", "5-feeds"):
        assert (shots / f"{name}.png").stat().st_size > 5000
