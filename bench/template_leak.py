#!/usr/bin/env python
"""How much of a syndicating site's page template ends up in the indexed ``text``.

Usage::

    .venv/bin/python bench/template_leak.py [--pages DIR] [--warmup N] [--limit N]

Every page of ``--pages`` (default ``../shared/data/news-pages``; a WCXB directory works too)
is copied, as its hand-marked article text, into each of four page templates of this bench's
own, each served as its own outlet from a loopback address (``newsmon.dev.demo.DemoSite``).
Around and inside the article every copy carries what real templates carry, varying per page:

* ``wire``: a "Read more: <another headline>" line inside the text, a "Related" list of three
  other headlines, a copyright line over 100 characters with the year of publication;
* ``daily``: "Trending: …" and "MORE: …" lines, a newsletter prompt, a "You may also like"
  block of teaser cards (linked headline and its first sentence), a long disclaimer;
* ``metro``: "ALSO READ | …" and "Related: …" lines, "See also" and "Recommended for you"
  lists, a long copyright line;
* ``gazette``: no lead-in words and no headings, only structure: a teaser card (linked
  headline and first sentence of another story) between the paragraphs and a rail of three
  after them, in the article's own container (``--no-shapes`` measures without the learner
  that finds them by their place in the page).

Related headlines are the titles of other pages of the set, linked to their copies on the same
outlet. The copies are ingested by the real pipeline (``newsmon.pipeline.ingest``: fetch,
extraction in worker processes, boilerplate clean-up, bulk writes) into the real node
(``NEWSMON_ES_URL`` or ``newsmon es up``'s node), under an index prefix of its own that is
deleted at the end: first a warm-up cycle with the first ``--warmup`` copies of each outlet
(what the site has already published), then a cycle with the rest, which is what is measured.

Measures (token bags: lower-cased ``\\w+`` runs, multiset arithmetic, summed over the measured
copies): *template_share* = tokens of the indexed text not in the article / tokens of the
indexed text; *article_loss* = article tokens of the copy's extracted text (``extract_page``
on the same bytes) missing from the indexed text / article tokens of the extracted text (what
the clean-up took from the article); *false_match_share*: each related headline is searched as
an alert would search it (a phrase in ``title`` or ``text``), and a hit on a copy that is not
a copy of that headline's story is a false match: false hits / all hits.

Last line: ``template_share=… article_loss=… false_match_share=…`` (targets ≤ 0.003, ≤ 0.002,
≤ 0.01).
"""

from __future__ import annotations

import argparse
import html
import json
import random
import re
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from pathlib import Path
from typing import Any

try:
    from newsmon.config import Settings, load_feeds
except ImportError:  # running from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from newsmon.config import Settings, load_feeds
from newsmon import pipeline
from newsmon.dev.demo import DemoPage, DemoSite, load_pages
from newsmon.dev.local import local_node_url
from newsmon.extract.page import extract_page
from newsmon.pipeline import ingest
from newsmon.store import IndexNames, connect, ensure_indices
from newsmon.text.boilerplate import DEFAULT_RULES, clean_batch
from newsmon.urls import canonical_url, url_id

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PAGES = REPO.parent / "shared" / "data" / "news-pages"
START = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
TOKEN_RE = re.compile(r"\w+")


def tokens(text: str | None) -> Counter[str]:
    # soft hyphens: in some hand-marked texts, not in what a reader (or the extractor) sees
    return Counter(TOKEN_RE.findall((text or "").replace("\u00ad", "").lower()))


def ground_truth(root: Path) -> dict[str, str]:
    """page id -> hand-marked article text."""
    single = root / "ground-truth.json"
    if single.is_file():
        data = json.loads(single.read_text("utf-8"))
        return {k: str(v.get("articleBody") or "") for k, v in data.items()}
    out = {}
    for path in sorted((root / "ground-truth").glob("*.json")):
        gt = json.loads(path.read_text("utf-8")).get("ground_truth") or {}
        out[path.stem] = str(gt.get("main_content") or "")
    return out


@dataclass(frozen=True)
class Story:
    page_id: str
    title: str
    paragraphs: tuple[str, ...]


