"""newsmon.text.dedup: exact and near duplicates, the verification rule, story assignment.

The texts are real: the seed article (a BOL News story on Pakistan-US defence ties) and the
human-marked article bodies of the shared news-pages set. Copies and hard negatives are built
here the way bench/dedup_quality.py builds them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from itertools import combinations

import numpy as np
import pytest

from newsmon.text.dedup import (
    MIN_WORDS,
    NUM_PERM,
    DocInfo,
    Fingerprint,
    StoryMatcher,
    best_match,
    compare,
    fingerprint,
    minhash,
    minhash_datasketch,
    normalise_text,
    same_story,
    shingle_hashes,
    text_hash,
)

from .helpers.paths import NEWS_PAGES, SEED

TITLE = "US Defence secretary wants to improve Pak-US ties"


@pytest.fixture(scope="module")
def seed_paragraphs() -> list[str]:
    path = SEED / "expected-body.txt"
    if not path.is_file():
        pytest.fail(f"shared data missing: {path} (set NEWSMON_SHARED)")
    return [p for p in path.read_text(encoding="utf-8").strip().split("\n\n") if p.strip()]


@pytest.fixture(scope="module")
def real_articles() -> list[tuple[str, str]]:
    """(host, body) of the news-pages articles long enough to cluster."""
    path = NEWS_PAGES / "ground-truth.json"
    if not path.is_file():
        pytest.fail(f"shared data missing: {path} (set NEWSMON_SHARED)")
    truth = json.loads(path.read_text(encoding="utf-8"))
    articles = []
    for item in truth.values():
        host = re.sub(r"^www\.", "", item["url"].split("/")[2])
        if len(item["articleBody"].split()) >= 100:
            articles.append((host, item["articleBody"]))
    return articles


def doc(doc_id: str, domain: str, title: str | None, paragraphs: list[str] | str) -> DocInfo:
    text = paragraphs if isinstance(paragraphs, str) else "\n\n".join(paragraphs)
    return DocInfo(doc_id, domain, title, fingerprint(text))


def syndicated_copy(paragraphs: list[str]) -> list[str]:
    """Another outlet's copy: its boilerplate, a dateline, the last paragraph trimmed."""
    return [
        "By Our Correspondent",
        "Follow us on WhatsApp for the latest updates",
        f"ISLAMABAD (APP) \u2013 {paragraphs[0]}",
        *paragraphs[1:-1],
        "Read more: Pakistan, China sign agreements on CPEC projects",
        "Sign up for our newsletter to get the day's top stories",
        "© 2021 The Daily Example. All rights reserved.",
    ]


# --- normalisation and exact duplicates ---------------------------------------------------------


def test_normalise_text_folds_case_punctuation_quotes_and_whitespace() -> None:
    text = "  It\u2019s  \u201cFINAL\u201d \u2014\n\nsays U.S.-led\tpanel\u2026 "
    assert normalise_text(text) == ("it s final says u s led panel")
    assert normalise_text("Straße") == "strasse"
    assert normalise_text("") == ""


def test_exact_duplicates_share_the_text_hash(seed_paragraphs: list[str]) -> None:
    text = "\n\n".join(seed_paragraphs)
    variants = [
        text,
        text.upper(),
        "  " + text.replace("\n\n", "\n").replace(" ", "   ") + "\n",
        text.replace("\u201c", '"').replace("\u201d", '"').replace("\u2019", "'"),
    ]
    assert len({text_hash(v) for v in variants}) == 1
    assert len({fingerprint(v).bands for v in variants}) == 1
    assert text_hash(text) != text_hash(text.replace("Tuesday", "Monday"))


def test_exact_duplicate_on_another_site_is_an_exact_match(seed_paragraphs: list[str]) -> None:
    original = doc("a", "bolnews.com", TITLE, seed_paragraphs)
    copy = doc("b", "dawn.com", "Pakistan, US discuss Afghan situation", seed_paragraphs)
    match = best_match(copy, [original])
    assert match is not None
    assert (match.kind, match.doc_id, match.story_id) == ("exact", "a", "a")
    assert match.similarity.jaccard == 1.0


# --- near duplicates ----------------------------------------------------------------------------


def test_syndicated_copy_matches_the_original(seed_paragraphs: list[str]) -> None:
    original = doc("orig", "bolnews.com", TITLE, seed_paragraphs)
    copy = doc("copy", "dailyexample.pk", TITLE, syndicated_copy(seed_paragraphs))
    assert set(original.fingerprint.bands) & set(copy.fingerprint.bands), "not even a candidate"
    similarity = same_story(copy, original)
    assert similarity is not None
    assert similarity.containment >= 0.9
    assert same_story(original, copy) == similarity  # symmetric
    match = best_match(copy, [original])
    assert match is not None and match.kind == "near" and match.story_id == "orig"


def test_truncated_copy_is_contained_in_the_original(seed_paragraphs: list[str]) -> None:
    original = fingerprint("\n\n".join(seed_paragraphs))
    trimmed = fingerprint("\n\n".join(seed_paragraphs[:-4]))
    similarity = compare(trimmed, original)
    assert similarity.containment > 0.99
    assert similarity.jaccard < similarity.containment


