"""Alert emails: compose one multipart text + HTML message per batch, send it over SMTP.

Everything that comes from articles (titles, outlets, highlight snippets, URLs) is untrusted:
it is escaped in HTML (the only markup kept is the ``<em>``/``</em>`` highlighting),
links are only made for http(s) URLs, and headers are built so that no text can add a header
or a recipient (see docs/mail.md). :func:`send` never raises for SMTP or network problems; it
returns whether the message was sent, should be tried again, or failed for good.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import html
import logging
import math
import os
import re
import smtplib
import socket
import ssl
import textwrap
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import format_datetime
from typing import Final
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..config import ConfigError

__all__ = [
    "AlertEmail",
    "AlertItem",
    "SendResult",
    "SmtpSettings",
    "check_address",
    "compose",
    "message_id_for",
    "parse_sender",
    "send",
]

log = logging.getLogger(__name__)

SECURITY_MODES: Final = ("none", "starttls", "ssl")
DEFAULT_PORTS: Final = {"none": 25, "starttls": 587, "ssl": 465}
MODES: Final = ("immediate", "digest")

# Messages are written with 7-bit transfer encodings only (quoted-printable or base64 for
# non-ASCII text), so any SMTP server takes them without 8BITMIME or SMTPUTF8.
# Headers holding text from articles or rules are folded here (see _fold_header) and written
# as they are: refold_source="none" keeps the stdlib folder away from them.
POLICY: Final = default_policy.clone(cte_type="7bit", refold_source="none")

# Length caps for text from articles and rules (characters, after cleaning).
SUBJECT_NAME_MAX = 80
SUBJECT_TITLE_MAX = 140
NAME_MAX = 200
TITLE_MAX = 300
OUTLET_MAX = 100
SNIPPET_MAX = 600
SNIPPETS_PER_ITEM = 3
QUERY_MAX = 1000
NOTE_MAX = 300
URL_MAX = 2048  # longer URLs are shown (truncated) but not linked
URL_SHOWN_MAX = 200  # a URL that is not linked is shown up to this length

HIGHLIGHT_OPEN, HIGHLIGHT_CLOSE = "<em>", "</em>"  # Elasticsearch's default highlight tags

# RFC 5321/5322 dot-atom addresses, ASCII only: no display names, quotes, comments or groups.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"({_ATOM}(?:\.{_ATOM})*)@({_LABEL}(?:\.{_LABEL})*)")

_MESSAGE_ID = re.compile(r"<[!-;=?-~]{1,200}@[!-;=?-Z^-~]{1,200}>")  # no spaces, <, > or [ ]

# Unpaired bidi embeddings/overrides/isolates could reorder the trusted text around them.
_BIDI_CONTROLS = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])


# --- settings ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmtpSettings:
    """How newsmon reaches its mail server (``NEWSMON_SMTP_*``)."""

    host: str = "127.0.0.1"
    port: int = 25
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    security: str = "none"  # "none" | "starttls" | "ssl"
    sender: str = "newsmon@localhost"  # the From address, optionally "Name <addr>"
    timeout: float = 30.0  # seconds per network operation
    ca_file: str | None = None  # CA bundle to verify the server with, instead of the system's

    def __post_init__(self) -> None:
        if self.security not in SECURITY_MODES:
            raise ValueError(f"security must be one of {', '.join(SECURITY_MODES)}")
        if not 1 <= self.port <= 65535:
            raise ValueError("port must be between 1 and 65535")
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise ValueError("timeout must be a positive number of seconds")
        if not self.host or any(_is_control_or_space(c) for c in self.host):
            raise ValueError("host must be a host name or address")
        parse_sender(self.sender)

    @property
    def sender_address(self) -> str:
        """The bare address of the sender (the SMTP envelope sender)."""
        return parse_sender(self.sender)[1]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SmtpSettings:
        """Read ``NEWSMON_SMTP_HOST``, ``_PORT``, ``_USERNAME``, ``_PASSWORD``, ``_SECURITY``,
        ``_FROM``, ``_TIMEOUT`` and ``_CA_FILE``; a bad value raises a :class:`ConfigError`
        naming the variable. The port defaults to 25, 587 or 465 by ``_SECURITY``."""
        env = os.environ if environ is None else environ

        def error(name: str, message: str, *, show: bool = True) -> ConfigError:
            got = f" (got {env.get(name)!r})" if show else ""
            return ConfigError(message + got, file="environment", field=name)

        def text(name: str) -> str:
            return env.get(name, "").strip()

        host = text("NEWSMON_SMTP_HOST") or cls.host
        if any(_is_control_or_space(c) for c in host):
            raise error("NEWSMON_SMTP_HOST", "must be a host name or IP address")

        security = (text("NEWSMON_SMTP_SECURITY") or cls.security).lower()
        if security not in SECURITY_MODES:
            raise error("NEWSMON_SMTP_SECURITY", f"must be one of {', '.join(SECURITY_MODES)}")

        port = DEFAULT_PORTS[security]
        if raw_port := text("NEWSMON_SMTP_PORT"):
            if not raw_port.isdigit() or not 1 <= int(raw_port) <= 65535:
                raise error("NEWSMON_SMTP_PORT", "must be a port number from 1 to 65535")
            port = int(raw_port)

        timeout = cls.timeout
        if raw_timeout := text("NEWSMON_SMTP_TIMEOUT"):
            try:
                timeout = float(raw_timeout)
            except ValueError:
                raise error("NEWSMON_SMTP_TIMEOUT", "must be a number of seconds") from None
            if not (math.isfinite(timeout) and timeout > 0):
                raise error("NEWSMON_SMTP_TIMEOUT", "must be a positive number of seconds")

        sender = text("NEWSMON_SMTP_FROM") or cls.sender
        try:
            parse_sender(sender)
        except ValueError as exc:
            raise error("NEWSMON_SMTP_FROM", str(exc)) from None

        username = env.get("NEWSMON_SMTP_USERNAME") or None
        password = env.get("NEWSMON_SMTP_PASSWORD") or None
        if username is not None and any(_is_control(c) for c in username):
            raise error("NEWSMON_SMTP_USERNAME", "must not contain control characters")
        if (username is None) != (password is None):
            missing = "NEWSMON_SMTP_PASSWORD" if password is None else "NEWSMON_SMTP_USERNAME"
            raise error(
                missing, "set both NEWSMON_SMTP_USERNAME and _PASSWORD, or neither", show=False
            )

        ca_file = text("NEWSMON_SMTP_CA_FILE") or None
        if ca_file is not None and not os.path.isfile(ca_file):
            raise error("NEWSMON_SMTP_CA_FILE", "must be a readable CA bundle file")

        return cls(
            host=host,
            port=port,
            username=username,
            password=password,
            security=security,
            sender=sender,
            timeout=timeout,
            ca_file=ca_file,
        )


def check_address(value: str) -> str:
    """``value`` if it is one bare ASCII address (``local@domain``), else ValueError."""
    if not isinstance(value, str):
        raise ValueError(f"not an email address: {value!r}")
    if len(value) > 254 or not _ADDRESS.fullmatch(value) or len(value.partition("@")[0]) > 64:
        raise ValueError(f"not a single bare email address (local@domain): {value!r}")
    return value


def parse_sender(value: str) -> tuple[str, str]:
    """Split a From setting ``addr`` or ``Display Name <addr>`` into (name, address)."""
    if any(_is_control(c) for c in value):
        raise ValueError("must not contain control characters or line breaks")
    value = value.strip()
    name, address = "", value
    if match := re.fullmatch(r"([^<>]*?)\s*<([^<>]*)>", value):
        name, address = match.group(1).strip(), match.group(2).strip()
        if len(name) >= 2 and name[0] == name[-1] == '"':
            name = name[1:-1].strip()
        if any(c in name for c in '"\\'):
            raise ValueError("the display name must not contain quotes or backslashes")
    if not _ADDRESS.fullmatch(address) or len(address) > 254:
        raise ValueError("must be an email address, optionally as 'Name <local@domain>'")
    return name, address


# --- the email -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertItem:
    """One story in an alert email."""

    story_id: str
    title: str
    url: str  # the article link
    outlet: str  # site name or domain
    published_at: datetime | None
    # Elasticsearch highlight fragments: article text with the matched words in <em>…</em>;
    # everything else in them is untrusted text (not HTML).
    snippets: tuple[str, ...]
    also_in: int = 0  # how many other outlets ran the story


@dataclass(frozen=True)
class AlertEmail:
    """One email for one rule: the stories of one batch (immediate) or period (digest)."""

    rule_id: str
    rule_name: str
    query: str
    recipients: tuple[str, ...]
    items: tuple[AlertItem, ...]
    batch_key: str  # deterministic per (rule, batch): same batch, same Message-ID
    mode: str = "immediate"  # or "digest"
    period: str | None = None  # e.g. "2026-11-28 08:00-09:00 Asia/Karachi" for digests
    kibana_url: str | None = None  # the rule's search in Kibana; shown only if http(s)
    total_matches: int | None = None  # matching articles, for "5 new stories, 12 articles"
    notes: tuple[str, ...] = ()  # extra header lines, e.g. "3 of 40 feeds have failed for 24 h"
    timezone: str = "UTC"  # IANA zone the story times are shown in
    # the Message-ID stored with the batch at its first attempt; None: derived from batch_key
    message_id: str | None = None


def message_id_for(batch_key: str, sender: str) -> str:
    """The Message-ID of a batch: the same batch always gets the same one."""
    digest = hashlib.sha256(batch_key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    domain = parse_sender(sender)[1].rpartition("@")[2].lower()
    return f"<newsmon.{digest}@{domain}>"


def compose(
    alert: AlertEmail, settings: SmtpSettings, *, now: datetime | None = None
) -> EmailMessage:
    """The alert as a multipart/alternative message (text and HTML), ready for :func:`send`.

    Raises ValueError for a recipient that is not one bare address, no recipients, no items,
    an unknown mode or time zone; article text never makes it raise.
    """
    recipients = _recipients(alert.recipients)
    if not alert.items:
        raise ValueError("an alert email needs at least one story")
    if alert.mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {alert.mode!r}")
    zone = _zone(alert.timezone)
    view = _View.build(alert, zone)

    message = EmailMessage(policy=POLICY)
    sender_name, sender_address = parse_sender(settings.sender)
    message["From"] = Address(display_name=_clean(sender_name, NAME_MAX), addr_spec=sender_address)
    message.set_raw("To", _fold_addresses("To", recipients))
    message.set_raw("Subject", _fold_header("Subject", view.subject))
    message["Date"] = format_datetime(_aware(now or datetime.now(UTC)))
    message["Message-ID"] = _message_id(alert, settings)
    message.set_raw("X-Newsmon-Rule", _fold_header("X-Newsmon-Rule", view.rule_id or "-"))
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies
    message.set_content(view.text())
    message.add_alternative(view.html(), subtype="html")
    return message


def _message_id(alert: AlertEmail, settings: SmtpSettings) -> str:
    if alert.message_id is None:
        return message_id_for(alert.batch_key, settings.sender)
    if not _MESSAGE_ID.fullmatch(alert.message_id):
        raise ValueError(f"not a Message-ID: {alert.message_id!r}")
    return alert.message_id


def _recipients(recipients: Iterable[str]) -> list[str]:
    if isinstance(recipients, str):
        raise ValueError("recipients must be a sequence of addresses, not one string")
    out: list[str] = []
    seen: set[str] = set()
    for recipient in recipients:
        check_address(recipient)
        if recipient.lower() not in seen:
            seen.add(recipient.lower())
            out.append(recipient)
    if not out:
        raise ValueError("an alert email needs at least one recipient")
    return out


def _zone(name: str) -> tzinfo:
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# --- untrusted text ------------------------------------------------------------------------------


def _is_control(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Cs") or char in "\u2028\u2029"


def _is_control_or_space(char: str) -> bool:
    return _is_control(char) or char.isspace()


def _clean(text: str, limit: int | None = None, *, strip: bool = True) -> str:
    """One line of displayable text: control characters and line breaks become spaces,
    whitespace runs collapse, lone surrogates become U+FFFD, bidi overrides go."""
    text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    text = text.translate(_BIDI_CONTROLS)
    text = "".join(" " if _is_control(c) else c for c in text)
    text = re.sub(r"\s+", " ", text)
    if strip:
        text = text.strip()
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def _fold_header(name: str, text: str) -> str:
    """A header value for :meth:`EmailMessage.set_raw`, folded to 78 characters a line, that
    every reader decodes back to exactly ``text`` (one clean line, see :func:`_clean`).

    Printable ASCII is folded at its spaces. Anything else — non-ASCII, a word too long to
    fold, or ``=?``, which a reader would take for the start of an RFC 2047 encoded word — is
    written entirely as base64 encoded words, so no text from an article is ever read as
    header syntax. (The stdlib folder is not used: it can lose or double spaces where it
    folds between encoded words.)
    """
    if text.isascii() and "=?" not in text and (folded := _fold_ascii(name, text)) is not None:
        return folded
    chunks: list[bytes] = [b""]
    for char in text:
        encoded = char.encode("utf-8")
        if len(chunks[-1]) + len(encoded) > 36:  # 48 base64 characters, 60 with the markers
            chunks.append(b"")
        chunks[-1] += encoded
    words = [f"=?utf-8?b?{base64.b64encode(chunk).decode('ascii')}?=" for chunk in chunks]
    return "\n ".join(words)


def _fold_addresses(name: str, addresses: list[str]) -> str:
    """An address list header value for :meth:`EmailMessage.set_raw` (checked addresses)."""
    return _fold_ascii(name, ", ".join(addresses)) or ",\n ".join(addresses)


def _fold_ascii(name: str, text: str) -> str | None:
    """``text`` folded at its spaces into lines of at most 78 characters, or None if a word
    is too long for that."""
    lines: list[str] = []
    line, room = "", 78 - len(name) - 2  # the first line also holds "Name: "
    for word in text.split(" "):
        if not line or len(line) + 1 + len(word) <= room:
            line = f"{line} {word}" if line else word
        else:
            lines.append(line)
            line, room = " " + word, 78  # a fold: the space stays part of the value
        if len(line) > room:
            return None
    return "\n".join([*lines, line])


def _web_url(url: str) -> str | None:
    """``url`` if it is a plain http(s) URL with a host that may become a link, else None."""
    if not url or len(url) > URL_MAX:
        return None
    if any(unicodedata.category(c)[0] in "CZ" for c in url):  # controls, spaces, bidi…
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    if not url.lower().startswith(("http://", "https://")):
        return None
    return url


Segment = tuple[str, bool]  # (text, highlighted)


def _snippet(fragment: str, limit: int = SNIPPET_MAX) -> list[Segment]:
    """A highlight fragment as text segments: only exact ``<em>``/``</em>`` pairs highlight;
    any other markup in it is text."""
    segments: list[Segment] = []
    highlighted = False
    for token in re.split(f"({re.escape(HIGHLIGHT_OPEN)}|{re.escape(HIGHLIGHT_CLOSE)})", fragment):
        if token == HIGHLIGHT_OPEN and not highlighted:
            highlighted = True
        elif token == HIGHLIGHT_CLOSE and highlighted:
            highlighted = False
        elif token:
            text = _clean(token, strip=False)
            if segments and segments[-1][1] == highlighted:
                segments[-1] = (segments[-1][0] + text, highlighted)
            elif text:
                segments.append((text, highlighted))
    # strip the ends, then cap the length
    out: list[Segment] = []
    budget = limit
    for index, (text, lit) in enumerate(segments):
        if index == 0:
            text = text.lstrip()
        if index == len(segments) - 1:
            text = text.rstrip()
        if len(text) >= budget:
            out.append((text[: max(budget - 1, 0)].rstrip() + "…", lit))
            break
        budget -= len(text)
        if text:
            out.append((text, lit))
    return [(text, lit) for text, lit in out if text.strip() or not lit]


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


# --- rendering -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Story:
    title: str
    outlet: str
    when: str | None
    url: str | None  # linkable http(s) URL
    url_text: str | None  # a URL shown as text only
    also_in: int
    snippets: tuple[tuple[Segment, ...], ...]

    @property
    def meta(self) -> str:
        parts = [self.outlet or "unknown outlet"]
        if self.when:
            parts.append(self.when)
        if self.also_in > 0:
            parts.append("also in " + _plural(self.also_in, "other outlet", "other outlets"))
        return " · ".join(parts)


@dataclass(frozen=True)
class _View:
    """The clean, capped strings of one email, rendered to text or HTML."""

    subject: str
    rule_name: str
    rule_id: str
    counts: str
    query: str
    period: str | None
    notes: tuple[str, ...]
    kibana_url: str | None
    stories: tuple[_Story, ...]

    @classmethod
    def build(cls, alert: AlertEmail, zone: tzinfo) -> _View:
        name = _clean(alert.rule_name, NAME_MAX) or _clean(alert.rule_id, NAME_MAX) or "alert"
        stories = tuple(_story(item, zone) for item in alert.items)
        count = len(stories)
        counts = _plural(count, "new story", "new stories")
        if alert.total_matches is not None and alert.total_matches >= 0:
            counts += ", " + _plural(alert.total_matches, "article", "articles")
        subject_name = _clean(name, SUBJECT_NAME_MAX)
        if alert.mode == "digest":
            subject = (
                f"[newsmon] {subject_name}: {_plural(count, 'new story', 'new stories')} (digest)"
            )
        elif count == 1:
            title = _clean(alert.items[0].title, SUBJECT_TITLE_MAX) or "1 new story"
            subject = f"[newsmon] {subject_name}: {title}"
        else:
            subject = f"[newsmon] {subject_name}: {count} new stories"
        kibana = _web_url(alert.kibana_url) if alert.kibana_url else None
        if alert.kibana_url and kibana is None:
            log.warning("rule %r: kibana_url is not an http(s) URL; left out", alert.rule_id)
        period = _clean(alert.period, NOTE_MAX) if alert.period else None
        return cls(
            subject=subject,
            rule_name=name,
            rule_id=_clean(alert.rule_id, NAME_MAX),
            counts=counts,
            query=_clean(alert.query, QUERY_MAX),
            period=period or None,
            notes=tuple(n for n in (_clean(note, NOTE_MAX) for note in alert.notes) if n),
            kibana_url=kibana,
            stories=stories,
        )

    # text/plain ----------------------------------------------------------------------------

    def text(self) -> str:
        lines = [f"{self.rule_name}: {self.counts}", f"Query: {self.query}"]
        if self.period:
            lines.append(f"Digest: {self.period}")
        lines += [f"Note: {note}" for note in self.notes]
        for number, story in enumerate(self.stories, 1):
            lines.append("")
            lines.append(_wrap(f"{number}. {story.title or '(no title)'}", "   "))
            lines.append(_wrap(story.meta, "   ", first="   "))
            for snippet in story.snippets:
                marked = "".join(f"*{text}*" if lit else text for text, lit in snippet)
                lines.append(_wrap(f"… {marked} …", "   ", first="   "))
            if story.url:
                lines.append(f"   {story.url}")
            elif story.url_text:
                lines.append(_wrap(f"address (not a web link): {story.url_text}", "   ", "   "))
        lines += ["", "-- ", f'newsmon alert "{self.rule_name}" ({self.rule_id})']
        if self.kibana_url:
            lines.append(f"Search in Kibana: {self.kibana_url}")
        return "\n".join(lines) + "\n"

    # text/html -----------------------------------------------------------------------------

    def html(self) -> str:
        e = _escape
        out = [
            "<!DOCTYPE html>",
            '<html><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{e(self.subject)}</title>",
            "<style>em{font-style:normal;font-weight:bold;background-color:#fff2a8}</style>",
            "</head>",
            '<body style="margin:0;padding:16px;font-family:Arial,Helvetica,sans-serif;'
            'font-size:15px;line-height:1.45;color:#1a1a1a">',
            f'<p style="margin:0 0 4px;font-size:17px"><strong dir="auto">{e(self.rule_name)}'
            f"</strong>: {e(self.counts)}</p>",
            f'<p style="margin:0 0 4px;color:#555">Query: <code>{e(self.query)}</code></p>',
        ]
        if self.period:
            out.append(f'<p style="margin:0 0 4px;color:#555">Digest: {e(self.period)}</p>')
        out += [f'<p style="margin:0 0 4px;color:#8a4b00">{e(note)}</p>' for note in self.notes]
        for story in self.stories:
            title = e(story.title or "(no title)")
            if story.url:
                title = f'<a href="{e(story.url)}" style="color:#0b57d0">{title}</a>'
            out.append('<div style="margin:18px 0;padding-top:12px;border-top:1px solid #ddd">')
            out.append(f'<div dir="auto" style="font-size:16px;font-weight:bold">{title}</div>')
            out.append(f'<div style="color:#555;font-size:13px">{e(story.meta)}</div>')
            for snippet in story.snippets:
                body = "".join(f"<em>{e(text)}</em>" if lit else e(text) for text, lit in snippet)
                out.append(f'<p dir="auto" style="margin:6px 0">… {body} …</p>')
            if story.url_text:
                out.append(
                    '<div style="color:#555;font-size:13px">address (not a web link): '
                    f"<code>{e(story.url_text)}</code></div>"
                )
            out.append("</div>")
        footer = f"newsmon alert “{e(self.rule_name)}” ({e(self.rule_id)})"
        if self.kibana_url:
            footer += f' · <a href="{e(self.kibana_url)}">Open this search in Kibana</a>'
        out.append(
            '<p style="margin-top:18px;padding-top:12px;border-top:1px solid #ddd;'
            f'color:#777;font-size:12px">{footer}</p>'
        )
        out.append("</body></html>")
        return "\n".join(out) + "\n"


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


def _wrap(text: str, indent: str, first: str = "") -> str:
    return textwrap.fill(
        text,
        width=76,
        initial_indent=first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _story(item: AlertItem, zone: tzinfo) -> _Story:
    url = _web_url(item.url)
    url_text = None if url else (_clean(item.url, URL_SHOWN_MAX) or None)
    when = None
    if item.published_at is not None:
        local = _aware(item.published_at).astimezone(zone)
        when = f"{local:%Y-%m-%d %H:%M} {local.tzname() or ''}".strip()
    snippets = tuple(
        s for s in (tuple(_snippet(f)) for f in item.snippets[:SNIPPETS_PER_ITEM]) if s
    )
    return _Story(
        title=_clean(item.title, TITLE_MAX),
        outlet=_clean(item.outlet, OUTLET_MAX),
        when=when,
        url=url,
        url_text=url_text,
        also_in=max(item.also_in, 0),
        snippets=snippets,
    )


# --- sending -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendResult:
    """How a send ended.

    ``status`` is "sent" (the server took responsibility for the message), "retry" (a transient
    problem: a 4xx reply, no connection, a connection lost or a timeout before the server
    confirmed — if it had in fact taken the message, sending again makes a duplicate with the
    same Message-ID) or "failed" (permanent: a 5xx reply, every recipient refused for good,
    TLS or authentication set up wrongly).
    """

    status: str  # "sent" | "retry" | "failed"
    code: int | None  # the SMTP reply code that decided it, if any
    reason: str
    message_id: str
    refused: tuple[str, ...] = ()  # recipients the server refused
    # those of ``refused`` refused with a 4xx code: compose again for just them (same
    # batch_key, so the same Message-ID) and send later
    retry_recipients: tuple[str, ...] = ()


class _Reply(Exception):
    """An SMTP reply that ends the transaction (raised inside :func:`send`)."""

    def __init__(self, code: int, text: str, stage: str) -> None:
        super().__init__(code, text, stage)
        self.code, self.text, self.stage = code, text, stage


def send(message: EmailMessage, settings: SmtpSettings) -> SendResult:
    """Send ``message`` to the addresses in its To/Cc headers; never raises for SMTP or
    network problems (ValueError for a message without valid recipients)."""
    message_id = str(message.get("Message-ID", "")).strip()
    recipients = _envelope_recipients(message)
    payload = _flatten(message)
    client: smtplib.SMTP | None = None
    try:
        client = _open(settings)
        result = _transaction(client, settings.sender_address, recipients, payload, message_id)
    except _Reply as reply:
        result = _from_reply(reply.code, reply.text, reply.stage, message_id)
    except smtplib.SMTPResponseException as exc:
        result = _from_reply(exc.smtp_code, _reply_text(exc.smtp_error), "reply", message_id)
    except smtplib.SMTPServerDisconnected as exc:
        reason = f"connection lost: {exc or 'closed by the server'}"
        result = SendResult("retry", None, reason, message_id)
    except smtplib.SMTPNotSupportedError as exc:
        result = SendResult("failed", None, f"not supported by the server: {exc}", message_id)
    except smtplib.SMTPException as exc:
        result = SendResult("failed", None, f"SMTP error: {exc}", message_id)
    except ssl.SSLCertVerificationError as exc:
        reason = f"TLS certificate not trusted: {exc.verify_message or exc}"
        result = SendResult("failed", None, reason, message_id)
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError) as exc:
        result = SendResult("retry", None, f"TLS connection lost: {exc}", message_id)
    except ssl.SSLError as exc:
        result = SendResult("failed", None, f"TLS negotiation failed: {exc}", message_id)
    except socket.gaierror as exc:
        reason = f"cannot resolve {settings.host}: {exc.strerror or exc}"
        result = SendResult("retry", None, reason, message_id)
    except TimeoutError:
        reason = f"timed out after {settings.timeout:g}s talking to {_where(settings)}"
        result = SendResult("retry", None, reason, message_id)
    except ConnectionRefusedError:
        result = SendResult("retry", None, f"connection refused by {_where(settings)}", message_id)
    except OSError as exc:
        reason = f"network error with {_where(settings)}: {exc.strerror or exc}"
        result = SendResult("retry", None, reason, message_id)
    finally:
        if client is not None:
            _close(client)
    level = logging.INFO if result.status == "sent" else logging.WARNING
    log.log(
        level,
        "mail %s %s to %d recipient(s): %s",
        message_id,
        result.status,
        len(recipients),
        result.reason,
    )
    return result


def _where(settings: SmtpSettings) -> str:
    return f"{settings.host}:{settings.port}"


def _envelope_recipients(message: EmailMessage) -> list[str]:
    recipients: list[str] = []
    for name in ("To", "Cc", "Bcc"):
        header = message.get(name)
        for address in getattr(header, "addresses", ()):
            recipients.append(check_address(address.addr_spec))
    if not recipients:
        raise ValueError("the message has no recipients")
    return list(dict.fromkeys(recipients))


def _flatten(message: EmailMessage) -> bytes:
    if "Bcc" in message:  # like smtplib.send_message: Bcc is envelope only
        message = _copy_without(message, "Bcc")
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def _copy_without(message: EmailMessage, header: str) -> EmailMessage:
    clone = copy.copy(message)
    del clone[header]
    return clone


def _open(settings: SmtpSettings) -> smtplib.SMTP:
    context = None
    if settings.security != "none":
        context = ssl.create_default_context(cafile=settings.ca_file)
    client: smtplib.SMTP
    if settings.security == "ssl":
        client = smtplib.SMTP_SSL(
            settings.host, settings.port, timeout=settings.timeout, context=context
        )
    else:
        client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    try:
        client.ehlo_or_helo_if_needed()
        if settings.security == "starttls":
            client.starttls(context=context)  # SMTPNotSupportedError if not offered
            client.ehlo()
        if settings.username is not None:
            client.login(settings.username, settings.password or "")
    except BaseException:
        _close(client)
        raise
    return client


def _transaction(
    client: smtplib.SMTP, sender: str, recipients: list[str], payload: bytes, message_id: str
) -> SendResult:
    code, reply = client.mail(sender)
    if code != 250:
        raise _Reply(code, _reply_text(reply), "MAIL FROM")
    refused: dict[str, tuple[int, str]] = {}
    for recipient in recipients:
        code, reply = client.rcpt(recipient)
        if code not in (250, 251):
            refused[recipient] = (code, _reply_text(reply))
            if code == 421:  # the server is closing the connection
                raise _Reply(code, _reply_text(reply), f"RCPT TO <{recipient}>")
    if len(refused) == len(recipients):
        _quietly(client.rset)
        return _all_refused(refused, message_id)
    code, reply = client.data(payload)  # SMTPDataError if DATA itself is refused
    if code != 250:
        raise _Reply(code, _reply_text(reply), "end of data")
    reason = f"{code} {_reply_text(reply)}".strip()
    if refused:
        reason += f"; accepted for {len(recipients) - len(refused)} of {len(recipients)}"
        reason += " recipients, refused: " + _refusals(refused)
    return SendResult(
        "sent",
        code,
        reason,
        message_id,
        refused=tuple(refused),
        retry_recipients=tuple(r for r, (c, _) in refused.items() if 400 <= c < 500),
    )


def _all_refused(refused: dict[str, tuple[int, str]], message_id: str) -> SendResult:
    codes = [code for code, _ in refused.values()]
    transient = [code for code in codes if not 500 <= code < 600]
    status = "retry" if transient else "failed"
    return SendResult(
        status,
        transient[0] if transient else codes[0],
        "every recipient refused: " + _refusals(refused),
        message_id,
        refused=tuple(refused),
        retry_recipients=tuple(r for r, (c, _) in refused.items() if 400 <= c < 500),
    )


def _refusals(refused: dict[str, tuple[int, str]]) -> str:
    return "; ".join(
        f"{address} {code} {text}".rstrip() for address, (code, text) in refused.items()
    )


def _from_reply(code: int, text: str, stage: str, message_id: str) -> SendResult:
    """5xx is permanent; 4xx (and anything unexpected) is worth another try."""
    status = "failed" if 500 <= code < 600 else "retry"
    return SendResult(status, code, f"{stage}: {code} {text}".rstrip(), message_id)


def _reply_text(reply: bytes | str) -> str:
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    return _clean(reply, 500)


def _quietly(action: Callable[[], object]) -> None:
    with contextlib.suppress(smtplib.SMTPException, OSError):
        action()


def _close(client: smtplib.SMTP) -> None:
    """QUIT politely, then close; the outcome is already decided, so errors are ignored."""
    try:
        if client.sock is not None:
            client.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        client.close()
