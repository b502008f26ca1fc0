"""Text normalisation shared by the extraction modules.

Whitespace and Unicode normalisation of lines and metadata strings, the visible text of an
element (word breaks kept at block tags, no script text) and the comparison form of a line
that title matching uses.
"""

from __future__ import annotations

import html
import re
import unicodedata
from typing import Any, Final

__all__ = ["HtmlTree"]

# An lxml.html.HtmlElement (lxml ships no type hints, trafilatura is untyped here).
HtmlTree = Any

_SPACE_RE: Final = re.compile(r"[\s\u200b\u2060\ufeff]+")


def _normalise_line(line: str) -> str:
    return _SPACE_RE.sub(" ", line).strip()


def _clean_field(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    cleaned = _normalise_line(unicodedata.normalize("NFC", value))
    return cleaned or None


def _meta_text(value: object) -> str | None:
    """A metadata string as shown: entities decoded (JSON-LD often double-escapes), NFC,
    whitespace normalised."""
    if not isinstance(value, str):
        return None
    text = value
    for _ in range(2):
        if "&" not in text:
            break
        text = html.unescape(text)
    return _clean_field(text)


_INVISIBLE_TAGS: Final = frozenset({"script", "style", "noscript", "template", "svg"})
_BREAKING_TAGS: Final = frozenset(
    {"br", "div", "p", "li", "ul", "ol", "section", "header", "footer", "h1", "h2", "h3", "h4"}
)


def _visible_text(element: HtmlTree) -> str:
    """Text of an element with word boundaries kept at block tags and <br>; no script text."""
    parts: list[str] = []

    def add(text: str) -> None:
        # "Headline<span class="block">Subtitle</span>": styled onto two lines, glued in the
        # markup; a lower-case letter followed by a capital across a tag boundary is a break
        if parts and parts[-1][-1:].islower() and text[:1].isupper():
            parts.append(" ")
        parts.append(text)

    def walk(node: HtmlTree, top: bool) -> None:
        tag = node.tag if isinstance(node.tag, str) else None
        if tag is not None and tag.lower() not in _INVISIBLE_TAGS:
            breaking = tag.lower() in _BREAKING_TAGS
            if breaking:
                parts.append(" ")
            if node.text:
                add(node.text)
            for child in node:
                walk(child, False)
            if breaking:
                parts.append(" ")
        if node.tail and not top:
            add(node.tail)

    walk(element, True)
    return _normalise_line("".join(parts))


_QUOTES: Final = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})


def _comparable(line: str) -> str:
    """A form of a line for title comparison: case-folded words only."""
    return " ".join(re.findall(r"\w+", line.translate(_QUOTES).casefold()))
