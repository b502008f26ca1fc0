# ruff: noqa: RUF002  (curly apostrophes are what this module is about)
"""A rule's Lucene query as Elasticsearch runs it: parsed with luqum, its words normalised like
the indexed words (newsmon.text.terms), its structure kept (docs/matching.md).

- an unquoted word searches ``terms.title``/``terms.text``: folded and plural-stemmed, so
  ``Pakistan`` finds "Pakistan’s" and ``rabbit`` finds "rabbits";
- a quoted phrase, a wildcard, a fuzzy or a regex word, and ``title.exact:``/``text.exact:``,
  search ``exact.title``/``exact.text``: folded, never stemmed (``"Wells"`` is not "well");
- an unquoted hyphenated word is read as the phrase a reader means (``Pak-US`` as
  ``"Pak-US"``), with a warning;
- fields other than title and text are left as written.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

from luqum.exceptions import ParseError
from luqum.parser import parser
from luqum.tree import (
    AndOperation,
    BaseGroup,
    BoolOperation,
    Boost,
    Fuzzy,
    Item,
    Not,
    OrOperation,
    Phrase,
    Plus,
    Prohibit,
    Proximity,
    Range,
    Regex,
    SearchField,
    UnknownOperation,
    Word,
)

from ..text.terms import query_words

__all__ = ["MATCH_FIELDS", "TEXT_FIELDS", "RewrittenQuery", "rewrite_query"]

# what a rule may name -> (the stemmed field, the exact field)
TEXT_FIELDS: dict[str, tuple[str, str]] = {
    "title": ("terms.title", "exact.title"),
    "text": ("terms.text", "exact.text"),
}
EXACT_NAMES = {"title.exact": "exact.title", "text.exact": "exact.text"}
MATCH_FIELDS = ("terms.title", "terms.text", "exact.title", "exact.text")
_WILDCARD = frozenset("*?")


@dataclass(frozen=True)
class RewrittenQuery:
    """The query Elasticsearch runs, and what the reader of the rule should know about it."""

    query: str
    warnings: tuple[str, ...] = ()
    parsed: bool = True  # False: luqum could not read it; the query runs as written
    fields: tuple[str, ...] = field(default_factory=tuple)  # every field the query names


@lru_cache(maxsize=200_000)  # a run asks for each rule's query several times
def rewrite_query(query: str) -> RewrittenQuery:
    """The rule's query with its words normalised (see the module's docstring)."""
    try:
        tree = parser.parse(query)
    except (ParseError, TypeError, ValueError) as exc:
        return RewrittenQuery(query, (f"newsmon cannot read the query ({exc})",), parsed=False)
    writer = _Writer()
    return RewrittenQuery(
        writer.write(tree, None), tuple(writer.warnings), True, tuple(writer.fields)
    )


class _Writer:
    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.fields: list[str] = []

    def write(self, node: Item, scope: str | None) -> str:
        """``node`` as a query string; ``scope`` is the rule's field name around it (title,
        text, title.exact, text.exact) or None."""
        if isinstance(node, SearchField):
            return self._field(node, scope)
        if isinstance(node, BaseGroup):
            return "(" + self.write(node.expr, scope) + ")"
        if isinstance(node, AndOperation):
            return " AND ".join(self.write(o, scope) for o in node.operands)
        if isinstance(node, OrOperation):
            return " OR ".join(self.write(o, scope) for o in node.operands)
        if isinstance(node, UnknownOperation | BoolOperation):
            return " ".join(self.write(o, scope) for o in node.operands)
        if isinstance(node, Not):
            return "NOT " + self.write(node.a, scope)
        if isinstance(node, Prohibit):
            return "-" + self.write(node.a, scope)
        if isinstance(node, Plus):
            return "+" + self.write(node.a, scope)
        if isinstance(node, Boost):
            return self.write(node.expr, scope) + "^" + str(node.force)
        if isinstance(node, Proximity) and isinstance(node.term, Phrase):
            return self._leaf(
                self._phrase(node.term.value), scope, exact=True, suffix=f"~{node.degree}"
            )
        if isinstance(node, Fuzzy) and isinstance(node.term, Word):
            return self._leaf(_fold(node.term.value), scope, exact=True, suffix=f"~{node.degree}")
        if isinstance(node, Phrase):
            return self._leaf(self._phrase(node.value), scope, exact=True)
        if isinstance(node, Regex):
            return self._leaf(node.value, scope, exact=True)
        if isinstance(node, Word):
            return self._word(node.value, scope)
        if isinstance(node, Range):
            return self._leaf(str(node).strip(), scope, exact=True)
        return str(node).strip()  # pragma: no cover (luqum has no other node in a query)

    def _field(self, node: SearchField, scope: str | None) -> str:
        name = node.name
        self.fields.append(name)
        if name in TEXT_FIELDS or name in EXACT_NAMES:
            return "(" + self.write(node.expr, name) + ")"
        return str(node).strip()  # another field: as written (keywords, dates, exists…)

    def _word(self, value: str, scope: str | None) -> str:
        if value == "*" or _WILDCARD & set(value.replace("\\*", "").replace("\\?", "")):
            return self._leaf(_fold(value), scope, exact=True)
        exact = scope in EXACT_NAMES
        found = query_words(value, stemmed=not exact)
        if not found:
            return self._leaf(value, scope, exact=exact)
        if len(found) == 1:
            return self._leaf(found[0], scope, exact=exact)
        if "-" in value:
            self.warnings.append(
                f"unquoted hyphenated word {value!r} is searched as the phrase"
                f' "{value}" (quote it to say so)'
            )
        return self._leaf(
            '"' + " ".join(query_words(value, stemmed=False)) + '"', scope, exact=True
        )

    def _phrase(self, value: str) -> str:
        found = query_words(value[1:-1], stemmed=False)
        return '"' + " ".join(found) + '"' if found else value

    def _leaf(self, term: str, scope: str | None, *, exact: bool, suffix: str = "") -> str:
        """``term`` on the fields it searches in ``scope`` (both title and text without one)."""
        if scope in EXACT_NAMES:
            targets = [EXACT_NAMES[scope]]
        elif scope in TEXT_FIELDS:
            targets = [TEXT_FIELDS[scope][1 if exact else 0]]
        else:
            targets = [pair[1 if exact else 0] for pair in TEXT_FIELDS.values()]
        parts = [f"{target}:{term}{suffix}" for target in targets]
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


def _fold(value: str) -> str:
    """Lower case without diacritics, keeping the characters of the query syntax."""
    text = unicodedata.normalize("NFKD", value.lower())
    return unicodedata.normalize("NFC", "".join(c for c in text if not unicodedata.combining(c)))
