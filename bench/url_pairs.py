#!/usr/bin/env python
"""URL identity on documented pairs and on variants of real article URLs.

Usage::

    python bench/url_pairs.py [--pairs FILE] [--pages DIR]

Three inputs:

- the pair list (``tests/fixtures/urls/pairs.tsv``): links of one article that must share a key
  ("same") and different articles that must not ("distinct"), from the kinds of cases the URL
  tests of courlan, url-normalize and Media Cloud's metadata-lib document;
- the 127 real article URLs of ``../shared/data/news-pages``: each one written the ways feeds and
  sites write it (tracking parameters, ``www.``, host case, default port, a fragment, a trailing
  slash, junk or markup after the link, white space around it), and every two different URLs
  compared with each other;
- the cases of those projects' own URL tests (``tests/fixtures/urls/upstream.tsv``), each with
  what the project expects and what newsmon does (they differ where a general URL normaliser's
  rule does not fit an article key: the file says why). Per project: cases read, how many
  newsmon decides as the project does (``agree``), and how many newsmon gets wrong.

A pair is "held" when newsmon gives both URLs of a "same" pair one key; a "wrong merge" is a
"distinct" pair (or two different real URLs) given one key. Both lists are deterministic: the
counts are reproducible.

The line before the last: ``upstream: courlan read=N agree=A wrong=W; url-normalize …;
metadata-lib …``. Last line: ``same_held=H/S distinct_merged=M/D variants_held=V/T
real_merged=R/P``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from newsmon.urls import InvalidURL, canonical_url

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PAIRS = ROOT / "tests" / "fixtures" / "urls" / "pairs.tsv"
DEFAULT_PAGES = ROOT.parent / "shared" / "data" / "news-pages"
DEFAULT_UPSTREAM = ROOT / "tests" / "fixtures" / "urls" / "upstream.tsv"
SOURCES = ("courlan", "url-normalize", "metadata-lib")
_CONTROL = re.compile(r"\{U\+([0-9A-F]{4})\}")  # how upstream.tsv writes a control character


def read_pairs(path: Path) -> list[tuple[str, str, str, str]]:
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        kind, a, b, note = line.split("\t")
        if kind not in ("same", "distinct"):
            raise SystemExit(f"{path}, line {number}: kind {kind!r} is not same/distinct")
        pairs.append((kind, a, b, note))
    return pairs


def upstream_counts(path: Path) -> tuple[dict[str, Counter[str]], int]:
    """Per project: cases read, agreeing with it, newsmon wrong; and the total wrong."""
    counts: dict[str, Counter[str]] = {source: Counter() for source in SOURCES}
    wrong = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        source, upstream, newsmon, a, b, why = line.split("\t")
        if source not in counts or newsmon not in ("same", "distinct", "invalid"):
            raise SystemExit(f"{path}, line {number}: unknown source or decision")
        a, b = (_CONTROL.sub(lambda m: chr(int(m.group(1), 16)), x) for x in (a, b))
        counts[source]["read"] += 1
        counts[source]["agree"] += upstream == newsmon or (upstream, newsmon) == ("-", "invalid")
        ka = key(a)
        if newsmon == "invalid":
            ok = ka is None
        elif newsmon == "same":
            ok = ka is not None and ka == key(b)
        else:
            ok = ka is not None and ka != key(b)
        if not ok:
            counts[source]["wrong"] += 1
            wrong += 1
            print(f"WRONG upstream case ({source}, {newsmon}): {a!r} | {b!r}: {why}")
    return counts, wrong


def key(url: str) -> str | None:
    try:
        return canonical_url(url)
    except InvalidURL:
        return None


def variants(url: str) -> list[str]:
    """The ways feeds and pages link to the article at ``url``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    sep = "&" if parts.query else ""
    www = host[4:] if host.startswith("www.") else "www." + host
    return [
        urlunsplit((parts.scheme.upper(), parts.netloc.upper(), parts.path, parts.query, "")),
        urlunsplit((parts.scheme, www, parts.path, parts.query, "")),
        urlunsplit(
            (parts.scheme, f"{host}:{443 if parts.scheme == 'https' else 80}", *parts[2:4], "")
        ),
        urlunsplit((*parts[:3], parts.query + sep + "utm_source=rss&utm_medium=feed", "")),
        urlunsplit((*parts[:3], parts.query + sep + "fbclid=IwAR0x&ref=rss", "")),
        urlunsplit((*parts[:4], "comments")),
        urlunsplit(parts) + '"',
        urlunsplit(parts) + "</a>",  # markup after the link
        "\t " + urlunsplit(parts) + "\n",  # white space around it
        urlunsplit((*parts[:2], parts.path.rstrip("/") + "/", parts.query, ""))
        if not parts.path.endswith((".html", ".htm", ".php"))
        else urlunsplit(parts),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--pairs", type=Path, default=DEFAULT_PAIRS)
    parser.add_argument("--pages", type=Path, default=DEFAULT_PAGES)
    parser.add_argument("--upstream", type=Path, default=DEFAULT_UPSTREAM)
    args = parser.parse_args()

    pairs = read_pairs(args.pairs)
    same = [p for p in pairs if p[0] == "same"]
    distinct = [p for p in pairs if p[0] == "distinct"]
    held = 0
    for _, a, b, note in same:
        if key(a) is not None and key(a) == key(b):
            held += 1
        else:
            print(f"kept apart: {note}: {a} -> {key(a)} | {b} -> {key(b)}")
    merged = 0
    for _, a, b, note in distinct:
        if key(a) is not None and key(a) == key(b):
            merged += 1
            print(f"wrong merge: {note}: {a} | {b} -> {key(a)}")

    truth = args.pages / "ground-truth.json"
    urls = (
        sorted({v["url"] for v in json.loads(truth.read_text()).values()}) if truth.exists() else []
    )
    variants_total = variants_held = 0
    for url in urls:
        for variant in variants(url):
            variants_total += 1
            if key(variant) == key(url):
                variants_held += 1
            else:
                print(f"variant kept apart: {variant} -> {key(variant)} (article {key(url)})")
    real_merged = real_pairs = 0
    for a, b in itertools.combinations(urls, 2):
        real_pairs += 1
        if key(a) == key(b):
            real_merged += 1
            print(f"wrong merge of real URLs: {a} | {b}")

    upstream, upstream_wrong = upstream_counts(args.upstream)
    print(f"pairs: {len(same)} same, {len(distinct)} distinct; real URLs: {len(urls)}")
    print(
        "upstream: "
        + "; ".join(
            f"{source} read={c['read']} agree={c['agree']} wrong={c['wrong']}"
            for source, c in upstream.items()
        )
    )
    print(
        f"same_held={held}/{len(same)} distinct_merged={merged}/{len(distinct)} "
        f"variants_held={variants_held}/{variants_total} real_merged={real_merged}/{real_pairs}"
    )
    return 0 if held == len(same) and merged == 0 and upstream_wrong == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
