# ruff: noqa: RUF001, RUF003  (curly apostrophes are what these tests are about)
"""Rules match like a reader, on the real node: possessives, plurals, case, diacritics, curly
quotes, hyphenated words, exact names; highlights in the original text; checks; Kibana's default
fields; an index from an older template gaining the fields (newsmon.text.terms, alerts.query).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from newsmon.alerts import AlertRule, preview
from newsmon.config import Settings, load_feeds
from newsmon.dev.demo import DemoPage, DemoSite
from newsmon.pipeline import ingest
from newsmon.store import IndexNames, ensure_indices, load_template

from .helpers.alerts import article_doc, write_articles
from .helpers.paths import REPO

pytestmark = pytest.mark.es

TEXTS = {
    1: ("Pakistan’s army chief", "Pakistan’s army chief met the envoy. Talks went well."),
    2: ("Budget", "Pakistan's budget was passed. Rabbits and studies were not discussed."),
    3: ("Rabbit farm", "A rabbit farm opened in the city near the Café Royal."),
    4: ("Starship", "SpaceX’s Starship flew. Mr Wells said the Pak-US talks were cost-effective."),
    5: ("Weather", "The well ran dry; NEWS from the cafe: a study of rabbits’ burrows."),
    6: ("Markets", "Stocks fell. Nothing about the other words here: us, pak and new."),
}


def _rule(query: str) -> AlertRule:
    return AlertRule(id="r", name="r", query=query, recipients=("a@example.org",))


def _matches(es: Elasticsearch, names: IndexNames, query: str) -> set[int]:
    found = preview(es, names, _rule(query), since=timedelta(days=1), time_field="indexed_at")
    return {int(str(s["url"]).rsplit("/", 1)[1]) for s in found.samples}


@pytest.fixture(scope="module")
def written(es: Elasticsearch) -> Iterator[IndexNames]:
    """The articles of TEXTS, written once for the module (in indices of its own)."""
    names = IndexNames(f"test-matching-{uuid.uuid4().hex[:8]}-")
    ensure_indices(es, names, REPO / "config")
    try:
        write_articles(es, names, *(article_doc(n, t, x) for n, (t, x) in TEXTS.items()))
        yield names
    finally:
        for index in es.indices.get(index=f"{names.prefix}*", expand_wildcards="all"):
            es.indices.delete(index=index)
        found = es.indices.get_index_template(name=f"{names.prefix}*")
        for template in found.get("index_templates", []):
            es.indices.delete_index_template(name=template["name"])


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Pakistan", {1, 2}),  # ’s and 's
        ("pakistan", {1, 2}),  # case
        ("PAKISTAN’S", {1, 2}),  # the possessive in the query too
        ("rabbit", {2, 3, 5}),  # plural, plural possessive
        ("rabbits", {2, 3, 5}),
        ("study", {2, 5}),  # -ies
        ("cafe", {3, 5}),  # diacritics
        ("Café", {3, 5}),
        ('"SpaceX\'s Starship"', {4}),  # a straight quote in the rule, a curly one in the text
        ("title:rabbit", {3}),
        ("text:rabbits AND NOT title:farm", {2, 5}),  # structure kept
        ("rabbit NOT study", {3}),
        ('"Pak-US"', {4}),
        ("Pak-US", {4}),  # read as the phrase, not pak OR us
        ("cost-effective", {4}),
        ("news", {5}),  # not "new"
        ("new", {6}),
        ("rabb*", {2, 3, 5}),
    ],
)
def test_words_match_as_a_reader_reads_them(
    es: Elasticsearch, written: IndexNames, query: str, expected: set[int]
) -> None:
    assert _matches(es, written, query) == expected


def test_exact_names_are_not_stemmed(es: Elasticsearch, written: IndexNames) -> None:
    assert _matches(es, written, "Wells") == {1, 4, 5}  # unquoted: Wells, well
    assert _matches(es, written, '"Wells"') == {4}  # quoted: the name only
    assert _matches(es, written, "text.exact:Wells") == {4}
    assert _matches(es, written, "title.exact:rabbit") == {3}
    assert _matches(es, written, '"rabbit"') == {3}  # not rabbits


def test_highlights_mark_the_matched_words_in_the_original_text(
    es: Elasticsearch, written: IndexNames
) -> None:
    found = preview(es, written, _rule("SpaceX OR rabbit OR cafe"), since=timedelta(days=1))
    snippets = {str(s["url"]).rsplit("/", 1)[1]: s["snippets"] for s in found.samples}
    assert any("<em>SpaceX</em>’s Starship" in s for s in snippets["4"])
    assert any("<em>Rabbits</em> and studies" in s for s in snippets["2"])
    assert any("<em>rabbits</em>’ burrows" in s for s in snippets["5"])
    assert any("<em>cafe</em>" in s for s in snippets["5"])
    assert any("<em>Café</em> Royal" in s for s in snippets["3"])


def test_kibana_searches_without_a_field_find_the_possessive(
    es: Elasticsearch, written: IndexNames
) -> None:
    """Kibana sends query_string without fields: the index's default fields answer it."""
    hits = es.search(
        index=written.articles, query={"query_string": {"query": "Pakistan AND rabbit"}}
    )["hits"]["hits"]
    assert {h["_id"] for h in hits} == {"article-2"}


