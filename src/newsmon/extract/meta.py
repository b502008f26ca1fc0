"""Page metadata read from the parsed page: what the page says about itself.

Headings (<h1>s and where they are), meta tags, JSON-LD (headline, authors, publisher), the
canonical URL, the language, the publication date as htmldate reports it, and the article's
authors chosen from these and trafilatura's scraped byline. Title selection, which builds on
the same collection (:class:`_PageMeta`), is in newsmon.extract.title.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

from .normalise import HtmlTree, _meta_text, _normalise_line, _visible_text

log = logging.getLogger(__name__)

__all__ = ["DATE_OUTPUT_FORMAT"]

# htmldate: look for the original publication date (not the last update), keep time and zone.
DATE_OUTPUT_FORMAT: Final = "%Y-%m-%dT%H:%M:%S%z"


# --------------------------------------------------------------------------------------------
# URLs, language, date
# --------------------------------------------------------------------------------------------


def _absolute_http_url(value: str | None, base: str | None) -> str | None:
    if not value:
        return None
    candidate = value.strip()
    if not candidate:
        return None
    try:
        if base:
            candidate = urljoin(base, candidate)
        elif candidate.startswith("//"):
            candidate = "https:" + candidate
        parts = urlsplit(candidate)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return candidate


def _host(url: str | None) -> str | None:
    try:
        return urlsplit(url).hostname if url else None
    except ValueError:
        return None


def _canonical_url(tree: HtmlTree, base: str | None) -> str | None:
    for link in tree.iterfind(".//link[@href]"):
        rel = (link.get("rel") or "").lower().split()
        if "canonical" in rel:
            return _absolute_http_url(link.get("href"), base)
    for meta in tree.iterfind(".//meta[@content]"):
        if (meta.get("property") or meta.get("name") or "").strip().lower() == "og:url":
            return _absolute_http_url(meta.get("content"), base)
    return None


_LANG_RE: Final = re.compile(r"^\s*([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]+)*\s*$")


def _language(tree: HtmlTree) -> str | None:
    candidates: list[str | None] = [tree.get("lang"), tree.get("xml:lang")]
    for meta in tree.iterfind(".//meta[@content]"):
        key = (meta.get("http-equiv") or meta.get("property") or meta.get("name") or "").lower()
        if key in ("content-language", "og:locale", "language", "dc.language"):
            candidates.append(meta.get("content"))
    for candidate in candidates:
        if candidate:
            match = _LANG_RE.match(candidate.split(",")[0])
            if match:
                return match.group(1).lower()
    return None


def _published_at(value: object) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        log.debug("unparseable date from htmldate: %r", value)
        return None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _date_params() -> dict[str, Any]:
    # max_date: htmldate rejects dates after today (computed per call: workers run for days)
    return {
        "original_date": True,
        "extensive_search": True,
        "outputformat": DATE_OUTPUT_FORMAT,
        "max_date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }


# --------------------------------------------------------------------------------------------
# page metadata read from the tree: headings, meta tags, JSON-LD
# --------------------------------------------------------------------------------------------


# Page chrome: a heading inside these (and not inside the article) is the site's, not the
# article's: the logo's <h1>, "Menu", "Follow us", widget titles.
_CHROME_TAGS: Final = frozenset({"nav", "aside", "footer"})
_CHROME_ROLES: Final = frozenset({"navigation", "complementary", "contentinfo", "search"})
_ARTICLE_TAGS: Final = frozenset({"article", "main"})
_ARTICLE_ROLES: Final = frozenset({"main", "article"})
# schema.org types whose "headline"/"author"/"datePublished" describe the page's article
_JSONLD_ARTICLE_TYPES: Final = frozenset(
    {
        "article",
        "newsarticle",
        "blogposting",
        "techarticle",
        "reportagenewsarticle",
        "opinionnewsarticle",
        "analysisnewsarticle",
        "backgroundnewsarticle",
        "reviewnewsarticle",
        "liveblogposting",
        "scholarlyarticle",
        "socialmediaposting",
        "report",
        "howto",
        "review",
    }
)
# types whose "name" is the site's (or its owner's) name
_JSONLD_SITE_TYPES: Final = frozenset({"website", "organization", "newsmediaorganization"})
_SITE_NAME_METAS: Final = frozenset(
    {"og:site_name", "application-name", "apple-mobile-web-app-title", "twitter:site"}
    | {"article:publisher", "publisher"}
)
# meta tags naming the author (a URL, e.g. a Facebook profile in article:author, is skipped)
_AUTHOR_METAS: Final = (
    "author",
    "parsely-author",
    "sailthru.author",
    "dc.creator",
    "article:author",
)
_MAX_HEADING_PARTS: Final = 30


@dataclass(frozen=True)
class _Heading:
    """An <h1> of the page."""

    text: str
    in_article: bool  # inside <article>/<main>
    in_chrome: bool  # in nav/aside/footer
    in_page_header: bool  # in a page header (<header>, role=banner) outside the article
    parts: tuple[str, ...]  # its own text and its descendants' texts (a headline wrapped in
    # a date, a label or a counter is one of them)


@dataclass(frozen=True)
class _JsonLdObject:
    types: frozenset[str]
    data: Mapping[str, Any]


@dataclass(frozen=True)
class _PageMeta:
    """What the page says about itself, collected in one pass over the tree."""

    headings: tuple[_Heading, ...]
    og_title: str | None
    twitter_title: str | None
    html_title: str | None
    jsonld_headline: str | None
    site_names: tuple[str, ...]
    jsonld_authors: tuple[str, ...]
    jsonld_authors_are_organisations: bool
    meta_authors: tuple[str, ...]


def _heading(element: HtmlTree) -> _Heading | None:
    text = _meta_text(_visible_text(element))
    if not text:
        return None
    in_article = in_header = in_chrome = False
    parent = element.getparent()
    while parent is not None:
        tag = parent.tag.lower() if isinstance(parent.tag, str) else ""
        role = (parent.get("role") or "").strip().lower()
        if tag in _ARTICLE_TAGS or role in _ARTICLE_ROLES:
            in_article = True
        elif tag == "header" or role == "banner":
            in_header = in_header or not in_article
        elif tag in _CHROME_TAGS or role in _CHROME_ROLES:
            in_chrome = True
        parent = parent.getparent()
    parts: list[str] = []
    for node in itertools.islice(element.iter(), _MAX_HEADING_PARTS):
        if not isinstance(node.tag, str):
            continue
        own = _meta_text((node.text or "") + "".join(child.tail or "" for child in node))
        if own:
            parts.append(own)
        if node is not element:
            inner = _meta_text(_visible_text(node))
            if inner:
                parts.append(inner)
    return _Heading(text, in_article, in_chrome, in_header and not in_article, tuple(parts))


def _jsonld_types(data: Mapping[str, Any]) -> frozenset[str]:
    value = data.get("@type")
    values = value if isinstance(value, list) else [value]
    return frozenset(v.strip().lower() for v in values if isinstance(v, str))


def _jsonld_objects(tree: HtmlTree) -> list[_JsonLdObject]:
    """Every JSON-LD object of the page, top level and @graph members, in document order."""
    objects: list[_JsonLdObject] = []
    for script in tree.iterfind(".//script[@type]"):
        if (script.get("type") or "").strip().lower() != "application/ld+json" or not script.text:
            continue
        try:
            data = json.loads(script.text, strict=False)
        except (ValueError, RecursionError):  # broken JSON-LD is common
            continue
        pending: list[Any] = [data]
        while pending and len(objects) < 200:
            item = pending.pop(0)
            if isinstance(item, list):
                pending[:0] = item
            elif isinstance(item, dict):
                objects.append(_JsonLdObject(_jsonld_types(item), item))
                graph = item.get("@graph")
                if isinstance(graph, (list, dict)):
                    pending[:0] = graph if isinstance(graph, list) else [graph]
    return objects


def _is_reference(value: str) -> bool:
    """A profile URL or a numeric id where a name should be."""
    return value.lower().startswith(("http://", "https://")) or value.isdigit()


def _jsonld_person_names(
    value: object, by_id: Mapping[str, Mapping[str, Any]]
) -> tuple[list[str], bool]:
    """Names in a JSON-LD "author" value (persons, organisations or plain strings) and
    whether all of them are organisations."""
    names: list[str] = []
    organisations = True
    for entry in value if isinstance(value, list) else [value]:
        if isinstance(entry, str):
            node: Mapping[str, Any] = {"name": entry}
        elif isinstance(entry, dict):
            node = entry
            ref = entry.get("@id")
            if "name" not in entry and isinstance(ref, str) and ref in by_id:
                node = by_id[ref]
        else:
            continue
        name = node.get("name")
        if isinstance(name, list):
            name = ", ".join(str(part) for part in name if isinstance(part, str))
        cleaned = _meta_text(name)
        if not cleaned or _is_reference(cleaned):
            continue
        names.append(cleaned)
        organisations = organisations and bool(_jsonld_types(node) & _JSONLD_SITE_TYPES)
    return names, organisations and bool(names)


def _page_meta(tree: HtmlTree) -> _PageMeta:
    headings = tuple(h for h in (_heading(el) for el in tree.iter("h1")) if h is not None)
    title_element = tree.find(".//head//title")  # not an inline SVG's <title>
    html_title = _meta_text(title_element.text_content()) if title_element is not None else None
    og_title = twitter_title = None
    site_names: list[str] = []
    meta_authors: dict[str, list[str]] = {}
    for meta in tree.iterfind(".//meta[@content]"):
        key = (meta.get("property") or meta.get("name") or "").strip().lower()
        value = _meta_text(meta.get("content"))
        if not value:
            continue
        if key == "og:title":
            og_title = og_title or value
        elif key == "twitter:title":
            twitter_title = twitter_title or value
        elif key in _SITE_NAME_METAS and not _is_reference(value):
            site_names.append(value.lstrip("@"))
        elif key in _AUTHOR_METAS and not _is_reference(value):
            meta_authors.setdefault(key, []).append(value)

    objects = _jsonld_objects(tree)
    by_id = {obj.data["@id"]: obj.data for obj in objects if isinstance(obj.data.get("@id"), str)}
    headline = None
    authors: list[str] = []
    organisations = False
    author_seen = False
    for obj in objects:
        is_article = bool(obj.types & _JSONLD_ARTICLE_TYPES)
        if is_article and headline is None:
            headline = _meta_text(obj.data.get("headline"))
        if is_article and not author_seen and "author" in obj.data:
            # the first article object that names an author is the page's article
            author_seen = True
            authors, organisations = _jsonld_person_names(obj.data["author"], by_id)
        publisher = obj.data.get("publisher")
        if isinstance(publisher, dict):
            site_names.extend(n for n in [_meta_text(publisher.get("name"))] if n)
        if obj.types & _JSONLD_SITE_TYPES:
            site_names.extend(n for n in [_meta_text(obj.data.get("name"))] if n)
    first_meta_authors = next(
        (meta_authors[key][0] for key in _AUTHOR_METAS if meta_authors.get(key)), None
    )
    return _PageMeta(
        headings=headings,
        og_title=og_title,
        twitter_title=twitter_title,
        html_title=html_title,
        jsonld_headline=headline,
        site_names=tuple(dict.fromkeys(site_names)),
        jsonld_authors=tuple(dict.fromkeys(authors)),
        jsonld_authors_are_organisations=organisations,
        meta_authors=_split_names(first_meta_authors),
    )


# --------------------------------------------------------------------------------------------
# authors
# --------------------------------------------------------------------------------------------

_MONTH: Final = (
    r"(?:January|February|March|April|June|July|August|September|October|November|December"
    r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec)"
)
# "By", "Author", "Written by", "Article by", "Recipe by", "This post was written by" ...
_BYLINE_PREFIX_RE: Final = re.compile(
    r"^(?:(?:this\s+)?(?:post|article|story|recipe|review|words|photos?)\s+)?"
    r"(?:(?:was\s+)?(?:written|posted|published|reviewed)\s+)?"
    r"(?:by|author|authors|written\s+by|posted\s+by)\s*[:\-]?\s+",
    re.I,
)
# what a scraped byline drags along after the name: "• March 3", "Last updated ...",
# "December 8, 2025", "on Dec 9", digits
_BYLINE_SUFFIX_RE: Final = re.compile(
    rf"\s*(?:[\u2022|\u00b7]|\b(?:[Ll]ast\s+)?[Uu]pdated\b|\b[Pp]ublished\b|\b[Oo]n\s+{_MONTH}\b"
    rf"|\b{_MONTH}\b\.?(?:\s+\d.*)?$|\bMay\s+\d|\d).*$"
)


def _split_names(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    names = (_normalise_line(name) for name in value.split(";"))
    return tuple(dict.fromkeys(name for name in names if name))


def _clean_byline(name: str) -> str | None:
    cleaned = _BYLINE_SUFFIX_RE.sub("", _BYLINE_PREFIX_RE.sub("", name.strip()))
    return cleaned.strip(" ,;:-") or None


def _choose_authors(meta: _PageMeta, scraped: object) -> tuple[str, ...]:
    """The article's authors: JSON-LD's (of the article object), then the author meta tags,
    then what trafilatura found (often a byline scraped from the page, cleaned up here).
    An organisation as JSON-LD author is often the publisher filling a required field: a
    person's byline on the page is preferred to it."""
    bylines: tuple[str, ...] = ()
    if isinstance(scraped, str):
        names = (_clean_byline(name) for name in _split_names(scraped))
        bylines = tuple(dict.fromkeys(name for name in names if name))
    if meta.jsonld_authors:
        if meta.jsonld_authors_are_organisations and bylines:
            return bylines
        return meta.jsonld_authors
    return meta.meta_authors or bylines
