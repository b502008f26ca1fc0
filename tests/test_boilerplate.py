"""Site boilerplate lines: learned per domain, shared through Elasticsearch, never content."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date, timedelta

import pytest
from elasticsearch import ApiError, Elasticsearch
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from newsmon.config import Settings
from newsmon.store import IndexNames, connect, ensure_indices
from newsmon.store.lines import ElasticsearchLineStore
from newsmon.text.boilerplate import (
    DEFAULT_RULES,
    ArticleText,
    Cleaned,
    LineStore,
    MemoryLineStore,
    Rules,
    article_key,
    clean_batch,
    content_keys,
    line_key,
)
from newsmon.text.leadins import heading_leadin

from .helpers.paths import SEED

BOL = "bolnews.com"
FOOTER = [
    "Read More News On",
    "Catch all the Pakistan News, Breaking News Event and Latest News Updates on The BOL News",
    "Download The BOL News App to get the Daily News Update & Follow us on Google News.",
]
DAY = date(2021, 8, 10)

SEED_TITLE = "US Defence secretary wants to improve Pak-US ties"
STORIES: list[tuple[str, list[str]]] = [
    (
        "Rupee gains 45 paisa against the US dollar in interbank trading",
        [
            "The Pakistani rupee gained 45 paisa against the US dollar on Monday, closing at "
            "163.40 in the interbank market, the State Bank of Pakistan said.",
            "Currency dealers attributed the rise to inflows from remittances and lower demand "
            "for imports payments at the start of the month.",
            "In the open market the dollar was traded at 164.10.",
        ],
    ),
    (
        "Heavy rain expected in Karachi from Thursday, says PMD",
        [
            "The Pakistan Meteorological Department has forecast heavy rain in Karachi and other "
            "parts of Sindh from Thursday as a low-pressure area moves in from the Bay of Bengal.",
            "The provincial disaster management authority asked the city administration to clear "
            "storm drains and keep dewatering pumps ready in low-lying neighbourhoods.",
        ],
    ),
    (
        "Babar Azam moves up to second in ICC T20 batting rankings",
        [
            "Pakistan captain Babar Azam has climbed to second place in the ICC T20 "
            "International batting rankings after his unbeaten half-century in the final match "
            "of the series.",
            "England's Dawid Malan remains at the top of the table, 25 rating points ahead.",
            "Mohammad Rizwan is now seventh, his highest position so far.",
        ],
    ),
    (
        "Punjab announces new polio vaccination drive in 12 districts",
        [
            "The Punjab health department will run a five-day polio vaccination campaign in 12 "
            "districts from next week, aiming to reach more than 6 million children.",
            "Officials said environmental samples from Lahore and Rawalpindi had tested positive "
            "for the virus in recent months.",
        ],
    ),
    (
        "Islamabad High Court reserves verdict in property case",
        [
            "The Islamabad High Court on Wednesday reserved its verdict on a petition challenging "
            "the auction of state land in the capital's E-11 sector.",
            "The petitioners' counsel argued that the auction notice had not been published in "
            "national newspapers as the law requires.",
            "The court asked the Capital Development Authority to submit the auction record.",
        ],
    ),
]


def seed_paragraphs() -> list[str]:
    return (SEED / "expected-body.txt").read_text(encoding="utf-8").strip().split("\n\n")


def text(*parts: str | Sequence[str]) -> str:
    lines: list[str] = []
    for part in parts:
        lines.extend([part] if isinstance(part, str) else part)
    return "\n\n".join(lines)


def bol(n: int, *, day: date | None = None, doc_id: str | None = None) -> ArticleText:
    """BOL story n (0 = the seed article) with the site's footer, published DAY + n days."""
    title, body = (SEED_TITLE, seed_paragraphs()) if n == 0 else STORIES[n - 1]
    return ArticleText(
        doc_id=doc_id or f"bol-{n}",
        domain=BOL,
        title=title,
        text=text(body, FOOTER),
        day=day or DAY + timedelta(days=n),
    )


def word(n: int) -> str:
    """A word for n: titles are compared with digits masked, so "Story 1" is "Story 2"."""
    return "".join(chr(ord("a") + int(d)) for d in str(n))


