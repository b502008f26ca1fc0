"""The ``newsmon`` command."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gzip
import json
import logging
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import ConfigError, Settings, load_feeds
from .dev.local import local_node_url

if TYPE_CHECKING:
    from .extract.isolate import Extractor

__all__ = ["main"]


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env(local_node=local_node_url)
    if getattr(args, "feeds", None):
        settings = _replace(settings, feeds_file=args.feeds)
    return settings


def _replace(settings: Settings, **changes: Any) -> Settings:
    from dataclasses import replace

    return replace(settings, **changes)


# --- es ------------------------------------------------------------------------------------------


def cmd_es(args: argparse.Namespace) -> int:
    from .dev import esnode

    if args.action == "up":
        url = esnode.up(progress=_err)
        print(url)
        return 0
    if args.action == "down":
        _err("stopped" if esnode.down(progress=_err) else "not running")
        return 0
    if args.action == "status":
        st = esnode.status()
        print(
            json.dumps(
                {
                    "running": st.running,
                    "url": st.url,
                    "pid": st.pid,
                    "health": st.health,
                    "version": st.version,
                    "home": str(st.home),
                }
            )
        )
        return 0 if st.running else 3
    # init
    from .store import IndexNames, connect, ensure_indices

    settings = _settings(args)
    report = ensure_indices(
        connect(settings), IndexNames(settings.index_prefix), settings.config_dir
    )
    names = IndexNames(settings.index_prefix)
    versions = ", ".join(f"{k} v{v}" for k, v in report.templates.items())
    _err(f"templates: {versions}; created: {', '.join(report.created) or 'nothing (all present)'}")
    print(f"{settings.es_url} alias={names.articles}")
    return 0


# --- run -----------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from .pipeline import ingest
    from .store import IndexNames, connect, ensure_indices

    settings = _settings(args)
    feeds = load_feeds(settings.feeds_file)
    client = connect(settings)
    ensure_indices(client, IndexNames(settings.index_prefix), settings.config_dir)
    enabled = sum(f.enabled for f in feeds)
    _err(f"newsmon: {enabled} feed(s) from {settings.feeds_file} -> {settings.es_url}")
    summary = ingest(
        feeds, settings, client=client, progress=(lambda m: None) if args.quiet else _err
    )
    print(summary.render())
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps(summary.as_dict(), indent=2) + "\n")
    return 0


# --- extract -------------------------------------------------------------------------------------


def _read_input(source: str, settings: Settings) -> tuple[str, bytes | None, str | None, Any]:
    """(url, body, content_type, fetch result or None) of a path or URL."""
    if source.startswith(("http://", "https://")):
        from .sources.fetch import Fetcher

        with Fetcher(settings.fetch) as fetcher:
            result = fetcher.get_html(source)
        return source, result.body if result.ok else None, result.content_type, result
    data = Path(source).read_bytes()
    if source.endswith(".gz"):
        data = gzip.decompress(data)
    return Path(source).resolve().as_uri(), data, None, None


def _extract_one(
    source: str, args: argparse.Namespace, settings: Settings, extractor: Extractor
) -> dict[str, Any]:
    from .pipeline import build_article
    from .store.articles import to_document
    from .urls import InvalidURL, canonical_url

    try:
        url, body, ctype, fetched = _read_input(source, settings)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        return {"input": source, "error": f"cannot read: {exc}"}
    page_url = args.url or url
    extraction = extractor.extract(body, page_url, ctype) if body is not None else None
    page = extraction.page if extraction else None
    if page is not None and fetched is None and not args.url and page.page_canonical_url:
        page_url = page.page_canonical_url  # a saved page: where it says it lives
    if page is None:
        if extraction is not None and extraction.failed:
            reason = f"extraction {extraction.outcome.value}: {extraction.reason}"
        elif fetched is not None and not fetched.ok:
            reason = fetched.reason
        else:
            reason = "no article text found"
        return {"input": source, "error": reason}
    try:
        canonical = canonical_url(page_url)
    except InvalidURL:
        canonical = page_url
    article = build_article(page_url, canonical, page, fetched=fetched)
    return {"input": source, **to_document(article)}


def cmd_extract(args: argparse.Namespace) -> int:
    from .extract.isolate import open_extractor

    settings = Settings.from_env(local_node=local_node_url)
    failures = 0
    # one page at a time: one worker process, with the time and memory limits of a run
    with open_extractor(dataclasses.replace(settings.extract, workers=1)) as extractor:
        for source in args.inputs:
            out = _extract_one(source, args, settings, extractor)
            if "error" in out:
                failures += 1
            if args.jsonl:
                print(json.dumps(out, ensure_ascii=False))
            else:
                print(json.dumps(out, ensure_ascii=False, indent=2))
    return 1 if failures else 0


# --- feeds ---------------------------------------------------------------------------------------


def cmd_feeds_check(args: argparse.Namespace) -> int:
    settings = _settings(args)
    feeds = load_feeds(settings.feeds_file)
    enabled = sum(f.enabled for f in feeds)
    print(f"{settings.feeds_file}: {len(feeds)} feeds ({enabled} enabled), valid")
    return 0


def cmd_feeds_status(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from .alerts import parse_duration
    from .health import failing_after_from_env, feed_health, render_table
    from .store import IndexNames, connect

    settings = _settings(args)
    feeds = load_feeds(settings.feeds_file)
    after = failing_after_from_env()
    if args.failing_after:
        try:
            after = parse_duration(args.failing_after)
        except ValueError as exc:
            raise ConfigError(str(exc), file="command line", field="--failing-after") from None
    now = datetime.now(UTC)
    rows = feed_health(
        connect(settings), IndexNames(settings.index_prefix), feeds, now=now, failing_after=after
    )
    if args.failing:
        rows = [r for r in rows if r.failing]
    if args.json:
        print(json.dumps([r.as_dict(now) for r in rows], ensure_ascii=False, indent=2))
    else:
        print(render_table(rows, now, after))
    return 1 if any(r.flagged for r in rows) else 0


def _known_feeds(path: str) -> list[Any]:
    """The feeds of ``path`` when it exists (to skip duplicates and taken ids), else none."""
    return load_feeds(path) if Path(path).exists() else []


def cmd_feeds_discover(args: argparse.Namespace) -> int:
    from .config import FeedConfig
    from .sources.discover import discover_feeds
    from .sources.feedlist import feed_keys, render_entries, suggest_id
    from .sources.fetch import Fetcher
    from .urls import InvalidURL, canonical_url

    settings = _settings(args)
    known = _known_feeds(settings.feeds_file)
    with Fetcher(settings.fetch) as fetcher:
        found = discover_feeds(fetcher, args.url, probe=not args.no_probe)
    for url, why in found.rejected:
        _err(f"  not a feed: {url} ({why})")
    if found.error:
        _err(f"newsmon: cannot read {args.url}: {found.error}")
        return 1
    if not found.feeds:
        _err(f"newsmon: no feed found at {args.url}")
        return 1
    keys, taken = feed_keys(known), {f.id for f in known}
    entries, comments = [], {}
    for feed in found.feeds:
        feed_id = suggest_id(feed.url, feed.title, taken)
        entries.append(FeedConfig(id=feed_id, name=feed.title or feed.url, url=feed.url))
        note = f"{feed.entries} item(s), found via {feed.via}"
        with contextlib.suppress(InvalidURL):
            if canonical_url(feed.url) in keys:
                note += f"; already in {settings.feeds_file} as {keys[canonical_url(feed.url)]}"
        comments[feed_id] = note
    print(render_entries(entries, comments=comments), end="")
    return 0


def cmd_feeds_import_opml(args: argparse.Namespace) -> int:
    from .sources.feedlist import append_entries, render_entries
    from .sources.opml import import_opml

    settings = _settings(args)
    target = args.into or settings.feeds_file
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=args.file) from None
    result = import_opml(data, args.file, _known_feeds(target))
    for problem in result.problems:
        _err(f"newsmon: skipped: {problem.render(args.file)}")
    for line, url, known_id in result.duplicates:
        _err(f"newsmon: already followed: {args.file}, line {line}: {url} (feed {known_id})")
    comments = {k: f"from {Path(args.file).name}, line {n}" for k, n in result.lines.items()}
    if args.into:
        feeds = append_entries(args.into, result.feeds, comments)
        _err(f"newsmon: added {len(result.feeds)} feed(s) to {args.into} ({len(feeds)} in all)")
    else:
        print(render_entries(result.feeds, comments=comments), end="")
    _err(
        f"newsmon: {len(result.feeds)} new, {len(result.duplicates)} already followed, "
        f"{len(result.problems)} skipped"
    )
    return 1 if result.problems else 0


# --- stories -------------------------------------------------------------------------------------


def cmd_story(args: argparse.Namespace) -> int:
    from .store import IndexNames, connect
    from .text.stories import get_story

    settings = _settings(args)
    view = get_story(connect(settings), IndexNames(settings.index_prefix), args.id)
    if view is None:
        _err(f"newsmon: no story or article with id {args.id}")
        return 1
    if args.json:
        print(json.dumps({"story": view.story, "articles": view.articles}, ensure_ascii=False))
    else:
        print(view.render())
    return 0


# --- alerts --------------------------------------------------------------------------------------


def _alert_rules(args: argparse.Namespace) -> tuple[Settings, Any, Any]:
    from dataclasses import replace

    from .alerts import AlertSettings, load_rules

    settings = _settings(args)
    alert_settings = AlertSettings.from_env(settings)
    if args.rules:
        alert_settings = replace(alert_settings, rules_file=args.rules)
    return settings, alert_settings, load_rules(alert_settings.rules_file)


def _check_queries(settings: Settings, rule_set: Any, only: Any = None) -> dict[str, str]:
    """How ES reads each rule's query; every invalid query is printed, then exit status 2."""
    from .alerts import validate_queries
    from .store import IndexNames, connect

    explained, problems = validate_queries(
        connect(settings), IndexNames(settings.index_prefix), rule_set, only
    )
    for problem in problems[1:]:
        _err(f"newsmon: configuration error: {problem.error(rule_set.source)}")
    if problems:
        raise problems[0].error(rule_set.source)
    return explained


