"""Site boilerplate lines, learned per domain from what has been indexed.

A site repeats some lines under all its articles ("Read More News On", "Download The … App",
newsletter and social prompts, "The Associated Press contributed to this report."). They are
recognised by counting: every line of every article is recorded as a *sighting* (domain, line
hash, article hash, day, content hash) in the ``lines`` index, which every worker shares, and a
line is boilerplate for a domain once it has been seen in enough *different* articles of it.

The rule (:class:`Rules`; defaults measured with ``bench/boilerplate_quality.py``, see
``docs/boilerplate.md``): a line is removed from an article when it

* is at most ``max_line_chars`` long (content paragraphs are longer, boilerplate lines are not),
  or, up to ``max_long_line_chars``, was seen in ``long_min_articles`` articles on
  ``long_min_days`` days (a wire service's copyright line, a standard disclaimer),
* was seen in at least ``min_articles`` different articles of the domain, counted both as
  distinct titles (case-folded, digits masked) and as distinct contents (the article's longest
  paragraph, or its whole text when it has no long one), so one article re-published at several
  URLs, or updated under the same title or around the same main paragraph, counts once; and
  articles that share a large part of this one's text (its other versions, whatever their
  title) do not count at all,
* on at least ``min_days`` different days (follow-ups of a story on one day repeat their
  background sentence; a site's footer comes back every day),

unless it reads as a heading of text that stays (a short line that is not a sentence, followed
by a line that is kept: "Pros", "Conclusion", "Key takeaways") or as the article's opening
(short lines before its first kept line: "Hey there! 👋", "Skander here."), and never when the
removed lines would be more than ``max_removed_share`` of the article's text. A line seen in
one article only is never removed. Only the first ``head_lines`` and last ``tail_lines`` lines
of an article are looked at. Digits are not masked in line keys (measured: masking merges
prices, table rows and phone numbers, i.e. content, far more often than "Updated 3 hours ago").

Related-link lines change on every page ("Read more: <another headline>"), so they are counted
by their lead-in instead (:func:`leadin_key`, lists in :mod:`newsmon.text.leadins`): a lead-in
followed by a headline goes once the domain used it in ``min_articles`` articles on
``min_days`` days; so do the headlines listed under a repeated link-list heading ("See also"),
and a short block after such a heading at the end of the text (teaser cards). Those lines do
not count against ``max_removed_share``.

Teaser cards without a lead-in or heading (a linked headline and another story's first
sentence) are counted by their place in the page instead: the extractor gives such a line a
*shape* (:mod:`newsmon.extract.structure`, ``ArticleText.shapes``), recorded like a line, and a
shaped line goes once the domain showed that shape in ``shape_min_articles`` articles on
``shape_min_days`` days (they count against ``max_removed_share``; a line the article also has
unshaped stays).

The Elasticsearch store holds hashes only (no text): documents get a deterministic ``_id`` and
are written with ``create``, so re-running a batch never counts twice; one search with
aggregations answers a batch. :class:`MemoryLineStore` has the same semantics in memory.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import unicodedata
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final, Protocol

from .leadins import heading_leadin, looks_like_headline, split_leadin

__all__ = [
    "DEFAULT_RULES",
    "ArticleText",
    "Cleaned",
    "LineStats",
    "LineStore",
    "MemoryLineStore",
    "Rules",
    "Sighting",
    "article_key",
    "clean_batch",
    "content_keys",
    "line_key",
]

log = logging.getLogger(__name__)

SEPARATOR: Final = "\n\n"  # between paragraphs in newsmon.extract's text
CONTENT_SIGNATURES: Final = 2  # MinHash signatures per article (fields content_1, content_2)
SHINGLE_WORDS: Final = 4
MAX_WORDS: Final = 5000  # of an article, for its signatures
_PRIME: Final = (1 << 61) - 1
_MINHASH: Final = ((0x5BD1E995, 0x1B873593), (0x2545F491, 0x4F6CDD1D))  # one (a, b) per signature
SAMPLE_SIZE: Final = 16  # article keys returned per line (all of them when there are no more)
MAX_KEYS_PER_SEARCH: Final = 3000  # lines per search: buckets = lines x (1 + SAMPLE_SIZE) < 65k


@dataclass(frozen=True)
class ArticleText:
    """One article about to be indexed."""

    doc_id: str
    domain: str  # e.g. "bolnews.com" (the article document's ``domain``)
    title: str | None
    text: str  # paragraphs separated by "\n\n" (newsmon.extract's format)
    day: date | None = None  # its publication day when known; None: today (UTC)
    # per paragraph: where it sat in its page when that is a teaser card, else ""
    # (newsmon.extract.structure); ignored unless one per paragraph
    shapes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cleaned:
    doc_id: str
    text: str  # the domain's boilerplate lines removed (same "\n\n" format)
    removed: int  # number of lines removed


@dataclass(frozen=True)
class Rules:
    """When a repeated line is boilerplate (see the module docstring)."""

    min_articles: int = 3
    min_days: int = 3
    max_line_chars: int = 100  # a short line; a longer one needs the long_* counts
    max_long_line_chars: int = 1000  # longer lines are never removed
    long_min_articles: int = 5
    long_min_days: int = 5
    head_lines: int = 50
    tail_lines: int = 50
    keep_headings: bool = True
    heading_words: int = 8
    keep_openings: bool = True
    opening_lines: int = 2
    learn_leadins: bool = True  # "Read more: <headline>" lines, counted by their lead-in
    teaser_lines: int = 6  # a block this short after a repeated link-list heading at the end
    teaser_chars: int = 300
    learn_shapes: bool = True  # teaser cards, by where they sit in the page
    shape_min_articles: int = 5
    shape_min_days: int = 5
    version_share: float | None = 0.3  # None: do not discount other versions of an article
    max_removed_share: float = 0.5
    mask_digits: bool = False
    count_titles: bool = True  # False: every document id is another article
    count_contents: bool = True  # False: do not also require as many different contents


DEFAULT_RULES: Final = Rules()


@dataclass(frozen=True)
class Sighting:
    """One line seen in one article of a domain."""

    domain: str
    line: str  # line_key()
    article: str  # article_key()
    day: date
    contents: tuple[str, ...]  # content_keys(): copies and versions of one text share them


@dataclass(frozen=True)
class LineStats:
    """What a store knows of one line of one domain."""

    articles: int  # distinct article keys it was seen in
    days: int  # distinct days of those sightings
    contents: int  # distinct contents of those articles (the fewest over the signatures)
    sample: Mapping[str, date]  # article key -> day; all of them when len(sample) == articles


class LineStore(Protocol):
    """Where line sightings live."""

    def record(self, sightings: Sequence[Sighting]) -> None:
        """Store sightings; one already stored (same domain, line, article) is not counted again."""
        ...

    def stats(self, domain_lines: Mapping[str, Collection[str]]) -> dict[str, dict[str, LineStats]]:
        """domain -> line key -> stats, for the lines asked that were ever recorded."""
        ...


# --- keys -----------------------------------------------------------------------------------

_WORD_RE: Final = re.compile(r"[^\W_]+")
_BULLET_RE: Final = re.compile(r"^[-\u2022*]\s+")
_DIGITS_RE: Final = re.compile(r"\d+")
# a line ending in a full stop (not "..."), maybe inside closing quotes: a sentence
_SENTENCE_END_RE: Final = re.compile("(?<![.])[.][\"'\u201d\u2019)]*$")


def digest(*parts: str) -> str:
    """A short stable key of ``parts`` (line, article and sighting keys)."""
    raw = hashlib.blake2b("\x00".join(parts).encode("utf-8"), digest_size=12).digest()
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _words(text: str, mask_digits: bool) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    if mask_digits:
        folded = _DIGITS_RE.sub("0", folded)
    return " ".join(_WORD_RE.findall(folded))


def line_key(line: str, *, mask_digits: bool = False) -> str | None:
    """Stable key of a line: its case-folded words (punctuation and spacing ignored), hashed.
    None for a line without letters or digits."""
    words = _words(line, mask_digits)
    return digest("line", words) if words else None


def article_key(item: ArticleText, *, by_title: bool = True) -> str:
    """What counts as "one article": its title, case-folded, digits masked ("kills 5" and
    "kills 12" are one story); the document id when there is no title."""
    words = _words(item.title or "", mask_digits=True) if by_title else ""
    return digest("title", words) if words else digest("id", item.doc_id)


def _domain(value: str) -> str:
    return value.strip().lower().removeprefix("www.")


# --- stores ---------------------------------------------------------------------------------


class MemoryLineStore:
    """:class:`LineStore` in memory (benchmarks, unit tests): the same answers as Elasticsearch."""

    def __init__(self, sample_size: int = SAMPLE_SIZE) -> None:
        self._sample_size = sample_size
        self._seen: dict[tuple[str, str], dict[str, tuple[date, tuple[str, ...]]]] = {}

    def record(self, sightings: Sequence[Sighting]) -> None:
        for s in sightings:
            self._seen.setdefault((s.domain, s.line), {}).setdefault(s.article, (s.day, s.contents))

    def stats(self, domain_lines: Mapping[str, Collection[str]]) -> dict[str, dict[str, LineStats]]:
        found: dict[str, dict[str, LineStats]] = {}
        for domain, keys in domain_lines.items():
            for key in set(keys):
                seen = self._seen.get((domain, key))
                if not seen:
                    continue
                sample = {a: seen[a][0] for a in sorted(seen)[: self._sample_size]}
                found.setdefault(domain, {})[key] = LineStats(
                    articles=len(seen),
                    days=len({day for day, _ in seen.values()}),
                    contents=min(
                        len({c[i] for _, c in seen.values()}) for i in range(CONTENT_SIGNATURES)
                    ),
                    sample=sample,
                )
        return found


# --- cleaning -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Article:
    item: ArticleText
    domain: str
    key: str  # article_key
    day: date
    contents: tuple[str, ...]  # content_keys()
    blocks: list[str]
    lines: dict[int, str]  # block index -> line key (the looked-at lines that have one)
    leadins: dict[int, str]  # block index -> leadin_key() of a related-link line
    listed: frozenset[int]  # lines a link-list heading lists: looked up, not recorded
    shapes: dict[int, str]  # block index -> shape_key() of a line in a teaser card


def _prepare(item: ArticleText, rules: Rules, today: date) -> _Article:
    domain = _domain(item.domain)
    blocks = item.text.split(SEPARATOR) if item.text else []
    n = len(blocks)
    window = sorted(
        set(range(min(rules.head_lines, n))) | set(range(max(0, n - rules.tail_lines), n))
    )
    # what a link-list heading lists is other articles' headlines and first lines: not
    # recorded as this site's lines (they are still looked up), or an article would lose its
    # own first paragraph because other pages show it as a teaser
    listed: set[int] = set()
    if rules.learn_leadins:
        for i in range(n):
            if heading_leadin(blocks[i]):
                listed.update(_listed(blocks, i, rules, ()))
    lines: dict[int, str] = {}
    if domain:
        for i in window:
            key = line_key(blocks[i], mask_digits=rules.mask_digits)
            if key is not None:
                lines[i] = key
    leadins: dict[int, str] = {}
    if domain and rules.learn_leadins:  # anywhere in the text: they sit between paragraphs
        for i in range(n):
            lead = leadin_key(blocks[i])
            if lead is not None:
                leadins[i] = lead
    shapes: dict[int, str] = {}
    if domain and rules.learn_shapes and len(item.shapes) == n:
        shapes = {i: shape_key(s) for i, s in enumerate(item.shapes) if s}
    key = article_key(item, by_title=rules.count_titles)
    contents = content_keys(
        [b for i, b in enumerate(blocks) if i not in listed], rules.max_line_chars
    )
    return _Article(
        item,
        domain,
        key,
        item.day or today,
        contents or (key,) * CONTENT_SIGNATURES,
        blocks,
        lines,
        leadins,
        frozenset(listed),
        shapes,
    )


def leadin_key(line: str) -> str | None:
    """The key of a related-link line's lead-in ("Read more: <headline>" -> "read more"),
    counted like a line: a site that uses it in enough articles uses it as template. None for
    a line that is not one (no lead-in, or a sentence after it)."""
    split = split_leadin(line)
    if split is None or not looks_like_headline(split[1]):
        return None
    return digest("leadin", _words(split[0], mask_digits=False))


def shape_key(shape: str) -> str:
    """The key of a teaser card's place in its page, counted like a line."""
    return digest("shape", shape)


