"""Alerts by event, the pure parts: the ``once_per`` field of a rule, and how an email lists
an event's stories (tests/test_alerts_events_es.py runs them on the real node)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from newsmon.alerts import parse_rules
from newsmon.alerts.email import AlertEmail, AlertItem, compose
from newsmon.alerts.smtp import SmtpSettings
from newsmon.config import ConfigError

SMTP = SmtpSettings(host="127.0.0.1", sender="newsmon@example.org")
RULE = """
alerts:
  - id: plague
    name: Plague
    query: plague
    recipients: [desk@example.org]
    once_per: {value}
"""
OUTLETS = ("New York Post", "The Sun", "Smithsonian.com", "Express.co.uk")


def test_once_per_is_story_by_default_event_when_said_and_anything_else_an_error() -> None:
    default = parse_rules(RULE.replace("    once_per: {value}\n", ""), "alerts.yaml")
    assert default.get("plague").once_per == "story"
    assert parse_rules(RULE.format(value="event"), "alerts.yaml").get("plague").once_per == "event"
    with pytest.raises(ConfigError) as info:
        parse_rules(RULE.format(value="day"), "alerts.yaml")
    assert (info.value.line, info.value.field) == (7, "alerts[0] (id 'plague').once_per")
    assert "'story' or 'event'" in info.value.reason


def _item(n: int, event: str | None = None, **more: object) -> AlertItem:
    fields: dict[str, object] = {}
    if event is not None:
        fields = {
            "event_id": event,
            "event_title": f"Event {event}",
            "event_outlets": OUTLETS,
            "event_outlet_count": 4,
        }
    fields.update(more)
    outlet = str(fields.pop("outlet", OUTLETS[n % 4]))
    return AlertItem(
        f"s{n}",
        f"Story {n}",
        f"https://outlet{n}.example/{n}",
        outlet,
        datetime(2019, 11, 18, n, tzinfo=UTC),
        (f"the <em>plague</em> {n}",),
        **fields,  # type: ignore[arg-type]
    )


def _text(*items: AlertItem, mode: str = "immediate") -> tuple[str, str, str]:
    alert = AlertEmail(
        "plague", "Plague", "plague", ("desk@example.org",), items, "plague/x", mode=mode
    )
    message = compose(alert, SMTP)
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None and html is not None
    return str(message["Subject"]), str(plain.get_content()), str(html.get_content())


def test_stories_of_one_event_are_one_entry_and_the_others_stay_as_they_are() -> None:
    subject, text, html = _text(_item(1, "e1"), _item(2), _item(3, "e1"), _item(4, "e2"))
    assert subject == "[newsmon] Plague: 4 new stories"
    assert "Plague: 4 new stories (2 about 1 event)" in text
    blocks = text.split("\n\n")[1:-1]
    assert blocks[0].startswith(
        "1. Event e1 — 4 outlets: New York Post, The Sun, Smithsonian.com,\n   Express.co.uk\n"
        "   - Story 1\n     The Sun · 2019-11-18 01:00 UTC\n     … the *plague* 1 …\n"
    )
    assert "   - Story 3\n" in blocks[0]
    # a story in no event, and an event with one story here: as always
    assert blocks[1].startswith("2. Story 2\n   Smithsonian.com · 2019-11-18 02:00 UTC\n")
    assert blocks[2].startswith("3. Story 4\n   New York Post")
    assert len(blocks) == 3
    assert "Event e1 <span" in html and "— 4 outlets: New York Post" in html
    assert "Event e2" not in text + html


def test_one_event_alone_names_it_in_the_subject_and_repeats_are_more_coverage() -> None:
    subject, _text_part, _html = _text(_item(1, "e1"), _item(2, "e1"))
    assert subject == "[newsmon] Plague: Event e1 (4 outlets)"
    subject, text, html = _text(_item(1, "e1", event_repeat=True), _item(2, "e2"), mode="digest")
    assert subject == "[newsmon] Plague: 1 new story (digest)"
    assert "Plague: 1 new story; 1 more report of events alerted before" in text
    assert "1. Event e1 — 4 outlets:" in text
    assert "More coverage of this event, alerted before:\n   - Story 1\n" in text
    assert "the *plague* 1" not in text  # more coverage: no snippets
    assert "More coverage of this event, alerted before:" in html


def test_an_event_lists_at_most_eight_outlets_and_its_own_stories_outlets() -> None:
    many = tuple(f"Outlet {n}" for n in range(12))
    items = [
        _item(n, "e1", event_outlets=many, event_outlet_count=12, outlet=f"Other {n}")
        for n in (1, 2)
    ]
    _subject, text, _html = _text(*items)
    flat = " ".join(text.split())
    assert "— 14 outlets: Outlet 0, Outlet 1," in flat
    assert "Outlet 7 and 6 more - Story" in flat
