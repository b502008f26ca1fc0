"""Kibana saved objects: the committed files, the checker, and the import over real HTTP.

Kibana itself cannot run here. The objects are checked against the index templates and their
queries against the real Elasticsearch node; the import talks to a loopback HTTP server that
answers like Kibana's status and import APIs and records every request.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from elasticsearch import Elasticsearch

from newsmon import kibana
from newsmon.alerts import load_rules, rule_query
from newsmon.cli import main
from newsmon.config import ConfigError
from newsmon.kibana import (
    KibanaError,
    KibanaSettings,
    SavedObject,
    check_objects,
    import_objects,
    load_objects,
    wait_until_available,
    with_prefix,
)
from newsmon.store import IndexNames
from newsmon.store.articles import match_fields

from .helpers.paths import REPO

CONFIG = REPO / "config"
KIBANA_DIR = CONFIG / "kibana"
RULES = load_rules(CONFIG / "alerts.yaml")


def committed() -> list[SavedObject]:
    return load_objects(kibana.object_files(CONFIG))


def by_id(objects: list[SavedObject], id_: str) -> SavedObject:
    (found,) = [o for o in objects if o.id == id_]
    return found


def messages(objects: list[SavedObject], prefix: str = kibana.DEFAULT_PREFIX) -> list[str]:
    return [str(p) for p in check_objects(objects, CONFIG, prefix)]


# --- the committed files ------------------------------------------------------------------------


def test_committed_files_are_ndjson_of_supported_objects_with_unique_ids() -> None:
    files = sorted(p.name for p in KIBANA_DIR.glob("*.ndjson"))
    assert files == ["alerts.ndjson", "newsmon.ndjson"]
    objects = committed()
    for path in KIBANA_DIR.glob("*.ndjson"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            body = json.loads(line)
            assert set(body) >= {"id", "type", "attributes", "references"}, (path, number)
    kinds = {(o.type, o.id) for o in objects}
    assert len(kinds) == len(objects)
    assert {o.type for o in objects} == {"index-pattern", "search", "lens", "dashboard"}
    views = {o.attributes["title"]: o for o in objects if o.type == "index-pattern"}
    assert views["newsmon-articles"].attributes["timeFieldName"] in ("published_at", "indexed_at")
    assert {"newsmon-stories", "newsmon-feeds", "newsmon-alert-ledger"} <= set(views)


def test_committed_objects_pass_every_check() -> None:
    assert messages(committed()) == []


def test_generator_output_equals_the_committed_files() -> None:
    for name, text in kibana.export_files(RULES).items():
        assert (KIBANA_DIR / name).read_text(encoding="utf-8") == text, (
            f"config/kibana/{name} is stale: run `newsmon kibana export`"
        )


def test_export_check_reports_a_stale_file_and_export_rewrites_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "kibana"
    assert main(["kibana", "export", "--dir", str(out)]) == 0
    assert main(["kibana", "export", "--dir", str(out), "--check"]) == 0
    rules = tmp_path / "alerts.yaml"
    text = (CONFIG / "alerts.yaml").read_text(encoding="utf-8")
    rules.write_text(text.replace("Afghanistan OR Afghan", "Afghanistan OR Kandahar"))
    capsys.readouterr()
    assert main(["kibana", "export", "--dir", str(out), "--rules", str(rules), "--check"]) == 1
    assert "alerts.ndjson: out of date" in capsys.readouterr().out
    assert main(["kibana", "export", "--dir", str(out), "--rules", str(rules)]) == 0
    search = by_id(load_objects([out / "alerts.ndjson"]), "newsmon-rule-afghanistan-daily")
    assert "kandahar" in search.attributes["kibanaSavedObjectMeta"]["searchSourceJSON"]


def test_every_alert_rule_has_a_saved_search_with_its_query_and_filters() -> None:
    objects = committed()
    assert len(RULES.rules) >= 2
    for rule in RULES.rules:
        search = by_id(objects, f"newsmon-rule-{rule.id}")
        source = json.loads(search.attributes["kibanaSavedObjectMeta"]["searchSourceJSON"])
        assert source["query"] == {"query": rule.search.query, "language": "lucene"}
        pills = {f["meta"]["key"]: f["meta"]["params"] for f in source["filter"]}
        wanted = {k: v for c in rule.filters.clauses() for k, v in c["terms"].items()}
        assert pills == wanted
        assert rule.name in search.attributes["title"]
    assert by_id(objects, "newsmon-rule-pak-us-defence")  # the shipped rule with a filter


def test_the_url_fields_render_as_links_and_the_dashboard_has_every_panel() -> None:
    objects = committed()
    articles = by_id(objects, "newsmon-articles")
    formats = json.loads(articles.attributes["fieldFormatMap"])
    assert formats["url"]["id"] == "url" and formats["url"]["params"]["type"] == "a"
    dashboard = by_id(objects, "newsmon-overview")
    panels = json.loads(dashboard.attributes["panelsJSON"])
    targets = {r["name"]: by_id(objects, r["id"]) for r in dashboard.references}
    titles = {targets[f"{p['panelIndex']}:{p['panelRefName']}"].attributes["title"] for p in panels}
    assert titles == {
        "Articles over time by outlet",
        "Top domains",
        "Languages",
        "Alert hits by rule",
        "Stories with most outlets",
        "Feed errors",
        "Latest articles",
    }


# --- the checker can fail -----------------------------------------------------------------------


def _attr_json(obj: SavedObject, path: list[str], change: Callable[[Any], Any]) -> None:
    holder = obj.body["attributes"]
    for key in path[:-1]:
        holder = holder[key]
    value = json.loads(holder[path[-1]])
    holder[path[-1]] = json.dumps(change(value) or value)


def _search_source(change: Callable[[dict[str, Any]], Any]) -> Callable[[SavedObject], None]:
    return lambda o: _attr_json(o, ["kibanaSavedObjectMeta", "searchSourceJSON"], change)


def _lens_column(column: str, **changes: Any) -> Callable[[SavedObject], None]:
    def change(obj: SavedObject) -> None:
        layers = obj.body["attributes"]["state"]["datasourceStates"]["formBased"]["layers"]
        next(iter(layers.values()))["columns"][column].update(changes)

    return change


BROKEN: dict[str, tuple[str, Callable[[SavedObject], None], str]] = {
    "missing reference": (
        "newsmon-latest-articles",
        lambda o: o.body["references"][0].update(id="newsmon-nope"),
        "points to index-pattern 'newsmon-nope', which is not among the saved objects",
    ),
    "reference of the wrong type": (
        "newsmon-lens-languages",
        lambda o: o.body["references"][0].update(type="search"),
        "must be a index-pattern, not search",
    ),
    "unknown column": (
        "newsmon-latest-articles",
        lambda o: o.body["attributes"]["columns"].append("headline"),
        "field 'headline' is not in index template 'articles'",
    ),
    "sort on a text field": (
        "newsmon-latest-articles",
        lambda o: o.body["attributes"].update(sort=[["title", "desc"]]),
        "field 'title' is a text field without doc values, so it cannot be aggregated or sorted",
    ),
    "sort on a field without doc values": (
        "newsmon-alert-hits",
        lambda o: o.body["attributes"].update(sort=[["url", "asc"]]),
        "field 'url' is a keyword field without doc values",
    ),
    "query on an unknown field": (
        "newsmon-feed-errors",
        _search_source(lambda s: s["query"].update(query="NOT outcome:fetched")),
        "field 'outcome' is not in index template 'feeds'",
    ),
    "query on a field that is not indexed": (
        "newsmon-feed-errors",
        _search_source(lambda s: s["query"].update(query='etag:"abc"')),
        "field 'etag' is not indexed, so it cannot be searched",
    ),
    "filter on an unknown field": (
        "newsmon-rule-pak-us-defence",
        _search_source(lambda s: s["filter"][0]["meta"].update(key="lang")),
        "field 'lang' is not in index template 'articles'",
    ),
    "filter query on an unknown field": (
        "newsmon-rule-pak-us-defence",
        _search_source(lambda s: s["filter"][0].update(query={"match_phrase": {"lang": "en"}})),
        "field 'lang' is not in index template 'articles'",
    ),
    "search source that is not JSON": (
        "newsmon-latest-articles",
        lambda o: o.body["attributes"]["kibanaSavedObjectMeta"].update(searchSourceJSON="{"),
        "invalid JSON",
    ),
    "terms on a text field": (
        "newsmon-lens-top-domains",
        _lens_column("domain", sourceField="text"),
        "field 'text' is a text field without doc values",
    ),
    "date histogram on a keyword": (
        "newsmon-lens-articles-by-outlet",
        _lens_column("when", sourceField="domain"),
        "field 'domain' is a keyword field, not a date",
    ),
    "lens column on an unknown field": (
        "newsmon-lens-alert-hits",
        _lens_column("rule", sourceField="rule"),
        "field 'rule' is not in index template 'alert-ledger'",
    ),
    "chart using a missing column": (
        "newsmon-lens-languages",
        lambda o: o.body["attributes"]["state"]["visualization"]["layers"][0].update(
            metrics=["sum"]
        ),
        "the chart uses column 'sum', which no layer has",
    ),
    "lens query on an unknown field": (
        "newsmon-lens-alert-hits",
        lambda o: o.body["attributes"]["state"]["query"].update(query="type:story"),
        "field 'type' is not in index template 'alert-ledger'",
    ),
    "time field that is not a date": (
        "newsmon-stories",
        lambda o: o.body["attributes"].update(timeFieldName="outlet_count"),
        "field 'outlet_count' is a integer field, not a date",
    ),
    "link format on an unknown field": (
        "newsmon-articles",
        lambda o: _attr_json(o, ["fieldFormatMap"], lambda f: f.update(link=f["url"])),
        "field 'link' is not in index template 'articles'",
    ),
    "data view on an index newsmon does not make": (
        "newsmon-feeds",
        lambda o: o.body["attributes"].update(title="logs-*"),
        "index pattern 'logs-*' is not newsmon-<name> of an index template",
    ),
    "dashboard panel without its reference": (
        "newsmon-overview",
        lambda o: o.body["references"].pop(),
        "no reference named 'p7:panel_p7'",
    ),
    "dashboard panel off the grid": (
        "newsmon-overview",
        lambda o: _attr_json(o, ["panelsJSON"], lambda ps: ps[0]["gridData"].update(x=10)),
        "wider than the 48-column grid",
    ),
    "sum of a keyword": (
        "newsmon-lens-top-domains",
        _lens_column("stories", operationType="sum"),
        "field 'story_id' is a keyword field, not a number",
    ),
    "unknown lens operation": (
        "newsmon-lens-top-domains",
        _lens_column("stories", operationType="cardinality"),
        "operation 'cardinality' is not one newsmon checks",
    ),
    "column order missing a column": (
        "newsmon-lens-languages",
        lambda o: next(
            iter(o.body["attributes"]["state"]["datasourceStates"]["formBased"]["layers"].values())
        )["columnOrder"].pop(),
        "columnOrder must list each column once",
    ),
    "reference without an id": (
        "newsmon-overview",
        lambda o: o.body["references"][0].pop("id"),
        "needs non-empty strings name, type and id",
    ),
    "object without a title": (
        "newsmon-alert-hits",
        lambda o: o.body["attributes"].pop("title"),
        "needs a title",
    ),
    "unsupported type": (
        "newsmon-latest-articles",
        lambda o: o.body.update(type="visualisation"),
        "type must be one of",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_the_checker_finds_each_kind_of_broken_object(case: str) -> None:
    target, breaker, expected = BROKEN[case]
    objects = [SavedObject(copy.deepcopy(o.body), o.source, o.line) for o in committed()]
    broken = by_id(objects, target)
    breaker(broken)
    found = messages(objects)
    assert any(expected in m for m in found), found
    hit = next(m for m in found if expected in m)
    assert f"{broken.source}:{broken.line}: " in hit  # names the file and line
    assert repr(target) in hit  # and the object


def test_duplicate_ids_and_bad_lines_are_reported_with_their_line(tmp_path: Path) -> None:
    objects = committed()
    assert any("appear twice" in m for m in messages([*objects, objects[0]]))
    bad = tmp_path / "bad.ndjson"
    bad.write_text(json.dumps(objects[0].body) + "\n[1]\n")
    with pytest.raises(ConfigError, match=r"bad.ndjson:2: each line must be one JSON object"):
        load_objects([bad])
    bad.write_text('{"id": \n')
    with pytest.raises(ConfigError, match=r"bad.ndjson:1: invalid JSON"):
        load_objects([bad])


def test_query_fields_ignores_quoted_and_escaped_text() -> None:
    assert kibana.query_fields('kind:story AND "not:a field" AND title\\:x') == {"kind"}
    assert kibana.query_fields("NOT a.b:(x OR y) AND -c:z AND _exists_:d AND n >= 3") == {
        "a.b",
        "c",
        "d",
        "n",
    }
    assert kibana.query_fields(RULES.get("pak-us-defence").query) == set()


def test_a_prefix_renames_index_patterns_and_ids_and_everything_still_resolves() -> None:
    objects = committed()
    renamed = with_prefix(objects, "acme-")
    assert messages(renamed, "acme-") == []
    assert messages(renamed) != []  # their index patterns are not newsmon-… any more
    assert all(not o.id.startswith("newsmon-") for o in renamed)
    assert all(not r["id"].startswith("newsmon-") for o in renamed for r in o.references)
    views = {o.attributes["title"] for o in renamed if o.type == "index-pattern"}
    assert views == {
        "acme-articles",
        "acme-stories",
        "acme-events",
        "acme-feeds",
        "acme-alert-ledger",
    }
    assert by_id(renamed, "acme-overview").attributes["title"] == "newsmon overview (acme-)"
    assert by_id(objects, "newsmon-overview").attributes["title"] == "newsmon overview"
    assert with_prefix(objects, kibana.DEFAULT_PREFIX) == objects


# --- queries against the real node --------------------------------------------------------------


def _view_index(objects: list[SavedObject], obj: SavedObject, names: IndexNames) -> str:
    ref = next(r for r in obj.references if r["type"] == "index-pattern")
    view = by_id(objects, ref["id"])
    return names.index(view.attributes["title"].removeprefix(kibana.DEFAULT_PREFIX))


def es_query_problems(
    es: Elasticsearch, names: IndexNames, objects: list[SavedObject]
) -> list[str]:
    """Every saved search and chart query Elasticsearch refuses or reads with unknown fields."""
    problems = []
    for obj in objects:
        if obj.type == "search":
            query = kibana.search_query(obj)
        elif obj.type == "lens" and obj.attributes["state"]["query"]["query"]:
            text = obj.attributes["state"]["query"]["query"]
            query = {"query_string": {"query": text, "analyze_wildcard": True}}
        else:
            continue
        body = es.indices.validate_query(
            index=_view_index(objects, obj, names), query=query, explain=True
        ).body
        explanation = str((body.get("explanations") or [{}])[0].get("explanation", ""))
        if not body.get("valid"):
            problems.append(f"{obj.label}: {body}")
        elif "unmapped fields" in explanation:
            problems.append(f"{obj.label}: {explanation}")
    return problems


@pytest.mark.es
def test_every_saved_query_is_valid_on_an_index_made_from_its_template(
    es: Elasticsearch, names: IndexNames
) -> None:
    objects = committed()
    assert len([o for o in objects if o.type == "search"]) == 5 + len(RULES.rules)
    assert es_query_problems(es, names, objects) == []
    broken = [SavedObject(copy.deepcopy(o.body), o.source, o.line) for o in objects]
    _search_source(lambda s: s["query"].update(query="(Pakistan AND"))(
        by_id(broken, "newsmon-rule-pak-us-defence")
    )
    _search_source(lambda s: s["query"].update(query="headline:Pakistan"))(
        by_id(broken, "newsmon-latest-articles")
    )
    found = es_query_problems(es, names, broken)
    assert len(found) == 2
    assert found[0].startswith("search 'newsmon-rule-pak-us-defence'")  # alerts.ndjson first
    assert "Cannot parse" in found[0]
    assert found[1].startswith("search 'newsmon-latest-articles'")
    assert "unmapped fields [headline]" in found[1]


@pytest.mark.es
def test_an_alert_search_finds_exactly_what_its_rule_finds(
    es: Elasticsearch, names: IndexNames
) -> None:
    docs = {
        "army-pentagon": ("en", "Pakistan army chief meets Pentagon officials"),
        "army-pentagon-urdu": ("ur", "Pakistan army chief meets Pentagon officials"),
        "cricket": ("en", "Pakistan army XI beat Pentagon side at cricket"),
        "weather": ("en", "Rain expected in Islamabad"),
        "kabul": ("en", "Taliban talks in Kabul"),
    }
    for doc_id, (language, title) in docs.items():
        es.index(
            index=names.articles,
            id=doc_id,
            document={
                "title": title,
                "text": title,
                "language": language,
                "domain": "x.test",
                **match_fields({"title": title, "text": title}),
            },
        )
    es.indices.refresh(index=names.articles)
    objects = committed()
    found_by: dict[str, set[str]] = {}
    for rule in RULES.rules:
        search = by_id(objects, f"newsmon-rule-{rule.id}")
        hits = es.search(index=names.articles, query=kibana.search_query(search), size=50)
        wanted = es.search(index=names.articles, query=rule_query(rule), size=50)
        found_by[rule.id] = {h["_id"] for h in hits["hits"]["hits"]}
        assert found_by[rule.id] == {h["_id"] for h in wanted["hits"]["hits"]}
    assert found_by == {"pak-us-defence": {"army-pentagon"}, "afghanistan-daily": {"kabul"}}


# --- import over HTTP ---------------------------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeKibana:
    """Answers each path from a script (the last answer repeats) and records the requests."""

    script: dict[str, list[tuple[int, Any]]]
    requests: list[Recorded] = field(default_factory=list)
    url: str = ""

    def answer(self, path: str) -> tuple[int, Any]:
        answers = self.script.get(path) or [(404, {"message": "not found"})]
        return answers.pop(0) if len(answers) > 1 else answers[0]


STATUS_OK = (200, {"version": {"number": "9.2.0"}, "status": {"overall": {"level": "available"}}})
STATUS_STARTING = (503, {"status": {"overall": {"level": "unavailable"}}})


def import_ok(objects: list[SavedObject]) -> tuple[int, Any]:
    results = [{"type": o.type, "id": o.id, "overwrite": True} for o in objects]
    return 200, {"success": True, "successCount": len(results), "successResults": results}


@contextmanager
def fake_kibana(script: dict[str, list[tuple[int, Any]]]) -> Iterator[FakeKibana]:
    fake = FakeKibana(script)

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            fake.requests.append(
                Recorded(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
            )
            status, body = fake.answer(parts.path)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _handle

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def uploaded(request: Recorded) -> tuple[str | None, list[dict[str, Any]]]:
    """The file name and the objects of a multipart import request."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + request.body)
    assert message.is_multipart()
    (part,) = message.iter_parts()
    assert part.get_param("name", header="content-disposition") == "file"
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    lines = payload.decode().splitlines()
    return part.get_filename(), [json.loads(line) for line in lines]


