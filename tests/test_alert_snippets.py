# ruff: noqa: RUF001  (curly apostrophes are part of what is tested)
"""Snippets made in Python (newsmon.alerts.snippets): the rule's words marked where the
indexed words say they are, and on the real node, the same decisions as Elasticsearch's
highlighter with marks it makes too."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from newsmon.alerts import AlertRule, AlertSettings, decide
from newsmon.alerts.query import rewrite_query
from newsmon.alerts.snippets import Prepared, highlight, marker
from newsmon.config import ConfigError, Settings
from newsmon.store import IndexNames
from newsmon.store.articles import match_fields
from newsmon.text.terms import fold, widen_marks

from .helpers.alerts import article_doc, ledger_docs, write_articles
from .helpers.rulesets import decided_both_ways, stored

_MARK = re.compile(r"<em>(.*?)</em>")
MATCH = ("terms", "exact")


def _snippets(query: str, text: str, title: str = "A title") -> dict[str, list[str]] | None:
    found = marker(rewrite_query(query).query)
    assert found is not None, query
    source = {"title": title, "text": text}
    source.update(match_fields(source))
    return highlight(found, Prepared(source), fragments=2, size=180)


def _marked(query: str, text: str) -> list[str]:
    found = _snippets(query, text) or {}
    return [m for f in found.get("text", []) for m in _MARK.findall(f)]


def test_a_word_marks_its_folded_and_plural_forms_the_possessive_outside() -> None:
    text = "Pakistan’s army met. Rabbits ran to the Café in Pakistan."
    found = _snippets("Pakistan OR rabbit OR cafe", text)
    assert found == {
        "text": [
            "<em>Pakistan</em>’s army met. <em>Rabbits</em> ran to the <em>Café</em> in"
            " <em>Pakistan</em>."
        ]
    }


def test_a_phrase_marks_its_words_only_where_they_stand_together() -> None:
    text = "The ties were cut. Defence spending rose. Pakistan-US defence ties grew."
    assert _marked('"defence ties"', text) == ["defence ties"]  # one mark, as the highlighter's
    assert _marked('"defence ties"~2', "Defence and trade ties. Ties.") == [
        "Defence and trade ties"
    ]
    assert _marked('"ties defence"~3', "Defence and trade ties.") == []  # 4 moves away


def test_not_marks_nothing_and_prefixes_mark_whole_words() -> None:
    text = "Floods hit the dams. The flood damaged a river bank."
    assert _marked("dam* NOT river", text) == ["dams", "damaged"]
    assert _marked("flood AND NOT bank", text) == ["Floods", "flood"]


def test_fragments_are_the_best_two_passages_in_text_order() -> None:
    filler = "Nothing to see in this sentence at all. " * 6
    text = (
        f"The river rose. {filler}\nA flood and a river and a dam met. {filler}\n"
        f"A dam broke and the flood came. {filler}"
    )
    found = _snippets("flood OR river OR dam", text)
    assert found is not None
    first, second = found["text"]
    assert first.startswith("A <em>flood</em> and a <em>river</em>")
    assert second.startswith("A <em>dam</em> broke")
    assert all(len(_MARK.sub(r"\1", f)) <= 190 for f in found["text"])


def test_a_long_sentence_is_cut_near_the_fragment_size_around_its_mark() -> None:
    words = " ".join(f"word{n}" for n in range(200))
    text = f"{words} flood {words}."
    [fragment] = (_snippets("flood", text) or {})["text"]
    assert "<em>flood</em>" in fragment
    assert len(_MARK.sub(r"\1", fragment)) <= 200


def test_the_title_is_given_when_the_text_has_no_mark() -> None:
    assert _snippets("title:flood", "Nothing here.", "Flood warning") == {
        "title": ["<em>Flood</em> warning"]
    }


def test_what_it_cannot_do_is_left_to_elasticsearch() -> None:
    assert marker(rewrite_query("flod~1").query) is None  # fuzzy: unread
    assert _snippets("flood", "No such word here.", "Nor here") is None  # nothing marked
    assert _snippets("flood", "A flood 𝔘 and 𝔘 more: 𒀀.") is None  # a word beyond the BMP


def test_marks_stay_on_their_words_after_characters_beyond_the_bmp() -> None:
    text = "Fans 🎉🎉 cheered. The flood 😀 came, then the river."
    assert _snippets("flood OR river", text) == {
        "text": ["The <em>flood</em> 😀 came, then the <em>river</em>."]  # 🎉🎉 count 4 there
    }


def test_the_switch_comes_from_the_environment() -> None:
    assert AlertSettings.from_env(Settings(), {}).local_snippets is True
    env = {"NEWSMON_ALERTS_LOCAL_SNIPPETS": "false"}
    assert AlertSettings.from_env(Settings(), env).local_snippets is False
    with pytest.raises(ConfigError):
        AlertSettings.from_env(Settings(), {"NEWSMON_ALERTS_LOCAL_SNIPPETS": "maybe"})


# --- the real node ------------------------------------------------------------------------------


def _all_marks(es: Elasticsearch, names: IndexNames, doc: dict[str, Any]) -> set[str]:
    """Every word Elasticsearch's highlighter marks in the article, for the rule's query."""
    query = rewrite_query(doc["query"]).query
    response = es.search(
        index=names.articles,
        query={
            "bool": {
                "must": [{"query_string": {"query": query}}],
                "filter": [{"ids": {"values": [doc["article_id"]]}}],
            }
        },
        highlight={
            "fields": {
                name: {
                    "number_of_fragments": 0,
                    "matched_fields": [f"terms.{name}", f"exact.{name}"],
                }
                for name in ("title", "text")
            }
        },
    )
    [hit] = response["hits"]["hits"]
    fragments = [widen_marks(f) for found in hit["highlight"].values() for f in found]
    return {m for f in fragments for m in _MARK.findall(f)}


def test_a_story_shows_its_first_article_that_matches(es: Elasticsearch, names: IndexNames) -> None:
    """Where every article of a story in the window matches, the earliest is taken without a
    search; where only some do, the rule's search finds the first of those."""
    start = datetime.now(UTC) - timedelta(minutes=5)
    at = [(start + timedelta(seconds=n)).isoformat() for n in range(4)]
    write_articles(
        es,
        names,
        article_doc(1, "Rain", "The river rose.", story_id="s1", indexed_at=at[0]),
        article_doc(2, "Rain", "A flood came.", story_id="s1", indexed_at=at[1]),
        article_doc(3, "More rain", "A flood came.", story_id="s2", indexed_at=at[3]),
        article_doc(4, "More rain", "A flood, again.", story_id="s2", indexed_at=at[2]),
        article_doc(5, "Alone", "A flood alone.", story_id=None),
    )
    rule = AlertRule(id="flood", name="Flood", query="flood", recipients=("d@example.org",))
    options = AlertSettings(lag=timedelta(0), first_lookback=timedelta(hours=1))
    report = decide(es, names, [rule], options, now=datetime.now(UTC) + timedelta(seconds=1))
    assert not report.problems
    assert report.counts["first_articles_known"] == 2  # s2 (both match) and the lone article
    found = {d["story_id"]: d for d in ledger_docs(es, names, rule_id="flood")}
    assert found["s1"]["article_id"] == "article-2"  # article-1 does not match
    assert found["s2"]["article_id"] == "article-4"  # the earlier of the two
    assert found["article-5"]["article_id"] == "article-5"
    assert all(d["snippets"] and "<em>flood</em>" in d["snippets"][0] for d in found.values())


