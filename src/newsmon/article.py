"""The article record: one typed value from extraction to the bulk action.

The pipeline builds it (:func:`newsmon.pipeline.build_article`), boilerplate removal and story
assignment return changed copies, and :mod:`newsmon.store.articles` turns it into the
Elasticsearch document and back, in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

__all__ = ["Article", "ArticleSource"]


class ArticleSource(StrEnum):
    """Where an article's text came from (the document's ``extraction``)."""

    FULL = "full"  # the page, extracted
    FEED_FALLBACK = "feed_fallback"  # the feed item: the page could not be fetched or extracted
    REJECTED = "rejected"  # the index refused the article; its URLs, feed and title are kept


@dataclass(frozen=True)
class Article:
    """One article as newsmon indexes it (see config/elasticsearch/articles.template.json)."""

    url: str  # the link the feed gave
    canonical_url: str  # its canonical form (newsmon.urls): the article's key
    domain: str
    site_name: str
    title: str | None
    text: str  # paragraphs separated by "\n\n"
    extraction: ArticleSource
    fetched_at: datetime
    page_canonical_url: str | None = None
    final_url: str | None = None
    description: str | None = None
    feed_summary: str | None = None
    feed_guid: str | None = None  # the feed item's own id (RSS guid, Atom id) when it has one
    authors: tuple[str, ...] = ()
    published_at: datetime | None = None
    published_at_source: str | None = None  # "page" or "feed"
    language: str | None = None
    image: str | None = None
    feed_id: str | None = None
    tags: tuple[str, ...] = ()
    fetch_outcome: str | None = None
    fetch_reason: str | None = None
    http_status: int | None = None
    fetch_attempts: int = 1
    extraction_error: str | None = None
    extraction_error_reason: str | None = None
    boilerplate_removed: int | None = None
    index_error: str | None = None
    index_error_type: str | None = None
    # Set on the way to the index:
    url_keys: tuple[str, ...] = ()  # every canonical URL the article is known under
    text_hash: str | None = None
    lsh_bands: tuple[str, ...] = ()
    story_id: str | None = None
    duplicate_of: str | None = None
    similarity: float | None = None
    indexed_at: datetime | None = None
    # Updates in place (newsmon.updates, docs/updates.md):
    version: int = 1  # 1 when first indexed, one more on each update of its text
    updated_at: datetime | None = None  # when its text was last updated in place
    checked_at: datetime | None = None  # when its page was last fetched again (an update check)
    feed_date: datetime | None = None  # the latest date its feed gave it (published/updated)
    etag: str | None = None  # the page's validators, for a conditional GET when rechecked
    last_modified: str | None = None
    content_hash: str | None = None  # of the page's extracted text (before boilerplate removal)
    # Not indexed: where each paragraph of the extracted text sat in its page, for the template
    # learner (newsmon.extract.structure); () once the text is changed or when none was given.
    shapes: tuple[str, ...] = ()

    @property
    def word_count(self) -> int:
        return len(self.text.split())

    def with_text(self, text: str, removed: int) -> Article:
        """The article with ``removed`` boilerplate lines taken out of its text."""
        return replace(self, text=text, boilerplate_removed=removed or None, shapes=())
