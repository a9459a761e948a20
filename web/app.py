"""The application factory: `create_app(settings=None)` builds a fresh app; nothing global."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.templating import Jinja2Templates
from starlette.types import Receive, Scope, Send

from services import events, phases, reminders
from services.db import make_engine, make_sessionmaker, transaction
from services.lti_advantage import AdvantageClient
from services.mail import Mailer, deliver_round
from services.webhooks import WebhookSender
from web import lti_jobs, times
from web.broker import LocalBroker, make_broker, running
from web.context import AppState
from web.endpoints.papers import UPLOAD_ENVELOPE_BYTES, UPLOAD_PATHS
from web.errors import EXCEPTION_HANDLERS, UnavailableMiddleware
from web.live import HANDOFF, SERVER_SEND
from web.lti import LtiRuntime
from web.middleware import (
    BodyLimitMiddleware,
    NulGuardMiddleware,
    RequestStateMiddleware,
    SecurityHeadersMiddleware,
)
from web.oidc import make_oauth
from web.openapi import ApiRoute, build_document
from web.ratelimit import RateLimits
from web.routes import build_routes
from web.sessions import STATE_KEY, SessionMiddleware, SessionState
from web.settings import Settings, load_settings

TEMPLATES_DIR = Path(__file__).parent / "templates"
VERSION = "0.1.0"


def _template_context(request: Request) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    state = request.scope.get(STATE_KEY)

    def path_for(name: str, /, **params: Any) -> str:
        return str(request.app.url_path_for(name, **params))

    return {
        "path_for": path_for,
        "csp_nonce": request.scope.get("state", {}).get("csp_nonce", ""),
        "environment": settings.environment.value,
        "csrf_token": state.csrf_token if isinstance(state, SessionState) else None,
        # Set by endpoints that identify the caller (see web/endpoints/pages.py).
        "viewer": getattr(request.state, "viewer", None),
    }


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=TEMPLATES_DIR, context_processors=[_template_context])
    templates.env.autoescape = True
    # Times are formatted in one place (web/times.py), in the cohort's time zone.
    templates.env.filters["when"] = times.when
    templates.env.filters["deadline"] = times.deadline
    return templates


async def advance_phases_forever(
    sessions: async_sessionmaker[AsyncSession], broker: LocalBroker, seconds: int
) -> None:
    """Move assignments whose deadlines passed (auto_advance), every `seconds`."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await advance_phases_once(sessions, broker)
        except Exception:  # a failed round is retried next time; the app keeps serving
            logging.getLogger("peerboard.phases").exception("phase deadline round failed")


async def advance_phases_once(
    sessions: async_sessionmaker[AsyncSession], broker: LocalBroker
) -> list[int]:
    async with transaction(sessions) as session:
        moved = await phases.advance_due(session)
    for channel in events.channels_to_wake(session):
        await broker.publish(channel)
    # The same job reminds people of deadlines within 24 hours (once per person and deadline).
    async with transaction(sessions) as session:
        await reminders.remind_due(session)
    return moved


async def deliver_webhooks_forever(
    sessions: async_sessionmaker[AsyncSession], sender: WebhookSender, seconds: int
) -> None:
    """POST due webhook deliveries every `seconds` (each to one process, as the mail)."""
    while True:
        await asyncio.sleep(seconds)
        try:
            while sum((await sender.deliver_due(sessions)).values()) >= sender.batch:
                pass
        except Exception:  # a failed round is retried next time; the app keeps serving
            logging.getLogger("peerboard.webhooks").exception("webhook round failed")


def make_mailer(settings: Settings) -> Mailer | None:
    """The outbox's sender, or None when mail is off (PEERBOARD_SMTP_URL unset)."""
    smtp = settings.smtp
    if smtp is None:
        return None
    return Mailer(
        smtp=smtp, sender=settings.sender, base_url=settings.base_url, secret=settings.secret_key
    )


async def send_mail_forever(
    sessions: async_sessionmaker[AsyncSession], mailer: Mailer, seconds: int
) -> None:
    """Deliver the outbox every `seconds` (each message to one sender, whatever the number
    of app processes: see services/outbox.py)."""
    while True:
        try:
            await deliver_round(mailer, sessions)
        except Exception:  # a failed round is retried next time; the app keeps serving
            logging.getLogger("peerboard.mail").exception("mail round failed")
        await asyncio.sleep(seconds)