def content_keys(blocks: Sequence[str], long: int = 100) -> tuple[str, ...]:
    """What copies and revised versions of an article share and other articles do not:
    MinHash signatures of the word shingles (runs of ``SHINGLE_WORDS`` words) of its paragraphs
    longer than ``long`` characters (two texts get the same signature with a probability equal
    to the share of shingles they have in common). Short lines are left out: that is where a
    site's boilerplate is, which all its articles share. A text without long paragraphs is
    hashed whole. Empty for a text without words."""
    text = "\n".join(b for b in blocks if len(b) > long)
    words = _WORD_RE.findall(unicodedata.normalize("NFKC", text).casefold())[:MAX_WORDS]
    if not words:
        keys = [k for k in (line_key(b) for b in blocks) if k]
        return (digest("text", *keys),) * CONTENT_SIGNATURES if keys else ()
    n = max(1, len(words) - SHINGLE_WORDS + 1)
    hashes = {
        int.from_bytes(
            hashlib.blake2b(" ".join(words[i : i + SHINGLE_WORDS]).encode(), digest_size=8).digest()
        )
        for i in range(n)
    }
    return tuple(
        digest("minhash", str(min((a * h + b) % _PRIME for h in hashes)))
        for a, b in _MINHASH[:CONTENT_SIGNATURES]
    )


