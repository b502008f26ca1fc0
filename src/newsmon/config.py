"""Settings from the environment and the feed list from YAML, validated on load.

A configuration mistake stops with a :class:`ConfigError` naming the file, line and field; a
file with several mistakes gives one error that lists them all (:attr:`ConfigError.problems`).
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = [
    "ConfigError",
    "ExtractSettings",
    "FeedConfig",
    "FetchSettings",
    "Settings",
    "check_unique_ids",
    "load_feeds",
    "load_yaml_model",
    "parse_feeds",
    "read_config_file",
    "yaml_line",
]

USER_AGENT = "newsmon/0.1 (+https://github.com/newsmon/newsmon; news monitoring)"


class ConfigError(ValueError):
    """A configuration mistake: says where (file, line, field) and what is wrong, as
    ``file:line: field: message`` (:meth:`located`), alone or as the first of several."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
        problems: Sequence[ConfigError] = (),
    ) -> None:
        self.file, self.line, self.field, self.reason = file, line, field, message
        # every problem found in the file, this one first (just this one when it was alone)
        self.problems: tuple[ConfigError, ...] = tuple(problems) or (self,)
        super().__init__(self.located())

    def located(self) -> str:
        """``file:line: field: message``, the form editors and compilers use."""
        where = ":".join(str(p) for p in (self.file, self.line) if p is not None)
        parts = [p for p in (where, self.field, self.reason) if p]
        return ": ".join(parts)

    def lines(self) -> list[str]:
        """Every problem of the file, one :meth:`located` line each."""
        return [p.located() for p in self.problems]


def _all_problems(ordered: Sequence[ConfigError]) -> ConfigError:
    """One error for a file's problems (in order): the first one, counting the rest."""
    first = ordered[0]
    if len(ordered) == 1:
        return first
    more = len(ordered) - 1
    return ConfigError(
        f"{first.reason} (and {more} more problem{'s' if more > 1 else ''})",
        file=first.file,
        line=first.line,
        field=first.field,
        problems=ordered,
    )


# --- feeds -------------------------------------------------------------------------------------

FeedId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]


class FeedConfig(BaseModel):
    """One feed to follow."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    id: FeedId
    url: str
    name: str = Field(min_length=1, max_length=200)
    language: Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")] | None = None
    tags: tuple[Annotated[str, Field(min_length=1, max_length=64)], ...] = ()
    enabled: bool = True
    type: Literal["feed", "sitemap"] = "feed"  # a sitemap: a site without a feed (sources/sitemaps)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        from .urls import InvalidURL, canonical_url

        try:
            canonical_url(value)
        except InvalidURL as exc:
            raise ValueError(str(exc)) from exc
        return value


class _FeedsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    feeds: list[FeedConfig]


def _node_at(root: yaml.Node | None, loc: Sequence[int | str]) -> yaml.Node | None:
    """The YAML node at a pydantic error location (deepest existing one)."""
    node = root
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == key), None)
            if child is None:
                # the key itself is the problem (unknown field): point at the mapping
                return next((k for k, _ in node.value if k.value == key), node)
            node = child
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
    return node


def yaml_line(root: yaml.Node | None, loc: Sequence[int | str]) -> int | None:
    """The line (1-based) of the YAML node at ``loc``, or of its deepest existing parent."""
    node = _node_at(root, loc)
    return node.start_mark.line + 1 if node is not None else None


def _field_name(loc: Sequence[int | str], data: Any, list_key: str = "feeds") -> str:
    parts: list[str] = []
    for key in loc:
        if isinstance(key, int):
            item_id = None
            if isinstance(data, dict) and isinstance(data.get(list_key), list):
                items = data[list_key]
                if key < len(items) and isinstance(items[key], dict):
                    item_id = items[key].get("id")
            parts.append(f"[{key}]" + (f" (id {item_id!r})" if item_id else ""))
        else:
            parts.append(("." if parts else "") + key)
    return "".join(parts)


def _duplicate_keys(root: yaml.Node | None) -> list[tuple[yaml.Node, str]]:
    """Every mapping key that repeats an earlier key of its mapping, with its path."""
    found: list[tuple[yaml.Node, str]] = []
    stack: list[tuple[yaml.Node, str]] = [(root, "")] if root is not None else []
    visited: set[int] = set()
    while stack:
        node, path = stack.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: set[object] = set()
            for key, value in node.value:
                name = f"{path}.{key.value}" if path else str(key.value)
                if isinstance(key, yaml.ScalarNode):
                    if key.value in seen:
                        found.append((key, name))
                    seen.add(key.value)
                stack.append((value, name))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(node.value))
    return found


def _unwrap(annotation: Any) -> Any:
    """``X`` from ``Annotated[X, …]`` and ``X | None``."""
    while get_origin(annotation) in (Annotated, Union, UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        annotation = args[0] if args else None
    return annotation


def _model_at(model: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The pydantic model that holds the field at ``loc`` (for "unknown field" messages)."""
    current: Any = model
    for key in loc:
        current = _unwrap(current)
        if isinstance(key, int):
            items = get_args(current)  # list[X] or tuple[X, ...]
            current = items[0] if items else None
        elif isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(key)
            current = info.annotation if info is not None else None
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


