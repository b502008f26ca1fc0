"""Where Kibana is and how to log in: :class:`KibanaSettings`, from ``NEWSMON_KIBANA_*``."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..config import ConfigError, _EnvReader

_SPACE = re.compile(r"^[a-z0-9_-]{1,100}$")


@dataclass(frozen=True)
class KibanaSettings:
    """Where Kibana is and how to log in (``NEWSMON_KIBANA_*``)."""

    url: str = "http://127.0.0.1:5601"
    username: str | None = None
    password: str | None = None
    api_key: str | None = None
    space: str = "default"
    wait: float = 300.0  # seconds to wait for Kibana to become available
    request_timeout: float = 60.0
    poll_interval: float = 2.0

    def __post_init__(self) -> None:
        def bad(message: str, name: str) -> ConfigError:
            return ConfigError(message, file="command line or environment", field=name)

        if not self.url.startswith(("http://", "https://")):
            raise bad(f"must be an http(s) URL (got {self.url!r})", "NEWSMON_KIBANA_URL / --url")
        if (self.username is None) != (self.password is None):
            raise bad("a username needs a password and a password a username", "--username")
        if self.api_key and self.username:
            raise bad("use either a username and password or an API key", "--api-key")
        if not _SPACE.match(self.space):
            raise bad(
                f"a space id is lower-case letters, digits, _ and - (got {self.space!r})",
                "NEWSMON_KIBANA_SPACE / --space",
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> KibanaSettings:
        env = os.environ if environ is None else environ
        reader = _EnvReader(env)
        values: dict[str, Any] = {
            "url": reader.text("NEWSMON_KIBANA_URL", cls.url).rstrip("/"),
            "username": env.get("NEWSMON_KIBANA_USERNAME") or None,
            "password": env.get("NEWSMON_KIBANA_PASSWORD") or None,
            "api_key": env.get("NEWSMON_KIBANA_API_KEY") or None,
            "space": reader.text("NEWSMON_KIBANA_SPACE", cls.space),
            "wait": reader.number("NEWSMON_KIBANA_WAIT", cls.wait, minimum=0),
        }
        given = {k: v for k, v in overrides.items() if v is not None}
        if "username" in given or "api_key" in given:  # the command line replaces all auth
            values.update(username=None, password=None, api_key=None)
        values.update(given)
        values["url"] = str(values["url"]).rstrip("/")
        return cls(**values)

    def api(self, path: str) -> str:
        space = "" if self.space == "default" else f"/s/{self.space}"
        return f"{self.url}{space}{path}"
