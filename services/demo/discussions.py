"""Demo discussion threads for the Secure Base assignment (call after `seed_demo`).

Not wired into `seed_demo` by this module: `services/demo/__init__.py` calls
`seed_discussions(session, assignment=...)` once the lead connects it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services import discussions, policy
from services.models import Assignment, Membership, Question, Thread, User

STARTERS = (
    ("ada-student", True, "Being a safe haven when a client is in crisis",
     "When a client arrives overwhelmed, I slow down and name what I see. Is that what "
     "Mikulincer & Shaver mean by a *safe haven*?"),
    ("ben-student", False, "Encouraging exploration without pushing",
     "I find it hard to know when to invite exploration. How do you judge readiness?"),
)  # fmt: skip


async def seed_discussions(session: AsyncSession, *, assignment: Assignment) -> None:
    """Open a couple of threads (one anonymous to classmates) under question 1, once."""
    question = await session.scalar(
        select(Question)
        .where(Question.assignment_id == assignment.id)
        .order_by(col(Question.position))
        .limit(1)
    )
    if question is None or question.id is None:
        return
    if await session.scalar(select(col(Thread.id)).where(Thread.question_id == question.id)):
        return
    for subject, anonymous, title, body in STARTERS:
        user_id = await session.scalar(
            select(col(User.id))
            .join(Membership, col(Membership.user_id) == col(User.id))
            .where(User.subject == subject, Membership.cohort_id == assignment.cohort_id)
        )
        if user_id is None:
            continue
        actor = await policy.load_actor(session, user_id=user_id, is_administrator=False)
        await discussions.create_thread(
            session,
            actor=actor,
            question_id=question.id,
            title=title,
            body=body,
            anonymous=anonymous,
        )
