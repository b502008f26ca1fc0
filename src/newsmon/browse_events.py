"""Events from the command line: ``newsmon events`` lists them, ``newsmon event ID`` shows one
(by its id, the id of one of its stories or articles, or a unique prefix of an event id)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

from .browse import SettingsOf, _client, _since, _when, bind, print_listing, short_id, unique_prefix
from .config import Settings
from .console import say

__all__ = ["add_parsers", "render_event"]


def render_event(event: Mapping[str, Any]) -> str:
    members = sorted(event.get("members") or (), key=lambda m: str(m.get("when") or ""))
    lines = [
        f"event {event.get('event_id')}: {event.get('title')}",
        f"  {event.get('story_count')} stor{'y' if event.get('story_count') == 1 else 'ies'}, "
        f"{event.get('article_count')} article(s) in {event.get('outlet_count')} outlet(s): "
        + ", ".join(event.get("outlets") or []),
        f"  published {_when(event.get('first_published'))} to "
        f"{_when(event.get('last_published'))}; seen {_when(event.get('first_seen'))} to "
        f"{_when(event.get('last_seen'))}",
    ]
    for m in members:
        lines.append(
            f"  - {_when(m.get('when')):<16}  {m.get('outlet') or '':<28} {m.get('title')}"
        )
        lines.append(f"    {m.get('url')}  (story {short_id(m.get('story_id'))})")
    return "\n".join(lines)


def cmd_events(settings: Settings, args: argparse.Namespace) -> int:
    from .store.events import list_events

    es, names = _client(settings)
    found = list_events(
        es, names, since=_since(args.since), min_outlets=args.min_outlets, size=args.limit
    )
    if args.json:
        rows = [{"short_id": short_id(e.get("event_id")), **e} for e in found]
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    print_listing(found, "event", "event_id", ("story_count", "STORIES"))
    say(f"{len(found)} event(s); `newsmon event ID` shows one")
    return 0


def cmd_event(settings: Settings, args: argparse.Namespace) -> int:
    from .store.events import event_ids_by_prefix, find_event

    es, names = _client(settings)
    ident = args.id.strip().lower()
    event = unique_prefix(
        ident,
        lambda i: find_event(es, names, i),
        lambda p: event_ids_by_prefix(es, names, p),
        "events'",
        f"newsmon: no event, story or article with the id {args.id}",
    )
    if event is None:
        return 1
    print(json.dumps(event, ensure_ascii=False) if args.json else render_event(event))
    return 0


def add_parsers(sub: Any, settings_of: SettingsOf) -> None:
    """``events`` and ``event`` on the ``newsmon`` parser's subcommands."""

    events = sub.add_parser("events", help="list events (one happening, many outlets)")
    events.add_argument("--since", metavar="DURATION", help="seen in the last 24h, 7d…")
    events.add_argument(
        "--min-outlets", type=int, default=1, metavar="N", help="reported by at least N outlets"
    )
    events.add_argument("--limit", type=int, default=50, help="events shown (default 50)")
    events.add_argument("--json", action="store_true", help="print JSON")
    events.set_defaults(func=bind(settings_of, cmd_events))

    event = sub.add_parser("event", help="show an event: its stories and the outlets")
    event.add_argument("id", help="an event, story or article id, or an event id's prefix")
    event.add_argument("--json", action="store_true", help="print JSON")
    event.set_defaults(func=bind(settings_of, cmd_event))
