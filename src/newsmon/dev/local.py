"""Where the local development node is, for the CLI, the DAG glue and the benches."""

from __future__ import annotations


def local_node_url() -> str | None:
    """The URL of the node ``newsmon es up`` runs, when it runs."""
    from .esnode import status

    try:
        return status().url
    except OSError:
        return None
