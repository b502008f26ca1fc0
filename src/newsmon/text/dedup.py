"""Story clusters: near-duplicate detection of article texts (pure logic, no Elasticsearch).

The same wire story is re-published by many outlets with their own boilerplate, a dateline,
trimmed endings and light edits; a page is updated after a correction. Every article keeps its
own document and gets a ``story_id``: the story of the first article it was found to copy.

Method (parameters and the measurements behind them: ``docs/dedup.md``,
``bench/dedup_quality.py``):

1. :func:`normalise_text` case-folds the text and keeps only its words (punctuation, quote
   styles and whitespace do not count); :func:`text_hash` of it finds exact duplicates.
2. :func:`fingerprint`: the text's word shingles (:data:`SHINGLE_WORDS` consecutive words)
   are hashed to 32 bits, summarised by a MinHash of :data:`NUM_PERM` permutations (datasketch's
   ``affine32`` scheme; the same arithmetic vectorised with numpy, see :func:`minhash`), and the
   signature is cut into :data:`LSH_BANDS` bands of :data:`LSH_ROWS` rows. Each band becomes a
   short key (``"07:3fa9c2d1e0b4"``) that is stored with the article: two texts sharing any key
   are candidates. The banding's threshold is low (Jaccard ≈ 0.29) on purpose, so trimmed and
   edited copies and copies with other boilerplate come back as candidates.
3. :func:`same_story` verifies a candidate on the exact shingle sets: Jaccard similarity or
   containment (a trimmed copy is contained in the original) must be high; where the two texts
   word something the same way, the names and numbers in it must be the same too (a
   same-template report about something else is another story); and two different URLs of one
   site must also have similar titles (a site's follow-up articles share background
   paragraphs). Texts under :data:`MIN_WORDS` words are never clustered.

Everything is deterministic across processes and machines: hashes are blake2b and fixed
64-bit arithmetic, never Python's salted ``hash()``, and MinHash permutations come from
datasketch's seeded generator. The band keys also encode the parameters, so keys made with
other parameters never match.

Steps 1 and 2 are newsmon.text.fingerprints (its names are re-exported here); this module
verifies candidates and assigns stories.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from itertools import chain
from typing import Final

from .fingerprints import (
    LSH_BANDS,
    LSH_ROWS,
    MIN_WORDS,
    NUM_PERM,
    SHINGLE_WORDS,
    Fingerprint,
    Fingerprinter,
    FingerprintParams,
    fingerprint,
    minhash,
    minhash_datasketch,
    normalise_text,
    shingle_hashes,
    text_hash,
)

__all__ = [
    "CONTAINMENT_JACCARD_MIN",
    "CONTAINMENT_MIN",
    "DEFAULT_RULES",
    "FACTS_MAX_CHANGED",
    "FACTS_MIN_SHARED",
    "JACCARD_MIN",
    "LSH_BANDS",
    "LSH_ROWS",
    "MAX_CANDIDATES",
    "MIN_WORDS",
    "NUM_PERM",
    "SHINGLE_WORDS",
    "TITLE_MIN",
    "DocInfo",
    "Fingerprint",
    "FingerprintParams",
    "Fingerprinter",
    "Match",
    "MatchRules",
    "Similarity",
    "StoryMatcher",
    "best_match",
    "compare",
    "fingerprint",
    "minhash",
    "minhash_datasketch",
    "normalise_text",
    "same_story",
    "shingle_hashes",
    "text_hash",
    "title_similarity",
]

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# verification parameters (chosen with bench/dedup_quality.py, see docs/dedup.md)
# --------------------------------------------------------------------------------------------

JACCARD_MIN: Final = 0.5  # shingle Jaccard similarity that proves the same story...
CONTAINMENT_MIN: Final = 0.6  # ...or the share of the smaller text found in the larger one,
CONTAINMENT_JACCARD_MIN: Final = 0.3  # with at least this Jaccard similarity
TITLE_MIN: Final = 0.5  # title word Jaccard two articles of one site need on top of the text
FACTS_MAX_CHANGED: Final = 0.1  # share of names/numbers that differ in the same wording...
FACTS_MIN_SHARED: Final = 3  # ...checked when at least this many wordings are shared

MAX_CANDIDATES: Final = 100  # candidates verified per article, most shared bands first

# --------------------------------------------------------------------------------------------
# verification
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Similarity:
    jaccard: float
    containment: float  # |A∩B| / min(|A|,|B|): a truncated copy is contained in the original
    # share of the wordings both texts have around a name or number where the names or
    # numbers differ (None when they share fewer than FACTS_MIN_SHARED such wordings)
    facts_changed: float | None = None


@dataclass(frozen=True)
class DocInfo:
    """What the matcher knows of an article."""

    doc_id: str
    domain: str  # host without www.
    title: str | None
    fingerprint: Fingerprint
    story_id: str | None = None  # for already-indexed candidates


@dataclass(frozen=True)
class Match:
    doc_id: str  # the candidate matched
    story_id: str
    kind: str  # "exact" | "near"
    similarity: Similarity


@dataclass(frozen=True)
class MatchRules:
    """The verification thresholds (module constants by default)."""

    jaccard_min: float = JACCARD_MIN
    containment_min: float = CONTAINMENT_MIN
    containment_jaccard_min: float = CONTAINMENT_JACCARD_MIN
    title_min: float = TITLE_MIN
    facts_max_changed: float = FACTS_MAX_CHANGED
    facts_min_shared: int = FACTS_MIN_SHARED
    same_site_guard: bool = True


DEFAULT_RULES: Final = MatchRules()


def _facts_changed(a: Fingerprint, b: Fingerprint, min_shared: int) -> float | None:
    """Share of the fact wordings of both texts whose facts differ (see Fingerprint.facts)."""
    if len(a.facts) < min_shared or len(b.facts) < min_shared:
        return None
    shared = len(a.fact_wordings & b.fact_wordings)
    if shared < min_shared:
        return None
    same = len({key >> 32 for key in a.facts & b.facts})
    return 1 - same / shared


def compare(a: Fingerprint, b: Fingerprint) -> Similarity:
    """Exact Jaccard similarity and containment of the two shingle sets, and the share of
    changed facts: of the wordings around a name or number the two texts share, the share
    where the name or number differs (None below :data:`FACTS_MIN_SHARED` shared wordings)."""
    return _similarity(a, b, _facts_changed(a, b, FACTS_MIN_SHARED))


def _similarity(a: Fingerprint, b: Fingerprint, changed: float | None) -> Similarity:
    if a.text_hash == b.text_hash:
        return Similarity(1.0, 1.0, changed)
    if not a.shingles or not b.shingles:
        return Similarity(0.0, 0.0, changed)
    common = len(a.shingles & b.shingles)
    union = len(a.shingles) + len(b.shingles) - common
    return Similarity(common / union, common / min(len(a.shingles), len(b.shingles)), changed)


def _same_site(a: str, b: str) -> bool:
    """Same host, or one a subdomain of the other (edition.cnn.com and cnn.com)."""
    a, b = a.lower().removeprefix("www."), b.lower().removeprefix("www.")
    return bool(a) and bool(b) and (a == b or a.endswith("." + b) or b.endswith("." + a))


@functools.lru_cache(maxsize=4096)
def _title_words(title: str) -> frozenset[str]:
    return frozenset(normalise_text(title).split())


def title_similarity(a: str | None, b: str | None) -> float:
    """Jaccard similarity of the titles' word sets (0 when either is missing or empty)."""
    if not a or not b:
        return 0.0
    wa, wb = _title_words(a), _title_words(b)
    if not wa or not wb:
        return 0.0
    return len(wa & wb) / len(wa | wb)


