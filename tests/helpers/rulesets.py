"""A varied alert rule set over real article texts (the presearch's and the snippets' tests):
phrases, proximity, NOT, OR, the implicit operator, fields, exact fields, prefixes, fuzzy and
regex words, every filter, words no article holds; articles in pairs sharing a story."""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from newsmon.alerts import AlertRule, AlertSettings, RuleFilters, RunReport, decide
from newsmon.config import Settings
from newsmon.store import IndexNames, ensure_indices

from .alerts import article_doc, write_articles
from .paths import NEWS_PAGES

FEEDS = ("wire", "local", "sport")


def news_texts() -> list[tuple[str, str]]:
    """(title, text) of 80 hand-marked articles of the shared news pages."""
    truth = json.loads((NEWS_PAGES / "ground-truth.json").read_text("utf-8"))
    out = []
    for value in truth.values():
        text = value["articleBody"].strip()
        if len(text) > 300:
            out.append((text.split("\n", 1)[0][:150], text))
    return out[:80]


def varied_articles(texts: list[tuple[str, str]], rng: random.Random) -> list[Any]:
    """An article per text, with varied filter fields; pairs share a story, some have none."""
    docs = []
    for n, (title, text) in enumerate(texts):
        fields: dict[str, Any] = {
            "language": "fr" if n % 7 == 0 else "en",
            "feed_id": FEEDS[n % 3],
            "domain": f"outlet{n % 9}.example",
            "tags": ["test", "odd"] if n % 2 else ["test"],
            "story_id": None if n % 11 == 0 else f"story-{n // 2}",  # pairs share a story
        }
        docs.append(article_doc(n, title, text, **fields))
    rng.shuffle(docs)
    return docs


def varied_rules(texts: list[tuple[str, str]], rng: random.Random) -> list[AlertRule]:
    """About 150 rules: fixed edge cases, then random ones of nine kinds."""
    words = sorted({w.lower() for _, text in texts for w in re.findall(r"\b[A-Za-z]{4,}\b", text)})
    names = sorted({w for _, t in texts for w in re.findall(r"\b[A-Z][a-z]{3,}\b", t)})
    pairs = sorted(
        {m.group(0) for _, t in texts for m in re.finditer(r"\b[a-z]{4,} [a-z]{4,}\b", t)}
    )
    w = lambda: rng.choice(words)  # noqa: E731
    queries = [
        "zzyzx AND qwertz",  # no article holds these
        "zzyzx OR qwertz",
        '"zzyzx qwertz"',
        "qwertz*",
        "flod~1 AND zzyzx",  # unreadable: searched
        "/zzy.x/",
        "Café OR Pakistan\u2019s",
        "Pak-US",
        "2024 AND 2025",
        "+zzyzx government",
        "title.exact:Minister OR text.exact:said",
    ]
    for _ in range(140):
        kind = rng.randrange(9)
        if kind == 0:
            queries.append(f"{w()} AND {w()}")
        elif kind == 1:
            queries.append(" OR ".join(rng.choice(names) for _ in range(2)))
        elif kind == 2:
            queries.append(f'"{rng.choice(pairs)}"')
        elif kind == 3:
            queries.append(f"({w()} OR {w()}) AND {rng.choice(names)} NOT {w()}")
        elif kind == 4:
            queries.append(f"{w()[:4]}* AND {w()}")
        elif kind == 5:
            queries.append(f'"{rng.choice(pairs)}"~4')
        elif kind == 6:
            queries.append(f"title:{w()} OR {rng.choice(names)}")
        elif kind == 7:
            queries.append(f"{w()} {w()} AND {w()}")
        else:
            queries.append(f"text:{w()} AND NOT title:{w()}")
    rules = []
    for n, query in enumerate(queries):
        filters = RuleFilters(
            languages=("en",) if n % 5 == 0 else (),
            feeds=(FEEDS[n % 3],) if n % 4 == 0 else (),
            domains=(f"outlet{n % 9}.example",) if n % 10 == 3 else (),
            tags=("odd",) if n % 13 == 0 else (),
        )
        rules.append(
            AlertRule(
                id=f"r{n:03d}",
                name=f"rule {n}",
                query=query,
                filters=filters,
                recipients=("desk@example.org",),
            )
        )
    return rules


def stored(es: Elasticsearch, index: str) -> dict[str, dict[str, Any]]:
    """Every document of ``index`` by id (10,000 at most)."""
    es.indices.refresh(index=index)
    hits = es.search(index=index, query={"match_all": {}}, size=10_000)["hits"]["hits"]
    return {h["_id"]: h["_source"] for h in hits}


def decided_both_ways(
    es: Elasticsearch,
    names: IndexNames,
    settings: Settings,
    first: dict[str, Any],
    second: dict[str, Any],
) -> tuple[RunReport, RunReport, IndexNames]:
    """The varied rule set decided over the same articles twice, with the alert settings
    ``first`` into ``names`` and ``second`` into indices of their own (returned with the two
    reports); neither run may report a problem."""
    rng = random.Random(16)
    texts = news_texts()
    docs = varied_articles(texts, rng)
    other = IndexNames(f"{names.prefix}other-")
    ensure_indices(es, other, settings.config_dir)
    write_articles(es, names, *docs)
    write_articles(es, other, *docs)
    rules = varied_rules(texts, rng)
    now = datetime.now(UTC) + timedelta(seconds=1)
    reports = []
    for changes, where in ((first, names), (second, other)):
        options = AlertSettings(lag=timedelta(0), first_lookback=timedelta(hours=1), **changes)
        reports.append(decide(es, where, rules, options, now=now))
        assert not reports[-1].problems
    return reports[0], reports[1], other
