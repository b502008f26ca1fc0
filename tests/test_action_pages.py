"""The pages an email's action link opens name the story by its title (plugin app, real node)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from newsmon.alerts.actions import Action
from newsmon.alerts.tokens import sign
from newsmon.config import Settings
from newsmon.store import IndexNames
from newsmon.store.stories import StoryMember, update_stories

from .helpers.alerts import article_doc, write_articles
from .helpers.plugin import SECRET, app_client, context

QUAKE = "alerts:\n  - id: quake\n    query: flood\n    recipients: [desk@example.org]\n"
FIRST = "ab" * 32  # story ids are 64 hex characters
SECOND = "cd" * 32
UNKNOWN = "ef" * 32


@pytest.mark.es
def test_a_mute_link_shows_the_story_title_with_a_short_id(
    es: Elasticsearch, settings: Settings, names: IndexNames, tmp_path: Path
) -> None:
    rules_file = tmp_path / "alerts.yaml"
    rules_file.write_text(QUAKE)
    client = app_client(lambda: context(settings, es, names, rules_file))
    write_articles(
        es,
        names,
        article_doc(1, "Floods <i>in</i> Swat", "Rivers rose in Swat.", story_id=FIRST),
        article_doc(2, "A first report", "Water in Kalam.", story_id=SECOND),
    )
    token = sign(Action("mute", "quake", story_id=FIRST), SECRET)

    confirm = client.get("/newsmon/act", params={"t": token})
    assert confirm.status_code == 200
    # the title, escaped; the id short (the whole one only on hover)
    assert "mute the story “Floods &lt;i&gt;in&lt;/i&gt; Swat”" in confirm.text
    assert f'title="{FIRST}">({FIRST[:12]})</span> for alert quake' in confirm.text
    assert confirm.text.count(FIRST) == 1
    assert "<i>in</i>" not in confirm.text

    done = client.post("/newsmon/act", params={"t": token})
    assert done.status_code == 200
    assert "Muted the story “Floods &lt;i&gt;in&lt;/i&gt; Swat”" in done.text
    assert done.text.count(FIRST) == 1
    used = client.get("/newsmon/act", params={"t": token})
    assert used.status_code == 409
    assert "used already (mute the story “Floods &lt;i&gt;in&lt;/i&gt; Swat”" in used.text

    # a story document's title is the one readers got; it wins over an article's
    indexed = datetime.now(UTC).isoformat()
    update_stories(
        es, names, [StoryMember("article-2", SECOND, "Swat floods", None, None, indexed)]
    )
    token = sign(Action("mute", "quake", story_id=SECOND), SECRET)
    assert "mute the story “Swat floods”" in client.get("/newsmon/act", params={"t": token}).text

    # a story found nowhere: its short id alone
    token = sign(Action("mute", "quake", story_id=UNKNOWN), SECRET)
    page = client.get("/newsmon/act", params={"t": token})
    assert page.status_code == 200
    assert f'mute story <span class="id" title="{UNKNOWN}">({UNKNOWN[:12]})</span>' in page.text
