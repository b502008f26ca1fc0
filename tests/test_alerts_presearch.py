"""The alerts presearch: the rules it skips could not have matched, so a run with it decides
exactly what a run without it decides (the same ledger documents, snippets included, and the
same rule states), on the real node, over real article texts and a varied rule set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from elasticsearch import Elasticsearch

from newsmon.alerts import AlertRule, AlertSettings, decide
from newsmon.alerts.actions import honoured
from newsmon.alerts.presearch import Batch, Need, Unreadable, required
from newsmon.alerts.query import rewrite_query
from newsmon.config import ConfigError, Settings
from newsmon.store import IndexNames, ledger
from newsmon.store.actions import action_id, put_action
from newsmon.store.alert_batch import WindowArticle

from .helpers.alerts import article_doc, write_articles
from .helpers.rulesets import decided_both_ways, stored


def _need(query: str) -> Need:
    return required(rewrite_query(query).query)


def _batch(*texts: str, **values: tuple[str, ...]) -> Batch:
    articles = [
        WindowArticle(f"a{n}", values, {"terms.text": text, "exact.text": text})
        for n, text in enumerate(texts)
    ]
    return Batch.of(articles, [_need(q) for q in ("flood", "river", "dam*", '"flood river"')])


def test_required_reads_words_phrases_prefixes_and_the_operators() -> None:
    batch = _batch("flood     river  ", "dams   damage", "river")
    assert batch.bits(_need("flood AND river")) == 0b001
    assert batch.bits(_need("flood OR river")) == 0b101
    assert batch.bits(_need('"flood river"')) == 0b001
    assert batch.bits(_need("dam*")) == 0b010
    assert batch.bits(_need("flood NOT river")) == 0b001  # NOT only excludes: no restriction
    assert batch.bits(_need("NOT flood")) == 0b111
    assert batch.bits(_need("river OR NOT flood")) == 0b101
    assert batch.bits(_need("flood AND dam*")) == 0
    assert batch.bits(_need("flood river")) == 0b101  # the implicit operator is OR


@pytest.mark.parametrize(
    "query",
    ["flod~1", "/flo.d/", "feed_id:wire AND flood", "flood^2", "+flood -river", "x:[a TO b]"],
)
def test_what_it_cannot_read_exactly_is_searched(query: str) -> None:
    with pytest.raises(Unreadable):
        _need(query)


def test_tokens_split_where_java_splits_not_at_no_break_spaces() -> None:
    batch = Batch.of(
        [WindowArticle("a0", {}, {"terms.text": "flood\u00a0river dam"})],
        [_need("flood"), _need("dam")],
    )
    assert batch.bits(_need("dam")) == 1
    assert batch.bits(_need("flood")) == 1  # a superset: Python's split finds it too


def test_the_presearch_waits_for_enough_rules_in_a_window(
    es: Elasticsearch, names: IndexNames
) -> None:
    write_articles(es, names, article_doc(1, "Floods", "The river flooded the town."))
    rules = [
        AlertRule(id=f"r{n}", name="r", query=q, recipients=("desk@example.org",))
        for n, q in enumerate(["zzyzx", "river", "qwertz"])
    ]
    now = datetime.now(UTC) + timedelta(seconds=1)
    options = AlertSettings(lag=timedelta(0), first_lookback=timedelta(hours=1), presearch_from=4)
    report = decide(es, names, rules, options, now=now)
    assert report.counts["presearch_skipped"] == 0 and report.counts["stories_decided"] == 1
    later = AlertSettings(lag=timedelta(0), first_lookback=timedelta(hours=1), presearch_from=3)
    again = decide(es, names, rules, later, now=now + timedelta(seconds=1))
    assert again.counts["rules_evaluated"] == 3  # a new window: the last second, no article
    assert again.counts["presearch_skipped"] == 3


def test_the_threshold_comes_from_the_environment() -> None:
    assert AlertSettings.from_env(Settings(), {}).presearch_from == 20_000
    env = {"NEWSMON_ALERTS_PRESEARCH_FROM": "0"}
    assert AlertSettings.from_env(Settings(), env).presearch_from == 0
    with pytest.raises(ConfigError) as error:
        AlertSettings.from_env(Settings(), {"NEWSMON_ALERTS_PRESEARCH_FROM": "many"})
    assert error.value.field == "NEWSMON_ALERTS_PRESEARCH_FROM"


def test_filters_restrict_by_their_values() -> None:
    batch = _batch("flood", "flood", feed_id=("wire",))
    assert batch.filtered((("feed_id", ("wire",)),)) == 0b11
    assert batch.filtered((("feed_id", ("local",)),)) == 0
    assert batch.filtered((("language", ("en",)),)) == 0  # no article has the field


# --- the real node ------------------------------------------------------------------------------


def test_the_presearch_decides_exactly_what_the_plain_path_decides(
    es: Elasticsearch, names: IndexNames, settings: Settings
) -> None:
    fast, plain, plain_names = decided_both_ways(
        es, names, settings, {"presearch_from": 1}, {"presearch_from": 0}
    )
    assert fast.counts["presearch_skipped"] >= 4  # the rules with words no article holds
    assert fast.counts["presearch_unread"] >= 3  # fuzzy, regex, +/-: searched
    assert plain.counts["presearch_skipped"] == 0
    assert "presearch" in fast.seconds and "presearch" not in plain.seconds
    assert plain.counts["stories_decided"] >= 50
    assert fast.counts["stories_decided"] == plain.counts["stories_decided"]
    for name in ("alert-ledger", "alert-state"):
        mine, theirs = stored(es, names.index(name)), stored(es, plain_names.index(name))
        assert mine.keys() == theirs.keys()
        for doc_id, doc in theirs.items():
            assert mine[doc_id] == doc, doc_id
    ledger = stored(es, names.index("alert-ledger"))
    assert sum(1 for d in ledger.values() if d.get("snippets")) >= 50
    states = stored(es, names.index("alert-state"))
    assert states["r000"]["last_matches"] == 0  # skipped, and its window advanced all the same


def test_actions_of_more_rules_than_a_terms_query_takes(
    es: Elasticsearch, names: IndexNames
) -> None:
    """A run of 100,000 rules asks for the mutes of all of them (65,536 values at most per
    terms query): asked a few at a time, the mute of the last rule is found."""
    doc = {"kind": "mute", "rule_id": "r99999", "story_id": "s1"}
    put_action(es, names, action_id("mute", "r99999", "s1"), doc)
    rule_ids = [f"r{n:05d}" for n in range(100_000)]
    assert honoured(es, names, rule_ids).muted == {("r99999", "s1")}


def test_many_decisions_are_written_in_parallel_streams_and_once(
    es: Elasticsearch, names: IndexNames
) -> None:
    count = ledger.PARALLEL_FROM + 500
    docs = {
        f"d{n}": {"kind": "story", "rule_id": "r1", "story_id": f"s{n}", "status": "pending"}
        for n in range(count)
    }
    first = ledger.create_decisions(es, names, docs)
    assert sorted(first.ok) == sorted(docs) and not first.failed and not first.conflicts
    assert ledger.decided(es, names, docs) == set(docs)  # searchable at once
    again = ledger.create_decisions(es, names, docs)
    assert sorted(again.conflicts) == sorted(docs) and not again.ok and not again.failed
