"""The presearch: rules that no article of their window can match are not searched at all.

The idea of Lucene's Monitor (Luwak), applied to a batch: the words each new article was
indexed with (its ``terms.*``/``exact.*`` strings, split on whitespace as the ``whitespace``
analyzer splits them) are read once per window and indexed in Python, one bit per article; each
rule's query, as Elasticsearch runs it (newsmon.alerts.query), is evaluated over those bits as
a *superset* of what it can match:

- a word on a match field: the articles holding that word; a prefix (``abc*``): those holding a
  word that starts with it; a phrase or a proximity: those holding all its words;
- AND: the intersection; OR and the implicit operator: the union, AND binding tighter (as
  luqum reads it; Lucene requires the clauses next to an AND, which is never wider);
- NOT: no restriction, and nothing added to a union (Lucene's MUST_NOT only excludes);
- the rule's filters (feeds, domains, languages, tags): the articles with one of the values.

A rule whose superset is empty cannot match and is not searched: it matched nothing. Only what
this module can read exactly is screened — words of ``[a-z0-9]`` (one token for the standard
analyzer, which the match fields search with), phrases of such words, prefixes of such words,
on the four match fields. A rule with anything else anywhere in its query (a fuzzy word, a
regex, a range, a boost, ``+``/``-``, another field) is searched as before, as is every rule of
a window with more than :data:`MAX_ARTICLES` articles.
"""

from __future__ import annotations

import bisect
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..store import Client, IndexNames
from ..store.alert_batch import FILTER_FIELDS, INDEXED_FIELDS, WindowArticle, window_articles
from ..store.alerting import RuleSearch, Window
from .report import RunReport

__all__ = ["MAX_ARTICLES", "Batch", "Screen", "Unreadable", "required", "screen"]

log = logging.getLogger(__name__)

MAX_ARTICLES = 9999  # articles per window read for the presearch (one search)
MAX_WINDOWS = 3  # windows read per run (rules share windows; the rest are searched as before)
MAX_TOKEN = 255  # the whitespace and standard tokenizers cut longer tokens in pieces
_TERM = re.compile(r"[a-z0-9]{1,255}")
_JAVA_SPACE = re.compile(r"[^\S\xa0\u2007\u202f\x85]+")
_PREFIX = re.compile(r"([a-z0-9]{1,255})\*")


class Unreadable(Exception):
    """A query (or a part of it) the presearch does not read exactly: the rule is searched."""


# --- what a query needs, as a tree of leaves ------------------------------------------------


@dataclass(frozen=True)
class Need:
    """What a query needs of an article: ``op`` "term" (``value`` on ``field``), "prefix",
    "all" (every part), "any" (one part), or "none" (no restriction: NOT)."""

    op: str
    field: str = ""
    value: str = ""
    parts: tuple[Need, ...] = ()
    slop: int = 0  # of a phrase ("all" of its words, ``field`` and ``value`` set): its ``~n``


EVERYTHING = Need("none")
NEGATED = Need("none", value="not")  # a NOT clause: no restriction, and none in a union


# The rewritten queries (newsmon.alerts.query) are read here directly: brackets, AND, OR, NOT,
# the implicit operator, and leaves "field:word", "field:prefix*", 'field:"a phrase"' (~n).
_TOKEN = re.compile(
    r"\s*(?:(?P<open>\()|(?P<close>\))|(?P<op>AND|OR|NOT)(?=[\s()]|$)"
    r'|(?P<field>[a-z]+\.[a-z]+):(?:(?P<phrase>"[^"\\]*")(?:~(?P<slop>\d+))?|(?P<word>[^\s()"\\]+))'
    r"(?=[\s()]|$))"
)


def required(query: str) -> Need:
    """What an article must hold to match ``query`` (a rewritten rule query); raises
    :class:`Unreadable` for what this module does not read exactly."""
    tokens: list[tuple[str, str, str, int]] = []  # (kind, field, value, a phrase's ~n)
    at = 0
    text = query.rstrip()
    while at < len(text):
        found = _TOKEN.match(text, at)
        if found is None or found.end() == at:
            raise Unreadable(f"at {text[at : at + 30]!r}")
        at = found.end()
        if found["open"] or found["close"]:
            tokens.append((found["open"] or found["close"], "", "", 0))
        elif found["op"]:
            tokens.append((found["op"], "", "", 0))
        else:
            value = found["phrase"] or found["word"]
            tokens.append(("leaf", found["field"], value, int(found["slop"] or 0)))
    reader = _Reader(tokens)
    need = reader.any()
    if reader.at != len(tokens):
        raise Unreadable("unbalanced")
    return need