def same_story(
    new: DocInfo, candidate: DocInfo, rules: MatchRules = DEFAULT_RULES
) -> Similarity | None:
    """The similarity of two articles if they tell the same story, else None.

    * A text too short to have band keys never matches (not even an identical one: a paywall
      notice or a feed summary proves nothing).
    * Two different articles of one site (same host, or one a subdomain of the other) must
      also have similar titles: a site's follow-ups repeat its own background paragraphs.
    * Texts equal once normalised match. Otherwise:
    * Where the two texts use the same wording around a name or number, the names and numbers
      must mostly be the same (at most ``facts_max_changed`` differ): the same wording with
      other names and numbers is another story (auto-generated market, sports, weather
      reports), however many shingles it shares.
    * Then the shingle Jaccard similarity must be at least ``jaccard_min``, or the smaller text
      must be contained in the larger (``containment_min``) with a Jaccard similarity of at
      least ``containment_jaccard_min``: a trimmed copy, not a short follow-up made mostly of
      the story's background paragraphs, nor a teaser or a roundup quoting its lead (with
      containment 0.6 that Jaccard means the smaller has at least 5/8 of the larger's size,
      with containment 1 at least 3/10).
    """
    a, b = new.fingerprint, candidate.fingerprint
    if not a.bands or not b.bands or new.doc_id == candidate.doc_id:
        return None
    if (
        rules.same_site_guard
        and _same_site(new.domain, candidate.domain)
        and title_similarity(new.title, candidate.title) < rules.title_min
    ):
        return None
    changed = _facts_changed(a, b, rules.facts_min_shared)
    if a.text_hash == b.text_hash:
        return _similarity(a, b, changed)
    if changed is not None and changed > rules.facts_max_changed:
        return None
    similarity = _similarity(a, b, changed)
    if similarity.jaccard >= rules.jaccard_min:
        return similarity
    if (
        similarity.containment >= rules.containment_min
        and similarity.jaccard >= rules.containment_jaccard_min
    ):
        return similarity
    return None


