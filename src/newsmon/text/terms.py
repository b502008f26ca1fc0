# ruff: noqa: RUF001, RUF002, RUF003  (curly apostrophes are what this module is about)
"""Words as a reader matches them: one normalisation for the index and for rule queries.

Every article's title and text are also indexed as two *aligned* strings (docs/matching.md):

- ``exact``: each word folded — lower case, diacritics and curly quotes gone, a possessive
  ``'s``/``’s`` taken off (``Pakistan’s`` → ``pakistan``, ``Café`` → ``cafe``);
- ``terms``: the same words, plurals reduced by a light English stemmer (``rabbits`` →
  ``rabbit``, ``studies`` → ``study``, ``boxes`` → ``box``).

An aligned string has the length of the original (in UTF-16 code units, as Elasticsearch counts
offsets) and each normalised word starts where the word starts in the original; everything else
is spaces. Indexed with the ``whitespace`` analyzer, its tokens carry the original's offsets, so
the highlighter marks the words of the original text (``matched_fields``). Only core
Elasticsearch analysis is involved, so a bare node and a full cluster give the same results.

Rule queries go through the same functions (:func:`query_words`), so a query word and an indexed
word meet in the same form.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

import regex

__all__ = ["Word", "aligned", "fold", "query_words", "stem", "widen_marks", "words"]

# A word: letters, digits and combining marks, with apostrophes inside (O'Brien, Pakistan’s).
_WORD = regex.compile(r"[\p{L}\p{N}\p{M}]+(?:['’ʼ‘`´][\p{L}\p{N}\p{M}]+)*")
_APOSTROPHES = "'’ʼ‘`´"
_ONE_CHAR = regex.compile(r"[\p{Han}\p{Hiragana}]")  # the standard tokenizer's one-char words
_MARKS = regex.compile(r"\p{M}+")
_NOT_WORD = regex.compile(r"[^\p{L}\p{N}]+")  # what compatibility forms bring (´ → space + mark)
_LETTERS = {"ł": "l", "ø": "o", "đ": "d", "ħ": "h", "ı": "i", "ŀ": "l"}
_MARKED_END = regex.compile(r"</em>([\p{L}\p{N}\p{M}]+)")

# Words ending in s that are not plurals (or whose stem would be another common word).
_NOT_PLURAL = frozenset(
    [
        "news",
        "series",
        "species",
        "always",
        "perhaps",
        "whereas",
        "besides",
        "towards",
        "afterwards",
        "means",
        "lens",
        "does",
        "goes",
        "politics",
        "economics",
        "physics",
        "mathematics",
        "athletics",
        "ethics",
        "chess",
        "bias",
        "atlas",
        "thanks",
        "headquarters",
    ]
)
_ES_PLURALS = ("sses", "shes", "ches", "xes", "zzes")
_IRREGULAR = {
    "children": "child",
    "women": "woman",
    "men": "man",
    "lives": "life",
    "wives": "wife",
    "knives": "knife",
    "wolves": "wolf",
    "halves": "half",
    "crises": "crisis",
    "analyses": "analysis",
    "theses": "thesis",
    "feet": "foot",
    "teeth": "tooth",
    "mice": "mouse",
    "geese": "goose",
}


@dataclass(frozen=True)
class Word:
    """A word of a text: where it is (code points, end exclusive) and its folded form."""

    start: int
    end: int
    folded: str


def fold(word: str) -> str:
    """Lower case, without diacritics or a possessive ``'s``/``’s``, apostrophes removed."""
    text = word
    if len(text) > 2 and text[-1] in "sS" and text[-2] in _APOSTROPHES:
        text = text[:-2]
    text = "".join(c for c in text.lower() if c not in _APOSTROPHES)
    text = _MARKS.sub("", unicodedata.normalize("NFKD", text))
    text = _NOT_WORD.sub("", "".join(_LETTERS.get(c, c) for c in text))
    return unicodedata.normalize("NFC", text)


def stem(word: str) -> str:
    """A folded word with its English plural ending taken off (a light S-stemmer and a few
    irregular plurals: plurals only, so ``united`` stays and a name loses at most a final s)."""
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if len(word) < 4 or word[-1] != "s" or word in _NOT_PLURAL or not word.isalpha():
        return word
    if word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies"):
        return word if word[-4] in "ae" else word[:-3] + "y"
    if word.endswith(_ES_PLURALS):
        return word[:-2]
    return word[:-1]


def words(text: str) -> Iterator[Word]:
    """The words of ``text`` in order (a Han or Hiragana character is a word by itself)."""
    for match in _WORD.finditer(text):
        start, raw = match.start(), match.group()
        if _ONE_CHAR.search(raw):
            offset = 0
            for piece in regex.split(r"([\p{Han}\p{Hiragana}])", raw):
                if piece and (folded := fold(piece)):
                    yield Word(start + offset, start + offset + len(piece), folded)
                offset += len(piece)
            continue
        folded = fold(raw)
        if folded:
            yield Word(start, match.end(), folded)


def _units(text: str) -> int:
    """Length in UTF-16 code units (Elasticsearch's offsets)."""
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def aligned(text: str | None, *, stemmed: bool) -> str:
    """``text`` as its normalised words, each where the word is in ``text`` (see above)."""
    if not text:
        return ""
    out: list[str] = []
    at = 0  # code points of ``text`` consumed
    for word in words(text):
        out.append(" " * _units(text[at : word.start]))
        original = text[word.start : word.end]
        form = stem(word.folded) if stemmed else word.folded
        room = _units(original)
        if _units(form) > room:  # folding made it longer (ß, ligatures): keep it in its place
            form = form[:room]
        out.append(form + " " * (room - _units(form)))
        at = word.end
    out.append(" " * _units(text[at:]))
    return "".join(out)


def query_words(text: str, *, stemmed: bool) -> list[str]:
    """The normalised words of a query term or phrase, as :func:`aligned` indexes them."""
    return [stem(w.folded) if stemmed else w.folded for w in words(text)]


def widen_marks(fragment: str) -> str:
    """A highlighted fragment with each mark reaching the end of its word: a stem marks
    ``<em>rabbit</em>s``, the reader sees ``<em>rabbits</em>`` (a possessive stays outside)."""
    return _MARKED_END.sub(lambda m: m.group(1) + "</em>", fragment)
