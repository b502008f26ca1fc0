"""Long fuzzing runs over the parsers that read the web: feeds, pages, charsets, URLs.

    python bench/fuzz.py --seconds 300                  # every target, the time split evenly
    python bench/fuzz.py --seconds 60 --target feed     # one target
    python bench/fuzz.py --engine hypothesis ...        # without atheris

Targets and the property each must keep (the checks of newsmon.dev.fuzz, which
tests/test_fuzz.py runs too, so ``make test`` and this run hold the parsers to the same
contract):

    feed     newsmon.sources.feeds.read_feed returns a ParsedFeed (entries capped, http(s) links)
    page     newsmon.extract.page.extract_page returns None or a page with text
    decode   newsmon.extract.decode.decode_html returns str
    url      newsmon.urls.canonical_url returns a fixed point or raises InvalidURL

With atheris (coverage-guided, libFuzzer) each input's bytes are turned into a document: the
first byte picks raw bytes or a structured document built from the same vocabulary as the
hypothesis generators (feed/HTML element names, attributes, entities, CDATA, DOCTYPEs, charset
labels, codecs). Exceptions that escape are findings; the run goes on after one and each
distinct (exception type, innermost newsmon/library frame) is reported once. Exceptions that
extract_page catches and logs are counted separately as "handled". Each target runs in its own
process; the summary prints executions, executions per second and the findings.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

TARGETS = ("feed", "page", "decode", "url")
INSTRUMENTED = ("newsmon", "feedparser", "feedparser_sgmllib", "trafilatura", "htmldate", "justext")


# --- turning fuzzer bytes into documents ----------------------------------------------------------


def _document(data: bytes, names: list[str]) -> tuple[bytes, str | None]:
    import atheris  # type: ignore[import-untyped]

    from newsmon.dev import fuzz as vocab

    fdp = atheris.FuzzedDataProvider(data)
    if fdp.ConsumeIntInRange(0, 3) == 0:  # a quarter raw bytes
        return fdp.ConsumeBytes(fdp.remaining_bytes()), None
    label = fdp.PickValueInList(vocab.LABELS)
    codec = fdp.PickValueInList(vocab.CODECS)
    prologs = [
        "",
        '<?xml version="1.0" encoding="{label}"?>',
        "<!DOCTYPE html>",
        '<!DOCTYPE rss [<!ENTITY a "b">]>',
        '<meta charset="{label}">',
    ]
    parts = [fdp.PickValueInList(prologs).replace("{label}", label)]
    stack: list[str] = []
    for _ in range(fdp.ConsumeIntInRange(0, 60)):
        action = fdp.ConsumeIntInRange(0, 5)
        if action == 0 or (action == 1 and not stack):
            name = fdp.PickValueInList(names)
            attrs = ""
            for _ in range(fdp.ConsumeIntInRange(0, 2)):
                attr = fdp.PickValueInList(vocab.ATTR_NAMES)
                attrs += f' {attr}="{fdp.PickValueInList(vocab.ATTR_VALUES)}"'
            parts.append(f"<{name}{attrs}>")
            stack.append(name)
        elif action == 1:
            parts.append(f"</{stack.pop()}>")
        elif action == 2:
            parts.append(fdp.PickValueInList(vocab.SNIPPETS))
        else:
            parts.append(fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 40)))
    if fdp.ConsumeBool():
        parts.extend(f"</{name}>" for name in reversed(stack))
    content = "".join(parts).encode(codec, errors="replace")
    header = fdp.PickValueInList(["text/html", "application/rss+xml", "text/xml", ""]) or None
    if header and fdp.ConsumeBool():
        header += f"; charset={fdp.PickValueInList(vocab.LABELS)}"
    return content, header


def _url(data: bytes) -> str:
    import atheris

    fdp = atheris.FuzzedDataProvider(data)
    if fdp.ConsumeBool():
        return str(fdp.ConsumeUnicode(fdp.remaining_bytes()))
    pieces = [
        "http://", "https://", "HTTP://", "//", "www.", "amp.", "a.example", "[::1]", "0x7f.1",
        ":80", ":99999", "@", "/", "/../", "%2F", "%", "%zz", "%E9", "?", "&", "=", "#",
        "utm_source=x", "amp=1", "index.html", "\u00e9", "\u0130", "\uff0e", "\u3002", " ", "\\",
    ]  # fmt: skip
    out = []
    for _ in range(fdp.ConsumeIntInRange(0, 16)):
        out.append(
            fdp.PickValueInList(pieces)
            if fdp.ConsumeBool()
            else fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 8))
        )
    return "".join(out)


# --- one target in this process ------------------------------------------------------------------


class _Findings:
    """Distinct exceptions, appended to a JSON-lines file as they are found."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: set[str] = set()

    def record(self, kind: str, exc: BaseException, sample: object) -> None:
        frames = traceback.extract_tb(exc.__traceback__)
        where = next(
            (f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames)),
            "?",
        )
        key = f"{kind} {type(exc).__name__} {where}"
        if key in self.seen:
            return
        self.seen.add(key)
        with self.path.open("a") as out:
            entry = {
                "kind": kind,
                "key": key,
                "error": f"{type(exc).__name__}: {exc}"[:300],
                "sample": repr(sample)[:400],
            }
            out.write(json.dumps(entry) + "\n")


class _Handled(logging.Handler):
    """Exceptions a function caught and logged (extract_page logs, then returns None)."""

    def __init__(self, findings: _Findings) -> None:
        super().__init__(logging.WARNING)
        self.findings = findings
        self.sample: object = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.findings.record("handled", record.exc_info[1], self.sample)


