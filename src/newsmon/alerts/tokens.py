"""Signed, expiring tokens naming one action: what the links in alert emails carry.

A token is ``base64url(payload).base64url(HMAC-SHA256(secret, payload))``; the payload (JSON)
names the action, its rule and target, when it expires and a random nonce (so each link can
be used once: :func:`newsmon.store.actions.use_token`). Nothing in it is secret, only
unforgeable. See docs/alerts.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from ..config import ConfigError
from .actions import Action

__all__ = [
    "DEFAULT_VALIDITY",
    "MIN_SECRET_BYTES",
    "SECRET_ENV",
    "TokenError",
    "action_secret",
    "sign",
    "verify",
]

SECRET_ENV = "NEWSMON_ACTION_SECRET"  # noqa: S105  (the variable name, not a secret)
MIN_SECRET_BYTES = 16
DEFAULT_VALIDITY = timedelta(days=30)
MAX_TOKEN = 4096


class TokenError(ValueError):
    """A token that may not act: forged, expired, malformed (``reason`` says which)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def action_secret(environ: Mapping[str, str] | None = None) -> bytes | None:
    """The signing secret from ``NEWSMON_ACTION_SECRET`` (None when unset; too short: error)."""
    env = os.environ if environ is None else environ
    raw = env.get(SECRET_ENV, "").strip()
    if not raw:
        return None
    return check_secret(raw, SECRET_ENV)


def check_secret(raw: str, where: str) -> bytes:
    secret = raw.encode("utf-8")
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"must be at least {MIN_SECRET_BYTES} characters (e.g. `openssl rand -hex 32`)",
            file="environment" if where == SECRET_ENV else where,
            field=SECRET_ENV if where == SECRET_ENV else "password",
        )
    return secret


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, b"newsmon-action\n" + payload, hashlib.sha256).digest()


def sign(
    action: Action,
    secret: bytes,
    *,
    now: datetime | None = None,
    valid_for: timedelta = DEFAULT_VALIDITY,
    nonce: str | None = None,
) -> str:
    """A token for ``action``, valid for ``valid_for`` from ``now``."""
    now = now or datetime.now(UTC)
    payload = {
        **action.as_payload(),
        "exp": int((now + valid_for).timestamp()),
        "n": nonce or secrets.token_urlsafe(12),
    }
    data = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return f"{_b64(data)}.{_b64(_mac(secret, data))}"


def verify(token: str, secret: bytes, *, now: datetime | None = None) -> tuple[Action, str]:
    """The action a token names and its nonce; raises :class:`TokenError` for a token that
    was not signed with ``secret``, is malformed, or has expired."""
    now = now or datetime.now(UTC)
    if not token or len(token) > MAX_TOKEN or token.count(".") != 1:
        raise TokenError("malformed", "this link is not a newsmon action link")
    body, mac = token.split(".")
    try:
        data, given = _unb64(body), _unb64(mac)
    except (binascii.Error, ValueError):
        raise TokenError("malformed", "this link is not a newsmon action link") from None
    if not hmac.compare_digest(given, _mac(secret, data)):
        raise TokenError("forged", "this link's signature is not valid")
    try:
        payload = json.loads(data)
        expires = datetime.fromtimestamp(int(payload["exp"]), UTC)
        nonce = str(payload["n"])
        action = Action.from_payload(payload)
    except (ValueError, KeyError, TypeError):
        raise TokenError("malformed", "this link does not name an action") from None
    if now >= expires:
        raise TokenError("expired", f"this link expired on {expires:%Y-%m-%d %H:%M} UTC")
    return action, nonce
