#!/usr/bin/env python
"""What per-domain boilerplate removal (newsmon.text.boilerplate) does to real extracted articles.

Usage::

    python bench/boilerplate_quality.py [--news-pages DIR] [--wcxb DIR] [--batch-size N]
                                        [--jobs N] [--no-ablations]

Every page of both shared sets is extracted with ``newsmon.extract.page.extract_page`` (pages
loaded with ``newsmon.dev.demo.load_pages``: sorted by id, which is the fixed order they are fed
in), then goes through ``clean_batch`` with a ``MemoryLineStore`` in batches of
``--batch-size`` (the pipeline writes 100 documents per bulk request). Each article's domain
is its URL's host without ``www.``; its title the extracted title; its day the extracted
publication date (today when there is none, as in the pipeline).

Scenarios (each on a fresh store):

* ``as-is``: the sets as they are. Only domains with >= 3 pages can lose anything.
* ``site footer``: every page of a set under one domain, with the footer of the seed page
  (The BOL News: "Read More News On", "Catch all the Pakistan News…", "Download The BOL News
  App…") appended: how much of a real site footer goes, and what else.
* ``pooled``: every page of a set under one domain, a stress test: what the rule would take
  from a site whose articles share headings and templates as much as these 900 pages do.
* ``copies``: every page fed three times, under three document ids on three days, same title
  and text (one article at several URLs).
* ``versions``: every page fed three times on three days, the second and third time under a
  new title ("Update: …", "… | Explained") with a new first paragraph and its longest
  paragraph revised (an article updated at new URLs).

Scores: word-level bag-of-words F1 against the ground truth (``prf`` of
``bench/extraction_quality.py``), macro-averaged over pages, of each text as fed and after
cleaning (for ``copies`` and ``versions``: of the third copies; lines removed from any copy
are counted). A removed line counts as *wrongly removed* when its words (lower-cased ``\\w+``
runs, in order) occur in the page's ground-truth text. With ablations, the stress scenarios
also run with each guard of ``Rules`` turned off in turn, and with none at all ("bare rule":
>= 3 document ids of a domain).

Last line: ``news_pages_f1_before=… news_pages_f1_after=… wcxb_f1_before=… wcxb_f1_after=…
lines_removed=… wrongly_removed_lines=…`` (as-is scenario, default rules), then the site footer
lines removed and the wrongly removed counts of the other scenarios (default rules). Takes a
few minutes on two cores (``--no-ablations``: about a minute).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

try:
    from newsmon.dev.demo import load_pages
    from newsmon.extract.page import extract_page
    from newsmon.text.boilerplate import (
        DEFAULT_RULES,
        ArticleText,
        MemoryLineStore,
        Rules,
        clean_batch,
    )
except ImportError:  # running from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from newsmon.dev.demo import load_pages
    from newsmon.extract.page import extract_page
    from newsmon.text.boilerplate import (
        DEFAULT_RULES,
        ArticleText,
        MemoryLineStore,
        Rules,
        clean_batch,
    )

# the scoring of bench/extraction_quality.py: one definition of word-level F1 for both benches
sys.path.insert(0, str(Path(__file__).resolve().parent))
from extraction_quality import prf

_SHARED = Path(os.environ.get("NEWSMON_SHARED", Path(__file__).resolve().parents[2] / "shared"))
DEFAULT_NEWS_PAGES = str(_SHARED / "data" / "news-pages")
DEFAULT_WCXB = str(_SHARED / "data" / "wcxb-articles")
_WORDS_RE = re.compile(r"\w+")

ABLATIONS: dict[str, Rules] = {
    "default": DEFAULT_RULES,
    "no heading guard": replace(DEFAULT_RULES, keep_headings=False),
    "no day guard": replace(DEFAULT_RULES, min_days=1),
    "no length cap": replace(DEFAULT_RULES, max_line_chars=10**9, max_long_line_chars=10**9),
    "short lines only": replace(DEFAULT_RULES, max_long_line_chars=DEFAULT_RULES.max_line_chars),
    "long lines as short": replace(DEFAULT_RULES, long_min_articles=3, long_min_days=3),
    "no opening guard": replace(DEFAULT_RULES, keep_openings=False),
    "no lead-in learning": replace(DEFAULT_RULES, learn_leadins=False),
    "no version discount": replace(DEFAULT_RULES, version_share=None),
    "no removal cap": replace(DEFAULT_RULES, max_removed_share=1.0),
    "doc ids, not titles": replace(DEFAULT_RULES, count_titles=False),
    "no content count": replace(DEFAULT_RULES, count_contents=False),
    "digits masked": replace(DEFAULT_RULES, mask_digits=True),
    "bare rule": Rules(
        min_days=1,
        max_line_chars=10**9,
        max_long_line_chars=10**9,
        keep_headings=False,
        keep_openings=False,
        version_share=None,
        max_removed_share=1.0,
        count_titles=False,
        count_contents=False,
    ),
}


@dataclass(frozen=True)
class Page:
    dataset: str
    page_id: str
    url: str
    truth: str
    title: str | None
    text: str | None
    day: date | None


def domain_of(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")


def _words(text: str) -> str:
    return " " + " ".join(_WORDS_RE.findall(text.lower())) + " "


def _extract(job: tuple[str, str, str, bytes, str]) -> Page:
    dataset, page_id, url, html, truth = job
    page = extract_page(html, url)
    return Page(
        dataset,
        page_id,
        url,
        truth,
        page.title if page else None,
        page.text if page else None,
        page.published_at.date() if page and page.published_at else None,
    )


def load(name: str, root: Path, jobs: int) -> list[Page]:
    if (root / "ground-truth.json").is_file():
        data = json.loads((root / "ground-truth.json").read_text("utf-8"))
        truths = {k: v.get("articleBody") or "" for k, v in data.items()}
    else:
        truths = {}
        for path in sorted((root / "ground-truth").glob("*.json")):
            gt = json.loads(path.read_text("utf-8")).get("ground_truth") or {}
            truths[path.stem] = gt.get("main_content") or ""
    work = [(name, p.page_id, p.original_url, p.html, truths[p.page_id]) for p in load_pages(root)]
    if jobs <= 1:
        return list(map(_extract, work))
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        return list(pool.imap(_extract, work, chunksize=4))


# --- scenarios ------------------------------------------------------------------------------


@dataclass
class Outcome:
    pages: int = 0  # scored pages (ground truth with words)
    f1_before: float = 0.0
    f1_after: float = 0.0
    articles_changed: int = 0
    lines_removed: int = 0
    footer_lines: int = 0  # FOOTER lines fed
    footer_removed: int = 0
    wrong: list[tuple[str, str]] = field(default_factory=list)  # (page id, line) in the truth

    def mean(self, attr: str) -> float:
        return float(getattr(self, attr)) / self.pages if self.pages else 0.0


Feed = list[tuple[Page, ArticleText, bool]]  # (page, item, scored)


def as_is(pages: Sequence[Page]) -> Feed:
    return [
        (p, ArticleText(p.page_id, domain_of(p.url), p.title, p.text or "", p.day), True)
        for p in pages
    ]


def pooled(pages: Sequence[Page]) -> Feed:
    return [
        (p, ArticleText(p.page_id, "pooled.example", p.title, p.text or "", p.day), True)
        for p in pages
    ]


# The seed page's footer (The BOL News), as trafilatura leaves it at the end of the text.
FOOTER = (
    "Read More News On",
    "Catch all the Pakistan News, Breaking News Event and Latest News Updates on The BOL News",
    "Download The BOL News App to get the Daily News Update & Follow us on Google News.",
)


def site_footer(pages: Sequence[Page]) -> Feed:
    """Every page under one domain with the seed site's footer lines at the end."""
    footer = "\n\n".join(FOOTER)
    return [
        (p, ArticleText(p.page_id, "site.example", p.title, f"{p.text}\n\n{footer}", p.day), True)
        for p in pages
        if p.text
    ]


