"""Lead-ins of a site's related links: "Read more: <another headline>", "Trending: …",
"ALSO READ | …", and the bare headings of link lists ("See also", "You may also like").

Such a line changes on every page (the headline is another article's), so counting repeated
lines never sees it twice; it is recognised by its lead-in instead, and only taken out when
what follows the lead-in is a headline or a link, never a sentence of the article ("More than
200 people…", "Related: the minister said on Monday that…" stay). The list is per language;
the shipped feeds are all English (``config/feeds.yaml``), other languages are added here as
feeds in them are followed. Measured with ``bench/template_leak.py`` and
``bench/extraction_quality.py`` (docs/boilerplate.md).
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["LEADINS", "heading_leadin", "looks_like_headline", "split_leadin"]

# language -> lead-ins of related links, in lower case (matched case-insensitively)
LEADINS: Final[dict[str, tuple[str, ...]]] = {
    "en": (
        "read more",
        "read also",
        "also read",
        "read next",
        "read",
        "more",
        "more from",
        "more on this",
        "more stories",
        "trending",
        "trending now",
        "related",
        "related story",
        "related stories",
        "related article",
        "related articles",
        "related news",
        "related coverage",
        "related content",
        "see also",
        "also see",
        "recommended",
        "recommended for you",
        "recommended stories",
        "you may also like",
        "you might also like",
        "you may like",
        "don't miss",
        "do not miss",
        "must read",
        "editor's picks",
        "top stories",
        "latest news",
        "popular now",
        "most read",
        "further reading",
        "up next",
        "watch",
        "listen",
    ),
}
# bare headings of a link list (a lead-in alone on its line): every English lead-in but those
# too common alone on a line of an article
_HEADINGS: Final = frozenset(LEADINS["en"]) - {
    "do not miss",
    "further reading",
    "listen",
    "more",
    "more from",
    "more on this",
    "read",
    "watch",
}
_HEADING_WORDS: Final = frozenset(h.replace("'", "") for h in _HEADINGS)
_SEPARATORS: Final = r"[:|\-\u2013\u2014\u00bb\u203a>]"
_QUOTES: Final = str.maketrans({"\u2019": "'", "\u2018": "'"})


def _pattern(phrases: tuple[str, ...]) -> re.Pattern[str]:
    alts = "|".join(
        re.escape(p).replace(r"\ ", r"\s+") for p in sorted(phrases, key=len, reverse=True)
    )
    return re.compile(
        rf"^[\s\-\u2022*]*(?P<lead>{alts})\b\s*(?P<sep>{_SEPARATORS}+)?\s*(?P<rest>.+)$", re.I
    )


_PATTERNS: Final = {lang: _pattern(phrases) for lang, phrases in LEADINS.items()}
_WORD_RE: Final = re.compile(r"[^\W_]+")
_URL_RE: Final = re.compile(r"^(?:https?://|www\.)\S+$", re.I)
_SENTENCE_END_RE: Final = re.compile("(?<![.])[.][\"'\u201d\u2019)]*$")
MAX_HEADLINE_WORDS: Final = 25


def split_leadin(line: str, language: str | None = None) -> tuple[str, str] | None:
    """(lead-in, remainder) when ``line`` starts with a lead-in of ``language`` (English when
    unknown or not listed) followed by a separator (":", "|", a dash, "»"), or by nothing when the
    lead-in is written in capitals ("ALSO READ New SUVs…"); else None."""
    pattern = _PATTERNS.get((language or "en").split("-")[0].lower(), _PATTERNS["en"])
    match = pattern.match(line.translate(_QUOTES))
    if match is None:
        return None
    lead, rest = match.group("lead"), match.group("rest").strip()
    if not match.group("sep") and not (lead.isupper() and len(lead) > 3):
        return None
    return lead, rest


def heading_leadin(line: str) -> bool:
    """Whether the whole line is the heading of a link list ("See also", "Related:")."""
    words = " ".join(_WORD_RE.findall(line.translate(_QUOTES).casefold().replace("'", "")))
    return len(line) <= 40 and words in _HEADING_WORDS


def looks_like_headline(text: str) -> bool:
    """A headline or a link: a URL, or 2 to 25 words that do not start in lower case and either
    do not end like a sentence (a full stop) or are in title case ("Why You Shouldn't Worry.")."""
    stripped = text.strip()
    if _URL_RE.match(stripped):
        return True
    words = _WORD_RE.findall(stripped)
    # (a headline in a script without spaces is one "word")
    if not (len(words) >= 2 or len(stripped) >= 6) or len(words) > MAX_HEADLINE_WORDS:
        return False
    if stripped[:1].islower():
        return False
    if not _SENTENCE_END_RE.search(stripped):
        return True
    long = [w for w in words if len(w) >= 4]
    return bool(long) and sum(w[0].isupper() for w in long) >= 0.6 * len(long)
