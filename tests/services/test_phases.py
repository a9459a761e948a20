"""The phase machine and what each role may do per phase."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import phases, policy
from services.db import transaction
from services.errors import Invalid, NotFound
from services.models import Assignment, Phase, utcnow
from services.policy import PHASE_ACTIONS
from tests.review_support import make_world, submit_papers, tasks_of


async def change(world, name: str, phase: Phase):  # type: ignore[no-untyped-def]
    async with transaction(world.sessions) as session:
        return await phases.change_phase(
            session,
            actor=await world.actor(session, name),
            assignment_id=world.assignment_id,
            phase=phase,
        )


async def test_instructor_moves_one_step_and_review_allocates(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    world = await make_world(sessions)
    await submit_papers(world, ("ada", "ben", "chen", "dara"))
    with pytest.raises(Invalid):
        await change(world, "ivo", Phase.feedback)  # skipping review
    assignment, made = await change(world, "ivo", Phase.review)
    assert assignment.phase is Phase.review and assignment.allocation_seed
    assert len(made) == 8
    for name in ("ada", "ben", "chen", "dara"):
        assert len(await tasks_of(world, name)) == 2
    # Back and forth again allocates nothing new.
    await change(world, "ivo", Phase.feedback)
    _, again = await change(world, "ivo", Phase.review)
    assert again == []


@pytest.mark.parametrize("name", ["mona", "ada"])
async def test_only_instructors_move_phases(
    sessions: async_sessionmaker[AsyncSession], name: str
) -> None:
    world = await make_world(sessions)
    with pytest.raises(NotFound):
        await change(world, name, Phase.review)


async def test_deadlines_advance_when_auto_advance_is_on(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    world = await make_world(sessions)
    await submit_papers(world, ("ada", "ben", "chen"))
    async with transaction(sessions) as session:
        a = await session.get(Assignment, world.assignment_id)
        assert a is not None
        a.auto_advance = True
        a.paper_due_at = utcnow() - timedelta(minutes=1)
        a.review_due_at = utcnow() + timedelta(days=1)
    async with transaction(sessions) as session:
        assert await phases.advance_due(session) == [world.assignment_id]
    async with transaction(sessions) as session:
        assert await phases.advance_due(session) == []  # review deadline not reached
        assert await phases.advance_due(session, now=utcnow() + timedelta(days=2)) == [
            world.assignment_id
        ]
        a = await session.get(Assignment, world.assignment_id)
        assert a is not None and a.phase is Phase.feedback
    # Three papers, two reviewers each, spread over the four students of the pool.
    loads = [len(await tasks_of(world, n)) for n in ("ada", "ben", "chen", "dara")]
    assert sum(loads) == 6 and max(loads) - min(loads) <= 1


# What each phase lets students do: the table is policy, and it is this.
EXPECTED = {
    Phase.draft: set(),
    Phase.open: {"write_paper"},
    Phase.review: {"write_late_paper", "review", "allocate"},
    Phase.feedback: {"read_feedback", "rate", "read_stance"},
    Phase.closed: {"read_feedback", "read_stance"},
}


def test_phase_table() -> None:
    assert {p: set(a) for p, a in PHASE_ACTIONS.items()} == EXPECTED


@pytest.mark.parametrize("phase", list(Phase))
def test_students_write_papers_only_in_open_or_late_in_review(phase: Phase) -> None:
    a = Assignment(id=1, cohort_id=7, title="t", phase=phase)
    student = policy.Actor(user_id=5, roles={7: policy.Role.student})
    staff = policy.Actor(user_id=6, roles={7: policy.Role.moderator})
    assert policy.can_write_paper(student, a, has_submitted=False) == (
        phase in (Phase.open, Phase.review)
    )
    assert policy.can_write_paper(student, a, has_submitted=True) == (phase is Phase.open)
    assert not policy.can_write_paper(staff, a, has_submitted=False)
    assert policy.can_read_stance(staff, a)
    assert policy.can_read_stance(student, a) == (phase in (Phase.feedback, Phase.closed))


async def _audited_moves(world) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    from sqlmodel import select

    from services.models import AuditEvent

    async with transaction(world.sessions, write=False) as session:
        rows = await session.execute(
            select(AuditEvent.details).where(AuditEvent.action == "assignment.phase")
        )
        return [dict(d or {}) for d in rows.scalars()]


async def test_a_step_back_over_submitted_reviews_is_refused_until_confirmed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    from services.errors import ConfirmationRequired
    from tests.review_support import review_all

    world = await make_world(sessions)
    await submit_papers(world, ("ada", "ben", "chen", "dara"))
    await change(world, "ivo", Phase.review)
    await review_all(world, ("ada",), {})
    await change(world, "ivo", Phase.feedback)
    with pytest.raises(ConfirmationRequired) as refused:
        await change(world, "ivo", Phase.review)
    assert refused.value.field == "confirm"
    assert "affects 4 submitted paper(s) and 2 submitted review(s)" in refused.value.message
    assert any(
        "no longer see the 2 submitted review(s)" in c for c in refused.value.consequences
    ), refused.value.consequences
    async with transaction(sessions, write=False) as session:
        a = await session.get(Assignment, world.assignment_id)
        assert a is not None and a.phase is Phase.feedback  # nothing moved
    assert len(await _audited_moves(world)) == 3  # open, review, feedback: not the refused one

    async with transaction(sessions) as session:
        moved, _ = await phases.change_phase(
            session, actor=await world.actor(session, "ivo"),
            assignment_id=world.assignment_id, phase=Phase.review, confirm=True,
        )  # fmt: skip
        assert moved.phase is Phase.review
    assert (await _audited_moves(world))[-1] == {
        "phase": "review",
        "confirmed_over": {"submitted_papers": 4, "submitted_reviews": 2},
    }
    # Back to open would reopen the papers under their reviews: asked again.
    with pytest.raises(ConfirmationRequired) as reopening:
        await change(world, "ivo", Phase.open)
    assert any("4 submitted paper(s) reopen" in c for c in reopening.value.consequences)


async def test_steps_back_over_nothing_handed_in_and_forward_steps_need_no_confirmation(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    world = await make_world(sessions)
    # Open with no paper submitted: back to draft and forward again, unasked.
    await change(world, "ivo", Phase.draft)
    await change(world, "ivo", Phase.open)
    await submit_papers(world, ("ada",))
    from services.errors import ConfirmationRequired

    with pytest.raises(ConfirmationRequired) as hiding:
        await change(world, "ivo", Phase.draft)
    assert any("1 submitted paper(s) are kept" in c for c in hiding.value.consequences)
    await submit_papers(world, ("ben", "chen", "dara"))
    await change(world, "ivo", Phase.review)
    await change(world, "ivo", Phase.feedback)  # no review submitted: nothing to confirm
    await change(world, "ivo", Phase.review)
    await change(world, "ivo", Phase.feedback)
    await change(world, "ivo", Phase.closed)
    assigned, _ = await change(world, "ivo", Phase.feedback)  # reopening hides nothing
    assert assigned.phase is Phase.feedback
