#!/usr/bin/env python
"""Score newsmon's article extraction against two ground-truth sets.

Usage::

    python bench/extraction_quality.py [--news-pages DIR] [--wcxb DIR] [--limit N] [--compare]
                                       [--jobs N] [--details FILE.jsonl]
                                       [--title-failures FILE.jsonl]

Data sets (see their READMEs):

* ``--news-pages DIR`` (default ``$NEWSMON_SHARED/data/news-pages``; ``NEWSMON_SHARED``
  defaults to ``../shared`` next to the repository): ``html/<id>.html.gz`` and
  ``ground-truth.json`` = ``{id: {"url", "articleBody"}}`` (Zyte article-extraction benchmark).
* ``--wcxb DIR`` (default ``$NEWSMON_SHARED/data/wcxb-articles``): ``html/<id>.html.gz`` and
  ``ground-truth/<id>.json`` = ``{"url", "ground_truth": {"title", "author", "publish_date",
  "main_content", ...}}`` (WCXB development split, article pages).

Pass an empty string (``--wcxb ''``) to skip a set. ``--limit N`` scores the first N pages
(ids in sorted order) of each set.

What is scored
--------------
Each page's gunzipped bytes and its ground-truth URL go to the extractor:

* ``newsmon``: ``newsmon.extract.page.extract_page(html_bytes, url)``; its ``text`` is scored.
* with ``--compare``, in the same run, plain trafilatura on the same bytes:
  ``trafilatura.extract(html_bytes, url=url)`` (library defaults, comments included) and
  ``trafilatura.extract(html_bytes, url=url, include_comments=False)``.

Text: word-level bag-of-words precision / recall / F1 per page, then the plain mean over
pages (macro average). Tokenisation: the text is lower-cased (``str.lower``) and split on
runs of non-word characters (Python ``re``, Unicode ``\\W+``; i.e. tokens are
``re.findall(r"\\w+", text.lower())``: letters, digits and ``_``); no stemming, no stop words.
Overlap is the multiset intersection of the two token bags (a word counts as often as it
occurs in both): ``P = overlap / len(extracted)``, ``R = overlap / len(truth)``,
``F1 = 2PR / (P + R)``. A page where the extractor returns nothing (None or no tokens)
scores P = R = F1 = 0. Pages whose ground-truth text has no tokens are skipped (counted in
the ``skip`` column).

Metadata (WCXB only, newsmon only; over pages where the ground-truth field is non-null;
a page where extraction returned None counts as wrong):

* title: exact match after whitespace normalisation (runs of whitespace -> one space,
  stripped); case and punctuation must match.
* author: the same words in the same order: the ground-truth string and the extracted
  authors (concatenated in order) are tokenised like the text (lower-cased ``\\w+`` runs)
  and the connective "and" is dropped; the token lists must be equal. So "A, B and C"
  matches ("A", "B", "C") and "Dr. Jane Doe, Ph.D." matches ("Dr Jane Doe", "Ph D"), but
  a missing, extra or different name is wrong.
* date: the extracted ``published_at`` as ISO date (``YYYY-MM-DD``, in the page's own
  time zone) starts with the ground-truth ``publish_date`` (a few give only ``YYYY-MM``).

``--title-failures FILE`` writes one JSON line per WCXB page whose title is wrong: the
ground truth, newsmon's title and the candidates it chose from (og:title, twitter:title,
JSON-LD headline, <title>, the <h1>s with where they are, the site names the page gives).

Output: progress on stderr, a table on stdout, and as the last line a machine-readable
summary of newsmon's scores, e.g.
``news_pages_f1=0.9400 news_pages_p=... wcxb_f1=... wcxb_title_exact=... wcxb_author=...``
(with ``--compare`` also ``trafilatura_default_*`` and ``trafilatura_nocomments_*`` keys).
``s/page`` is the mean wall time of the extractor call per page (decoding and parsing
included, reading and gunzipping the file not), measured inside the worker process; the
summary's ``*_cpu_per_page`` is the mean process (CPU) time of the same call, which a loaded
machine disturbs less.

With ``--compare`` the report also lists, per data set, the pages where newsmon scores more
than 0.1 F1 below plain trafilatura without comments, or below 0.5 where plain trafilatura
scores more than newsmon (summary key ``<set>_pages_behind``; the goal is 0).
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    from newsmon.extract.page import extract_page
except ImportError:  # running from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from newsmon.extract.page import extract_page

_SHARED = Path(os.environ.get("NEWSMON_SHARED", Path(__file__).resolve().parents[2] / "shared"))
DEFAULT_NEWS_PAGES = str(_SHARED / "data" / "news-pages")
DEFAULT_WCXB = str(_SHARED / "data" / "wcxb-articles")

_TOKEN_RE = re.compile(r"\w+")
# per-page conditions against plain trafilatura (no comments), reported with --compare
BEHIND_BY = 0.1
LOW_F1 = 0.5
_SPACE_RE = re.compile(r"\s+")


# ------------------------------------------------------------------------------------------
# scoring
# ------------------------------------------------------------------------------------------


def tokens(text: str | None) -> Counter[str]:
    """Bag of words: lower-cased, split on non-word characters."""
    return Counter(_TOKEN_RE.findall(text.lower())) if text else Counter()


def prf(extracted: str | None, truth: str) -> tuple[float, float, float]:
    """Bag-of-words precision, recall, F1 of ``extracted`` against ``truth``."""
    got, want = tokens(extracted), tokens(truth)
    n_got, n_want = sum(got.values()), sum(want.values())
    if not n_got or not n_want:
        return 0.0, 0.0, 0.0
    overlap = sum((got & want).values())
    p, r = overlap / n_got, overlap / n_want
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def ws(text: str) -> str:
    return _SPACE_RE.sub(" ", text).strip()


def title_ok(extracted: str | None, truth: str) -> bool:
    return extracted is not None and ws(extracted) == ws(truth)


def _name_tokens(text: str) -> list[str]:
    return [t for t in _TOKEN_RE.findall(text.lower()) if t != "and"]


def author_ok(extracted: list[str] | None, truth: str) -> bool:
    if not extracted:
        return False
    return _name_tokens(" ".join(extracted)) == _name_tokens(truth)


def date_ok(extracted: str | None, truth: str) -> bool:
    return extracted is not None and extracted.startswith(truth.strip())


# ------------------------------------------------------------------------------------------
# data sets
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    dataset: str
    page_id: str
    path: str
    url: str
    body: str
    title: str | None = None
    author: str | None = None
    date: str | None = None


def load_news_pages(root: Path) -> list[Page]:
    truth = json.loads((root / "ground-truth.json").read_text(encoding="utf-8"))
    return [
        Page(
            "news-pages",
            page_id,
            str(root / "html" / f"{page_id}.html.gz"),
            entry["url"],
            entry.get("articleBody") or "",
        )
        for page_id, entry in sorted(truth.items())
    ]


def load_wcxb(root: Path) -> list[Page]:
    pages = []
    for gt_file in sorted((root / "ground-truth").glob("*.json")):
        entry = json.loads(gt_file.read_text(encoding="utf-8"))
        gt = entry.get("ground_truth") or {}
        pages.append(
            Page(
                "wcxb",
                gt_file.stem,
                str(root / "html" / f"{gt_file.stem}.html.gz"),
                entry.get("url") or "",
                gt.get("main_content") or "",
                gt.get("title"),
                gt.get("author"),
                gt.get("publish_date"),
            )
        )
    return pages


# ------------------------------------------------------------------------------------------
# extractors (run in worker processes)
# ------------------------------------------------------------------------------------------


def _run_newsmon(html: bytes, url: str) -> dict[str, Any]:
    page = extract_page(html, url)
    if page is None:
        return {"text": None, "title": None, "authors": None, "date": None}
    return {
        "text": page.text,
        "title": page.title,
        "authors": list(page.authors),
        "date": page.published_at.date().isoformat() if page.published_at else None,
    }


def _run_trafilatura_default(html: bytes, url: str) -> dict[str, Any]:
    import trafilatura

    return {"text": trafilatura.extract(html, url=url)}


def _run_trafilatura_nocomments(html: bytes, url: str) -> dict[str, Any]:
    import trafilatura

    return {"text": trafilatura.extract(html, url=url, include_comments=False)}


EXTRACTORS: dict[str, Callable[[bytes, str], dict[str, Any]]] = {
    "newsmon": _run_newsmon,
    "trafilatura_default": _run_trafilatura_default,
    "trafilatura_nocomments": _run_trafilatura_nocomments,
}
LABELS = {
    "newsmon": "newsmon.extract.page",
    "trafilatura_default": "trafilatura defaults",
    "trafilatura_nocomments": "trafilatura no comments",
}


def title_candidates(html: bytes, url: str) -> dict[str, Any]:
    """What the page offers as its title (newsmon's own reading of it), for failure analysis."""
    from newsmon.extract import decode_html
    from newsmon.extract.meta import _page_meta
    from newsmon.extract.page import _parse

    tree = _parse(decode_html(html))
    if tree is None:
        return {}
    meta = _page_meta(tree)
    return {
        "og_title": meta.og_title,
        "twitter_title": meta.twitter_title,
        "jsonld_headline": meta.jsonld_headline,
        "html_title": meta.html_title,
        "h1": [
            {
                "text": h.text,
                "in_article": h.in_article,
                "in_page_header": h.in_page_header,
                "in_chrome": h.in_chrome,
            }
            for h in meta.headings
        ],
        "site_names": list(meta.site_names),
    }


def score_page(job: tuple[Page, list[str], bool]) -> dict[str, Any]:
    page, extractor_names, want_title_candidates = job
    with gzip.open(page.path, "rb") as fh:
        html = fh.read()
    result: dict[str, Any] = {"dataset": page.dataset, "id": page.page_id, "url": page.url}
    for name in extractor_names:
        start, cpu_start = time.perf_counter(), time.process_time()
        try:
            out = EXTRACTORS[name](html, page.url)
            error = None
        except Exception as exc:  # a crash is scored as an empty extraction
            out, error = {"text": None}, f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        p, r, f = prf(out.get("text"), page.body)
        row: dict[str, Any] = {
            "p": p,
            "r": r,
            "f1": f,
            "none": out.get("text") is None,
            "seconds": seconds,
            "cpu": cpu,
            "error": error,
        }
        if "title" in out:
            row["title"] = out["title"]
            row["authors"] = out.get("authors")
            row["date"] = out.get("date")
            if page.title is not None:
                row["title_ok"] = title_ok(out["title"], page.title)
            if page.author is not None:
                row["author_ok"] = author_ok(out.get("authors"), page.author)
            if page.date is not None:
                row["date_ok"] = date_ok(out.get("date"), page.date)
        result[name] = row
    result["skip"] = not tokens(page.body)
    newsmon_row = result.get("newsmon", {})
    if want_title_candidates and newsmon_row.get("title_ok") is False:
        result["title_candidates"] = {
            "truth": page.title,
            "newsmon": newsmon_row.get("title"),
            **title_candidates(html, page.url),
        }
    return result


# ------------------------------------------------------------------------------------------
# aggregation and report
# ------------------------------------------------------------------------------------------


@dataclass
class Totals:
    pages: int = 0
    skipped: int = 0
    none: int = 0
    errors: int = 0
    p: float = 0.0
    r: float = 0.0
    f1: float = 0.0
    seconds: float = 0.0
    cpu: float = 0.0
    meta: dict[str, list[bool]] = field(default_factory=dict)

    def add(self, row: dict[str, Any], skip: bool) -> None:
        self.seconds += row["seconds"]
        self.cpu += row["cpu"]
        self.none += int(row["none"])
        self.errors += int(row["error"] is not None)
        for key in ("title_ok", "author_ok", "date_ok"):
            if key in row:
                self.meta.setdefault(key, []).append(bool(row[key]))
        if skip:
            self.skipped += 1
            return
        self.pages += 1
        self.p += row["p"]
        self.r += row["r"]
        self.f1 += row["f1"]

    def mean(self, attr: str) -> float:
        return getattr(self, attr) / self.pages if self.pages else 0.0

    def rate(self, key: str) -> tuple[float, int] | None:
        values = self.meta.get(key)
        if not values:
            return None
        return sum(values) / len(values), len(values)


def _fmt_rate(value: tuple[float, int] | None) -> str:
    return "-" if value is None else f"{value[0]:.3f}"


def iter_results(
    pages: list[Page], names: list[str], jobs: int, title_candidates: bool = False
) -> Iterator[dict[str, Any]]:
    work = [(page, names, title_candidates) for page in pages]
    if jobs <= 1:
        yield from map(score_page, work)
        return
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        yield from pool.imap(score_page, work, chunksize=2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--news-pages", default=DEFAULT_NEWS_PAGES, help="news-pages data dir")
    parser.add_argument("--wcxb", default=DEFAULT_WCXB, help="WCXB articles data dir")
    parser.add_argument(
        "--limit", type=int, default=None, help="score the first N pages of each set"
    )
    parser.add_argument(
        "--compare", action="store_true", help="also score plain trafilatura.extract side by side"
    )
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument(
        "--details", type=Path, default=None, help="write per-page rows (JSON lines)"
    )
    parser.add_argument(
        "--title-failures",
        type=Path,
        default=None,
        help="write WCXB pages with a wrong title and their title candidates (JSON lines)",
    )
    args = parser.parse_args(argv)

    names = ["newsmon"] + (
        ["trafilatura_default", "trafilatura_nocomments"] if args.compare else []
    )
    sets: list[tuple[str, list[Page]]] = []
    if args.news_pages:
        sets.append(("news-pages", load_news_pages(Path(args.news_pages))))
    if args.wcxb:
        sets.append(("wcxb", load_wcxb(Path(args.wcxb))))
    if not sets:
        parser.error("nothing to score: both data sets disabled")

    totals: dict[tuple[str, str], Totals] = {}
    # pages where newsmon does worse than plain trafilatura (no comments), per data set
    behind: dict[str, list[str]] = {}
    details = args.details.open("w", encoding="utf-8") if args.details else None
    failures = args.title_failures.open("w", encoding="utf-8") if args.title_failures else None
    started = time.perf_counter()
    try:
        for set_name, pages in sets:
            if args.limit is not None:
                pages = pages[: args.limit]
            results = iter_results(pages, names, args.jobs, failures is not None)
            for done, result in enumerate(results, 1):
                for name in names:
                    totals.setdefault((set_name, name), Totals()).add(result[name], result["skip"])
                    if result[name]["error"]:
                        print(
                            f"  {set_name} {result['id']} {name}: {result[name]['error']}",
                            file=sys.stderr,
                        )
                if args.compare and not result["skip"]:
                    mine = result["newsmon"]["f1"]
                    plain = result["trafilatura_nocomments"]["f1"]
                    flags = behind.setdefault(set_name, [])
                    if mine < plain - BEHIND_BY:
                        flags.append(f"{result['id']} {mine:.3f} < {plain:.3f} - {BEHIND_BY}")
                    elif mine < LOW_F1 and plain > mine:
                        flags.append(f"{result['id']} {mine:.3f} < {LOW_F1} and < {plain:.3f}")
                if details is not None:
                    details.write(json.dumps(result, ensure_ascii=False) + "\n")
                if failures is not None and "title_candidates" in result:
                    row = {"id": result["id"], "url": result["url"], **result["title_candidates"]}
                    failures.write(json.dumps(row, ensure_ascii=False) + "\n")
                if done % 25 == 0 or done == len(pages):
                    f1 = totals[(set_name, "newsmon")].mean("f1")
                    print(
                        f"[{set_name}] {done}/{len(pages)} pages, newsmon F1 so far {f1:.3f}, "
                        f"{time.perf_counter() - started:.0f}s",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        for fh in (details, failures):
            if fh is not None:
                fh.close()

    print("Extraction quality: word-level bag-of-words P/R/F1 per page, macro-averaged over pages")
    print("(title = exact match after whitespace normalisation; author, date = accuracy where")
    print(" the ground truth has a value; s/page = mean extractor wall time per page)")
    print()
    header = (
        f"{'data set':<11} {'extractor':<24} {'pages':>5} {'skip':>4} {'none':>4} "
        f"{'P':>6} {'R':>6} {'F1':>6} {'title':>6} {'author':>6} {'date':>6} {'s/page':>7}"
    )
    print(header)
    print("-" * len(header))
    summary: list[str] = []
    for (set_name, name), tot in totals.items():
        title = tot.rate("title_ok")
        author = tot.rate("author_ok")
        date = tot.rate("date_ok")
        per_page = tot.seconds / max(tot.pages + tot.skipped, 1)
        cpu_per_page = tot.cpu / max(tot.pages + tot.skipped, 1)
        print(
            f"{set_name:<11} {LABELS[name]:<24} {tot.pages:>5} {tot.skipped:>4} {tot.none:>4} "
            f"{tot.mean('p'):>6.3f} {tot.mean('r'):>6.3f} {tot.mean('f1'):>6.3f} "
            f"{_fmt_rate(title):>6} {_fmt_rate(author):>6} {_fmt_rate(date):>6} {per_page:>7.3f}"
        )
        prefix = "" if name == "newsmon" else f"{name}_"
        key = set_name.replace("-", "_")
        summary += [
            f"{prefix}{key}_f1={tot.mean('f1'):.4f}",
            f"{prefix}{key}_p={tot.mean('p'):.4f}",
            f"{prefix}{key}_r={tot.mean('r'):.4f}",
        ]
        for label, value in (("title_exact", title), ("author", author), ("date", date)):
            if value is not None:
                summary.append(f"{prefix}{key}_{label}={value[0]:.4f}")
        summary.append(f"{prefix}{key}_s_per_page={per_page:.4f}")
        summary.append(f"{prefix}{key}_cpu_per_page={cpu_per_page:.4f}")
        if name == "newsmon" and args.compare:
            summary.append(f"{key}_pages_behind={len(behind.get(set_name, []))}")
    if ("wcxb", "newsmon") in totals:
        tot = totals[("wcxb", "newsmon")]
        parts = [
            f"{label} n={value[1]}"
            for label, value in (
                ("title", tot.rate("title_ok")),
                ("author", tot.rate("author_ok")),
                ("date", tot.rate("date_ok")),
            )
            if value is not None
        ]
        print()
        print("WCXB metadata pages with ground truth: " + ", ".join(parts))
    if args.compare:
        print()
        print(
            f"Pages where newsmon is more than {BEHIND_BY} F1 below plain trafilatura (no "
            f"comments), or below {LOW_F1} where plain trafilatura scores more:"
        )
        for set_name, _ in sets:
            flags = behind.get(set_name, [])
            print(f"  {set_name}: {len(flags)}" + "".join(f"\n    {f}" for f in flags))
    print()
    print(" ".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
