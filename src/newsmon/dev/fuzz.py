"""Random inputs for the parsers that take input from the web, and the property each must keep.

The vocabulary (feed and HTML element names, attributes, entities, CDATA, comments, DOCTYPEs,
XML declarations, charset labels, codecs), hypothesis strategies built from it, and one check
per parser: ``check_feed`` (``read_feed``), ``check_page`` (``extract_page``), ``check_decode``
(``decode_html``) and ``check_url`` (``canonical_url``), each failing with AssertionError when
the property does not hold. tests/test_fuzz.py runs them in ``make test``; bench/fuzz.py runs
them, and atheris over the same vocabulary, for minutes.

Needs hypothesis (the ``dev`` extra); nothing in newsmon imports this module.
"""

from __future__ import annotations

from hypothesis import strategies as st

from newsmon.extract import ExtractedPage, decode_html, extract_page
from newsmon.sources.feeds import MAX_ENTRIES, ParsedFeed, read_feed
from newsmon.urls import InvalidURL, canonical_url

FEED_NAMES = [
    "rss", "channel", "item", "entry", "feed", "title", "link", "description", "summary",
    "content", "pubDate", "published", "updated", "guid", "id", "author", "name", "category",
    "dc:creator", "dc:date", "content:encoded", "atom:link", "media:content", "rdf:RDF",
    "rss:item", "image", "url", "enclosure", "source", "x",
]  # fmt: skip
HTML_NAMES = [
    "html", "head", "body", "title", "meta", "link", "script", "style", "article", "main",
    "header", "footer", "nav", "aside", "div", "section", "p", "span", "a", "h1", "h2", "br",
    "img", "figure", "figcaption", "table", "tr", "td", "ul", "li", "blockquote", "time",
    "noscript", "iframe", "svg", "math", "template", "form", "input", "x-y",
]  # fmt: skip
ATTR_NAMES = [
    "href", "rel", "type", "version", "xmlns", "xmlns:atom", "charset", "content", "property",
    "name", "src", "lang", "xml:base", "isPermaLink", "term", "http-equiv", "datetime", "class",
    "id", "itemprop", "srcset", "rdf:about",
]  # fmt: skip
ATTR_VALUES = [
    "https://a.example/1", "/rel/2", "//b.example/3", "javascript:alert(1)", "data:,x",
    "http://[::1", "https://exa mple/", "alternate", "canonical", "utf-8", "x-bogus", "og:title",
    "og:url", "article:published_time", "2025-06-03T10:00:00Z", "9999-99-99", "text/html",
    "application/ld+json", "Content-Type", "text/html; charset=shift_jis", "2.0", "",
]  # fmt: skip
SNIPPETS = [
    "&amp;", "&nbsp;", "&lt;", "&#0;", "&#xD800;", "&#99999999;", "&#x;", "&bogus;", "&",
    "<![CDATA[<p>cdata</p>]]>", "<!-- comment -->", "<!--", "]]>", "<?php x ?>", "\x00",
    "\ufeff", "\u202e", "\r\n", '{"@type": "NewsArticle", "headline": "H", "author": [null]}',
    "Mon, 32 Foo 2025 25:61:00 +9999", "<br/>", "</p>", "<", ">",
]  # fmt: skip
CODECS = [
    "utf-8", "utf-16", "utf-16-le", "utf-32", "latin-1", "cp1252", "shift_jis", "euc-jp",
    "koi8-r", "gb18030", "big5", "iso-8859-7", "cp037", "utf-7",
]  # fmt: skip
LABELS = [*CODECS, "x-bogus", "", "utf8mb4", "unicode", "ebcdic", "ascii", "us-ascii"]

text = st.one_of(st.text(max_size=40), st.sampled_from(SNIPPETS))


