"""The live-update log. A change that subscribers should see writes an Event row in the same
transaction as the change; after commit the web layer wakes subscribers through the broker.
Events carry database ids only: each subscriber renders them through its own presenter."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.db import table_of
from services.models import Event, Thread, utcnow

CHANNELS_KEY = "peerboard.channels"
MAX_BATCH = 200


def thread_channel(thread_id: int) -> str:
    return f"thread:{thread_id}"


def assignment_channel(assignment_id: int) -> str:
    return f"assignment:{assignment_id}"


def workspace_channel(assignment_id: int) -> str:
    """Woken by every change recorded with an assignment id, whatever its own channel; the
    moderator's workspace reads those events with `for_assignment`. Events recorded on this
    channel itself (flags, papers) reach nobody else."""
    return f"workspace:{assignment_id}"


async def record(
    session: AsyncSession,
    *,
    channel: str,
    kind: str,
    post_id: int | None = None,
    thread_id: int | None = None,
    task_id: int | None = None,
    assignment_id: int | None = None,
) -> int:
    """Write an event in the caller's transaction (its id is returned); the channel is woken
    after commit (and the assignment's workspace channel, when the event names its
    assignment). One Core INSERT … RETURNING: no model instance is built or flushed.

    A thread's events are written under its row lock (PostgreSQL): ids come from one
    sequence, so two transactions could otherwise commit a thread's events out of id order,
    and a live reader that had moved past the later id would never see the earlier one. Held
    to commit, the lock makes a thread's events commit in id order. (SQLite's write lock
    already does.)"""
    if (
        thread_id is not None
        and channel == thread_channel(thread_id)
        and session.get_bind().dialect.name == "postgresql"
    ):
        await session.execute(
            select(col(Thread.id))
            .where(col(Thread.id) == thread_id)
            .with_for_update(key_share=True)  # FOR NO KEY UPDATE
        )
    await session.flush()  # the caller's pending changes first: the event follows them
    event_id: int = (
        await session.execute(
            _insert_event(),
            {
                "channel": channel,
                "kind": kind,
                "post_id": post_id,
                "thread_id": thread_id,
                "task_id": task_id,
                "assignment_id": assignment_id,
                "created_at": utcnow(),
            },
        )
    ).scalar_one()
    wake: set[str] = session.info.setdefault(CHANNELS_KEY, set())
    wake.add(channel)
    if assignment_id is not None:
        wake.add(workspace_channel(assignment_id))
    return event_id


@functools.cache
def _insert_event() -> Any:
    table = table_of(Event)
    return sa.insert(table).returning(table.c.id)


def channels_to_wake(session: AsyncSession) -> set[str]:
    channels: set[str] = session.info.pop(CHANNELS_KEY, set())
    return channels


async def since(
    session: AsyncSession, *, channel: str, after_id: int, limit: int = MAX_BATCH
) -> Sequence[Event]:
    """Events on a channel after the given id, oldest first."""
    rows = await session.execute(
        _since_query(), {"channel": channel, "after_id": after_id, "limit": limit}
    )
    return rows.scalars().all()


@functools.cache
def _since_query() -> Any:
    """Built once (every live batch and catch-up runs it); values are bind parameters."""
    return (
        select(Event)
        .where(Event.channel == sa.bindparam("channel"), col(Event.id) > sa.bindparam("after_id"))
        .order_by(col(Event.id))
        .limit(sa.bindparam("limit"))
    )


async def latest_id(session: AsyncSession, *, channel: str) -> int:
    row = await session.scalar(
        select(Event.id).where(Event.channel == channel).order_by(col(Event.id).desc()).limit(1)
    )
    return row or 0


async def for_assignment(
    session: AsyncSession, *, assignment_id: int, after_id: int, limit: int = MAX_BATCH
) -> Sequence[Event]:
    """Every event of an assignment after the given id, on any channel, oldest first."""
    rows = await session.execute(
        select(Event)
        .where(Event.assignment_id == assignment_id, col(Event.id) > after_id)
        .order_by(col(Event.id))
        .limit(limit)
    )
    return rows.scalars().all()


async def latest_for_assignment(session: AsyncSession, *, assignment_id: int) -> int:
    row = await session.scalar(
        select(Event.id)
        .where(Event.assignment_id == assignment_id)
        .order_by(col(Event.id).desc())
        .limit(1)
    )
    return row or 0
