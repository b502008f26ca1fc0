"""Story-cluster quality: syndicated copies and hard negatives built from real pages.

    python bench/dedup_quality.py --pages ../shared/data/news-pages [--pages DIR2 ...] [--seed N]
    python bench/dedup_quality.py --pages DIR --sweep      # the parameter table of docs/dedup.md
    python bench/dedup_quality.py --pages DIR --engines    # MinHash implementations, timed

Each page is extracted once (newsmon.extract.page); its text and title are the raw material (a page
whose text equals another page's is used once). The usable pages (at least ORIGINAL_MIN_WORDS
words) are split at random (``--seed``) into
*originals*, which enter the corpus with a story of their own, and *fillers*, whose text never
enters it whole: it is the "new" text of hard negatives, so that no two documents share a filler
unless the case says so.

For every original the corpus gets copies that must join its story (positives):

    boilerplate  another outlet's copy: that outlet's boilerplate lines (bylines, "Read more",
                 newsletter prompts, related-headline lists, taken from its real page) at the top
                 and bottom
    dateline     the same with a dateline before the first paragraph ("ISLAMABAD (APP) -")
    trimmed      another outlet's copy with its last one or two paragraphs cut
    edited       another outlet's copy with a few words changed per paragraph, a sentence added
    updated      the same site, same title: a paragraph rewritten and one appended
    retitled     another outlet's copy under a reworded title
    wire         all of the outlet's changes at once: dateline, boilerplate, trimmed, edited,
                 retitled

and documents that must not join anything (hard negatives, each its own story):

    same_site    another article (a filler) on the original's site, with the site's boilerplate
    followup     same site: one or two background paragraphs of the original inside new text
                 (a filler, cut to about the original's length), under a title that shares
                 words with the original's
    followup_x   the same on another outlet's site
    template     same site, the original's wording with every name and number replaced (as in
                 auto-generated market, sports or weather reports about something else)
    short        very short texts: a teaser of the original (its first 5 to MIN_WORDS - 1 words
                 as newsmon.text.dedup counts them) on another site under the
                 original's title, and generic notices ("Subscribe to continue reading")
                 repeated on several sites
    same_topic   (no new documents) each original and its most similar other original by
                 TF-IDF cosine of their words: different articles that look alike

Documents are shuffled and assigned one by one by a fresh newsmon.text.dedup.StoryMatcher.

Scores. Pair precision/recall: over unordered pairs of documents, a pair is *linked* when the
matcher put both in the same story (transitively, the clusters it built), *true* when both
belong to the same real story; precision = |linked ∩ true| / |linked|, recall = |linked ∩
true| / |true|. B-cubed precision/recall: per document, the share of its predicted story that
is in its real story (and vice versa), averaged over documents. Per case type: recall = share
of copies put in their original's story; false-merge rate = share of negatives put in a story
with any other document (same_topic: share of pairs put in one story). docs/s: the dedup stage
alone, fingerprint + assign over texts already in memory, one process, median of ``--rounds``,
per second of the process's CPU time (the machine may be shared; the wall-clock rate is printed
too).

Last line: ``precision=… recall=… docs_per_s=…``
"""

from __future__ import annotations

import argparse
import gc
import itertools
import math
import random
import re
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

import lxml.html
import numpy as np

from newsmon.dev.demo import load_pages
from newsmon.extract import decode_html, extract_page
from newsmon.text.dedup import (
    MIN_WORDS,
    DocInfo,
    Fingerprinter,
    FingerprintParams,
    MatchRules,
    StoryMatcher,
    compare,
    fingerprint,
    minhash,
    minhash_datasketch,
    normalise_text,
    shingle_hashes,
    text_hash,
)

ORIGINAL_MIN_WORDS = 100  # a story shorter than this is no syndication material
ORIGINAL_SHARE = 0.55  # of the usable pages; the rest are fillers

POSITIVE_TYPES = ("boilerplate", "dateline", "trimmed", "edited", "updated", "retitled", "wire")
NEGATIVE_TYPES = ("same_site", "followup", "followup_x", "template", "short", "same_topic")

