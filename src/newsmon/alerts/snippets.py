"""Snippets made in Python: the fragments of a matched article an email shows, the rule's words
marked, without asking Elasticsearch to highlight (docs/alerts.md, "Speed").

An article's source holds the strings its words were indexed from (``terms.*``/``exact.*``,
newsmon.text.terms): each normalised word sits where its word is in the original text, so a
word the rule searches is found, and marked, at the original's offsets — what the
highlighter's ``matched_fields`` does. The rule's query is read as the presearch reads it
(newsmon.alerts.presearch): its words, prefixes and phrases (a phrase is marked where its words
stand together, a proximity where they stand within its ``~n``); a NOT clause marks nothing.
Unlike the highlighter, a word found by a prefix (``vers*``) is marked too. A rule the
presearch cannot read, and an article in which this module would mark nothing, is highlighted
by Elasticsearch as before (:func:`highlight` returns None).

Fragments are made the way the unified highlighter makes them: passages bounded as
Elasticsearch's ``BoundedBreakIteratorScanner`` bounds them (the sentences around a mark that
fit in ``size`` characters, a longer sentence cut at words), scored as Lucene's
``PassageScorer`` scores them (BM25 over the terms matched: more of the rarer ones, shorter,
earlier), the best ``fragments`` given in the order of the text; without a fragment of the
text, the whole title if it has a mark. Over the 203 snippets of tests/test_alert_snippets.py,
188 are the highlighter's own to the letter; the rest differ in where a passage starts or ends,
or in which passage is taken.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import product
from typing import Any

import regex

from ..text.terms import widen_marks
from .presearch import Need, Unreadable, required

__all__ = ["Marker", "Prepared", "Tokens", "highlight", "marker"]

OPEN, CLOSE = "<em>", "</em>"
K1, B, PIVOT = 1.2, 0.75, 87  # Lucene's PassageScorer
MAX_COMBINATIONS = 1000  # positions tried per first word of a proximity
_TOKEN = re.compile(r"\S+")
_SPACE, _NOT_SPACE = re.compile(r"\s*"), re.compile(r"\S*")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
# where a sentence ends, as Java's sentence BreakIterator reads news text: after ! or ? (and
# closing quotes or brackets) and white space; after a full stop and a line break, or white
# space and a capital; not at a line break alone, nor before a number ("Nov. 18")
_CLOSERS, _OPENERS = "[\"'\u201d\u2019)\\]]*", "[\"'\u201c\u2018(\\[]*"
_SENTENCE_END = regex.compile(
    rf"[!?]+{_CLOSERS}\s+|\.+{_CLOSERS}(?:[^\S\n]*\n\s*|\s+(?={_OPENERS}\p{{Lu}}))"
)


@dataclass(frozen=True)
class Marker:
    """What a rule marks, per match field (``terms.text``, ``exact.title``, …): its words, its
    prefixes, its phrases (words, slop)."""

    words: Mapping[str, frozenset[str]]
    prefixes: Mapping[str, tuple[str, ...]]
    phrases: Mapping[str, tuple[tuple[tuple[str, ...], int], ...]]


def _collect(
    need: Need,
    words: dict[str, set[str]],
    prefixes: dict[str, set[str]],
    phrases: dict[str, set[tuple[tuple[str, ...], int]]],
) -> None:
    if need.op == "term":
        words[need.field].add(need.value)
    elif need.op == "prefix":
        prefixes[need.field].add(need.value)
    elif need.op == "all" and need.value:  # a phrase
        parts = tuple(need.value.split(" "))
        if len(parts) == 1:
            words[need.field].add(parts[0])
        else:
            phrases[need.field].add((parts, need.slop))
    else:  # "all", "any": their parts; "none" (NOT, or no restriction): nothing to mark
        for part in need.parts:
            _collect(part, words, prefixes, phrases)


@lru_cache(maxsize=200_000)
def marker(query: str) -> Marker | None:
    """What the rewritten rule query ``query`` marks, or None when the presearch cannot read it."""
    try:
        need = required(query)
    except Unreadable:
        return None
    words: dict[str, set[str]] = defaultdict(set)
    prefixes: dict[str, set[str]] = defaultdict(set)
    phrases: dict[str, set[tuple[tuple[str, ...], int]]] = defaultdict(set)
    _collect(need, words, prefixes, phrases)
    return Marker(
        {k: frozenset(v) for k, v in words.items()},
        {k: tuple(sorted(v)) for k, v in prefixes.items()},
        {k: tuple(sorted(v)) for k, v in phrases.items()},
    )


def _ends(pattern: re.Pattern[str], text: str, at: int) -> int:
    """Where ``pattern`` (which matches the empty string too) ends, matched at ``at``."""
    found = pattern.match(text, at)
    return found.end() if found else at


class Tokens:
    """One indexed string (its tokens are what white space separates, as the ``whitespace``
    analyzer splits it): words are found by searching it; positions are counted only for a
    proximity."""

    def __init__(self, indexed: str) -> None:
        self.indexed = indexed
        self._starts: list[int] | None = None  # where each token starts, once asked

    def _whole(self, word: str, *, prefix: bool = False) -> list[tuple[int, int]]:
        """Where ``word`` is a token (``prefix``: where a token starts with it), by plain
        string search: no pattern to compile for each of a run's many words."""
        text, found = self.indexed, []
        at = text.find(word)
        while at != -1:
            end = at + len(word)
            if at == 0 or text[at - 1].isspace():
                if prefix:
                    found.append((at, _ends(_NOT_SPACE, text, end)))
                elif end == len(text) or text[end].isspace():
                    found.append((at, end))
            at = text.find(word, end)
        return found

    def find(self, kind: str, words: tuple[str, ...]) -> list[tuple[int, int]]:
        """The offsets of a token (``kind`` "word"), a token starting so ("prefix"), or tokens
        one after the other ("phrase")."""
        if kind != "phrase":
            return self._whole(words[0], prefix=kind == "prefix")
        text, found = self.indexed, []
        for start, first_end in self._whole(words[0]):
            end = first_end
            for word in words[1:]:
                at = _ends(_SPACE, text, end)
                if at == end or not text.startswith(word, at):
                    break
                end = at + len(word)
                if end < len(text) and not text[end].isspace():
                    break
            else:
                found.append((start, end))
        return found

    def marks(self, scope: str, marker: Marker) -> set[tuple[int, int, str]]:
        """What ``marker`` marks on the field ``scope``: (start, end, the term matched) of
        words, prefixed words, phrases (a phrase's words as one mark, as the highlighter marks
        a phrase)."""
        out: set[tuple[int, int, str]] = set()
        for word in marker.words.get(scope, ()):
            out.update((a, b, f"{scope}:{word}") for a, b in self.find("word", (word,)))
        for prefix in marker.prefixes.get(scope, ()):
            found = self.find("prefix", (prefix,))
            out.update((a, b, f"{scope}:{self.indexed[a:b]}") for a, b in found)
        for parts, slop in marker.phrases.get(scope, ()):
            found = self.find("phrase", parts) if slop == 0 else sorted(self._near(parts, slop))
            out.update((a, b, f"{scope}:{' '.join(parts)}") for a, b in found)
        return out

    def _near(self, parts: Sequence[str], slop: int) -> set[tuple[int, int]]:
        """A proximity: Lucene's sloppy phrase, the shortest match from each first word."""
        found: set[tuple[int, int]] = set()
        held = [self.find("word", (p,)) for p in parts]
        if not all(held):
            return found
        if self._starts is None:
            self._starts = [m.start() for m in _TOKEN.finditer(self.indexed)]
        starts = self._starts
        spans: dict[int, tuple[int, int]] = {}  # position -> offsets of the words found
        at: list[list[int]] = []
        for offsets in held:
            positions = [bisect.bisect_left(starts, a) for a, _ in offsets]
            spans.update(zip(positions, offsets, strict=True))
            at.append(positions)
        for anchor in at[0]:
            near = [
                [p for p in ps if anchor + n - slop <= p <= anchor + n + slop]
                for n, ps in enumerate(at)
            ]
            if not all(near):
                continue
            best = None
            if math.prod(map(len, near)) > MAX_COMBINATIONS:
                flat = [p for ps in near for p in ps]  # more marked, never less
                best = (min(flat), max(flat))
            else:
                for combination in product(*near):
                    if len(set(combination)) < len(combination):
                        continue
                    shifts = [p - n for n, p in enumerate(combination)]
                    span = (min(combination), max(combination))
                    if max(shifts) - min(shifts) <= slop and (
                        best is None or span[1] - span[0] < best[1] - best[0]
                    ):
                        best = span
            if best is not None:
                found.add((spans[best[0]][0], spans[best[1]][1]))
        return found


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


