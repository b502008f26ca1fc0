"""The newsmon pages, a FastAPI app the Airflow API server mounts at ``/newsmon``.

Routes only: every page is a function of :mod:`newsmon.alerts.pages` over data from the core.
Pages that show data need an Airflow login (the JWT of the UI's ``_token`` cookie or an
``Authorization: Bearer`` header, checked by Airflow's auth manager); ``/act`` needs none —
only a valid, unexpired, unused signed token can act (docs/alerts.md).

(No ``from __future__ import annotations``: FastAPI reads the routes' annotations at runtime.)
"""

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from newsmon.alerts import pages
from newsmon.alerts.actions import honoured
from newsmon.alerts.links import action_story_title, redeem, token_state
from newsmon.alerts.preview import preview
from newsmon.alerts.rules import RuleSet, load_rules
from newsmon.alerts.settings import AlertSettings
from newsmon.alerts.status import alert_status, state_counts
from newsmon.alerts.tokens import TokenError, action_secret, check_secret, verify
from newsmon.config import ConfigError, Settings, load_feeds, parse_duration
from newsmon.health import failing_after_from_env, feed_health
from newsmon.store import Client, IndexNames, connect, ensure_indices

PREFIX = "/newsmon"
ACTIONS_CONN_ID = os.environ.get("NEWSMON_ACTIONS_CONN_ID", "newsmon_actions")
STATUS = {"forged": 403, "malformed": 400, "expired": 410, "replayed": 409, "recipient": 400}


@dataclass
class Context:
    """What the pages read: the store, the rules, the feeds, the signing secret."""

    settings: Settings
    es: Client
    names: IndexNames
    alert_settings: AlertSettings
    secret: bytes | None
    base: str = PREFIX  # where the app is mounted, for links
    kibana: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def rules(self) -> RuleSet:
        return load_rules(self.alert_settings.rules_file)


def _connection_secret() -> bytes | None:
    try:
        from airflow.models.connection import Connection

        conn = Connection.get_connection_from_secrets(ACTIONS_CONN_ID)
    except Exception:  # no such Connection (or no metadata DB): none
        return None
    return check_secret(conn.password, ACTIONS_CONN_ID) if conn.password else None


@cache
def default_context() -> Context:
    settings = Settings.from_env()
    es = connect(settings)
    names = IndexNames(settings.index_prefix)
    ensure_indices(es, names, settings.config_dir)
    alert_settings = AlertSettings.from_env(settings)
    kibana = alert_settings.kibana_url
    return Context(
        settings,
        es,
        names,
        alert_settings,
        action_secret() or _connection_secret(),
        kibana=f"{kibana}/app/dashboards#/view/newsmon-overview" if kibana else None,
    )


