"""Events: stories of different outlets that report one happening (docs/events.md).

A story is described by its first article: the names in its title and lead (capitalised words
and runs of them, with their variants), the content words of its title and lead, its outlet and
its time. Two stories report the same happening when they are close in time (:func:`window`,
72 h by default) and share enough names *and* lead words (:func:`relate`); a new story joins the
event of its best verified match. Candidate events come from the events index
(:mod:`newsmon.store.events`: events in the window sharing a name), so every worker sees the
same events; events of the batch being written, not searchable yet, are matched in memory.

Precision first: a doubtful pair stays apart. Stories of one outlet join only on a much closer
match (a site's follow-ups and its other reports on one topic look alike).
"""

from __future__ import annotations

import math
import os
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ..article import Article
from ..config import ConfigError, parse_duration
from ..store import Client, IndexNames
from ..store import events as store
from ..store.articles import articles_by_id, from_document

__all__ = [
    "EventMatcher",
    "EventRules",
    "EventSignature",
    "assign_events",
    "names_of",
    "relate",
    "settle_events",
    "signature",
    "window",
]

DEFAULT_WINDOW = timedelta(hours=72)
LEAD_WORDS = 120  # words (as whitespace separates them) of the text read after the title

# Words that are capitalised for other reasons than being a name: sentence starts, days,
# months, titles of address, and the commonest English words.
_COMMON = frozenset(
    """
    a an the and or but nor so yet for of in on at to by from with without as into onto
    over under about after before since until while when where why how what which who whom
    whose this that these those there here it its it's they them their he him his she her
    we us our you your i me my is are was were be been being has have had do does did will
    would can could should may might must not no yes if then than also just only even now
    new more most many much some any all each every other another such very one two three
    four five six seven eight nine ten first second third last next according however
    meanwhile still though although because despite amid among during through across
    against between around up down out off again once today tonight yesterday tomorrow week
    year monday tuesday wednesday thursday friday saturday sunday january february march
    april june july august september october november december jan feb mar apr jun jul aug
    sep sept oct nov dec mr mrs ms dr prof sir gov sen rep president minister said says say
    told tells read watch click sign subscribe photo video image getty images ap reuters
    afp updated published share follow breaking news report reports story opinion column
    review analysis exclusive live here's that's what's let's don't can't
    """.split()  # noqa: SIM905 - a word list reads best as words
)
_CONNECTORS = frozenset(
    ["of", "de", "la", "le", "van", "von", "der", "den", "da", "del", "di", "du", "al", "bin", "el"]
)
_GAP_WORD = re.compile("(\\W*)([^\\W\\d_][\\w'\u2019&.\\-]*)")
_LEAD = re.compile(r"\s*(?:\S+\s+){" + str(LEAD_WORDS) + "}")
_BOUNDARY = frozenset('\n.!?:;,"()[]|\u201c\u201d\u2018\u2019\u2014\u2013')


def window() -> timedelta:
    """How far apart two stories of one event may be: ``NEWSMON_EVENT_WINDOW`` (``72h``)."""
    raw = os.environ.get("NEWSMON_EVENT_WINDOW", "").strip()
    if not raw:
        return DEFAULT_WINDOW
    try:
        value = parse_duration(raw)
    except ValueError as exc:
        raise ConfigError(str(exc), field="NEWSMON_EVENT_WINDOW") from exc
    if value <= timedelta(0):
        raise ConfigError("must be more than 0", field="NEWSMON_EVENT_WINDOW")
    return value


def _fold(word: str) -> str:
    """Lower case, accents off, possessive and dots off: ``Noem\u2019s`` → ``noem``."""
    if not word.isascii():
        word = unicodedata.normalize("NFKD", word.replace("\u2019", "'"))
        word = "".join(c for c in word if not unicodedata.combining(c))
    word = word.lower()
    if word.endswith("'s"):
        word = word[:-2]
    if "." in word:
        word = word.replace(".", "")
    return word.strip("-'&")


def _stem(word: str) -> str:
    """A crude stem, enough to meet ``launches``/``launched``/``launch``: the first 6 letters
    of a word with a plural or verb ending cut."""
    for end in ("ing", "ed", "es", "s"):
        if len(word) > len(end) + 3 and word.endswith(end):
            word = word[: -len(end)]
            break
    return word[:6]


Token = tuple[str, str, bool]  # as written, folded, a sentence or clause boundary before it


