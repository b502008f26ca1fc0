"""Alert emails: one multipart text + HTML message per batch of an alert rule.

Everything that comes from articles (titles, outlets, highlight snippets, URLs) is untrusted:
it is escaped in HTML (the only markup kept is the ``<em>``/``</em>`` highlighting),
links are only made for http(s) URLs, and headers are built so that no text can add a header
or a recipient (see docs/mail.md). :mod:`.smtp` sends the message.
"""

from __future__ import annotations

import base64
import hashlib
import html
import logging
import re
import textwrap
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import format_datetime
from typing import Final
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .smtp import SmtpSettings
from .untrusted import check_address, clean, parse_sender

__all__ = ["AlertEmail", "AlertItem", "EmailLinks", "compose", "message_id_for"]

log = logging.getLogger(__name__)

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
OUTLETS_SHOWN = 8  # outlet names an event's entry lists; the rest are counted
QUERY_MAX = 1000
NOTE_MAX = 300
URL_MAX = 2048  # longer URLs are shown (truncated) but not linked
URL_SHOWN_MAX = 200  # a URL that is not linked is shown up to this length

HIGHLIGHT_OPEN, HIGHLIGHT_CLOSE = "<em>", "</em>"  # Elasticsearch's default highlight tags

_MESSAGE_ID = re.compile(r"<[!-;=?-~]{1,200}@[!-;=?-Z^-~]{1,200}>")  # no spaces, <, > or [ ]


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
    # the event the story reports (docs/events.md): stories of one event are one entry
    event_id: str | None = None
    event_title: str = ""
    event_outlets: tuple[str, ...] = ()
    event_outlet_count: int = 0
    event_repeat: bool = False  # a later report of an event alerted before: "more coverage"


@dataclass(frozen=True)
class EmailLinks:
    """The action links of one email (signed, see :mod:`.tokens`): ``unsubscribe`` is also
    the RFC 8058 one-click ``List-Unsubscribe`` target."""

    unsubscribe: str
    snooze: str | None = None  # snooze the rule for a day
    mute: tuple[tuple[str, str], ...] = ()  # (story id, link muting that story for the rule)
    page: str | None = None  # the rule's page in Airflow


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
    links: EmailLinks | None = None  # unsubscribe, snooze and mute links (None: no links)
    test: bool = False  # a test email (``newsmon alerts test-email``): said in subject and body


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
    message["From"] = Address(display_name=clean(sender_name, NAME_MAX), addr_spec=sender_address)
    message.set_raw("To", _fold_addresses("To", recipients))
    message.set_raw("Subject", _fold_header("Subject", view.subject))
    message["Date"] = format_datetime(_aware(now or datetime.now(UTC)))
    message["Message-ID"] = _message_id(alert, settings)
    message.set_raw("X-Newsmon-Rule", _fold_header("X-Newsmon-Rule", view.rule_id or "-"))
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies
    if view.unsubscribe:  # RFC 8058 one-click unsubscribe (RFC 2369 header)
        message.set_raw("List-Unsubscribe", f"<{view.unsubscribe}>")
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
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


# --- headers and untrusted text ------------------------------------------------------------------


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
            text = clean(token, strip=False)
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
    mute: str | None = None  # the link muting this story for the rule

    @property
    def meta(self) -> str:
        parts = [self.outlet or "unknown outlet"]
        if self.when:
            parts.append(self.when)
        if self.also_in > 0:
            parts.append("also in " + _plural(self.also_in, "other outlet", "other outlets"))
        return " · ".join(parts)


@dataclass(frozen=True)
class _Entry:
    """One numbered entry of an email: a story as it is (``event`` None), or an event with
    the email's stories of it and its repeats ("more coverage", alerted before)."""

    stories: tuple[_Story, ...]
    event: str | None = None  # the event's title
    outlets: str = ""  # "4 outlets: Express.co.uk, Smithsonian.com, The Sun, New York Post"
    repeats: tuple[_Story, ...] = ()


