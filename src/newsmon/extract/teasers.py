"""Teaser lines: a line of the extracted text that is nothing but one link to another page of
the same site ("Who will make the Rock Hall in 2020?", a related-stories list) is a teaser, not
the article. Found from the page's own links at extraction time, so it works on the first page
of a site, before any template has been learnt (docs/extraction.md, "Second opinion and
teasers").
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urljoin, urlsplit

from ..urls import domain
from .normalise import HtmlTree, _visible_text

__all__: list[str] = []

# A teaser has at least this many words: short same-site links ("Privacy policy", "World",
# a byline) are left to the template learner; measured on both sets (docs/extraction.md).
_TEASER_WORDS: Final = 6
_WORD_RE: Final = re.compile(r"\w+")
_BULLET_RE: Final = re.compile(r"^[-\u2022*\u00b7\u2013\u2014]\s+")


def _words_key(text: str) -> str:
    """A line reduced to its lower-cased words (punctuation and spacing do not matter)."""
    return " ".join(_WORD_RE.findall(text.lower()))


def _same_site(host: str, other: str) -> bool:
    return bool(other) and (
        other == host or other.endswith("." + host) or host.endswith("." + other)
    )


def _teaser_keys(tree: HtmlTree, url: str | None) -> frozenset[str]:
    """The word keys of the page's link texts (of ``_TEASER_WORDS``+ words) that point to
    another page of the same site; empty without a page URL."""
    if not url:
        return frozenset()
    try:
        page = urlsplit(url)
    except ValueError:
        return frozenset()
    host, path = domain(url), page.path.rstrip("/")
    if not host:
        return frozenset()
    keys: set[str] = set()
    for link in tree.iter("a"):
        href = link.get("href")
        # the words of the raw text pieces are at least those of the visible text: most
        # links (menus, tags) are ruled out before anything else is looked at
        if not href or href.startswith("#"):
            continue
        if len(_WORD_RE.findall(" ".join(link.itertext()))) < _TEASER_WORDS:
            continue
        try:
            absolute = urljoin(url, href.strip())
            target, target_host = urlsplit(absolute), domain(absolute)
        except ValueError:
            continue
        if target.scheme not in ("http", "https") or not _same_site(host, target_host):
            continue
        if target_host == host and target.path.rstrip("/") == path:
            continue  # the page itself (a table of contents, "back to top")
        key = _words_key(_visible_text(link))
        if len(key.split()) >= _TEASER_WORDS:
            keys.add(key)
    return frozenset(keys)


def _drop_teasers(text: str, keys: frozenset[str]) -> str:
    """``text`` without the paragraphs that are exactly one of the teaser links (a list
    bullet before it allowed); the text unchanged if nothing else would be left."""
    if not keys:
        return text
    paragraphs = text.split("\n\n")
    kept = [p for p in paragraphs if _words_key(_BULLET_RE.sub("", p)) not in keys]
    return "\n\n".join(kept) if kept and len(kept) < len(paragraphs) else text