M = TypeVar("M", bound=BaseModel)


CrossCheck = Callable[[Any, yaml.Node, str], list[ConfigError]]
"""Problems across a file's items (duplicate URLs…), found on the raw YAML data."""


def load_yaml_model(
    text: str, source: str, model: type[M], list_key: str, checks: Sequence[CrossCheck] = ()
) -> tuple[M, yaml.Node]:
    """Parse a YAML document into ``model`` (whose items live under ``list_key``).

    Mistakes raise one :class:`ConfigError` naming the file, the line and the field of the
    first and listing every one (duplicate keys, schema errors, then what ``checks`` find) —
    shared by the feed list and the alert rules.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError(f"invalid YAML: {exc.problem or exc}", file=source, line=line) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=source) from exc
    if data is None or root is None:
        raise ConfigError(f"the file is empty; expected a '{list_key}:' list", file=source)
    # (line of the item, 0 for an unknown field, line): the file's order, and within an item a
    # misspelt field before the "Field required" it causes (``recipient:``, ``recipients``)
    found: list[tuple[tuple[int, int, int], ConfigError]] = []
    for key, where in _duplicate_keys(root):
        line = key.start_mark.line + 1
        message = f"duplicate key {key.value!r} (YAML would keep only the last one)"
        found.append(((line, 1, line), ConfigError(message, file=source, line=line, field=where)))
    parsed: M | None = None
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = [k for k in err["loc"] if isinstance(k, (int, str))]
            message = err["msg"]
            unknown = err["type"] == "extra_forbidden"
            if unknown:
                owner = _model_at(model, loc[:-1]) or model
                message = "unknown field (allowed: " + ", ".join(owner.model_fields) + ")"
            line = yaml_line(root, loc) or 0
            item = (yaml_line(root, loc[:2]) or 0) if len(loc) > 2 else line
            problem = ConfigError(
                message, file=source, line=line or None, field=_field_name(loc, data, list_key)
            )
            found.append(((item, 0 if unknown else 1, line), problem))
    for check in checks:
        found += [(((p.line or 0), 1, (p.line or 0)), p) for p in check(data, root, source)]
    if found:
        raise _all_problems([p for _, p in sorted(found, key=lambda f: f[0])])
    assert parsed is not None
    return parsed, root


def check_unique_ids(
    ids: Sequence[str], root: yaml.Node, source: str, list_key: str, what: str
) -> None:
    """Refuse an id used twice in the ``list_key`` list, pointing at the second use."""
    seen: dict[str, int] = {}
    for index, item_id in enumerate(ids):
        if item_id in seen:
            raise ConfigError(
                f"duplicate {what} id {item_id!r} (first used by {list_key}[{seen[item_id]}])",
                file=source,
                line=yaml_line(root, [list_key, index, "id"]),
                field=f"{list_key}[{index}].id",
            )
        seen[item_id] = index


def read_config_file(path: str | os.PathLike[str], what: str) -> str:
    """The text of a config file; a missing or undecodable file is a :class:`ConfigError`."""
    source = os.fspath(path)
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {what}: {exc.strerror or exc}", file=source) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text: {exc.reason}", file=source) from exc


def _raw_items(data: Any, list_key: str) -> list[tuple[int, dict[str, Any]]]:
    items = data.get(list_key) if isinstance(data, dict) else None
    if not isinstance(items, list):
        return []
    return [(i, item) for i, item in enumerate(items) if isinstance(item, dict)]


def _same_feed_twice(data: Any, root: yaml.Node, source: str) -> list[ConfigError]:
    """A feed id used twice, and two feeds with one URL (compared canonicalised: they would
    fetch the same articles under two ids)."""
    from .urls import InvalidURL, canonical_url

    problems: list[ConfigError] = []
    ids: dict[str, int] = {}
    urls: dict[str, int] = {}
    for index, item in _raw_items(data, "feeds"):
        feed_id, url = item.get("id"), item.get("url")
        if isinstance(feed_id, str) and feed_id.strip():
            first = ids.setdefault(feed_id.strip(), index)
            if first != index:
                problems.append(
                    ConfigError(
                        f"duplicate feed id {feed_id.strip()!r} (first used by feeds[{first}])",
                        file=source,
                        line=yaml_line(root, ["feeds", index, "id"]),
                        field=f"feeds[{index}].id",
                    )
                )
        if not isinstance(url, str):
            continue
        try:
            key = canonical_url(url.strip())
        except InvalidURL:
            continue  # reported by the schema
        first = urls.setdefault(key, index)
        if first != index:
            first_id = data["feeds"][first].get("id")
            problems.append(
                ConfigError(
                    f"the same URL as feeds[{first}]"
                    + (f" (id {first_id!r})" if first_id else "")
                    + ": each feed once, with one id",
                    file=source,
                    line=yaml_line(root, ["feeds", index, "url"]),
                    field=_field_name(["feeds", index, "url"], data),
                )
            )
    return problems


def parse_feeds(text: str, source: str = "<feeds>") -> list[FeedConfig]:
    """Parse and validate a feeds YAML document: every problem of it at once."""
    parsed, _ = load_yaml_model(text, source, _FeedsFile, "feeds", [_same_feed_twice])
    return parsed.feeds


def load_feeds(path: str | os.PathLike[str]) -> list[FeedConfig]:
    """Load and validate the feed list in ``path``."""
    return parse_feeds(read_config_file(path, "feeds file"), os.fspath(path))


# --- settings from the environment --------------------------------------------------------------


DEFAULT_ES_URL = "http://127.0.0.1:9200"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``24h``, ``7d``, ``2w`` → a timedelta."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 30m, 24h or 7d")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def default_config_dir() -> str:
    """``./config`` when it holds newsmon's config, else the one beside the source tree."""
    here = Path("config")
    if (here / "elasticsearch").is_dir():
        return str(here)
    return str(Path(__file__).resolve().parents[2] / "config")


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class FetchSettings:
    """How newsmon talks to the web."""

    user_agent: str = USER_AGENT
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    deadline: float = 30.0  # total seconds per request, redirects included
    max_bytes: int = 8 * 1024 * 1024  # after decompression
    max_redirects: int = 5
    allow_networks: tuple[Network, ...] = ()  # private addresses let through (tests, demos)
    workers: int = 8  # concurrent article downloads per run
    per_host: int = 2  # concurrent requests to one host
    host_interval: float = 0.0  # minimum seconds between two requests to one host
    robots: bool = True  # honour robots.txt for article downloads (sources/robots.py)
    max_crawl_delay: float = 30.0  # a robots.txt Crawl-delay is honoured up to this many seconds


