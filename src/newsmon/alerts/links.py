"""The action links of alert emails, and what happens when one is used.

Links point at the newsmon pages in Airflow (``NEWSMON_ACTIONS_URL``, e.g.
``https://airflow.example.org/newsmon``) and carry a token signed with
``NEWSMON_ACTION_SECRET`` (or the password of the Airflow Connection ``newsmon_actions``).
Without both, emails go out without links (logged once per run).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from ..config import ConfigError
from ..store import Client, IndexNames
from ..store import actions as store
from ..store.client import es_iso
from ..store.stories import story_title
from .actions import Action, apply
from .email import AlertEmail, EmailLinks
from .tokens import DEFAULT_VALIDITY, TokenError, action_secret, sign, verify

__all__ = ["LinkSettings", "action_story_title", "email_links", "redeem", "token_state"]

log = logging.getLogger(__name__)

URL_ENV = "NEWSMON_ACTIONS_URL"


@dataclass(frozen=True)
class LinkSettings:
    """Where action links point and how they are signed; ``base_url`` None: no links."""

    base_url: str | None = None
    secret: bytes | None = None
    valid_for: timedelta = DEFAULT_VALIDITY

    @property
    def enabled(self) -> bool:
        return bool(self.base_url and self.secret)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, secret: bytes | None = None
    ) -> LinkSettings:
        env = os.environ if environ is None else environ
        base = env.get(URL_ENV, "").strip().rstrip("/") or None
        if base and not base.startswith(("http://", "https://")):
            raise ConfigError(
                f"must be an http(s) URL (got {base!r})", file="environment", field=URL_ENV
            )
        return cls(base, secret or action_secret(env))

    def url(self, path: str, action: Action, now: datetime) -> str:
        assert self.base_url and self.secret
        token = sign(action, self.secret, now=now, valid_for=self.valid_for)
        return f"{self.base_url}/{path}?t={quote(token, safe='')}"


def email_links(alert: AlertEmail, links: LinkSettings, *, now: datetime) -> EmailLinks | None:
    """The links of ``alert``: unsubscribe (its recipients), snooze, one mute per story."""
    if not links.enabled:
        return None
    rule = alert.rule_id
    assert links.base_url
    return EmailLinks(
        unsubscribe=links.url("act", Action("unsubscribe", rule, recipients=alert.recipients), now),
        snooze=links.url("act", Action("snooze", rule, snooze_for=timedelta(days=1)), now),
        mute=tuple(
            (item.story_id, links.url("act", Action("mute", rule, story_id=item.story_id), now))
            for item in alert.items
        ),
        page=f"{links.base_url}/rules/{quote(rule, safe='')}",
    )


def token_state(
    es: Client, names: IndexNames, token: str, secret: bytes, *, now: datetime | None = None
) -> tuple[Action, bool]:
    """The action of a valid token and whether it was used already (TokenError if invalid)."""
    action, nonce = verify(token, secret, now=now)
    return action, store.token_used(es, names, nonce)


def action_story_title(es: Client, names: IndexNames, action: Action) -> str | None:
    """The title of the story a mute names (None for another action or an untitled story)."""
    if action.kind != "mute" or not action.story_id:
        return None
    return story_title(es, names, action.story_id)


def redeem(
    es: Client,
    names: IndexNames,
    token: str,
    secret: bytes,
    *,
    recipient: str | None = None,
    now: datetime | None = None,
    via: str = "link",
) -> str:
    """Do what a link's token says, once: TokenError for a forged, expired or malformed token
    and for one used before (``reason`` ``replayed``); ``recipient`` picks the address of an
    unsubscribe link sent to several. What was done, as a sentence."""
    now = now or datetime.now(UTC)
    action, nonce = verify(token, secret, now=now)
    if store.token_used(es, names, nonce):
        raise TokenError("replayed", "this link was used already")
    if action.kind == "unsubscribe" and recipient:
        try:
            action = Action(
                "unsubscribe", action.rule_id, recipients=action.recipients, recipient=recipient
            )
        except ValueError as exc:
            raise TokenError("recipient", str(exc)) from None
    if action.kind == "unsubscribe" and action.address is None:
        raise TokenError("recipient", "choose the address to unsubscribe")
    done = apply(es, names, action, now=now, via=via)  # idempotent: a race of two uses is harmless
    if not store.use_token(es, names, nonce, {"at": es_iso(now), "action": action.kind}):
        raise TokenError("replayed", "this link was used already")
    return done
