"""Server-side session middleware (pure ASGI).

Each request gets `scope["session"]` (the dict Authlib keeps its pending sign-in state in)
and a `SessionState` at `scope["peerboard.session"]`. The cookie holds only a random key;
the row in `web_sessions` holds the person, the CSRF token and the data. Changes are
written just before the response starts, so a new or rotated key can be set as a cookie.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from http.cookies import SimpleCookie
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services import websessions
from services.db import transaction
from services.models import WebSession
from services.websessions import SessionPolicy

log = logging.getLogger("peerboard.sessions")
STATE_KEY = "peerboard.session"
# Origins allowed to frame this session's pages (set by an LTI launch from an LMS); read by
# SecurityHeadersMiddleware for its frame-ancestors, and the reason this session's cookie is
# SameSite=None; Partitioned (the LMS shows Peerboard in a cross-site iframe).
FRAME_KEY = "frame_ancestors"
FRAME_SCOPE_KEY = "peerboard.frame_ancestors"


class TrackingDict(dict[str, Any]):
    """A dict that remembers whether it was changed."""

    modified = False

    def __setitem__(self, key: str, value: Any) -> None:
        self.modified = True
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.modified = True
        super().__delitem__(key)

    def pop(self, key: str, *default: Any) -> Any:
        self.modified = self.modified or key in self
        return super().pop(key, *default)

    def clear(self) -> None:
        self.modified = self.modified or bool(self)
        super().clear()

    def update(self, *args: Any, **kwargs: Any) -> None:
        self.modified = True
        super().update(*args, **kwargs)

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self.modified = True
        return super().setdefault(key, default)


class SessionState:
    """What this request knows and wants to change about its browser session."""

    def __init__(self, key: str | None, row: WebSession | None) -> None:
        self.key = key
        self.session_id: int | None = row.id if row else None
        self.user_id: int | None = row.user_id if row else None
        self.csrf_token: str | None = row.csrf_token if row else None
        self.needs_touch = row is not None and websessions.needs_touch(row)
        self.data = TrackingDict(row.data if row else {})
        self._login_user_id: int | None = None
        self._logout = False

    def login(self, user_id: int, *, framed_by: list[str] | None = None) -> None:
        """Start a signed-in session with a new key (the old key dies: no session fixation).
        `framed_by`: the LMS origins whose iframe this session lives in (an LTI launch)."""
        self._login_user_id = user_id
        if framed_by:
            self.data[FRAME_KEY] = list(framed_by)
        else:
            self.data.pop(FRAME_KEY, None)

    @property
    def framed(self) -> bool:
        return bool(self.data.get(FRAME_KEY))

    def logout(self) -> None:
        self._logout = True


class SessionMiddleware:
    def __init__(self, app: ASGIApp, *, secure: bool, idle_minutes: int, max_hours: int) -> None:
        self.app = app
        self.secure = secure
        # The __Host- prefix makes the browser refuse the cookie unless it is Secure, has
        # Path=/ and no Domain: a sibling subdomain cannot plant one.
        self.cookie_name = "__Host-peerboard" if secure else "peerboard_session"
        self.policy = SessionPolicy(
            idle_timeout=timedelta(minutes=idle_minutes),
            absolute_timeout=timedelta(hours=max_hours),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sessions: async_sessionmaker[AsyncSession] = scope["state"]["sessions"]
        key = self._cookie(scope)
        row: WebSession | None = None
        if key:
            async with transaction(sessions, write=False) as db:
                row = await websessions.load(db, key=key, policy=self.policy)
        state = SessionState(key if row else None, row)
        scope["session"] = state.data
        scope[STATE_KEY] = state
        if state.framed and FRAME_SCOPE_KEY not in scope:
            scope[FRAME_SCOPE_KEY] = list(state.data[FRAME_KEY])
        # A cookie for a session that no longer exists is cleared on the way out.
        stale_cookie = bool(key) and row is None

        async def send_with_session(message: Message) -> None:
            if message["type"] == "http.response.start":
                cookie = await self._persist(sessions, state)
                if cookie is None and stale_cookie:
                    cookie = self._expired_cookie(framed=False)
                if cookie is not None:
                    headers = MutableHeaders(scope=message)
                    headers.append("Set-Cookie", cookie)
                    headers.append("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_session)

    def _cookie(self, scope: Scope) -> str | None:
        for name, value in scope["headers"]:
            if name == b"cookie":
                jar: SimpleCookie = SimpleCookie()
                try:
                    jar.load(value.decode("latin-1"))
                except Exception:  # a malformed Cookie header is simply no session
                    return None
                morsel = jar.get(self.cookie_name)
                if morsel is not None:
                    return morsel.value
        return None

    async def _persist(
        self, sessions: async_sessionmaker[AsyncSession], state: SessionState
    ) -> str | None:
        """Write what changed; return a Set-Cookie value when the browser must learn of it."""
        login, logout = state._login_user_id, state._logout
        if not (login or logout or state.data.modified or state.needs_touch):
            return None
        async with transaction(sessions) as db:
            if logout:
                if state.key:
                    await websessions.end(db, key=state.key)
                return self._expired_cookie(framed=state.framed)
            if login is not None:
                if state.key:
                    await websessions.end(db, key=state.key)
                await websessions.purge_expired(db, policy=self.policy)
                data = {k: v for k, v in state.data.items() if not k.startswith("_state_")}
                key, _ = await websessions.create(db, policy=self.policy, user_id=login, data=data)
                return self._cookie_value(key, framed=state.framed)
            if state.session_id is not None:
                changed = dict(state.data) if state.data.modified else None
                await websessions.save(db, session_id=state.session_id, data=changed)
                return None
            key, _ = await websessions.create(db, policy=self.policy, data=dict(state.data))
            return self._cookie_value(key, framed=state.framed)

    def _attributes(self, *, framed: bool) -> str:
        if framed and self.secure:
            # Inside the LMS's iframe the site is third-party: SameSite=None lets the cookie
            # be sent there, and Partitioned (CHIPS) keeps it to this LMS's partition, which
            # is also what browsers that block third-party cookies still accept.
            return "Path=/; HttpOnly; Secure; SameSite=None; Partitioned"
        secure = "; Secure" if self.secure else ""
        return f"Path=/; HttpOnly; SameSite=Lax{secure}"

    def _cookie_value(self, key: str, *, framed: bool = False) -> str:
        max_age = int(self.policy.absolute_timeout.total_seconds())
        return f"{self.cookie_name}={key}; Max-Age={max_age}; {self._attributes(framed=framed)}"

    def _expired_cookie(self, *, framed: bool = False) -> str:
        return f"{self.cookie_name}=; Max-Age=0; {self._attributes(framed=framed)}"
