"""newsmon: follow news feeds, index their articles into Elasticsearch, alert on keywords.

Exit statuses: 0 done; 1 some input failed (extract, alerts); 2 configuration error; 3
Elasticsearch unavailable; 4 every feed failed (or more than the allowed share); 130
interrupted; 141 the output pipe was closed (README: exit statuses).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gzip
import json
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import browse, browse_events
from .cli_feeds import add_feed_commands
from .config import ConfigError, Settings, load_feeds
from .console import run_command, say, setup_logging
from .dev.local import local_node_url
from .runstatus import judge_feeds

if TYPE_CHECKING:
    from .extract.isolate import Extractor

__all__ = ["main"]


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env(local_node=local_node_url)
    if getattr(args, "feeds", None):
        settings = _replace(settings, feeds_file=args.feeds)
    return settings


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share from 0 to 1")
    return value


def _replace(settings: Settings, **changes: Any) -> Settings:
    from dataclasses import replace

    return replace(settings, **changes)


# --- es ------------------------------------------------------------------------------------------


def cmd_es(args: argparse.Namespace) -> int:
    from .dev import esnode

    if args.action == "up":
        url = esnode.up(progress=say)
        print(url)
        return 0
    if args.action == "down":
        say("stopped" if esnode.down(progress=say) else "not running")
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
    if args.action == "maintain":
        return _maintain(args)
    # init
    from .store import IndexNames, connect, ensure_indices

    settings = _settings(args)
    report = ensure_indices(
        connect(settings), IndexNames(settings.index_prefix), settings.config_dir
    )
    names = IndexNames(settings.index_prefix)
    versions = ", ".join(f"{k} v{v}" for k, v in report.templates.items())
    say(f"templates: {versions}; created: {', '.join(report.created) or 'nothing (all present)'}")
    print(f"{settings.es_url} alias={names.articles}")
    return 0


def _maintain(args: argparse.Namespace) -> int:
    from .maintenance import maintain

    report = maintain(_settings(args), dry_run=args.dry_run)
    print(report.render())
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
    say(f"newsmon: {enabled} feed(s) from {settings.feeds_file} -> {settings.es_url}")
    summary = ingest(
        feeds, settings, client=client, progress=(lambda m: None) if args.quiet else say
    )
    print(summary.render(), flush=True)
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps(summary.as_dict(), indent=2) + "\n")
    share = (
        settings.max_failed_feed_share if args.max_failed_share is None else args.max_failed_share
    )
    verdict = judge_feeds(summary.feeds, summary.problems, share)
    if verdict.message:
        say(verdict.message)
    return verdict.exit_status


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
    document = to_document(article)
    for matched in ("terms", "exact"):  # the words as rules match them: for the index only
        document.pop(matched, None)
    return {"input": source, **document}


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


# --- alerts --------------------------------------------------------------------------------------


def _alert_rules(args: argparse.Namespace) -> tuple[Settings, Any, Any]:
    from dataclasses import replace

    from .alerts import AlertSettings, load_rules

    settings = _settings(args)
    alert_settings = AlertSettings.from_env(settings)
    if args.rules:
        alert_settings = replace(alert_settings, rules_file=args.rules)
    return settings, alert_settings, load_rules(alert_settings.rules_file)


def _rule_check(settings: Settings, rule_set: Any, only: Any = None) -> Any:
    """Every check of the rules (``alerts check``, ``preview`` and ``run`` make the same);
    the warnings are printed. The DAG glue runs the same checks (alerts.checks)."""
    from .alerts.checks import rule_check
    from .store import IndexNames, connect

    names = IndexNames(settings.index_prefix)
    checked = rule_check(connect(settings), names, rule_set, settings.feeds_file, only)
    for warning in checked.warnings:
        say(f"newsmon: warning: {warning.error(rule_set.source)}")
    return checked


def _check_queries(settings: Settings, rule_set: Any, only: Any = None) -> dict[str, str]:
    """How ES reads each rule's query; every problem is printed, then exit status 2."""
    problems = (checked := _rule_check(settings, rule_set, only)).problems
    for problem in problems[1:]:
        say(f"newsmon: configuration error: {problem.error(rule_set.source)}")
    if problems:
        raise problems[0].error(rule_set.source)
    return dict(checked.explained)


