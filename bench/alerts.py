"""Alert evaluation speed: N rules over 1,000 newly indexed articles on the local node.

Articles are made from the hand-marked texts of ../shared/data/news-pages (paragraphs of real
articles recombined, real titles, outlets and dates); older articles sit outside the window, as
in a real index. Rules are a realistic mix of terms, phrases, NOT, wildcards, proximity, fielded
terms and filters (feeds, languages, domains), built from words that occur in the texts.
What is timed is ``newsmon.alerts.decide``: the windows, the presearch, the ``_msearch``
matching, the highlighting of new matches and the ledger writes. The line of each rule count is
``rules=… articles=… seconds=…``, with the default settings (the presearch from 20,000 rules).

Up to ``--compare-up-to`` rules (default 10,000) the same rules are also decided over the same
articles with the presearch on and off (``presearch_from`` 1 and 0), and with snippets made by
Elasticsearch's highlighter instead of in Python (``local_snippets`` off, presearch off), each
with a ledger of its own, side by side in the run; stderr gets the times, their ratios and how
many snippets are the same. The bench fails if the presearch changes a ledger, or the snippets'
source a decision.

    .venv/bin/python bench/alerts.py --rules 100 1000 10000 100000
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from newsmon.alerts import AlertRule, AlertSettings, RuleFilters, RunReport, decide
from newsmon.alerts.query import rewrite_query
from newsmon.config import Settings
from newsmon.dev.local import local_node_url
from newsmon.store import Client, IndexNames, bulk_write, connect, ensure_indices
from newsmon.store.articles import match_fields

REPO = Path(__file__).resolve().parents[1]
PAGES = REPO.parent / "shared" / "data" / "news-pages"
WCXB = REPO.parent / "shared" / "data" / "wcxb-articles"
FEEDS = [f"feed{n}" for n in range(16)]
_STOP_WORDS = (
    "the a an and or not of to in on for with by at from as is was were be been are it its this"
    " that these those he she they we you i his her their our your but if so than then there"
    " which who whom what when where why how all any each other some such no nor only own same"
    " too very can will just should now also into over after before about more most has have"
    " had do does did said says one two new would could may might us"
)
STOP = set(_STOP_WORDS.split())


def _texts() -> list[tuple[str, str, str]]:
    """(url, title, text) of every hand-marked article of the shared data sets (~900)."""
    out = []
    truth = json.loads((PAGES / "ground-truth.json").read_text("utf-8"))
    for value in truth.values():
        text = value["articleBody"].strip()
        out.append((value["url"], text.split("\n", 1)[0][:150], text))
    for path in sorted((WCXB / "ground-truth").glob("*.json")):
        value = json.loads(path.read_text("utf-8"))
        gt = value["ground_truth"]
        text = (gt.get("main_content") or "").strip()
        out.append((value.get("url") or "", (gt.get("title") or text[:100]).strip(), text))
    return [t for t in out if len(t[2]) > 200]


def _articles(count: int, rng: random.Random, now: datetime, *, old: bool) -> list[dict]:
    """``count`` articles: every real text once, then syndicated copies (same text, another
    outlet, the same story id) to make up the number."""
    texts = _texts()
    docs = []
    for n in range(count):
        url, title, text = texts[n % len(texts)]
        domain = (urlsplit(url).hostname or "x").removeprefix("www.")
        if n >= len(texts):
            domain = f"outlet{rng.randrange(40)}.example"
        indexed = now - (timedelta(days=3) if old else timedelta(seconds=rng.uniform(1, 600)))
        docs.append(
            {
                "url": f"https://{domain}/{n}/{urlsplit(url).path.strip('/')}",
                "canonical_url": f"https://{domain}/{n}/{uuid.uuid4().hex[:8]}",
                "domain": domain,
                "site_name": domain,
                "title": title,
                "text": text,
                "published_at": (indexed - timedelta(hours=rng.uniform(0, 48))).isoformat(),
                "indexed_at": indexed.isoformat(),
                "language": "en" if rng.random() < 0.9 else "fr",
                "feed_id": rng.choice(FEEDS),
                "tags": ["bench"],
                "extraction": "full",
                "story_id": f"{'old' if old else 'new'}-{n % len(texts)}",
            }
        )
        docs[-1].update(match_fields(docs[-1]))
    return docs


def _vocabulary(docs: list[dict]) -> tuple[list[str], list[str], list[str]]:
    """Mid-frequency words, bigrams and capitalised names of the texts (what people alert on)."""
    df: Counter[str] = Counter()
    bigrams: Counter[str] = Counter()
    names: Counter[str] = Counter()
    for doc in docs:
        words = re.findall(r"\b[A-Za-z]{3,}\b", doc["text"])
        df.update({w.lower() for w in words})
        names.update({w for w in words if w[0].isupper() and w.lower() not in STOP})
        pairs = itertools.pairwise(words)
        bigrams.update({f"{a} {b}".lower() for a, b in pairs if not {a.lower(), b.lower()} & STOP})
    n = len(docs)
    terms = [w for w, c in df.items() if 0.002 * n <= c <= 0.05 * n and w not in STOP]
    phrases = [p for p, c in bigrams.items() if 0.002 * n <= c <= 0.02 * n]
    people = [w for w, c in names.items() if 0.002 * n <= c and df[w.lower()] <= 0.01 * n]
    return sorted(terms), sorted(phrases), sorted(people)


def _rules(count: int, rng: random.Random, docs: list[dict]) -> list[AlertRule]:
    terms, phrases, people = _vocabulary(docs)
    domains = sorted({d["domain"] for d in docs})
    rules = []
    for n in range(count):
        t = lambda: rng.choice(terms)  # noqa: E731
        kind = rng.random()
        if kind < 0.30:
            query = f"{t()} AND {t()}"
        elif kind < 0.45:
            query = " OR ".join(rng.choice(people) for _ in range(rng.randint(2, 3)))
        elif kind < 0.65:
            query = f'"{rng.choice(phrases)}"' + (f" AND {t()}" if rng.random() < 0.5 else "")
        elif kind < 0.78:
            query = f"({t()} OR {t()}) AND {rng.choice(people)} NOT {t()}"
        elif kind < 0.86:
            query = f"{t()[:5]}* AND {t()}"
        elif kind < 0.93:
            a, b = rng.choice(phrases).split()
            query = f'"{a} {b}"~5'
        else:
            query = f"title:{t()} OR {rng.choice(people)}"
        filters = RuleFilters(
            languages=("en",) if rng.random() < 0.3 else (),
            feeds=tuple(rng.sample(FEEDS, 3)) if rng.random() < 0.2 else (),
            domains=(rng.choice(domains),) if rng.random() < 0.1 else (),
        )
        rules.append(
            AlertRule(
                id=f"r{n:05d}",
                name=f"bench rule {n}",
                query=query,
                filters=filters,
                recipients=(f"desk{n % 50}@example.org",),
            )
        )
    return rules


@dataclass(frozen=True)
class _OwnLedger(IndexNames):
    """Index names with their own ledger and rule state, and the articles of ``shared``."""

    shared: str = ""

    def index(self, name: str) -> str:
        return f"{self.shared}{name}" if name in ("articles", "stories") else super().index(name)


def _decide(
    es: Client, names: IndexNames, rules: list[AlertRule], options: AlertSettings, now: datetime
) -> tuple[float, RunReport]:
    rewrite_query.cache_clear()  # each run reads its rules afresh, as a scheduled run does
    started = time.perf_counter()
    result = decide(es, names, rules, options, now=now)
    return time.perf_counter() - started, result


def _ledger(es: Client, names: IndexNames) -> dict[str, dict]:
    """Every ledger and rule-state document, by index and id."""
    out = {}
    for name in ("alert-ledger", "alert-state"):
        index = names.index(name)
        es.indices.refresh(index=index)
        page = es.search(index=index, query={"match_all": {}}, size=5000, scroll="2m")
        while page["hits"]["hits"]:
            out.update({f"{name}/{h['_id']}": h["_source"] for h in page["hits"]["hits"]})
            page = es.scroll(scroll_id=page["_scroll_id"], scroll="2m")
        es.clear_scroll(scroll_id=page["_scroll_id"])
    return out


def _phases(result: RunReport) -> str:
    return ", ".join(f"{k} {v:.2f}s" for k, v in result.seconds.items())


def _without_snippets(ledger: dict[str, dict]) -> dict[str, dict]:
    return {k: {**v, "snippets": None} for k, v in ledger.items()}


def _compare(
    es: Client,
    settings: Settings,
    names: IndexNames,
    prefix: str,
    rules: list[AlertRule],
    alert_settings: AlertSettings,
    at: datetime,
    count: int,
) -> None:
    """The same rules decided again over the same articles, each run with a ledger of its own:
    presearch on and off (the ledgers must be the same), and snippets made by Elasticsearch's
    highlighter instead of in Python (the same decisions; how many snippets are the same)."""
    timed = {}
    for label, change in (
        ("on", {"presearch_from": 1}),
        ("off", {"presearch_from": 0}),
        ("es-snippets", {"presearch_from": 0, "local_snippets": False}),
    ):
        other = _OwnLedger(f"{prefix}{label}-", shared=prefix)
        ensure_indices(es, IndexNames(other.prefix), settings.config_dir)
        timed[label], other_result = _decide(
            es, other, rules, replace(alert_settings, **change), at
        )
        assert not other_result.problems, other_result.problems[:3]
        mine, theirs = _ledger(es, names), _ledger(es, other)
        if label == "es-snippets":
            assert _without_snippets(mine) == _without_snippets(theirs), (
                "snippets changed decisions"
            )
            with_snippets = [k for k, v in theirs.items() if v.get("snippets")]
            same = sum(mine[k]["snippets"] == theirs[k]["snippets"] for k in with_snippets)
            agreement = f"{same} of {len(with_snippets)} snippets the same as the highlighter's"
        else:
            assert mine == theirs, "the presearch changed what was decided"
            agreement = "same ledger and states"
        print(
            f"  {count} rules, {label}: {timed[label]:.2f}s ({_phases(other_result)}); {agreement}",
            file=sys.stderr,
        )
    print(
        f"  {count} rules: presearch off/on ratio {timed['off'] / timed['on']:.2f};"
        f" snippets highlighter/python ratio {timed['es-snippets'] / timed['off']:.2f}",
        file=sys.stderr,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rules", type=int, nargs="+", default=[100, 1000, 10000, 100000])
    parser.add_argument(
        "--compare-up-to",
        type=int,
        default=10000,
        help="also decide without the presearch, side by side, up to this many rules",
    )
    parser.add_argument("--articles", type=int, default=1000, help="new articles (default 1000)")
    parser.add_argument("--old", type=int, default=2000, help="older articles, outside the window")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the bench indices")
    args = parser.parse_args()

    settings = Settings.from_env(local_node=local_node_url)
    es = connect(settings)
    rng = random.Random(args.seed)
    now = datetime.now(UTC)
    for count in args.rules:
        prefix = f"bench-alerts-{uuid.uuid4().hex[:6]}-"
        names = IndexNames(prefix)
        try:
            ensure_indices(es, names, settings.config_dir)
            old = _articles(args.old, rng, now, old=True)
            new = _articles(args.articles, rng, now, old=False)
            report = bulk_write(
                es, names.articles, (("create", uuid.uuid4().hex, d) for d in old + new)
            )
            assert not report.failed, list(report.failed.items())[:3]
            es.indices.refresh(index=names.articles)
            rules = _rules(count, rng, new)
            alert_settings = AlertSettings(lag=timedelta(0), first_lookback=timedelta(hours=1))
            at = now + timedelta(seconds=1)
            seconds, result = _decide(es, names, rules, alert_settings, at)
            c = result.counts
            print(
                f"  {count} rules: {c['matches']} matching (rule, article) pairs,"
                f" {c['stories_decided']} (rule, story) decisions,"
                f" {c['presearch_skipped']} rules skipped by the presearch; {_phases(result)}",
                file=sys.stderr,
            )
            assert not result.problems, result.problems[:3]
            if count <= args.compare_up_to:
                _compare(es, settings, names, prefix, rules, alert_settings, at, count)
            print(f"rules={count} articles={args.articles} seconds={seconds:.2f}", flush=True)
        finally:
            if not args.keep:
                for index in es.indices.get(index=f"{prefix}*", expand_wildcards="all"):
                    es.indices.delete(index=index)
                found = es.indices.get_index_template(name=f"{prefix}*")
                for template in found.get("index_templates", []):
                    es.indices.delete_index_template(name=template["name"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
