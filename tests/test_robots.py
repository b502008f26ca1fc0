"""robots.txt rules (RFC 9309 and its examples), its cache per host on a real loopback server,
and the per-host interval between requests on an injected clock."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from ipaddress import ip_network
from typing import Any

import pytest

from newsmon.config import FetchSettings
from newsmon.sources.fetch import Fetcher, FetchOutcome
from newsmon.sources.robots import RobotsCache, parse_robots, product_token

from .helpers.clock import ManualClock
from .helpers.sites import Server

# --- rules (pure logic) --------------------------------------------------------------------------

ROBOTS = """# a comment
User-agent: *
Disallow: /private/
Allow: /private/public-*
Disallow: /*.pdf$
Disallow: /search?
Crawl-delay: 2

User-agent: otherbot
Disallow: /
"""


def _allowed(text: str, path: str, token: str = "newsmon") -> bool:
    return parse_robots(text, token).allowed(f"https://site.example{path}")[0]


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/", True),
        ("/news/1", True),
        ("/private/", False),
        ("/private/x", False),
        ("/private/public-page", True),  # the longer Allow wins
        ("/docs/a.pdf", False),
        ("/docs/a.pdf?x=1", True),  # "$" anchors the end
        ("/search?q=x", False),
        ("/search", True),
        ("/robots.txt", True),  # always allowed
        ("/%70rivate/x", False),  # percent-encoding normalised on both sides
    ],
)
def test_star_group_rules(path: str, allowed: bool) -> None:
    assert _allowed(ROBOTS, path) is allowed


def test_crawl_delay_of_the_chosen_group() -> None:
    assert parse_robots(ROBOTS, "newsmon").crawl_delay == 2.0
    assert parse_robots(ROBOTS, "otherbot").crawl_delay is None


def test_a_group_naming_the_token_replaces_the_star_group() -> None:
    text = "User-agent: *\nDisallow: /\n\nUser-agent: NewsMon\nDisallow: /drafts\n"
    assert _allowed(text, "/news/1")
    assert not _allowed(text, "/drafts/1")
    assert not _allowed(text, "/news/1", token="otherbot")


def test_groups_with_several_agents_and_merged_groups() -> None:
    text = "User-agent: a\nUser-agent: newsmon\nDisallow: /x\n\nUser-agent: newsmon\nDisallow: /y\n"
    assert not _allowed(text, "/x") and not _allowed(text, "/y") and _allowed(text, "/z")


def test_allow_wins_a_tie_and_an_empty_disallow_allows() -> None:
    assert _allowed("User-agent: *\nDisallow: /a\nAllow: /a\n", "/a")
    assert _allowed("User-agent: *\nDisallow:\n", "/anything")


def test_rules_outside_any_group_and_junk_lines_are_ignored() -> None:
    text = "Disallow: /\nthis is not a rule\nUser-agent: *\nCrawl-delay: soon\nDisallow: /b\n"
    assert _allowed(text, "/a") and not _allowed(text, "/b")
    assert parse_robots(text, "newsmon").crawl_delay is None


def test_the_deciding_rule_is_named() -> None:
    allowed, rule = parse_robots(ROBOTS, "newsmon").allowed("https://s.example/private/x")
    assert (allowed, rule) == (False, "Disallow: /private/")


def test_product_token() -> None:
    assert product_token("newsmon/0.1 (+https://github.com/newsmon/newsmon)") == "newsmon"
    assert product_token("  My-Bot_2 x") == "my-bot_"


# --- the cache, against a real server ------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[Server]:
    served = Server("127.0.0.1")
    try:
        yield served
    finally:
        served.close()


def _fetcher(clock: Any = None, **overrides: Any) -> Fetcher:
    settings = FetchSettings(allow_networks=(ip_network("127.0.0.0/8"),), deadline=10, **overrides)
    return Fetcher(settings) if clock is None else Fetcher(settings, clock=clock)


def _robots_hits(server: Server) -> int:
    return sum(1 for path, _ in server.requests if path == "/robots.txt")


def test_robots_is_fetched_once_per_host_and_honoured(server: Server) -> None:
    server.routes["/robots.txt"] = lambda h: h.reply(
        200, b"User-agent: *\nDisallow: /members/\n", "text/plain"
    )
    with _fetcher() as fetcher:
        robots = RobotsCache(fetcher)
        verdicts: list[Any] = []
        threads = [
            threading.Thread(target=lambda: verdicts.append(robots.check(server.base + "/a/1")))
            for _ in range(6)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        blocked = robots.check(server.base + "/members/story")
    assert [v.allowed for v in verdicts] == [True] * 6
    assert not blocked.allowed
    assert blocked.reason == f"{server.base}/robots.txt: Disallow: /members/"
    assert _robots_hits(server) == 1
    agent = next(headers for path, headers in server.requests if path == "/robots.txt")
    assert agent["User-Agent"].startswith("newsmon/")


@pytest.mark.parametrize(
    ("status", "allowed"), [(404, True), (403, True), (410, True), (500, False), (503, False)]
)
def test_what_an_unreadable_robots_means(server: Server, status: int, allowed: bool) -> None:
    server.routes["/robots.txt"] = lambda h: h.reply(status, b"no", "text/plain")
    with _fetcher() as fetcher:
        verdict = RobotsCache(fetcher).check(server.base + "/a")
    assert verdict.allowed is allowed
    if not allowed:
        assert verdict.reason is not None and "server error" in verdict.reason


def test_an_unreachable_host_gives_no_verdict() -> None:
    server = Server("127.0.0.1")
    base = server.base
    server.close()  # nothing listens there any more: the download reports its own failure
    with _fetcher() as fetcher:
        assert RobotsCache(fetcher).check(base + "/a").allowed
        result = fetcher.get_html(base + "/a")
    assert result.outcome is FetchOutcome.CONNECTION_ERROR


def test_a_crawl_delay_spaces_the_hosts_requests(server: Server) -> None:
    server.routes["/robots.txt"] = lambda h: h.reply(
        200, b"User-agent: *\nCrawl-delay: 120\n", "text/plain"
    )
    server.routes["/a"] = lambda h: h.reply(200, b"<html>a</html>")
    clock = ManualClock()
    done: list[bool] = []
    with _fetcher(clock) as fetcher:
        robots = RobotsCache(fetcher, max_crawl_delay=7.0)  # 120 s asked, 7 s honoured
        assert robots.check(server.base + "/a").allowed
        page = threading.Thread(target=lambda: done.append(fetcher.get_html(server.base + "/a").ok))
        page.start()
        _until_armed(clock, 7.0, page)  # 7 s after the robots.txt request
        assert [path for path, _ in server.requests] == ["/robots.txt"]
        clock.advance(7.0)
        page.join()
    assert done == [True]
    assert [path for path, _ in server.requests] == ["/robots.txt", "/a"]


def _until_armed(clock: ManualClock, delay: float, thread: threading.Thread) -> None:
    """Until ``thread`` has armed a timer of ``delay`` (it then waits on the clock)."""
    while clock.delays.count(delay) == 0 and thread.is_alive():
        thread.join(0.01)
    assert thread.is_alive(), "the request did not wait"


# --- the per-host interval -----------------------------------------------------------------------


def test_requests_to_one_host_wait_for_the_interval(server: Server) -> None:
    server.routes["/a"] = lambda h: h.reply(200, b"<html>a</html>")
    clock = ManualClock()
    done: list[bool] = []
    with _fetcher(clock, host_interval=5.0) as fetcher:
        assert fetcher.get_html(server.base + "/a").ok  # the first one goes at once
        assert clock.delays.count(5.0) == 0
        second = threading.Thread(
            target=lambda: done.append(fetcher.get_html(server.base + "/a").ok)
        )
        second.start()
        _until_armed(clock, 5.0, second)
        assert [path for path, _ in server.requests] == ["/a"]  # it has not been sent
        clock.advance(5.0)
        second.join()
    assert done == [True]
    assert [path for path, _ in server.requests] == ["/a", "/a"]


def test_other_hosts_do_not_wait(server: Server) -> None:
    other = Server("127.0.0.2")
    other.routes["/b"] = lambda h: h.reply(200, b"<html>b</html>")
    server.routes["/a"] = lambda h: h.reply(200, b"<html>a</html>")
    clock = ManualClock()
    try:
        with _fetcher(clock, host_interval=5.0) as fetcher:
            assert fetcher.get_html(server.base + "/a").ok
            assert fetcher.get_html(other.base + "/b").ok  # no wait: another host
    finally:
        other.close()
    assert 5.0 not in clock.delays


def test_the_interval_comes_from_the_environment() -> None:
    from newsmon.config import ConfigError, Settings

    settings = Settings.from_env({"NEWSMON_FETCH_HOST_INTERVAL": "1.5"})
    assert settings.fetch.host_interval == 1.5
    assert Settings.from_env({}).fetch.host_interval == 0.0
    assert Settings.from_env({"NEWSMON_FETCH_ROBOTS": "false"}).fetch.robots is False
    assert Settings.from_env({"NEWSMON_FETCH_MAX_CRAWL_DELAY": "3"}).fetch.max_crawl_delay == 3.0
    with pytest.raises(ConfigError, match="NEWSMON_FETCH_HOST_INTERVAL"):
        Settings.from_env({"NEWSMON_FETCH_HOST_INTERVAL": "-1"})