def _element(names: list[str]) -> st.SearchStrategy[str]:
    attrs = st.dictionaries(
        st.sampled_from(ATTR_NAMES), st.one_of(st.sampled_from(ATTR_VALUES), text), max_size=3
    )

    def render(parts: tuple[str, dict[str, str], list[str], bool]) -> str:
        name, attributes, children, closed = parts
        rendered = "".join(f' {k}="{v}"' for k, v in attributes.items())
        end = f"</{name}>" if closed else ""
        return f"<{name}{rendered}>{''.join(children)}{end}"

    return st.recursive(
        text,
        lambda inner: st.tuples(
            st.sampled_from(names), attrs, st.lists(inner, max_size=4), st.booleans()
        ).map(render),
        max_leaves=25,
    )


PROLOGS = st.sampled_from(
    [
        "",
        '<?xml version="1.0"?>',
        '<?xml version="1.0" encoding="{label}"?>',
        "<!DOCTYPE html>",
        '<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" "x.dtd">',
        '<!DOCTYPE rss [<!ENTITY a "b">]>',
        '<meta charset="{label}">',
        '<meta http-equiv="Content-Type" content="text/html; charset={label}">',
    ]
)


@st.composite
def documents(draw: st.DrawFn, names: list[str]) -> tuple[bytes, str | None]:
    """A random document, its bytes in a random codec, and a Content-Type that may lie."""
    label = draw(st.sampled_from(LABELS))
    prolog = draw(PROLOGS).replace("{label}", label)
    body = draw(_element(names))
    codec = draw(st.sampled_from(CODECS))
    content = (prolog + body).encode(codec, errors="replace")
    if draw(st.booleans()):
        content = draw(st.binary(max_size=20)) + content
    header = draw(st.sampled_from(["text/html", "application/rss+xml", "text/xml", None]))
    if header and draw(st.booleans()):
        header += f"; charset={draw(st.sampled_from(LABELS))}"
    return content, header


feed_documents = st.one_of(documents(FEED_NAMES), st.tuples(st.binary(max_size=300), st.none()))
html_documents = st.one_of(documents(HTML_NAMES), st.tuples(st.binary(max_size=300), st.none()))


def check_feed(content: bytes, content_type: str | None) -> ParsedFeed:
    parsed = read_feed(content, "https://feed.example/rss", content_type=content_type)
    assert isinstance(parsed, ParsedFeed)
    assert len(parsed.entries) <= MAX_ENTRIES
    assert parsed.problem is None or (parsed.problem and len(parsed.problem) <= 300)
    for entry in parsed.entries:
        assert entry.url.lower().startswith(("http://", "https://"))
        assert entry.canonical_url == canonical_url(entry.url)
    return parsed


def check_page(content: bytes, content_type: str | None) -> ExtractedPage | None:
    page = extract_page(content, "https://page.example/a/1", content_type=content_type)
    assert page is None or (isinstance(page, ExtractedPage) and page.text.strip())
    return page


def check_decode(content: bytes, content_type: str | None) -> str:
    decoded = decode_html(content, content_type)
    assert isinstance(decoded, str)
    return decoded


def check_url(url: str) -> str | None:
    try:
        canonical = canonical_url(url)
    except InvalidURL:
        return None
    assert canonical.startswith(("http://", "https://"))
    assert canonical_url(canonical) == canonical  # canonical forms are fixed points
    return canonical


URL_PARTS = st.sampled_from(
    [
        "http://", "https://", "HTTP://", "//", "www.", "m.", "amp.", "a.example", "xn--", "[::1]",
        "[::ffff:127.0.0.1]", "127.0.0.1", "0x7f.1", ":80", ":443", ":0", ":99999", "@", "user:pw@",
        "/", "/./", "/../", "//", "%2F", "%", "%zz", "%E9", "?", "&", "=", "#", "utm_source=x",
        "amp=1", "index.html", ";jsessionid=1", "\u00e9", "\u0130", "\uff0e", "\u3002", " ", "\t",
        "\\", "a", "1",
    ]
)  # fmt: skip
urls = st.one_of(
    st.lists(URL_PARTS, max_size=12).map("".join),
    st.builds(lambda s, rest: s + rest, st.sampled_from(["http://", "https://"]), st.text()),
)
