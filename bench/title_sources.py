#!/usr/bin/env python
"""How far can a title rule go on WCXB? Each title source scored alone, the best fixed order of
sources, newsmon's rule, and the ceiling of any rule that picks among the page's own candidates.

Usage::

    python bench/title_sources.py [--wcxb DIR]

Sources, each with the site name stripped as newsmon strips it: og:title, JSON-LD headline,
<title>, twitter:title and the page's headline <h1> (newsmon's choice of <h1>). A title is right
when it equals the ground truth after whitespace normalisation (as in extraction_quality.py).

"ceiling" counts pages where at least one source is right: no rule choosing among these
candidates can score higher. "h1 vs metadata" splits the pages where the <h1> and a metadata
title differ in words and one of them is right: which one the annotation took.

Last line: ``newsmon=… best_fixed_order=… ceiling=… h1_right=… metadata_right=…``.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

from extraction_quality import DEFAULT_WCXB, ws

from newsmon.extract import decode_html
from newsmon.extract.meta import _page_meta
from newsmon.extract.normalise import _comparable
from newsmon.extract.page import _parse
from newsmon.extract.title import _choose_title, _page_heading, _site_names

SOURCES = ("og", "jsonld", "html", "twitter", "h1")


def right(truth: str, found: dict[str, str | None], source: str) -> bool:
    value = found.get(source)
    return value is not None and ws(value) == truth


def candidates(html: bytes, url: str) -> dict[str, str | None] | None:
    tree = _parse(decode_html(html))
    if tree is None:
        return None
    meta = _page_meta(tree)
    site = _site_names(meta, urlsplit(url).hostname)
    raw = (meta.og_title, meta.jsonld_headline, meta.html_title, meta.twitter_title)
    heading = _page_heading(meta, site, [t for t in raw if t])
    found: dict[str, str | None] = {
        name: site.strip(value) for name, value in zip(SOURCES, raw, strict=False)
    }
    found["h1"] = (site.strip(heading.text) or heading.text) if heading else None
    found["newsmon"] = _choose_title(meta, site, None)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wcxb", default=DEFAULT_WCXB, help="WCXB articles data dir")
    args = parser.parse_args(argv)
    root = Path(args.wcxb)
    rows: list[tuple[str, dict[str, str | None]]] = []
    for gt_path in sorted((root / "ground-truth").glob("*.json")):
        data = json.loads(gt_path.read_text(encoding="utf-8"))
        truth = data["ground_truth"].get("title")
        if not truth:
            continue
        html = gzip.decompress((root / "html" / f"{gt_path.stem}.html.gz").read_bytes())
        found = candidates(html, data["url"]) or dict.fromkeys((*SOURCES, "newsmon"))
        rows.append((ws(truth), found))
    if not rows:
        print(f"no WCXB pages with a title under {root}", file=sys.stderr)
        return 1

    n = len(rows)
    print(f"WCXB pages with a ground-truth title: {n}")
    for source in (*SOURCES, "newsmon"):
        present = sum(found.get(source) is not None for truth, found in rows)
        ok = sum(right(truth, found, source) for truth, found in rows)
        print(f"  {source:<8} right {ok:>4} ({ok / n:.3f})   present on {present}")
    best_order, best = (), -1
    for order in itertools.permutations(SOURCES):
        ok = 0
        for truth, found in rows:
            first = next((s for s in order if found.get(s)), None)
            ok += first is not None and right(truth, found, first)
        if ok > best:
            best_order, best = order, ok
    ceiling = sum(any(right(truth, found, s) for s in SOURCES) for truth, found in rows)
    h1_right = meta_right = 0
    for truth, found in rows:
        h1 = found.get("h1")
        metas = [s for s in SOURCES[:-1] if found.get(s)]
        if not h1 or not any(_comparable(found[s] or "") != _comparable(h1) for s in metas):
            continue
        if right(truth, found, "h1"):
            h1_right += 1
        elif any(right(truth, found, s) for s in metas):
            meta_right += 1
    newsmon = sum(right(truth, found, "newsmon") for truth, found in rows)
    print(f"  best fixed order {' > '.join(best_order)}: {best} ({best / n:.3f})")
    print(f"  ceiling (some candidate right): {ceiling} ({ceiling / n:.3f})")
    print(f"  h1 vs metadata titles differing in words: h1 right {h1_right}, a metadata title")
    print(f"  right {meta_right}")
    print(
        f"newsmon={newsmon / n:.4f} best_fixed_order={best / n:.4f} ceiling={ceiling / n:.4f} "
        f"h1_right={h1_right} metadata_right={meta_right}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
