"""Deadlines move auto-advancing assignments: the app's periodic job and the CLI share it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.db import transaction
from services.models import Assignment, Phase, utcnow
from tests.review_support import make_world, submit_papers, tasks_of
from web.app import advance_phases_once
from web.broker import LocalBroker

STUDENTS = ("ada", "ben", "chen", "dara")


async def test_a_passed_paper_deadline_opens_review_and_allocates(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    world = await make_world(sessions, students=STUDENTS, k=2)
    await submit_papers(world, STUDENTS)
    broker = LocalBroker()
    async with transaction(sessions) as session:
        await session.execute(
            update(Assignment)
            .where(Assignment.id == world.assignment_id)
            .values(auto_advance=True, paper_due_at=utcnow() + timedelta(hours=1))
        )
    assert await advance_phases_once(sessions, broker) == []  # not due yet

    async with transaction(sessions) as session:
        await session.execute(
            update(Assignment)
            .where(Assignment.id == world.assignment_id)
            .values(paper_due_at=utcnow() - timedelta(minutes=1))
        )
    with broker.subscribe(f"assignment:{world.assignment_id}") as wakeup:
        assert await advance_phases_once(sessions, broker) == [world.assignment_id]
        assert await wakeup.wait(0.1)  # live views of the assignment are woken
    async with transaction(sessions, write=False) as session:
        assignment = await session.get(Assignment, world.assignment_id)
        assert assignment is not None and assignment.phase is Phase.review
    assert len(await tasks_of(world, "ada")) == 2
    assert await advance_phases_once(sessions, broker) == []  # review_due_at unset: stays