def _three(pages: Sequence[Page], version: Callable[[Page, int], tuple[str, str]]) -> Feed:
    """Each page three times, on three days: all first copies, then all second, then third."""
    feed: Feed = []
    for n in range(3):
        for p in pages:
            day = date.fromordinal((p.day or date(2021, 1, 1)).toordinal() + n)
            title, body = version(p, n)
            item = ArticleText(f"{p.page_id}#{n}", domain_of(p.url), title, body, day)
            feed.append((p, item, n == 2))
    return feed


def copies(pages: Sequence[Page]) -> Feed:
    """One article at three URLs: same title, same text."""
    return _three(pages, lambda p, n: (p.title or "", p.text or ""))


def _updated(p: Page, n: int) -> tuple[str, str]:
    title = p.title or p.page_id
    if n == 0 or not p.text:
        return title, p.text or ""
    # a new title and first paragraph, and the longest paragraph revised, at every update
    lines = p.text.split("\n\n")
    longest = max(range(len(lines)), key=lambda i: len(lines[i]))
    nth = ["", "first", "second"][n]  # words, not digits: digits could hide the revision
    lines[longest] += f" (This paragraph was revised in the {nth} update.)"
    head = f"In the {nth} update: new details on {title.lower()}."
    return [f"Update: {title}", f"{title} | Explained"][n - 1], "\n\n".join([head, *lines])