def _cpu_count() -> int:
    return os.cpu_count() or 1


@dataclass(frozen=True)
class ExtractSettings:
    """How pages are extracted: in worker processes with limits (docs/isolation.md)."""

    isolation: bool = True  # False: in the calling thread, without limits (debugging)
    timeout: float = 30.0  # wall-clock seconds per page before its worker is killed
    memory_mb: int = 1024  # address-space limit of each worker process
    workers: int = field(default_factory=_cpu_count)  # worker processes
    pages_per_worker: int = 500  # a worker is replaced after this many pages


@dataclass(frozen=True)
class Settings:
    """Everything newsmon reads from its environment (``NEWSMON_*``)."""

    es_url: str = "http://127.0.0.1:9200"
    es_username: str | None = None
    es_password: str | None = None
    es_api_key: str | None = None
    es_ca_certs: str | None = None
    es_verify_certs: bool = True
    es_timeout: float = 30.0  # seconds per Elasticsearch request
    es_max_retries: int = 3  # retries of a request, and of each document a bulk write had refused
    es_retry_backoff: float = 1.0  # seconds before the first retry, doubled on each next one
    es_retry_backoff_max: float = 30.0  # the longest wait between two retries
    index_prefix: str = "newsmon-"
    config_dir: str = "config"
    feeds_file: str = "config/feeds.yaml"
    ingest_schedule: str = "*/15 * * * *"
    feed_batch_size: int = 5
    # `newsmon run` exits 4 when every feed failed, or more than this share of them (0..1)
    max_failed_feed_share: float = 1.0
    fetch: FetchSettings = field(default_factory=FetchSettings)
    extract: ExtractSettings = field(default_factory=ExtractSettings)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        local_node: Callable[[], str | None] | None = None,
    ) -> Settings:
        """Settings from ``NEWSMON_*`` variables. Without ``NEWSMON_ES_URL``: the URL that
        ``local_node`` finds (the CLI asks the node ``newsmon es up`` runs), else
        :data:`DEFAULT_ES_URL`."""
        env = os.environ if environ is None else environ
        reader = _EnvReader(env)
        fetch = FetchSettings(
            user_agent=reader.text("NEWSMON_USER_AGENT", USER_AGENT),
            connect_timeout=reader.number("NEWSMON_CONNECT_TIMEOUT", 5.0),
            read_timeout=reader.number("NEWSMON_READ_TIMEOUT", 15.0),
            deadline=reader.number("NEWSMON_FETCH_DEADLINE", 30.0),
            max_bytes=reader.integer("NEWSMON_MAX_BYTES", 8 * 1024 * 1024),
            max_redirects=reader.integer("NEWSMON_MAX_REDIRECTS", 5, minimum=0),
            allow_networks=reader.networks("NEWSMON_FETCH_ALLOW"),
            workers=reader.integer("NEWSMON_FETCH_WORKERS", 8),
            per_host=reader.integer("NEWSMON_FETCH_PER_HOST", 2),
            host_interval=reader.number("NEWSMON_FETCH_HOST_INTERVAL", 0.0, minimum=0.0),
            robots=reader.flag("NEWSMON_FETCH_ROBOTS", True),
            max_crawl_delay=reader.number("NEWSMON_FETCH_MAX_CRAWL_DELAY", 30.0, minimum=0.0),
        )
        extract = ExtractSettings(
            isolation=reader.flag("NEWSMON_EXTRACT_ISOLATION", True),
            timeout=reader.number("NEWSMON_EXTRACT_TIMEOUT", 30.0),
            memory_mb=reader.integer("NEWSMON_EXTRACT_MEMORY_MB", 1024, minimum=128),
            workers=reader.integer("NEWSMON_EXTRACT_WORKERS", _cpu_count()),
            pages_per_worker=reader.integer("NEWSMON_EXTRACT_PAGES_PER_WORKER", 500),
        )
        prefix = reader.text("NEWSMON_INDEX_PREFIX", "newsmon-")
        if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,40}", prefix):
            raise ConfigError(
                "must be lower-case letters, digits, '_', '.', '-' (an index name prefix)",
                file="environment",
                field="NEWSMON_INDEX_PREFIX",
            )
        config_dir = reader.text("NEWSMON_CONFIG_DIR", default_config_dir())
        failed_share = reader.number("NEWSMON_MAX_FAILED_FEED_SHARE", 1.0, minimum=0.0)
        if failed_share > 1.0:
            raise reader._error("NEWSMON_MAX_FAILED_FEED_SHARE", "must be a share from 0 to 1")
        return cls(
            es_url=reader.text("NEWSMON_ES_URL", "")
            or (local_node() if local_node else None)
            or DEFAULT_ES_URL,
            es_username=env.get("NEWSMON_ES_USERNAME") or None,
            es_password=env.get("NEWSMON_ES_PASSWORD") or None,
            es_api_key=env.get("NEWSMON_ES_API_KEY") or None,
            es_ca_certs=env.get("NEWSMON_ES_CA_CERTS") or None,
            es_verify_certs=reader.flag("NEWSMON_ES_VERIFY_CERTS", True),
            es_timeout=reader.number("NEWSMON_ES_TIMEOUT", 30.0),
            es_max_retries=reader.integer("NEWSMON_ES_MAX_RETRIES", 3, minimum=0),
            es_retry_backoff=reader.number("NEWSMON_ES_RETRY_BACKOFF", 1.0),
            es_retry_backoff_max=reader.number("NEWSMON_ES_RETRY_BACKOFF_MAX", 30.0),
            index_prefix=prefix,
            config_dir=config_dir,
            feeds_file=reader.text("NEWSMON_FEEDS", os.path.join(config_dir, "feeds.yaml")),
            ingest_schedule=reader.text("NEWSMON_INGEST_SCHEDULE", "*/15 * * * *"),
            feed_batch_size=reader.integer("NEWSMON_FEED_BATCH_SIZE", 5),
            max_failed_feed_share=failed_share,
            fetch=fetch,
            extract=extract,
        )