def fast(url: str, **changes: Any) -> KibanaSettings:
    return KibanaSettings(url=url, poll_interval=0.01, request_timeout=5, **changes)


def test_import_sends_every_object_as_multipart_with_overwrite_xsrf_and_basic_auth() -> None:
    objects = committed()
    with fake_kibana(
        {"/api/status": [STATUS_OK], "/api/saved_objects/_import": [import_ok(objects)]}
    ) as fake:
        target = fast(fake.url, username="elastic", password="s3cret")
        assert wait_until_available(target) == "9.2.0"
        report = import_objects(target, objects)
    assert report.errors == []
    assert sum(report.imported.values()) == len(objects)
    assert report.imported["search"] == 5 + len(RULES.rules)
    status, post = fake.requests
    assert (status.method, status.path) == ("GET", "/api/status")
    assert (post.method, post.path, post.query) == (
        "POST",
        "/api/saved_objects/_import",
        {"overwrite": ["true"]},
    )
    assert post.headers["kbn-xsrf"]
    assert post.headers["authorization"] == "Basic " + base64.b64encode(b"elastic:s3cret").decode()
    assert post.headers["content-type"].startswith("multipart/form-data; boundary=")
    name, sent = uploaded(post)
    assert name is not None and name.endswith(".ndjson")
    assert sent == [o.body for o in objects]
    assert report.render(target) == (
        f"imported {len(objects)} saved object(s) into {fake.url} (space default): "
        f"1 dashboard, 6 index-pattern, 4 lens, {5 + len(RULES.rules)} search"
    )