DATELINES = (
    "ISLAMABAD (APP) \u2013",
    "NEW DELHI (PTI) -",
    "WASHINGTON (AP) \u2014",
    "LONDON (Reuters) -",
    "PARIS (AFP) \u2013",
    "KARACHI (APP):",
    "BERLIN (dpa) -",
    "NEW YORK, Nov 19 (Reuters) -",
    "MUMBAI, (PTI)",
    "BEIJING (Xinhua) --",
)
NOTICES = (
    "Subscribe to continue reading this article.",
    "This content is not available in your region.",
    "Please enable JavaScript to view this page.",
    "You have reached your limit of free articles this month. Subscribe now for unlimited access.",
    "Sorry, this page could not be found. Try searching for what you were looking for.",
    "Sign in or create a free account to read the rest of this story.",
    "Our website uses cookies to improve your experience. Accept all cookies to continue.",
)
TITLE_PREFIXES = ("Report:", "WATCH:", "Update:", "Explained:", "Breaking:")
TITLE_SUFFIXES = (
    ", officials say",
    " \u2014 report",
    ": what we know",
    " amid concerns",
    ", says source",
)
EDIT_WORDS = (
    "said",
    "stated",
    "told",
    "added",
    "also",
    "now",
    "recently",
    "reportedly",
    "new",
    "major",
    "several",
    "officials",
    "the",
    "its",
    "however",
)
BOILERPLATE_RE = re.compile(
    r"^(by |written by|reporting by|edited by|read more|read also|also read|related|recommended"
    r"|more from|see also|continue reading|sign up|subscribe|newsletter|follow us|download"
    r"|share|copyright|©|all rights reserved|most read|trending|latest|watch|click here)",
    re.I,
)
_LINE_TAGS = frozenset({"a", "li", "p", "h2", "h3", "h4", "h5", "figcaption", "small", "address"})


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# sources: real pages, extracted once
# --------------------------------------------------------------------------------------------


@dataclass
class Source:
    page_id: str
    domain: str
    title: str
    text: str
    paragraphs: list[str]
    boilerplate: list[str]  # lines like "Read more", "Sign up for…", bylines
    headlines: list[str]  # other lines of the page outside the article: related headlines, menus

    @property
    def words(self) -> int:
        return len(self.text.split())