def _groups(items: Sequence[AlertItem]) -> list[list[int]]:
    """The items' indices by event, in the order of each event's first item; an item in no
    event is a group of its own."""
    groups: list[list[int]] = []
    by_event: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        if item.event_id is None:
            groups.append([index])
        elif item.event_id in by_event:
            by_event[item.event_id].append(index)
        else:
            by_event[item.event_id] = [index]
            groups.append(by_event[item.event_id])
    return groups


def _event_label(items: Sequence[AlertItem]) -> tuple[str, int, list[str]] | None:
    """The title, outlet count and outlet names of the event of ``items`` (one event's): the
    most complete record of it, with the items' own outlets added."""
    known = [i for i in items if i.event_id]
    if not known:
        return None
    best = max(known, key=lambda i: (i.event_outlet_count, len(i.event_outlets)))
    outlets: list[str] = []
    for name in (*best.event_outlets, *(i.outlet for i in items)):
        name = clean(name, OUTLET_MAX)
        if name and name not in outlets:
            outlets.append(name)
    title = clean(best.event_title, TITLE_MAX) or clean(items[0].title, TITLE_MAX)
    return title, max(best.event_outlet_count, len(outlets)), outlets


def _entry(items: Sequence[AlertItem], stories: Sequence[_Story], group: Sequence[int]) -> _Entry:
    members = [items[i] for i in group]
    label = _event_label(members)
    if label is None or (len(group) == 1 and not members[0].event_repeat):
        return _Entry(stories=tuple(stories[i] for i in group))
    title, count, outlets = label
    shown = ", ".join(outlets[:OUTLETS_SHOWN])
    if len(outlets) > OUTLETS_SHOWN:
        shown += f" and {len(outlets) - OUTLETS_SHOWN} more"
    return _Entry(
        stories=tuple(stories[i] for i in group if not items[i].event_repeat),
        event=title,
        outlets=f"{_plural(count, 'outlet', 'outlets')}: {shown}",
        repeats=tuple(stories[i] for i in group if items[i].event_repeat),
    )


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
    entries: tuple[_Entry, ...] = ()
    unsubscribe: str | None = None
    snooze: str | None = None
    page: str | None = None
    test: bool = False

    @classmethod
    def build(cls, alert: AlertEmail, zone: tzinfo) -> _View:
        name = clean(alert.rule_name, NAME_MAX) or clean(alert.rule_id, NAME_MAX) or "alert"
        stories = tuple(_story(item, zone) for item in alert.items)
        count = sum(not item.event_repeat for item in alert.items)
        groups = _groups(alert.items)
        counts = _plural(count, "new story", "new stories")
        fresh = [[i for i in g if not alert.items[i].event_repeat] for g in groups]
        events = [g for g in fresh if len(g) > 1]
        if events:
            about = sum(len(g) for g in events)
            counts += f" ({about} about {_plural(len(events), 'event', 'events')})"
        if alert.total_matches is not None and alert.total_matches >= 0:
            counts += ", " + _plural(alert.total_matches, "article", "articles")
        if count < len(stories):
            repeats = len(stories) - count
            counts += "; " + _plural(repeats, "more report", "more reports")
            counts += " of events alerted before"
        subject_name = clean(name, SUBJECT_NAME_MAX)
        first = alert.items[groups[0][0]]
        if alert.mode == "digest":
            subject = (
                f"[newsmon] {subject_name}: {_plural(count, 'new story', 'new stories')} (digest)"
            )
        elif count == 1:
            title = clean(alert.items[0].title, SUBJECT_TITLE_MAX) or "1 new story"
            subject = f"[newsmon] {subject_name}: {title}"
        elif len(groups) == 1 and first.event_id and (label := _event_label(alert.items)):
            subject = f"[newsmon] {subject_name}: {clean(label[0], SUBJECT_TITLE_MAX)}"
            subject += f" ({_plural(label[1], 'outlet', 'outlets')})"
        else:
            subject = f"[newsmon] {subject_name}: {count} new stories"
        kibana = _web_url(alert.kibana_url) if alert.kibana_url else None
        if alert.kibana_url and kibana is None:
            log.warning("rule %r: kibana_url is not an http(s) URL; left out", alert.rule_id)
        period = clean(alert.period, NOTE_MAX) if alert.period else None
        links = alert.links
        mutes = dict(links.mute) if links else {}
        stories = tuple(
            replace(story, mute=_link(mutes.get(item.story_id)))
            for story, item in zip(stories, alert.items, strict=True)
        )
        if alert.test:
            subject = f"[newsmon test] {subject.removeprefix('[newsmon] ')}"
        entries = tuple(_entry(alert.items, stories, group) for group in groups)
        return cls(
            subject=subject,
            rule_name=name,
            rule_id=clean(alert.rule_id, NAME_MAX),
            counts=counts,
            query=clean(alert.query, QUERY_MAX),
            period=period or None,
            notes=tuple(n for n in (clean(note, NOTE_MAX) for note in alert.notes) if n),
            kibana_url=kibana,
            stories=stories,
            entries=entries,
            unsubscribe=_link(links.unsubscribe) if links else None,
            snooze=_link(links.snooze) if links else None,
            page=_link(links.page) if links else None,
            test=alert.test,
        )

    # text/plain ----------------------------------------------------------------------------

    def text(self) -> str:
        lines = [f"{self.rule_name}: {self.counts}", f"Query: {self.query}"]
        if self.test:
            lines.insert(0, "TEST EMAIL: the rule's latest matches, sent on request.\n")
        if self.period:
            lines.append(f"Digest: {self.period}")
        lines += [f"Note: {note}" for note in self.notes]
        for number, entry in enumerate(self.entries, 1):
            lines.append("")
            if entry.event is None:
                lines += _story_text(entry.stories[0], f"{number}. ", "   ")
                continue
            lines.append(_wrap(f"{number}. {entry.event} — {entry.outlets}", "   "))
            for story in entry.stories:
                lines += _story_text(story, "   - ", "     ")
            if entry.repeats:
                lines.append("   More coverage of this event, alerted before:")
                for story in entry.repeats:
                    lines += _story_text(story, "   - ", "     ", snippets=False)
        lines += ["", "-- ", f'newsmon alert "{self.rule_name}" ({self.rule_id})']
        if self.kibana_url:
            lines.append(f"Search in Kibana: {self.kibana_url}")
        if self.page:
            lines.append(f"This alert in newsmon: {self.page}")
        if self.snooze:
            lines.append(f"Snooze this alert for a day: {self.snooze}")
        if self.unsubscribe:
            lines.append(f"Unsubscribe from this alert: {self.unsubscribe}")
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
        if self.test:
            out.insert(
                6,
                '<p style="margin:0 0 8px;color:#8a4b00"><strong>Test email</strong>:'
                " the rule's latest matches, sent on request.</p>",
            )
        if self.period:
            out.append(f'<p style="margin:0 0 4px;color:#555">Digest: {e(self.period)}</p>')
        out += [f'<p style="margin:0 0 4px;color:#8a4b00">{e(note)}</p>' for note in self.notes]
        for entry in self.entries:
            out.append('<div style="margin:18px 0;padding-top:12px;border-top:1px solid #ddd">')
            if entry.event is None:
                out += _story_html(entry.stories[0], "16px")
            else:
                out.append(
                    f'<div dir="auto" style="font-size:16px;font-weight:bold">{e(entry.event)}'
                    f' <span style="color:#555;font-weight:normal">— {e(entry.outlets)}</span>'
                    "</div>"
                )
                nest = (
                    '<div style="margin:8px 0 0 4px;padding-left:12px;border-left:3px solid #ddd">'
                )
                for story in entry.stories:
                    out += [nest, *_story_html(story, "15px"), "</div>"]
                if entry.repeats:
                    out.append(
                        '<div style="margin:10px 0 0;color:#555;font-size:13px">'
                        "More coverage of this event, alerted before:</div>"
                    )
                for story in entry.repeats:
                    out += [nest, *_story_html(story, "14px", snippets=False), "</div>"]
            out.append("</div>")
        footer = f"newsmon alert “{e(self.rule_name)}” ({e(self.rule_id)})"
        if self.kibana_url:
            footer += f' · <a href="{e(self.kibana_url)}">Open this search in Kibana</a>'
        for label, link in (
            ("This alert in newsmon", self.page),
            ("Snooze for a day", self.snooze),
            ("Unsubscribe", self.unsubscribe),
        ):
            if link:
                footer += f' · <a href="{e(link)}">{label}</a>'
        out.append(
            '<p style="margin-top:18px;padding-top:12px;border-top:1px solid #ddd;'
            f'color:#777;font-size:12px">{footer}</p>'
        )
        out.append("</body></html>")
        return "\n".join(out) + "\n"


