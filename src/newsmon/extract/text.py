"""The article text: trafilatura's settings, cleaning its output into the body the user reads,
and a second extraction for articles split across containers.

``text`` is one paragraph per block, blocks separated by one blank line, whitespace normalised,
no title line at the start and no ad-slot labels. When trafilatura keeps only part of an
article, readability (then trafilatura in recall mode) replaces the text if what it adds is
article text (docs/extraction.md, "Articles split across containers").
"""

from __future__ import annotations

import copy
import logging
import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any, Final

import trafilatura
from trafilatura.external import try_readability

from .normalise import HtmlTree, _comparable, _normalise_line, _visible_text
from .second import _second_opinion
from .teasers import _drop_teasers, _teaser_keys

log = logging.getLogger(__name__)

__all__ = ["TRAFILATURA_OPTIONS", "TRAFILATURA_RETRY_OPTIONS"]

# --------------------------------------------------------------------------------------------
# trafilatura settings
# --------------------------------------------------------------------------------------------

# Chosen by measurement (bench/extraction_quality.py, news-pages + WCXB): comments off, the
# rest at trafilatura's balanced defaults scored best; precision/fast/no-tables/dedup lost F1.
TRAFILATURA_OPTIONS: Final[Mapping[str, Any]] = {
    "include_comments": False,
    "favor_precision": False,
    "favor_recall": False,
    "include_tables": True,
    "fast": False,
    "deduplicate": False,
}
# Second try when the balanced pass finds no text at all (measured: recovers pages the
# balanced pass drops, costs nothing on the others); also the second extraction of an article
# split across containers.
TRAFILATURA_RETRY_OPTIONS: Final[Mapping[str, Any]] = {
    **TRAFILATURA_OPTIONS,
    "favor_recall": True,
}


# --------------------------------------------------------------------------------------------
# text cleanup
# --------------------------------------------------------------------------------------------

# Lines that are nothing but an ad slot's label: "Advertisement", "ADVERTISEMENT", "Ad",
# "Advertisement - Scroll to continue", "Story continues below advertisement",
# "SKIP ADVERTISEMENT", ... Matched against the whole line (case-insensitive, trailing
# punctuation allowed), so a sentence that merely mentions advertising is never touched.
_AD: Final = r"(?:advert(?:isement|isment)?s?|ads?)"
_AD_CONTINUES: Final = (
    r"(?:(?:the\s+)?(?:story|article|content|text|post)\s+continues?"
    r"|continue\s+reading"
    r"|scroll(?:\s+down)?\s+to\s+continue(?:\s+reading)?(?:\s+with\s+(?:the\s+)?content)?)"
)
_AD_LABEL_RE: Final = re.compile(
    rf"""
    (?:
        (?:paid\s+|sponsored\s+)?advert(?:isement|isment)?s?
      | ad
      | scroll(?:\s+down)?\s+to\s+continue(?:\s+reading)?(?:\s+with\s+(?:the\s+)?content)?
      | {_AD}\s*[-\u2013\u2014:|\u00b7\u2022/]?\s*{_AD_CONTINUES}(?:\s+below)?
      | {_AD_CONTINUES}\s+(?:below|after)(?:\s+(?:this\s+|the\s+)?{_AD})?
      | skip\s+(?:this\s+)?{_AD}
    )
    [\s.:!\u2026]*
    """,
    re.I | re.X,
)


def _clean_text(raw: str, titles: tuple[str, ...] = ()) -> str:
    """Normalise trafilatura's plain-text output into the article body the user sees."""
    text = unicodedata.normalize("NFC", raw)
    lines = [_normalise_line(line) for line in text.splitlines()]
    lines = [line for line in lines if line and not _AD_LABEL_RE.fullmatch(line)]
    title_keys = {key for key in (_comparable(t) for t in titles) if key}
    while lines and _comparable(lines[0]) in title_keys:
        lines.pop(0)
    return "\n\n".join(lines)


# --------------------------------------------------------------------------------------------
# articles split across containers
# --------------------------------------------------------------------------------------------

# trafilatura sometimes keeps only one of the containers an article is split into (a lead
# block and the rest, text interrupted by a full-width figure or a newsletter box). A second
# extraction is taken instead when it has more than _MORE_TEXT times the words and what it
# adds is article text: at least _SENTENCE_SHARE of the added words are in paragraphs of
# _SENTENCE_WORDS+ words ending like a sentence (menus, teasers and link lists do not).
# Readability (trafilatura's fork) is tried first, then trafilatura in recall mode. To keep the
# cost down, nothing is tried unless the page's text runs of more than _LONG_TEXT_CHARS
# characters hold more than _MISSING_TEXT times the text extracted, and recall mode (a full
# second extraction) only when the page's <p> elements hold _MISSING_PARAGRAPHS times the
# words extracted.
# Measured on both sets (docs/extraction.md).
_MORE_TEXT: Final = 1.5
_SENTENCE_SHARE: Final = 0.6
_SENTENCE_WORDS: Final = 10
_MISSING_TEXT: Final = 1.5
_LONG_TEXT_CHARS: Final = 40
_MISSING_PARAGRAPHS: Final = 2.0
# The second opinion (newsmon.extract.second) runs where the page's long text runs hold more
# letters than the text extracted (measured: docs/extraction.md, "Second opinion and teasers").
_SECOND_OPINION_TEXT: Final = 1.0
_SENTENCE_END: Final = frozenset('.!?"\u201d:')
_BLOCK_TAGS: Final = frozenset(
    {"p", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "td", "th", "dd", "dt"}
    | {"figcaption"}
)
_WORD_RE: Final = re.compile(r"\w+")


