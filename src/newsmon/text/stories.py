"""Story clusters: which story a new article joins (docs/stories.md).

The matching itself (fingerprints, verification, the same-domain guard) is
:mod:`newsmon.text.dedup`; the candidates come from the index through :mod:`newsmon.store.stories`
— one ``_msearch`` per batch, each search asking for articles of the last days that share the
exact text hash or an LSH band — which also keeps one document per story.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from ..article import Article, ArticleSource
from ..store import Client, IndexNames
from ..store import stories as store
from .dedup import DocInfo, Fingerprint, StoryMatcher, best_match, fingerprint

__all__ = ["StoryView", "assign_stories", "get_story"]

log = logging.getLogger(__name__)

WINDOW = timedelta(days=7)  # how far back a new article looks for its story
CANDIDATES = 10  # per article, best-scoring (most shared bands) first


def _info(
    doc_id: str, domain: str, title: str | None, fp: Fingerprint, story: str | None
) -> DocInfo:
    return DocInfo(doc_id=doc_id, domain=domain, title=title, fingerprint=fp, story_id=story)


def assign_stories(
    es: Client,
    names: IndexNames,
    batch: Sequence[tuple[str, Article]],
    matcher: StoryMatcher,
) -> tuple[list[Article], Counter[str]]:
    """The articles of ``batch`` (``(doc_id, article)`` about to be written) with their story
    (and fingerprint fields) set, in order, and counts by match kind.

    Candidates are indexed articles of the last :data:`WINDOW` and the articles met earlier in
    this run (``matcher``: they are not searchable yet).
    """
    counts: Counter[str] = Counter()
    out: list[Article] = []
    pending: list[tuple[int, str, Fingerprint]] = []
    for doc_id, article in batch:
        fp = fingerprint(article.text) if article.extraction is ArticleSource.FULL else None
        if fp is None or not fp.bands:
            out.append(replace(article, story_id=doc_id))  # too little text: a story of its own
            counts["story_new"] += 1
            continue
        out.append(replace(article, text_hash=fp.text_hash, lsh_bands=tuple(fp.bands)))
        pending.append((len(out) - 1, doc_id, fp))
    if not pending:
        return out, counts
    found = store.candidates(
        es,
        names,
        [(fp.text_hash, fp.bands) for _n, _i, fp in pending],
        exclude=[doc_id for _n, doc_id, _fp in pending],
        window=WINDOW,
        size=CANDIDATES,
    )
    known: dict[str, DocInfo] = {}  # a candidate of several new articles is fingerprinted once
    for (n, doc_id, fp), hits in zip(pending, found, strict=True):
        candidates = [known.get(i) or known.setdefault(i, _candidate(i, src)) for i, src in hits]
        article = out[n]
        info = _info(doc_id, article.domain, article.title, fp, None)
        match = best_match(info, [*candidates, *matcher.candidates(fp)])
        if match is None:
            article = replace(article, story_id=doc_id)
            counts["story_new"] += 1
        else:
            article = replace(
                article,
                story_id=match.story_id,
                duplicate_of=match.doc_id,
                similarity=round(match.similarity.jaccard, 4),
            )
            counts[f"story_{match.kind}"] += 1
        out[n] = article
        matcher.add(_info(doc_id, article.domain, article.title, fp, article.story_id))
    return out, counts


def _candidate(doc_id: str, source: Mapping[str, Any]) -> DocInfo:
    fp = fingerprint(source.get("text") or "")
    story = source.get("story_id")
    return _info(doc_id, str(source.get("domain") or ""), source.get("title"), fp, story)


@dataclass(frozen=True)
class StoryView:
    story: Mapping[str, Any]
    articles: list[Mapping[str, Any]]  # title, url, domain, site_name, published_at, indexed_at

    def render(self) -> str:
        s = self.story
        lines = [
            f"story {s.get('story_id')}: {s.get('title')}",
            f"  {s.get('article_count')} article(s) in {s.get('outlet_count')} outlet(s): "
            + ", ".join(s.get("outlets") or []),
            f"  first seen {s.get('first_seen')}  last seen {s.get('last_seen')}",
            f"  first: {s.get('first_url')}",
        ]
        for a in self.articles:
            when = a.get("published_at") or a.get("indexed_at") or ""
            lines.append(f"  - {str(when)[:16]:<16}  {a.get('domain', ''):<28} {a.get('title')}")
            lines.append(f"    {a.get('url')}")
        return "\n".join(lines)


def get_story(es: Client, names: IndexNames, story_or_article_id: str) -> StoryView | None:
    """A story and its articles, by story id or by the id of any of its articles."""
    found = store.find_story(es, names, story_or_article_id)
    return StoryView(story=found[0], articles=found[1]) if found else None