def cmd_alerts_check(args: argparse.Namespace) -> int:
    settings, _alert_settings, rule_set = _alert_rules(args)
    explained = _check_queries(settings, rule_set)
    enabled = len(rule_set.enabled())
    count = len(rule_set.rules)
    print(f"{rule_set.source}: {count} rule{'s' * (count != 1)} ({enabled} enabled), valid")
    for rule in rule_set.rules:
        how = rule.mode + (f", {rule.digest}" if rule.digest else "")
        off = "" if rule.enabled else ", disabled"
        print(f"  {rule.id} ({how}{off}): {explained.get(rule.id, '')}")
    return 0


def cmd_alerts_preview(args: argparse.Namespace) -> int:
    from .alerts import parse_duration, preview
    from .store import IndexNames, connect

    settings, _alert_settings, rule_set = _alert_rules(args)
    rule = rule_set.get(args.rule)
    try:
        since = parse_duration(args.since)
    except ValueError as exc:
        raise ConfigError(str(exc), file="command line", field="--since") from None
    _check_queries(settings, rule_set, [rule])
    result = preview(
        connect(settings),
        IndexNames(settings.index_prefix),
        rule,
        since=since,
        time_field=args.by,
        sample=args.sample,
    )
    print(result.render())
    return 0


def cmd_alerts_run(args: argparse.Namespace) -> int:
    from .alerts import SmtpSettings, run_alerts, source_notes
    from .store import IndexNames, connect, ensure_indices

    settings, alert_settings, rule_set = _alert_rules(args)
    smtp = SmtpSettings.from_env()
    client = connect(settings)
    names = IndexNames(settings.index_prefix)
    ensure_indices(client, names, settings.config_dir)
    rules = rule_set.enabled(args.mode)
    _err(f"newsmon: {len(rules)} rule(s) from {rule_set.source}, mail via {smtp.host}:{smtp.port}")
    notes = source_notes(client, names, rules, settings.feeds_file)
    report = run_alerts(
        client, names, rule_set, alert_settings, smtp, mode=args.mode, source_notes=notes
    )
    print(report.render())
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    return 1 if report.problems else 0