def _word_count(text: str) -> int:
    return len(_WORD_RE.findall(text))


def _adds_article_text(text: str, other: str) -> bool:
    """Whether ``other`` is much longer than ``text`` and its extra paragraphs read like
    article text."""
    if _word_count(other) <= _MORE_TEXT * _word_count(text):
        return False
    have = set(text.split("\n\n"))
    extra = [p for p in other.split("\n\n") if p and p not in have]
    counts = [len(p.split()) for p in extra]
    sentences = sum(
        n
        for p, n in zip(extra, counts, strict=True)
        if n >= _SENTENCE_WORDS and p[-1] in _SENTENCE_END
    )
    return bool(extra) and sentences >= _SENTENCE_SHARE * sum(counts)


def _block_text(element: HtmlTree) -> str:
    """The innermost text blocks of an element, one per line."""
    lines = []
    for node in element.iter():
        if not isinstance(node.tag, str) or node.tag.lower() not in _BLOCK_TAGS:
            continue
        if any(
            isinstance(child.tag, str) and child.tag.lower() in _BLOCK_TAGS
            for child in node.iterdescendants()
        ):
            continue
        line = _visible_text(node)
        if line:
            lines.append(line)
    return "\n".join(lines)


def _paragraph_words(tree: HtmlTree) -> int:
    return sum(_word_count(p.text_content()) for p in tree.iter("p"))


def _letters(text: str) -> int:
    """Characters other than whitespace."""
    return len("".join(text.split()))


# text nodes of the page long enough to be sentences rather than menu items or labels
_LONG_TEXT_XPATH: Final = (
    f"//body//text()[string-length(.) > {_LONG_TEXT_CHARS}]"
    "[not(ancestor::script or ancestor::style or ancestor::noscript or ancestor::template)]"
)


def _page_sentence_letters(tree: HtmlTree) -> int:
    """Characters (whitespace left out) of the page's long text runs, found by lxml in C:
    cheap enough to decide whether a second extraction is worth trying."""
    return sum(_letters(str(text)) for text in tree.xpath(_LONG_TEXT_XPATH))


def _complete_text(
    tree: HtmlTree,
    url: str | None,
    text: str,
    titles: tuple[str, ...],
    sentence_letters: int,
    readable: Callable[[], str],
) -> str:
    """``text``, or a second extraction's when it recovers a part of the article."""
    if sentence_letters <= _MISSING_TEXT * _letters(text):
        return text
    words = _word_count(text)
    if _adds_article_text(text, readable()):
        log.debug("readability recovered more of the article: %s", url)
        return readable()
    if _paragraph_words(tree) > _MISSING_PARAGRAPHS * words:
        document = trafilatura.bare_extraction(
            tree, url=url, with_metadata=False, **TRAFILATURA_RETRY_OPTIONS
        )
        recalled = _clean_text(str(getattr(document, "text", None) or ""), titles)
        if _adds_article_text(text, recalled):
            log.debug("recall mode recovered more of the article: %s", url)
            return recalled
    return text


def _improve_text(
    tree: HtmlTree, url: str | None, text: str, titles: tuple[str, ...], html: str | None
) -> str:
    """The split-article check, the second opinion where the page holds more long text than
    was extracted (``_SECOND_OPINION_TEXT``), then the teaser lines out."""
    sentence_letters = _page_sentence_letters(tree)
    cache: list[str] = []

    def readable() -> str:
        if not cache:
            cache.append(_clean_text(_block_text(try_readability(copy.copy(tree))), titles))
        return cache[0]

    text = _complete_text(tree, url, text, titles, sentence_letters, readable)
    if sentence_letters > _SECOND_OPINION_TEXT * _letters(text):
        text = _second_opinion(text, html, url, readable, lambda t: _clean_text(t, titles))
    return _drop_teasers(text, _teaser_keys(tree, url))


def _article_text(
    tree: HtmlTree,
    url: str | None,
    raw: str,
    titles: tuple[str, ...],
    html: str | None = None,
) -> str:
    """The article body from trafilatura's plain text: cleaned (:func:`_clean_text`), then
    completed by a second extraction where one recovers more, by the paragraphs a second
    opinion agrees on, and without teaser lines (:func:`_improve_text`; ``html`` is the page's
    source for the second opinion); ``""`` when nothing is left. A failing check keeps the
    cleaned text."""
    text = _clean_text(raw, titles)
    if not text:
        return text
    try:
        return _improve_text(tree, url, text, titles, html)
    except MemoryError:
        raise  # out of the worker's memory limit: not the check failing (newsmon.isolate)
    except Exception:
        log.warning("split-article check failed, keeping the text: %s", url, exc_info=True)
        return text
