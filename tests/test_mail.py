# ruff: noqa: RUF001  (the rule names and periods of the examples use en dashes, as users do)
"""Alert emails: what they say, that article text cannot inject markup, links or headers, and
how sending ends against a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import email
import email.policy
import hashlib
import ipaddress
import re
import smtplib
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsmon.alerts import (
    AlertEmail,
    AlertItem,
    SendResult,
    SmtpSettings,
    check_address,
    compose,
    message_id_for,
    send,
)
from newsmon.config import ConfigError

from .helpers.smtp import SENDER, Handler, smtp_server

NOW = datetime(2021, 8, 3, 9, 20, tzinfo=UTC)
SETTINGS = SmtpSettings(sender=SENDER)
HEADERS = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "X-Newsmon-Rule",
    "Auto-Submitted",
    "MIME-Version",
    "Content-Type",
]
BOL_URL = (
    "https://www.bolnews.com/latest/2021/08/us-defence-secretary-wants-to-improve-pak-us-ties/"
)


def bol_item(**changes: Any) -> AlertItem:
    item = AlertItem(
        story_id="3f1c",
        title="US Defence secretary wants to improve Pak-US ties",
        url=BOL_URL,
        outlet="BOL News",
        published_at=datetime(2021, 8, 3, 9, 12, tzinfo=UTC),
        snippets=(
            "Austin expressed interest in continuing to improve the <em>US</em>-<em>Pakistan</em>"
            " relationship",
        ),
        also_in=2,
    )
    return replace(item, **changes)


def alert(*items: AlertItem, **changes: Any) -> AlertEmail:
    base = AlertEmail(
        rule_id="pak-us-defence",
        rule_name="Pakistan–US defence",
        query='(Pakistan OR Pak) AND (US OR "United States") AND (defence OR defense)',
        recipients=("desk@example.org", "ayesha@example.org"),
        items=items or (bol_item(),),
        batch_key="pak-us-defence/2021-08-03T09:15Z",
        total_matches=3,
    )
    return replace(base, **changes)


def parts(message: EmailMessage) -> tuple[str, str]:
    """(text, html) of a composed message, after a round trip through bytes."""
    parsed = reparse(message)
    text_part, html_part = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert isinstance(text_part, EmailMessage) and isinstance(html_part, EmailMessage)
    return text_part.get_content(), html_part.get_content()


def check_header_block(raw: bytes) -> None:
    """Without any parser: every header line is one of ours or a continuation (of ours)."""
    head = raw.split(b"\n\n", 1)[0]
    for line in head.split(b"\n"):
        assert line[:1] in (b" ", b"\t") or line.split(b":", 1)[0].decode() in HEADERS, line
        assert b"\r" not in line and line.isascii()


def reparse(message: EmailMessage) -> EmailMessage:
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "p", "div", "strong", "code"}
ALLOWED_ATTRS = {"charset", "name", "content", "style", "dir", "href"}


def check_html(html_text: str, links: set[str]) -> list[str]:
    """The HTML has only our own markup; returns the hrefs (each must be in ``links``)."""
    assert "<script" not in html_text.lower()
    for tag in re.findall(r"<[^>]*>", html_text):  # every "<" of article text is escaped
        assert not re.search(r"\son\w+\s*=", tag, re.IGNORECASE), tag
    parser = _Markup()
    parser.feed(html_text)
    parser.close()
    hrefs = []
    for tag, attrs in parser.tags:
        assert tag in ALLOWED_TAGS | {"a", "em"}, tag
        assert set(attrs) <= ALLOWED_ATTRS, attrs
        if tag == "em":
            assert attrs == {}
        if "href" in attrs:
            assert tag == "a"
            href = attrs["href"]
            assert href is not None and href.lower().startswith(("http://", "https://")), href
            assert href in links, href
            hrefs.append(href)
    return hrefs


# --- settings ------------------------------------------------------------------------------------


def test_settings_defaults_from_empty_environment() -> None:
    # without NEWSMON_SMTP_HOST nothing is configured: sending refuses (see test below)
    assert SmtpSettings.from_env({}) == SmtpSettings(configured=False)
    assert SmtpSettings.from_env({"NEWSMON_SMTP_HOST": "127.0.0.1"}) == SmtpSettings()
    s = SmtpSettings()
    assert (s.host, s.port, s.security, s.sender, s.timeout) == (
        "127.0.0.1",
        25,
        "none",
        "newsmon@localhost",
        30.0,
    )


def test_settings_from_environment(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    env = {
        "NEWSMON_SMTP_HOST": " smtp.example.org ",
        "NEWSMON_SMTP_PORT": "2525",
        "NEWSMON_SMTP_USERNAME": "newsmon",
        "NEWSMON_SMTP_PASSWORD": "s3cret pass",
        "NEWSMON_SMTP_SECURITY": "STARTTLS",
        "NEWSMON_SMTP_FROM": "newsmon alerts <alerts@example.org>",
        "NEWSMON_SMTP_TIMEOUT": "12.5",
        "NEWSMON_SMTP_CA_FILE": str(ca),
    }
    s = SmtpSettings.from_env(env)
    assert s == SmtpSettings(
        host="smtp.example.org",
        port=2525,
        username="newsmon",
        password="s3cret pass",
        security="starttls",
        sender="newsmon alerts <alerts@example.org>",
        timeout=12.5,
        ca_file=str(ca),
    )
    assert s.sender_address == "alerts@example.org"
    assert "s3cret" not in repr(s)


@pytest.mark.parametrize(("security", "port"), [("none", 25), ("starttls", 587), ("ssl", 465)])
def test_settings_port_follows_security(security: str, port: int) -> None:
    assert SmtpSettings.from_env({"NEWSMON_SMTP_SECURITY": security}).port == port


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NEWSMON_SMTP_PORT", "smtp"),
        ("NEWSMON_SMTP_PORT", "0"),
        ("NEWSMON_SMTP_PORT", "70000"),
        ("NEWSMON_SMTP_PORT", "-25"),
        ("NEWSMON_SMTP_SECURITY", "tls"),
        ("NEWSMON_SMTP_TIMEOUT", "soon"),
        ("NEWSMON_SMTP_TIMEOUT", "0"),
        ("NEWSMON_SMTP_TIMEOUT", "nan"),
        ("NEWSMON_SMTP_TIMEOUT", "inf"),
        ("NEWSMON_SMTP_FROM", "newsmon"),
        ("NEWSMON_SMTP_FROM", "a@example.org, b@example.org"),
        ("NEWSMON_SMTP_FROM", "a@example.org\r\nBcc: victim@example.net"),
        ("NEWSMON_SMTP_FROM", 'Evil "Name <a@example.org>'),
        ("NEWSMON_SMTP_HOST", "smtp example.org"),
        ("NEWSMON_SMTP_CA_FILE", "/nonexistent/ca.pem"),
    ],
)
def test_settings_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        SmtpSettings.from_env({name: value})
    assert info.value.field == name
    assert name in str(info.value)


def test_settings_username_needs_password() -> None:
    with pytest.raises(ConfigError) as info:
        SmtpSettings.from_env({"NEWSMON_SMTP_USERNAME": "newsmon"})
    assert info.value.field == "NEWSMON_SMTP_PASSWORD"
    with pytest.raises(ConfigError) as info:
        SmtpSettings.from_env({"NEWSMON_SMTP_PASSWORD": "s3cret"})
    assert info.value.field == "NEWSMON_SMTP_USERNAME"
    assert "s3cret" not in str(info.value)


@pytest.mark.parametrize(
    "changes",
    [{"security": "tls"}, {"port": 0}, {"timeout": 0.0}, {"host": ""}, {"sender": "nobody"}],
)
def test_settings_constructor_validates(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SmtpSettings(**changes)


# --- composing -----------------------------------------------------------------------------------


def test_compose_bol_story() -> None:
    message = compose(alert(), SETTINGS, now=NOW)
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    parsed = reparse(message)
    assert list(parsed.keys()) == HEADERS
    assert parsed["Subject"] == (
        "[newsmon] Pakistan–US defence: US Defence secretary wants to improve Pak-US ties"
    )
    assert parsed["From"] == SENDER
    assert parsed["To"] == "desk@example.org, ayesha@example.org"
    assert parsed["X-Newsmon-Rule"] == "pak-us-defence"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["Date"].datetime == NOW
    digest = hashlib.sha256(b"pak-us-defence/2021-08-03T09:15Z").hexdigest()[:32]
    assert parsed["Message-ID"] == f"<newsmon.{digest}@newsmon.test>"

    text, html_text = parts(message)
    assert text.splitlines()[:5] == [
        "Pakistan–US defence: 1 new story, 3 articles",
        'Query: (Pakistan OR Pak) AND (US OR "United States") AND (defence OR defense)',
        "",
        "1. US Defence secretary wants to improve Pak-US ties",
        "   BOL News · 2021-08-03 09:12 UTC · also in 2 other outlets",
    ]
    assert "the *US*-*Pakistan*" in text
    assert f"   {BOL_URL}\n" in text
    assert "<em>US</em>-<em>Pakistan</em>" in html_text
    assert check_html(html_text, {BOL_URL}) == [BOL_URL]
    assert ">US Defence secretary wants to improve Pak-US ties</a>" in html_text


def test_compose_counts_digest_notes_period_and_kibana() -> None:
    kibana = "https://kibana.example.org/app/discover#/?_a=(query:(query:'Pakistan'))"
    items = (
        bol_item(),
        bol_item(story_id="2", title="Second", also_in=1, published_at=None, snippets=()),
    )
    message = compose(
        alert(
            *items,
            mode="digest",
            period="2021-08-03 08:00–09:00 Asia/Karachi",
            notes=("3 of 40 feeds have failed for 24 h",),
            kibana_url=kibana,
            total_matches=1,
            timezone="Asia/Karachi",
        ),
        SETTINGS,
        now=NOW,
    )
    assert message["Subject"] == "[newsmon] Pakistan–US defence: 2 new stories (digest)"
    text, html_text = parts(message)
    assert text.startswith("Pakistan–US defence: 2 new stories, 1 article\n")
    assert "Digest: 2021-08-03 08:00–09:00 Asia/Karachi" in text
    assert "Note: 3 of 40 feeds have failed for 24 h" in text
    assert "BOL News · 2021-08-03 14:12 PKT · also in 2 other outlets" in text
    assert "2. Second\n   BOL News · also in 1 other outlet\n" in text
    assert f"Search in Kibana: {kibana}" in text
    assert "3 of 40 feeds have failed for 24 h" in html_text
    hrefs = check_html(html_text, {BOL_URL, kibana})
    assert hrefs.count(BOL_URL) == 2 and kibana in hrefs
    assert "&#x27;Pakistan&#x27;" in html_text  # attribute-escaped


def test_compose_immediate_with_several_stories_counts_them() -> None:
    message = compose(alert(bol_item(), bol_item(), bol_item(), total_matches=None), SETTINGS)
    assert message["Subject"] == "[newsmon] Pakistan–US defence: 3 new stories"
    text, _ = parts(message)
    assert text.startswith("Pakistan–US defence: 3 new stories\n")


def test_message_id_is_deterministic_per_batch() -> None:
    first = compose(alert(), SETTINGS, now=NOW)
    again = compose(alert(bol_item(title="other")), SETTINGS, now=NOW + timedelta(hours=1))
    other_batch = compose(alert(batch_key="pak-us-defence/2"), SETTINGS, now=NOW)
    assert first["Message-ID"] == again["Message-ID"] != other_batch["Message-ID"]
    named = SmtpSettings(sender="newsmon alerts <Alerts@Example.ORG>")
    assert compose(alert(), named)["Message-ID"].endswith("@example.org>")
    assert message_id_for("k", SENDER) == message_id_for("k", "Other <x@newsmon.test>")


def test_times_naive_as_utc_and_unknown_zone_refused() -> None:
    naive = bol_item(published_at=datetime(2021, 8, 3, 9, 12))
    text, _ = parts(compose(alert(naive), SETTINGS))
    assert "2021-08-03 09:12 UTC" in text
    for zone in ("Mars/Olympus", "America", "../../etc/passwd", "x" * 300):
        with pytest.raises(ValueError, match="time zone"):
            compose(alert(timezone=zone), SETTINGS)


def test_snippets_are_capped() -> None:
    long = "word " * 500 + "<em>hit</em>"
    item = bol_item(snippets=("<em>one</em>", "two", "three", "four", long))
    text, _ = parts(compose(alert(item), SETTINGS))
    assert "*one*" in text and "three" in text and "four" not in text
    item = bol_item(snippets=(long,))
    text, html_text = parts(compose(alert(item), SETTINGS))
    assert "hit" not in text and "…" in text
    assert len(html_text) < 5000


@pytest.mark.parametrize(
    "changes",
    [{"items": ()}, {"mode": "weekly"}],
)
def test_compose_refuses_empty_or_unknown_mode(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        compose(replace(alert(), **changes), SETTINGS)


# --- safety: markup and links --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("<em onclick=alert(1)>x</em>", "&lt;em onclick=alert(1)&gt;x&lt;/em&gt;"),
        ("<script>alert(1)</script> <em>hit</em>", "&lt;script&gt;alert(1)&lt;/script&gt; <em>hit"),
        ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)&gt;"),
        ("see javascript:alert(1) <em>now</em>", "see javascript:alert(1) <em>now</em>"),
        ("<EM>loud</EM>", "&lt;EM&gt;loud&lt;/EM&gt;"),
        ("<em>open", "<em>open</em>"),
        ("</em>close <em>a<em>b</em>", "&lt;/em&gt;close <em>a&lt;em&gt;b</em>"),
        ("a &amp; b < c > \"d\" 'e'", "a &amp;amp; b &lt; c &gt; &quot;d&quot; &#x27;e&#x27;"),
        ('<a href="javascript:alert(1)">x</a>', "&lt;a href=&quot;javascript:alert(1)&quot;&gt;"),
        ("<em><script>x</script></em>", "<em>&lt;script&gt;x&lt;/script&gt;</em>"),
    ],
)
def test_snippet_markup_is_escaped_except_em(snippet: str, expected: str) -> None:
    _, html_text = parts(compose(alert(bol_item(snippets=(snippet,))), SETTINGS))
    assert expected in html_text
    check_html(html_text, {BOL_URL})


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("the <em>US</em>-<em>Pakistan</em> ties", "… the *US*-*Pakistan* ties …"),
        ("<em>open", "… *open* …"),
        ("</em>close <em>a<em>b</em> <script>", "… </em>close *a<em>b* <script> …"),
        ("line\r\nbreak\x00 and\ttab", "… line break and tab …"),
    ],
)
def test_text_part_marks_matches_with_stars(snippet: str, expected: str) -> None:
    text, _ = parts(compose(alert(bol_item(snippets=(snippet,))), SETTINGS))
    assert f"   {expected}\n" in text


def test_title_and_outlet_are_escaped() -> None:
    item = bol_item(
        title='<script>alert("t")</script><img src=x onerror=alert(1)>',
        outlet="<b onmouseover=alert(1)>Outlet</b>",
    )
    _, html_text = parts(compose(alert(item), SETTINGS))
    assert "&lt;script&gt;alert(&quot;t&quot;)&lt;/script&gt;&lt;img src=x onerror" in html_text
    assert "&lt;b onmouseover=alert(1)&gt;Outlet&lt;/b&gt;" in html_text
    check_html(html_text, {BOL_URL})


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(document.cookie)",
        "JaVaScRiPt:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "//evil.example/x",
        "/relative/path",
        "http:/no-host",
        "https://exa mple.org/",
        "https://example.org/\u202egnp.exe",
        "https://[::1",
        "https://example.org/" + "a" * 3000,
        "",
    ],
)
def test_only_http_urls_become_links(url: str) -> None:
    text, html_text = parts(compose(alert(bol_item(url=url)), SETTINGS))
    assert check_html(html_text, set()) == []
    assert "<a " not in html_text
    if url.strip():
        assert "address (not a web link):" in text and "address (not a web link):" in html_text
    assert "<script" not in html_text


def test_urls_are_attribute_escaped() -> None:
    url = "https://example.org/a?x=1&y=\"><script>alert(1)</script>'onmouseover='alert(1)"
    _, html_text = parts(compose(alert(bol_item(url=url)), SETTINGS))
    assert check_html(html_text, {url}) == [url]
    assert 'href="https://example.org/a?x=1&amp;y=&quot;&gt;&lt;script&gt;' in html_text


def test_non_http_kibana_url_is_left_out() -> None:
    text, html_text = parts(compose(alert(kibana_url="javascript:alert(1)"), SETTINGS))
    assert "javascript" not in text and "javascript" not in html_text
    assert "Kibana" not in text and "Kibana" not in html_text


# --- safety: headers -----------------------------------------------------------------------------


ENCODED_BCC = "=?utf-8?b?DQpCY2M6IHZpY3RpbUBleGFtcGxlLm5ldA==?="  # "\r\nBcc: victim@example.net"


@pytest.mark.parametrize(
    "changes",
    [
        {"items": (bol_item(title="Hi\r\nBcc: victim@example.net"),)},
        {"items": (bol_item(title="Hi\nTo: victim@example.net\n\n<html>body"),)},
        {"items": (bol_item(title=f"Hi {ENCODED_BCC} there"),)},
        {"items": (bol_item(title="=?iso-8859-1?q?=0D=0ABcc:_victim@example.net?="),)},
        {"items": (bol_item(title="x" * 10_000),)},
        {"items": (bol_item(title="پاکستان اور امریکہ کے دفاعی تعلقات " * 20),)},
        {"items": (bol_item(title="\ud800 lone surrogate \u202e and NUL \x00 and \u2028 LS"),)},
        {"rule_name": "Rule\r\nBcc: victim@example.net"},
        {"rule_name": ENCODED_BCC},
        {"rule_id": "pak\r\nBcc: victim@example.net"},
    ],
)
def test_headers_cannot_be_injected(changes: dict[str, Any]) -> None:
    message = compose(replace(alert(), **changes), SETTINGS, now=NOW)
    raw = message.as_bytes()
    assert all(len(line) <= 78 for line in raw.split(b"\n")), "a line is too long"
    check_header_block(raw)
    parsed = reparse(message)
    assert list(parsed.keys()) == HEADERS
    assert parsed["Subject"] == message["Subject"]
    assert parsed["X-Newsmon-Rule"] == message["X-Newsmon-Rule"]
    for name in ("Subject", "X-Newsmon-Rule"):
        assert not re.search(r"[\r\n\x00]", parsed[name])
    assert [a.addr_spec for a in parsed["To"].addresses] == [
        "desk@example.org",
        "ayesha@example.org",
    ]
    assert parsed["Bcc"] is None and parsed["Cc"] is None
    assert len(parsed["Subject"]) <= 240
    assert not parsed.defects


def test_line_breaks_in_titles_become_spaces() -> None:
    message = compose(alert(bol_item(title="Hi\r\nBcc: victim@example.net")), SETTINGS)
    assert (
        reparse(message)["Subject"] == "[newsmon] Pakistan–US defence: Hi Bcc: victim@example.net"
    )
    assert b"\nBcc" not in message.as_bytes()


def test_encoded_words_in_titles_are_not_decoded_by_readers() -> None:
    message = compose(alert(bol_item(title=f"Hi {ENCODED_BCC}")), SETTINGS)
    subject = reparse(message)["Subject"]
    assert "victim" not in subject  # the title's base64 stays text: decoded once, as a whole
    assert subject == f"[newsmon] Pakistan–US defence: Hi {ENCODED_BCC}"
    assert b"Hi =?utf-8?b?DQpC" not in message.as_bytes()


@pytest.mark.parametrize(
    "recipient",
    [
        "a@example.org, evil@example.net",
        "a@example.org\r\nBcc: evil@example.net",
        "a@example.org\n",
        "nobody",
        "Name <a@example.org>",
        "<a@example.org>",
        '"quoted"@example.org',
        "a@",
        "@example.org",
        "a..b@example.org",
        "ü@example.org",
        "a@exämple.org",
        "a b@example.org",
        "",
    ],
)
def test_bad_recipients_are_refused(recipient: str) -> None:
    with pytest.raises(ValueError):
        compose(alert(recipients=("ok@example.org", recipient)), SETTINGS)
    with pytest.raises(ValueError):
        check_address(recipient)


def test_recipients_must_be_a_sequence() -> None:
    with pytest.raises(ValueError, match="sequence"):
        compose(alert(recipients="a@example.org"), SETTINGS)
    with pytest.raises(ValueError, match="recipient"):
        compose(alert(recipients=()), SETTINGS)


def test_duplicate_recipients_are_sent_once() -> None:
    message = compose(alert(recipients=("a@example.org", "A@example.org", "b@x.org")), SETTINGS)
    assert [a.addr_spec for a in message["To"].addresses] == ["a@example.org", "b@x.org"]


# --- property tests ------------------------------------------------------------------------------

NASTY = [
    "\r\nBcc: victim@example.net",
    "\nTo: victim@example.net",
    "\r\n\r\n",
    "\r\n.\r\n",
    ENCODED_BCC,
    "=?",
    "?=",
    "=?iso-8859-1?q?=0D=0ABcc:_v@x?=",
    "<script>alert(1)</script>",
    "<em onclick=alert(1)>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">',
    " onload=alert(1)",
    "javascript:alert(1)",
    "<em>",
    "</em>",
    "<EM>",
    '"',
    "'",
    "<",
    ">",
    "&amp;",
    "&#x3c;script&#x3e;",
    "\ud800",
    "\udfff",
    "\u202e",
    "\u2066",
    "\x00",
    "\x1b",
    "\x7f",
    "\x85",
    "\u2028",
    "\u200b",
    "é",
    "پاکستان",
    "😀",
    "x" * 300,
    " " * 40,
    "\t",
    ":",
    ",",
    ";",
    "@",
]
messy = st.lists(st.one_of(st.text(max_size=30), st.sampled_from(NASTY)), max_size=8).map("".join)
urls = st.one_of(
    messy,
    st.builds(
        str.__add__,
        st.sampled_from(
            ["http://", "https://", "HTTPS://", "javascript:", "data:text/html,", "file:///", " "]
        ),
        st.one_of(
            st.from_regex(r"[a-z0-9.-]{1,20}(/[a-z0-9/?&=#%._~-]{0,30})?", fullmatch=True), messy
        ),
    ),
)
atom = st.from_regex(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,10}", fullmatch=True)
label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
addresses = st.builds(
    lambda local, domain: f"{'.'.join(local)}@{'.'.join(domain)}",
    st.lists(atom, min_size=1, max_size=3),
    st.lists(label, min_size=1, max_size=3),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    title=messy,
    rule_name=messy,
    rule_id=messy,
    outlet=messy,
    snippet=messy,
    url=urls,
    query=messy,
    note=messy,
    recipients=st.lists(addresses, min_size=1, max_size=4, unique_by=str.lower),
    batch_key=st.text(),
    mode=st.sampled_from(["immediate", "digest"]),
    count=st.integers(1, 3),
)
def test_property_no_injection(
    title: str,
    rule_name: str,
    rule_id: str,
    outlet: str,
    snippet: str,
    url: str,
    query: str,
    note: str,
    recipients: list[str],
    batch_key: str,
    mode: str,
    count: int,
) -> None:
    item = AlertItem("s", title, url, outlet, NOW, (snippet, snippet + "<em>x</em>"), also_in=1)
    message = compose(
        AlertEmail(
            rule_id=rule_id,
            rule_name=rule_name,
            query=query,
            recipients=tuple(recipients),
            items=(item,) * count,
            batch_key=batch_key,
            mode=mode,
            period=note,
            kibana_url=url,
            notes=(note,),
        ),
        SETTINGS,
        now=NOW,
    )
    raw = message.as_bytes()
    assert all(len(line) <= 78 for line in raw.split(b"\n")), "a line is too long"
    check_header_block(raw)
    parsed = reparse(message)
    assert list(parsed.keys()) == HEADERS
    assert [a.addr_spec for a in parsed["To"].addresses] == recipients
    assert parsed["Bcc"] is None and parsed["Cc"] is None
    assert parsed["From"].addresses[0].addr_spec == SENDER
    assert parsed["Message-ID"] == message_id_for(batch_key, SENDER)
    assert parsed["Subject"] == message["Subject"]
    assert parsed["Subject"].startswith("[newsmon] ")
    assert parsed["X-Newsmon-Rule"] == message["X-Newsmon-Rule"]
    for name in ("Subject", "X-Newsmon-Rule"):
        assert not re.search(r"[\x00-\x1f\x7f\u2028\u2029]", parsed[name])
    text, html_text = parts(message)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text)
    hrefs = check_html(html_text, {url})  # only http(s), only the URL we were given
    if re.fullmatch(r"https?://[a-z0-9][a-z0-9.-]*(/[a-z0-9/?&=#%._~-]*)?", url, re.IGNORECASE):
        assert len(hrefs) == count + 1  # each story's title, and the Kibana link


# --- sending -------------------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[tuple[Handler, SmtpSettings]]:
    with smtp_server() as (handler, port):
        yield handler, SmtpSettings(port=port, sender=SENDER, timeout=5)


def test_send_delivers_both_parts(server: tuple[Handler, SmtpSettings]) -> None:
    handler, smtp = server
    message = compose(alert(), smtp, now=NOW)
    result = send(message, smtp)
    assert result == SendResult(
        "sent", 250, "250 2.0.0 Ok: queued as NEWSMON1", message["Message-ID"]
    )
    [got] = handler.received
    assert got.mail_from == SENDER
    assert got.rcpt_tos == ["desk@example.org", "ayesha@example.org"]
    received = got.message
    assert received["Message-ID"] == message["Message-ID"]
    assert received["To"] == "desk@example.org, ayesha@example.org"
    assert received["Subject"] == message["Subject"]
    text = received.get_body(("plain",))
    html_part = received.get_body(("html",))
    assert text is not None and "*US*-*Pakistan*" in text.get_content()
    assert html_part is not None and "<em>US</em>" in html_part.get_content()
    assert max(len(line) for line in got.content.split(b"\r\n")) <= 78
    assert got.content.isascii()  # 7-bit: no 8BITMIME or SMTPUTF8 needed


@pytest.mark.parametrize(
    ("where", "reply", "status"),
    [
        ("rcpt", "421 4.3.2 Service shutting down", "retry"),
        ("rcpt", "451 4.7.1 Greylisted, try again later", "retry"),
        ("rcpt", "550 5.1.1 No such user", "failed"),
        ("data", "421 4.3.2 Service shutting down", "retry"),
        ("data", "451 4.3.0 Local error in processing", "retry"),
        ("data", "550 5.7.1 Message rejected as spam", "failed"),
        ("data", "552 5.3.4 Message too big", "failed"),
        ("mail", "451 4.3.0 Try later", "retry"),
        ("mail", "553 5.7.1 Sender not allowed", "failed"),
    ],
)
def test_send_classifies_replies(
    server: tuple[Handler, SmtpSettings], where: str, reply: str, status: str
) -> None:
    handler, smtp = server
    if where == "rcpt":
        handler.rcpt_replies["*"] = reply
    elif where == "data":
        handler.data_reply = reply
    else:
        handler.mail_reply = reply
    message = compose(alert(), smtp)
    result = send(message, smtp)
    assert (result.status, result.code) == (status, int(reply[:3]))
    assert reply[4:] in result.reason
    assert result.message_id == message["Message-ID"]
    assert handler.received == []
    if where == "rcpt" and reply.startswith("4") and not reply.startswith("421"):
        assert (
            result.refused == result.retry_recipients == ("desk@example.org", "ayesha@example.org")
        )
    if where == "rcpt" and reply.startswith("5"):
        assert result.refused == ("desk@example.org", "ayesha@example.org")
        assert result.retry_recipients == ()


def test_send_partial_refusal_is_sent(server: tuple[Handler, SmtpSettings]) -> None:
    handler, smtp = server
    handler.rcpt_replies["gone@example.org"] = "550 5.1.1 No such user"
    handler.rcpt_replies["busy@example.org"] = "450 4.2.1 Mailbox busy"
    recipients = ("desk@example.org", "gone@example.org", "busy@example.org")
    result = send(compose(alert(recipients=recipients), smtp), smtp)
    assert result.status == "sent" and result.code == 250
    assert result.refused == ("gone@example.org", "busy@example.org")
    assert result.retry_recipients == ("busy@example.org",)
    assert "accepted for 1 of 3 recipients" in result.reason
    assert "gone@example.org 550 5.1.1 No such user" in result.reason
    [got] = handler.received
    assert got.rcpt_tos == ["desk@example.org"]


def test_send_mixed_refusal_of_everyone_is_retried(server: tuple[Handler, SmtpSettings]) -> None:
    handler, smtp = server
    handler.rcpt_replies["desk@example.org"] = "550 5.1.1 No such user"
    handler.rcpt_replies["*"] = "451 4.7.1 Greylisted"
    result = send(compose(alert(), smtp), smtp)
    assert (result.status, result.code) == ("retry", 451)
    assert result.retry_recipients == ("ayesha@example.org",)


def test_send_connection_refused_is_retried() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    smtp = SmtpSettings(port=port, sender=SENDER, timeout=5)
    message = compose(alert(), smtp)
    result = send(message, smtp)
    assert (result.status, result.code) == ("retry", None)
    assert "refused" in result.reason and result.message_id == message["Message-ID"]


def test_send_dropped_before_data_is_retried(server: tuple[Handler, SmtpSettings]) -> None:
    handler, smtp = server
    handler.drop = "rcpt"
    result = send(compose(alert(), smtp), smtp)
    assert (result.status, result.code) == ("retry", None)
    assert "connection lost" in result.reason
    assert handler.received == []


def test_send_dropped_after_data_is_retried_and_duplicate_is_recognisable(
    server: tuple[Handler, SmtpSettings],
) -> None:
    handler, smtp = server
    handler.drop = "after_data"
    message = compose(alert(), smtp)
    first = send(message, smtp)
    assert (first.status, first.code) == ("retry", None)
    assert len(handler.received) == 1  # the server had the bytes, the client never heard back
    handler.drop = None
    again = send(compose(alert(), smtp, now=NOW), smtp)  # composed again from the ledger
    assert again.status == "sent"
    ids = [r.message["Message-ID"] for r in handler.received]
    assert ids == [message["Message-ID"]] * 2


def test_send_dropped_after_the_reply_is_sent(
    server: tuple[Handler, SmtpSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, smtp = server
    handler.drop = "after_reply"  # QUIT then fails: the message is delivered all the same
    quit_errors: list[BaseException] = []
    real_quit = smtplib.SMTP.quit

    def quit(self: smtplib.SMTP) -> tuple[int, bytes]:
        try:
            return real_quit(self)
        except Exception as exc:
            quit_errors.append(exc)
            raise

    monkeypatch.setattr(smtplib.SMTP, "quit", quit)
    result = send(compose(alert(), smtp), smtp)
    assert (result.status, result.code) == ("sent", 250)
    assert len(handler.received) == 1
    assert quit_errors and isinstance(quit_errors[0], smtplib.SMTPServerDisconnected)


def test_send_timeout_is_retried() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never speaks
        smtp = SmtpSettings(port=silent.getsockname()[1], sender=SENDER, timeout=0.3)
        result = send(compose(alert(), smtp), smtp)
    assert (result.status, result.code) == ("retry", None)
    assert "timed out" in result.reason


@contextmanager
def greeting_server(greeting: bytes) -> Iterator[int]:
    """A server that answers every connection with ``greeting`` and hangs up."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:  # one connection: send() makes exactly one
        conn, _ = listener.accept()
        with conn:
            conn.sendall(greeting)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        thread.join(timeout=5)


