"""Per-request plumbing: the typed app state, the actor, and the unit of work.

The web layer owns the transaction: one `unit_of_work` per request commits when the
endpoint's service call returns and rolls back when it raises.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from services.db import transaction
from services.policy import Actor
from web.settings import Settings


class AppState(TypedDict):
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def templates_of(request: Request) -> Jinja2Templates:
    templates: Jinja2Templates = request.app.state.templates
    return templates


def sessions_of(request: Request) -> async_sessionmaker[AsyncSession]:
    sessions: async_sessionmaker[AsyncSession] = request.state.sessions
    return sessions


def _is_loopback(request: Request) -> bool:
    if request.client is None:
        return False
    try:
        return ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:
        return False


async def current_actor(request: Request, session: AsyncSession) -> Actor:
    """Who is asking. Sign-in is not built yet: a development-like server with open local
    access shows everything to a browser on this machine; everyone else is anonymous."""
    settings = settings_of(request)
    if (
        settings.open_local_access
        and settings.environment.is_development_like
        and _is_loopback(request)
    ):
        return Actor.local_operator()
    return Actor.anonymous()


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@asynccontextmanager
async def unit_of_work(request: Request) -> AsyncIterator[tuple[AsyncSession, Actor]]:
    write = request.method not in SAFE_METHODS
    async with transaction(sessions_of(request), write=write) as session:
        actor = await current_actor(request, session)
        yield session, actor