def _sightings(articles: Sequence[_Article]) -> Iterator[Sighting]:
    for a in articles:
        own = [k for i, k in a.lines.items() if i not in a.listed]
        for key in dict.fromkeys([*own, *a.leadins.values(), *a.shapes.values()]):
            yield Sighting(a.domain, key, a.key, a.day, a.contents)


def _complete(stats: LineStats) -> bool:
    return len(stats.sample) >= stats.articles


def _versions(a: _Article, stats: Mapping[str, LineStats], rules: Rules) -> set[str]:
    """Other articles that contain at least ``version_share`` of this one's text: its
    re-publications, updates and live-blog snapshots, whatever their title. Only lines whose
    every sighting is known take part; each weighs its length divided by the number of articles
    it was seen in, so a line many articles have (the footer) weighs little."""
    if rules.version_share is None:
        return set()
    shared: dict[str, float] = {}
    total = 0.0
    for i, key in a.lines.items():
        st = stats.get(key)
        if st is None or not _complete(st):
            continue
        weight = len(a.blocks[i]) / st.articles
        total += weight
        for other in st.sample:
            if other != a.key:
                shared[other] = shared.get(other, 0.0) + weight
    return {k for k, n in shared.items() if total and n >= rules.version_share * total}


def _seen(a: _Article, st: LineStats, versions: set[str]) -> tuple[int, int]:
    """(articles, days) a line was seen in, this article's other versions left out."""
    if not _complete(st):  # widely repeated: assume this article and its versions are in it
        return st.articles - len(versions), st.days
    days = {k: d for k, d in st.sample.items() if k not in versions}
    days.setdefault(a.key, a.day)
    return len(days), len(set(days.values()))


