#!/usr/bin/env python
"""newsmon's reading of feedparser-corpus-style feeds, beside feedparser's own and the expected one.

Usage::

    python bench/feed_corpus.py [--corpus FILE]

The corpus (``tests/fixtures/feeds/corpus.json``) holds small feeds written after the cases of
feedparser's test corpus and issue threads, each with the entries a reader should find. Every
expected entry is compared by link, title and date with what newsmon reads and with what
feedparser 6 reads from the same bytes (``entry.link``, ``entry.title``, the first of
``published/updated/created_parsed``). Every difference is printed with its explanation:
newsmon's own differences from the expected entries should be none; its differences from
feedparser are deliberate, and each kind is named.

Beside it, ``tests/fixtures/feeds/feedparser_cases.json`` restates the cases of feedparser's own
test corpus whose expectations name an entry's link, title, date or id: each check holds what
newsmon should read and what feedparser's corpus expects, with the reason where they differ.
They are counted per source project on the line before the last: ``feedparser-corpus:
files=N checks=C newsmon_wrong=W differs=D explained=E``.

Entries whose expected values name a guid (RSS ``guid``, Atom ``id``, JSON Feed ``id``) are
checked for it too (``guids``), and counted when it differs from the link (``guid_not_link``).

Last line: ``entries=N fields=F newsmon_wrong=W feedparser_differs=D explained=E guids=K/G
guid_not_link=L``.
"""

from __future__ import annotations

import argparse
import calendar
import io
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser

from newsmon.sources.feeds import read_feed

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = ROOT / "tests" / "fixtures" / "feeds" / "corpus.json"
DEFAULT_FEEDPARSER = ROOT / "tests" / "fixtures" / "feeds" / "feedparser_cases.json"
FEED_URL = "https://c.example/feed"
FIELDS = ("link", "title", "date")

# why newsmon reads a case otherwise than feedparser does, by the kind of difference
EXPLANATIONS = {
    "json": "feedparser 6 has no JSON Feed reader; newsmon reads JSON Feed 1.0/1.1",
    "origlink": "feedburner:origLink is the article, the <link> FeedBurner's redirector",
    "html-title": "an HTML title: newsmon keeps its text, feedparser the markup",
    "entity": "newsmon collapses white space in titles, no-break spaces (&nbsp;) included",
    "no-link": "feedparser gives no link (an enclosure only): newsmon skips the entry too",
}


def _feedparser(case: dict[str, Any]) -> list[dict[str, Any]]:
    parsed = feedparser.parse(
        io.BytesIO(case["document"].encode("utf-8")),
        response_headers={"content-location": FEED_URL, "content-type": case["content_type"]},
        sanitize_html=False,
    )
    out = []
    for entry in parsed.entries:
        date = None
        for key in ("published_parsed", "updated_parsed", "created_parsed"):
            if entry.get(key):
                stamp = calendar.timegm(entry[key])
                date = datetime.fromtimestamp(stamp, tz=UTC).isoformat()
                break
        out.append({"link": entry.get("link"), "title": entry.get("title"), "date": date})
    return out


def _newsmon(case: dict[str, Any]) -> list[dict[str, Any]]:
    parsed = read_feed(
        case["document"].encode("utf-8"), FEED_URL, content_type=case["content_type"]
    )
    return [
        {
            "link": e.url,
            "title": e.title,
            "date": e.published_at.isoformat() if e.published_at else None,
            "guid": e.guid,
        }
        for e in parsed.entries
    ]


def _why(case: dict[str, Any], field: str, theirs: object) -> str | None:
    name = case["name"]
    if name.startswith("jsonfeed"):
        return EXPLANATIONS["json"]
    if name == "feedburner-origlink" and field == "link":
        return EXPLANATIONS["origlink"]
    if field == "title" and isinstance(theirs, str) and "<" in theirs and "html" in name:
        return EXPLANATIONS["html-title"]
    if name == "internal-entities" and field == "title":
        return EXPLANATIONS["entity"]
    return None


