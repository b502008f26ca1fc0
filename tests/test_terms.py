# ruff: noqa: RUF001  (curly apostrophes are what these tests are about)
"""The normalisation of words (newsmon.text.terms) and the rewriting of rule queries
(newsmon.alerts.query): pure logic; tests/test_matching_es.py runs them on the real node."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from newsmon.alerts.query import rewrite_query
from newsmon.text.terms import aligned, fold, query_words, stem, widen_marks, words


@pytest.mark.parametrize(
    ("word", "folded"),
    [
        ("Pakistan’s", "pakistan"),
        ("Pakistan's", "pakistan"),
        ("SPACEX'S", "spacex"),
        ("Café", "cafe"),
        ("O’Brien", "obrien"),
        ("Łódź", "lodz"),
    ],
)
def test_fold(word: str, folded: str) -> None:
    assert fold(word) == folded


@pytest.mark.parametrize(
    ("word", "stemmed"),
    [
        ("rabbits", "rabbit"),
        ("studies", "study"),
        ("boxes", "box"),
        ("churches", "church"),
        ("classes", "class"),
        ("agrees", "agree"),
        ("children", "child"),
        ("women", "woman"),
        ("news", "news"),
        ("crisis", "crisis"),
        ("status", "status"),
        ("gas", "gas"),
        ("united", "united"),
        ("days", "day"),
        ("covid19", "covid19"),
    ],
)
def test_stem_takes_off_plurals_only(word: str, stemmed: str) -> None:
    assert stem(word) == stemmed


def test_aligned_keeps_every_word_where_it_is() -> None:
    text = "SpaceX’s Starship 😀 flew; the rabbits’ Café"
    stemmed = aligned(text, stemmed=True)
    assert stemmed == "spacex   starship    flew  the rabbit   cafe"
    assert aligned(text, stemmed=False).split() == [
        "spacex",
        "starship",
        "flew",
        "the",
        "rabbits",
        "cafe",
    ]


@given(st.text(max_size=200))
def test_aligned_has_the_length_and_word_starts_of_the_original(text: str) -> None:
    def units(s: str) -> int:
        return len(s.encode("utf-16-le")) // 2

    for stemmed in (True, False):
        out = aligned(text, stemmed=stemmed)
        assert units(out) == units(text)
        starts = {units(text[: w.start]) for w in words(text)}
        found = {
            units(out[:i]) for i, c in enumerate(out) if c != " " and (i == 0 or out[i - 1] == " ")
        }
        assert found <= starts


def test_query_words_and_marks() -> None:
    assert query_words("Pak-US", stemmed=False) == ["pak", "us"]
    assert query_words("Rabbits’", stemmed=True) == ["rabbit"]
    assert widen_marks("the <em>rabbit</em>s of <em>Pakistan</em>’s") == (
        "the <em>rabbits</em> of <em>Pakistan</em>’s"
    )


@pytest.mark.parametrize(
    ("query", "rewritten"),
    [
        ("Pakistan’s", "(terms.title:pakistan OR terms.text:pakistan)"),
        ('"Wells"', '(exact.title:"wells" OR exact.text:"wells")'),
        ("text.exact:Wells", "(exact.text:wells)"),
        ("title:(rabbits OR Café)", "((terms.title:rabbit OR terms.title:cafe))"),
        ("rabbits NOT domain:x.org", "(terms.title:rabbit OR terms.text:rabbit) NOT domain:x.org"),
        ("-a +b~1", "-(terms.title:a OR terms.text:a) +(exact.title:b~1 OR exact.text:b~1)"),
        ('"x y"~3^2', '(exact.title:"x y"~3 OR exact.text:"x y"~3)^2'),
        ("published_at:[2020-01-01 TO *]", "published_at:[2020-01-01 TO *]"),
        ("Rabb*", "(exact.title:rabb* OR exact.text:rabb*)"),
    ],
)
def test_rewrite_keeps_the_structure(query: str, rewritten: str) -> None:
    result = rewrite_query(query)
    assert result.query == rewritten and not result.warnings


def test_rewrite_warns_on_unquoted_hyphenated_words() -> None:
    result = rewrite_query("Pak-US AND ties")
    assert result.query.startswith('(exact.title:"pak us" OR exact.text:"pak us") AND')
    assert len(result.warnings) == 1 and "'Pak-US'" in result.warnings[0]
    assert not rewrite_query('"Pak-US"').warnings


def test_a_query_luqum_cannot_read_runs_as_written() -> None:
    result = rewrite_query("(a OR")
    assert not result.parsed and result.query == "(a OR"