def _heading(line: str, rules: Rules) -> bool:
    """A short line that is not a sentence: "Pros", "FAQs", "Why?", "| Day | Time |"."""
    stripped = line.rstrip()
    return (
        not _SENTENCE_END_RE.search(stripped)
        and len(_WORD_RE.findall(stripped)) <= rules.heading_words
    )


def _learned(
    a: _Article,
    st: LineStats,
    versions: set[str],
    rules: Rules,
    need_articles: int,
    need_days: int,
) -> bool:
    """Whether a line (or lead-in) was seen in enough different articles on enough days."""
    articles, days = _seen(a, st, versions)
    # distinct contents guard copies; a long repeated line shares its shingles with every
    # article's signature, so the contents asked for stay at min_articles
    contents = st.contents if rules.count_contents else rules.min_articles
    return articles >= need_articles and contents >= rules.min_articles and days >= need_days


def _related_links(
    a: _Article,
    stats: Mapping[str, LineStats],
    versions: set[str],
    rules: Rules,
    removable: set[int],
) -> set[int]:
    """Related-link lines whose form the site uses as template: a lead-in followed by a
    headline ("Read more: …", "Trending: …") when the domain showed that lead-in in enough
    articles; and the headlines listed under a repeated link-list heading ("See also",
    "Recommended for you"), with the heading. At the end of the article, everything after such
    a heading goes when it is a short block (teaser cards: headlines and their first lines)."""
    out: set[int] = set()
    for i, key in a.leadins.items():
        st = stats.get(key)
        if st is not None and _learned(a, st, versions, rules, rules.min_articles, rules.min_days):
            out.add(i)
    for i in sorted(removable):
        if not heading_leadin(a.blocks[i]):
            continue
        listed = _listed(a.blocks, i, rules, removable | out)
        if listed or i + 1 == len(a.blocks):
            out.add(i)
            out.update(listed)
    return out


def _listed(blocks: Sequence[str], i: int, rules: Rules, gone: Collection[int]) -> list[int]:
    """The lines a link-list heading at ``i`` lists: the headlines right after it, or, when it
    heads a short block at the end of the text (teaser cards: headlines and first lines),
    that whole block; lines in ``gone`` (removed anyway) end a list and are not returned."""
    tail = range(i + 1, len(blocks))
    if 0 < len(tail) <= rules.teaser_lines and all(
        len(blocks[j]) <= rules.teaser_chars for j in tail
    ):
        return [j for j in tail if j not in gone]
    listed = []
    for j in tail:
        if j in gone or not looks_like_headline(_BULLET_RE.sub("", blocks[j])):
            break
        listed.append(j)
    return listed