def test_different_real_articles_never_match(real_articles: list[tuple[str, str]]) -> None:
    docs = [
        DocInfo(f"doc{n}", host, None, fingerprint(body))
        for n, (host, body) in enumerate(real_articles)
    ]
    assert len(docs) > 100
    for a, b in combinations(docs, 2):
        if a.domain != b.domain:
            assert same_story(a, b) is None, (
                a.doc_id,
                b.doc_id,
                compare(a.fingerprint, b.fingerprint),
            )
    matcher = StoryMatcher()
    assert [matcher.assign(d) for d in docs] == [None] * len(docs)


def test_same_site_follow_up_sharing_background_does_not_match(
    seed_paragraphs: list[str], real_articles: list[tuple[str, str]]
) -> None:
    original = doc("orig", "bolnews.com", TITLE, seed_paragraphs)
    new_text = real_articles[0][1].split("\n\n")
    # the follow-up: two new paragraphs, two background paragraphs of the original, more news
    follow_up = [*new_text[:2], *seed_paragraphs[7:9], *new_text[2:6]]
    assert len(" ".join(follow_up).split()) >= MIN_WORDS
    candidate = doc("next", "bolnews.com", "US Defence secretary meets Afghan envoy", follow_up)
    assert same_story(candidate, original) is None
    assert StoryMatcher().assign(candidate) is None


def test_two_urls_of_one_site_need_matching_titles(seed_paragraphs: list[str]) -> None:
    """A site's articles repeat its own paragraphs: without a matching title, text is not
    enough on the same site (or a subdomain of it), while another site's copy matches."""
    shared = [*seed_paragraphs[:-3], "The minister will visit Kabul next week, officials said."]
    original = doc("orig", "bolnews.com", TITLE, seed_paragraphs)
    same_site = doc("other", "bolnews.com", "Moeed Yusuf briefs Senate on Afghanistan", shared)
    subdomain = doc("sub", "urdu.bolnews.com", "Moeed Yusuf briefs Senate on Afghanistan", shared)
    elsewhere = doc("copy", "dawn.com", "Moeed Yusuf briefs Senate on Afghanistan", shared)
    assert same_story(same_site, original) is None
    assert same_story(subdomain, original) is None
    assert same_story(elsewhere, original) is not None


def test_same_site_updated_version_matches(seed_paragraphs: list[str]) -> None:
    updated = list(seed_paragraphs)
    updated[4] = (
        "US and NATO forces are expected to complete their withdrawal from Afghanistan by the "
        "end of the month, according to the Pentagon."
    )
    updated.append(
        "Later on Wednesday, the Foreign Office said Pakistan would continue to support an "
        "inclusive political settlement in Afghanistan."
    )
    original = doc("v1", "bolnews.com", TITLE, seed_paragraphs)
    correction = doc("v2", "bolnews.com", TITLE, updated)
    similarity = same_story(correction, original)
    assert similarity is not None and similarity.jaccard > 0.8


# the seed article's names and numbers, replaced by others (a same-template story)
OTHER_FACTS = {
    "Bajwa": "Nadeem",
    "Qamar Javed": "Asim",
    "Lloyd Austin": "Mark Esper",
    "Austin": "Esper",
    "Afghanistan": "Iran",
    "Afghan": "Iranian",
    "Pakistan": "India",
    "Pentagon": "State Department",
    "Moeed Yusuf": "Ajit Doval",
    "Yusuf": "Doval",
    "Washington": "Paris",
    "August 31": "June 30",
    "August 1": "June 2",
    "Islamabad": "New Delhi",
    "Biden": "Trump",
    "NATO": "EU",
    "Taliban": "Houthis",
    "US": "UK",
    "United States": "United Kingdom",
}


def test_same_wording_about_other_names_and_numbers_does_not_match(
    seed_paragraphs: list[str],
) -> None:
    """Auto-generated reports share their wording: a text whose names and numbers are all
    different is another story even when most of its shingles are shared."""
    pattern = re.compile("|".join(sorted(map(re.escape, OTHER_FACTS), key=len, reverse=True)))
    other = [pattern.sub(lambda m: OTHER_FACTS[m.group(0)], p) for p in seed_paragraphs]
    a = doc("a", "bolnews.com", TITLE, seed_paragraphs)
    b = doc("b", "example.com", pattern.sub(lambda m: OTHER_FACTS[m.group(0)], TITLE), other)
    similarity = compare(a.fingerprint, b.fingerprint)
    assert similarity.jaccard >= 0.3  # most of the wording is shared...
    assert similarity.facts_changed is not None and similarity.facts_changed > 0.5  # ...not facts
    assert same_story(b, a) is None


