"""Deadline reminders: a day before a deadline, the students who still owe something hear it
once (a paper not submitted, a review not finished). Run by the phase-deadline job.

A reminder speaks only of the reader's own work: never of who else has or has not
submitted (a classmate's progress is not theirs to know).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services import notifications, times
from services.models import (
    Assignment,
    Cohort,
    Membership,
    Paper,
    Phase,
    ReviewTask,
    Role,
    TaskStatus,
    utcnow,
)

WINDOW = timedelta(hours=24)


def _when(due: datetime, zone_name: str | None, now: datetime) -> str:
    """The deadline on the cohort's wall clock, as pages show it ("Fri 4 Dec 17:00 CET")."""
    return times.wall_clock(due, zone_name, now=now)


async def remind_due(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Remind everyone whose paper or review is due within 24 hours and not done yet; each
    reminder is sent once per person and deadline (a moved deadline reminds again)."""
    now = now or utcnow()
    sent = 0
    rows = await session.execute(
        select(Assignment).where(
            col(Assignment.phase).in_([Phase.open, Phase.review]),
        )
    )
    for assignment in rows.scalars().all():
        assert assignment.id is not None
        papers = assignment.phase is Phase.open
        due = assignment.paper_due_at if papers else assignment.review_due_at
        if due is None or not now < due <= now + WINDOW:
            continue
        zone_name = await session.scalar(
            select(Cohort.time_zone).where(Cohort.id == assignment.cohort_id)
        )
        when = _when(due, zone_name, now)
        if papers:
            sent += await _papers(session, assignment, due, when)
        else:
            sent += await _reviews(session, assignment, due, when)
    return sent


async def _papers(session: AsyncSession, assignment: Assignment, due: datetime, when: str) -> int:
    submitted = select(Paper.author_id).where(
        Paper.assignment_id == assignment.id, col(Paper.submitted_at).is_not(None)
    )
    students = await session.execute(
        select(Membership.user_id)
        .where(
            Membership.cohort_id == assignment.cohort_id,
            Membership.role == Role.student,
            col(Membership.user_id).not_in(submitted),
        )
        .order_by(col(Membership.user_id))
    )
    sent = 0
    for user_id in students.scalars().all():
        sent += await notifications.notify(
            session,
            user_id=user_id,
            kind=notifications.DEADLINE,
            assignment_id=assignment.id,
            link=f"/assignments/{assignment.id}/paper",
            message=(
                f"Your paper for “{assignment.title}” is due {when}, and you have not "
                "submitted it yet."
            ),
            dedupe_key=f"deadline:paper:{assignment.id}:{user_id}:{due.isoformat()}",
        )
    return sent


async def _reviews(session: AsyncSession, assignment: Assignment, due: datetime, when: str) -> int:
    open_tasks = await session.execute(
        select(ReviewTask.reviewer_id).where(
            ReviewTask.assignment_id == assignment.id,
            col(ReviewTask.status).in_([TaskStatus.assigned, TaskStatus.started]),
        )
    )
    owed: dict[int, int] = defaultdict(int)
    for reviewer_id in open_tasks.scalars().all():
        owed[reviewer_id] += 1
    sent = 0
    for user_id in sorted(owed):
        n = owed[user_id]
        sent += await notifications.notify(
            session,
            user_id=user_id,
            kind=notifications.DEADLINE,
            assignment_id=assignment.id,
            link=f"/assignments/{assignment.id}/review-tasks",
            message=(
                f"{'A review' if n == 1 else f'{n} reviews'} you have not finished in "
                f"“{assignment.title}” {'is' if n == 1 else 'are'} due {when}."
            ),
            dedupe_key=f"deadline:review:{assignment.id}:{user_id}:{due.isoformat()}",
        )
    return sent