def test_import_into_a_space_with_an_api_key() -> None:
    objects = committed()[:2]
    answer = import_ok(objects)
    new_id = "0f6c6c9e-6b1d-4c1e-9d7c-000000000001"
    answer[1]["successResults"][1]["destinationId"] = new_id
    with fake_kibana({"/s/news-desk/api/saved_objects/_import": [answer]}) as fake:
        report = import_objects(
            fast(fake.url, api_key="a2V5OnNlY3JldA==", space="news-desk"), objects
        )
    assert report.errors == [] and sum(report.imported.values()) == 2
    assert report.new_ids == [f"{objects[1].type} {objects[1].id!r} is {new_id!r} in this space"]
    (post,) = fake.requests
    assert post.path == "/s/news-desk/api/saved_objects/_import"
    assert post.headers["authorization"] == "ApiKey a2V5OnNlY3JldA=="


def test_per_object_errors_in_a_200_answer_are_reported_by_name() -> None:
    objects = committed()
    answer = {
        "success": False,
        "successCount": 1,
        "successResults": [{"type": "index-pattern", "id": "newsmon-articles"}],
        "errors": [
            {
                "id": "newsmon-overview",
                "type": "dashboard",
                "meta": {"title": "newsmon overview"},
                "error": {
                    "type": "missing_references",
                    "references": [{"type": "lens", "id": "newsmon-lens-languages"}],
                },
            },
            {
                "id": "newsmon-latest-articles",
                "type": "search",
                "title": "Latest articles",
                "error": {"type": "unknown", "message": "boom", "statusCode": 500},
            },
        ],
    }
    with fake_kibana({"/api/saved_objects/_import": [(200, answer)]}) as fake:
        report = import_objects(fast(fake.url), objects)
    assert report.imported == {"index-pattern": 1}
    assert report.errors == [
        "dashboard 'newsmon-overview' (newsmon overview): missing_references: "
        "missing lens 'newsmon-lens-languages'",
        "search 'newsmon-latest-articles' (Latest articles): unknown: boom",
    ]


