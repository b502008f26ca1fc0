"""Real pages of the shared news pages served as separate outlets, for events tests: each group
of pages is its own site on its own loopback address, with one feed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from newsmon.config import Settings
from newsmon.dev.demo import DemoPage, DemoSite
from newsmon.urls import canonical_url, url_id

PLAGUE = ("432362af", "ea25dd7e", "8b194530", "ba4dfe2d")  # NY Post, Smithsonian, Sun, Express
DOOBIE = ("35b15891", "9cb8224b", "ac1bfdd4")  # cleveland.com, Billboard, Rolling Stone
STADIA = ("680c2848", "8267acac")  # Digg's round-up of reviews, The Hollywood Reporter: launch
STADIA_GUIDE = "042bb7b5"  # WSJ: a guide to game services, Stadia among them: not the launch
HONG_KONG = "624fcd90"  # Express again, the next day: Hong Kong, not the plague
PALACE = ("52111884", "8cad00dc")  # one theatre's two posts on one show, three days apart


def pages_of(news_pages: Sequence[DemoPage], prefixes: Sequence[str]) -> list[DemoPage]:
    """The pages whose ids start with ``prefixes``, in that order."""
    found = {p.page_id[:8]: p for p in news_pages}
    return [found[p] for p in prefixes]


class Outlets:
    """Each group of pages served by its own loopback address (its own site), with a feed
    (written to ``settings.feeds_file``); :meth:`publish` adds pages to a site's feed later."""

    def __init__(self, settings: Settings, groups: Sequence[Sequence[DemoPage]]) -> None:
        self.sites: list[DemoSite] = []
        self.items: list[list[tuple[str, str, datetime]]] = []
        self.ids: dict[str, str] = {}  # page id prefix -> article id
        lines = ["feeds:"]
        for n, pages in enumerate(groups, start=2):
            site = DemoSite([], feed_count=0, host=f"127.0.0.{n}").start()
            self.sites.append(site)
            self.items.append([])
            self.publish(n - 2, pages)
            lines += [
                f"  - id: site-{n}",
                f"    name: Site {n}",
                f"    url: {site.feed_url('news')}",
            ]
        Path(settings.feeds_file).write_text("\n".join(lines) + "\n")

    def publish(self, site_number: int, pages: Sequence[DemoPage]) -> None:
        """Serve ``pages`` on site ``site_number`` (0 the first) and list them in its feed."""
        site, items = self.sites[site_number], self.items[site_number]
        for page in pages:
            url = site.add_page(page.path, page.html)
            self.ids[page.page_id[:8]] = url_id(canonical_url(url))
            items.append((url, page.title, datetime(2019, 11, 19, tzinfo=UTC)))
        site.set_feed("news", items)

    def stop(self) -> None:
        for site in self.sites:
            site.stop()