@dataclass(frozen=True)
class _EnvReader:
    env: Mapping[str, str]

    def _error(self, name: str, message: str) -> ConfigError:
        return ConfigError(
            f"{message} (got {self.env.get(name)!r})", file="environment", field=name
        )

    def text(self, name: str, default: str) -> str:
        return self.env.get(name, "").strip() or default

    def number(self, name: str, default: float, *, minimum: float = 0.001) -> float:
        raw = self.env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise self._error(name, "must be a number") from None
        if not math.isfinite(value):
            raise self._error(name, "must be a finite number")
        if value < minimum:
            raise self._error(name, f"must be at least {minimum:g}")
        return value

    def integer(self, name: str, default: int, *, minimum: int = 1) -> int:
        value = self.number(name, default, minimum=minimum)
        if not float(value).is_integer():
            raise self._error(name, "must be a whole number")
        return int(value)

    def flag(self, name: str, default: bool) -> bool:
        raw = self.env.get(name, "").strip().lower()
        if not raw:
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise self._error(name, "must be true or false")

    def networks(self, name: str) -> tuple[Network, ...]:
        out: list[Network] = []
        for item in self.env.get(name, "").replace(";", ",").split(","):
            if item.strip():
                try:
                    out.append(ipaddress.ip_network(item.strip(), strict=False))
                except ValueError:
                    raise self._error(
                        name, f"{item.strip()!r} is not an IP address or CIDR"
                    ) from None
        return tuple(out)