def _lead(text: str) -> str:
    """The first :data:`LEAD_WORDS` words of ``text``, paragraph breaks kept."""
    match = _LEAD.match(text)
    return text[: match.end()] if match else text


def _tokens(text: str) -> list[Token]:
    """The words of ``text``."""
    out: list[Token] = []
    after_end = True
    for match in _GAP_WORD.finditer(text):
        between, raw = match.groups()
        boundary = after_end or not _BOUNDARY.isdisjoint(between)
        last = raw[-1]
        after_end = last == "."
        token = raw.rstrip(".-") if after_end or last == "-" else raw
        # the common case without the calls of _fold
        folded = token.lower() if token.isascii() and token.isalpha() else _fold(token)
        if folded:
            out.append((token, folded, boundary))
    return out


def names_of(text: str | Sequence[Token], *, title_case: bool = False) -> set[str]:
    """Names in ``text``: each run of capitalised words (``Kristi Noem``, ``Inner Mongolia``,
    ``Jet Propulsion Laboratory``; ``of``/``de``/``van``… may join them) and, as variants, each
    of its words that is not a common word (``noem``, ``mongolia``), folded (:func:`_fold`).

    A capitalised common word starting a sentence is no name; a run stops at a sentence end or
    a comma. ``title_case``: the text is a headline where every word may be capitalised; only
    runs of two or more words count then.
    """
    tokens = _tokens(text) if isinstance(text, str) else text
    found: set[str] = set()
    run: list[str] = []
    for token, folded, boundary in tokens:
        if run and boundary:
            _close(run, found, title_case)
            run = []
        capital = token[:1].isupper()
        if (capital and folded not in _COMMON) or (run and not capital and folded in _CONNECTORS):
            run.append(folded)
        elif run:
            _close(run, found, title_case)
            run = []
    _close(run, found, title_case)
    return found


def _close(run: list[str], found: set[str], title_case: bool) -> None:
    while run and run[-1] in _CONNECTORS:
        run.pop()
    if not run:
        return
    words = [w for w in run if w not in _CONNECTORS and len(w) > 1]
    if title_case and len(words) < 2:
        return
    if len(run) > 1:
        found.add(" ".join(run))
    found.update(words)


def _content_words(tokens: Sequence[Token]) -> set[str]:
    # a word of 9 letters or more keeps its first 6 whatever its ending: no call needed
    return {
        f[:6] if len(f) > 8 else _stem(f) for _t, f, _b in tokens if len(f) > 2 and f not in _COMMON
    }


@dataclass(frozen=True)
class EventSignature:
    """What event matching knows of a story: kept on the event document for each member."""

    story_id: str
    outlet: str  # the site's name (else its domain): who reported it
    title: str
    when: datetime
    names: frozenset[str]  # names of the title and lead, and their variants
    words: frozenset[str]  # content-word stems of the title and lead
    title_words: frozenset[str] = frozenset()  # content-word stems of the title

    def to_source(self) -> dict[str, Any]:
        return {
            "story_id": self.story_id,
            "outlet": self.outlet,
            "title": self.title,
            "when": self.when.astimezone(UTC).isoformat(),
            "names": sorted(self.names),
            "words": sorted(self.words),
            "title_words": sorted(self.title_words),
        }

    @classmethod
    def from_source(cls, source: Mapping[str, Any]) -> EventSignature:
        when = datetime.fromisoformat(str(source["when"]).replace("Z", "+00:00"))
        return cls(
            story_id=str(source["story_id"]),
            outlet=str(source.get("outlet") or ""),
            title=str(source.get("title") or ""),
            when=when if when.tzinfo else when.replace(tzinfo=UTC),
            names=frozenset(source.get("names") or ()),
            words=frozenset(source.get("words") or ()),
            title_words=frozenset(source.get("title_words") or ()),
        )


def signature(
    story_id: str, outlet: str, title: str | None, text: str, when: datetime
) -> EventSignature | None:
    """The signature of a story from its first article; None when there is too little to
    compare (no title, or no name at all)."""
    title = " ".join((title or "").split())
    if not title:
        return None
    lead, heading_tokens = _tokens(_lead(text)), _tokens(title)
    lead_names = names_of(lead)
    # a headline capitalises its words: its single words count where the lead has them too
    title_names = names_of(heading_tokens, title_case=True) | (
        {n for n in names_of(heading_tokens) if " " not in n} & lead_names
    )
    names = frozenset(lead_names | title_names)
    if not names:
        return None
    heading = frozenset(_content_words(heading_tokens))
    words = frozenset(heading | _content_words(lead))
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    outlet = " ".join(outlet.split()).removeprefix("www.")
    return EventSignature(story_id, outlet, title, when, names, words, heading)


