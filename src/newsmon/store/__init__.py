"""Elasticsearch, and nothing else: the one package that imports the client or builds a request.

Rooms: :mod:`.client` (connection, retries, msearch/mget, dates), :mod:`.schema` (templates,
indices, aliases), :mod:`.bulk` (bulk writes), and one module per index: :mod:`.articles`,
:mod:`.feeds`, :mod:`.stories`, :mod:`.lines`, :mod:`.ledger` (alert ledger and state), and the
searches behind alert rules (:mod:`.alerting`).
"""

from .bulk import BulkReport, bulk_write
from .client import Client, IndexNames, connect
from .schema import ensure_indices, indices_ready, load_template, template_names

__all__ = [
    "BulkReport",
    "Client",
    "IndexNames",
    "bulk_write",
    "connect",
    "ensure_indices",
    "indices_ready",
    "load_template",
    "template_names",
]
