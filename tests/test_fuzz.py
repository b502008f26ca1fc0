"""Property tests over the parsers that take input from the web: nothing escapes, ever.

Structured generators build XML/HTML-ish trees (feed and page vocabulary, attributes, entities,
CDATA, comments, unclosed tags, DOCTYPEs, XML declarations) encoded in random charsets, plus raw
bytes. Each function must return its value (or, for ``canonical_url``, raise only
``InvalidURL``). The generators and checks are in ``newsmon.dev.fuzz``; the example counts are
kept small for ``make test``; ``bench/fuzz.py`` runs the same generators (and atheris) for
minutes.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsmon.dev.fuzz import (
    check_decode,
    check_feed,
    check_page,
    check_url,
    feed_documents,
    html_documents,
    urls,
)

QUICK = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@QUICK
@given(feed_documents)
def test_read_feed_never_raises(document: tuple[bytes, str | None]) -> None:
    check_feed(*document)


@settings(QUICK, max_examples=40)
@given(html_documents)
def test_extract_page_never_raises(document: tuple[bytes, str | None]) -> None:
    check_page(*document)


@QUICK
@given(st.one_of(html_documents, feed_documents))
def test_decode_html_never_raises(document: tuple[bytes, str | None]) -> None:
    check_decode(*document)


@settings(QUICK, max_examples=200)
@given(urls)
def test_canonical_url_is_a_value_or_invalid_url(url: str) -> None:
    check_url(url)