class _Reader:
    """AND binds tighter than OR and the implicit operator (as luqum reads it: never narrower
    than Lucene's reading, see the module's docstring)."""

    def __init__(self, tokens: list[tuple[str, str, str, int]]) -> None:
        self.tokens = tokens
        self.at = 0

    def _peek(self) -> str | None:
        return self.tokens[self.at][0] if self.at < len(self.tokens) else None

    def any(self) -> Need:
        # a NOT clause of a sequence only excludes (Lucene's MUST_NOT): it adds no article
        parts = [self.all()]
        while self._peek() not in (None, ")"):
            if self._peek() == "OR":
                self.at += 1
            parts.append(self.all())
        kept = [p for p in parts if p is not NEGATED] or [EVERYTHING]
        return kept[0] if len(kept) == 1 else Need("any", parts=tuple(kept))

    def all(self) -> Need:
        parts = [self.one()]
        while self._peek() == "AND":
            self.at += 1
            parts.append(self.one())
        return parts[0] if len(parts) == 1 else Need("all", parts=tuple(parts))

    def one(self) -> Need:
        kind = self._peek()
        if kind is None or kind in (")", "AND", "OR"):
            raise Unreadable("operator without an operand")
        kind, name, value, slop = self.tokens[self.at]
        self.at += 1
        if kind == "NOT":
            self.one()  # readable, or the rule is searched (its errors stay its own)
            return NEGATED
        if kind == "(":
            need = self.any()
            if self._peek() != ")":
                raise Unreadable("unbalanced")
            self.at += 1
            return need
        if name not in INDEXED_FIELDS:
            raise Unreadable(f"field {name}")
        if value.startswith('"'):
            return _phrase(value, name, slop)
        if _TERM.fullmatch(value):
            return Need("term", name, value)
        prefix = _PREFIX.fullmatch(value)
        if prefix:
            return Need("prefix", name, prefix.group(1))
        raise Unreadable(f"word {value!r}")


def _phrase(value: str, scope: str, slop: int) -> Need:
    words = value[1:-1].split(" ")
    if not all(_TERM.fullmatch(w) for w in words):
        raise Unreadable(f"phrase {value}")
    parts = tuple(Need("term", scope, w) for w in words)
    return Need("all", scope, " ".join(words), parts, slop)


def _leaves(need: Need) -> Iterable[Need]:
    if need.op in ("term", "prefix"):
        yield need
    for part in need.parts:
        yield from _leaves(part)


# --- the batch: one bit per article ---------------------------------------------------------


def _tokens(indexed: str) -> list[str]:
    """Every token Elasticsearch can have made of ``indexed`` (repeats possible): split where
    Java's ``Character.isWhitespace`` splits (not at no-break spaces) and where Python splits,
    long tokens also in the tokenizer's pieces (a superset)."""
    found = indexed.split()
    if not indexed.isascii():
        found += [t for t in _JAVA_SPACE.split(indexed) if t]
    if found and max(map(len, found)) > MAX_TOKEN:
        for token in [t for t in found if len(t) > MAX_TOKEN]:
            found += [token[i : i + MAX_TOKEN] for i in range(0, len(token), MAX_TOKEN)]
    return found