def cmd_alerts_check(args: argparse.Namespace) -> int:
    settings, _alert_settings, rule_set = _alert_rules(args)
    explained = _check_queries(settings, rule_set)
    enabled = len(rule_set.enabled())
    count = len(rule_set.rules)
    print(f"{rule_set.source}: {count} rule{'s' * (count != 1)} ({enabled} enabled), valid")
    for rule in rule_set.rules:
        how = rule.mode + (f", {rule.digest}" if rule.digest else "")
        how += ", once per event" if rule.once_per == "event" else ""
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
    checked = _rule_check(settings, rule_set, rule_set.enabled(args.mode))
    for problem in checked.problems:  # the rule is not run, as `alerts check` says
        say(f"newsmon: configuration error: {problem.error(rule_set.source)}")
    rule_set = checked.runnable(rule_set)
    rules = rule_set.enabled(args.mode)
    mail = f"{smtp.host}:{smtp.port}" if smtp.configured else "(no NEWSMON_SMTP_HOST)"
    say(f"newsmon: {len(rules)} rule(s) from {rule_set.source}, mail via {mail}")
    notes = source_notes(client, names, rules, settings.feeds_file)
    report = run_alerts(
        client, names, rule_set, alert_settings, smtp, mode=args.mode, source_notes=notes
    )
    from .alerts.operator import notify_operator

    report.counts.update(notify_operator(client, names, settings.feeds_file, smtp))
    for problem in checked.problems:
        report.problem(f"rule {problem.rule_id} not run: {problem.error(rule_set.source)}")
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
        default="indexed_at",
        help="the date that places an article in a day (default indexed_at, as alerts run)",
    )
    prev.add_argument("--sample", type=int, default=5, help="stories to show (default 5)")
    prev.add_argument("--rules", help=rules_help)
    prev.set_defaults(func=cmd_alerts_preview)

    run = alerts_sub.add_parser("run", help="evaluate the rules now and send the emails due")
    run.add_argument("--mode", choices=["immediate", "digest"], help="only these rules")
    run.add_argument("--rules", help=rules_help)
    run.add_argument("--summary-json", metavar="FILE", help="also write the summary as JSON")
    run.set_defaults(func=cmd_alerts_run)

    from .alerts.commands import add_commands

    add_commands(alerts_sub, _alert_rules, rules_help)  # status, history, test-email, mute…


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
            say(
                f"newsmon: warning: {alerts_file} does not match the alert rules; "
                "run `newsmon kibana export` to update it"
            )
    objects = kibana.with_prefix(objects, settings.index_prefix)
    problems = kibana.check_objects(objects, settings.config_dir, settings.index_prefix)
    for problem in problems[1:]:
        say(f"newsmon: configuration error: {problem}")
    if problems:
        raise problems[0]
    try:
        version = kibana.wait_until_available(target, progress=say)
        say(
            f"newsmon: importing {len(objects)} saved object(s) into Kibana {version} "
            f"at {target.url}"
        )
        report = kibana.import_objects(target, objects, progress=say)
    except kibana.KibanaError as exc:
        say(f"newsmon: {exc}")
        return 3
    print(report.render(target))
    for note in report.new_ids:
        say(f"newsmon: note: {note}")
    for error in report.errors:
        say(f"newsmon: Kibana refused {error}")
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


DEMO_FEEDS = Path(".newsmon") / "demo-feeds.yaml"


def cmd_demo_site(args: argparse.Namespace) -> int:
    from .dev.demo import DemoNetwork, DemoSite, load_pages

    pages = load_pages(args.pages, limit=args.limit)
    try:
        if args.syndicate:
            site: DemoSite | DemoNetwork = DemoNetwork(pages, feed_count=args.feeds, port=args.port)
        else:
            site = DemoSite(pages, feed_count=args.feeds, port=args.port, home=True)
    except OSError as exc:
        port = f"port {args.port}" if args.port else "a port"
        say(
            f"newsmon: cannot serve the demo on {port}: {exc.strerror or exc}"
            + (" (another demo running? DEMO_PORT=… or --port picks another)" if args.port else "")
        )
        return 1
    site.start()
    feeds_file = Path(args.write_feeds or DEMO_FEEDS)
    feeds_file.parent.mkdir(parents=True, exist_ok=True)
    written = feeds_file.with_name(feeds_file.name + ".tmp")
    written.write_text(site.feeds_yaml())
    written.replace(feeds_file)  # whole, so a reader never sees half a list
    served = site.page_count if isinstance(site, DemoNetwork) else len(site.pages)
    where = (
        ", ".join(s.base_url for s in site.sites)
        if isinstance(site, DemoNetwork)
        else site.base_url
    )
    say(f"serving {served} pages and their feeds at {where} (feed list: {feeds_file})")
    print(feeds_file, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    site.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsmon", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run one ingest cycle now")
    run.add_argument("--feeds", help="feeds YAML (default: $NEWSMON_FEEDS or config/feeds.yaml)")
    run.add_argument("--quiet", action="store_true", help="no progress output")
    run.add_argument("--summary-json", metavar="FILE", help="also write the summary as JSON")
    run.add_argument(
        "--max-failed-share",
        type=_share,
        metavar="SHARE",
        help="exit 4 when more than this share (0-1) of the feeds failed; every feed failing "
        "always does (default $NEWSMON_MAX_FAILED_FEED_SHARE or 1)",
    )
    run.set_defaults(func=cmd_run)

    ext = sub.add_parser("extract", help="extract article(s) from files or URLs and print JSON")
    ext.add_argument("inputs", nargs="+", metavar="PATH_OR_URL")
    ext.add_argument("--jsonl", action="store_true", help="one compact JSON object per line")
    ext.add_argument("--url", help="the page's original URL (for files)")
    ext.set_defaults(func=cmd_extract)

    es = sub.add_parser("es", help="the local Elasticsearch node and the indices")
    es.add_argument(
        "action",
        choices=["up", "down", "status", "init", "maintain"],
        help="maintain: roll the articles over by age or size, delete state past its retention",
    )
    es.add_argument("--dry-run", action="store_true", help="maintain: only say what it would do")
    es.set_defaults(func=cmd_es)

    browse.add_parsers(sub, _settings)
    browse_events.add_parsers(sub, _settings)

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
    add_feed_commands(feeds_sub, _settings)

    _alerts_parser(sub)
    _kibana_parser(sub)

    demo = sub.add_parser("demo-site", help="serve saved pages and feeds on loopback")
    demo.add_argument("--pages", required=True, help="a shared data set directory")
    demo.add_argument("--feeds", type=int, default=3, help="number of feeds (default 3)")
    demo.add_argument("--limit", type=int, help="serve at most N pages")
    demo.add_argument("--port", type=int, default=0)
    demo.add_argument(
        "--write-feeds",
        metavar="FILE",
        help=f"where to write the feeds YAML (default {DEMO_FEEDS})",
    )
    demo.add_argument(
        "--syndicate",
        action="store_true",
        help="also serve copies of every 5th page on 127.0.0.2 and .3 (multi-outlet stories)",
    )
    demo.set_defaults(func=cmd_demo_site)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    return run_command(lambda: int(args.func(args)))


if __name__ == "__main__":
    sys.exit(main())
