"""newsmon: follow news feeds, keep clean article text in Elasticsearch, alert on what matters."""

from __future__ import annotations

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
