"""Where a line of the extracted text sits in its page, when it is a teaser card's text.

Some templates put teaser cards into the article's own container without a lead-in or a
heading: a linked headline and the first sentence of another story, between the paragraphs or
in a rail after them. Trafilatura drops the link-dense headline and keeps the sentence, which
reads like the article's own, and changes on every page: the line learner
(:mod:`newsmon.text.boilerplate`) never sees it twice. What stays the same is its place:
``div.c-river > div.c-river__item > p`` on every page of the site. This module gives each line
of the text a *shape*, or ``""``:

* a line is a card's text when a small ancestor of its element (at most ``_CARD_LEVELS`` up,
  ``_MAX_CARD_CHARS`` long) holds exactly one link of ``_CARD_LINK_WORDS``+ words to another
  page of the same site, outside the line, whose text is at least ``_MIN_LINK_SHARE`` of the
  card's, and little else (the line, the link and ``_CARD_OTHER_CHARS``); a line that is itself
  mostly a link is left to :mod:`newsmon.extract.teasers`;
* its shape is a digest of the path from ``<body>`` to the line's element, each step its tag,
  id and classes (digits masked), so the same place on another page of the site gets the same
  shape whatever its text;
* only the small ancestors of such links are searched for the lines, and only those whose words
  hold a line's first words: a page costs a few milliseconds.

A shape removes nothing by itself: the learner removes a shaped line once the same shape was seen
in enough articles of the domain on enough days (docs/boilerplate.md, "Teaser cards learned from
the page's structure").
"""

from __future__ import annotations

import hashlib
import re
from typing import Final
from urllib.parse import urljoin, urlsplit

from ..urls import domain
from .normalise import HtmlTree
from .teasers import _same_site, _words_key
from .text import _letters

__all__: list[str] = []

# measured on the template bench and the two extraction sets (docs/boilerplate.md)
_MIN_LINK_SHARE: Final = 0.15
_MAX_CARD_CHARS: Final = 500
_CARD_LEVELS: Final = 2
_CARD_LINK_WORDS: Final = 3
_START_WORDS: Final = 3  # a line's first words, to rule out places that cannot hold it
_CARD_OTHER_CHARS: Final = 40  # a card's label or date besides its headline and text
_LINE_TAGS: Final = frozenset(
    {"p", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "td", "th", "dd", "dt"}
    | {"figcaption", "a", "div", "span", "section", "aside", "strong", "b", "em", "i", "q"}
)
_DIGITS_RE: Final = re.compile(r"\d+")
_BULLET_RE: Final = re.compile(r"^[-\u2022*\u00b7\u2013\u2014]\s+")


def _step(element: HtmlTree) -> str:
    tag = str(element.tag).lower()
    ident = element.get("id") or ""
    classes = " ".join(sorted((element.get("class") or "").split()))
    return _DIGITS_RE.sub("0", f"{tag}#{ident}.{classes}")


def _path(element: HtmlTree) -> str:
    steps = [_step(element)]
    for parent in element.iterancestors():
        if str(parent.tag).lower() in ("body", "html"):
            break
        steps.append(_step(parent))
    return ">".join(reversed(steps))


def _small(element: HtmlTree, limit: int) -> bool:
    """Whether the element's text has at most ``limit`` characters (counted until it has more)."""
    total = 0
    for piece in element.itertext():
        total += len(piece)
        if total > 2 * limit:  # white space is not counted by _card: leave it room
            return False
    return True


