"""The ``newsmon`` command's terminal: its logging, and a sentence with an exit status where a
traceback would otherwise be (README: exit statuses)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from .config import ConfigError

__all__ = ["OnceFilter", "run_command", "say", "setup_logging"]


def say(message: str) -> None:
    """A line for the user, on stderr (stdout carries the command's output)."""
    print(message, file=sys.stderr, flush=True)


class OnceFilter(logging.Filter):
    """Drops a newsmon record identical to one already shown: a report merged into another logs
    its problems again (``alerts.report.RunReport.merge`` calls ``problem`` for each), so
    ``alerts run`` showed every warning twice."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple[str, int, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("newsmon"):
            return True
        key = (record.name, record.levelno, record.getMessage())
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


def setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(OnceFilter())
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, handlers=[handler])
    if not verbose:
        # each retry of a request logs a traceback; the outcome is reported
        logging.getLogger("elastic_transport").setLevel(logging.ERROR)
        # trafilatura logs pages it cannot parse ("parsed tree length: 1") at ERROR; newsmon
        # reports them as outcomes (extraction_empty, an "error" field)
        logging.getLogger("trafilatura").setLevel(logging.CRITICAL)


def _config_error(exc: ConfigError) -> None:
    """One problem on one line; several: how many, then each as ``file:line: field: message``."""
    if len(exc.problems) == 1:
        say(f"newsmon: configuration error: {exc}")
        return
    say(f"newsmon: configuration error: {len(exc.problems)} problems in {exc.file}")
    for line in exc.lines():
        say(line)


def _pipe_closed() -> int:
    """stdout's reader went away (``| head``): stop writing, quietly (Python docs, "Note on
    SIGPIPE")."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 141


def run_command(command: Callable[[], int]) -> int:
    """``command()``'s exit status; what it raises as a sentence and an exit status."""
    try:
        status = command()
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return status
    except BrokenPipeError:
        return _pipe_closed()
    except ConfigError as exc:
        _config_error(exc)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from .store.client import failure_kind

        kind = failure_kind(exc)
        if kind == "unreachable":
            url = os.environ.get("NEWSMON_ES_URL", "http://127.0.0.1:9200")
            say(
                f"newsmon: Elasticsearch at {url} is not reachable: {exc}\n"
                "start the local node with `newsmon es up` or set NEWSMON_ES_URL"
            )
            return 3
        if kind == "busy":
            say(
                f"newsmon: Elasticsearch answered {getattr(exc, 'status_code', '?')} after every "
                f"retry: {exc}\nnothing is lost: the next run takes up what this one did not index"
            )
            return 3
        if type(exc).__name__ == "NodeError":  # newsmon.dev.esnode's, not imported here
            say(f"newsmon: {exc}")
            return 3
        raise