@pytest.mark.parametrize(
    ("greeting", "status"),
    [(b"421 4.3.2 Too busy, try later\r\n", "retry"), (b"554 5.7.1 Go away\r\n", "failed")],
)
def test_send_greeting_refusal(greeting: bytes, status: str) -> None:
    with greeting_server(greeting) as port:
        smtp = SmtpSettings(port=port, sender=SENDER, timeout=5)
        result = send(compose(alert(), smtp), smtp)
    assert (result.status, result.code) == (status, int(greeting[:3]))


def test_send_needs_recipients() -> None:
    message = EmailMessage()
    message["Subject"] = "x"
    with pytest.raises(ValueError, match="recipients"):
        send(message, SETTINGS)


# --- TLS -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certs:
    ca: Path
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory = tmp_path_factory.mktemp("certs")
    start, end = datetime.now(UTC) - timedelta(days=1), datetime.now(UTC) + timedelta(days=1)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "newsmon test CA")])
    unused = ("content_commitment", "key_encipherment", "data_encipherment", "key_agreement")
    usage = dict.fromkeys((*unused, "encipher_only", "decipher_only"), False)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, **usage),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False, **usage),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = Certs(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    paths.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"newsmon", b"s3cret")
    return AuthResult(success=ok, handled=False)


def test_starttls_with_login(certs: Certs) -> None:
    with smtp_server(
        tls_context=certs.server_context(),
        require_starttls=True,
        authenticator=_authenticator,
        auth_required=True,
    ) as (handler, port):
        smtp = SmtpSettings(
            port=port,
            security="starttls",
            username="newsmon",
            password="s3cret",
            sender=SENDER,
            ca_file=str(certs.ca),
            timeout=5,
        )
        assert send(compose(alert(), smtp), smtp).status == "sent"
        assert len(handler.received) == 1
        wrong = replace(smtp, password="wrong")
        result = send(compose(alert(), wrong), wrong)
        assert (result.status, result.code) == ("failed", 535)
        untrusted = replace(smtp, ca_file=None)  # the system CAs do not know the test CA
        result = send(compose(alert(), untrusted), untrusted)
        assert result.status == "failed" and "certificate" in result.reason
    assert len(handler.received) == 1