class Prepared:
    """One article, read once for all the rules that snippet it: its title and text, the
    :class:`Tokens` of its match fields, its sentence breaks (found when first asked)."""

    def __init__(self, source: Mapping[str, Any]) -> None:
        self.texts = {
            name: value
            for name in ("title", "text")
            if isinstance(value := source.get(name), str) and value
        }
        self.tokens: dict[str, Tokens] = {}
        for group in ("terms", "exact"):
            for name, value in (source.get(group) or {}).items():
                if isinstance(value, str):
                    self.tokens[f"{group}.{name}"] = Tokens(value)
        # an indexed string's positions are the original's UTF-16 offsets (Elasticsearch's):
        # the original's code points where it has no character beyond the BMP, else mapped
        self.code_points: dict[str, list[int]] = {
            name: _code_points(text) for name, text in self.texts.items() if _ASTRAL.search(text)
        }
        self.mapped = not any(_ASTRAL.search(t.indexed) for t in self.tokens.values())
        self._breaks: dict[str, list[int]] = {}

    def sentences(self, name: str) -> list[int]:
        """The sentence breaks of the field ``name``."""
        if name not in self._breaks:
            text = self.texts[name]
            found = [m.end() for m in _SENTENCE_END.finditer(text)]
            self._breaks[name] = [0, *found, len(text)]
        return self._breaks[name]