def _prefixes(query: str) -> list[str]:
    found = marker(rewrite_query(query).query)
    return [p for ps in found.prefixes.values() for p in ps] if found else []


def test_local_snippets_decide_what_the_highlighter_decides_marking_what_it_marks(
    es: Elasticsearch, names: IndexNames, settings: Settings
) -> None:
    local, plain, plain_names = decided_both_ways(
        es, names, settings, {"local_snippets": True}, {"local_snippets": False}
    )
    assert local.counts["snippets_local"] >= 50
    assert plain.counts["snippets_local"] == 0
    mine, theirs = (
        stored(es, names.index("alert-ledger")),
        stored(es, plain_names.index("alert-ledger")),
    )
    assert mine.keys() == theirs.keys()
    same = prefixed = 0
    for doc_id, doc in theirs.items():
        assert {**mine[doc_id], "snippets": None} == {**doc, "snippets": None}, doc_id
        if doc.get("snippets"):
            assert mine[doc_id]["snippets"], doc_id  # a story with snippets keeps them
            marks = {m for s in mine[doc_id]["snippets"] for m in _MARK.findall(s)}
            # the highlighter marks no prefix match through matched fields; snippets made here do
            prefixes = _prefixes(doc["query"])
            extra = {m for m in marks if any(fold(m).startswith(p) for p in prefixes)}
            assert marks and marks - extra <= _all_marks(es, names, mine[doc_id]), doc_id
            prefixed += bool(extra)
        same += mine[doc_id]["snippets"] == doc.get("snippets")
    print(f"snippets: {same} of {len(theirs)} as the highlighter's, {prefixed} mark prefixes")
    assert same >= 0.9 * len(theirs)  # 188 of 203 are the highlighter's own, to the letter
