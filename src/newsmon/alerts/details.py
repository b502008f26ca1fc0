"""What an alert shows of each new (rule, story): the story's first matching article in the
rule's window — its fields — and, for the stories an email lists, highlighted snippets.

Most of it needs no search per rule (docs/alerts.md, "Speed"). The matching pass counted, per
rule and story, the story's articles in the window that match; the stories' articles in the
window are read once for all rules sharing it. Where the two numbers agree, every article of
the story matches and the first one is the earliest indexed; otherwise (some articles do not
match), and for rules whose snippets Elasticsearch makes, the rule's own search finds it
(``collapse`` by story). Snippets are made in Python (:mod:`.snippets`) where that module reads
the rule, from the words the articles were indexed with, read once per article; the rest, and
every article in which it marks nothing, Elasticsearch's highlighter makes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from time import monotonic
from typing import Any

from ..store import Client, IndexNames, alerting
from . import snippets as local
from .report import RunReport
from .rules import AlertRule

__all__ = ["MAX_ITEMS", "SNIPPETS", "Match", "RuleWindow", "first_articles", "snippets"]

MAX_ITEMS = 50  # stories listed (with snippets) in one email; the rest are counted and linked
SNIPPETS = 2  # highlighted fragments per story
MAX_SNIPPET_CHARS = 400
WORD_FIELDS = ("title", "text", "terms", "exact")  # what snippets made in Python read


@dataclass(frozen=True)
class RuleWindow:
    rule: AlertRule
    span: alerting.Window  # start exclusive, end inclusive


@dataclass
class Match:
    """One story a rule matched in its window."""

    key: str  # the story id, or the article id for an article without one
    has_story: bool
    articles: int = 0  # matching articles of the story in the window
    article_id: str | None = None  # known for an article without a story id


def snippets(highlight: Mapping[str, Sequence[str]]) -> list[str]:
    """The snippets of a story: highlighted fragments of the text, else of the title."""
    fragments = list(highlight.get("text") or [])[:SNIPPETS] or list(highlight.get("title") or [])
    return [f[:MAX_SNIPPET_CHARS] for f in fragments[:SNIPPETS]]


def _known_firsts(
    es: Client,
    names: IndexNames,
    windows: Mapping[str, RuleWindow],
    new: Mapping[str, Sequence[Match]],
) -> dict[tuple[str, str], tuple[str, Mapping[str, Any]]]:
    """Per (rule id, story key) of ``new``: the first article, where it is known without the
    rule's search — an article without a story (listed by id), or the earliest of a story all
    of whose articles in the window match."""
    stories: dict[alerting.Window, set[str]] = defaultdict(set)
    loose: set[str] = set()
    for rule_id, found in new.items():
        for match in found:
            if match.has_story:
                stories[windows[rule_id].span].add(match.key)
            elif match.article_id:
                loose.add(match.article_id)
    members = {span: alerting.story_members(es, names, span, ids) for span, ids in stories.items()}
    fields = [*alerting.ITEM_FIELDS, "story_id"]
    by_id = alerting.article_sources(es, names, loose, fields) if loose else {}
    out: dict[tuple[str, str], tuple[str, Mapping[str, Any]]] = {}
    for rule_id, found in new.items():
        span = windows[rule_id].span
        for match in found:
            if match.has_story:
                of_story = members[span].get(match.key)
                if of_story and len(of_story) == match.articles:
                    out[(rule_id, match.key)] = of_story[0]
            elif match.article_id in by_id:
                out[(rule_id, match.key)] = (match.article_id, by_id[match.article_id])
    return out


def first_articles(
    es: Client,
    names: IndexNames,
    windows: Mapping[str, RuleWindow],
    new: Mapping[str, Sequence[Match]],
    report: RunReport,
    *,
    local_snippets: bool,
) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (rule id, story key) of ``new``: the fields of the story's first matching article in
    the window, ``article_id``, and ``snippets`` — for the first :data:`MAX_ITEMS` stories of a
    rule (what its email lists); an empty list for the others."""
    started = monotonic()
    markers: dict[str, local.Marker] = {}  # the rules whose snippets are made here
    if local_snippets:
        for rule_id in new:
            marker = local.marker(windows[rule_id].rule.search.query)
            if marker is not None:
                markers[rule_id] = marker
    read = {rule_id: found for rule_id, found in new.items() if rule_id in markers}
    known = _known_firsts(es, names, windows, read) if read else {}
    report.counts["first_articles_known"] += len(known)

    requests: list[alerting.FirstArticles] = []
    for rule_id, found in new.items():
        window = windows[rule_id]
        listed, rest = found[:MAX_ITEMS], found[MAX_ITEMS:]
        for part, highlight in ((listed, rule_id not in markers), (rest, False)):
            part = [m for m in part if (rule_id, m.key) not in known]
            stories = tuple(m.key for m in part if m.has_story)
            loose = tuple(m.article_id for m in part if not m.has_story and m.article_id)
            for ids, by_story in ((stories, True), (loose, False)):
                if ids:
                    requests.append(
                        alerting.FirstArticles(
                            window.rule.search, window.span, ids, by_story, highlight
                        )
                    )
    out: dict[tuple[str, str], dict[str, Any]] = {
        key: {**src, "article_id": article_id, "snippets": []}
        for key, (article_id, src) in known.items()
    }
    again: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)  # rule -> article -> detail
    answers = alerting.first_articles(es, names, requests, fragments=SNIPPETS)
    for request, answer in zip(requests, answers, strict=True):
        rule_id = request.search.rule_id
        if isinstance(answer, alerting.Failed):
            report.problem(f"rule {rule_id}: article search failed: {answer.reason}")
            continue
        for article in answer:
            src = article.source
            detail = out[(rule_id, src.get("story_id") or article.article_id)] = {
                **src,
                "article_id": article.article_id,
                "snippets": snippets(article.highlight),
            }
            if request.highlight and not detail["snippets"]:
                again[rule_id][article.article_id] = detail
    report.timed("first_articles", started)

    started = monotonic()
    to_mark = [
        (rule_id, out[(rule_id, m.key)])
        for rule_id, found in read.items()
        for m in found[:MAX_ITEMS]
        if (rule_id, m.key) in out
    ]
    marked_ids = [detail["article_id"] for _, detail in to_mark]
    words = alerting.article_sources(es, names, marked_ids, WORD_FIELDS)
    prepared = {article_id: local.Prepared(source) for article_id, source in words.items()}
    for rule_id, detail in to_mark:
        words_of = prepared.get(detail["article_id"])
        marked = None
        if words_of is not None:
            marked = local.highlight(
                markers[rule_id], words_of, fragments=SNIPPETS, size=alerting.FRAGMENT_CHARS
            )
        if marked is None:  # nothing marked here: Elasticsearch highlights it
            again[rule_id][detail["article_id"]] = detail
        else:
            detail["snippets"] = snippets(marked)
            report.counts["snippets_local"] += 1
    retry = [(windows[rule_id].rule.search, list(details)) for rule_id, details in again.items()]
    highlighted = alerting.highlight_in_full(es, names, retry, fragments=SNIPPETS)
    for details, found_again in zip(again.values(), highlighted, strict=True):
        for article_id, fragments in found_again.items():
            details[article_id]["snippets"] = snippets(fragments)
    report.counts["snippets_full_pass"] += sum(len(d) for d in again.values())
    report.timed("snippets", started)
    return out
