"""Server-side sessions for browsers. The cookie carries a random key; only its SHA-256 is
stored, with the signed-in person, a CSRF token and small state (such as a pending
sign-in's OIDC state). Ending a session deletes the row, so a copied cookie stops working.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.models import WebSession, utcnow

# Writing last_seen_at on every request would turn every page view into a write.
TOUCH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True)
class SessionPolicy:
    idle_timeout: timedelta = timedelta(hours=12)
    absolute_timeout: timedelta = timedelta(days=7)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return secrets.token_urlsafe(32)


async def load(
    session: AsyncSession, *, key: str, policy: SessionPolicy, now: datetime | None = None
) -> WebSession | None:
    """The live session for a cookie key, or None if unknown, idle too long, or too old.
    Reads only; dead rows are removed by `purge_expired`."""
    if not key or len(key) > 128:
        return None
    now = now or utcnow()
    row = await session.scalar(select(WebSession).where(WebSession.key_hash == hash_key(key)))
    if row is None:
        return None
    if row.expires_at <= now or row.last_seen_at + policy.idle_timeout <= now:
        return None
    return row


async def create(
    session: AsyncSession,
    *,
    policy: SessionPolicy,
    user_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> tuple[str, WebSession]:
    """A new session with a fresh key and CSRF token; returns the key for the cookie."""
    key = new_key()
    now = utcnow()
    row = WebSession(
        key_hash=hash_key(key),
        user_id=user_id,
        csrf_token=secrets.token_urlsafe(32),
        data=dict(data or {}),
        created_at=now,
        last_seen_at=now,
        expires_at=now + policy.absolute_timeout,
    )
    session.add(row)
    await session.flush()
    return key, row


async def save(
    session: AsyncSession, *, session_id: int, data: dict[str, Any] | None = None
) -> None:
    """Store changed state (if given) and note activity."""
    values: dict[str, Any] = {"last_seen_at": utcnow()}
    if data is not None:
        values["data"] = dict(data)
    await session.execute(
        update(WebSession).where(col(WebSession.id) == session_id).values(**values)
    )


def needs_touch(row: WebSession, now: datetime | None = None) -> bool:
    return (now or utcnow()) - row.last_seen_at >= TOUCH_INTERVAL


async def end(session: AsyncSession, *, key: str) -> None:
    """Sign out: the row goes, and with it every copy of the cookie."""
    await session.execute(delete(WebSession).where(col(WebSession.key_hash) == hash_key(key)))


async def end_all_for_user(session: AsyncSession, *, user_id: int) -> None:
    await session.execute(delete(WebSession).where(col(WebSession.user_id) == user_id))


async def purge_expired(session: AsyncSession, *, policy: SessionPolicy) -> int:
    """Delete sessions past their absolute or idle timeout; returns how many."""
    now = utcnow()
    result = await session.execute(
        delete(WebSession).where(
            (col(WebSession.expires_at) <= now)
            | (col(WebSession.last_seen_at) <= now - policy.idle_timeout)
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def live_ids(
    session: AsyncSession, *, ids: Collection[int], now: datetime | None = None
) -> set[int]:
    """Which of these sessions still exist and have not reached their absolute expiry (signed
    out sessions are deleted): one query for many long-lived streams."""
    if not ids:
        return set()
    rows = await session.execute(
        select(col(WebSession.id)).where(
            col(WebSession.id).in_(list(ids)), col(WebSession.expires_at) > (now or utcnow())
        )
    )
    return {i for i in rows.scalars() if i is not None}
