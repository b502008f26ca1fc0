"""``newsmon feeds discover | add | disable | enable | import-opml | export-opml``: finding
feeds and editing ``feeds.yaml`` in place (the text, comments and order kept; sources/feedlist).

The commands get their :class:`Settings` from the CLI (``newsmon.cli``), which registers them
with :func:`add_feed_commands`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import ConfigError, Settings, load_feeds
from .console import say

__all__ = ["add_feed_commands"]

Command = Callable[[argparse.Namespace, Settings], int]
SettingsOf = Callable[[argparse.Namespace], Settings]


def _bound(command: Command, settings_of: SettingsOf) -> Callable[[argparse.Namespace], int]:
    return lambda args: command(args, settings_of(args))


def _known_feeds(path: str) -> list[Any]:
    """The feeds of ``path`` when it exists (to skip duplicates and taken ids), else none."""
    return load_feeds(path) if Path(path).exists() else []


def cmd_feeds_discover(args: argparse.Namespace, settings: Settings) -> int:
    from .config import FeedConfig
    from .sources.discover import discover_feeds
    from .sources.feedlist import feed_keys, render_entries, suggest_id
    from .sources.fetch import Fetcher
    from .urls import InvalidURL, canonical_url

    known = _known_feeds(settings.feeds_file)
    with Fetcher(settings.fetch) as fetcher:
        found = discover_feeds(fetcher, args.url, probe=not args.no_probe)
    for url, why in found.rejected:
        say(f"  not a feed: {url} ({why})")
    if found.error:
        say(f"newsmon: cannot read {args.url}: {found.error}")
        return 1
    if not found.feeds:
        say(f"newsmon: no feed found at {args.url}")
        return 1
    keys, taken = feed_keys(known), {f.id for f in known}
    entries, comments = [], {}
    for feed in found.feeds:
        followed = None
        with contextlib.suppress(InvalidURL):
            followed = keys.get(canonical_url(feed.url))
        if followed is not None:  # reported, not printed again as a new entry
            say(f"  already followed: {feed.url} (feed {followed} in {settings.feeds_file})")
            continue
        feed_id = suggest_id(feed.url, feed.title, taken)
        entries.append(FeedConfig(id=feed_id, name=feed.title or feed.url, url=feed.url))
        comments[feed_id] = f"{feed.entries} item(s), found via {feed.via}"
    print(render_entries(entries, comments=comments), end="")
    return 0


def cmd_feeds_add(args: argparse.Namespace, settings: Settings) -> int:
    from pydantic import ValidationError

    from .config import FeedConfig
    from .sources.discover import discover_feeds
    from .sources.feedlist import append_entries, feed_keys, suggest_id
    from .sources.fetch import Fetcher
    from .urls import InvalidURL, canonical_url

    known = _known_feeds(settings.feeds_file)
    keys, taken = feed_keys(known), {f.id for f in known}
    with Fetcher(settings.fetch) as fetcher:
        found = discover_feeds(fetcher, args.url, probe=not args.no_probe)
    if found.error or not found.feeds:
        for url, why in found.rejected:
            say(f"  not a feed: {url} ({why})")
        say(f"newsmon: no feed found at {args.url}" + (f": {found.error}" if found.error else ""))
        return 1
    feed = found.feeds[0]  # the page's own URL when it is a feed, else its first alternate
    with contextlib.suppress(InvalidURL):
        if canonical_url(feed.url) in keys:
            say(f"newsmon: already followed: {feed.url} (feed {keys[canonical_url(feed.url)]})")
            return 1
    if args.id and args.id in taken:
        raise ConfigError(f"id {args.id!r} is taken", file=settings.feeds_file, field="--id")
    tags = tuple(t.strip() for t in (args.tags or "").split(",") if t.strip())
    try:
        entry = FeedConfig(
            id=args.id or suggest_id(feed.url, feed.title, taken),
            name=feed.title or feed.url,
            url=feed.url,
            tags=tags,
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise ConfigError(error["msg"], file="command line", field=where) from None
    note = f"{feed.entries} item(s), found via {feed.via}"
    feeds = append_entries(settings.feeds_file, [entry], {entry.id: note})
    say(f"newsmon: added {entry.id} ({entry.url}) to {settings.feeds_file} ({len(feeds)} feeds)")
    print(entry.id)
    return 0


def cmd_feeds_disable(args: argparse.Namespace, settings: Settings) -> int:
    from .sources.feedlist import set_enabled

    changed = set_enabled(settings.feeds_file, args.id, enabled=args.enable)
    state = "enabled" if args.enable else "disabled"
    say(
        f"newsmon: {args.id} {state}"
        + ("" if changed else " already")
        + f" in {settings.feeds_file}"
    )
    return 0


def cmd_feeds_export_opml(args: argparse.Namespace, settings: Settings) -> int:
    from .sources.opml import export_opml

    data = export_opml(load_feeds(settings.feeds_file), include_disabled=args.all)
    if args.output:
        Path(args.output).write_bytes(data)
    else:
        sys.stdout.write(data.decode("utf-8"))
    return 0


def cmd_feeds_import_opml(args: argparse.Namespace, settings: Settings) -> int:
    from .sources.feedlist import append_entries, render_entries
    from .sources.opml import import_opml

    target = args.into or settings.feeds_file
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=args.file) from None
    result = import_opml(data, args.file, _known_feeds(target))
    for problem in result.problems:
        say(f"newsmon: skipped: {problem.render(args.file)}")
    for line, url, known_id in result.duplicates:
        say(f"newsmon: already followed: {args.file}:{line}: {url} (feed {known_id})")
    comments = {k: f"from {Path(args.file).name}, line {n}" for k, n in result.lines.items()}
    if args.into:
        feeds = append_entries(args.into, result.feeds, comments)
        say(f"newsmon: added {len(result.feeds)} feed(s) to {args.into} ({len(feeds)} in all)")
    else:
        print(render_entries(result.feeds, comments=comments), end="")
    say(
        f"newsmon: {len(result.feeds)} new, {len(result.duplicates)} already followed, "
        f"{len(result.problems)} skipped"
    )
    return 1 if result.problems else 0


def add_feed_commands(feeds_sub: Any, settings_of: SettingsOf) -> None:
    """Register the commands on the ``newsmon feeds`` sub-parsers."""
    discover = feeds_sub.add_parser("discover", help="find a site's feeds, print YAML entries")
    discover.add_argument("url", help="the site's homepage")
    discover.add_argument("--feeds", help="feeds YAML (for id suggestions and duplicates)")
    discover.add_argument("--no-probe", action="store_true", help="do not try common paths")
    discover.set_defaults(func=_bound(cmd_feeds_discover, settings_of))
    opml = feeds_sub.add_parser("import-opml", help="feeds from an OPML file, as YAML entries")
    opml.add_argument("file", help="the OPML file")
    opml.add_argument("--into", metavar="FEEDS_YAML", help="append the new feeds to this file")
    opml.add_argument("--feeds", help="feeds YAML to skip duplicates of (without --into)")
    opml.set_defaults(func=_bound(cmd_feeds_import_opml, settings_of))
    add = feeds_sub.add_parser("add", help="find the feed at URL and append it to the feeds file")
    add.add_argument("url", help="a feed, or a page that names its feed")
    add.add_argument("--id", help="the feed's id (default: from its title)")
    add.add_argument("--tags", help="comma-separated labels copied to its articles")
    add.add_argument("--feeds", help="feeds YAML to append to")
    add.add_argument("--no-probe", action="store_true", help="do not try common paths")
    add.set_defaults(func=_bound(cmd_feeds_add, settings_of))
    disable = feeds_sub.add_parser("disable", help="set enabled: false on a feed, in place")
    disable.add_argument("id", help="the feed's id")
    disable.add_argument("--feeds", help="feeds YAML")
    disable.set_defaults(func=_bound(cmd_feeds_disable, settings_of), enable=False)
    enable = feeds_sub.add_parser("enable", help="set enabled: true on a feed, in place")
    enable.add_argument("id", help="the feed's id")
    enable.add_argument("--feeds", help="feeds YAML")
    enable.set_defaults(func=_bound(cmd_feeds_disable, settings_of), enable=True)
    export = feeds_sub.add_parser("export-opml", help="the feeds file as OPML 2.0")
    export.add_argument("--feeds", help="feeds YAML")
    export.add_argument("--output", "-o", help="write to this file (default: stdout)")
    export.add_argument("--all", action="store_true", help="include disabled feeds")
    export.set_defaults(func=_bound(cmd_feeds_export_opml, settings_of))
