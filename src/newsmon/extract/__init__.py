"""Article extraction: raw HTML in, clean article text and metadata out (newsmon.extract.page).

Page extraction in worker processes with time and memory limits is newsmon.extract.isolate.
"""

from __future__ import annotations

from .decode import decode_html
from .page import ExtractedPage, extract_page

__all__ = ["ExtractedPage", "decode_html", "extract_page"]
