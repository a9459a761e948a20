"""Per-request plumbing: the typed app state, who is asking, CSRF, and the unit of work.

The web layer owns the transaction: one `unit_of_work` per request commits when the
endpoint's service call returns and rolls back when it raises.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypedDict

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from services import events, policy, tokens
from services.db import transaction
from services.models import User
from services.policy import Actor
from web.broker import LocalBroker
from web.errors import ApiError
from web.sessions import STATE_KEY, SessionState
from web.settings import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"


class AppState(TypedDict):
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    broker: LocalBroker


@dataclass(frozen=True)
class Caller:
    """The actor, the person behind it (if any) and how they proved it."""

    actor: Actor
    user: User | None
    via: str | None  # "session", "token" or None


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def templates_of(request: Request) -> Jinja2Templates:
    templates: Jinja2Templates = request.app.state.templates
    return templates


def sessions_of(request: Request) -> async_sessionmaker[AsyncSession]:
    sessions: async_sessionmaker[AsyncSession] = request.state.sessions
    return sessions


def broker_of(request: Request) -> LocalBroker:
    broker: LocalBroker = request.state.broker
    return broker


def session_state(request: Request) -> SessionState | None:
    state = request.scope.get(STATE_KEY)
    return state if isinstance(state, SessionState) else None


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError(
            401,
            "Use 'Authorization: Bearer <personal access token>'.",
            code="invalid_token",
            headers={"WWW-Authenticate": 'Bearer error="invalid_request"'},
        )
    return value.strip()


async def identify(request: Request, session: AsyncSession) -> Caller:
    """Who is asking: a personal access token wins over the browser session."""
    raw = _bearer(request)
    if raw is not None:
        found = await tokens.authenticate(session, raw=raw)
        if found is None:
            raise ApiError(
                401,
                "The access token is unknown, revoked or expired.",
                code="invalid_token",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        user, token, actor = found
        if tokens.needs_touch(token):
            request.state.touch_token_id = token.id
        return Caller(actor, user, "token")
    state = session_state(request)
    if state is not None and state.user_id is not None:
        person = await session.get(User, state.user_id)
        if person is not None:
            return Caller(await _actor_for(session, person), person, "session")
    return Caller(Actor.anonymous(), None, None)


async def _actor_for(session: AsyncSession, user: User) -> Actor:
    assert user.id is not None
    # Roles are read on every request, so a removed member loses access at once.
    return await policy.load_actor(session, user_id=user.id, is_administrator=user.is_administrator)


def check_csrf(request: Request, caller: Caller, form_token: str | None) -> None:
    """Unsafe requests that a cookie authenticates must carry the session's CSRF token, in
    the X-CSRF-Token header (API) or the csrf_token form field (pages)."""
    if request.method in SAFE_METHODS or caller.via != "session":
        return
    state = session_state(request)
    expected = state.csrf_token if state else None
    sent = request.headers.get(CSRF_HEADER) or form_token or ""
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise ApiError(
            403,
            "This form or request is missing its security token, or it has expired. "
            "Reload the page and try again.",
            code="csrf_failed",
        )


@asynccontextmanager
async def unit_of_work(
    request: Request, *, form_csrf: str | None = None
) -> AsyncIterator[tuple[AsyncSession, Actor]]:
    async with unit_of_work_caller(request, form_csrf=form_csrf) as (session, caller):
        yield session, caller.actor


@asynccontextmanager
async def unit_of_work_caller(
    request: Request, *, form_csrf: str | None = None, inline: bool = False
) -> AsyncIterator[tuple[AsyncSession, Caller]]:
    """A unit for this request, its caller identified. `inline`: its statements are few and
    small, and on SQLite run without thread trips (`services.db.transaction`)."""
    write = request.method not in SAFE_METHODS
    async with transaction(sessions_of(request), write=write, inline=inline) as session:
        caller = await identify(request, session)
        check_csrf(request, caller, form_csrf)
        yield session, caller
    # Committed: now wake live subscribers of whatever changed (never before commit, or a
    # subscriber could read the database before the change is visible).
    for channel in events.channels_to_wake(session):
        await broker_of(request).publish(channel)
    token_id = getattr(request.state, "touch_token_id", None)
    if token_id is not None:
        async with transaction(sessions_of(request)) as session:
            await tokens.touch(session, token_id=token_id)
