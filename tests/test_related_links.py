"""Related-link lines ("Read more: <headline>", "See also" lists, teaser cards) and long site
lines: learned per domain like repeated lines, never an article's sentence or opening."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from newsmon.text.boilerplate import (
    DEFAULT_RULES,
    ArticleText,
    MemoryLineStore,
    clean_batch,
    leadin_key,
)
from newsmon.text.leadins import heading_leadin, looks_like_headline, split_leadin

DAY = date(2024, 3, 1)
SITE = "wire.example"
HEADLINES = [
    "Rupee gains 45 paisa against the US dollar in interbank trading",
    "Heavy rain expected in Karachi from Thursday, says PMD",
    "Babar Azam moves up to second in ICC T20 batting rankings",
    "Punjab announces new polio vaccination drive in 12 districts",
    "Islamabad High Court reserves verdict in property case",
    "Home Depot Stock Is Falling After Its Earnings Release. Why You Shouldn't Worry.",
    "South Korea's roadmap to drive down solar costs",
    "Nadal keeps Spain alive against Russia in Davis Cup Finals",
]


_VOCABULARY = [
    *("river", "council", "budget", "school", "harvest", "market", "court", "station"),
    *("festival", "bridge", "hospital", "election", "factory", "museum", "airport"),
    *("library", "stadium", "village", "harbour", "mountain", "railway", "university"),
    *("theatre", "forest", "garden", "highway", "pipeline", "reservoir", "satellite"),
]


def body(n: int) -> list[str]:
    """Two paragraphs of article n: sentences of their own (distinct word runs), long enough
    to be content."""
    rng = random.Random(n)

    def sentence() -> str:
        words = [rng.choice(_VOCABULARY) for _ in range(18)]
        return f"The {' '.join(words)} report number {n}."

    return [f"{sentence()} {sentence()}", f"{sentence()} {sentence()}"]


def article(n: int, *extra: str, site: str = SITE, day: date | None = None) -> ArticleText:
    paragraphs = body(n)
    return ArticleText(
        f"{site}-{n}",
        site,
        f"Article number {'abcdefghij'[n % 10]}{'klmnopqrst'[n // 10]} of the site",
        "\n\n".join([paragraphs[0], *extra, paragraphs[1]]),
        day or DAY + timedelta(days=n),
    )


@pytest.mark.parametrize(
    ("line", "lead"),
    [
        ("Read more: Rupee gains against the dollar", "Read more"),
        ("READ MORE: Rupee gains against the dollar", "READ MORE"),
        ("Trending: Nadal keeps Spain alive", "Trending"),
        ("MORE: Republicans Are Following Trump to Nowhere", "MORE"),
        ("ALSO READ | New SUVs highlight L.A. Auto Show", "ALSO READ"),
        ("ALSO READ New SUVs highlight L.A. Auto Show", "ALSO READ"),
        ("Related: Heavy rain expected in Karachi", "Related"),
        ("- See also: Heavy rain expected in Karachi", "See also"),
        ("Recommended for you \u2014 Heavy rain expected in Karachi", "Recommended for you"),
        ("Don\u2019t miss: Heavy rain expected in Karachi", "Don't miss"),
    ],
)
def test_lead_ins_are_recognised(line: str, lead: str) -> None:
    split = split_leadin(line)
    assert split is not None
    assert split[0] == lead
    assert looks_like_headline(split[1])
    assert leadin_key(line) is not None


@pytest.mark.parametrize(
    "line",
    [
        "More than 200 people were evacuated from the area on Monday.",
        "Related to the case, the court asked for the auction record.",
        "Read the full statement on the ministry's website.",
        "Related: the minister said on Monday that talks would resume next week.",
        "More: officials say the inquiry will take months.",
        "Trending upwards, the rupee closed at 163.40.",
        "Watching the final, fans said the team had played its best match.",
        "Read more: Officials said the inquiry will take months and the report will follow.",
    ],
)
def test_sentences_of_an_article_are_not_related_links(line: str) -> None:
    assert leadin_key(line) is None


def test_headline_shapes() -> None:
    assert looks_like_headline("Chinese hunter catches bubonic plague after eating wild rabbit")
    assert looks_like_headline("Why You Shouldn't Worry About The Market.")  # title case
    assert looks_like_headline("https://wire.example/news/123")
    assert looks_like_headline(
        "\u5546\u54c1\u306e\u6539\u9020\u304c\u5546\u6a19\u6cd5\u9055\u53cd\u306b"
    )
    assert not looks_like_headline("the minister said talks would resume")  # lower case
    assert not looks_like_headline("The minister said talks would resume next week.")
    assert not looks_like_headline("Word")
    assert not looks_like_headline(" ".join(["Word"] * 30))
    assert heading_leadin("See also")
    assert heading_leadin("You may also like")
    assert heading_leadin("Recommended for you:")
    assert heading_leadin("DON'T MISS")
    assert not heading_leadin("See also the court's earlier ruling")
    assert not heading_leadin("Conclusion")


def test_a_lead_in_the_site_uses_goes_from_the_third_article_on() -> None:
    store = MemoryLineStore()
    for n in range(6):
        related = f"Read more: {HEADLINES[n]}"
        cleaned = clean_batch(store, [article(n, related)])[0]
        assert cleaned.text == "\n\n".join(body(n) if n >= 2 else [body(n)[0], related, body(n)[1]])


def test_a_lead_in_on_one_day_or_another_site_stays() -> None:
    store = MemoryLineStore()
    same_day = [article(n, f"Trending: {HEADLINES[n]}", day=DAY) for n in range(5)]
    assert [r.removed for r in clean_batch(store, same_day)] == [0] * 5
    for n in range(3):
        clean_batch(store, [article(n, f"Trending: {HEADLINES[n]}", site="daily.example")])
    other = clean_batch(store, [article(7, f"Trending: {HEADLINES[7]}", site="metro.example")])
    assert other[0].removed == 0


def test_a_sentence_after_a_learned_lead_in_stays() -> None:
    store = MemoryLineStore()
    clean_batch(store, [article(n, f"Related: {HEADLINES[n]}") for n in range(4)])
    sentence = "Related: the minister said on Monday that talks would resume next week."
    cleaned = clean_batch(store, [article(5, f"Related: {HEADLINES[5]}", sentence)])[0]
    assert cleaned.text == "\n\n".join([body(5)[0], sentence, body(5)[1]])


def test_a_link_list_under_a_repeated_heading_goes_with_it() -> None:
    store = MemoryLineStore()
    for n in range(5):
        listed = [f"- {HEADLINES[(n + k) % len(HEADLINES)]}" for k in (1, 2)]
        item = article(n)
        item = ArticleText(
            item.doc_id,
            item.domain,
            item.title,
            "\n\n".join([*body(n), "See also", *listed, "Comments are closed for this story."]),
            item.day,
        )
        cleaned = clean_batch(store, [item])[0]
        if n >= 2:
            # the closing line is short and repeated too
            assert cleaned.text == "\n\n".join(body(n))
    # a repeated heading followed by the article's own text stays ("Related" as a section)
    store = MemoryLineStore()
    for n in range(5):
        item = ArticleText(
            f"h{n}",
            SITE,
            f"Guide {'abcde'[n]}",
            "\n\n".join([body(n)[0], "Related", body(n)[1]]),
            DAY + timedelta(days=n),
        )
        assert clean_batch(store, [item])[0].removed == 0


def test_teaser_cards_after_a_repeated_heading_at_the_end_go() -> None:
    store = MemoryLineStore()
    for n in range(5):
        blurbs = [body((n + 1) % 5)[0][:150], body((n + 2) % 5)[0][:150]]
        item = article(n)
        text = "\n\n".join([*body(n), "You may also like", *blurbs])
        cleaned = clean_batch(store, [ArticleText(item.doc_id, SITE, item.title, text, item.day)])
        if n >= 2:
            assert cleaned[0].text == "\n\n".join(body(n))


def test_a_newsletter_s_recurring_opening_stays() -> None:
    store = MemoryLineStore()
    for n in range(6):
        opening = ["Hey there! \U0001f44b", "Skander here."]
        item = ArticleText(
            f"nl-{n}",
            "newsletter.example",
            f"Issue {'abcdef'[n]}",
            "\n\n".join([*opening, *body(n), "Until next week,", "Skander"]),
            DAY + timedelta(days=7 * n),
        )
        cleaned = clean_batch(store, [item])[0]
        assert cleaned.text.startswith("Hey there! \U0001f44b\n\nSkander here.\n\n")
    # the same short sentence after the article's first paragraph is a credit line: it goes
    store = MemoryLineStore()
    results = [
        clean_batch(store, [article(n, "The Associated Press contributed to this report.")])[0]
        for n in range(4)
    ]
    assert [r.removed for r in results] == [0, 0, 1, 1]


def test_related_link_lines_are_not_held_back_by_the_removal_cap() -> None:
    """A short article's repeated lines may not take more than half of it, but its
    related-link lines are template one by one."""
    store = MemoryLineStore()
    footer = [
        "Sign up for our morning briefing and get the news in your inbox.",
        "Follow us on Twitter and Facebook for the latest updates.",
        "Send your tips and photos to our newsroom by email.",
    ]
    for n in range(5):
        own = body(n)[0][:80]
        item = ArticleText(
            f"s{n}",
            SITE,
            f"Short {'abcde'[n]}",
            "\n\n".join([own, f"Read more: {HEADLINES[n]}", *footer]),
            DAY + timedelta(days=n),
        )
        blocks = item.text.split("\n\n")
        assert sum(map(len, footer)) > DEFAULT_RULES.max_removed_share * sum(map(len, blocks))
        cleaned = clean_batch(store, [item])[0]
        assert cleaned.text == "\n\n".join(
            [own, *footer] if n >= 2 else [own, f"Read more: {HEADLINES[n]}", *footer]
        )


def test_an_article_keeps_its_first_paragraph_that_other_pages_show_as_a_teaser() -> None:
    """The site's teaser cards show other articles' first paragraphs: in those articles it is
    their own text, shown once."""
    store = MemoryLineStore()
    firsts = [body(n)[0].split(". ")[0] + "." for n in range(8)]  # one sentence each
    assert all(len(f) <= DEFAULT_RULES.max_line_chars * 2 for f in firsts)
    for n in range(8):
        cards = [firsts[(n + k) % 8] for k in (1, 2, 3)]
        item = ArticleText(
            f"t{n}",
            SITE,
            f"Teased {'abcdefgh'[n]}",
            "\n\n".join([firsts[n], body(n)[1], "You may also like", *cards]),
            DAY + timedelta(days=n),
        )
        cleaned = clean_batch(store, [item])[0]
        assert cleaned.text.startswith(firsts[n] + "\n\n" + body(n)[1])
        if n >= 2:
            assert cleaned.text == "\n\n".join([firsts[n], body(n)[1]])
