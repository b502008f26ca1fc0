"""The newsmon pages in Airflow, as server-rendered HTML: feed health, alerts per rule, a rule
backtest, the action-link pages. Pure functions of the data; the plugin (``plugins/``) only
routes to them. Everything shown is escaped; links are only made for http(s) URLs and
newsmon's own paths.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import datetime
from urllib.parse import quote

from ..browse import short_id
from ..health import FeedHealth, format_age
from .actions import Action, Honoured, describe
from .preview import Preview
from .rules import AlertRule
from .status import BatchStatus, reply_of
from .untrusted import clean

__all__ = [
    "action_page",
    "backtest_page",
    "done_page",
    "error_page",
    "feeds_page",
    "home_page",
    "rule_page",
]

STYLE = """
body{font-family:Arial,Helvetica,sans-serif;margin:0;color:#1a1a1a;font-size:14px}
header{background:#017cee;color:#fff;padding:10px 16px}
header a{color:#fff;margin-right:16px;text-decoration:none;font-weight:bold}
main{padding:16px}
table{border-collapse:collapse;margin:8px 0 16px}
th,td{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}
.state-failed,.flag-failing{color:#b00020;font-weight:bold}
.state-held,.state-snoozed,.state-retrying{color:#8a4b00;font-weight:bold}
.state-sent,.flag-ok{color:#1b7f3b}
.muted{color:#777}
.id{color:#777;font-size:12px;font-weight:normal}
button{font-size:15px;padding:6px 14px}
.box{border:1px solid #ccc;padding:12px 16px;max-width:720px;border-radius:4px}
"""


def e(text: object) -> str:
    """Escaped text (cleaned of control characters and bidi overrides)."""
    return html.escape(clean(str(text), 2000, strip=False), quote=True)


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "-"


def _href(url: str | None) -> str | None:
    if (
        url
        and url.lower().startswith(("http://", "https://"))
        and not any(c.isspace() or ord(c) < 32 for c in url)
    ):
        return url
    return None


def layout(title: str, body: str, *, base: str, kibana: str | None = None) -> str:
    nav = [f'<a href="{e(base)}/">newsmon</a>', f'<a href="{e(base)}/feeds">Feed health</a>']
    nav.append(f'<a href="{e(base)}/rules">Alerts</a>')
    if _href(kibana):
        nav.append(f'<a href="{e(kibana)}" target="_blank" rel="noopener">Kibana dashboard</a>')
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(title)} · newsmon</title><style>{STYLE}</style></head><body>"
        f"<header>{''.join(nav)}</header><main><h1>{e(title)}</h1>{body}</main></body></html>"
    )


def _table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A table; cells are HTML already (escape them before)."""
    out = ["<table><tr>", *(f"<th>{e(h)}</th>" for h in head), "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    out.append("</table>")
    return "".join(out)


def home_page(
    rules: Sequence[AlertRule], counts: dict[str, dict[str, int]], *, base: str, kibana: str | None
) -> str:
    body = [
        "<p>Feeds followed, their health, and the keyword alerts sent from them.</p>",
        f'<p><a href="{e(base)}/feeds">Feed health</a> · <a href="{e(base)}/rules">Alerts</a>',
    ]
    if _href(kibana):
        body.append(f' · <a href="{e(kibana)}">Kibana dashboard</a>')
    body.append("</p>")
    body.append(_rules_table(rules, counts, base))
    return layout("newsmon", "".join(body), base=base, kibana=kibana)


def _rules_table(rules: Sequence[AlertRule], counts: dict[str, dict[str, int]], base: str) -> str:
    states = ("due", "queued", "retrying", "held", "snoozed", "sent", "failed")
    rows = []
    for rule in rules:
        link = f'<a href="{e(base)}/rules/{e(quote(rule.id, safe=""))}">{e(rule.id)}</a>'
        mode = rule.mode + (f", {rule.digest}" if rule.digest else "")
        rows.append(
            [link, e(rule.name), e(mode), "yes" if rule.enabled else "no"]
            + [str(counts.get(rule.id, {}).get(s, 0)) for s in states]
        )
    return _table(["rule", "name", "mode", "enabled", *states], rows)


def rules_page(
    rules: Sequence[AlertRule], counts: dict[str, dict[str, int]], *, base: str, kibana: str | None
) -> str:
    return layout("Alerts", _rules_table(rules, counts, base), base=base, kibana=kibana)


def feeds_page(rows: Sequence[FeedHealth], now: datetime, *, base: str, kibana: str | None) -> str:
    table = _table(
        ["feed", "status", "last success", "fails", "items", "new/day", "last reason"],
        (
            [
                e(r.feed_id),
                f'<span class="flag-{"failing" if r.flagged else "ok"}">{e(r.status)}</span>',
                e(format_age(now - r.last_success_at) if r.last_success_at else "never"),
                str(r.consecutive_failures),
                e("" if r.last_entries is None else r.last_entries),
                f"{r.new_per_day:.1f}",
                e(r.last_reason or ""),
            ]
            for r in rows
        ),
    )
    return layout("Feed health", table, base=base, kibana=kibana)


def rule_page(
    rule: AlertRule | None,
    rule_id: str,
    rows: Sequence[BatchStatus],
    honour: Honoured,
    now: datetime,
    *,
    base: str,
    kibana: str | None,
) -> str:
    body = []
    if rule is None:
        body.append(f"<p><strong>Rule {e(rule_id)} is not in the rules file</strong>: its")
        body.append(" emails not sent yet are held.</p>")
    else:
        body.append(f"<p>{e(rule.name)} · {e(rule.mode)} · query <code>{e(rule.query)}</code>")
        body.append(f" · recipients {e(', '.join(rule.recipients))}")
        body.append(f' · <a href="{e(base)}/rules/{e(quote(rule_id, safe=""))}/backtest">')
        body.append("backtest</a></p>")
    until = honour.snoozed_until(rule_id, now)
    if until:
        body.append(f'<p class="state-snoozed">Snoozed until {e(_when(until))}.</p>')
    gone = sorted(honour.unsubscribed.get(rule_id, ()))
    if gone:
        body.append(f"<p>Unsubscribed: {e(', '.join(gone))}</p>")
    muted = sorted(s for r, s in honour.muted if r == rule_id)
    if muted:
        body.append(f'<p class="muted">Muted stories: {e(", ".join(muted))}</p>')
    body.append(
        _table(
            ["state", "stories", "recipients", "when", "detail"],
            (
                [
                    f'<span class="state-{e(r.state)}">{e(r.state)}</span>',
                    f"{r.stories}<br>"
                    + "<br>".join(f'<span class="muted">{e(t)}</span>' for t in r.titles),
                    e(", ".join(r.recipients)),
                    e(_when(_moment(r))),
                    e(reply_of(r)),
                ]
                for r in rows
            ),
        )
        if rows
        else "<p>No alert email yet.</p>"
    )
    return layout(f"Alert {rule_id}", "".join(body), base=base, kibana=kibana)


def _moment(row: BatchStatus) -> datetime | None:
    if row.state == "retrying":
        return row.next_attempt_at or row.due_at
    if row.state in ("sent", "failed"):
        return row.sent_at or row.updated_at
    if row.state == "snoozed":
        return row.until
    return row.due_at


def backtest_page(result: Preview, *, base: str, kibana: str | None) -> str:
    days = _table(
        ["day", "articles", "stories"],
        ([e(day), str(articles), str(stories)] for day, articles, stories in result.per_day),
    )
    samples = []
    for sample in result.samples:
        url = _href(str(sample.get("url") or ""))
        title = e(sample.get("title") or "(no title)")
        title = f'<a href="{e(url)}" rel="noopener noreferrer">{title}</a>' if url else title
        snippets = "".join(
            f"<div class=muted>… {_highlight(s)} …</div>" for s in sample.get("snippets") or ()
        )
        samples.append(f"<li>{title} <span class=muted>{e(sample.get('domain') or '')}</span>")
        samples.append(f"{snippets}</li>")
    warning = result.flood_warning()
    body = (
        f"<p>Query <code>{e(result.rule.query)}</code>: {result.articles} article(s),"
        f" {result.stories} stories over {result.since.days} days"
        f" (by {e(result.time_field)}, days in {e(result.timezone)}).</p>"
        + (f'<p class="state-failed">{e(warning)}</p>' if warning else "")
        + days
        + (f"<h2>Sample</h2><ul>{''.join(samples)}</ul>" if samples else "")
    )
    return layout(f"Backtest {result.rule.id}", body, base=base, kibana=kibana)


def _highlight(fragment: str) -> str:
    """A highlight fragment: escaped, with exactly ``<em>``/``</em>`` kept."""
    parts = str(fragment).split("<em>")
    out = [e(parts[0])]
    for part in parts[1:]:
        inside, sep, rest = part.partition("</em>")
        out.append(f"<em>{e(inside)}</em>{e(rest)}" if sep else e("<em>" + part))
    return "".join(out)


def _story(story_id: str, title: str | None) -> str:
    """A story as a reader knows it: its title, with a short id (the whole one on hover)."""
    ident = f'<span class="id" title="{e(story_id)}">({e(short_id(story_id))})</span>'
    return f"the story “{e(title)}” {ident}" if title else f"story {ident}"


def _what(action: Action, story_title: str | None) -> str:
    """What ``action`` does, as HTML: a mute names its story by title."""
    if action.kind == "mute" and action.story_id:
        story = _story(action.story_id, story_title)
        return f"mute {story} for alert {e(action.rule_id)}"
    return e(describe(action))


def action_page(
    action: Action, token: str, *, used: bool, base: str, story_title: str | None = None
) -> str:
    """The page an email's link opens: what it will do, and a button (a POST) to do it;
    ``story_title``: the title of the story a mute names."""
    what = _what(action, story_title)
    if used:
        body = f"<p>This link was used already ({what}). Nothing to do.</p>"
        return layout("Link already used", f'<div class="box">{body}</div>', base=base)
    choice = ""
    if action.kind == "unsubscribe" and action.address is None:
        choice = "<p>Which address?</p>" + "".join(
            f'<label><input type="radio" name="recipient" value="{e(a)}" required> {e(a)}'
            "</label><br>"
            for a in action.recipients
        )
    body = (
        f"<p>This will <strong>{what}</strong>.</p>"
        f'<form method="post" action="{e(base)}/act?t={e(quote(token, safe=""))}">'
        f'{choice}<button type="submit" id="confirm">Confirm</button></form>'
    )
    return layout("Confirm", f'<div class="box">{body}</div>', base=base)


def done_page(
    message: str, *, base: str, action: Action | None = None, story_title: str | None = None
) -> str:
    """What a link did: ``message``, or for a mute, the story by its title."""
    text = e(message)
    if action is not None and action.kind == "mute" and action.story_id:
        text = f"Muted {_story(action.story_id, story_title)} for alert {e(action.rule_id)}"
    return layout("Done", f'<div class="box"><p id="done">{text}.</p></div>', base=base)


def error_page(title: str, message: str, *, base: str) -> str:
    return layout(title, f'<div class="box"><p id="error">{e(message)}</p></div>', base=base)
