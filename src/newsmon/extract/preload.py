"""Imported once by the fork server that starts extraction workers (newsmon.isolate).

Importing newsmon.extract and extracting one small page there fills trafilatura's lazy caches
(justext's stop lists, the list of top-level domains), so every worker forked from the server
starts with them instead of paying for them on its first page.
"""

from __future__ import annotations

import logging

from .page import extract_page

_PAGE = (
    b"<html lang='en'><head><title>newsmon</title></head><body><article><h1>newsmon</h1>"
    b"<p>A short paragraph.</p></article></body></html>"
)

try:
    extract_page(_PAGE, "https://www.example.com/news/warm-up")
except Exception:  # a cold cache costs time, never the workers
    logging.getLogger(__name__).debug("warm-up extraction failed", exc_info=True)
