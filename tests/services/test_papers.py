"""Papers: write, revise, submit; versions; late policy; phases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import select

from services import papers
from services.db import transaction
from services.errors import Invalid, NotFound
from services.models import Assignment, LatePolicy, PaperVersion, Phase, utcnow
from tests.review_support import ReviewWorld, make_world, set_phase, tasks_of


async def save(world: ReviewWorld, name: str, body: str, *, submit: bool = False, now=None):  # type: ignore[no-untyped-def]
    async with transaction(world.sessions) as session:
        return await papers.save_paper(
            session,
            actor=await world.actor(session, name),
            assignment_id=world.assignment_id,
            body=body,
            submit=submit,
            now=now,
        )


async def configure(world: ReviewWorld, **values: object) -> None:
    async with transaction(world.sessions) as session:
        assignment = await session.get(Assignment, world.assignment_id)
        assert assignment is not None
        for key, value in values.items():
            setattr(assignment, key, value)


async def test_draft_revise_submit_keeps_versions(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    world = await make_world(sessions)
    first = await save(world, "ada", "First *draft*")
    assert first.paper is not None and first.paper.submitted_at is None
    assert len(first.paper.code) == 4 and first.paper.public_id
    second = await save(world, "ada", "Second draft", submit=True)
    assert second.paper is not None and second.paper.current_version == 2
    assert second.paper.submitted_at is not None and not second.paper.late
    async with transaction(sessions, write=False) as session:
        versions = (await session.execute(select(PaperVersion.body))).scalars().all()
        view = papers.present_my_paper(
            await papers.get_my_paper(
                session, actor=await world.actor(session, "ada"), assignment_id=world.assignment_id
            ),
            actor=await world.actor(session, "ada"),
        )
    assert sorted(versions) == ["First *draft*", "Second draft"]
    assert view.status == "submitted" and view.body == "Second draft" and view.can_edit
    assert "<p>Second draft</p>" in view.body_html


async def test_staff_have_no_paper(sessions: async_sessionmaker[AsyncSession]) -> None:
    world = await make_world(sessions)
    with pytest.raises(NotFound):
        await save(world, "mona", "I am staff")


@pytest.mark.parametrize("phase", [Phase.draft, Phase.feedback, Phase.closed])
async def test_papers_are_refused_outside_open_and_review(
    sessions: async_sessionmaker[AsyncSession], phase: Phase
) -> None:
    world = await make_world(sessions)
    await configure(world, phase=phase)
    with pytest.raises((Invalid, NotFound)):
        await save(world, "ada", "Too late or too early", submit=True)


async def test_empty_and_nul_bodies_are_refused(sessions: async_sessionmaker[AsyncSession]) -> None:
    world = await make_world(sessions)
    for body in ("   ", "a\x00b"):
        with pytest.raises(Invalid):
            await save(world, "ada", body)


async def test_late_policy_mark_accept_refuse(sessions: async_sessionmaker[AsyncSession]) -> None:
    world = await make_world(sessions)
    await configure(world, paper_due_at=utcnow() - timedelta(hours=1), late_policy=LatePolicy.mark)
    marked = await save(world, "ada", "Late", submit=True)
    assert marked.paper is not None and marked.paper.late
    await configure(world, late_policy=LatePolicy.accept)
    accepted = await save(world, "ben", "Late too", submit=True)
    assert accepted.paper is not None and not accepted.paper.late
    await configure(world, late_policy=LatePolicy.refuse)
    with pytest.raises(Invalid, match="late papers are refused"):
        await save(world, "chen", "Refused", submit=True)
    # A draft may still be saved; only the submission is refused.
    assert (await save(world, "chen", "Draft only")).paper is not None


async def test_late_submission_during_review_gets_reviewers_without_disturbing_others(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    world = await make_world(sessions, students=("ada", "ben", "chen", "dara", "eve"), k=2)
    for name in ("ada", "ben", "chen", "dara"):
        await save(world, name, f"Paper of {name}", submit=True)
    await set_phase(world, Phase.review)
    before = {t.public_id for n in world.users for t in await tasks_of(world, n)}
    late = await save(world, "eve", "Eve's late paper", submit=True)
    assert late.paper is not None and late.paper.late  # default policy: mark
    after = {t.public_id: t for n in world.users for t in await tasks_of(world, n)}
    assert before <= set(after)
    eve_paper = [t for t in after.values() if t.paper_id == late.paper.id]
    assert len(eve_paper) == 2
    assert world.users["eve"] not in {t.reviewer_id for t in eve_paper}
    assert sorted(t.reviewer_number for t in eve_paper) == [1, 2]
    # Submitted papers cannot be revised once review is on.
    with pytest.raises(Invalid):
        await save(world, "ada", "Sneaky revision")
