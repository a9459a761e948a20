"""Membership changes re-balance open reviews at once: a removed or promoted reviewer's
unstarted tasks move to others, and every paper still reaches k reviewers."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import memberships
from services.db import transaction
from services.models import Phase, ReviewTask, Role, TaskStatus
from services.policy import Actor
from tests.review_support import make_world, set_phase, submit_papers, tasks_of

STUDENTS = ("ada", "ben", "chen", "dara", "eve", "finn")


async def live_tasks(
    sessions: async_sessionmaker[AsyncSession], assignment_id: int
) -> list[ReviewTask]:
    async with transaction(sessions, write=False) as session:
        rows = await session.execute(
            select(ReviewTask).where(
                ReviewTask.assignment_id == assignment_id,
                ReviewTask.status != TaskStatus.withdrawn,
            )
        )
        return list(rows.scalars())


async def test_removing_a_reviewer_moves_their_tasks(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    world = await make_world(sessions, students=STUDENTS, k=2)
    await submit_papers(world, STUDENTS)
    await set_phase(world, Phase.review)
    assert len(await tasks_of(world, "finn")) == 2

    async with transaction(sessions) as session:
        await memberships.remove_member(
            session, actor=Actor.system(), slug="psy", user_id=world.users["finn"]
        )
    tasks = await live_tasks(sessions, world.assignment_id)
    assert not [t for t in tasks if t.reviewer_id == world.users["finn"]]
    per_paper = Counter(t.paper_id for t in tasks)
    assert set(per_paper.values()) == {2}  # finn's own paper too keeps its reviewers


async def test_promoting_a_student_to_moderator_takes_them_out_of_the_pool(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    world = await make_world(sessions, students=STUDENTS, k=2)
    await submit_papers(world, STUDENTS)
    await set_phase(world, Phase.review)
    async with transaction(sessions) as session:
        await memberships.set_member_role(
            session, actor=Actor.system(), slug="psy", user_id=world.users["eve"],
            role=Role.moderator,
        )  # fmt: skip
    assert await tasks_of(world, "eve") == [] or all(
        t.status is TaskStatus.withdrawn for t in await tasks_of(world, "eve")
    )
    tasks = await live_tasks(sessions, world.assignment_id)
    assert set(Counter(t.paper_id for t in tasks).values()) == {2}
