"""The article record and its document: built in one place, read back in one place."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

from newsmon.article import Article, ArticleSource
from newsmon.config import FeedConfig
from newsmon.extract.page import ExtractedPage
from newsmon.pipeline import build_article
from newsmon.sources.feeds import FeedEntry
from newsmon.store.articles import from_document, to_document

PKT = timezone(timedelta(hours=5))
NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
FEED = FeedConfig(id="dawn", name="Dawn", url="https://www.dawn.com/feeds/home", tags=["pk"])
ENTRY = FeedEntry(
    guid="tag:dawn.com,2026:1",
    url="https://www.dawn.com/news/1?utm_source=rss",
    canonical_url="https://dawn.com/news/1",
    title="Feed title",
    summary="What the feed says.",
    published_at=datetime(2026, 11, 20, 8, 0, tzinfo=UTC),
    authors=("Feed Desk",),
)
PAGE = ExtractedPage(
    title="Page title",
    text="First paragraph here.\n\nSecond one.",
    authors=("A. Writer",),
    published_at=datetime(2026, 11, 20, 12, 0, tzinfo=PKT),
    language="en",
    site_name="DAWN.COM",
    description="A description",
    image="https://www.dawn.com/image.jpg",
    page_canonical_url="https://www.dawn.com/news/1",
)


def test_a_full_article_document_has_the_page_fields_in_utc() -> None:
    article = build_article(ENTRY.url, ENTRY.canonical_url, PAGE, entry=ENTRY, feed=FEED, now=NOW)
    doc = to_document(article)
    assert doc == {
        "url": ENTRY.url,
        "canonical_url": "https://dawn.com/news/1",
        "page_canonical_url": "https://www.dawn.com/news/1",
        "domain": "dawn.com",
        "site_name": "DAWN.COM",
        "title": "Page title",
        "text": "First paragraph here.\n\nSecond one.",
        "description": "A description",
        "feed_summary": "What the feed says.",
        "feed_guid": "tag:dawn.com,2026:1",
        "authors": ["A. Writer"],
        "published_at": "2026-11-20T07:00:00+00:00",
        "published_at_source": "page",
        "language": "en",
        "image": "https://www.dawn.com/image.jpg",
        "feed_id": "dawn",
        "tags": ["pk"],
        "word_count": 5,
        "extraction": "full",
        "fetch_attempts": 1,
        "fetched_at": "2026-11-20T09:30:00+00:00",
        # what an update in place compares (newsmon.updates): the feed's date, the text's hash
        "version": 1,
        "feed_date": "2026-11-20T08:00:00+00:00",
        "content_hash": hashlib.sha256(PAGE.text.encode()).hexdigest(),
        # the words as rules match them, where they are in the title and text
        "terms": {"title": "page title", "text": "first paragraph here   second one "},
        "exact": {"title": "page title", "text": "first paragraph here   second one "},
    }


def test_a_document_from_before_updates_reads_as_version_1_and_a_later_one_round_trips() -> None:
    article = build_article(ENTRY.url, ENTRY.canonical_url, PAGE, entry=ENTRY, feed=FEED, now=NOW)
    old = {k: v for k, v in to_document(article).items() if k not in ("version", "feed_date")}
    assert from_document(old).version == 1 and from_document(old).feed_date is None
    updated = replace(article, version=3, updated_at=NOW, checked_at=NOW, etag='"e1"')
    back = from_document(to_document(updated))
    assert (back.version, back.updated_at, back.checked_at, back.etag) == (3, NOW, NOW, '"e1"')


def test_a_feed_fallback_keeps_the_feed_item_and_an_empty_text_counts_zero_words() -> None:
    article = build_article(ENTRY.url, ENTRY.canonical_url, None, entry=ENTRY, feed=FEED, now=NOW)
    doc = to_document(article)
    assert doc["extraction"] == "feed_fallback"
    assert doc["title"] == "Feed title"
    assert doc["text"] == "What the feed says."
    assert doc["published_at"] == "2026-11-20T08:00:00+00:00"
    assert doc["published_at_source"] == "feed"
    assert doc["authors"] == ["Feed Desk"]
    empty = replace(ENTRY, summary=None)
    doc = to_document(build_article(ENTRY.url, ENTRY.canonical_url, None, entry=empty, now=NOW))
    assert (doc["text"], doc["word_count"]) == ("", 0)


def test_a_rejected_article_keeps_no_text() -> None:
    article = Article(
        url="https://a.example/x",
        canonical_url="https://a.example/x",
        domain="a.example",
        site_name="a.example",
        title="T",
        text="",
        extraction=ArticleSource.REJECTED,
        fetched_at=NOW,
        index_error="400 mapper_parsing_exception: no",
    )
    doc = to_document(article)
    assert "text" not in doc
    assert "word_count" not in doc
    assert doc["extraction"] == "rejected"


def test_a_document_reads_back_as_the_same_record() -> None:
    article = build_article(ENTRY.url, ENTRY.canonical_url, PAGE, entry=ENTRY, feed=FEED, now=NOW)
    article = replace(
        article.with_text("First paragraph here.", 1),
        url_keys=("https://dawn.com/news/1",),
        story_id="s1",
        lsh_bands=("b1", "b2"),
        text_hash="h",
        indexed_at=NOW,
    )
    back = from_document(to_document(article))
    assert back == replace(article, published_at=article.published_at.astimezone(UTC))  # type: ignore[union-attr]
    assert back.boilerplate_removed == 1
    assert back.word_count == 3