def _alerts_parser(sub: Any) -> None:
    alerts = sub.add_parser("alerts", help="keyword alert rules and alert emails")
    alerts_sub = alerts.add_subparsers(dest="alerts_command", required=True)
    rules_help = "alert rules YAML (default: $NEWSMON_ALERTS or config/alerts.yaml)"

    check = alerts_sub.add_parser("check", help="validate the rules and their queries")
    check.add_argument("--rules", help=rules_help)
    check.set_defaults(func=cmd_alerts_check)

    prev = alerts_sub.add_parser("preview", help="backtest a rule: matches per day, a sample")
    prev.add_argument("rule", help="the rule id")
    prev.add_argument("--since", default="7d", help="how far back (e.g. 24h, 7d; default 7d)")
    prev.add_argument(
        "--by",
        choices=["published_at", "indexed_at"],
        default="published_at",
        help="the date that places an article in a day (default published_at)",
    )
    prev.add_argument("--sample", type=int, default=5, help="stories to show (default 5)")
    prev.add_argument("--rules", help=rules_help)
    prev.set_defaults(func=cmd_alerts_preview)

    run = alerts_sub.add_parser("run", help="evaluate the rules now and send the emails due")
    run.add_argument("--mode", choices=["immediate", "digest"], help="only these rules")
    run.add_argument("--rules", help=rules_help)
    run.add_argument("--summary-json", metavar="FILE", help="also write the summary as JSON")
    run.set_defaults(func=cmd_alerts_run)