def test_waits_while_kibana_starts_and_retries_an_import_answered_503() -> None:
    objects = committed()
    said: list[str] = []
    with fake_kibana(
        {
            "/api/status": [STATUS_STARTING, STATUS_STARTING, STATUS_OK],
            "/api/saved_objects/_import": [
                (503, {"message": "Kibana server is not ready yet"}),
                import_ok(objects),
            ],
        }
    ) as fake:
        target = fast(fake.url, wait=30)
        wait_until_available(target, progress=said.append)
        report = import_objects(target, objects, progress=said.append)
    assert [r.path for r in fake.requests] == ["/api/status"] * 3 + [
        "/api/saved_objects/_import"
    ] * 2
    assert report.errors == [] and sum(report.imported.values()) == len(objects)
    assert said[0].startswith(f"waiting for Kibana at {fake.url}: unavailable (HTTP 503)")
    assert any("Kibana server is not ready yet" in m for m in said)


def test_gives_up_after_the_wait_and_stops_at_refused_credentials() -> None:
    with fake_kibana({"/api/status": [STATUS_STARTING]}) as fake:
        with pytest.raises(KibanaError, match=r"not available after \d+s: unavailable"):
            wait_until_available(fast(fake.url, wait=0.2))
        assert len(fake.requests) > 1
    denied = (401, {"statusCode": 401, "message": "[security_exception] unable to authenticate"})
    with fake_kibana({"/api/status": [denied]}) as fake:
        with pytest.raises(KibanaError, match=r"refused the request \(401 .*check the username"):
            wait_until_available(fast(fake.url, username="elastic", password="wrong", wait=30))
        assert len(fake.requests) == 1
    refusal = {"/api/saved_objects/_import": [(400, {"message": "bad file"})]}
    with (
        fake_kibana(refusal) as fake,
        pytest.raises(KibanaError, match=r"refused the import \(400\): bad file"),
    ):
        import_objects(fast(fake.url), committed())