def feedparser_cases(path: Path) -> tuple[str, int]:
    """The per-project line for feedparser's corpus, and how many checks newsmon got wrong."""
    fixture = json.loads(path.read_text(encoding="utf-8"))
    checks = wrong = differs = explained = 0
    for case in fixture["cases"]:
        parsed = read_feed(case["document"].encode("utf-8"), case["url"])
        if parsed.problem or len(parsed.entries) != case["entries"]:
            wrong += 1
            print(f"WRONG {case['name']}: {len(parsed.entries)} entries ({parsed.problem})")
            continue
        for check in case["checks"]:
            checks += 1
            got = None
            if check["entry"] is not None:
                entry = parsed.entries[check["entry"]]
                got = {
                    "link": entry.url,
                    "title": entry.title,
                    "guid": entry.guid,
                    "date": entry.published_at.isoformat() if entry.published_at else None,
                }[check["field"]]
            if got != check["value"]:
                wrong += 1
                print(f"WRONG {case['name']}.{check['field']}: {got!r} != {check['value']!r}")
            if check["value"] != check["feedparser"]:
                differs += 1
                why = fixture["why"].get(check.get("why", ""))
                explained += why is not None
                if why is None:
                    print(f"UNEXPLAINED {case['name']}.{check['field']}")
    line = (
        f"feedparser-corpus: files={len(fixture['cases'])} checks={checks} "
        f"newsmon_wrong={wrong} differs={differs} explained={explained}"
    )
    return line, wrong + differs - explained


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--feedparser-cases", type=Path, default=DEFAULT_FEEDPARSER)
    args = parser.parse_args()
    corpus = json.loads(args.corpus.read_text(encoding="utf-8"))

    entries = fields = wrong = differs = explained = guids = guids_kept = guid_not_link = 0
    for case in corpus:
        ours, theirs = _newsmon(case), _feedparser(case)
        expected = case["expect"]
        if len(ours) != len(expected):
            wrong += 1
            print(f"{case['name']}: newsmon read {len(ours)} entries, expected {len(expected)}")
        for i, want in enumerate(expected):
            entries += 1
            mine = ours[i] if i < len(ours) else {}
            other = theirs[i] if i < len(theirs) else {}
            if "guid" in want:
                guids += 1
                guids_kept += mine.get("guid") == want["guid"]
                guid_not_link += want["guid"] != want["link"]
                if mine.get("guid") != want["guid"]:
                    wrong += 1
                    print(f"WRONG {case['name']}[{i}].guid: {mine.get('guid')!r}")
            for field in FIELDS:
                fields += 1
                if mine.get(field) != want[field]:
                    wrong += 1
                    print(
                        f"WRONG {case['name']}[{i}].{field}: {mine.get(field)!r} != {want[field]!r}"
                    )
                if other.get(field) != want[field]:
                    differs += 1
                    why = _why(case, field, other.get(field))
                    explained += why is not None
                    print(
                        f"differs from feedparser: {case['name']}[{i}].{field}: "
                        f"feedparser {other.get(field)!r}, newsmon {mine.get(field)!r}: "
                        f"{why or 'UNEXPLAINED'}"
                    )
        if not expected and theirs and not any(t.get("link") for t in theirs):
            print(f"same as feedparser: {case['name']}: {EXPLANATIONS['no-link']}")
    upstream_line, upstream_bad = feedparser_cases(args.feedparser_cases)
    print(f"cases={len(corpus)}")
    print(upstream_line)
    print(
        f"entries={entries} fields={fields} newsmon_wrong={wrong} "
        f"feedparser_differs={differs} explained={explained} guids={guids_kept}/{guids} "
        f"guid_not_link={guid_not_link}"
    )
    return 0 if wrong == 0 and explained == differs and upstream_bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