@dataclass(frozen=True)
class Copy:
    outlet: str
    story: Story
    path: str
    published: datetime
    related: tuple[Story, ...]  # headlines linked from this copy


def _a(outlet: str, story: Story) -> str:
    return f'<a href="/{outlet}/news/{story.page_id}/">{html.escape(story.title)}</a>'


def _first_sentence(story: Story) -> str:
    text = story.paragraphs[0] if story.paragraphs else story.title
    return re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0][:200]


def _page(copy: Copy) -> bytes:
    """The copy's page in its outlet's template."""
    o, s, r = copy.outlet, copy.story, copy.related
    year = copy.published.year
    paras = [f"<p>{html.escape(p)}</p>" for p in s.paragraphs]
    half = max(1, len(paras) // 2)
    nav = "".join(
        f'<li><a href="/{o}/{x}/">{x.title()}</a></li>'
        for x in ("world", "business", "sport", "opinion")
    )
    if o == "wire":
        body = [
            *paras[:2],
            f'<p class="read-more"><strong>Read more:</strong> {_a(o, r[0])}</p>',
            *paras[2:],
            f"<p><em>Copyright {year} Wire Agency Ltd. All rights reserved. This material may "
            "not be published, broadcast, rewritten or redistributed in whole or in part "
            "without prior written permission.</em></p>",
            '<div class="related"><h3>Related</h3><ul>'
            + "".join(f"<li>{_a(o, x)}</li>" for x in r[1:4])
            + "</ul></div>",
        ]
    elif o == "daily":
        cards = "".join(
            f'<div class="card">{_a(o, x)}<p>{html.escape(_first_sentence(x))}</p></div>'
            for x in r[2:4]
        )
        body = [
            *paras[:1],
            f"<p>Trending: {_a(o, r[0])}</p>",
            *paras[1:half],
            f"<p><b>MORE:</b> {_a(o, r[1])}</p>",
            *paras[half:],
            "<p>The Daily Ledger is not responsible for the content of external sites. Our "
            "journalism is independent: read about our editorial standards and how we "
            "correct errors.</p>",
            '<div class="newsletter"><p>Sign up for The Daily Ledger morning briefing and get '
            "the news that matters in your inbox.</p></div>",
            f'<section class="more"><h2>You may also like</h2>{cards}</section>',
        ]
    elif o == "gazette":
        # no lead-in words, no headings: only the page's structure tells these from the text

        def card(x: Story, kind: str) -> str:
            return f'<div class="{kind}">{_a(o, x)}<p>{html.escape(_first_sentence(x))}</p></div>'

        body = [
            *paras[:half],
            card(r[0], "c-entry-box"),
            *paras[half:],
            '<div class="c-river">' + "".join(card(x, "c-river__item") for x in r[1:4]) + "</div>",
        ]
    else:
        body = [
            *paras[:half],
            f"<p><strong>ALSO READ |</strong> {_a(o, r[0])}</p>",
            *paras[half:],
            f"<p>Related: {_a(o, r[1])}</p>",
            "<h3>See also</h3><ul>" + "".join(f"<li>{_a(o, x)}</li>" for x in r[2:4]) + "</ul>",
            "<h3>Recommended for you</h3><ul>"
            + "".join(f"<li>{_a(o, x)}</li>" for x in r[4:6])
            + "</ul>",
            f"<p>\u00a9 {year} Metro Times Network. All rights reserved. Reproduction in whole "
            "or in part without written permission is strictly prohibited.</p>",
        ]
    title = html.escape(s.title)
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>{title} | {o.title()}</title>
<meta property="og:title" content="{title}">
<meta property="og:site_name" content="{o.title()}">
<meta property="article:published_time" content="{copy.published.isoformat()}">
</head><body>
<header><div class="logo">{o.title()}</div><nav><ul>{nav}</ul></nav></header>
<main><article>
<h1>{title}</h1>
<div class="byline">By Staff Reporter | {copy.published:%B %d, %Y}</div>
<div class="article-body">{"".join(body)}</div>
</article></main>
<footer><p>{o.title()} Media</p><a href="/{o}/privacy/">Privacy policy</a></footer>
</body></html>""".encode()


OUTLETS = ("wire", "daily", "metro", "gazette")


def build(pages: list[DemoPage], truth: dict[str, str], seed: int) -> dict[str, list[Copy]]:
    stories = []
    for page in pages:
        body = truth.get(page.page_id, "").strip()
        paragraphs = tuple(p.strip() for p in re.split(r"\n\s*\n|\n", body) if p.strip())
        extracted = extract_page(page.html, page.original_url)
        title = (extracted.title if extracted else None) or page.title
        if paragraphs and title:
            stories.append(Story(page.page_id, " ".join(title.split())[:200], paragraphs))
    copies: dict[str, list[Copy]] = {}
    for n, outlet in enumerate(OUTLETS):
        rng = random.Random(f"{seed}-{outlet}")
        order = stories[n:] + stories[:n]
        out = []
        for i, story in enumerate(order):
            others = [x for x in stories if x.page_id != story.page_id]
            out.append(
                Copy(
                    outlet,
                    story,
                    f"/{outlet}/news/{story.page_id}/",
                    START + timedelta(days=i, hours=n),
                    tuple(rng.sample(others, 6)),
                )
            )
        copies[outlet] = out
    return copies


def _measure(
    es: Any,
    names: IndexNames,
    urls: dict[tuple[str, str], str],
    measured: list[Copy],
    show: int = 0,
) -> dict[str, float]:
    index = names.articles
    ids = {url_id(canonical_url(urls[(c.outlet, c.story.page_id)])): c for c in measured}
    docs: dict[str, dict[str, Any]] = {}
    found = es.mget(index=index, ids=list(ids), source=["text", "title", "extraction"])
    for d in found["docs"]:
        if d.get("found"):
            docs[d["_id"]] = d["_source"]
    left = text_total = lost = art_total = 0
    leaky = 0
    leftovers: Counter[str] = Counter()
    for doc_id, c in ids.items():
        src = docs.get(doc_id)
        if src is None:
            print(f"missing: {c.outlet} {c.story.page_id}", file=sys.stderr)
            continue
        article = tokens("\n".join(c.story.paragraphs))
        own = set(c.story.paragraphs)
        indexed = tokens(src.get("text"))
        raw = extract_page(_page(c), urls[(c.outlet, c.story.page_id)])
        extracted = tokens(raw.text if raw else "")
        extra = sum((indexed - article).values())
        for line in (src.get("text") or "").split("\n\n"):
            if line not in own and tokens(line) - article:
                leftovers[f"{c.outlet}: {re.sub(r'[0-9]', '0', line)[:90]}"] += 1
        left += extra
        leaky += extra > 0
        text_total += sum(indexed.values())
        in_extracted = extracted & article
        if show:
            kept = set((src.get("text") or "").split("\n\n"))
            for line in (raw.text if raw else "").split("\n\n"):
                if line not in kept and line in own:
                    print(f"  article line removed: {c.outlet} {line[:100]!r}", file=sys.stderr)
        lost += sum((in_extracted - (indexed & article)).values())
        art_total += sum(in_extracted.values())
    # false matches: a related headline searched like an alert rule
    headlines: dict[str, set[str]] = {}  # headline -> page ids of its story
    for c in measured:
        for r in c.related:
            headlines.setdefault(r.title, set()).add(r.page_id)
    hits = false = 0
    for headline, story_ids in sorted(headlines.items()):
        res = es.search(
            index=index,
            size=1000,
            query={
                "multi_match": {"query": headline, "type": "phrase", "fields": ["title", "text"]}
            },
            source=False,
            track_total_hits=False,
        )
        for hit in res["hits"]["hits"]:
            c2 = ids.get(hit["_id"])
            if c2 is None:
                continue
            hits += 1
            if c2.story.page_id not in story_ids:
                false += 1
                if show:
                    print(
                        f"  false match {headline[:60]!r} in {c2.outlet} {c2.path}", file=sys.stderr
                    )
    if show:
        for line, n in leftovers.most_common(show):
            print(f"  left {n:4d}x  {line}", file=sys.stderr)
    return {
        "template_share": left / max(1, text_total),
        "article_loss": lost / max(1, art_total),
        "false_match_share": false / max(1, hits),
        "copies": len(ids),
        "copies_with_template": leaky,
        "headlines": len(headlines),
        "hits": hits,
        "false": false,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=Path, default=DEFAULT_PAGES)
    parser.add_argument("--warmup", type=int, default=10, help="copies per outlet before")
    parser.add_argument("--limit", type=int, default=None, help="first N pages only")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", action="store_true", help="keep the indices")
    parser.add_argument("--show", type=int, default=0, help="print the N most common lines left")
    parser.add_argument(
        "--no-shapes",
        action="store_true",
        help="without the teaser cards learned from the page's structure (what it was before)",
    )
    args = parser.parse_args(argv)
    if args.no_shapes:
        rules = replace(DEFAULT_RULES, learn_shapes=False)
        pipeline.clean_batch = lambda store, items: clean_batch(store, items, rules)

    pages = load_pages(args.pages, args.limit)
    truth = ground_truth(args.pages)
    copies = build(pages, truth, args.seed)
    base = Settings.from_env(local_node=local_node_url)
    prefix = f"bench-leak-{uuid.uuid4().hex[:8]}-"
    settings = replace(
        base,
        index_prefix=prefix,
        fetch=replace(base.fetch, allow_networks=(ip_network("127.0.0.0/8"),)),
    )
    es = connect(settings)
    names = IndexNames(prefix)
    ensure_indices(es, names, settings.config_dir)
    sites: dict[str, DemoSite] = {}
    urls: dict[tuple[str, str], str] = {}
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            feeds_file = Path(tmp) / "feeds.yaml"
            lines = ["feeds:"]
            for n, outlet in enumerate(OUTLETS):
                site = DemoSite([], feed_count=0, host=f"127.0.{n + 1}.7").start()
                sites[outlet] = site
                for c in copies[outlet]:
                    urls[(outlet, c.story.page_id)] = site.add_page(c.path, _page(c))
                lines += [f"  - id: leak-{outlet}", f"    name: {outlet}"]
                lines += [f"    url: {site.feed_url('news')}", "    language: en"]
            feeds_file.write_text("\n".join(lines) + "\n")
            feeds = load_feeds(str(feeds_file))
            measured: list[Copy] = []
            for cycle, upto in ((1, args.warmup), (2, None)):
                for outlet, site in sites.items():
                    listed = copies[outlet][:upto]
                    items = [
                        (urls[(outlet, c.story.page_id)], c.story.title, c.published)
                        for c in listed
                    ]
                    site.set_feed("news", items)
                    if cycle == 2:
                        measured += copies[outlet][args.warmup :]
                summary = ingest(feeds, settings)
                print(
                    f"cycle {cycle}: indexed {summary.articles['indexed']}, "
                    f"boilerplate lines removed {summary.articles['boilerplate_lines_removed']}",
                    file=sys.stderr,
                )
        es.indices.refresh(index=names.articles)
        result = _measure(es, names, urls, measured, args.show)
    finally:
        for site in sites.values():
            site.stop()
        if not args.keep:
            for name in es.indices.get(index=f"{prefix}*", expand_wildcards="all"):
                es.indices.delete(index=name)
            templates = es.options(ignore_status=404).indices.get_index_template(name=f"{prefix}*")
            for template in templates.get("index_templates", []):
                es.indices.delete_index_template(name=template["name"])
    print(
        f"{result['copies']} copies measured ({len(OUTLETS)} outlets, warm-up {args.warmup} "
        f"each), {result['copies_with_template']} with template tokens left; "
        f"{result['headlines']} related headlines searched: {result['hits']} hits, "
        f"{result['false']} false; {time.monotonic() - started:.0f}s"
    )
    print("targets: template_share<=0.003 article_loss<=0.002 false_match_share<=0.01")
    print(
        f"template_share={result['template_share']:.4f} "
        f"article_loss={result['article_loss']:.4f} "
        f"false_match_share={result['false_match_share']:.4f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