def body_of(n: int) -> str:
    return text(seed_paragraphs() if n == 0 else STORIES[n - 1][1])


def one(store: LineStore, item: ArticleText, rules: Rules = DEFAULT_RULES) -> Cleaned:
    (result,) = clean_batch(store, [item], rules)
    return result


# --- the rule ---------------------------------------------------------------------------------


def test_footer_removed_from_the_third_article_on_and_never_before() -> None:
    store = MemoryLineStore()
    first, second = one(store, bol(0)), one(store, bol(1))
    assert (first.removed, second.removed) == (0, 0)
    assert first.text == bol(0).text and second.text == bol(1).text

    third, fourth = one(store, bol(2)), one(store, bol(3))
    assert third == Cleaned("bol-2", body_of(2), 3)
    assert fourth == Cleaned("bol-3", body_of(3), 3)


def test_repeats_inside_one_batch_count() -> None:
    results = clean_batch(MemoryLineStore(), [bol(0), bol(1), bol(2)])
    assert [r.text for r in results] == [body_of(0), body_of(1), body_of(2)]
    assert [r.removed for r in results] == [3, 3, 3]


def test_seed_article_keeps_every_paragraph_of_its_expected_body() -> None:
    store = MemoryLineStore()
    clean_batch(store, [bol(1), bol(2)])
    assert one(store, bol(0, day=DAY + timedelta(days=9))).text == body_of(0)


def test_same_lines_on_another_domain_are_not_removed() -> None:
    store = MemoryLineStore()
    clean_batch(store, [bol(n) for n in range(4)])
    other = replace(bol(4), domain="dawn.com", doc_id="dawn-1")
    assert one(store, other).removed == 0
    # www. is the same site
    assert one(store, replace(bol(5), domain="www.bolnews.com")).text == body_of(5)


def test_articles_of_one_day_do_not_make_boilerplate() -> None:
    store = MemoryLineStore()
    same_day = [bol(n, day=DAY) for n in range(4)]
    assert all(r.removed == 0 for r in clean_batch(store, same_day))
    assert one(store, bol(4, day=DAY + timedelta(days=1))).removed == 0  # two days
    assert one(store, bol(5, day=DAY + timedelta(days=2))).removed == 3  # three days


def test_rerunning_a_batch_does_not_inflate_counts() -> None:
    store = MemoryLineStore()
    for _ in range(5):
        assert clean_batch(store, [bol(0), bol(1)])[1].removed == 0
    assert one(store, replace(bol(0), doc_id="bol-0-retry")).removed == 0
    stats = store.stats({BOL: [line_key(FOOTER[0]) or ""]})
    assert stats[BOL][line_key(FOOTER[0]) or ""].articles == 2


def test_line_keys_ignore_case_spacing_and_punctuation_but_not_digits() -> None:
    assert line_key("Read More News On") == line_key("  READ more  news on:")
    assert line_key("Read More — News On…") == line_key("read more news on")
    assert line_key("Updated 3 hours ago") != line_key("Updated 4 hours ago")
    assert line_key("Updated 3 hours ago", mask_digits=True) == line_key(
        "Updated 4 hours ago", mask_digits=True
    )
    assert line_key("* * *") is None and line_key("___") is None
    # titles are compared with digits masked: an updated toll is the same story
    a = ArticleText("a", BOL, "Blast in Karachi kills 5", "x")
    b = ArticleText("b", BOL, "Blast in Karachi kills 12!", "y")
    assert article_key(a) == article_key(b)
    assert article_key(replace(a, title=None)) != article_key(replace(b, title=None))


def test_content_keys_leave_out_short_lines_and_survive_a_revision() -> None:
    seed = seed_paragraphs()
    keys = content_keys(seed)
    assert len(keys) == 2
    assert content_keys([*seed, *FOOTER]) == keys  # the site's short lines are left out
    revised = [f"Updated: {seed[0]} Officials gave no further details.", *seed[1:]]
    assert content_keys(revised) == keys  # most shingles are shared
    assert not set(content_keys(STORIES[0][1])) & set(keys)
    # no long paragraph: the whole text, so only exact copies share it
    assert content_keys(FOOTER) == content_keys(list(FOOTER)) != content_keys(FOOTER[:2])
    assert content_keys([]) == ()


