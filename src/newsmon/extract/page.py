"""Article extraction: raw HTML in, clean article text and metadata out.

The heavy lifting (finding the main content, metadata, dates) is done by trafilatura and
htmldate; this module decodes bytes, picks the settings, and turns the result into the
:class:`ExtractedPage` the rest of newsmon works with:

* ``text`` is the article body as the user reads it: one paragraph per block, blocks separated
  by one blank line, whitespace normalised, no title line at the start (page templates often
  repeat the headline) and no ad-slot labels ("Advertisement", "Advertisement - Scroll to
  continue", ...). Nothing else is removed: a line that could be content stays.
* When trafilatura keeps only part of an article split across containers, a second
  extraction (readability, then recall mode) replaces the text if it adds article text.
* Metadata: title, authors, publication date (timezone-aware), language, site name,
  description, image and the canonical URL the page declares. Title and authors are chosen
  here from the page's own candidates (<h1>, og:title, JSON-LD, <title>, meta tags) rather than
  taken from trafilatura: the headline the reader sees, without the site name; the article's
  authors, not the publisher or a byline's date.

``extract_page`` never raises on bad input: it logs and returns ``None`` when no article text
can be extracted (a ``MemoryError`` is passed on: newsmon.isolate runs it under a memory
limit). It takes HTML as ``str`` or ``bytes``; compressed files (``.html.gz``) are the
caller's business.

Quality is measured by ``bench/extraction_quality.py`` (word-level bag-of-words F1 against two
ground-truth sets, title/author/date accuracy on WCXB); the settings and rules were chosen with
it (docs/extraction.md).

This module runs the extraction and builds the :class:`ExtractedPage`; the parts live next to
it: newsmon.extract.decode (bytes to text), newsmon.extract.meta (metadata and authors),
newsmon.extract.title (the title), newsmon.extract.text (trafilatura's settings, the article
text) and newsmon.extract.normalise (the text normalisation they share).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import trafilatura

from .decode import decode_html
from .meta import (
    _absolute_http_url,
    _canonical_url,
    _choose_authors,
    _date_params,
    _host,
    _language,
    _page_meta,
    _published_at,
    _split_names,
)
from .normalise import HtmlTree, _clean_field
from .structure import line_shapes
from .text import TRAFILATURA_OPTIONS, TRAFILATURA_RETRY_OPTIONS, _article_text
from .title import _choose_title, _site_names

log = logging.getLogger(__name__)

__all__ = ["ExtractedPage", "extract_page"]


@dataclass(frozen=True)
class ExtractedPage:
    """What newsmon keeps of a fetched article page."""

    title: str | None
    text: str  # article body: paragraphs separated by one blank line, no title line, stripped
    authors: tuple[str, ...]
    published_at: datetime | None  # timezone-aware (UTC if the page gives no zone)
    language: str | None  # e.g. "en"
    site_name: str | None
    description: str | None
    image: str | None  # absolute http(s) URL or None
    page_canonical_url: str | None  # rel=canonical / og:url made absolute; None if absent
    # per paragraph of text: its place in the page when it is a teaser card's text, else "";
    # () when no line is (newsmon.extract.structure)
    shapes: tuple[str, ...] = ()


# --------------------------------------------------------------------------------------------
# extraction
# --------------------------------------------------------------------------------------------


def _parse(html: str) -> HtmlTree | None:
    if not html.strip():
        return None
    tree: HtmlTree | None = trafilatura.load_html(html)
    return tree if tree is not None and hasattr(tree, "iter") else None


def _extract(
    html: str | bytes,
    url: str | None,
    content_type: str | None,
    options: Mapping[str, Any],
    retry_options: Mapping[str, Any] | None = None,
) -> ExtractedPage | None:
    text_in = decode_html(html, content_type) if isinstance(html, bytes) else html
    tree = _parse(text_in)
    if tree is None:
        log.info("no HTML document to extract from: %s", url)
        return None
    page = _extract_tree(tree, url, options, text_in)
    if page is None and retry_options is not None:
        log.debug("no text with the default settings, retrying in recall mode: %s", url)
        page = _extract_tree(tree, url, retry_options, text_in)
    if page is None:
        log.info("no article text extracted: %s", url)
    return page


def _extract_tree(
    tree: HtmlTree, url: str | None, options: Mapping[str, Any], html: str | None = None
) -> ExtractedPage | None:
    document = trafilatura.bare_extraction(
        tree,
        url=url,
        with_metadata=True,
        date_extraction_params=_date_params(),
        **options,
    )
    if document is None:
        return None
    site_name = _clean_field(getattr(document, "sitename", None))
    host = _host(url) or _clean_field(getattr(document, "hostname", None))
    trafilatura_title = _clean_field(getattr(document, "title", None))
    scraped_authors = getattr(document, "author", None)
    # the rules below only refine what trafilatura found: a failure in them must not cost the
    # article, so it falls back to trafilatura's title and authors / the text as extracted
    try:
        meta = _page_meta(tree)
        site = _site_names(meta, host)
        title = _choose_title(meta, site, trafilatura_title)
        short_title = site.strip(trafilatura_title)
        authors = _choose_authors(meta, scraped_authors)
    except MemoryError:
        raise  # out of the worker's memory limit: not a rule failing (newsmon.isolate)
    except Exception:
        log.warning("title/author rules failed, keeping trafilatura's: %s", url, exc_info=True)
        title, short_title = trafilatura_title, None
        authors = _split_names(scraped_authors if isinstance(scraped_authors, str) else None)
    titles = tuple(dict.fromkeys(t for t in (title, trafilatura_title, short_title) if t))
    text = _article_text(tree, url, str(getattr(document, "text", None) or ""), titles, html)
    if not text:
        return None
    try:
        shapes = line_shapes(tree, url, text)
    except MemoryError:
        raise
    except Exception:  # a hint for the template learner: never worth the article
        log.warning("line shapes failed, the text has none: %s", url, exc_info=True)
        shapes = ()
    return ExtractedPage(
        title=title,
        text=text,
        authors=authors,
        published_at=_published_at(getattr(document, "date", None)),
        language=_language(tree),
        site_name=site_name,
        description=_clean_field(getattr(document, "description", None)),
        image=_absolute_http_url(_clean_field(getattr(document, "image", None)), url),
        page_canonical_url=_canonical_url(tree, url),
        shapes=shapes,
    )


def extract_page(
    html: str | bytes, url: str | None = None, *, content_type: str | None = None
) -> ExtractedPage | None:
    """Extract the article of one HTML page.

    ``html`` may be text or the raw bytes of the response (decoded with :func:`decode_html`,
    using ``content_type``, the HTTP header, when given). ``url`` is the page's address; it
    helps metadata extraction and makes relative URLs absolute. Returns ``None`` when no
    article text could be extracted; never raises on bad HTML.
    """
    try:
        return _extract(html, url, content_type, TRAFILATURA_OPTIONS, TRAFILATURA_RETRY_OPTIONS)
    except MemoryError:
        raise  # the caller's business: newsmon.isolate records it and replaces the worker
    except Exception:
        log.warning("extraction failed: %s", url, exc_info=True)
        return None
