"""A second opinion on the article text: paragraphs that trafilatura left out but two other
extractors both find are added (docs/extraction.md, "Second opinion and teasers").

The other extractors are rs-trafilatura (a separate implementation of the same ideas, optional:
detected, never required; without it nothing is added) and readability (trafilatura's fork,
which newsmon runs anyway for articles split across containers). A paragraph counts as found by
an extractor when at least ``_SUPPORT`` of its word trigrams are in that extractor's text, so
different line breaks or spacing do not matter. Nothing of trafilatura's text is removed here.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Callable
from types import ModuleType
from typing import Final

log = logging.getLogger(__name__)

__all__: list[str] = []


def _optional(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


# optional (pip install "newsmon[extractors]"), imported on first use: a worker process that
# never needs it keeps its address space (newsmon.isolate's memory limit) for the page
_RS: dict[str, ModuleType | None] = {}


def _rs_trafilatura() -> ModuleType | None:
    if "module" not in _RS:
        _RS["module"] = _optional("rs_trafilatura")
    return _RS["module"]


# rs-trafilatura aborts the whole process when an allocation fails (Rust), where Python raises
# a MemoryError that newsmon.isolate records as such: it only sees pages up to this size (the
# largest of the two shared sets is 1.8 million characters)
_MAX_HTML_CHARS: Final = 4_000_000
_SUPPORT: Final = 0.8  # share of a paragraph's trigrams an extractor's text must have
_MIN_WORDS: Final = 3  # shorter paragraphs (labels, buttons) are never added
# Lines of program code: readers (and the ground truth) leave code listings out of the text.
_CODE_RE: Final = re.compile(r"[{}=<>]|\w\(|^\s*[#/]")
_WORD_RE: Final = re.compile(r"\w+")

Gram = tuple[str, ...]


def available() -> bool:
    """Whether the second opinion can run (rs-trafilatura installed)."""
    return _rs_trafilatura() is not None


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower())


def _paragraph_grams(words: list[str]) -> set[Gram]:
    """Word trigrams of a paragraph; a paragraph of one or two words is its own gram."""
    if len(words) < 3:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + 3]) for i in range(len(words) - 2)}


def _text_grams(text: str) -> set[Gram]:
    """The word trigrams of a text (what a paragraph is looked up in) and, for a text of one
    or two words, the text itself."""
    return _paragraph_grams(_words(text))


def _support(grams: set[Gram], other: set[Gram]) -> float:
    return sum(1 for g in grams if g in other) / len(grams) if grams else 1.0


def _rs_text(html: str, url: str | None) -> str:
    rs_trafilatura = _rs_trafilatura()
    if rs_trafilatura is None:
        return ""
    # every page newsmon extracts comes from a news feed: the page-type classifier is skipped
    result = rs_trafilatura.extract(html, url=url, include_comments=False, page_type="article")
    return str(result.main_content or "")


def _add_agreed_paragraphs(text: str, first: str, second: Callable[[], str]) -> str:
    """``text`` with the paragraphs of ``first`` (of ``_MIN_WORDS``+ words, not code) that
    ``text`` lacks and ``second()`` has, each placed after the paragraph of ``text`` that
    ``first``'s preceding paragraph matched. ``second`` is only called when ``first`` has such
    a paragraph (it costs an extraction)."""
    paragraphs = text.split("\n\n")
    have = _text_grams(text)
    where: dict[Gram, int] = {}
    for index, paragraph in enumerate(paragraphs):
        for gram in _paragraph_grams(_words(paragraph)):
            where.setdefault(gram, index)
    candidates: list[tuple[int, str, set[Gram]]] = []
    anchor = -1
    for paragraph in first.split("\n\n"):
        words = _words(paragraph)
        grams = _paragraph_grams(words)
        if _support(grams, have) >= _SUPPORT:
            found = [where[g] for g in grams if g in where]
            if found:
                anchor = max(anchor, max(found))
        elif len(words) >= _MIN_WORDS and not _CODE_RE.search(paragraph):
            candidates.append((anchor, paragraph, grams))
    if not candidates:
        return text
    other = _text_grams(second())
    after: dict[int, list[str]] = {}
    for anchor, paragraph, grams in candidates:
        if _support(grams, other) >= _SUPPORT and _support(grams, have) < _SUPPORT:
            after.setdefault(anchor, []).append(paragraph)
            have |= _text_grams(paragraph)
    if not after:
        return text
    out = list(after.get(-1, []))
    for index, paragraph in enumerate(paragraphs):
        out.append(paragraph)
        out.extend(after.get(index, []))
    return "\n\n".join(out)


def _second_opinion(
    text: str,
    html: str | None,
    url: str | None,
    readable: Callable[[], str],
    clean: Callable[[str], str],
) -> str:
    """``text`` completed with the paragraphs rs-trafilatura and readability (``readable()``,
    already cleaned) agree on; ``text`` itself without rs-trafilatura or without the page's
    HTML or when the page is beyond ``_MAX_HTML_CHARS``. ``clean`` turns rs-trafilatura's text
    into newsmon's form."""
    if not html or len(html) > _MAX_HTML_CHARS or _rs_trafilatura() is None:
        return text
    try:
        other = clean(_rs_text(html, url))
    except MemoryError:
        raise  # out of the worker's memory limit (newsmon.isolate)
    except Exception:  # a failing optional extractor costs only its opinion
        log.warning("rs-trafilatura failed, no second opinion: %s", url, exc_info=True)
        return text
    if not other:
        return text
    completed = _add_agreed_paragraphs(text, other, readable)
    if completed != text:
        log.debug("second opinion added paragraphs: %s", url)
    return completed