def versions(pages: Sequence[Page]) -> Feed:
    """An article updated twice, each time at a new URL under a new title."""
    return _three(pages, _updated)


SCENARIOS: dict[str, Callable[[Sequence[Page]], Feed]] = {
    "as-is": as_is,
    "site footer": site_footer,
    "pooled": pooled,
    "copies": copies,
    "versions": versions,
}


def run(feed: Feed, rules: Rules, batch_size: int) -> Outcome:
    store = MemoryLineStore()
    out = Outcome()
    for start in range(0, len(feed), batch_size):
        chunk = feed[start : start + batch_size]
        cleaned = clean_batch(store, [item for _, item, _ in chunk], rules)
        for (page, item, scored), result in zip(chunk, cleaned, strict=True):
            if not _WORDS_RE.search(page.truth):
                continue
            fed = item.text.split("\n\n")
            out.footer_lines += sum(line in FOOTER for line in fed)
            if result.removed:
                remaining = set(result.text.split("\n\n"))
                out.footer_removed += sum(line in FOOTER and line not in remaining for line in fed)
            if scored:
                out.pages += 1
                out.f1_before += prf(item.text or None, page.truth)[2]
                out.f1_after += prf(result.text or None, page.truth)[2]
            if not result.removed:
                continue
            out.articles_changed += 1
            out.lines_removed += result.removed
            kept = Counter(result.text.split("\n\n"))
            truth = _words(page.truth)
            for line in fed:
                if kept[line]:
                    kept[line] -= 1
                elif _words(line).strip() and _words(line) in truth:
                    out.wrong.append((page.page_id, line))
    return out


_SETS: dict[str, list[Page]] = {}


def _init(sets: dict[str, list[Page]]) -> None:
    _SETS.update(sets)


