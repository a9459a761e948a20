"""Personal access tokens: for programs that call the API as a person. Shown once, stored
as a SHA-256 hash (tokens are 256 random bits, so a plain hash is enough), revocable, and
optionally expiring."""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Collection
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.cohorts import clean_name
from services.errors import Invalid, NotFound, Problem
from services.models import ApiToken, Membership, User, utcnow
from services.policy import Actor, actor_with_roles
from services.views import TokenView

TOKEN_PREFIX = "pbt_"  # noqa: S105 (a public marker, not a secret)
MAX_TOKENS_PER_USER = 50
MAX_EXPIRY_DAYS = 366
LAST_USED_RESOLUTION = timedelta(minutes=5)


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def present_token(token: ApiToken) -> TokenView:
    assert token.id is not None
    return TokenView(
        id=token.id,
        name=token.name,
        prefix=token.prefix,
        created_at=token.created_at,
        expires_at=token.expires_at,
        last_used_at=token.last_used_at,
        revoked=token.revoked_at is not None,
    )


async def create_token(
    session: AsyncSession, *, actor: Actor, name: str, expires_in_days: int | None
) -> tuple[str, ApiToken]:
    """A signed-in person creates a token for themselves; the raw value is returned once."""
    if actor.user_id is None:
        raise NotFound("No such page.")
    name = clean_name(name, field="name", limit=100)
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
        raise Invalid(
            problems=[Problem(f"must be between 1 and {MAX_EXPIRY_DAYS}", field="expires_in_days")]
        )
    live = await session.scalar(
        select(func.count()).where(
            ApiToken.user_id == actor.user_id, col(ApiToken.revoked_at).is_(None)
        )
    )
    if (live or 0) >= MAX_TOKENS_PER_USER:
        raise Invalid(f"You already have {MAX_TOKENS_PER_USER} tokens; revoke one first.")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=actor.user_id,
        name=name,
        token_hash=_hash(raw),
        prefix=raw[: len(TOKEN_PREFIX) + 6],
        expires_at=utcnow() + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    session.add(token)
    await session.flush()
    return raw, token


async def list_tokens(session: AsyncSession, *, actor: Actor) -> list[ApiToken]:
    """A person sees their own tokens (never the secret)."""
    if actor.user_id is None:
        return []
    rows = await session.execute(
        select(ApiToken)
        .where(ApiToken.user_id == actor.user_id)
        .order_by(col(ApiToken.created_at).desc(), col(ApiToken.id).desc())
    )
    return list(rows.scalars())


async def revoke_token(session: AsyncSession, *, actor: Actor, token_id: int) -> ApiToken:
    """Only the token's owner revokes it; revoking twice is harmless."""
    token = await session.get(ApiToken, token_id)
    if token is None or actor.user_id is None or token.user_id != actor.user_id:
        raise NotFound("No such token.")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        await session.flush()
    return token


async def authenticate(session: AsyncSession, *, raw: str) -> tuple[User, ApiToken, Actor] | None:
    """The person a live token belongs to, the token, and the person as an actor with their
    cohort roles right now; or None (unknown, revoked or expired). Reads only: the caller
    records use with `touch` in a write unit when `needs_touch` says so."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 128:
        return None
    # The token, its person and their memberships in one round trip (a row per membership):
    # this runs on every API request.
    rows = (await session.execute(_token_query(), {"token_hash": _hash(raw)})).all()
    if not rows:
        return None
    token, user = rows[0][0], rows[0][1]
    if token.revoked_at is not None:
        return None
    if token.expires_at is not None and token.expires_at <= utcnow():
        return None
    assert user.id is not None
    held = [(cohort, role) for _, _, cohort, role in rows if cohort is not None]
    return user, token, actor_with_roles(user.id, is_administrator=user.is_administrator, held=held)


@functools.cache
def _token_query() -> Any:
    """A token by hash (bind parameter `token_hash`), its person and their memberships:
    built once, every API request asks."""
    return (
        sa.select(ApiToken, User, col(Membership.cohort_id), col(Membership.role))
        .join(User, col(User.id) == col(ApiToken.user_id))
        .outerjoin(Membership, col(Membership.user_id) == col(User.id))
        .where(col(ApiToken.token_hash) == sa.bindparam("token_hash"))
    )


def needs_touch(token: ApiToken) -> bool:
    return token.last_used_at is None or utcnow() - token.last_used_at >= LAST_USED_RESOLUTION


async def touch(session: AsyncSession, *, token_id: int) -> None:
    token = await session.get(ApiToken, token_id)
    if token is not None:
        token.last_used_at = utcnow()
        await session.flush()


async def live_token_ids(session: AsyncSession, *, ids: Collection[int]) -> set[int]:
    """Which of these tokens still work (not revoked, not expired): one query for many
    long-lived streams re-checking their callers."""
    if not ids:
        return set()
    rows = await session.execute(
        select(col(ApiToken.id)).where(
            col(ApiToken.id).in_(list(ids)),
            col(ApiToken.revoked_at).is_(None),
            sa.or_(col(ApiToken.expires_at).is_(None), col(ApiToken.expires_at) > utcnow()),
        )
    )
    return {i for i in rows.scalars() if i is not None}
