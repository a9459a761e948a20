"""Idempotency keys for creating requests: the first answer is stored in the same transaction
as what it created, and a retry with the same key gets that answer back, creating nothing.

A key belongs to one person; reusing it for a different request (another method, path or
body) is refused, since the client has confused two operations.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.errors import Conflict, Invalid, Problem
from services.models import IdempotencyRecord, utcnow

MAX_KEY_CHARS = 255
KEEP_FOR = timedelta(hours=24)


def fingerprint(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def check_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > MAX_KEY_CHARS or not key.isprintable():
        raise Invalid(
            problems=[
                Problem(f"must be 1-{MAX_KEY_CHARS} printable characters", field="Idempotency-Key")
            ]
        )
    return key


async def find(
    session: AsyncSession, *, user_id: int, key: str, fingerprint: str
) -> IdempotencyRecord | None:
    """The stored first answer for this key, if any (and not expired)."""
    record = (
        await session.execute(
            select(IdempotencyRecord).where(
                IdempotencyRecord.user_id == user_id,
                IdempotencyRecord.key == key,
                col(IdempotencyRecord.created_at) > utcnow() - KEEP_FOR,
            )
        )
    ).scalar_one_or_none()
    if record is not None and record.fingerprint != fingerprint:
        raise Invalid(
            "This Idempotency-Key was already used for a different request.",
            problems=[Problem("was used for a different request", field="Idempotency-Key")],
        )
    return record


async def remember(
    session: AsyncSession,
    *,
    user_id: int,
    key: str,
    fingerprint: str,
    status_code: int,
    body: str,
    location: str | None,
) -> None:
    """Store the answer in the caller's transaction (so it commits with the creation)."""
    # An expired record with the same key is replaced.
    await session.execute(
        sa.delete(IdempotencyRecord).where(
            col(IdempotencyRecord.user_id) == user_id,
            col(IdempotencyRecord.key) == key,
            col(IdempotencyRecord.created_at) <= utcnow() - KEEP_FOR,
        )
    )
    try:
        async with session.begin_nested():
            session.add(
                IdempotencyRecord(
                    user_id=user_id,
                    key=key,
                    fingerprint=fingerprint,
                    status_code=status_code,
                    body=body,
                    location=location,
                )
            )
            await session.flush()
    except IntegrityError:
        # The same key is being used by a concurrent request right now.
        raise Conflict("A request with this Idempotency-Key is already in progress.") from None