def test_text_format_and_degenerate_input() -> None:
    store = MemoryLineStore()
    clean_batch(store, [bol(1), bol(2)])
    assert clean_batch(store, []) == []
    empty = ArticleText("e", BOL, "Empty", "", DAY)
    no_domain = replace(bol(3), domain="")
    results = clean_batch(store, [empty, no_domain, bol(4)])
    assert results[0] == Cleaned("e", "", 0)
    assert results[1].text == bol(3).text  # no domain: nothing learned, nothing removed
    assert results[2].text == body_of(4) and "\n\n\n" not in results[2].text


# --- the dangerous cases: content stays --------------------------------------------------------


def learned_store() -> MemoryLineStore:
    """A store that already knows BOL's footer (five unrelated stories on five days)."""
    store = MemoryLineStore()
    clean_batch(store, [bol(n) for n in range(1, 6)])
    return store


def test_one_article_republished_at_several_urls_keeps_its_text() -> None:
    store = MemoryLineStore()
    copies = [bol(0, doc_id=f"url-{n}", day=DAY + timedelta(days=n)) for n in range(6)]
    assert [r.removed for r in clean_batch(store, copies)] == [0] * 6


def test_one_article_republished_under_other_titles_keeps_its_text() -> None:
    store = learned_store()
    titles = [SEED_TITLE, f"Watch: {SEED_TITLE}", "Austin, Bajwa discuss Afghanistan in call"]
    body = seed_paragraphs()
    for n, title in enumerate(titles):
        item = ArticleText(f"copy-{n}", BOL, title, text(body, FOOTER), DAY + timedelta(days=n))
        assert one(store, item).text == body_of(0)  # the footer goes, every paragraph stays
    # and without the footer nothing at all is removed
    bare = ArticleText("copy-9", BOL, "Pak-US ties: what was said", text(body), DAY)
    assert one(store, bare).removed == 0


def test_two_articles_sharing_a_block_each_republished_keep_the_block() -> None:
    """Two pages of a theatre's site share its info box; each is re-published twice under new
    titles. Six documents, but two articles: the box is theirs, not the site's boilerplate."""
    info = ["Performance information", "Tue - Sat 4PM (Closed on Sun & Mon)", "VIP: 60,000 won"]
    pages = [
        (
            "The Palace: a new season opens",
            "The Palace returns to the Jeongdong stage this spring with a new cast and a score "
            "rewritten for traditional instruments, the theatre announced on Monday.",
        ),
        (
            "Tradition series: Jang Noksu tickets on sale",
            "Tickets for the tradition series' story of Jang Noksu, the Joseon-era court dancer, "
            "go on sale next week, with discounts for students and groups of ten or more.",
        ),
    ]
    store = MemoryLineStore()
    for n, prefix in enumerate(["", "Watch: ", "Explained: "]):
        for m, (title, lede) in enumerate(pages):
            item = ArticleText(
                f"t{n}{m}", "theatre.example", prefix + title, text(lede, info), DAY + timedelta(n)
            )
            assert one(store, item).removed == 0


KARACHI = [
    "Rescue officials said the explosion took place in a busy market in Saddar at around 11am, "
    "shattering the windows of nearby shops and setting several vehicles on fire.",
    "Police said the device had been planted in a motorcycle parked near the entrance.",
    "The injured were taken to Jinnah Postgraduate Medical Centre.",
    "Karachi police chief said the area had been cordoned off.",
    "No group has claimed responsibility for the attack so far.",
]


def test_updated_versions_of_a_story_keep_their_content() -> None:
    store = learned_store()
    versions = [
        ("Blast in Karachi's Saddar kills 5", ["At least five people were killed."]),
        ("Blast in Karachi's Saddar kills 9", ["At least nine people were killed."]),
        ("Death toll from Saddar blast rises to 12", ["The death toll rose to 12."]),
        ("Saddar blast: PM orders inquiry", ["Prime Minister Imran Khan ordered an inquiry."]),
    ]
    for n, (title, lede) in enumerate(versions):
        item = ArticleText(
            f"v{n}", BOL, title, text(lede, KARACHI[: 2 + n % 3], FOOTER), DAY + timedelta(days=n)
        )
        assert one(store, item).text == text(lede, KARACHI[: 2 + n % 3])