def _checks() -> dict[str, tuple[Callable[[bytes], Any], Callable[[Any], object]]]:
    from newsmon.dev import fuzz as t

    return {
        "feed": (lambda d: _document(d, t.FEED_NAMES), lambda a: t.check_feed(*a)),
        "page": (lambda d: _document(d, t.HTML_NAMES), lambda a: t.check_page(*a)),
        "decode": (lambda d: _document(d, t.HTML_NAMES), lambda a: t.check_decode(*a)),
        "url": (_url, t.check_url),
    }


def run_atheris(target: str, seconds: int, findings_path: Path, corpus: Path) -> None:
    import atheris

    # only these packages: instrumenting everything (pydantic, lxml's Python parts...) crashes
    with atheris.instrument_imports(include=list(INSTRUMENTED)):
        import feedparser  # noqa: F401
        import trafilatura  # noqa: F401

        import newsmon.extract.page
        import newsmon.sources.feeds
        import newsmon.urls  # noqa: F401
    make, check = _checks()[target]
    findings = _Findings(findings_path)
    handled = _Handled(findings)
    logging.getLogger("newsmon").addHandler(handled)
    logging.getLogger("newsmon").setLevel(logging.WARNING)
    logging.getLogger("newsmon").propagate = False

    def one_input(data: bytes) -> None:
        sample = make(data)
        handled.sample = sample
        try:
            check(sample)
        except Exception as exc:
            findings.record("escaped", exc, sample)

    corpus.mkdir(parents=True, exist_ok=True)
    argv = [sys.argv[0], str(corpus), f"-max_total_time={seconds}", "-timeout=60"]
    argv += ["-rss_limit_mb=3072", "-max_len=4096", "-print_final_stats=1"]
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


def run_hypothesis(target: str, seconds: int, findings_path: Path) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from newsmon.dev import fuzz as t

    strategies: dict[str, tuple[st.SearchStrategy[Any], Callable[[Any], object]]] = {
        "feed": (t.feed_documents, lambda a: t.check_feed(*a)),
        "page": (t.html_documents, lambda a: t.check_page(*a)),
        "decode": (st.one_of(t.html_documents, t.feed_documents), lambda a: t.check_decode(*a)),
        "url": (t.urls, t.check_url),
    }
    strategy, check = strategies[target]
    findings = _Findings(findings_path)
    handled = _Handled(findings)
    logging.getLogger("newsmon").addHandler(handled)
    logging.getLogger("newsmon").propagate = False
    runs = 0
    ends = time.monotonic() + seconds

    @settings(
        max_examples=500,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def batch(sample: Any) -> None:
        nonlocal runs
        if time.monotonic() > ends:
            return
        runs += 1
        handled.sample = sample
        try:
            check(sample)
        except Exception as exc:
            findings.record("escaped", exc, sample)

    while time.monotonic() < ends:
        batch()
    print(f"Done {runs} runs in {seconds} second(s)", file=sys.stderr)


# --- the driver ----------------------------------------------------------------------------------


def _engine(requested: str) -> str:
    if requested != "auto":
        return requested
    try:
        import atheris  # noqa: F401
    except ImportError:
        return "hypothesis"
    return "atheris"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=300, help="total, split over targets")
    parser.add_argument("--target", choices=(*TARGETS, "all"), default="all")
    parser.add_argument("--engine", choices=("auto", "atheris", "hypothesis"), default="auto")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--findings", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args()
    engine = _engine(args.engine)
    if args.child:
        if engine == "atheris":
            run_atheris(args.child, args.seconds, Path(args.findings), Path(args.corpus))
        else:
            run_hypothesis(args.child, args.seconds, Path(args.findings))
        return
    targets = TARGETS if args.target == "all" else (args.target,)
    share = max(args.seconds // len(targets), 5)
    workdir = Path(tempfile.mkdtemp(prefix="newsmon-fuzz-"))
    print(f"engine {engine}, {share}s per target, corpora and findings in {workdir}")
    rows = []
    for target in targets:
        findings = workdir / f"{target}.findings.jsonl"
        findings.touch()
        command = [sys.executable, __file__, "--child", target, "--seconds", str(share)]
        command += ["--engine", engine, "--findings", str(findings)]
        command += ["--corpus", str(workdir / f"{target}.corpus")]
        started = time.monotonic()
        done = subprocess.run(
            command, capture_output=True, text=True, check=False, env={**os.environ}
        )
        elapsed = time.monotonic() - started
        runs_match = re.search(r"Done (\d+) runs", done.stderr)
        runs = int(runs_match.group(1)) if runs_match else 0
        found = [json.loads(line) for line in findings.read_text().splitlines() if line]
        rows.append((target, runs, elapsed, done.returncode, found))
        if not runs_match:
            print(done.stderr[-2000:], file=sys.stderr)
    print(f"\n{'target':8} {'runs':>9} {'runs/s':>8} {'rc':>3}  escaped  handled")
    for target, runs, elapsed, rc, found in rows:
        escaped = sum(f["kind"] == "escaped" for f in found)
        handled = sum(f["kind"] == "handled" for f in found)
        print(f"{target:8} {runs:9d} {runs / elapsed:8.1f} {rc:3d}  {escaped:7d}  {handled:7d}")
    for target, _, _, _, found in rows:
        for finding in found:
            print(f"\n[{target}] {finding['kind']}: {finding['key']}\n  {finding['error']}")
            print(f"  sample: {finding['sample']}")


if __name__ == "__main__":
    main()