_CJK_RE: Final = re.compile("[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


def _link_words(text: str) -> int:
    """Words of a link's text; in scripts written without spaces, each character counts."""
    return len(text.split()) + len(_CJK_RE.findall(text))


def _starts(key: str) -> str:
    """The first ``_START_WORDS`` words of a words key."""
    return " ".join(key.split()[:_START_WORDS])


def _elements(tree: HtmlTree, keys: set[str], links: _Links) -> dict[str, HtmlTree]:
    """line key -> the innermost element whose words are exactly the line's, looked for only
    where a teaser card can be: in the small ancestors of links of ``_CARD_LINK_WORDS``+ words
    to another page of the same site, and only in those whose words hold a line's first words.
    Most pages have few such places, so this costs little."""
    found: dict[str, HtmlTree] = {}
    starts = {_starts(k) for k in keys}
    seen: set[HtmlTree] = set()  # the elements themselves: see _Links
    for link in tree.iter("a"):
        if _link_words(" ".join(link.itertext())) < _CARD_LINK_WORDS:
            continue  # most links (menus, tags) end here
        unit = link
        for _ in range(_CARD_LEVELS):
            unit = unit.getparent()
            if unit is None or str(unit.tag).lower() in ("body", "html") or unit in seen:
                break
            if not _small(unit, _MAX_CARD_CHARS):
                break
            words = _words_key(" ".join(unit.itertext())).split()
            grams = {" ".join(words[i : i + _START_WORDS]) for i in range(len(words))}
            if grams.isdisjoint(starts):
                seen.add(unit)
                continue
            if not links.chars(link):
                continue  # another link of this place may be the site's
            seen.add(unit)
            for element in unit.iter():
                if not isinstance(element.tag, str) or element.tag.lower() not in _LINE_TAGS:
                    continue
                key = _words_key(element.text_content())
                if key not in keys:
                    continue
                known = found.get(key)
                if known is None or any(x is known for x in element.iterancestors()):
                    found[key] = element
    return found


def _text_letters(element: HtmlTree) -> int:
    """Characters other than white space of the element's text (lxml's, scripts included:
    cheaper than the visible text, and cards hold none)."""
    return _letters("".join(element.itertext()))


class _Links:
    """Which links point to another page of the same site, each decided once per page."""

    def __init__(self, url: str, host: str) -> None:
        self.url, self.host = url, host
        self.page = urlsplit(url).path.rstrip("/")
        # keyed by the element itself: that keeps lxml's proxy alive, so it stays the same
        # object (an id() of a proxy can be reused by another element's)
        self._known: dict[HtmlTree, int] = {}

    def chars(self, link: HtmlTree) -> int:
        """The link's characters when it points to another page of the same site, else 0."""
        known = self._known.get(link)
        if known is None:
            known = self._known[link] = _text_letters(link) if self._site(link) else 0
        return known

    def _site(self, link: HtmlTree) -> bool:
        href = (link.get("href") or "").strip()
        if not href or href.startswith("#"):
            return False
        try:
            target = urlsplit(href)
            if target.scheme or href.startswith("//"):
                absolute = urljoin(self.url, href)
                target = urlsplit(absolute)
                if target.scheme not in ("http", "https"):
                    return False
                if not _same_site(self.host, domain(absolute)):
                    return False
            elif not target.path.startswith("/"):
                target = urlsplit(urljoin(self.url, href))
        except ValueError:
            return False
        return target.path.rstrip("/") != self.page


def _shape_digest(path: str) -> str:
    return hashlib.blake2b(path.encode("utf-8"), digest_size=9).hexdigest()


def _card(element: HtmlTree, links: _Links) -> bool:
    """Whether the line's element is the text of a teaser card: a small ancestor (at most
    ``_CARD_LEVELS`` up, ``_MAX_CARD_CHARS`` long) also holds exactly one link of
    ``_CARD_LINK_WORDS``+ words to another page of the same site, outside the line, whose text
    is at least ``_MIN_LINK_SHARE`` of the card's; and little else (``_CARD_OTHER_CHARS``)."""
    own = _text_letters(element)
    if sum(links.chars(a) for a in element.iter("a")) * 2 >= own:
        return False  # a link itself: newsmon.extract.teasers' business
    unit = element
    for _ in range(_CARD_LEVELS):
        unit = unit.getparent()
        if unit is None or str(unit.tag).lower() in ("body", "html"):
            return False
        chars = _text_letters(unit)
        if chars > _MAX_CARD_CHARS:
            return False
        outside = [
            a
            for a in unit.iter("a")
            if not any(x is element for x in a.iterancestors())
            and _link_words(" ".join(a.itertext())) >= _CARD_LINK_WORDS
            and links.chars(a)
        ]
        if outside:
            linked = sum(links.chars(a) for a in outside)
            return (
                len(outside) == 1
                and linked >= _MIN_LINK_SHARE * chars
                and chars <= own + linked + _CARD_OTHER_CHARS
            )
    return False


def line_shapes(tree: HtmlTree, url: str | None, text: str) -> tuple[str, ...]:
    """One entry per paragraph of ``text`` (``"\\n\\n"``-separated): the shape of a line that is
    a teaser card's text, ``""`` for the others; ``()`` when no line has one."""
    host = domain(url) if url else ""
    if not url or not host or not text:
        return ()
    keys = [_words_key(_BULLET_RE.sub("", line)) for line in text.split("\n\n")]
    links = _Links(url, host)
    at = _elements(tree, {k for k in keys if k}, links)
    shapes: list[str] = []
    for key in keys:
        element = at.get(key)
        shaped = element is not None and _card(element, links)
        shapes.append(_shape_digest(_path(element)) if shaped and element is not None else "")
    return tuple(shapes) if any(shapes) else ()