def _domain(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")


def page_lines(html: bytes, body: str) -> tuple[list[str], list[str]]:
    """Short text lines of a page that are not in its article body."""
    try:
        tree = lxml.html.fromstring(decode_html(html))
    except Exception:  # a page lxml cannot parse just gives no boilerplate
        return [], []
    for bad in tree.xpath("//script|//style|//noscript|//template|//svg"):
        bad.drop_tree()
    normal_body = normalise_text(body)
    seen: set[str] = set()
    boilerplate: list[str] = []
    headlines: list[str] = []
    for element in tree.iter():
        if not isinstance(element.tag, str) or element.tag not in _LINE_TAGS:
            continue
        line = " ".join(element.text_content().split())
        words = len(line.split())
        if words < 2 or words > 25 or line in seen:
            continue
        seen.add(line)
        normal = normalise_text(line)
        if not normal or normal in normal_body:
            continue
        if BOILERPLATE_RE.match(line):
            boilerplate.append(line)
        elif element.tag == "a" and 5 <= words <= 16:
            headlines.append(line)
    return boilerplate, headlines


def load_sources(directories: Sequence[str]) -> list[Source]:
    sources: list[Source] = []
    for directory in directories:
        pages = load_pages(directory)
        say(f"{directory}: {len(pages)} pages, extracting")
        started = time.perf_counter()
        for n, page in enumerate(pages, start=1):
            extracted = extract_page(page.html, page.original_url)
            if extracted is not None and extracted.text:
                text = extracted.text
                boilerplate, headlines = page_lines(page.html, text)
                sources.append(
                    Source(
                        page_id=page.page_id,
                        domain=_domain(page.original_url),
                        title=extracted.title or page.title,
                        text=text,
                        paragraphs=[p for p in text.split("\n\n") if p.strip()],
                        boilerplate=boilerplate,
                        headlines=headlines,
                    )
                )
            if n % 100 == 0 or n == len(pages):
                say(f"  extracted {n}/{len(pages)} ({time.perf_counter() - started:.0f}s)")
    return sources


# --------------------------------------------------------------------------------------------
# cases
# --------------------------------------------------------------------------------------------


@dataclass
class Doc:
    doc_id: str
    domain: str
    title: str | None
    text: str
    story: str  # the truth
    kind: str  # "original" or a case type
    original: str | None = None  # the original a case was made from


@dataclass
class Corpus:
    docs: list[Doc] = field(default_factory=list)
    topic_pairs: list[tuple[str, str]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


@dataclass
class Outlet:
    domain: str
    top: list[str]
    bottom: list[str]


def make_outlet(source: Source, rng: random.Random) -> Outlet:
    """An outlet's own boilerplate block, the same on every copy it publishes."""
    bylines = [line for line in source.boilerplate if line.lower().startswith("by ")]
    others = [line for line in source.boilerplate if not line.lower().startswith("by ")]
    top = rng.sample(bylines, min(1, len(bylines))) + rng.sample(others, min(1, len(others)))
    rest = [line for line in others if line not in top]
    bottom = rng.sample(rest, min(rng.randint(1, 2), len(rest)))
    bottom += rng.sample(source.headlines, min(rng.randint(2, 4), len(source.headlines)))
    return Outlet(source.domain, top, bottom)


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]


def word_count(paragraphs: Iterable[str]) -> int:
    return sum(len(p.split()) for p in paragraphs)


def trim_end(paragraphs: list[str], rng: random.Random) -> list[str] | None:
    """Cut the last one or two paragraphs, keeping at least 60% of the words."""
    total = word_count(paragraphs)
    for cut in (rng.randint(1, 2), 1):
        kept = paragraphs[:-cut]
        if len(kept) >= 2 and word_count(kept) >= 0.6 * total:
            return kept
    return None


def edit_words(paragraph: str, edits: int, rng: random.Random) -> str:
    words = paragraph.split()
    for _ in range(edits):
        i = rng.randrange(len(words))
        action = rng.random()
        if action < 0.6:
            words[i] = rng.choice(EDIT_WORDS)
        elif action < 0.8 and len(words) > 3:
            del words[i]
        else:
            words.insert(i, rng.choice(EDIT_WORDS))
    return " ".join(words)


def light_edits(paragraphs: list[str], extra: str, rng: random.Random) -> list[str]:
    """A few words changed per paragraph (1-3 in long ones), one sentence added."""
    out = []
    for p in paragraphs:
        n = len(p.split())
        edits = rng.randint(1, 3) if n >= 20 else 1 if n >= 8 else 0
        out.append(edit_words(p, edits, rng) if edits else p)
    out.insert(rng.randint(1, len(out)), extra)
    return out


def reword_title(title: str, rng: random.Random) -> str:
    words = title.split()
    if len(words) > 4:
        del words[rng.randrange(1, len(words))]
        i = rng.randrange(len(words))
        words[i] = rng.choice(EDIT_WORDS)
    new = " ".join(words)
    if rng.random() < 0.5:
        return f"{rng.choice(TITLE_PREFIXES)} {new}"
    return new + rng.choice(TITLE_SUFFIXES)


_WORD_RE = re.compile(r"\w[\w'\u2019.,:%-]*\w|\w")
TEMPLATE_MIN_FACTS = 8  # distinct names and numbers a template sibling must change...
TEMPLATE_MIN_SHARE = 0.04  # ...making up at least this share of its words


def template_sibling(
    paragraphs: Sequence[str], title: str, names: Sequence[str], rng: random.Random
) -> tuple[list[str], str] | None:
    """The same text with other facts: every name (a capitalised word that is not a sentence's
    first word) and every number consistently replaced, like an auto-generated market, sports
    or weather report about something else. None if the text has too few names and numbers."""
    mapping: dict[str, str] = {}
    replaced = 0

    def other(match: re.Match[str]) -> str:
        nonlocal replaced
        word = match.group(0)
        start = match.start()
        before = match.string[max(0, start - 2) : start].strip()
        if not (word[0].isupper() or word[0].isdigit()):
            return word
        if word[0].isupper() and (start == 0 or before in {".", "!", "?", ":", '"', "“"}):
            return word  # a sentence's first word
        if word not in mapping:
            if word[0].isdigit():
                mapping[word] = re.sub(r"\d", lambda _: str(rng.randrange(10)), word)
            else:
                mapping[word] = rng.choice(names)
        replaced += 1
        return mapping[word]

    text = [_WORD_RE.sub(other, p) for p in paragraphs]
    if len(mapping) < TEMPLATE_MIN_FACTS or replaced < TEMPLATE_MIN_SHARE * word_count(paragraphs):
        return None
    # the title: the same names and numbers replaced (Title Case words are not all names)
    new_title = _WORD_RE.sub(
        lambda m: (
            mapping.get(m.group(0), m.group(0))
            if m.group(0)[0].isdigit() or m.group(0) in mapping
            else m.group(0)
        ),
        title,
    )
    return text, new_title


def teaser_of(words: Sequence[str], size: int) -> str:
    """The first whitespace-separated words that make at most ``size`` words as newsmon.text.dedup
    counts them ("U.S.-led" is three)."""
    teaser: list[str] = []
    for word in words:
        if len(normalise_text(" ".join([*teaser, word])).split()) > size:
            break
        teaser.append(word)
    return " ".join(teaser)


def followup_title(original: str, other: str) -> str:
    a, b = original.split(), other.split()
    return " ".join(a[: max(2, len(a) // 2)] + b[len(b) // 2 :])


def background(paragraphs: list[str], rng: random.Random) -> list[str] | None:
    """One or two consecutive paragraphs (15+ words each) of at most 40% of the words."""
    total = word_count(paragraphs)
    choices = [
        paragraphs[i : i + n]
        for n in (1, 2)
        for i in range(1, len(paragraphs) - n + 1)
        if all(len(p.split()) >= 15 for p in paragraphs[i : i + n])
        and word_count(paragraphs[i : i + n]) <= 0.4 * total
    ]
    if not choices:
        return None
    wanted = rng.randint(1, 2)
    preferred = [c for c in choices if len(c) == wanted] or choices
    return rng.choice(preferred)


def nearest_pairs(sources: Sequence[Source]) -> list[tuple[int, int]]:
    """For each source, its most similar other source (TF-IDF cosine of words, other site)."""
    vocab: dict[str, int] = {}
    rows = []
    for s in sources:
        counts = Counter(normalise_text(s.text).split())
        rows.append({vocab.setdefault(w, len(vocab)): c for w, c in counts.items()})
    df = Counter(w for row in rows for w in row)
    n = len(rows)
    matrix = np.zeros((n, len(vocab)), dtype=np.float32)
    for i, row in enumerate(rows):
        for w, c in row.items():
            matrix[i, w] = (1 + math.log(c)) * math.log(n / df[w])
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True) + 1e-9
    sims = matrix @ matrix.T
    pairs = []
    for i in range(n):
        sims[i, i] = -1
        for j in np.argsort(-sims[i]):
            if sources[j].domain != sources[i].domain:
                pairs.append((i, int(j)))
                break
    return pairs


def take_words(paragraphs: Sequence[str], words: int) -> list[str]:
    """The first paragraphs, up to about ``words`` words (at least two paragraphs)."""
    out: list[str] = []
    for p in paragraphs:
        if len(out) >= 2 and word_count(out) >= words:
            break
        out.append(p)
    return out


def build_corpus(sources: Sequence[Source], seed: int) -> Corpus:
    rng = random.Random(seed)
    corpus = Corpus()
    seen: set[str] = set()
    distinct = []
    for source in sources:  # a data set may hold the same page twice: one story, keep one
        key = text_hash(source.text)
        if key in seen:
            corpus.skipped["pages with the same text as another page"] += 1
        else:
            seen.add(key)
            distinct.append(source)
    usable = [s for s in distinct if s.words >= ORIGINAL_MIN_WORDS and len(s.paragraphs) >= 2]
    corpus.skipped["pages too short"] = len(distinct) - len(usable)
    rng.shuffle(usable)
    cut = round(len(usable) * ORIGINAL_SHARE)
    originals, fillers = usable[:cut], usable[cut:]
    outlets = [
        make_outlet(s, rng) for s in sources if len(s.boilerplate) >= 1 and len(s.headlines) >= 2
    ]
    say(f"{len(originals)} originals, {len(fillers)} fillers, {len(outlets)} outlets")
    names = sorted(
        {w for f in fillers for w in re.findall(r"(?<=[a-z,] )[A-Z][a-z]{3,}", f.text)}
    ) or ["Smith", "Jones", "Lahore", "Acme"]
    sentence_pool = [
        s for f in fillers for s in sentences(f.text) if 10 <= len(s.split()) <= 35
    ] or ["The agency said more details would be released later on Tuesday."]
    docs = corpus.docs
    counter = itertools.count(1)

    def add(domain: str, title: str | None, paragraphs: Sequence[str], story: str, kind: str,
            original: str | None) -> str:  # fmt: skip
        doc_id = f"{kind}-{next(counter)}"
        text = "\n\n".join(paragraphs)
        docs.append(Doc(doc_id, domain, title, text, story, kind, original))
        return doc_id

    def outlet_for(domain: str) -> Outlet:
        while True:
            outlet = rng.choice(outlets)
            if outlet.domain != domain:
                return outlet

    def site_block(source: Source) -> tuple[list[str], list[str]]:
        lines = source.boilerplate[:2], source.headlines[:3]
        return list(lines[0][:1]), list(lines[0][1:2]) + list(lines[1])

    filler_iter = iter(fillers)
    filler_kinds = itertools.cycle(("same_site", "followup", "followup_x"))
    for original in originals:
        story = original.page_id
        paras = original.paragraphs
        title = original.title
        first = add(original.domain, title, paras, story, "original", None)

        # positives
        outlet = outlet_for(original.domain)
        add(outlet.domain, title, outlet.top + paras + outlet.bottom, story, "boilerplate", first)
        outlet = outlet_for(original.domain)
        dated = [f"{rng.choice(DATELINES)} {paras[0]}", *paras[1:]]
        add(outlet.domain, title, outlet.top + dated + outlet.bottom, story, "dateline", first)
        trimmed = trim_end(paras, rng)
        if trimmed is None:
            corpus.skipped["trimmed: too few paragraphs"] += 1
        else:
            outlet = outlet_for(original.domain)
            add(outlet.domain, title, outlet.top + trimmed + outlet.bottom, story, "trimmed",
                first)  # fmt: skip
        outlet = outlet_for(original.domain)
        edited = light_edits(paras, rng.choice(sentence_pool), rng)
        add(outlet.domain, title, outlet.top + edited + outlet.bottom, story, "edited", first)
        top, bottom = site_block(original)
        rewritable = [i for i, p in enumerate(paras) if len(p.split()) >= 15] or [0]
        i = rng.choice(rewritable)
        rewritten = sentences(paras[i])
        rng.shuffle(rewritten)
        updated = list(paras)
        updated[i] = edit_words(" ".join(rewritten), max(3, len(paras[i].split()) // 4), rng)
        updated.append("Update: " + " ".join(rng.sample(sentence_pool, 2)))
        add(original.domain, title, top + updated + bottom, story, "updated", first)
        outlet = outlet_for(original.domain)
        add(outlet.domain, reword_title(title, rng), outlet.top + paras + outlet.bottom, story,
            "retitled", first)  # fmt: skip
        outlet = outlet_for(original.domain)
        wire = trim_end(paras, rng) or list(paras)
        wire = light_edits(wire, rng.choice(sentence_pool), rng)
        wire[0] = f"{rng.choice(DATELINES)} {wire[0]}"
        add(outlet.domain, reword_title(title, rng), outlet.top + wire + outlet.bottom, story,
            "wire", first)  # fmt: skip

        # negatives that need new text: a filler each, never reused
        kind = next(filler_kinds)
        filler = next(filler_iter, None)
        if filler is None:
            corpus.skipped[f"{kind}: fillers used up"] += 1
        elif kind == "same_site":
            add(original.domain, filler.title, top + filler.paragraphs + bottom,
                f"neg-{filler.page_id}", kind, first)  # fmt: skip
        else:
            shared = background(paras, rng)
            if shared is None:
                corpus.skipped[f"{kind}: no background paragraphs"] += 1
            else:
                # new text about as long as the original, the background inside it
                new = take_words(filler.paragraphs, original.words - word_count(shared))
                at = rng.randint(1, max(1, min(3, len(new))))
                text = new[:at] + shared + new[at:]
                domain = (
                    original.domain if kind == "followup" else outlet_for(original.domain).domain
                )
                add(domain, followup_title(title, filler.title), text, f"neg-{filler.page_id}",
                    kind, first)  # fmt: skip

        # the same template about something else
        made = template_sibling(paras, title, names, rng)
        if made is None:
            corpus.skipped["template: too few names and numbers"] += 1
        else:
            sibling, sibling_title = made
            add(original.domain, sibling_title, top + sibling + bottom,
                f"template-{next(counter)}", "template", first)  # fmt: skip

        # very short texts: a teaser of the original on another site, under its title
        words = original.text.split()
        teaser = teaser_of(words, rng.randint(5, MIN_WORDS - 1))
        add(outlet_for(original.domain).domain, title, [teaser], f"short-{next(counter)}",
            "short", first)  # fmt: skip
    # generic notices, each on several sites (each notice a story of its own per site)
    for notice in NOTICES:
        for outlet in rng.sample(outlets, min(3, len(outlets))):
            add(outlet.domain, "Subscribe", [notice], f"notice-{next(counter)}", "short", None)

    original_ids = {d.story: d.doc_id for d in docs if d.kind == "original"}
    corpus.topic_pairs = [
        (original_ids[originals[i].page_id], original_ids[originals[j].page_id])
        for i, j in nearest_pairs(originals)
    ]
    return corpus


# --------------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------------


def pairs(n: int) -> int:
    return n * (n - 1) // 2


@dataclass
class Score:
    precision: float
    recall: float
    b3_precision: float
    b3_recall: float
    linked: int
    true: int
    per_type: dict[str, tuple[int, int]]  # type -> (hits, total): joined (pos) / merged (neg)
    false_merges: list[tuple[str, str]]  # (doc, another doc of its predicted story, other story)


def score(corpus: Corpus, predicted: dict[str, str]) -> Score:
    docs = corpus.docs
    truth = {d.doc_id: d.story for d in docs}
    cells = Counter((predicted[d.doc_id], truth[d.doc_id]) for d in docs)
    pred_sizes = Counter(predicted[d.doc_id] for d in docs)
    true_sizes = Counter(truth[d.doc_id] for d in docs)
    both = sum(pairs(n) for n in cells.values())
    linked = sum(pairs(n) for n in pred_sizes.values())
    true = sum(pairs(n) for n in true_sizes.values())
    b3p = statistics.fmean(
        cells[predicted[d.doc_id], truth[d.doc_id]] / pred_sizes[predicted[d.doc_id]] for d in docs
    )
    b3r = statistics.fmean(
        cells[predicted[d.doc_id], truth[d.doc_id]] / true_sizes[truth[d.doc_id]] for d in docs
    )
    per_type: dict[str, tuple[int, int]] = {}
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    members: dict[str, list[Doc]] = defaultdict(list)
    for d in docs:
        members[predicted[d.doc_id]].append(d)
    false_merges = []
    for d in docs:
        if d.kind == "original":
            continue
        t = tally[d.kind]
        t[1] += 1
        if d.kind in POSITIVE_TYPES:
            t[0] += predicted[d.doc_id] == predicted[d.original or ""]
        elif pred_sizes[predicted[d.doc_id]] > 1:
            t[0] += 1
            other = next(o for o in members[predicted[d.doc_id]] if o.doc_id != d.doc_id)
            false_merges.append((d.doc_id, other.doc_id, other.story))
    t = tally["same_topic"]
    for a, b in corpus.topic_pairs:
        t[1] += 1
        t[0] += predicted[a] == predicted[b]
    for d in docs:
        if d.kind == "original" and any(
            o.story != d.story for o in members[predicted[d.doc_id]] if o.kind == "original"
        ):
            other = next(o for o in members[predicted[d.doc_id]] if o.story != d.story)
            false_merges.append((d.doc_id, other.doc_id, other.story))
    for kind, (hits, total) in tally.items():
        per_type[kind] = (hits, total)
    return Score(
        precision=both / linked if linked else 1.0,
        recall=both / true if true else 1.0,
        b3_precision=b3p,
        b3_recall=b3r,
        linked=linked,
        true=true,
        per_type=per_type,
        false_merges=false_merges,
    )


# --------------------------------------------------------------------------------------------
# running the matcher
# --------------------------------------------------------------------------------------------


@dataclass
class Timing:
    wall: float  # seconds of wall-clock time
    cpu: float  # seconds of CPU time of this process: what one core spent, however busy the
    # machine (on a shared machine the wall clock also counts other people's work)


def dedup_stage(
    docs: Sequence[Doc], fingerprinter: Fingerprinter, rules: MatchRules
) -> tuple[dict[str, str], Timing]:
    """fingerprint + assign for every doc, as the pipeline does it: stories and time taken."""
    wall, cpu = time.perf_counter(), time.process_time()
    matcher = StoryMatcher(rules=rules)
    stories: dict[str, str] = {}
    for d in docs:
        info = DocInfo(d.doc_id, d.domain, d.title, fingerprinter(d.text))
        match = matcher.assign(info)
        stories[d.doc_id] = match.story_id if match else d.doc_id
    return stories, Timing(time.perf_counter() - wall, time.process_time() - cpu)


def closest_negatives(corpus: Corpus) -> dict[str, str]:
    """Per negative type, the highest Jaccard and containment between a negative and the
    original it was made from (same_topic: between the two originals): the margin left."""
    by_id = {d.doc_id: d for d in corpus.docs}
    pairs = [(d.kind, d.text, by_id[d.original].text) for d in corpus.docs if d.original]
    pairs += [("same_topic", by_id[a].text, by_id[b].text) for a, b in corpus.topic_pairs]
    highest: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for kind, a, b in pairs:
        if kind in NEGATIVE_TYPES:
            s = compare(fingerprint(a), fingerprint(b))
            top = highest[kind]
            top[0], top[1] = max(top[0], s.jaccard), max(top[1], s.containment)
    return {k: f"  max jaccard {j:.2f}, containment {c:.2f}" for k, (j, c) in highest.items()}


def report(corpus: Corpus, result: Score, docs_per_s: float, wall_per_s: float) -> None:
    kinds = Counter(d.kind for d in corpus.docs)
    words = statistics.median(len(d.text.split()) for d in corpus.docs)
    print(f"documents: {len(corpus.docs)} ({', '.join(f'{k} {n}' for k, n in kinds.items())})")
    print(f"  median length {words:.0f} words")
    for reason, n in sorted(corpus.skipped.items()):
        print(f"  not built: {reason}: {n}")
    print(f"true pairs {result.true}, linked pairs {result.linked}")
    print(f"pair precision {result.precision:.4f}  pair recall {result.recall:.4f}")
    print(f"B-cubed precision {result.b3_precision:.4f}  B-cubed recall {result.b3_recall:.4f}")
    print("positives (should join the original's story):")
    for kind in POSITIVE_TYPES:
        hits, total = result.per_type.get(kind, (0, 0))
        print(f"  {kind:<12} recall {hits / total if total else 0:6.3f}  ({hits}/{total})")
    print("hard negatives (must not join; the highest similarity to their original):")
    closest = closest_negatives(corpus)
    for kind in NEGATIVE_TYPES:
        hits, total = result.per_type.get(kind, (0, 0))
        rate = hits / total if total else 0
        print(f"  {kind:<12} false-merge rate {rate:6.3f}  ({hits}/{total}){closest.get(kind, '')}")
    for doc, other, story in result.false_merges[:15]:
        print(f"  false merge: {doc} with {other} (story {story})")
    print(
        f"dedup stage (fingerprint + assign, one process): {docs_per_s:.0f} docs per CPU second, "
        f"{wall_per_s:.0f} docs per wall-clock second"
    )


# --------------------------------------------------------------------------------------------
# sweep and engines
# --------------------------------------------------------------------------------------------


SWEEP: list[tuple[str, FingerprintParams, MatchRules]] = [
    ("default", FingerprintParams(), MatchRules()),
    *(
        (f"shingle_words={k}", FingerprintParams(shingle_words=k), MatchRules())
        for k in (2, 4, 5, 7)
    ),
    *(
        (f"bands={b}x{r}", FingerprintParams(bands=b, rows=r), MatchRules())
        for b, r in ((30, 3), (20, 3), (32, 4), (20, 5), (50, 2))
    ),
    *(
        (f"jaccard_min={j}", FingerprintParams(), MatchRules(jaccard_min=j))
        for j in (0.3, 0.5, 0.6)
    ),
    *(
        (f"containment_min={c}", FingerprintParams(), MatchRules(containment_min=c))
        for c in (0.7, 0.8, 1.01)
    ),
    *(
        (f"containment_jaccard_min={j}", FingerprintParams(), MatchRules(containment_jaccard_min=j))
        for j in (0.0, 0.4)
    ),
    ("facts check off", FingerprintParams(), MatchRules(facts_max_changed=1.0)),
    ("facts_max_changed=0.2", FingerprintParams(), MatchRules(facts_max_changed=0.2)),
    ("same-site guard off", FingerprintParams(), MatchRules(same_site_guard=False)),
    ("title_min=0.3", FingerprintParams(), MatchRules(title_min=0.3)),
    ("title_min=0.8", FingerprintParams(), MatchRules(title_min=0.8)),
    *((f"min_words={w}", FingerprintParams(min_words=w), MatchRules()) for w in (20, 100)),
    (
        "prior: 5 words, 32x4, J 0.5, C 0.8, no facts",
        FingerprintParams(shingle_words=5, bands=32, rows=4),
        MatchRules(jaccard_min=0.5, containment_min=0.8, facts_max_changed=1.0),
    ),
    (
        "prior + facts check",
        FingerprintParams(shingle_words=5, bands=32, rows=4),
        MatchRules(jaccard_min=0.5, containment_min=0.8),
    ),
]


def sweep(corpus: Corpus, docs: Sequence[Doc]) -> None:
    """The parameter table: one change at a time from the defaults, and the prior choice."""
    print(
        f"{'change from default':<46}{'pair P':>8}{'pair R':>8}{'B3 P':>8}{'B3 R':>8}"
        f"{'docs/s':>8}  lowest recall / highest false-merge rate"
    )
    for n, (name, params, rules) in enumerate(SWEEP, start=1):
        say(f"sweep {n}/{len(SWEEP)}: {name}")
        stories, timing = dedup_stage(docs, Fingerprinter(params), rules)
        s = score(corpus, stories)
        pos = min(POSITIVE_TYPES, key=lambda k: _rate(s, k))
        neg = max(NEGATIVE_TYPES, key=lambda k: _rate(s, k))
        print(
            f"{name:<46}{s.precision:8.4f}{s.recall:8.4f}{s.b3_precision:8.4f}"
            f"{s.b3_recall:8.4f}{len(docs) / timing.cpu:8.0f}  "
            f"{pos} {_rate(s, pos):.3f} / {neg} {_rate(s, neg):.3f}",
            flush=True,
        )


def _rate(s: Score, kind: str) -> float:
    hits, total = s.per_type.get(kind, (0, 1))
    return hits / total if total else 0.0


def engines(docs: Sequence[Doc], rounds: int) -> None:
    """MinHash signatures of every doc's shingles: numpy vs datasketch, interleaved rounds."""
    from datasketch import MinHash  # type: ignore[import-untyped]

    params = FingerprintParams()
    hashes = [shingle_hashes(d.text, params.shingle_words) for d in docs]
    same = all(np.array_equal(minhash(h), minhash_datasketch(h)) for h in hashes)
    print(f"numpy signatures equal datasketch's for all {len(hashes)} docs: {same}")

    def run_numpy() -> None:
        for h in hashes:
            minhash(h)

    def run_update_batch() -> None:
        for h in hashes:
            minhash_datasketch(h)

    def run_bulk() -> None:
        MinHash.bulk(
            [h.tolist() for h in hashes],
            num_perm=params.num_perm,
            seed=params.seed,
            hashfunc=int,
            scheme="affine32",
        )

    numpy_fp, datasketch_fp = Fingerprinter(), Fingerprinter(replace(params, engine="datasketch"))

    def fingerprints(fingerprinter: Fingerprinter) -> Callable[[], None]:
        def run() -> None:
            for d in docs:
                fingerprinter(d.text)

        return run

    contenders = [
        ("MinHash: numpy (newsmon.text.dedup.minhash)", run_numpy),
        ("MinHash: datasketch update_batch", run_update_batch),
        ("MinHash: datasketch MinHash.bulk", run_bulk),
        ("fingerprint(): numpy MinHash", fingerprints(numpy_fp)),
        ("fingerprint(): datasketch MinHash", fingerprints(datasketch_fp)),
    ]
    timings: dict[str, list[float]] = defaultdict(list)
    for n in range(rounds):
        for name, work in contenders if n % 2 == 0 else reversed(contenders):
            started = time.perf_counter()
            work()
            timings[name].append(time.perf_counter() - started)
        say(f"engines round {n + 1}/{rounds}")
    print(f"median of {rounds} interleaved rounds, {len(docs)} docs:")
    for name, values in timings.items():
        seconds = statistics.median(values)
        print(f"  {name:<42} {seconds / len(docs) * 1e6:7.0f} us/doc {len(docs) / seconds:7.0f}/s")


# --------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", action="append", required=True, help="a shared data set")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds (median)")
    parser.add_argument("--sweep", action="store_true", help="print the parameter table")
    parser.add_argument("--engines", action="store_true", help="time MinHash implementations")
    args = parser.parse_args()

    sources = load_sources(args.pages)
    if not sources:
        say("no pages")
        return 2
    corpus = build_corpus(sources, args.seed)
    docs = list(corpus.docs)
    random.Random(args.seed).shuffle(docs)
    say(f"{len(docs)} documents")
    if args.sweep:
        sweep(corpus, docs)
    if args.engines:
        engines(docs, args.rounds)

    fingerprinter = Fingerprinter()
    rules = MatchRules()
    dedup_stage(docs[:50], fingerprinter, rules)  # warm up
    runs: list[Timing] = []
    stories: dict[str, str] = {}
    for n in range(args.rounds):
        gc.collect()
        stories, timing = dedup_stage(docs, fingerprinter, rules)
        runs.append(timing)
        say(f"round {n + 1}/{args.rounds}: {len(docs) / timing.cpu:.0f} docs per CPU second")
    docs_per_s = len(docs) / statistics.median(t.cpu for t in runs)
    wall_per_s = len(docs) / statistics.median(t.wall for t in runs)
    # This process holds every fingerprint (millions of shingle ints in frozensets), which the
    # pipeline does not (earlier articles are in Elasticsearch): how much is the collector's?
    gc.collect()
    gc.disable()
    try:
        paused = len(docs) / dedup_stage(docs, fingerprinter, rules)[1].cpu
    finally:
        gc.enable()
    result = score(corpus, stories)
    report(corpus, result, docs_per_s, wall_per_s)
    print(f"  the same with the garbage collector paused: {paused:.0f} docs per CPU second")
    # the same documents with every original arriving before its copies
    first = sorted(docs, key=lambda d: d.kind != "original")
    ordered = score(corpus, dedup_stage(first, fingerprinter, rules)[0])
    print(
        f"originals first: pair precision {ordered.precision:.4f}  pair recall "
        f"{ordered.recall:.4f} (the run above: random arrival order)"
    )
    print(
        f"precision={result.precision:.4f} recall={result.recall:.4f} docs_per_s={docs_per_s:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
