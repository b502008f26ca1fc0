"""Looking at what is indexed from the command line: ``newsmon search``, ``stories``, ``story``.

``search`` matches articles exactly as an alert rule with that query would (the query built by
newsmon.alerts); stories are listed with short ids (their first 12 characters), and ``story``
takes any unique prefix of a story id or of one of its articles' ids.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from .config import ConfigError, Settings, parse_duration
from .console import say

__all__ = ["SHORT_ID", "add_parsers", "bind", "print_listing", "short_id", "unique_prefix"]

SHORT_ID = 12  # characters of a 64-character id shown in lists (like a short git hash)
_HEX = re.compile(r"^[0-9a-f]{4,64}$")

SettingsOf = Callable[[argparse.Namespace], Settings]
T = TypeVar("T")


def short_id(value: object) -> str:
    return str(value or "")[:SHORT_ID]


def _since(text: str | None, now: datetime | None = None) -> datetime | None:
    if not text:
        return None
    try:
        return (now or datetime.now(UTC)) - parse_duration(text)
    except ValueError as exc:
        raise ConfigError(str(exc), file="command line", field="--since") from None


def _when(value: object) -> str:
    return str(value or "")[:16].replace("T", " ")


def _client(settings: Settings) -> tuple[Any, Any]:
    from .store import IndexNames, connect

    return connect(settings), IndexNames(settings.index_prefix)


def bind(
    settings_of: SettingsOf, command: Callable[[Settings, argparse.Namespace], int]
) -> Callable[..., int]:
    """An argparse ``func`` that runs ``command`` with the settings of the parsed arguments."""
    return lambda args: command(settings_of(args), args)


def print_listing(
    found: Sequence[Mapping[str, Any]], kind: str, id_key: str, count: tuple[str, str]
) -> None:
    """The table of ``newsmon stories`` / ``events``: short id, outlets, a count, last seen,
    title (``count`` is the count's field and its column heading)."""
    field, heading = count
    width = max(len(heading), 7)
    print(
        f"{kind.upper():<{SHORT_ID}}  {'OUTLETS':>7}  {heading:>{width}}  {'LAST SEEN':<16}  TITLE"
    )
    for row in found:
        print(
            f"{short_id(row.get(id_key)):<{SHORT_ID}}  {row.get('outlet_count') or 0:>7}  "
            f"{row.get(field) or 0:>{width}}  {_when(row.get('last_seen')):<16}  {row.get('title')}"
        )


def unique_prefix(
    ident: str,
    find: Callable[[str], T | None],
    ids_by_prefix: Callable[[str], list[str]],
    kind: str,
    missing: str,
) -> T | None:
    """What ``find`` gives for ``ident``, or for the one id that starts with it; None, said
    (``missing`` when nothing is found), when several ids or none start with it."""
    found = find(ident)
    if found is None and _HEX.fullmatch(ident) and len(ident) < 64:
        matches = ids_by_prefix(ident)
        if len(matches) > 1:
            shown = ", ".join(short_id(m) for m in matches)
            say(f"newsmon: {ident!r} is the start of several {kind} ids ({shown}…): type more")
            return None
        if matches:
            found = find(matches[0])
    if found is None:
        say(missing)
    return found


# --- search ------------------------------------------------------------------------------------


def cmd_search(settings: Settings, args: argparse.Namespace) -> int:
    from .alerts import AlertRule, RuleFilters, rule_query
    from .store.search import search_articles

    try:
        filters = RuleFilters(feeds=tuple(args.feed or ()))
        # the query an alert rule with this query and filter runs (recipients: none needed)
        rule = AlertRule.model_construct(
            id="search", name="search", query=args.query, filters=filters, recipients=()
        )
        query = rule_query(rule)
    except ValueError as exc:
        raise ConfigError(f"not a valid query: {exc}", file="command line", field="QUERY") from exc
    es, names = _client(settings)
    try:
        total, hits = search_articles(es, names, query, since=_since(args.since), size=args.limit)
    except Exception as exc:
        if getattr(exc, "status_code", None) != 400:
            raise
        say(f"newsmon: Elasticsearch cannot run the query {args.query!r}: {exc}")
        return 2
    if args.json:
        items = [{"id": doc_id, **source} for doc_id, source in hits]
        print(json.dumps({"total": total, "articles": items}, ensure_ascii=False))
        return 0
    for doc_id, a in hits:
        when = _when(a.get("published_at") or a.get("indexed_at"))
        story = f"story {short_id(a.get('story_id'))}" if a.get("story_id") else ""
        print(f"{when:<16}  {a.get('domain') or ''!s:<24} {story:<18} {a.get('title')}")
        print(f"    {a.get('url')}  (article {short_id(doc_id)})")
    say(
        f"{total} article(s) match"
        + (f"; the {len(hits)} newest shown" if total > len(hits) else "")
    )
    return 0


# --- stories -----------------------------------------------------------------------------------


def _story_row(story: Mapping[str, Any]) -> dict[str, Any]:
    return {"short_id": short_id(story.get("story_id")), **story}


def cmd_stories(settings: Settings, args: argparse.Namespace) -> int:
    from .store.stories import list_stories

    es, names = _client(settings)
    found = list_stories(
        es, names, since=_since(args.since), min_outlets=args.min_outlets, size=args.limit
    )
    if args.json:
        print(json.dumps([_story_row(s) for s in found], ensure_ascii=False))
        return 0
    print_listing(found, "story", "story_id", ("article_count", "ARTICLES"))
    say(f"{len(found)} stor{'y' if len(found) == 1 else 'ies'}; `newsmon story ID` shows one")
    return 0


def cmd_story(settings: Settings, args: argparse.Namespace) -> int:
    from .store.stories import stories_by_prefix
    from .text.stories import get_story

    es, names = _client(settings)
    ident = args.id.strip().lower()
    view = unique_prefix(
        ident,
        lambda i: get_story(es, names, i),
        lambda p: stories_by_prefix(es, names, p),
        "stories'",
        f"newsmon: no story or article with an id starting {args.id}",
    )
    if view is None:
        return 1
    if args.json:
        print(json.dumps({"story": view.story, "articles": view.articles}, ensure_ascii=False))
    else:
        print(view.render())
    return 0


def add_parsers(sub: Any, settings_of: SettingsOf) -> None:
    """``search``, ``stories`` and ``story`` on the ``newsmon`` parser's subcommands."""

    search = sub.add_parser("search", help="articles matching a query, as an alert rule would")
    search.add_argument("query", help="a Lucene query, as in config/alerts.yaml (quote it)")
    search.add_argument("--since", metavar="DURATION", help="indexed in the last 24h, 7d…")
    search.add_argument("--feed", action="append", metavar="ID", help="only this feed (repeat)")
    search.add_argument("--limit", type=int, default=20, help="articles shown (default 20)")
    search.add_argument("--json", action="store_true", help="print JSON")
    search.set_defaults(func=bind(settings_of, cmd_search))

    stories = sub.add_parser("stories", help="list stories, most recently seen first")
    stories.add_argument("--since", metavar="DURATION", help="seen in the last 24h, 7d…")
    stories.add_argument(
        "--min-outlets", type=int, default=1, metavar="N", help="run by at least N outlets"
    )
    stories.add_argument("--limit", type=int, default=50, help="stories shown (default 50)")
    stories.add_argument("--json", action="store_true", help="print JSON")
    stories.set_defaults(func=bind(settings_of, cmd_stories))

    story = sub.add_parser("story", help="show a story: its articles and the outlets that ran it")
    story.add_argument("id", help="a story id, the id of one of its articles, or a unique prefix")
    story.add_argument("--json", action="store_true", help="print JSON")
    story.set_defaults(func=bind(settings_of, cmd_story))