@dataclass
class Batch:
    """The articles of one window as bits: per match field, the words they hold; per filter
    field, the values."""

    articles: list[WindowArticle]
    words: dict[str, dict[str, int]] = field(default_factory=dict)  # field -> word -> bits
    vocabulary: dict[str, list[str]] = field(default_factory=dict)  # field -> sorted words
    values: dict[str, dict[str, int]] = field(default_factory=dict)  # filter field -> value

    @classmethod
    def of(cls, articles: Sequence[WindowArticle], needs: Iterable[Need]) -> Batch:
        """Index ``articles`` for the leaves of ``needs`` (only the words they ask for)."""
        wanted: dict[str, set[str]] = defaultdict(set)
        prefixes: dict[str, set[str]] = defaultdict(set)
        for need in needs:
            for leaf in _leaves(need):
                (wanted if leaf.op == "term" else prefixes)[leaf.field].add(leaf.value)
        batch = cls(list(articles))
        for name in INDEXED_FIELDS:
            tokens = [_tokens(a.indexed.get(name, "")) for a in articles]
            if prefixes[name]:
                batch.vocabulary[name] = sorted(set().union(*tokens))
            asked = wanted[name] | set(batch._expand(name, prefixes[name]))
            words: dict[str, int] = defaultdict(int)
            for bit, held in enumerate(tokens):
                for word in asked.intersection(held):
                    words[word] |= 1 << bit
            batch.words[name] = dict(words)
        values: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for bit, article in enumerate(articles):
            for name, found in article.values.items():
                for value in found:
                    values[name][value] |= 1 << bit
        batch.values = {k: dict(v) for k, v in values.items()}
        return batch

    @property
    def all(self) -> int:
        return (1 << len(self.articles)) - 1

    def _expand(self, name: str, prefixes: Iterable[str]) -> Iterable[str]:
        vocabulary = self.vocabulary.get(name, [])
        for prefix in prefixes:
            at = bisect.bisect_left(vocabulary, prefix)
            while at < len(vocabulary) and vocabulary[at].startswith(prefix):
                yield vocabulary[at]
                at += 1

    def bits(self, need: Need) -> int:
        """The articles that may match ``need`` (a superset)."""
        if need.op == "term":
            return self.words[need.field].get(need.value, 0)
        if need.op == "prefix":
            found = 0
            for word in self._expand(need.field, [need.value]):
                found |= self.words[need.field].get(word, 0)
            return found
        if need.op == "all":
            found = self.all
            for part in need.parts:
                found &= self.bits(part)
                if not found:
                    break
            return found
        if need.op == "any":
            found = 0
            for part in need.parts:
                found |= self.bits(part)
            return found
        return self.all  # "none": no restriction

    def filtered(self, filters: Sequence[tuple[str, Sequence[str]]]) -> int:
        """The articles the rule's term filters let through."""
        found = self.all
        for name, wanted in filters:
            if not wanted:
                continue
            if name not in FILTER_FIELDS:
                continue  # a filter field not read: no restriction
            have = self.values.get(name, {})
            union = 0
            for value in wanted:
                union |= have.get(value, 0)
            found &= union
        return found


# --- the screen of one run ------------------------------------------------------------------


@dataclass
class Screen:
    """What the presearch found for a run: the rules it showed cannot match."""

    skipped: set[str] = field(default_factory=set)


def screen(
    es: Client,
    names: IndexNames,
    searches: Sequence[tuple[RuleSearch, Window]],
    report: RunReport,
    min_rules: int = 1,
) -> Screen:
    """Read the articles of the windows shared by ``min_rules`` rules or more (the
    :data:`MAX_WINDOWS` most shared) and find the rules none of them can match."""
    out = Screen()
    by_window: dict[Window, list[RuleSearch]] = defaultdict(list)
    for search, window in searches:
        by_window[window].append(search)
    shared = sorted(by_window.items(), key=lambda item: -len(item[1]))[:MAX_WINDOWS]
    shared = [(window, rules) for window, rules in shared if len(rules) >= min_rules]
    for window, rules in shared:
        articles = window_articles(es, names, window, limit=MAX_ARTICLES)
        if articles is None:
            report.counts["presearch_windows_too_large"] += 1
            continue
        needs: dict[str, Need] = {}
        for search in rules:
            try:
                needs[search.rule_id] = required(search.query)
            except Unreadable:
                report.counts["presearch_unread"] += 1
        batch = Batch.of(articles, needs.values())
        for search in rules:
            need = needs.get(search.rule_id)
            if need is None:
                continue
            let_through = batch.filtered(search.filters)
            if not let_through or not batch.bits(need) & let_through:
                out.skipped.add(search.rule_id)
    report.counts["presearch_skipped"] += len(out.skipped)
    if shared:
        log.info("alerts: presearch skipped %d of %d rule(s)", len(out.skipped), len(searches))
    return out