async def airflow_user(request: Request) -> object:
    """The Airflow user calling (401/403 without a valid login), allowed to see plugins."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import resolve_user_from_token

    header = request.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else None
    user = await resolve_user_from_token(token or request.cookies.get(COOKIE_NAME_JWT_TOKEN))
    if not get_auth_manager().is_authorized_view(access_view=AccessView.PLUGINS, user=user):
        raise HTTPException(403, "not allowed to see newsmon's pages")
    return user


def create_app(
    context: Callable[[], Context] = default_context,
    authenticate: Callable[[Request], Awaitable[object]] = airflow_user,
) -> FastAPI:
    """The app; ``context`` and ``authenticate`` are replaceable for tests."""
    app = FastAPI(title="newsmon", docs_url=None, redoc_url=None, openapi_url=None)
    Ctx = Annotated[Context, Depends(context)]
    User = Annotated[object, Depends(authenticate)]

    @app.exception_handler(HTTPException)
    async def _errors(request: Request, exc: HTTPException) -> HTMLResponse:
        if exc.status_code == 401 and request.method == "GET":
            return HTMLResponse(
                pages.error_page(
                    "Log in first",
                    "These pages need an Airflow login: open them from the Airflow UI.",
                    base=PREFIX,
                ),
                status_code=401,
            )
        return HTMLResponse(
            pages.error_page("Refused", str(exc.detail), base=PREFIX), status_code=exc.status_code
        )

    def html(text: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(
            text,
            status_code=status,
            headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
        )

    @app.get("/", response_class=HTMLResponse)
    def home(ctx: Ctx, _user: User) -> HTMLResponse:
        rule_set = ctx.rules()
        rows = alert_status(ctx.es, ctx.names, rule_set.rules)
        counts = state_counts(rows)
        return html(pages.home_page(rule_set.rules, counts, base=ctx.base, kibana=ctx.kibana))

    @app.get("/rules", response_class=HTMLResponse)
    def rules(ctx: Ctx, _user: User) -> HTMLResponse:
        rule_set = ctx.rules()
        counts = state_counts(alert_status(ctx.es, ctx.names, rule_set.rules))
        return html(pages.rules_page(rule_set.rules, counts, base=ctx.base, kibana=ctx.kibana))

    @app.get("/feeds", response_class=HTMLResponse)
    def feeds(ctx: Ctx, _user: User) -> HTMLResponse:
        now = datetime.now(UTC)
        after = failing_after_from_env()
        try:
            listed = load_feeds(ctx.settings.feeds_file)
        except ConfigError as exc:
            return html(pages.error_page("Feed list unreadable", str(exc), base=ctx.base), 503)
        rows = feed_health(ctx.es, ctx.names, listed, now=now, failing_after=after)
        return html(pages.feeds_page(rows, now, base=ctx.base, kibana=ctx.kibana))

    @app.get("/rules/{rule_id}", response_class=HTMLResponse)
    def rule(rule_id: str, ctx: Ctx, _user: User) -> HTMLResponse:
        rule_set = ctx.rules()
        found = next((r for r in rule_set.rules if r.id == rule_id), None)
        rows = alert_status(ctx.es, ctx.names, rule_set.rules, rule_id=rule_id)
        if found is None and not rows:
            raise HTTPException(404, f"no rule {rule_id}")
        honour = honoured(ctx.es, ctx.names, [rule_id])
        return html(
            pages.rule_page(
                found, rule_id, rows, honour, datetime.now(UTC), base=ctx.base, kibana=ctx.kibana
            )
        )

    @app.get("/rules/{rule_id}/backtest", response_class=HTMLResponse)
    def backtest(
        rule_id: str, ctx: Ctx, _user: User, since: Annotated[str, Query()] = "7d"
    ) -> HTMLResponse:
        try:
            found = ctx.rules().get(rule_id)
            window = parse_duration(since)
        except (ConfigError, ValueError) as exc:
            raise HTTPException(404 if isinstance(exc, ConfigError) else 400, str(exc)) from None
        result = preview(ctx.es, ctx.names, found, since=window)
        return html(pages.backtest_page(result, base=ctx.base, kibana=ctx.kibana))

    @app.get("/act", response_class=HTMLResponse)
    def confirm(ctx: Ctx, t: Annotated[str, Query(max_length=4096)] = "") -> HTMLResponse:
        secret = _secret(ctx)
        try:
            action, used = token_state(ctx.es, ctx.names, t, secret)
        except TokenError as exc:
            return html(pages.error_page("Link refused", str(exc), base=ctx.base), _code(exc))
        title = action_story_title(ctx.es, ctx.names, action)
        page = pages.action_page(action, t, used=used, base=ctx.base, story_title=title)
        return html(page, 409 if used else 200)

    @app.post("/act", response_class=HTMLResponse)
    def act(
        ctx: Ctx,
        t: Annotated[str, Query(max_length=4096)] = "",
        recipient: Annotated[str | None, Form(max_length=320)] = None,
    ) -> HTMLResponse:
        # RFC 8058: a one-click POST (body List-Unsubscribe=One-Click) or the confirm button
        secret = _secret(ctx)
        try:
            action, _nonce = verify(t, secret)
            done = redeem(ctx.es, ctx.names, t, secret, recipient=recipient)
        except TokenError as exc:
            return html(pages.error_page("Link refused", str(exc), base=ctx.base), _code(exc))
        title = action_story_title(ctx.es, ctx.names, action)
        return html(pages.done_page(done, base=ctx.base, action=action, story_title=title))

    @app.get("/index", include_in_schema=False)
    def index() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/")

    return app


def _secret(ctx: Context) -> bytes:
    if ctx.secret is None:
        raise HTTPException(
            503,
            "action links are not set up: NEWSMON_ACTION_SECRET or the newsmon_actions"
            " Connection is missing",
        )
    return ctx.secret


def _code(exc: TokenError) -> int:
    return STATUS.get(exc.reason, 400)