def _matches(article: Prepared, name: str, marker: Marker) -> list[tuple[int, int, str]]:
    """What ``marker`` marks in the field ``name`` of ``article``, through the field's two
    match fields (``terms.name``, ``exact.name``): (start, end, term), in order; two terms may
    mark the same words (a phrase and one of its words), which the highlighter counts apart."""
    found: set[tuple[int, int, str]] = set()
    for scope in (f"terms.{name}", f"exact.{name}"):
        tokens = article.tokens.get(scope)
        if tokens is not None:
            found |= tokens.marks(scope, marker)
    at = article.code_points.get(name)
    if at is not None:
        found = {(at[min(a, len(at) - 1)], at[min(b, len(at) - 1)], t) for a, b, t in found}
    return sorted(found)


def _code_points(text: str) -> list[int]:
    """Per UTF-16 offset of ``text`` (and its end), the code point it falls in."""
    out: list[int] = []
    for index, char in enumerate(text):
        out += [index, index] if char > "\uffff" else [index]
    out.append(len(text))
    return out


def _preceding(breaks: list[int], offset: int) -> int:
    """The last break before ``offset`` (Java's ``BreakIterator.preceding``)."""
    return breaks[max(bisect.bisect_left(breaks, offset) - 1, 0)]


def _following(breaks: list[int], offset: int) -> int | None:
    """The first break after ``offset``, None at the end (``BreakIterator.following``)."""
    at = bisect.bisect_right(breaks, offset)
    return breaks[at] if at < len(breaks) else None


def _kind(char: str) -> int:
    return 0 if char.isalnum() or char == "_" else 1 if char.isspace() else 2


def _word_following(text: str, offset: int) -> int | None:
    """The first word break after ``offset``: where a run of word characters or of white
    space ends; each other character is a piece of its own."""
    if offset >= len(text):
        return None
    kind = _kind(text[offset])
    end = offset + 1
    if kind != 2:
        while end < len(text) and _kind(text[end]) == kind:
            end += 1
    return end


def _word_preceding(text: str, offset: int) -> int:
    """The last word break before ``offset`` (see :func:`_word_following`)."""
    at = offset - 1
    if at <= 0:
        return 0
    kind = _kind(text[at])
    if kind != 2:
        while at > 0 and _kind(text[at - 1]) == kind:
            at -= 1
    return at