# --- kibana --------------------------------------------------------------------------------------


def _kibana_rules(args: argparse.Namespace, settings: Settings) -> Any:
    from .alerts import AlertSettings, load_rules

    return load_rules(args.rules or AlertSettings.from_env(settings).rules_file)


def cmd_kibana_import(args: argparse.Namespace) -> int:
    from . import kibana

    settings = _settings(args)
    target = kibana.KibanaSettings.from_env(
        url=args.url,
        username=args.username,
        password=args.password,
        api_key=args.api_key,
        space=args.space,
        wait=args.wait,
    )
    files = kibana.object_files(settings.config_dir)
    objects = kibana.load_objects(files)
    alerts_file = kibana.kibana_dir(settings.config_dir) / kibana.ALERTS_FILE
    with contextlib.suppress(ConfigError, OSError):
        wanted = kibana.export_files(_kibana_rules(args, settings))[kibana.ALERTS_FILE]
        if alerts_file.read_text(encoding="utf-8") != wanted:
            _err(
                f"newsmon: warning: {alerts_file} does not match the alert rules; "
                "run `newsmon kibana export` to update it"
            )
    objects = kibana.with_prefix(objects, settings.index_prefix)
    problems = kibana.check_objects(objects, settings.config_dir, settings.index_prefix)
    for problem in problems[1:]:
        _err(f"newsmon: configuration error: {problem}")
    if problems:
        raise problems[0]
    try:
        version = kibana.wait_until_available(target, progress=_err)
        _err(
            f"newsmon: importing {len(objects)} saved object(s) into Kibana {version} "
            f"at {target.url}"
        )
        report = kibana.import_objects(target, objects, progress=_err)
    except kibana.KibanaError as exc:
        _err(f"newsmon: {exc}")
        return 3
    print(report.render(target))
    for note in report.new_ids:
        _err(f"newsmon: note: {note}")
    for error in report.errors:
        _err(f"newsmon: Kibana refused {error}")
    return 1 if report.errors else 0


def cmd_kibana_export(args: argparse.Namespace) -> int:
    from . import kibana

    settings = _settings(args)
    out = Path(args.dir) if args.dir else kibana.kibana_dir(settings.config_dir)
    stale = []
    for name, text in kibana.export_files(_kibana_rules(args, settings)).items():
        path = out / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            out.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    verb = "out of date" if args.check else "written"
    for path in stale:
        print(f"{path}: {verb}")
    if not stale:
        print(f"{out}: up to date")
    return 1 if args.check and stale else 0


def _kibana_parser(sub: Any) -> None:
    kib = sub.add_parser("kibana", help="Kibana data views, searches and dashboard")
    kib_sub = kib.add_subparsers(dest="kibana_command", required=True)
    rules_help = "alert rules YAML (default: $NEWSMON_ALERTS or config/alerts.yaml)"

    imp = kib_sub.add_parser("import", help="import config/kibana/*.ndjson (overwrites)")
    imp.add_argument("--url", help="Kibana (default: $NEWSMON_KIBANA_URL or http://127.0.0.1:5601)")
    imp.add_argument("--username", help="basic auth user (default: $NEWSMON_KIBANA_USERNAME)")
    imp.add_argument("--password", help="basic auth password (default: $NEWSMON_KIBANA_PASSWORD)")
    imp.add_argument("--api-key", help="API key instead of a user ($NEWSMON_KIBANA_API_KEY)")
    imp.add_argument("--space", help="Kibana space id (default: $NEWSMON_KIBANA_SPACE or default)")
    imp.add_argument(
        "--wait", type=float, help="seconds to wait for Kibana ($NEWSMON_KIBANA_WAIT or 300)"
    )
    imp.add_argument("--rules", help=rules_help)
    imp.set_defaults(func=cmd_kibana_import)

    exp = kib_sub.add_parser("export", help="write config/kibana/*.ndjson from code and the rules")
    exp.add_argument("--rules", help=rules_help)
    exp.add_argument("--dir", help="where to write (default: config/kibana)")
    exp.add_argument("--check", action="store_true", help="only check the files are up to date")
    exp.set_defaults(func=cmd_kibana_export)


# --- demo ----------------------------------------------------------------------------------------