class PeerboardApp(Starlette):
    """Starlette, noting the server's own `send` in the scope: a live stream's body frames
    go straight to it (web/live.py) instead of through every middleware's wrapper, which
    only ever look at the response's start (measured: most of the cost of fanning an event
    out to a thousand subscribers, bench/sse_bench.py).

    A live stream also hands the rest of itself over once started (`HANDOFF`): it runs
    here, after every middleware and the endpoint have returned, so an open stream holds
    none of their frames and closures."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[SERVER_SEND] = send
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        handoff: list[Callable[[Receive, Send], Awaitable[None]]] = []
        scope[HANDOFF] = handoff
        await super().__call__(scope, receive, send)
        for rest in handoff:
            await rest(receive, send)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or load_settings()
    logging.basicConfig(level=logging.INFO)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[AppState]:
        engine = make_engine(settings.database_url)
        sessions = make_sessionmaker(engine)
        try:
            async with running(make_broker(settings.redis_url)) as broker:
                ticker = (
                    asyncio.create_task(
                        advance_phases_forever(sessions, broker, settings.phase_tick_seconds),
                        name="phase-deadlines",
                    )
                    if settings.phase_tick_seconds
                    else None
                )
                mailer = make_mailer(settings)
                sender = (
                    asyncio.create_task(
                        send_mail_forever(sessions, mailer, settings.mail_tick_seconds),
                        name="mail-sender",
                    )
                    if mailer is not None
                    else None
                )
                hooks = (
                    asyncio.create_task(
                        deliver_webhooks_forever(
                            sessions,
                            WebhookSender(allow_private=settings.webhooks_allow_private),
                            settings.webhook_tick_seconds,
                        ),
                        name="webhook-sender",
                    )
                    if settings.webhook_tick_seconds
                    else None
                )
                lti_job = (
                    asyncio.create_task(
                        lti_jobs.run_forever(
                            sessions, app.state.lti_services, settings, app.state.lti_wake
                        ),
                        name="lti-services",
                    )
                    if settings.lti_tick_seconds
                    else None
                )
                try:
                    yield {"engine": engine, "sessions": sessions, "broker": broker}
                finally:
                    for task in (ticker, sender, hooks, lti_job):
                        if task is not None:
                            task.cancel()
                            with contextlib.suppress(asyncio.CancelledError):
                                await task
        finally:
            await app.state.rate_limits.close()
            await engine.dispose()

    routes = build_routes()
    app = PeerboardApp(
        routes=routes,
        middleware=[
            Middleware(RequestStateMiddleware),
            Middleware(TrustedHostMiddleware, allowed_hosts=settings.trusted_hosts),
            Middleware(SecurityHeadersMiddleware, hsts=settings.is_https),
            Middleware(
                BodyLimitMiddleware,
                max_body_bytes=settings.max_body_bytes,
                upload_bytes=max(
                    settings.max_body_bytes, settings.max_upload_bytes + UPLOAD_ENVELOPE_BYTES
                ),
                upload_paths=UPLOAD_PATHS,
            ),
            Middleware(NulGuardMiddleware),
            Middleware(UnavailableMiddleware),
            Middleware(
                SessionMiddleware,
                secure=settings.is_https,
                idle_minutes=settings.session_idle_minutes,
                max_hours=settings.session_max_hours,
            ),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.templates = make_templates()
    app.state.oauth = make_oauth(settings)
    app.state.lti = LtiRuntime()  # LTI platforms' key sets, cached per app
    app.state.lti_services = AdvantageClient()  # LTI Advantage access tokens, cached per app
    app.state.lti_wake = asyncio.Event()  # a launch asks the LTI job for a round now
    app.state.rate_limits = RateLimits(settings.redis_url, settings.rate_limits)
    app.state.openapi = build_document(
        [
            (route.path_format, method.lower(), route.name, route.operation, route.param_convertors)
            for route in routes
            if isinstance(route, ApiRoute)
            for method in sorted(route.methods or ())
            if method != "HEAD"
        ],
        title="Peerboard API",
        version=VERSION,
    )
    return app