def test_live_blog_snapshots_keep_their_entries() -> None:
    """A live blog saved at a new URL and under a new headline each day."""
    store = learned_store()
    headlines = ["Babar hits fifty", "Rizwan out", "rain stops play", "Shadab takes two", "tea"]
    entries: list[str] = []
    standing = ["Live updates", "Key events", "Pakistan won the toss and chose to bat."]
    for n, headline in enumerate(headlines):
        entries = [f"{10 + n}:{15 + n} PKT", f"Update {n}: {headline}, {100 + 7 * n}/2", *entries]
        item = ArticleText(
            f"live-{n}",
            BOL,
            f"Pakistan vs England live: {headline}",
            text(standing, entries, FOOTER),
            DAY + timedelta(days=n),
        )
        result = one(store, item)
        assert result.text.startswith(text(standing, entries))
    assert result.text == text(standing, entries)  # the footer went once the blog was long enough


FOLLOW_UPS = [
    (
        "Taliban capture Kandahar, Afghanistan's second-largest city",
        [
            "The Taliban captured Kandahar on Thursday night, a local official said, as the "
            "insurgents swept through the south of the country.",
            "Government forces withdrew to the airport, from where some were flown to Kabul.",
        ],
    ),
    (
        "US to send 3,000 troops to evacuate embassy staff from Kabul",
        [
            "The Pentagon will send about 3,000 troops to Kabul airport within 48 hours to help "
            "evacuate embassy staff, a spokesman said.",
            "Britain said it would deploy around 600 soldiers for a similar operation.",
        ],
    ),
    (
        "Taliban take Lashkar Gah after weeks of fighting",
        [
            "Lashkar Gah, the capital of Helmand province, fell to the Taliban on Friday after "
            "weeks of fighting, a provincial council member said.",
            "Thousands of families have fled the city since the fighting began.",
        ],
    ),
    (
        "Afghan president vows to remobilise security forces",
        [
            "President Ashraf Ghani said in a televised address on Saturday that remobilising "
            "the security forces was his top priority.",
            "He did not say whether he would resign, as the Taliban have demanded.",
        ],
    ),
]


def test_wire_credit_is_boilerplate_but_a_repeated_background_paragraph_is_not() -> None:
    store = MemoryLineStore()
    credit = "The Associated Press contributed to this report."
    for n, (title, body) in enumerate(STORIES[:4]):  # unrelated stories, four days
        item = ArticleText(f"ap-{n}", BOL, title, text(body, credit), DAY + timedelta(days=n))
        assert one(store, item).text == (text(body) if n >= 2 else text(body, credit))

    # follow-ups of one story over four days repeat its background paragraph: it stays
    background = (
        "The Taliban advances may appear startling in their speed but were not unexpected in "
        "Washington as the US military completes the pullout ordered by Biden by August 31."
    )
    for n, (title, body) in enumerate(FOLLOW_UPS):
        item = ArticleText(f"af-{n}", BOL, title, text(body, background), DAY + timedelta(days=n))
        assert one(store, item).removed == 0

    # same-day follow-ups of a story repeat a short background sentence: it stays
    short_background = "US and NATO forces are due to complete their withdrawal by August 31."
    same_day = [
        ArticleText(f"sd-{n}", "dawn.com", title, text(body, short_background), DAY)
        for n, (title, body) in enumerate(FOLLOW_UPS)
    ]
    assert [r.removed for r in clean_batch(store, same_day)] == [0, 0, 0, 0]


def test_headings_of_kept_text_stay_and_trailing_labels_go() -> None:
    store = MemoryLineStore()
    for n, product in enumerate(["Pixel 6", "Galaxy S21", "iPhone 13", "OnePlus 9"]):
        article = [
            f"The {product} is a phone with a {6 + n}-inch screen and a very good camera.",
            "Pros",
            f"- Battery lasts {30 + n} hours",
            "Cons",
            f"- Costs {500 + 100 * n} dollars",
            "Conclusion",
            f"We recommend the {product} to most people.",
            "Next Story",
        ]
        item = ArticleText(
            f"r{n}", "reviews.example", f"{product} review", text(article), DAY + timedelta(days=n)
        )
        result = one(store, item)
        assert result.text == text(article[:-1] if n >= 2 else article)