@dataclass(frozen=True)
class EventRules:
    """When two stories report one happening (the values measured in docs/events.md)."""

    window: timedelta = DEFAULT_WINDOW
    min_names: int = 2  # shared names and variants, a multi-word name counting 2
    min_title_words: int = 1  # content words both titles have
    min_words: float = 0.195  # cosine of the title-and-lead content words
    same_outlet_words: float = 0.5  # two stories of one outlet need this much


def _weight(name: str) -> int:
    return 2 if " " in name else 1


def relate(a: EventSignature, b: EventSignature, rules: EventRules | None = None) -> float | None:
    """How surely ``a`` and ``b`` report the same happening (the cosine of their title-and-lead
    words, higher is surer), or None when they must stay apart: too far apart in time, too few
    shared names, no title word in common, too few shared lead words."""
    rules = rules or EventRules()
    if a.story_id == b.story_id:
        return 1.0
    if abs(a.when - b.when) > rules.window:
        return None
    if len(a.title_words & b.title_words) < rules.min_title_words:
        return None
    if sum(_weight(n) for n in a.names & b.names) < rules.min_names:
        return None
    if not a.words or not b.words:
        return None
    score = len(a.words & b.words) / math.sqrt(len(a.words) * len(b.words))
    same = a.outlet and a.outlet.casefold() == b.outlet.casefold()
    need = rules.same_outlet_words if same else rules.min_words
    return round(score, 4) if score >= need else None


@dataclass
class EventMatcher:
    """Events in memory: those of this run (not yet searchable) in the pipeline, all of them in
    the bench. ``events`` maps an event id to its members' signatures."""

    rules: EventRules = field(default_factory=EventRules)
    events: dict[str, list[EventSignature]] = field(default_factory=dict)
    event_of: dict[str, str] = field(default_factory=dict)  # story id -> event id
    _by_name: dict[str, set[str]] = field(default_factory=dict)  # name -> event ids

    @classmethod
    def for_run(cls) -> EventMatcher:
        """An empty matcher with the window of the environment (:func:`window`)."""
        return cls(rules=EventRules(window=window()))

    def best(
        self, sig: EventSignature, extra: Mapping[str, Sequence[EventSignature]] | None = None
    ) -> tuple[str, float] | None:
        """The event ``sig`` belongs to and the score of its best member, among the events
        held here that share a name with it and ``extra`` (event id -> members, from the
        index); the higher score wins, then the smaller event id (the same on every worker)."""
        extra = extra or {}
        held = {e for n in sig.names for e in self._by_name.get(n, ())}
        best: tuple[str, float] | None = None
        for event_id in sorted(held | set(extra)):
            members = {m.story_id: m for m in extra.get(event_id, ())}
            members.update((m.story_id, m) for m in self.events.get(event_id, ()))
            scores = [s for m in members.values() if (s := relate(sig, m, self.rules))]
            if scores and (best is None or max(scores) > best[1]):
                best = (event_id, max(scores))
        return best

    def add(self, event_id: str, sig: EventSignature) -> None:
        members = self.events.setdefault(event_id, [])
        if all(m.story_id != sig.story_id for m in members):
            members.append(sig)
        self.event_of[sig.story_id] = event_id
        for n in sig.names:
            self._by_name.setdefault(n, set()).add(event_id)

    def assign(self, sig: EventSignature) -> str:
        """The event id ``sig`` joins (its own story id when none), remembered."""
        if sig.story_id in self.event_of:
            return self.event_of[sig.story_id]
        found = self.best(sig)
        event_id = found[0] if found else sig.story_id
        self.add(event_id, sig)
        return event_id


def representative_title(members: Sequence[EventSignature]) -> str:
    """The title of the member sharing the most names with the others (the first on a tie)."""
    if not members:
        return ""
    counts = Counter(n for m in members for n in m.names)
    best = max(members, key=lambda m: (sum(counts[n] - 1 for n in m.names), -members.index(m)))
    return best.title


# --- the events index: assigning a batch's new stories -----------------------------------------

CANDIDATES = 10  # events asked for per new story, sharing the most names first
SETTLE_FIELDS = (
    "story_id",
    "duplicate_of",
    "domain",
    "site_name",
    "title",
    "text",
    "feed_summary",
    "url",
    "published_at",
    "indexed_at",
    "extraction",
)


