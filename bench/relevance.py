# ruff: noqa: RUF001, RUF002, RUF003  (curly apostrophes are what this module is about)
"""Alert matching as a reader expects it: rules × articles over the shared news pages.

Each shared page's hand-marked text (``ground-truth.json``) is indexed as an article on the local
Elasticsearch node through newsmon's own document (``store.articles``). Every rule below is run
as alerts run it (``AlertRule.search``), and, side by side, as written on ``title``/``text``
(the standard analyzer: how rules matched before newsmon normalised words).

Truth comes from the reference matcher, on the same ground-truth text, independent of
Elasticsearch and of newsmon's normaliser: the text is split into words (letters and digits,
apostrophes inside a word kept), each word lower-cased, with diacritics dropped, curly
apostrophes read as straight ones, a possessive ``'s`` or a final ``'`` taken off; a hyphen,
a dot or any other sign separates words. A rule's reference lists, by hand, the word forms a
reader accepts: an unquoted word its singular and plural (``tariff``: tariff, tariffs), a quoted
name only itself (``"Wells"``: not "well"), a phrase its words in a row (``"cost-effective"``:
cost effective, with or without the hyphen). ``new`` must not find "news", ``"Jobs"`` not
"job", ``"Times"`` not "time".

Counts are over (rule, article) pairs. Last line: ``recall=… precision=…`` of newsmon's
matching; the line before it, the same for the queries as written.

    .venv/bin/python bench/relevance.py [--pages ../shared/data/news-pages] [--verbose]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import unicodedata
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from newsmon.alerts import AlertRule
from newsmon.article import Article, ArticleSource
from newsmon.config import Settings
from newsmon.dev.local import local_node_url
from newsmon.store import IndexNames, connect, ensure_indices
from newsmon.store.alerting import Listing, RuleSearch, Window, list_matches
from newsmon.store.articles import write_articles

PAGES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "news-pages"

# --- the reference matcher ---------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
Reference = Callable[[Sequence[str]], bool]


def reference_words(text: str) -> list[str]:
    """The words of ``text`` as the reference reads them (see the module's docstring)."""
    plain = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    plain = re.sub("[’‘ʼ`´]", "'", plain)
    out = []
    for word in _WORD.findall(plain):
        if word.endswith("'s"):
            word = word[:-2]
        out.append(word.replace("'", ""))
    return out


def w(*forms: str) -> Reference:
    """Any of these word forms."""
    accepted = set(forms)
    return lambda words: any(x in accepted for x in words)


def p(*phrase: str) -> Reference:
    """These words in a row."""
    n = len(phrase)
    return lambda words: any(tuple(words[i : i + n]) == phrase for i in range(len(words)))


def all_of(*refs: Reference) -> Reference:
    return lambda words: all(r(words) for r in refs)


def but_not(ref: Reference, other: Reference) -> Reference:
    return lambda words: ref(words) and not other(words)


@dataclass(frozen=True)
class Case:
    query: str
    reference: Reference
    kind: str  # what the case is about


CASES = (
    # possessives: the name also as Name's / Name’s
    Case("Trump", w("trump"), "possessive"),
    Case("Ford", w("ford"), "possessive"),
    Case("NASA", w("nasa"), "possessive"),
    Case("Epstein", w("epstein"), "possessive"),
    Case("Google", w("google"), "possessive"),
    Case("Swift", w("swift"), "possessive"),
    Case("Stadia", w("stadia"), "possessive"),
    Case("WeWork", w("wework"), "possessive"),
    Case("China", w("china"), "possessive"),
    Case("Schiff", w("schiff"), "possessive"),
    Case("Jupiter", w("jupiter"), "possessive"),
    Case("Korea", w("korea"), "possessive"),
    Case("Russia", w("russia"), "possessive"),
    Case("Musk", w("musk"), "possessive"),
    Case("Bezos", w("bezos"), "possessive"),
    Case("McConnell", w("mcconnell"), "possessive"),
    Case("Kellogg", w("kellogg"), "possessive"),
    Case("Macy", w("macy"), "possessive"),
    # diacritics: written with or without them
    Case("Conde", w("conde"), "diacritics"),
    Case("cliche", w("cliche", "cliches"), "diacritics"),
    Case("Fabergé", w("faberge"), "diacritics"),
    Case("video", w("video", "videos"), "diacritics"),
    # plurals and -ies
    Case("tariff", w("tariff", "tariffs"), "plural"),
    Case("study", w("study", "studies"), "plural"),
    Case("company", w("company", "companies"), "plural"),
    Case("city", w("city", "cities"), "plural"),
    Case("patient", w("patient", "patients"), "plural"),
    Case("game", w("game", "games"), "plural"),
    Case("month", w("month", "months"), "plural"),
    Case("vehicle", w("vehicle", "vehicles"), "plural"),
    Case("charger", w("charger", "chargers"), "plural"),
    Case("bank", w("bank", "banks"), "plural"),
    Case("tariffs", w("tariff", "tariffs"), "plural"),
    Case("companies", w("company", "companies"), "plural"),
    Case("child", w("child", "children"), "plural"),
    Case("woman", w("woman", "women"), "plural"),
    Case("crisis", w("crisis", "crises"), "plural"),
    # hyphenated compounds: the phrase, hyphen or not
    Case('"cost-effective"', p("cost", "effective"), "hyphenated"),
    Case("cost-effective", p("cost", "effective"), "hyphenated"),
    Case('"usb-c"', p("usb", "c"), "hyphenated"),
    Case("wi-fi", p("wi", "fi"), "hyphenated"),
    Case('"US-China"', p("us", "china"), "hyphenated"),
    Case("Rose-Lynn", p("rose", "lynn"), "hyphenated"),
    Case('"long-term"', p("long", "term"), "hyphenated"),
    Case("year-old", p("year", "old"), "hyphenated"),
    # names and words that must not be stemmed, quoted or in an exact field
    Case('"Wells"', w("wells"), "exact"),
    Case('"Jobs"', w("jobs"), "exact"),
    Case('"Times"', w("times"), "exact"),
    Case("text.exact:James", w("james"), "exact"),
    Case('"United States"', p("united", "states"), "exact"),
    # words that must not match other words
    Case("new", w("new"), "must not match"),
    Case("well", w("well", "wells"), "must not match"),
    Case("us", w("us"), "must not match"),
    Case("Mars", w("mars"), "must not match"),
    # structure kept
    Case("Trump AND tariff", all_of(w("trump"), w("tariff", "tariffs")), "boolean"),
    Case("Ford NOT vehicle", but_not(w("ford"), w("vehicle", "vehicles")), "boolean"),
    Case(
        'company AND "United States"',
        all_of(w("company", "companies"), p("united", "states")),
        "boolean",
    ),
)


# --- the run -----------------------------------------------------------------------------------


def _articles(pages: Path, now: datetime) -> dict[str, tuple[Article, list[str]]]:
    truth = json.loads((pages / "ground-truth.json").read_text(encoding="utf-8"))
    out = {}
    for page_id, item in sorted(truth.items()):
        text = item["articleBody"]
        url = f"https://bench.example/{page_id}"
        article = Article(
            url=url,
            canonical_url=url,
            domain="bench.example",
            site_name="bench",
            title=None,
            text=text,
            extraction=ArticleSource.FULL,
            fetched_at=now,
            language="en",
            indexed_at=now,
        )
        out[f"page-{page_id}"] = (article, reference_words(text))
    return out


def _as_written(case: Case) -> RuleSearch:
    """The rule's query as written, on title and text (the standard analyzer)."""
    try:
        return RuleSearch("r", case.query, fields=("title", "text"))
    except TypeError:  # a newsmon from before normalised matching: that is how it searched
        return RuleSearch("r", case.query)


def _score(found: dict[str, set[str]], truth: dict[str, set[str]]) -> tuple[int, int, int]:
    tp = sum(len(found[q] & truth[q]) for q in truth)
    fp = sum(len(found[q] - truth[q]) for q in truth)
    fn = sum(len(truth[q] - found[q]) for q in truth)
    return tp, fp, fn


def _ratio(a: int, b: int) -> float:
    return a / b if b else 1.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=Path, default=PAGES)
    parser.add_argument("--verbose", action="store_true", help="per rule counts")
    args = parser.parse_args()

    settings = Settings.from_env(local_node=local_node_url)
    es = connect(settings)
    names = IndexNames(f"bench-relevance-{uuid.uuid4().hex[:6]}-")
    now = datetime.now(UTC) - timedelta(minutes=5)
    articles = _articles(args.pages, now)
    truth = {
        c.query: {i for i, (_a, words) in articles.items() if c.reference(words)} for c in CASES
    }
    try:
        ensure_indices(es, names, settings.config_dir)
        report = write_articles(es, names, [("create", i, a) for i, (a, _w) in articles.items()])
        assert not report.failed, list(report.failed.items())[:3]
        es.indices.refresh(index=names.articles)
        window = Window(now - timedelta(days=1), now + timedelta(days=1))
        matchers = {
            "newsmon": lambda c: (
                AlertRule(id="r", name="r", query=c.query, recipients=("bench@example.org",)).search
            ),
            "as written": _as_written,
        }
        results = {}
        for label, make in matchers.items():
            listings = [Listing(make(c), window, False) for c in CASES]
            pages = list_matches(es, names, listings, page=len(articles) + 1)
            found: dict[str, set[str]] = {}
            for case, page in zip(CASES, pages, strict=True):
                hits = getattr(page, "hits", None)
                if hits is None:
                    print(f"  {label}: {case.query!r} failed: {page}", file=sys.stderr)
                found[case.query] = {h[0] for h in hits or ()}
            results[label] = found
    finally:
        for index in es.indices.get(index=f"{names.prefix}*", expand_wildcards="all"):
            es.indices.delete(index=index)
        found_templates = es.indices.get_index_template(name=f"{names.prefix}*")
        for template in found_templates.get("index_templates", []):
            es.indices.delete_index_template(name=template["name"])

    pairs = sum(len(t) for t in truth.values())
    print(
        f"{len(CASES)} rules x {len(articles)} articles, {pairs} matching pairs in the truth",
        file=sys.stderr,
    )
    if args.verbose:
        print(
            f"  {'rule':34} {'kind':15} truth  newsmon(fp/fn)  as-written(fp/fn)", file=sys.stderr
        )
        for c in CASES:
            t = truth[c.query]
            cols = []
            for label in matchers:
                f = results[label][c.query]
                cols.append(f"{len(f):3d} ({len(f - t)}/{len(t - f)})")
            print(
                f"  {c.query:34} {c.kind:15} {len(t):5d}  {cols[0]:14}  {cols[1]}", file=sys.stderr
            )
    lines = []
    for label in ("as written", "newsmon"):
        tp, fp, fn = _score(results[label], truth)
        lines.append(
            f"{label}: recall={_ratio(tp, tp + fn):.3f} precision={_ratio(tp, tp + fp):.3f}"
            f" (tp={tp} fp={fp} fn={fn})"
        )
    print(lines[0])
    tp, fp, fn = _score(results["newsmon"], truth)
    print(f"recall={_ratio(tp, tp + fn):.3f} precision={_ratio(tp, tp + fp):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
