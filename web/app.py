"""The application factory: `create_app(settings=None)` builds a fresh app; nothing global."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from services import events, phases
from services.db import make_engine, make_sessionmaker, transaction
from web.broker import LocalBroker, make_broker, running
from web.context import AppState
from web.errors import EXCEPTION_HANDLERS, UnavailableMiddleware
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
    return moved


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
                try:
                    yield {"engine": engine, "sessions": sessions, "broker": broker}
                finally:
                    if ticker is not None:
                        ticker.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await ticker
        finally:
            await app.state.rate_limits.close()
            await engine.dispose()

    routes = build_routes()
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestStateMiddleware),
            Middleware(TrustedHostMiddleware, allowed_hosts=settings.trusted_hosts),
            Middleware(SecurityHeadersMiddleware, hsts=settings.is_https),
            Middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes),
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
    app.state.rate_limits = RateLimits(settings.redis_url)
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