def _job(job: tuple[str, str, str, int]) -> tuple[str, str, str, Outcome]:
    scenario, label, name, batch_size = job
    return (
        scenario,
        label,
        name,
        run(SCENARIOS[scenario](_SETS[name]), ABLATIONS[label], batch_size),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--news-pages", default=DEFAULT_NEWS_PAGES)
    parser.add_argument("--wcxb", default=DEFAULT_WCXB)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--no-ablations", action="store_true", help="default rules only")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    sets: list[tuple[str, list[Page]]] = []
    for name, root in (("news-pages", args.news_pages), ("wcxb", args.wcxb)):
        if root:
            sets.append((name, load(name, Path(root), args.jobs)))
            print(f"[{name}] extracted {len(sets[-1][1])} pages", file=sys.stderr, flush=True)
    if not sets:
        parser.error("nothing to measure: both data sets disabled")

    print("Pages per domain (the rule needs >= 3 articles of a domain):")
    for name, pages in sets:
        per_domain = Counter(domain_of(p.url) for p in pages if p.text)
        big = {d: n for d, n in per_domain.items() if n >= 3}
        listed = ", ".join(f"{d} {n}" for d, n in sorted(big.items())) or "none"
        print(f"  {name:<11} {len(pages)} pages, {len(per_domain)} domains, >= 3 pages: {listed}")
    print()

    labels = ["default"] if args.no_ablations else list(ABLATIONS)
    jobs = [
        (scenario, label, name, args.batch_size)
        for scenario in SCENARIOS
        for label in labels
        if scenario != "as-is" or label in ("default", "bare rule")
        for name, _ in sets
    ]
    with multiprocessing.get_context("spawn").Pool(
        max(1, args.jobs), initializer=_init, initargs=(dict(sets),)
    ) as pool:
        results = pool.map(_job, jobs, chunksize=1)

    summary: dict[str, float | int | str] = {}
    wrong_default: dict[str, list[tuple[str, str, str]]] = {}
    header = (
        f"{'scenario':<12} {'rules':<20} {'set':<11} {'pages':>5} {'F1 before':>9} "
        f"{'F1 after':>9} {'changed':>7} {'removed':>7} {'footer':>11} {'wrong':>5}"
    )
    print(header)
    print("-" * len(header))
    for scenario, label, name, out in results:
        wrong = out.wrong
        footer = f"{out.footer_removed}/{out.footer_lines}" if out.footer_lines else "-"
        print(
            f"{scenario:<12} {label:<20} {name:<11} {out.pages:>5} "
            f"{out.mean('f1_before'):>9.4f} {out.mean('f1_after'):>9.4f} "
            f"{out.articles_changed:>7} {out.lines_removed:>7} {footer:>11} {len(wrong):>5}"
        )
        key = name.replace("-", "_")
        if label == "default":
            wrong_default.setdefault(scenario, []).extend((name, i, t) for i, t in wrong)
            if scenario == "as-is":
                summary[f"{key}_f1_before"] = out.mean("f1_before")
                summary[f"{key}_f1_after"] = out.mean("f1_after")
                summary["lines_removed"] = int(summary.get("lines_removed", 0)) + out.lines_removed
            if scenario == "site footer":
                summary[f"footer_{key}"] = f"{out.footer_removed}/{out.footer_lines}"
        if label in ("default", "bare rule", "no heading guard") and wrong:
            examples = Counter(t for _, t in wrong).most_common(6)
            shown = "; ".join(f"{t[:40]!r} x{n}" for t, n in examples)
            print(f"{'':<12}   wrongly removed, most frequent: {shown}")
    print()
    for scenario, found in wrong_default.items():
        print(f"Wrongly removed lines, default rules, {scenario}: {len(found)}")
        for name, page_id, line in found:
            print(f"  {name} {page_id[:16]}  {line[:110]!r}")
    print(f"\n({time.perf_counter() - started:.0f}s)")
    parts = [
        f"news_pages_f1_before={summary.get('news_pages_f1_before', 0.0):.4f}",
        f"news_pages_f1_after={summary.get('news_pages_f1_after', 0.0):.4f}",
        f"wcxb_f1_before={summary.get('wcxb_f1_before', 0.0):.4f}",
        f"wcxb_f1_after={summary.get('wcxb_f1_after', 0.0):.4f}",
        f"lines_removed={summary.get('lines_removed', 0)}",
        f"wrongly_removed_lines={len(wrong_default.get('as-is', []))}",
        f"site_footer_removed_news_pages={summary.get('footer_news_pages', '-')}",
        f"site_footer_removed_wcxb={summary.get('footer_wcxb', '-')}",
        f"site_footer_wrongly_removed={len(wrong_default.get('site footer', []))}",
        f"pooled_wrongly_removed={len(wrong_default.get('pooled', []))}",
        f"copies_wrongly_removed={len(wrong_default.get('copies', []))}",
        f"versions_wrongly_removed={len(wrong_default.get('versions', []))}",
    ]
    print(" ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
