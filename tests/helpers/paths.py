"""Where the repository, the shared data and the committed fixtures are."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("NEWSMON_SHARED", REPO.parent / "shared"))
NEWS_PAGES = SHARED / "data" / "news-pages"
WCXB = SHARED / "data" / "wcxb-articles"
SEED = SHARED / "data" / "seed"
FIXTURES = REPO / "tests" / "fixtures"
