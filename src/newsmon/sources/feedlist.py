"""Writing feed-list entries: id suggestions, YAML ready for ``feeds.yaml``, safe appending.

Used by ``newsmon feeds discover``, ``add``, ``disable`` and ``import-opml``. Appending keeps
the file's text (comments, order, layout) and only inserts lines at the end of its ``feeds:``
list; ``set_enabled`` changes or adds one line. The result is validated with the same loader
as every run before it replaces the file.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from ..config import ConfigError, FeedConfig, parse_feeds, read_config_file
from ..urls import InvalidURL, canonical_url

__all__ = [
    "append_entries",
    "feed_keys",
    "render_entries",
    "set_enabled",
    "slug",
    "suggest_id",
]

_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._/:?=&%+~,()-]*")
_NOT_PLAIN = re.compile(r": | #|[,\[\]{}]")
_RESERVED = {"yes", "no", "true", "false", "on", "off", "null", "y", "n", "~"}


def slug(text: str, limit: int = 40) -> str:
    """Lower-case ASCII letters, digits and single dashes: ``Dawn — Home`` → ``dawn-home``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return words[:limit].rstrip("-")


def _site_slug(url: str) -> str:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().removeprefix("www.")
    labels = [p for p in host.split(".") if p]
    name = labels[-2] if len(labels) >= 2 and not host.replace(".", "").isdigit() else host
    path = slug(parts.path.replace("/", " "), 20)
    path = re.sub(r"(^|-)(feeds?|rss|atom|xml|index|default|posts)(?=-|$)", "", path).strip("-")
    return "-".join(p for p in (slug(name, 30), path) if p)


def suggest_id(url: str, title: str | None, taken: set[str]) -> str:
    """A free feed id from the title (else the site's name), made unique with ``-2``, ``-3``…"""
    base = slug(title or "") or _site_slug(url) or "feed"
    if not base[0].isalnum():
        base = "feed-" + base
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base[:60]}-{n}"
    taken.add(candidate)
    return candidate


def feed_keys(feeds: Iterable[FeedConfig]) -> dict[str, str]:
    """Canonical feed URL → feed id, to spot duplicates."""
    keys: dict[str, str] = {}
    for feed in feeds:
        try:
            keys.setdefault(canonical_url(feed.url), feed.id)
        except InvalidURL:
            keys.setdefault(feed.url, feed.id)
    return keys


def _scalar(value: str) -> str:
    if (
        _PLAIN.fullmatch(value)
        and not _NOT_PLAIN.search(value)
        and value.lower() not in _RESERVED
        and not value.endswith((" ", ":"))
        and not re.fullmatch(r"[0-9._:+-]+", value)
    ):
        return value
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML double-quoted one


def render_entries(
    feeds: Sequence[FeedConfig],
    *,
    indent: int = 2,
    comments: Mapping[str, str] | None = None,
) -> str:
    """``feeds`` as YAML list items (``- id: …``) indented ``indent`` spaces, one comment line
    above an entry when ``comments`` has one for its id."""
    pad = " " * indent
    lines: list[str] = []
    for feed in feeds:
        note = (comments or {}).get(feed.id)
        if note:
            lines.append(f"{pad}# {' '.join(note.split())}")
        lines.append(f"{pad}- id: {feed.id}")
        lines.append(f"{pad}  name: {_scalar(feed.name)}")
        lines.append(f"{pad}  url: {_scalar(feed.url)}")
        if feed.language:
            lines.append(f"{pad}  language: {feed.language}")
        if feed.tags:
            lines.append(f"{pad}  tags: [{', '.join(_scalar(t) for t in feed.tags)}]")
        if not feed.enabled:
            lines.append(f"{pad}  enabled: false")
        if feed.type != "feed":
            lines.append(f"{pad}  type: {feed.type}")
    return "\n".join(lines) + "\n" if lines else ""


def append_entries(
    path: str | os.PathLike[str],
    feeds: Sequence[FeedConfig],
    comments: Mapping[str, str] | None = None,
) -> list[FeedConfig]:
    """Add ``feeds`` at the end of the ``feeds:`` list of the file at ``path`` (created when
    missing), keeping everything else as it is; returns the file's feeds afterwards.

    Raises ConfigError (naming the file) when the file is not a feed list that lines can be
    appended to, or when the result would not be valid; the file is then left unchanged.
    """
    target = Path(path)
    source = os.fspath(path)
    if not feeds:
        return parse_feeds(read_config_file(target, "feeds file"), source)
    if not target.exists():
        text = "feeds:\n" + render_entries(feeds, comments=comments)
    else:
        text = _insert(read_config_file(target, "feeds file"), source, feeds, comments)
    result = parse_feeds(text, source)  # raises ConfigError naming the line and field
    _write(target, text)
    return result