def test_ingested_pages_match_possessives_and_plurals(
    es: Elasticsearch, settings: Settings, names: IndexNames, news_pages: list[DemoPage]
) -> None:
    with DemoSite(news_pages, feed_count=2) as site:
        Path(settings.feeds_file).write_text(site.feeds_yaml())
        ingest(load_feeds(settings.feeds_file), settings, client=es)
    es.indices.refresh(index=names.articles)
    spacex = preview(es, names, _rule("SpaceX"), since=timedelta(days=1), time_field="indexed_at")
    marked = [s for sample in spacex.samples for s in sample["snippets"]]
    assert any("<em>SpaceX</em>'s Starship" in s for s in marked), marked
    singular = preview(es, names, _rule("rabbit"), since=timedelta(days=1), time_field="indexed_at")
    plural = preview(es, names, _rule("rabbits"), since=timedelta(days=1), time_field="indexed_at")
    indexed = es.search(index=names.articles, size=500, source_includes=["title", "text"])
    with_either = {
        h["_id"]
        for h in indexed["hits"]["hits"]
        if re.search(
            r"\brabbits?\b", f"{h['_source'].get('title')} {h['_source'].get('text')}", re.I
        )
    }
    assert len(with_either) >= 4
    assert singular.articles == plural.articles == len(with_either)  # rabbit or rabbits


def test_an_index_from_an_older_template_gains_the_fields(
    es: Elasticsearch, settings: Settings
) -> None:
    names = IndexNames(settings.index_prefix)
    old = load_template(settings.config_dir, "articles")["template"]
    mappings: dict[str, Any] = old["mappings"]
    properties = {k: v for k, v in mappings["properties"].items() if k not in ("terms", "exact")}
    es.indices.create(
        index=f"{names.articles}-000001",
        mappings={**mappings, "properties": properties},
        aliases={names.articles: {"is_write_index": True}},
    )
    ensure_indices(es, names, settings.config_dir)
    mapping = es.indices.get_mapping(index=names.articles)
    (body,) = mapping.values()
    assert body["mappings"]["properties"]["terms"]["properties"]["text"]["analyzer"] == "whitespace"
    write_articles(es, names, article_doc(1, *TEXTS[1]))
    assert _matches(es, names, "Pakistan") == {1}


