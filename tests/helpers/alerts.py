"""Alert tests on the real node: rules from YAML text, articles written directly, the ledger."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch

from newsmon.alerts import RuleSet, parse_rules
from newsmon.store import IndexNames, bulk_write
from newsmon.store.articles import match_fields

BulkDoc = tuple[str, str, dict[str, Any]]  # (op, id, source) as bulk_write takes them


def rules_from(text: str) -> RuleSet:
    """The rules of an ``alerts.yaml`` with this text."""
    return parse_rules(text, "alerts.yaml")


def ledger_docs(es: Elasticsearch, names: IndexNames, **term: str) -> list[dict[str, Any]]:
    """The alert ledger's documents (with their ``_id``) whose fields equal ``term``."""
    index = names.index("alert-ledger")
    es.indices.refresh(index=index)
    filters = [{"term": {k: v}} for k, v in term.items()]
    hits = es.search(index=index, query={"bool": {"filter": filters}}, size=1000)["hits"]["hits"]
    return [{"_id": h["_id"], **h["_source"]} for h in hits]


def article_doc(n: int, title: str, text: str, **fields: Any) -> BulkDoc:
    """Article ``n``, published and indexed now, on its own outlet unless ``domain`` is given;
    ``fields`` add to or replace its fields (None drops one)."""
    now = datetime.now(UTC).isoformat()
    domain = fields.pop("domain", f"outlet{n}.example")
    doc = {
        "url": f"https://{domain}/news/{n}",
        "canonical_url": f"https://{domain}/news/{n}",
        "domain": domain,
        "site_name": domain,
        "title": title,
        "text": text,
        "published_at": now,
        "indexed_at": now,
        "language": "en",
        "feed_id": "wire",
        "tags": ["test"],
        "extraction": "full",
        **fields,
    }
    source = {k: v for k, v in doc.items() if v is not None}
    return ("create", f"article-{n}", {**source, **match_fields(source)})


def write_articles(es: Elasticsearch, names: IndexNames, *docs: BulkDoc) -> None:
    """Write the articles, searchable at once; every one must succeed."""
    report = bulk_write(es, names.articles, docs, refresh=True)
    assert not report.failed and len(report.ok) == len(docs)
