"""Event grouping quality on real pages, and its cost beside the dedup stage.

    python bench/events.py [--pages ../shared/data/news-pages] [--labels FILE] [--seed N]
                           [--rounds N]

Truth: ``bench/data/news-pages-events.json`` (docs/events.md says how it was labelled): groups
of pages that report one happening; every other page is an event of its own. Each page is
extracted once (newsmon.extract.page) and keeps its publication date.

Syndicated copies are mixed in: for every page of a labelled event and for ``--copies`` other
pages, one copy on another outlet (a dateline before the first paragraph, the last paragraph cut
when there are three or more, published 1 to 10 hours later). A copy belongs to its original's
event.

Every document goes through the pipeline's two steps, oldest first: the story step
(newsmon.text.dedup.StoryMatcher, as today) and, for a document that starts a story, the event
step (newsmon.text.events); a document joining a story is in that story's event.

Scores, over unordered pairs of documents: a pair is *linked* when both got one event, *true*
when both are in one labelled event; precision = |linked ∩ true| / |linked|, recall =
|linked ∩ true| / |true|. Printed for the pages alone, and with the copies (the last line).
Baselines in the same run: stories only (what newsmon did before events), and titles sharing
half their words within the window. Every wrong join is listed.

Cost: CPU time of this process per document, median of ``--rounds``: the dedup stage
(fingerprint + assign) and the event step (signature + assign), over the same documents in
memory; the ratio is what events add to the dedup stage.

Last line: ``precision=… recall=…``
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from newsmon.dev.demo import load_pages
from newsmon.extract import extract_page
from newsmon.text.dedup import DocInfo, StoryMatcher, fingerprint, title_similarity
from newsmon.text.events import DEFAULT_WINDOW, EventMatcher, EventSignature, signature

HERE = Path(__file__).resolve().parent
DEFAULT_LABELS = HERE / "data" / "news-pages-events.json"
DEFAULT_PAGES = HERE.parent.parent / "shared" / "data" / "news-pages"
UNDATED = datetime(2019, 11, 19, 12, tzinfo=UTC)  # a page without a date: the collection days
DATELINES = (
    "WASHINGTON (AP) \u2014",
    "LONDON (Reuters) -",
    "NEW YORK (AFP) \u2013",
    "(CNN) \u2014",
)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Doc:
    doc_id: str
    domain: str
    title: str
    text: str
    when: datetime
    truth: str  # the labelled event (the page id for a page in no group)
    copy_of: str | None = None


def _domain(url: str) -> str:
    return (urlsplit(url).hostname or "").lower().removeprefix("www.")


def load_docs(pages_dir: str, labels_path: Path) -> list[Doc]:
    labels = json.loads(labels_path.read_text("utf-8"))
    truth = {p: e["id"] for e in labels["events"] for p in e["pages"]}
    docs: list[Doc] = []
    pages = load_pages(pages_dir)
    say(f"{pages_dir}: {len(pages)} pages, extracting")
    for page in pages:
        extracted = extract_page(page.html, page.original_url)
        if extracted is None or not extracted.text:
            continue
        when = extracted.published_at or UNDATED
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        docs.append(
            Doc(
                page.page_id,
                _domain(page.original_url),
                extracted.title or page.title or "",
                extracted.text,
                when,
                truth.get(page.page_id, page.page_id),
            )
        )
    missing = set(truth) - {d.doc_id for d in docs}
    if missing:
        raise SystemExit(f"labelled pages not extracted: {sorted(missing)}")
    return docs


def with_copies(docs: Sequence[Doc], extra: int, seed: int) -> list[Doc]:
    rng = random.Random(seed)
    grouped = [d for d in docs if d.truth != d.doc_id]
    others = [d for d in docs if d.truth == d.doc_id]
    chosen = grouped + rng.sample(others, min(extra, len(others)))
    out = list(docs)
    for n, d in enumerate(chosen):
        paragraphs = [p for p in d.text.split("\n\n") if p.strip()]
        if len(paragraphs) >= 3:
            paragraphs = paragraphs[:-1]
        paragraphs[0] = f"{rng.choice(DATELINES)} {paragraphs[0]}"
        later = d.when + timedelta(hours=rng.uniform(1, 10))
        out.append(
            Doc(
                f"copy-{n}",
                f"wire{n % 7}.example",
                d.title,
                "\n\n".join(paragraphs),
                later,
                d.truth,
                d.doc_id,
            )
        )
    return out


Joiner = Callable[[EventSignature], str]


def run(docs: Sequence[Doc], events: Joiner | None) -> dict[str, str]:
    """doc id -> predicted event: stories first, then ``events`` for each new story (None: every
    story is its own event)."""
    stories = StoryMatcher()
    event_of_story: dict[str, str] = {}
    out: dict[str, str] = {}
    for d in sorted(docs, key=lambda d: (d.when, d.doc_id)):
        match = stories.assign(DocInfo(d.doc_id, d.domain, d.title, fingerprint(d.text)))
        if match is not None:
            out[d.doc_id] = event_of_story.get(match.story_id, match.story_id)
            continue
        sig = signature(d.doc_id, d.domain, d.title, d.text, d.when) if events else None
        event = events(sig) if events and sig else d.doc_id
        event_of_story[d.doc_id] = event
        out[d.doc_id] = event
    return out


def title_baseline() -> Joiner:
    """Join the first earlier story in the window whose title shares half its words."""
    seen: list[tuple[EventSignature, str]] = []

    def join(sig: EventSignature) -> str:
        for other, event in seen:
            near = abs(other.when - sig.when) <= DEFAULT_WINDOW
            if near and title_similarity(other.title, sig.title) >= 0.5:
                seen.append((sig, event))
                return event
        seen.append((sig, sig.story_id))
        return sig.story_id

    return join


@dataclass(frozen=True)
class Score:
    precision: float
    recall: float
    linked: int
    true: int
    wrong: list[tuple[str, str]]


def score(docs: Sequence[Doc], predicted: dict[str, str]) -> Score:
    linked = true = both = 0
    wrong: list[tuple[str, str]] = []
    for a, b in itertools.combinations(docs, 2):
        same_pred = predicted[a.doc_id] == predicted[b.doc_id]
        same_true = a.truth == b.truth
        linked += same_pred
        true += same_true
        both += same_pred and same_true
        if same_pred and not same_true:
            wrong.append((a.doc_id, b.doc_id))
    return Score(
        both / linked if linked else 1.0, both / true if true else 1.0, linked, true, wrong
    )


def timed(docs: Sequence[Doc], rounds: int) -> tuple[float, float]:
    """CPU seconds per document of the dedup stage and of the event step (medians)."""
    ordered = sorted(docs, key=lambda d: (d.when, d.doc_id))
    dedup: list[float] = []
    event: list[float] = []
    for _ in range(rounds):
        started = time.process_time()
        stories = StoryMatcher()
        new: list[Doc] = []
        for d in ordered:
            if stories.assign(DocInfo(d.doc_id, d.domain, d.title, fingerprint(d.text))) is None:
                new.append(d)
        dedup.append(time.process_time() - started)
        started = time.process_time()
        matcher = EventMatcher()
        for d in new:
            sig = signature(d.doc_id, d.domain, d.title, d.text, d.when)
            if sig is not None:
                matcher.assign(sig)
        event.append(time.process_time() - started)
    n = len(ordered)
    return statistics.median(dedup) / n, statistics.median(event) / n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", default=str(DEFAULT_PAGES))
    parser.add_argument("--labels", type=Path, default=DEFAULT_LABELS)
    parser.add_argument("--copies", type=int, default=30, help="copies of unlabelled pages")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    pages = load_docs(args.pages, args.labels)
    docs = with_copies(pages, args.copies, args.seed)
    by_id = {d.doc_id: d for d in docs}
    groups = defaultdict(list)
    for d in pages:
        groups[d.truth].append(d)
    print(
        f"{len(pages)} pages, {sum(len(g) > 1 for g in groups.values())} labelled events "
        f"of 2 or more, {len(docs) - len(pages)} syndicated copies"
    )
    print(f"{'':32} {'pages P':>8} {'R':>6} {'+copies P':>10} {'R':>6}")
    results = {}
    for name, make in (
        ("stories only (before events)", lambda: None),
        ("titles sharing half their words", title_baseline),
        ("events (newsmon.text.events)", lambda: EventMatcher().assign),
    ):
        alone, mixed = score(pages, run(pages, make())), score(docs, run(docs, make()))
        results[name] = mixed
        print(
            f"{name:32} {alone.precision:8.3f} {alone.recall:6.3f} "
            f"{mixed.precision:10.3f} {mixed.recall:6.3f}"
        )
    final = results["events (newsmon.text.events)"]
    predicted = run(docs, EventMatcher().assign)
    copies = [d for d in docs if d.copy_of]
    landed = sum(predicted[d.doc_id] == predicted[d.copy_of or ""] for d in copies)
    print(f"copies in their original's event: {landed}/{len(copies)}")
    for a, b in final.wrong:
        print(
            f"  wrong join: {by_id[a].domain}: {by_id[a].title[:60]!r} + "
            f"{by_id[b].domain}: {by_id[b].title[:60]!r}"
        )
    missed = [
        (x, y)
        for x, y in itertools.combinations(pages, 2)
        if x.truth == y.truth and predicted[x.doc_id] != predicted[y.doc_id]
    ]
    for x, y in missed:
        print(f"  missed: {x.domain}: {x.title[:50]!r} + {y.domain}: {y.title[:50]!r}")
    dedup, event = timed(docs, args.rounds)
    print(
        f"cost per article (CPU, median of {args.rounds}): dedup stage {dedup * 1e3:.3f} ms, "
        f"event step {event * 1e3:.3f} ms, events/dedup = {event / dedup:.2f}"
    )
    print(f"precision={final.precision:.3f} recall={final.recall:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