def test_check_warns_and_rejects_and_run_skips_the_same_rules(
    es: Elasticsearch,
    settings: Settings,
    names: IndexNames,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from newsmon.cli import main

    Path(settings.feeds_file).write_text(
        "feeds:\n  - id: dawn\n    name: Dawn\n    url: https://www.dawn.com/feeds/home\n"
        "    tags: [pakistan]\n"
    )
    rules = tmp_path / "alerts.yaml"
    base = "    recipients: [a@example.org]\n"
    rules.write_text(
        "alerts:\n"
        "  - id: hyphen\n    name: H\n    query: Pak-US AND ties\n"
        + base
        + "  - id: headline\n    name: U\n    query: 'headline:floods'\n"
        + base
        + "  - id: feed\n    name: F\n    query: floods\n    filters: {feeds: [dwan]}\n"
        + base
        + "  - id: tag\n    name: T\n    query: floods\n    filters: {tags: [pakistn]}\n"
        + base
        + "  - id: good\n    name: G\n    query: floods\n"
        "    filters: {feeds: [dawn], tags: [pakistan]}\n" + base
    )
    for key, value in {
        "NEWSMON_ES_URL": settings.es_url,
        "NEWSMON_INDEX_PREFIX": settings.index_prefix,
        "NEWSMON_CONFIG_DIR": settings.config_dir,
        "NEWSMON_FEEDS": settings.feeds_file,
        "NEWSMON_ALERTS": str(rules),
        "NEWSMON_SMTP_HOST": "127.0.0.1",
        "NEWSMON_SMTP_PORT": "9",  # nothing is due: no email is sent
        "NEWSMON_ALERTS_LAG": "0s",
    }.items():
        monkeypatch.setenv(key, value)
    write_articles(
        es, names, article_doc(1, "Floods", "Floods in Sindh.", feed_id="dawn", tags=["pakistan"])
    )

    assert main(["alerts", "check"]) == 2
    err = capsys.readouterr().err
    assert "warning:" in err and "'Pak-US'" in err and "alerts[0] (id 'hyphen').query" in err
    assert "alerts[1] (id 'headline').query: articles have no field 'headline'" in err
    assert "alerts[2] (id 'feed').filters.feeds: no feed in" in err and "'dwan'" in err
    assert "alerts[3] (id 'tag').filters.tags" in err and "'pakistn'" in err
    assert "(id 'good')" not in err

    assert main(["alerts", "run"]) == 1  # the same three rules are not run, the others are
    out, err = capsys.readouterr()
    for rule_id in ("headline", "feed", "tag"):
        assert f"rule {rule_id} not run" in out
    assert "rule hyphen not run" not in out and "rule good not run" not in out
    assert "'Pak-US'" in err
    ledger = es.search(index=names.index("alert-ledger"), size=10)["hits"]["hits"]
    assert {h["_source"]["rule_id"] for h in ledger} == {"good"}


def test_the_normalised_fields_are_written_with_the_document() -> None:
    from newsmon.article import Article, ArticleSource
    from newsmon.store.articles import to_document

    now = datetime.now(UTC)
    doc = to_document(
        Article(
            url="https://x.example/1",
            canonical_url="https://x.example/1",
            domain="x.example",
            site_name="x",
            title="Pakistan’s rabbits",
            text="Café 😀 owners’ studies",
            extraction=ArticleSource.FULL,
            fetched_at=now,
        )
    )
    assert doc["terms"] == {"title": "pakistan   rabbit ", "text": "cafe    owner   study  "}
    assert doc["exact"]["title"] == "pakistan   rabbits"


def test_preview_uses_the_window_run_uses_and_says_what_lies_outside(
    es: Elasticsearch, names: IndexNames
) -> None:
    """Back-dated articles indexed now: run would send them, so preview shows them by default;
    by published_at it says they are outside the window, and the days are the days asked."""
    now = datetime.now(UTC) + timedelta(minutes=1)  # the articles are indexed before it
    old = (now - timedelta(days=30)).isoformat()
    write_articles(
        es,
        names,
        *(article_doc(n, f"Floods {n}", "Floods in Sindh.", published_at=old) for n in range(4)),
    )
    rule = _rule("flood")
    default = preview(es, names, rule, since=timedelta(days=7), now=now)
    assert default.time_field == "indexed_at" and default.articles == 4
    assert len(default.per_day) == 7 and default.outside == 0
    published = preview(
        es, names, rule, since=timedelta(days=7), time_field="published_at", now=now
    )
    assert published.articles == 0 and published.outside == 4
    assert len(published.per_day) == 7
    assert "4 more matching article(s) outside this window" in published.render()