def _passages(
    text: str, marks: list[tuple[int, int]], size: int, sentences: list[int]
) -> list[tuple[int, int]]:
    """The passages of ``text`` around ``marks``, bounded as Elasticsearch bounds them
    (``BoundedBreakIteratorScanner``, from the middle of each mark that starts a passage): the
    sentences from the mark's that fit in ``size`` characters; in a longer sentence, the words
    from ``size`` before the mark, or from the sentence's start, up to ``size`` in all; the rest
    of a window of sentences when the next mark is in it. A mark inside a passage joins it.
    ``sentences``: the sentence breaks of ``text``."""
    out: list[tuple[int, int]] = []
    window_start = window_end = -1
    inner_start = inner_end = 0
    for mark_start, mark_end in marks:
        if out and mark_start < out[-1][1]:
            continue
        offset = mark_start + (mark_end - mark_start) // 2 + 1
        if window_start < offset < window_end:  # the next passage of the same window
            inner_start, inner_end = inner_end, window_end
        else:
            inner_start = _preceding(sentences, offset)
            target = offset + max(0, size - (offset - inner_start))
            ends_before = target + 1 <= len(text)
            inner_end = _preceding(sentences, target + 1) if ends_before else len(text)
            if inner_start == inner_end:  # no sentence ends within size: the one that ends after
                inner_end = _following(sentences, target) or len(text)
            window_start, window_end = inner_start, inner_end
        if inner_end - inner_start > size:  # too long: words around the mark instead
            if offset - size > inner_start:
                inner_start = max(inner_start, _word_preceding(text, offset - size))
            remaining = max(0, size - (offset - inner_start))
            if offset + remaining < window_end:
                inner_end = min(window_end, _word_following(text, offset + remaining) or len(text))
        out.append((inner_start, max(inner_end, mark_end)))
    return out


def _ranked(
    text: str, matches: list[tuple[int, int, str]], passages: list[tuple[int, int]]
) -> list[tuple[float, int, int]]:
    """(minus the score, start, end) of each passage, scored as Lucene's ``PassageScorer``
    scores them (BM25 over the terms matched, shorter and earlier passages first)."""
    total = Counter(term for *_, term in matches)
    documents = 1 + len(text) / PIVOT
    weight = {
        w: (K1 + 1) * math.log(1 + (documents + 0.5) / (1 + min(documents, n) + 0.5))
        for w, n in total.items()
    }
    out = []
    for start, end in passages:
        inside = Counter(term for a, b, term in matches if a < end and b > start)
        norm = K1 * ((1 - B) + B * (end - start) / PIVOT)
        score = sum(weight[w] * n / (n + norm) for w, n in inside.items())
        out.append((-score * (1 + 1 / math.log(PIVOT + start)), start, end))
    return out


def _fragment(text: str, start: int, end: int, marks: list[tuple[int, int]]) -> str:
    pieces, at = [], start
    for mark_start, mark_end in marks:
        if mark_end <= start or mark_start >= end:
            continue
        pieces += [text[at:mark_start], OPEN, text[mark_start:mark_end], CLOSE]
        at = mark_end
    pieces.append(text[at:end])
    return widen_marks("".join(pieces).strip())


def highlight(
    marker: Marker, article: Prepared, *, fragments: int, size: int
) -> dict[str, list[str]] | None:
    """The article's highlighted fragments by field (``text``, else ``title`` whole), as
    Elasticsearch's highlighter gives them; None when Elasticsearch has to make them (nothing
    marked, or indexed words beyond the BMP, whose offsets this module does not map)."""
    if not article.mapped:
        return None
    text = article.texts.get("text")
    if text:
        matches = _matches(article, "text", marker)
        if matches:
            marks = _merged([(a, b) for a, b, _ in matches])
            passages = _passages(text, marks, size, article.sentences("text"))
            ranked = sorted(_ranked(text, matches, passages))[:fragments]
            best = sorted(ranked, key=lambda p: p[1])
            return {"text": [_fragment(text, start, end, marks) for _, start, end in best]}
    title = article.texts.get("title")
    if title:
        matches = _matches(article, "title", marker)
        if matches:
            marks = _merged([(a, b) for a, b, _ in matches])
            return {"title": [_fragment(title, 0, len(title), marks)]}
    return None