def _write(target: Path, text: str) -> None:
    """Replace the file at ``target`` by ``text`` atomically, keeping its permissions."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        if target.exists():
            os.chmod(tmp, target.stat().st_mode & 0o777)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def set_enabled(path: str | os.PathLike[str], feed_id: str, enabled: bool) -> bool:
    """Set ``enabled`` of the feed ``feed_id`` in the file at ``path``, changing that one line
    (or adding it under the feed's other keys) and nothing else. Returns whether the file
    changed. Raises ConfigError naming the file when the file is invalid or has no such feed.
    """
    target = Path(path)
    source = os.fspath(path)
    text = read_config_file(target, "feeds file")
    feeds = parse_feeds(text, source)
    feed = next((f for f in feeds if f.id == feed_id), None)
    if feed is None:
        known = ", ".join(f.id for f in feeds[:20]) or "none"
        raise ConfigError(f"no feed with id {feed_id!r} (feeds: {known})", file=source)
    if feed.enabled == enabled:
        return False
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    assert isinstance(root, yaml.MappingNode)  # parse_feeds accepted it: a mapping with feeds
    node = next(v for k, v in root.value if getattr(k, "value", None) == "feeds")
    item = next(
        n
        for n in node.value
        if isinstance(n, yaml.MappingNode)
        and any(getattr(k, "value", None) == "id" and v.value == feed_id for k, v in n.value)
    )
    if item.flow_style:
        raise ConfigError(
            f"feed {feed_id!r} is written in flow style ({{...}}); write it one key per line",
            file=source,
            line=item.start_mark.line + 1,
        )
    value = "true" if enabled else "false"
    current = next((v for k, v in item.value if getattr(k, "value", None) == "enabled"), None)
    if current is not None:
        start, end = current.start_mark.index, current.end_mark.index
        new_text = text[:start] + value + text[end:]
    else:
        lines = text.splitlines(keepends=True)
        last = item.value[-1][1]
        after = last.end_mark.line if last.end_mark.column == 0 else last.end_mark.line + 1
        column = item.value[0][0].start_mark.column
        if lines and after <= len(lines) and not lines[after - 1].endswith("\n"):
            lines[after - 1] += "\n"
        lines.insert(after, " " * column + f"enabled: {value}\n")
        new_text = "".join(lines)
    parse_feeds(new_text, source)  # the result must be as valid as what it replaces
    _write(target, new_text)
    return True


def _insert(
    text: str, source: str, feeds: Sequence[FeedConfig], comments: Mapping[str, str] | None
) -> str:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"not valid YAML: {exc}", file=source, line=line) from None
    parse_feeds(text, source)  # the file must be valid before it is extended
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError("expected a mapping with a 'feeds' list", file=source)
    node = next((v for k, v in root.value if getattr(k, "value", None) == "feeds"), None)
    if not isinstance(node, yaml.SequenceNode):
        raise ConfigError("expected a list", file=source, field="feeds")
    if node.flow_style:
        if node.value:
            raise ConfigError(
                "a flow-style list ([...]) cannot be extended; write it one '- ' item per line",
                file=source,
                line=node.start_mark.line + 1,
                field="feeds",
            )
        start, end = node.start_mark.index, node.end_mark.index
        return (
            text[:start].rstrip(" ")
            + "\n"
            + render_entries(feeds, comments=comments)
            + (text[end:].lstrip(" ").removeprefix("\n"))
        )
    indent = max(node.value[0].start_mark.column - 2, 0)
    lines = text.splitlines(keepends=True)
    end = node.end_mark
    cut = end.line if end.column == 0 else end.line + 1
    # blank and comment lines after the last item stay below the new entries
    last_start = node.value[-1].start_mark.line
    while cut - 1 > last_start and lines[cut - 1].strip().startswith("#") | (
        not lines[cut - 1].strip()
    ):
        cut -= 1
    head = "".join(lines[:cut])
    if head and not head.endswith("\n"):
        head += "\n"
    return head + render_entries(feeds, indent=indent, comments=comments) + "".join(lines[cut:])