def test_long_lines_go_after_five_articles_on_five_days_and_very_long_ones_never() -> None:
    disclaimer = (
        "Disclaimer: the views and opinions expressed in this article are those of the author "
        "and do not necessarily reflect the official policy or position of The BOL News."
    )
    assert DEFAULT_RULES.max_line_chars < len(disclaimer) <= DEFAULT_RULES.max_long_line_chars
    store = MemoryLineStore()
    for n in range(1, 6):
        title, body = STORIES[n - 1]
        item = ArticleText(f"d{n}", BOL, title, text(body, disclaimer), DAY + timedelta(days=n))
        assert one(store, item).text == (text(body) if n == 5 else text(body, disclaimer))

    # five articles of one day are follow-ups, not a site's template
    store = MemoryLineStore()
    same_day = [
        ArticleText(f"s{n}", BOL, title, text(body, disclaimer), DAY)
        for n, (title, body) in enumerate(STORIES)
    ]
    assert [r.removed for r in clean_batch(store, same_day)] == [0] * 5

    store = MemoryLineStore()
    essay = " ".join([disclaimer] * 7)
    assert len(essay) > DEFAULT_RULES.max_long_line_chars
    items = [
        ArticleText(f"e{n}", BOL, title, text(body, essay), DAY + timedelta(days=n))
        for n, (title, body) in enumerate(STORIES)
    ]
    assert [r.removed for r in clean_batch(store, items)] == [0] * 5


def test_an_article_that_is_mostly_repeated_lines_is_left_alone() -> None:
    store = MemoryLineStore()
    learn = [
        ArticleText(f"s{n}", BOL, f"Story {word(n)}", text(f"Paragraph of story {n}.", FOOTER), DAY)
        for n in range(20)
    ]
    clean_batch(store, [replace(a, day=DAY + timedelta(days=n)) for n, a in enumerate(learn)])
    brief = ArticleText("brief", BOL, "Photos: rain in Lahore", text("Photos: AFP", FOOTER), DAY)
    assert one(store, brief).removed == 0


def test_only_the_first_and_last_lines_are_looked_at() -> None:
    rules = replace(DEFAULT_RULES, head_lines=4, tail_lines=2)
    store = MemoryLineStore()
    filler = [f"Paragraph {i} of a long article about topic {{n}}." for i in range(10)]
    for n in range(5):
        middle = (
            [f.format(n=n) for f in filler[:4]]
            + ["Also read"]
            + [f.format(n=n) for f in filler[4:]]
        )
        item = ArticleText(
            f"w{n}", BOL, f"Long read {word(n)}", text(middle, FOOTER[1:]), DAY + timedelta(days=n)
        )
        result = one(store, item, rules)
        assert "Also read" in result.text  # mid-article: never recorded, never removed
        assert result.removed == (2 if n >= 2 else 0)


# a line that occurs in one article only is never removed, whatever else the batch holds
_line = st.sampled_from(
    [*FOOTER, "Advertisement", "Share this", "Follow us", "Related", "Next Story"]
) | st.text(alphabet="abcdefgh .", min_size=1, max_size=30)


@hypothesis_settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.lists(_line, min_size=1, max_size=8), st.integers(0, 4)),
        min_size=1,
        max_size=8,
    )
)
def test_a_line_seen_in_one_article_only_is_never_removed(
    articles: list[tuple[list[str], int]],
) -> None:
    items = [
        ArticleText(f"p{n}", BOL, f"Title {word(n)}", text(lines), DAY + timedelta(days=d))
        for n, (lines, d) in enumerate(articles)
    ]
    in_articles: dict[str | None, set[int]] = {}
    for n, (lines, _) in enumerate(articles):
        for line in lines:
            in_articles.setdefault(line_key(line), set()).add(n)
    for n, result in enumerate(clean_batch(MemoryLineStore(), items)):
        kept = result.text.split("\n\n")
        lines = articles[n][0]
        # what a repeated link-list heading ("Related") lists is other articles' headlines and
        # teasers, different on every page (tests/test_related_links.py)
        listed = next((i for i, line in enumerate(lines) if heading_leadin(line)), len(lines))
        for line in lines[:listed]:
            if line.strip() and len(in_articles[line_key(line)]) == 1:
                assert line in kept


