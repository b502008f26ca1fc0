"""How alerts run: ``NEWSMON_ALERTS*`` and ``NEWSMON_KIBANA_*`` from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from ..config import ConfigError, Settings, _EnvReader, parse_duration

__all__ = ["AlertSettings", "parse_duration"]


@dataclass(frozen=True)
class AlertSettings:
    """How alerts run (``NEWSMON_ALERTS*``, ``NEWSMON_KIBANA_*``)."""

    rules_file: str = "config/alerts.yaml"
    kibana_url: str | None = None
    kibana_data_view: str | None = None
    lag: timedelta = timedelta(seconds=15)  # indexed_at this recent waits for the next run
    first_lookback: timedelta = timedelta(days=1)  # what a new rule sees on its first run
    retry_after: timedelta = timedelta(minutes=5)  # first retry of a 4xx; doubles, up to 2 h
    claim_timeout: timedelta = timedelta(minutes=10)  # a batch "sending" longer is taken over
    max_attempts: int = 12  # 4xx/connection retries of one email before it is given up (~15 h)
    presearch_from: int = 20_000  # rules sharing a window from which it runs; 0: never
    local_snippets: bool = True  # snippets made in Python where it can (alerts.snippets)

    @classmethod
    def from_env(
        cls, settings: Settings, environ: Mapping[str, str] | None = None
    ) -> AlertSettings:
        env = os.environ if environ is None else environ
        reader = _EnvReader(env)

        def duration(name: str, default: timedelta, *, positive: bool = False) -> timedelta:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                value = parse_duration(raw)
            except ValueError as exc:
                raise ConfigError(str(exc), file="environment", field=name) from None
            if positive and value <= timedelta(0):
                raise ConfigError(
                    f"must be longer than 0 (got {raw!r})", file="environment", field=name
                )
            return value

        kibana = env.get("NEWSMON_KIBANA_URL", "").strip().rstrip("/") or None
        if kibana and not kibana.startswith(("http://", "https://")):
            raise ConfigError(
                f"must be an http(s) URL (got {kibana!r})",
                file="environment",
                field="NEWSMON_KIBANA_URL",
            )
        return cls(
            rules_file=reader.text(
                "NEWSMON_ALERTS", os.path.join(settings.config_dir, "alerts.yaml")
            ),
            kibana_url=kibana,
            kibana_data_view=env.get("NEWSMON_KIBANA_DATA_VIEW", "").strip() or None,
            lag=duration("NEWSMON_ALERTS_LAG", cls.lag),
            first_lookback=duration("NEWSMON_ALERTS_FIRST_LOOKBACK", cls.first_lookback),
            retry_after=duration("NEWSMON_ALERTS_RETRY_AFTER", cls.retry_after),
            claim_timeout=duration(
                "NEWSMON_ALERTS_CLAIM_TIMEOUT", cls.claim_timeout, positive=True
            ),
            max_attempts=reader.integer("NEWSMON_ALERTS_MAX_ATTEMPTS", cls.max_attempts),
            presearch_from=reader.integer(
                "NEWSMON_ALERTS_PRESEARCH_FROM", cls.presearch_from, minimum=0
            ),
            local_snippets=reader.flag("NEWSMON_ALERTS_LOCAL_SNIPPETS", cls.local_snippets),
        )
