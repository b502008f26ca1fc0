"""The article's title: the headline a reader sees, without the site's name.

Site names are gathered from the page's metadata, its host name and the <h1>s that are the
site's logo; the title is the page's <h1> that agrees with the metadata titles, else the best
metadata title, each with the site names around it stripped (docs/extraction.md, "Title").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from .meta import _Heading, _PageMeta
from .normalise import _comparable

# Between a headline and a site name: " | ", " - ", " -- ", en/em dash, middle dot, bullet,
# guillemets (U+00BB, U+203A), " / ", " ~ ", " :: " (spaces around it).
_TITLE_SEP: Final = r"(?:[|\u2013\u2014\u00b7\u2022\u00bb\u203a/~]|-{1,2}|::)"
_TITLE_SEP_RE: Final = re.compile(rf"\s+{_TITLE_SEP}\s+")
# "Site Name: Headline" -- only stripped when "Site Name" is exactly a known site name
_TITLE_COLON_RE: Final = re.compile(r":\s+")
_SITE_BEFORE_SEP_RE: Final = re.compile(rf"^(.+?)\s*(?:{_TITLE_SEP}|:)\s*$")
_SITE_AFTER_SEP_RE: Final = re.compile(rf"^\s*(?:{_TITLE_SEP}|:)\s+(.+)$")
# a host label ("motleyfool" of www.motleyfool.com) matches a title part that contains it
# or is contained in it, if the two differ by at most this many letters ("Bridgestone Tires"
# on tires.bridgestone.com, "mattressnap.com")
_HOST_MATCH_SLACK: Final = 8
_GENERIC_HOST_LABELS: Final = frozenset(
    {"www", "m", "amp", "co", "com", "org", "net", "gov", "ac", "edu", "blog", "blogs", "news"}
)
# Dice overlap of content words (4+ letters) an <h1> needs with a metadata title to count as
# the page's headline when several candidates or none match exactly
_H1_AGREEMENT: Final = 0.3


def _squashed(text: str) -> str:
    return _comparable(text).replace(" ", "")


def _content_words(text: str) -> set[str]:
    words = _comparable(text).split()
    return {word for word in words if len(word) >= 4} or set(words)


def _agreement(first: str, second: str) -> float:
    a, b = _content_words(first), _content_words(second)
    return 2 * len(a & b) / (len(a) + len(b)) if a and b else 0.0


@dataclass(frozen=True)
class _SiteNames:
    """What a site calls itself: exact names (squashed) and the labels of its host name."""

    names: frozenset[str]
    host_labels: tuple[str, ...]

    def match(self, part: str, *, fuzzy: bool = True) -> bool:
        squashed = _squashed(part)
        if not squashed:
            return False
        if squashed in self.names:
            return True
        if not fuzzy:
            return False
        for label in self.host_labels:
            if squashed == label:
                return True
            if (
                len(label) >= 4
                and len(squashed) >= 4
                and (label in squashed or squashed in label)
                and abs(len(squashed) - len(label)) <= _HOST_MATCH_SLACK
            ):
                return True
        return False

    def strip(self, title: str | None) -> str | None:
        """The title without site names before or after a separator ("Headline | Site",
        "Site - Headline", "Site: Headline", "Headline - Section | Site" when both are known)."""
        if not title:
            return title
        for _ in range(4):
            separators = list(_TITLE_SEP_RE.finditer(title))
            stripped = None
            for match in separators:  # earliest separator whose tail is a site name
                head = title[: match.start()].strip()
                if head and self.match(title[match.end() :]):
                    stripped = head
                    break
            if stripped is None:
                prefixes = [(m, True) for m in separators]
                prefixes += [(m, False) for m in _TITLE_COLON_RE.finditer(title)]
                for match, fuzzy in sorted(prefixes, key=lambda item: -item[0].start()):
                    tail = title[match.end() :].strip()
                    if tail and self.match(title[: match.start()], fuzzy=fuzzy):
                        stripped = tail
                        break
            if stripped is None:
                break
            title = stripped
        return title


def _meta_titles(meta: _PageMeta) -> list[str]:
    return [
        t for t in (meta.og_title, meta.twitter_title, meta.jsonld_headline, meta.html_title) if t
    ]


def _site_names(meta: _PageMeta, host: str | None) -> _SiteNames:
    """The site's names: og:site_name and the like, JSON-LD publisher/WebSite/Organization,
    what <title> adds to og:title, the host name, and <h1>s that are the site's logo.

    trafilatura's own site name is not used: without metadata it takes a part of <title>,
    which may well be the headline.
    """
    names: set[str] = set()
    for name in meta.site_names:
        names.add(_squashed(name))
        names.update(_squashed(part) for part in _TITLE_SEP_RE.split(name))
    # "Headline | Site" in <title> next to og:title "Headline": what the title adds is the site
    short_titles = [t for t in (meta.og_title, meta.twitter_title, meta.jsonld_headline) if t]
    for full in (meta.html_title, meta.og_title):
        for short in short_titles:
            if not full or short == full:
                continue
            if full.startswith(short):
                added = _SITE_AFTER_SEP_RE.match(full[len(short) :])
                if added:
                    names.add(_squashed(added.group(1)))
            if full.endswith(short):
                added = _SITE_BEFORE_SEP_RE.match(full[: -len(short)])
                if added:
                    names.add(_squashed(added.group(1)))
    labels: list[str] = []
    if host:
        bare = host.lower().removeprefix("www.")
        names.add(_squashed(bare))
        for label in bare.split(".")[:-1]:
            label = re.sub(r"[^a-z0-9]", "", label)
            if len(label) >= 3 and label not in _GENERIC_HOST_LABELS:
                labels.append(label)
    names.discard("")
    known = _SiteNames(frozenset(names), tuple(labels))
    # An <h1> in nav/aside/footer is the site's logo or a widget title. One in the page header
    # is the logo when it is the last part of a metadata title ("Headline | Site") or does not
    # agree with any (compared without the site names known so far: "Headline | Site" agrees
    # with "Site" otherwise); else it is the headline.
    titles = [t for t in (known.strip(x) for x in _meta_titles(meta)) if t]
    last_parts = {
        _comparable(_TITLE_SEP_RE.split(t)[-1]) for t in titles if _TITLE_SEP_RE.search(t)
    }
    for heading in meta.headings:
        if heading.in_chrome or (
            heading.in_page_header
            and (
                _comparable(heading.text) in last_parts
                or not any(_agreement(heading.text, t) >= _H1_AGREEMENT for t in titles)
            )
        ):
            names.add(_squashed(heading.text))
    names.discard("")
    return _SiteNames(frozenset(names), known.host_labels)


def _page_heading(meta: _PageMeta, site: _SiteNames, meta_titles: list[str]) -> _Heading | None:
    """The <h1> that is the article's headline: not the site's name, not in the page chrome,
    and matching a metadata title exactly or agreeing with one best; with no metadata title,
    the first <h1> of the article (or the page's only one)."""
    candidates = [
        h for h in meta.headings if not h.in_chrome and not site.match(h.text, fuzzy=False)
    ]
    if not candidates:
        return None
    if meta_titles:
        stripped = {_comparable(site.strip(t) or "") for t in meta_titles}
        for heading in candidates:
            if _comparable(heading.text) in stripped:
                return heading
        score, best = max(
            ((max(_agreement(h.text, t) for t in meta_titles), h) for h in candidates),
            key=lambda item: item[0],
        )
        return best if score >= _H1_AGREEMENT else None
    in_article = [h for h in candidates if h.in_article]
    if in_article:
        return in_article[0]
    return candidates[0] if len(candidates) == 1 else None


def _choose_title(meta: _PageMeta, site: _SiteNames, fallback: str | None) -> str | None:
    """The headline a reader sees.

    1. The page's <h1> (see :func:`_page_heading`) without a site name around it -- except
       when the <h1> wraps the headline in more markup (a date, "Blog:", a comment counter)
       and a metadata title is exactly that headline, or when the <h1> is in capitals and a
       metadata title has the same words in normal case: then that metadata title.
    2. Without such an <h1>: og:title, JSON-LD headline, <title>, twitter:title, then
       trafilatura's title (``fallback``), each without the site name.
    """
    raw = (meta.og_title, meta.jsonld_headline, meta.html_title, meta.twitter_title)
    stripped = [title for title in (site.strip(t) for t in raw) if title]
    heading = _page_heading(meta, site, [t for t in raw if t])
    if heading is not None:
        headline = site.strip(heading.text) or heading.text
        key = _comparable(headline)
        parts = {_comparable(part) for part in heading.parts}
        for title in stripped:
            if _comparable(title) != key and _comparable(title) in parts:
                return title
        if headline.isupper():
            for title in stripped:
                if _comparable(title) == key and not title.isupper():
                    return title
        return headline
    if stripped:
        return stripped[0]
    return site.strip(fallback)
