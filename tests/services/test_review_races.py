"""Check-then-write steps of peer review under concurrent requests (issue 15, item 1: every
read-modify-write reviewed): a phase entered twice at once allocates once, a student's two
first saves make one paper, a reviewer's two first saves make one review. On PostgreSQL the
requests truly interleave; on SQLite they queue on the write lock."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import select

from services import papers, phases, reviews
from services.db import transaction
from services.models import Paper, PaperVersion, Phase, Review, ReviewTask
from services.policy import Actor
from tests.review_support import (
    full_review,
    make_world,
    paper_text,
    submit_papers,
    tasks_of,
)

STUDENTS = ("ada", "ben", "chen", "dara", "eli")


async def _count(sessions: async_sessionmaker[AsyncSession], model: type) -> int:
    async with transaction(sessions, write=False) as session:
        return await session.scalar(select(sa.func.count()).select_from(model)) or 0


async def test_entering_review_twice_at_once_allocates_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    world = await make_world(sessions, students=STUDENTS, k=2)
    await submit_papers(world, STUDENTS)

    async def enter() -> int:
        async with transaction(sessions) as session:
            _, made = await phases.change_phase(
                session, actor=Actor.system(), assignment_id=world.assignment_id,
                phase=Phase.review,
            )  # fmt: skip
            return len(made)

    made = await asyncio.gather(enter(), enter(), enter())
    assert sorted(made) == [0, 0, len(STUDENTS) * 2]
    assert await _count(sessions, ReviewTask) == len(STUDENTS) * 2


async def test_two_first_saves_of_a_paper_make_one_paper_with_two_versions(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    world = await make_world(sessions, students=STUDENTS)

    async def save(n: int) -> None:
        async with transaction(sessions) as session:
            await papers.save_paper(
                session, actor=await world.actor(session, "ada"),
                assignment_id=world.assignment_id, body=f"{paper_text('ada')}\n\nDraft {n}.",
            )  # fmt: skip

    await asyncio.gather(*(save(n) for n in range(4)))
    async with transaction(sessions, write=False) as session:
        paper = (await session.execute(select(Paper))).scalar_one()
        versions = sorted(
            (
                await session.execute(
                    select(PaperVersion.version).where(PaperVersion.paper_id == paper.id)
                )
            ).scalars()
        )
    assert versions == [1, 2, 3, 4] and paper.current_version == 4


async def test_two_first_saves_of_a_review_make_one_review(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    world = await make_world(sessions, students=STUDENTS, k=2)
    await submit_papers(world, STUDENTS)
    async with transaction(sessions) as session:
        await phases.change_phase(
            session, actor=Actor.system(), assignment_id=world.assignment_id, phase=Phase.review
        )
    task = (await tasks_of(world, "ada"))[0]

    async def save() -> None:
        async with transaction(sessions) as session:
            await reviews.save_review(
                session, actor=await world.actor(session, "ada"), task_id=task.public_id,
                data=full_review(), expected_version=None, submit=False,
            )  # fmt: skip

    await asyncio.gather(save(), save(), save())
    async with transaction(sessions, write=False) as session:
        found = (await session.execute(select(Review).where(Review.task_id == task.id))).all()
    assert len(found) == 1