def test_settings_refuse_mixed_or_partial_credentials() -> None:
    with pytest.raises(ConfigError, match="needs a password"):
        KibanaSettings(username="elastic")
    with pytest.raises(ConfigError, match="either a username and password or an API key"):
        KibanaSettings(username="elastic", password="x", api_key="k")
    with pytest.raises(ConfigError, match="space id"):
        KibanaSettings(space="News Desk")
    env = {
        "NEWSMON_KIBANA_URL": "http://kibana.test:5601/",
        "NEWSMON_KIBANA_API_KEY": "k",
        "NEWSMON_KIBANA_SPACE": "ops",
    }
    from_env = KibanaSettings.from_env(env)
    assert (from_env.url, from_env.api_key, from_env.space) == (
        "http://kibana.test:5601",
        "k",
        "ops",
    )
    given = KibanaSettings.from_env(env, username="elastic", password="pw")
    assert (given.username, given.api_key) == ("elastic", None)  # the command line wins


def test_cli_import_applies_the_prefix_and_exits_1_on_refused_objects(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NEWSMON_INDEX_PREFIX", "acme-")
    refused = {
        "success": False,
        "successResults": [],
        "errors": [{"id": "acme-overview", "type": "dashboard", "error": {"type": "conflict"}}],
    }
    with fake_kibana(
        {"/api/status": [STATUS_OK], "/api/saved_objects/_import": [import_ok([]), (200, refused)]}
    ) as fake:
        args = ["kibana", "import", "--url", fake.url, "--username", "elastic", "--password", "pw"]
        assert main(args) == 0
        assert main(args) == 1
    _, sent = uploaded(fake.requests[1])
    assert {o["attributes"]["title"] for o in sent if o["type"] == "index-pattern"} == {
        "acme-articles",
        "acme-stories",
        "acme-events",
        "acme-feeds",
        "acme-alert-ledger",
    }
    assert all(o["id"].startswith("acme-") for o in sent)
    assert "Kibana refused dashboard 'acme-overview': conflict" in capsys.readouterr().err


def test_cli_import_reports_an_unreachable_kibana(capsys: pytest.CaptureFixture[str]) -> None:
    with fake_kibana({}) as fake:
        url = fake.url  # the port is closed once the server is gone
    assert main(["kibana", "import", "--url", url, "--wait", "0.3"]) == 3
    err = capsys.readouterr().err
    assert f"waiting for Kibana at {url}: not reachable (ConnectionError)" in err
    assert f"Kibana at {url} is not available after" in err


def test_cli_import_checks_the_objects_before_sending_and_warns_about_stale_searches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config"
    (config / "kibana").mkdir(parents=True)
    (config / "elasticsearch").symlink_to(CONFIG / "elasticsearch")
    for path in KIBANA_DIR.glob("*.ndjson"):
        (config / "kibana" / path.name).write_text(path.read_text(encoding="utf-8"))
    rules = tmp_path / "alerts.yaml"
    rules.write_text((CONFIG / "alerts.yaml").read_text(encoding="utf-8").replace("Kabul", "Herat"))
    monkeypatch.setenv("NEWSMON_CONFIG_DIR", str(config))
    with fake_kibana(
        {"/api/status": [STATUS_OK], "/api/saved_objects/_import": [import_ok([])]}
    ) as fake:
        args = ["kibana", "import", "--url", fake.url, "--rules", str(rules)]
        assert main(args) == 0
        assert "alerts.ndjson does not match the alert rules" in capsys.readouterr().err
        base = config / "kibana" / "newsmon.ndjson"
        base.write_text(base.read_text(encoding="utf-8").replace('"story_id"', '"storyid"', 1))
        assert main(args) == 2
        err = capsys.readouterr().err
        lines = base.read_text(encoding="utf-8").splitlines()
        line = next(n for n, text in enumerate(lines, 1) if '"storyid"' in text)
        assert f"{base}:{line}: search 'newsmon-latest-articles'" in err
        assert "field 'storyid' is not in index template 'articles'" in err
        assert len(fake.requests) == 2  # the broken set was never sent