# --- short texts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["", "   ", "Advertisement", "Subscribe to continue reading this article.", "word " * 20],
)
def test_empty_and_short_texts_never_cluster(text: str) -> None:
    fp = fingerprint(text)
    assert fp.bands == ()
    a = DocInfo("a", "one.example", "Title", fp)
    b = DocInfo("b", "two.example", "Title", fingerprint(text))
    assert same_story(a, b) is None
    matcher = StoryMatcher()
    assert matcher.assign(a) is None
    assert matcher.candidates(b.fingerprint) == []
    assert matcher.assign(b) is None
    assert matcher.story_of("b") == "b"


def test_teaser_of_an_article_does_not_join_it(seed_paragraphs: list[str]) -> None:
    teaser = " ".join(seed_paragraphs[0].split()[:30])
    original = doc("orig", "bolnews.com", TITLE, seed_paragraphs)
    summary = doc("feed", "aggregator.example", TITLE, teaser)
    assert summary.fingerprint.bands == ()
    assert same_story(summary, original) is None


# --- story assignment ---------------------------------------------------------------------------


def test_story_matcher_gives_copies_the_first_article_story(
    seed_paragraphs: list[str], real_articles: list[tuple[str, str]]
) -> None:
    matcher = StoryMatcher()
    first = doc("first", "bolnews.com", TITLE, seed_paragraphs)
    assert matcher.assign(first) is None
    assert matcher.story_of("first") == "first"

    copy = doc("copy", "dailyexample.pk", TITLE, syndicated_copy(seed_paragraphs))
    match = matcher.assign(copy)
    assert match is not None and (match.doc_id, match.story_id) == ("first", "first")

    # a copy of the copy (trimmed further) joins the same story through either of them
    again = doc("again", "another.example", None, syndicated_copy(seed_paragraphs)[:-4])
    match = matcher.assign(again)
    assert match is not None and match.story_id == "first"

    host, body = real_articles[5]
    unrelated = doc("unrelated", host, "Something else", body)
    assert matcher.candidates(unrelated.fingerprint) == []
    assert matcher.assign(unrelated) is None
    assert [matcher.story_of(i) for i in ("first", "copy", "again", "unrelated")] == [
        "first",
        "first",
        "first",
        "unrelated",
    ]


def test_story_matcher_keeps_a_known_story_id(seed_paragraphs: list[str]) -> None:
    """An already-indexed article brings its story; an exact duplicate ranks first."""
    matcher = StoryMatcher()
    indexed = DocInfo(
        "old", "bolnews.com", TITLE, fingerprint("\n\n".join(seed_paragraphs)), story_id="s-1"
    )
    matcher.add(indexed)
    near = doc("near", "dawn.com", TITLE, syndicated_copy(seed_paragraphs))
    exact = doc("exact", "geo.tv", TITLE, seed_paragraphs)
    assert [d.doc_id for d in matcher.candidates(exact.fingerprint)] == ["old"]
    match = matcher.assign(near)
    assert match is not None and match.story_id == "s-1"
    match = matcher.assign(exact)
    assert match is not None and (match.kind, match.doc_id, match.story_id) == (
        "exact",
        "old",
        "s-1",
    )


# --- fingerprints -------------------------------------------------------------------------------


def test_fingerprint_shape(seed_paragraphs: list[str]) -> None:
    fp = fingerprint("\n\n".join(seed_paragraphs))
    assert isinstance(fp, Fingerprint)
    assert fp.words == len(normalise_text("\n\n".join(seed_paragraphs)).split())
    assert len(fp.bands) == len(set(fp.bands)) > 0
    assert all(re.fullmatch(r"\d\d:[0-9a-f]{12}", band) for band in fp.bands)
    assert len(fp.shingles) > 0.9 * fp.words
    assert re.fullmatch(r"[0-9a-f]{32}", fp.text_hash)


def test_fingerprint_is_the_same_in_another_process(seed_paragraphs: list[str]) -> None:
    text = "\n\n".join(seed_paragraphs)
    code = (
        "import json, sys\n"
        "from newsmon.text.dedup import fingerprint\n"
        "fp = fingerprint(sys.stdin.read())\n"
        "print(json.dumps([fp.text_hash, list(fp.bands), sorted(fp.shingles), sorted(fp.facts)]))"
    )
    here = fingerprint(text)
    for hash_seed in ("1", "2"):  # str hashing is salted per process: it must not matter
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", code], input=text, capture_output=True, text=True, env=env,
            check=True,
        )  # fmt: skip
        text_hash_, bands, shingles, facts = json.loads(out.stdout)
        assert text_hash_ == here.text_hash
        assert tuple(bands) == here.bands
        assert shingles == sorted(here.shingles)
        assert facts == sorted(here.facts)


def test_numpy_minhash_equals_datasketch(seed_paragraphs: list[str]) -> None:
    hashes = shingle_hashes("\n\n".join(seed_paragraphs))
    signature = minhash(hashes)
    assert signature.shape == (NUM_PERM,)
    assert np.array_equal(signature, minhash_datasketch(hashes))
    assert np.array_equal(minhash(hashes[:3]), minhash_datasketch(hashes[:3]))