def _story_signature(doc_id: str, article: Article) -> EventSignature:
    """The signature of the story ``article`` starts; one without names (too little text)
    still makes an event of its own."""
    story_id = article.story_id or doc_id
    when = article.published_at or article.indexed_at or article.fetched_at
    text = article.text or article.feed_summary or article.description or ""
    sig = signature(story_id, _outlet(article), article.title, text, when)
    if sig is None:
        title = article.title or ""
        sig = EventSignature(story_id, _outlet(article), title, when, frozenset(), frozenset())
    return sig


def _outlet(article: Article) -> str:
    return " ".join((article.site_name or article.domain).split())


def _seen(article: Article) -> str:
    moment = article.indexed_at or article.fetched_at
    return moment.astimezone(UTC).isoformat()


def assign_events(
    es: Client,
    names: IndexNames,
    written: Sequence[tuple[str, Article]],
    matcher: EventMatcher,
    *,
    settle: bool = False,
) -> Counter[str]:
    """Put the stories that ``written`` articles (``(doc_id, article)``, in the index with their
    story) start into events, and the copies among them into their story's event; update the
    event documents. ``matcher`` holds the events of this run (not searchable yet).

    Idempotent: a story already in an event stays there (``settle``: articles a stopped run
    wrote, whose events may or may not have been written; the index is refreshed first).
    Counts ``event_new`` / ``event_joined`` (a new story started / joined an event),
    ``event_settled`` (already in one) and ``events_updated``.
    """
    counts: Counter[str] = Counter()
    starts = [(i, a) for i, a in written if a.story_id and a.duplicate_of is None]
    copies = [(i, a) for i, a in written if a.story_id and a.duplicate_of is not None]
    if not starts and not copies:
        return counts
    rules = matcher.rules
    sigs = [_story_signature(i, a) for i, a in starts]
    wanted = {s.story_id for s in sigs} | {str(a.story_id) for _i, a in copies}
    unknown = [s for s in wanted if s not in matcher.event_of]
    placed = store.events_of_stories(es, names, unknown, fresh=settle) if unknown else {}
    changes: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    articles: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    todo = [(s, a) for s, (_i, a) in zip(sigs, starts, strict=True)]
    searchable = [(s, a) for s, a in todo if s.names and s.story_id not in placed]
    found = store.event_candidates(
        es,
        names,
        [(sorted(s.names), s.when) for s, _a in searchable],
        window=rules.window,
        size=CANDIDATES,
    )
    from_index = {s.story_id: hits for (s, _a), hits in zip(searchable, found, strict=True)}
    for sig, article in todo:
        event_id = matcher.event_of.get(sig.story_id) or placed.get(sig.story_id)
        if event_id is not None:
            counts["event_settled"] += 1
        else:
            extra = {
                e: [EventSignature.from_source(m) for m in src.get("members") or ()]
                for e, src in from_index.get(sig.story_id, ())
            }
            best = matcher.best(sig, extra)
            event_id = best[0] if best else sig.story_id
            counts["event_joined" if best else "event_new"] += 1
        matcher.add(event_id, sig)
        member = {**sig.to_source(), "url": article.url, "seen": _seen(article)}
        changes[event_id].append(member)
        articles[event_id].append((sig.story_id, sig.outlet, _seen(article)))
    for doc_id, article in copies:
        story = str(article.story_id)
        event_id = matcher.event_of.get(story) or placed.get(story)
        if event_id is not None:  # a story from before events has none: left as it is
            articles[event_id].append((doc_id, _outlet(article), _seen(article)))
    updates = {
        e: store.EventChange(members=tuple(changes.get(e, ())), articles=tuple(articles[e]))
        for e in sorted(set(changes) | set(articles))
    }
    counts["events_updated"] += store.update_events(es, names, updates, _title_of)
    return counts


def _title_of(members: Sequence[Mapping[str, Any]]) -> str:
    return representative_title([EventSignature.from_source(m) for m in members])


def settle_events(
    es: Client, names: IndexNames, article_ids: Sequence[str], matcher: EventMatcher
) -> Counter[str]:
    """:func:`assign_events` for articles a stopped run wrote (read back from the index)."""
    found = articles_by_id(es, names, article_ids, list(SETTLE_FIELDS))
    written = [(i, from_document(src)) for i, src in sorted(found.items())]
    return assign_events(es, names, written, matcher, settle=True)
