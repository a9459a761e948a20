"""Allocation in the database: running at review, healing after departures, moderators'
hand assignments and exclusions, and the task list filter agreeing with the task check."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import select

from services import allocation, memberships, policy
from services.db import transaction
from services.errors import Conflict, Invalid, NotFound
from services.models import Assignment, Paper, Phase, ReviewTask, TaskStatus
from services.policy import Actor
from tests.review_support import full_review, make_world, set_phase, submit_papers, tasks_of

STUDENTS = ("ada", "ben", "chen", "dara", "eve", "fay")


async def all_tasks(world) -> list[ReviewTask]:  # type: ignore[no-untyped-def]
    async with transaction(world.sessions, write=False) as session:
        rows = await session.execute(
            select(ReviewTask).where(ReviewTask.assignment_id == world.assignment_id)
        )
        return list(rows.scalars())


async def test_review_allocates_k_each_numbers_random_per_paper(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    world = await make_world(sessions, students=STUDENTS, k=3)
    await submit_papers(world, STUDENTS)
    await set_phase(world, Phase.review)
    tasks = await all_tasks(world)
    assert Counter(t.reviewer_id for t in tasks) == dict.fromkeys(
        [world.users[s] for s in STUDENTS], 3
    )
    per_paper: dict[int, list[int]] = {}
    for t in tasks:
        per_paper.setdefault(t.paper_id, []).append(t.reviewer_number)
        assert len(t.public_id) >= 16 and not t.public_id.isdigit()
    assert all(sorted(n) == [1, 2, 3] for n in per_paper.values())


async def test_a_departed_reviewer_s_unstarted_tasks_move(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    from services.reviews import save_review

    world = await make_world(sessions, students=STUDENTS, k=2)
    await submit_papers(world, STUDENTS)
    await set_phase(world, Phase.review)
    ben_tasks = await tasks_of(world, "ben")
    started = ben_tasks[0]
    async with transaction(sessions) as session:
        await save_review(
            session,
            actor=await world.actor(session, "ben"),
            task_id=started.public_id,
            data=full_review(),
            expected_version=None,
            submit=True,
        )
    untouched = {t.public_id for t in await all_tasks(world) if t.reviewer_id != world.users["ben"]}
    async with transaction(sessions) as session:
        await memberships.remove_member(
            session, actor=Actor.system(), slug="psy", user_id=world.users["ben"]
        )
    async with transaction(sessions) as session:
        assignment = await session.get(Assignment, world.assignment_id)
        assert assignment is not None
        await allocation.heal(session, assignment=assignment)
    tasks = await all_tasks(world)
    live = [t for t in tasks if t.status is not TaskStatus.withdrawn]
    assert untouched <= {t.public_id for t in live}
    ben = [t for t in tasks if t.reviewer_id == world.users["ben"]]
    assert {t.status for t in ben} == {TaskStatus.submitted, TaskStatus.withdrawn}
    assert all(n == 2 for n in Counter(t.paper_id for t in live).values())


async def test_moderators_assign_and_move_by_hand(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    world = await make_world(sessions, students=STUDENTS, k=1)
    await submit_papers(world, STUDENTS)
    await set_phase(world, Phase.review)
    async with transaction(sessions, write=False) as session:
        ada_paper = await session.scalar(select(Paper).where(Paper.author_id == world.users["ada"]))
    assert ada_paper is not None
    reviewers = {t.reviewer_id for t in await all_tasks(world) if t.paper_id == ada_paper.id}
    spare = next(n for n in STUDENTS if n != "ada" and world.users[n] not in reviewers)

    async def assign(name: str, reviewer: str) -> ReviewTask:
        async with transaction(sessions) as session:
            return await allocation.assign_by_hand(
                session,
                actor=await world.actor(session, name),
                assignment_id=world.assignment_id,
                paper_public_id=ada_paper.public_id,
                reviewer_id=world.users[reviewer],
            )

    with pytest.raises(NotFound):
        await assign("ben", spare)
    with pytest.raises(Invalid):
        await assign("mona", "ada")  # own paper
    with pytest.raises(Invalid):
        await assign("mona", "ivo")  # not a student
    made = await assign("mona", spare)
    assert made.assigned_by_hand and made.reviewer_number == 2
    with pytest.raises(Conflict):
        await assign("mona", spare)
    target = next(
        n for n in STUDENTS if n not in ("ada", spare) and world.users[n] not in reviewers
    )
    async with transaction(sessions) as session:
        moved = await allocation.move_task(
            session, actor=await world.actor(session, "mona"), task_public_id=made.public_id,
            reviewer_id=world.users[target],
        )  # fmt: skip
    assert moved.reviewer_id == world.users[target] and moved.reviewer_number == 3
    statuses = {t.public_id: t.status for t in await all_tasks(world)}
    assert statuses[made.public_id] is TaskStatus.withdrawn


async def test_exclusions_are_respected(sessions: async_sessionmaker[AsyncSession]) -> None:
    world = await make_world(sessions, students=("ada", "ben", "chen"), k=2)
    async with transaction(sessions) as session:
        await allocation.exclude_pair(
            session, actor=await world.actor(session, "mona"), assignment_id=world.assignment_id,
            reviewer_id=world.users["ben"], author_id=world.users["ada"],
        )  # fmt: skip
    await submit_papers(world, ("ada", "ben", "chen"))
    await set_phase(world, Phase.review)
    async with transaction(sessions, write=False) as session:
        ada_paper = await session.scalar(select(Paper).where(Paper.author_id == world.users["ada"]))
    assert ada_paper is not None
    reviewers = {t.reviewer_id for t in await all_tasks(world) if t.paper_id == ada_paper.id}
    assert reviewers == {world.users["chen"]}


async def test_task_list_filter_agrees_with_the_task_check(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    world = await make_world(sessions, students=STUDENTS, k=2)
    await submit_papers(world, STUDENTS)
    await set_phase(world, Phase.review)
    # Withdraw one task so the filter has something to leave out.
    async with transaction(sessions) as session:
        task = (await session.execute(select(ReviewTask).limit(1))).scalar_one()
        task.status = TaskStatus.withdrawn
    for phase in (Phase.review, Phase.draft):
        if phase is Phase.draft:
            async with transaction(sessions) as session:
                a = await session.get(Assignment, world.assignment_id)
                assert a is not None
                a.phase = Phase.draft
        async with transaction(sessions, write=False) as session:
            assignment = await session.get(Assignment, world.assignment_id)
            assert assignment is not None
            every = list((await session.execute(select(ReviewTask))).scalars())
            for name in [*STUDENTS, "mona", "ivo", "root"]:
                actor = (
                    Actor(user_id=None, is_administrator=True)
                    if name == "root"
                    else await world.actor(session, name)
                )
                listed = set(
                    (
                        await session.execute(
                            select(ReviewTask.id).where(policy.visible_tasks(actor, assignment))
                        )
                    ).scalars()
                )
                checked = {t.id for t in every if policy.can_view_task(actor, t, assignment)}
                assert listed == checked, (name, phase)