def _story_text(story: _Story, head: str, indent: str, *, snippets: bool = True) -> list[str]:
    """A story in the text part: ``head`` before its title, its other lines indented."""
    lines = [
        _wrap(f"{head}{story.title or '(no title)'}", indent),
        _wrap(story.meta, indent, first=indent),
    ]
    for snippet in story.snippets if snippets else ():
        marked = "".join(f"*{text}*" if lit else text for text, lit in snippet)
        lines.append(_wrap(f"… {marked} …", indent, first=indent))
    if story.url:
        lines.append(f"{indent}{story.url}")
    elif story.url_text:
        lines.append(_wrap(f"address (not a web link): {story.url_text}", indent, indent))
    if story.mute:
        lines.append(f"{indent}Mute this story: {story.mute}")
    return lines


def _story_html(story: _Story, size: str, *, snippets: bool = True) -> list[str]:
    """A story in the HTML part, its title in a font of ``size``."""
    e = _escape
    title = e(story.title or "(no title)")
    if story.url:
        title = f'<a href="{e(story.url)}" style="color:#0b57d0">{title}</a>'
    out = [
        f'<div dir="auto" style="font-size:{size};font-weight:bold">{title}</div>',
        f'<div style="color:#555;font-size:13px">{e(story.meta)}</div>',
    ]
    for snippet in story.snippets if snippets else ():
        body = "".join(f"<em>{e(text)}</em>" if lit else e(text) for text, lit in snippet)
        out.append(f'<p dir="auto" style="margin:6px 0">… {body} …</p>')
    if story.url_text:
        out.append(
            '<div style="color:#555;font-size:13px">address (not a web link): '
            f"<code>{e(story.url_text)}</code></div>"
        )
    if story.mute:
        out.append(
            f'<div style="font-size:12px"><a href="{e(story.mute)}" style="color:#777">'
            "Mute this story</a></div>"
        )
    return out


def _link(url: str | None) -> str | None:
    """An action link (newsmon's own, but checked like any URL before it goes in a header)."""
    return _web_url(url) if url else None


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
    url_text = None if url else (clean(item.url, URL_SHOWN_MAX) or None)
    when = None
    if item.published_at is not None:
        local = _aware(item.published_at).astimezone(zone)
        when = f"{local:%Y-%m-%d %H:%M} {local.tzname() or ''}".strip()
    snippets = tuple(
        s for s in (tuple(_snippet(f)) for f in item.snippets[:SNIPPETS_PER_ITEM]) if s
    )
    return _Story(
        title=clean(item.title, TITLE_MAX),
        outlet=clean(item.outlet, OUTLET_MAX),
        when=when,
        url=url,
        url_text=url_text,
        also_in=max(item.also_in, 0),
        snippets=snippets,
    )