def _rank(match: Match) -> tuple[bool, float, float]:
    return (match.kind == "exact", match.similarity.jaccard, match.similarity.containment)


def best_match(
    new: DocInfo, candidates: Iterable[DocInfo], rules: MatchRules = DEFAULT_RULES
) -> Match | None:
    """The verified candidate most similar to ``new`` (exact duplicates first), or None.

    The story is the candidate's ``story_id``, or its ``doc_id`` when it has none yet. Once a
    candidate of a story is verified, the story's other candidates are not checked: pass
    candidates in order of preference (:meth:`StoryMatcher.candidates` gives the ones sharing
    most band keys first).
    """
    best: Match | None = None
    verified: set[str] = set()
    for candidate in candidates:
        story = candidate.story_id or candidate.doc_id
        if story in verified:
            continue
        similarity = same_story(new, candidate, rules)
        if similarity is None:
            continue
        verified.add(story)
        kind = "exact" if new.fingerprint.text_hash == candidate.fingerprint.text_hash else "near"
        match = Match(candidate.doc_id, story, kind, similarity)
        if best is None or _rank(match) > _rank(best):
            best = match
    return best


@dataclass
class StoryMatcher:
    """In-memory LSH index of articles and their stories.

    For one bulk batch (its articles are not searchable in Elasticsearch yet) and for the
    benchmark. :meth:`assign` gives each new article the story of its best verified candidate,
    or a new story (its own ``story_id`` or ``doc_id``), and remembers it.
    """

    rules: MatchRules = DEFAULT_RULES
    max_candidates: int = MAX_CANDIDATES
    _docs: list[DocInfo] = field(default_factory=list, init=False, repr=False)
    _by_band: dict[str, list[int]] = field(default_factory=dict, init=False, repr=False)
    _by_hash: dict[str, list[int]] = field(default_factory=dict, init=False, repr=False)
    _stories: dict[str, str | None] = field(default_factory=dict, init=False, repr=False)

    def __len__(self) -> int:
        return len(self._docs)

    def add(self, doc: DocInfo) -> None:
        """Index ``doc`` as it is (its ``story_id`` is what later matches will get)."""
        index = len(self._docs)
        self._docs.append(doc)
        self._stories[doc.doc_id] = doc.story_id
        fp = doc.fingerprint
        if not fp.bands:
            return  # never a candidate
        self._by_hash.setdefault(fp.text_hash, []).append(index)
        for band in fp.bands:
            self._by_band.setdefault(band, []).append(index)

    def candidates(self, fp: Fingerprint) -> list[DocInfo]:
        """Indexed docs sharing the exact text hash or at least one band key with ``fp``:
        exact duplicates first, then by the number of shared bands, at most
        ``max_candidates``."""
        if not fp.bands:
            return []
        by_band = self._by_band
        shared = Counter(chain.from_iterable(by_band[band] for band in fp.bands if band in by_band))
        for index in self._by_hash.get(fp.text_hash, ()):
            shared[index] += len(fp.bands) + 1
        ranked = sorted(shared, key=lambda index: (-shared[index], index))
        return [self._docs[index] for index in ranked[: self.max_candidates]]

    def assign(self, doc: DocInfo) -> Match | None:
        """Match ``doc`` against the index, then add it with its story id.

        Returns the match (the doc joins ``match.story_id``) or None (a new story:
        ``doc.story_id`` if set, else ``doc.doc_id``).
        """
        match = best_match(doc, self.candidates(doc.fingerprint), self.rules)
        story = match.story_id if match else (doc.story_id or doc.doc_id)
        if match:
            log.debug(
                "%s joins story %s via %s (%s, jaccard %.2f, containment %.2f)",
                doc.doc_id,
                story,
                match.doc_id,
                match.kind,
                match.similarity.jaccard,
                match.similarity.containment,
            )
        self.add(doc if doc.story_id == story else replace(doc, story_id=story))
        return match

    def story_of(self, doc_id: str) -> str | None:
        """The story id an indexed doc was given (None if unknown)."""
        return self._stories.get(doc_id)