# --- Elasticsearch ---------------------------------------------------------------------------


def es_store(settings: Settings) -> ElasticsearchLineStore:
    """A store as one worker has it: its own client."""
    return ElasticsearchLineStore(connect(settings), IndexNames(settings.index_prefix))


@pytest.fixture
def lines_index(es: Elasticsearch, settings: Settings) -> str:
    names = IndexNames(settings.index_prefix)
    ensure_indices(es, names, settings.config_dir)
    return names.index("lines")


@pytest.mark.es
def test_lines_index_is_created_with_a_strict_mapping(es: Elasticsearch, lines_index: str) -> None:
    mapping = es.indices.get_mapping(index=lines_index)[lines_index]["mappings"]
    assert mapping["dynamic"] == "strict"
    fields = {"domain", "line", "article", "day", "seen_at", "content_1", "content_2"}  # no text
    assert set(mapping["properties"]) == fields
    with pytest.raises(ApiError):
        es.index(index=lines_index, document={"domain": BOL, "text": "Read More News On"})


@pytest.mark.es
def test_es_store_removes_the_footer_from_the_third_article_on(
    settings: Settings, lines_index: str
) -> None:
    store = es_store(settings)
    assert one(store, bol(0)).removed == 0
    assert one(store, bol(1)).removed == 0
    assert one(store, bol(2)) == Cleaned("bol-2", body_of(2), 3)
    assert clean_batch(store, [bol(3), replace(bol(4), domain="dawn.com")]) == [
        Cleaned("bol-3", body_of(3), 3),
        Cleaned("bol-4", bol(4).text, 0),
    ]


@pytest.mark.es
def test_two_workers_share_what_they_learn(settings: Settings, lines_index: str) -> None:
    first, second = es_store(settings), es_store(settings)
    assert [r.removed for r in clean_batch(first, [bol(0), bol(1)])] == [0, 0]
    assert one(second, bol(2)).text == body_of(2)
    assert one(first, bol(3)).text == body_of(3)


@pytest.mark.es
def test_es_rerun_of_a_batch_does_not_inflate_counts(
    es: Elasticsearch, settings: Settings, lines_index: str
) -> None:
    store = es_store(settings)
    batch = [bol(0), bol(1)]
    for _ in range(3):
        assert [r.removed for r in clean_batch(store, batch)] == [0, 0]
    # another worker retrying the same batch
    assert [r.removed for r in clean_batch(es_store(settings), batch)] == [0, 0]
    expected = len(seed_paragraphs()) + len(STORIES[0][1]) + 2 * len(FOOTER)
    assert es.count(index=lines_index)["count"] == expected
    key = line_key(FOOTER[1]) or ""
    assert store.stats({BOL: [key]})[BOL][key].articles == 2


@pytest.mark.es
def test_es_and_memory_stores_give_the_same_results(settings: Settings, lines_index: str) -> None:
    # more articles than a line's sample holds, same-day ones, versions, another domain
    batches = [
        [bol(n % 6, doc_id=f"a{n}", day=DAY + timedelta(days=n // 2)) for n in range(12)],
        [replace(bol(n % 6, doc_id=f"b{n}"), title=f"Story {word(n)}") for n in range(12)],
        [replace(bol(0), domain="dawn.com", doc_id="c")],
        [bol(0, doc_id="d", day=DAY + timedelta(days=30)), bol(3, doc_id="e")],
    ]
    rules = replace(DEFAULT_RULES, max_removed_share=0.9)
    memory, elastic = MemoryLineStore(), es_store(settings)
    for batch in batches:
        assert clean_batch(elastic, batch, rules) == clean_batch(memory, batch, rules)


@pytest.mark.es
def test_es_store_refuses_to_work_without_its_index(settings: Settings) -> None:
    with pytest.raises(RuntimeError, match="newsmon es init"):
        clean_batch(es_store(settings), [bol(0)])
