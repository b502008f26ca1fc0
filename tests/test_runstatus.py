"""Judging a run by its feeds: every feed failing (or too many) is exit status 4, with a cause."""

from __future__ import annotations

import pytest

from newsmon.runstatus import FEEDS_FAILED_EXIT, judge_feeds, likely_cause

DNS = (
    "feed {n}: fetch_failed (cannot resolve f{n}.example: [Errno -3] Temporary failure in name "
    "resolution)"
)
REFUSED = "feed {n}: fetch_failed (cannot connect to 127.0.0.1: [Errno 111] Connection refused)"
TLS = (
    "feed {n}: fetch_failed (SSLError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
    "failed: self-signed certificate in certificate chain)"
)


def _problems(template: str, count: int) -> list[str]:
    return [template.format(n=n) for n in range(count)]


def test_every_feed_failing_is_exit_4_naming_name_resolution_and_the_demo() -> None:
    feeds = {"fetch_failed": 16, "connection_error": 16}
    verdict = judge_feeds(feeds, _problems(DNS, 16))
    assert verdict.exit_status == FEEDS_FAILED_EXIT == 4
    assert (verdict.failed, verdict.total) == (16, 16)
    assert verdict.message is not None
    lines = verdict.message.splitlines()
    assert lines[0] == "newsmon: every feed failed: 16 of 16"
    assert lines[1].startswith("  likely cause: name resolution")
    assert lines[2] == "  e.g. " + DNS.format(n=0)
    assert "make demo" in lines[3]


@pytest.mark.parametrize(
    ("template", "cause"), [(DNS, "name resolution"), (REFUSED, "network"), (TLS, "TLS")]
)
def test_the_likely_cause(template: str, cause: str) -> None:
    found = likely_cause(_problems(template, 3))
    assert found is not None and found.startswith(cause + ":")


def test_no_cause_when_the_reasons_disagree() -> None:
    reasons = [*_problems(DNS, 1), *_problems(REFUSED, 1), "feed x: feed_invalid (not a feed)"]
    assert likely_cause(reasons) is None
    verdict = judge_feeds({"fetch_failed": 2, "feed_invalid": 1}, reasons)
    assert verdict.exit_status == 4
    assert verdict.message is not None and "likely cause" not in verdict.message


def test_some_feeds_failing_is_fine_up_to_the_configured_share() -> None:
    feeds = {"fetched": 5, "not_modified": 3, "fetch_failed": 2}
    assert judge_feeds(feeds, _problems(REFUSED, 2)).exit_status == 0  # default: only all
    assert judge_feeds(feeds, _problems(REFUSED, 2), 0.2).exit_status == 0  # 20% is allowed
    strict = judge_feeds(feeds, _problems(REFUSED, 2), 0.1)
    assert strict.exit_status == 4
    assert strict.message is not None
    assert strict.message.splitlines()[0] == (
        "newsmon: 20% of the feeds failed: 2 of 10 (more than the allowed 10%)"
    )


@pytest.mark.parametrize(
    "feeds",
    [{}, {"disabled": 3}, {"fetched": 2}, {"not_modified": 4}, {"fetched": 1, "not_modified": 1}],
)
def test_nothing_failed_is_success(feeds: dict[str, int]) -> None:
    verdict = judge_feeds(feeds, [], 0.0)
    assert (verdict.exit_status, verdict.message) == (0, None)