def cmd_demo_site(args: argparse.Namespace) -> int:
    from .dev.demo import DemoSite, load_pages

    pages = load_pages(args.pages, limit=args.limit)
    site = DemoSite(pages, feed_count=args.feeds, port=args.port).start()
    feeds_file = Path(args.write_feeds or Path(tempfile.gettempdir()) / "newsmon-demo-feeds.yaml")
    feeds_file.write_text(site.feeds_yaml())
    _err(f"serving {len(pages)} pages and {args.feeds} feeds at {site.base_url}")
    print(feeds_file, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    site.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="newsmon", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run one ingest cycle now")
    run.add_argument("--feeds", help="feeds YAML (default: $NEWSMON_FEEDS or config/feeds.yaml)")
    run.add_argument("--quiet", action="store_true", help="no progress output")
    run.add_argument("--summary-json", metavar="FILE", help="also write the summary as JSON")
    run.set_defaults(func=cmd_run)

    ext = sub.add_parser("extract", help="extract article(s) from files or URLs and print JSON")
    ext.add_argument("inputs", nargs="+", metavar="PATH_OR_URL")
    ext.add_argument("--jsonl", action="store_true", help="one compact JSON object per line")
    ext.add_argument("--url", help="the page's original URL (for files)")
    ext.set_defaults(func=cmd_extract)

    es = sub.add_parser("es", help="the local Elasticsearch node and the indices")
    es.add_argument("action", choices=["up", "down", "status", "init"])
    es.set_defaults(func=cmd_es)

    story = sub.add_parser("story", help="show a story: its articles and the outlets that ran it")
    story.add_argument("id", help="a story id, or the id of one of its articles")
    story.add_argument("--json", action="store_true", help="print JSON")
    story.set_defaults(func=cmd_story)

    feeds = sub.add_parser("feeds", help="feed list tools")
    feeds_sub = feeds.add_subparsers(dest="feeds_command", required=True)
    check = feeds_sub.add_parser("check", help="validate the feeds file")
    check.add_argument("--feeds", help="feeds YAML")
    check.set_defaults(func=cmd_feeds_check)
    status = feeds_sub.add_parser("status", help="feed health: last success, failures, volume")
    status.add_argument("--feeds", help="feeds YAML")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument("--failing", action="store_true", help="only feeds failing now")
    status.add_argument(
        "--failing-after",
        metavar="DURATION",
        help="flag feeds failing this long (default $NEWSMON_FEED_FAILING_AFTER or 24h)",
    )
    status.set_defaults(func=cmd_feeds_status)
    discover = feeds_sub.add_parser("discover", help="find a site's feeds, print YAML entries")
    discover.add_argument("url", help="the site's homepage")
    discover.add_argument("--feeds", help="feeds YAML (for id suggestions and duplicates)")
    discover.add_argument("--no-probe", action="store_true", help="do not try common paths")
    discover.set_defaults(func=cmd_feeds_discover)
    opml = feeds_sub.add_parser("import-opml", help="feeds from an OPML file, as YAML entries")
    opml.add_argument("file", help="the OPML file")
    opml.add_argument("--into", metavar="FEEDS_YAML", help="append the new feeds to this file")
    opml.add_argument("--feeds", help="feeds YAML to skip duplicates of (without --into)")
    opml.set_defaults(func=cmd_feeds_import_opml)

    _alerts_parser(sub)
    _kibana_parser(sub)

    demo = sub.add_parser("demo-site", help="serve saved pages and feeds on loopback")
    demo.add_argument("--pages", required=True, help="a shared data set directory")
    demo.add_argument("--feeds", type=int, default=3, help="number of feeds (default 3)")
    demo.add_argument("--limit", type=int, help="serve at most N pages")
    demo.add_argument("--port", type=int, default=0)
    demo.add_argument("--write-feeds", metavar="FILE", help="where to write the feeds YAML")
    demo.set_defaults(func=cmd_demo_site)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:  # each retry of a request logs a traceback; the outcome is reported
        logging.getLogger("elastic_transport").setLevel(logging.ERROR)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        _err(f"newsmon: configuration error: {exc}")
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from .store.client import failure_kind

        kind = failure_kind(exc)
        if kind == "unreachable":
            url = os.environ.get("NEWSMON_ES_URL", "http://127.0.0.1:9200")
            _err(
                f"newsmon: Elasticsearch at {url} is not reachable: {exc}\n"
                "start the local node with `newsmon es up` or set NEWSMON_ES_URL"
            )
            return 3
        if kind == "busy":
            _err(
                f"newsmon: Elasticsearch answered {getattr(exc, 'status_code', '?')} after every "
                f"retry: {exc}\nnothing is lost: the next run takes up what this one did not index"
            )
            return 3
        if type(exc).__name__ == "NodeError":
            _err(f"newsmon: {exc}")
            return 3
        raise


if __name__ == "__main__":
    sys.exit(main())