def _cards(
    a: _Article, stats: Mapping[str, LineStats], versions: set[str], rules: Rules
) -> set[int]:
    """Lines of teaser cards whose place in the page the domain showed in enough articles on
    enough days, unless the article's kept text has the same line elsewhere (its own)."""
    out = set()
    for i, key in a.shapes.items():
        st = stats.get(key)
        if st is not None and _learned(
            a, st, versions, rules, rules.shape_min_articles, rules.shape_min_days
        ):
            out.add(i)
    if out:
        own = {line_key(b) for i, b in enumerate(a.blocks) if i not in out}
        out = {i for i in out if line_key(a.blocks[i]) not in own}
    return out


def _to_remove(a: _Article, stats: Mapping[str, LineStats], rules: Rules) -> list[int]:
    versions = _versions(a, stats, rules)
    removable: set[int] = set()
    for i, key in a.lines.items():
        st = stats.get(key)
        size = len(a.blocks[i])
        if st is None or size > rules.max_long_line_chars:
            continue
        long = size > rules.max_line_chars
        need_articles = rules.long_min_articles if long else rules.min_articles
        need_days = rules.long_min_days if long else rules.min_days
        if _learned(a, st, versions, rules, need_articles, need_days):
            removable.add(i)
    related = _related_links(a, stats, versions, rules, removable)
    removable |= related
    cards = _cards(a, stats, versions, rules) - related
    removable |= cards
    if rules.keep_headings:
        # a repeated heading of text that stays is part of the article ("Pros", "Conclusion")
        for i in sorted(removable - related - cards, reverse=True):
            nxt = i + 1
            if nxt < len(a.blocks) and nxt not in removable and _heading(a.blocks[i], rules):
                removable.discard(i)
    if rules.keep_openings:
        # a newsletter's recurring opening ("Hey there! 👋", "Skander here.") is how its
        # articles begin: short lines before the first kept line stay
        for i in reversed(range(min(rules.opening_lines, len(a.blocks)))):
            nxt = i + 1
            if (
                i in removable - related - cards
                and nxt < len(a.blocks)
                and nxt not in removable
                and len(_WORD_RE.findall(a.blocks[i])) <= rules.heading_words
                and all(j in removable for j in range(i))
            ):
                removable.discard(i)
    # related-link lines are template line by line: only repeated lines and teaser cards
    # count against the share
    removed_chars = sum(len(a.blocks[i]) for i in removable - related)
    if removed_chars > rules.max_removed_share * sum(map(len, a.blocks)):
        log.debug(
            "boilerplate: %s keeps its %d repeated lines (%d of %d characters)",
            a.item.doc_id,
            len(removable),
            removed_chars,
            sum(map(len, a.blocks)),
        )
        return sorted(removable & related)
    return sorted(removable)


def clean_batch(
    store: LineStore, items: Sequence[ArticleText], rules: Rules = DEFAULT_RULES
) -> list[Cleaned]:
    """Record the batch's lines (so repeats inside the batch count), then remove from each
    article the lines that are boilerplate for its domain. Results are in ``items``' order.

    Raises when the store is unreachable; a sighting that could not be stored only means
    fewer removals.
    """
    today = datetime.now(UTC).date()
    articles = [_prepare(item, rules, today) for item in items]
    store.record(list(_sightings(articles)))
    wanted: dict[str, set[str]] = {}
    for a in articles:
        if a.lines:
            wanted.setdefault(a.domain, set()).update(
                [*a.lines.values(), *a.leadins.values(), *a.shapes.values()]
            )
    known = store.stats(wanted) if wanted else {}
    results: list[Cleaned] = []
    total = 0
    for a in articles:
        remove = _to_remove(a, known.get(a.domain, {}), rules) if a.lines else []
        if not remove:
            results.append(Cleaned(a.item.doc_id, a.item.text, 0))
            continue
        gone = set(remove)
        for i in remove:
            log.debug("boilerplate: %s (%s) drops %r", a.item.doc_id, a.domain, a.blocks[i][:100])
        text = SEPARATOR.join(b for i, b in enumerate(a.blocks) if i not in gone)
        results.append(Cleaned(a.item.doc_id, text, len(gone)))
        total += len(gone)
    if total:
        log.info(
            "boilerplate: %d lines removed from %d of %d articles",
            total,
            sum(1 for r in results if r.removed),
            len(results),
        )
    return results
