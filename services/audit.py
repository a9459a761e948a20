"""The append-only, hash-chained audit log of moderator actions and identity reveals.

Each event's hash covers its own content and the previous event's hash, so changing or
deleting a past event breaks every hash after it (`verify_chain` finds where). Writers are
serialized: PostgreSQL takes a transaction-level advisory lock, and SQLite write units
already hold the database's write lock (BEGIN IMMEDIATE).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.errors import Invalid, Problem
from services.models import AuditEvent, utcnow
from services.policy import Actor

GENESIS = "0" * 64
_ADVISORY_LOCK_KEY = 0x5EE4B0A4D  # "peerboard audit"


def _digest(event: AuditEvent) -> str:
    content = {
        "prev": event.prev_hash,
        "cohort": event.cohort_id,
        "actor": event.actor_user_id,
        "action": event.action,
        "target": [event.target_type, event.target_id],
        "reason": event.reason,
        "details": event.details,
        "at": _iso(event.created_at),
    }
    payload = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def _iso(value: datetime) -> str:
    # Microseconds are dropped: not every backend keeps them, and the hash must survive a
    # round trip through the database.
    return value.replace(microsecond=0).isoformat()


MIN_REASON_CHARS = 10
MAX_REASON_CHARS = 2000


def clean_reason(reason: str) -> str:
    """The stated reason for learning an identity (a reveal, a named reviewer),
    whitespace-normalized; Invalid when it is too short or too long to be a reason."""
    cleaned = " ".join(reason.split())
    if len(cleaned) < MIN_REASON_CHARS or len(cleaned) > MAX_REASON_CHARS or "\x00" in reason:
        raise Invalid(
            problems=[
                Problem(
                    f"state why, in {MIN_REASON_CHARS}-{MAX_REASON_CHARS} characters",
                    field="reason",
                )
            ]
        )
    return cleaned


async def record(
    session: AsyncSession,
    *,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: str | int,
    cohort_id: int | None = None,
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain, in the caller's transaction."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY}
        )
    last = await session.scalar(
        select(AuditEvent.hash).order_by(col(AuditEvent.id).desc()).limit(1)
    )
    event = AuditEvent(
        cohort_id=cohort_id,
        actor_user_id=actor.user_id,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        reason=reason,
        details=details or {},
        created_at=utcnow().replace(microsecond=0),
        prev_hash=last or GENESIS,
        hash="",
    )
    event.hash = _digest(event)
    session.add(event)
    await session.flush()
    return event


async def verify_chain(session: AsyncSession) -> int | None:
    """The id of the first event whose hash does not follow, or None if the chain holds."""
    expected_prev = GENESIS
    result = await session.stream_scalars(select(AuditEvent).order_by(col(AuditEvent.id)))
    async for event in result:
        if event.prev_hash != expected_prev or _digest(event) != event.hash:
            return event.id
        expected_prev = event.hash
    return None


async def list_events(
    session: AsyncSession, *, cohort_id: int, limit: int = 100, before_id: int | None = None
) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.cohort_id == cohort_id)
    if before_id is not None:
        query = query.where(col(AuditEvent.id) < before_id)
    rows = await session.execute(query.order_by(col(AuditEvent.id).desc()).limit(limit))
    return list(rows.scalars())