def test_implicit_tls(certs: Certs) -> None:
    with smtp_server(ssl_context=certs.server_context()) as (handler, port):
        smtp = SmtpSettings(port=port, security="ssl", sender=SENDER, ca_file=str(certs.ca))
        assert send(compose(alert(), smtp), smtp).status == "sent"
        [got] = handler.received
        assert got.message["Message-ID"] == compose(alert(), smtp)["Message-ID"]


def test_starttls_is_never_skipped(server: tuple[Handler, SmtpSettings], certs: Certs) -> None:
    handler, smtp = server  # this server does not offer STARTTLS
    tls = replace(smtp, security="starttls", ca_file=str(certs.ca))
    result = send(compose(alert(), tls), tls)
    assert (result.status, result.code) == ("failed", None)
    assert "STARTTLS" in result.reason
    assert handler.received == []


# --- docs ----------------------------------------------------------------------------------------


def test_docs_show_the_real_text_part() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "mail.md").read_text(encoding="utf-8")
    shown = doc.split("```text\n", 1)[1].split("```", 1)[0]
    kibana = "https://kibana.example.org/app/discover#/view/pak-us-defence"
    message = compose(alert(kibana_url=kibana, timezone="Asia/Karachi"), SETTINGS, now=NOW)
    text, _ = parts(message)
    assert [line.rstrip() for line in shown.splitlines()] == [
        line.rstrip() for line in text.splitlines()
    ]
    subject = " ".join(message["Subject"].split())
    assert subject in " ".join(doc.replace("`", "").split())
