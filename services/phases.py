"""The assignment's phase machine: draft → open → review → feedback → closed.

Instructors move it one step at a time (forward, or back one step to undo a mistake);
with `auto_advance` the deadlines move it too (open → review at the paper deadline,
review → feedback at the review deadline). Entering review runs the allocation.

A step back that would hide, reopen or set aside work students have handed in (submitted
papers or reviews) is refused unless it is confirmed: the refusal (ConfirmationRequired,
409) says what the step would do and to how many papers and reviews.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services import allocation, audit, events, lti_grades, notifications, policy, stance, webhooks
from services.db import lock
from services.errors import ConfirmationRequired, Invalid, NotFound, Problem
from services.models import Assignment, Paper, Phase, ReviewTask, TaskStatus, utcnow
from services.policy import Actor

ORDER = (Phase.draft, Phase.open, Phase.review, Phase.feedback, Phase.closed)


def allowed_moves(phase: Phase) -> list[Phase]:
    """One step forward, or one step back."""
    i = ORDER.index(phase)
    return [ORDER[j] for j in (i + 1, i - 1) if 0 <= j < len(ORDER)]


@dataclass(frozen=True)
class Impact:
    """The work handed in so far that a phase move can touch."""

    submitted_papers: int
    submitted_reviews: int
    unfinished_reviews: int


async def impact(session: AsyncSession, *, assignment_id: int) -> Impact:
    done = await stance.completion(session, assignment_id=assignment_id)
    return Impact(
        submitted_papers=done.papers,
        submitted_reviews=done.submitted,
        unfinished_reviews=done.started + done.assigned,
    )


def needs_confirmation(current: Phase, target: Phase, work: Impact) -> bool:
    """A step back needs explicit confirmation when it would hide submitted reviews from
    their authors (feedback → review), reopen submitted papers under their reviews (review
    → open) or hide submitted papers (open → draft). Reopening a closed assignment for
    feedback hides and reopens nothing."""
    if not is_step_back(current, target):
        return False
    if target is Phase.review:
        return work.submitted_reviews > 0
    if target is Phase.open:
        return work.submitted_papers > 0 or work.submitted_reviews > 0
    if target is Phase.draft:
        return work.submitted_papers > 0
    return False


def consequences(
    current: Phase,
    target: Phase,
    *,
    reviews_per_paper: int,
    submitted_reviews: int,
    unfinished_reviews: int,
    submitted_papers: int = 0,
) -> list[str]:
    """What moving from `current` to `target` does, in plain sentences for the instructor's
    confirmation (from what each phase lets students do, policy.PHASE_ACTIONS)."""
    before, after = policy.PHASE_ACTIONS[current], policy.PHASE_ACTIONS[target]
    out: list[str] = []
    if target is Phase.open and current is Phase.draft:
        out.append("Students see the assignment, discuss its questions and write their papers.")
    if "write_paper" in before and "write_paper" not in after:
        out.append(
            "Students can no longer change a submitted paper; a paper not yet "
            "submitted may still come in late, as the late policy says."
        )
    if "write_paper" in after and "write_paper" not in before:
        if current is Phase.review and submitted_papers:
            out.append(
                f"Students may write and change their papers again: {submitted_papers} "
                "submitted paper(s) reopen, and a paper changed now no longer matches the "
                "quotes its reviewers took from it."
            )
        else:
            out.append("Students may write and change their papers again.")
    if target is Phase.draft and current is Phase.open:
        out.append(
            "Students no longer see the assignment, its discussion or their papers"
            + (f" ({submitted_papers} submitted paper(s) are kept)" if submitted_papers else "")
            + " until it opens again."
        )
    if "allocate" in after and "allocate" not in before:
        out.append(
            f"Every submitted paper gets {reviews_per_paper} reviewers now (reviewers "
            "already given keep their reviews), and reviewers see their tasks."
        )
    if "review" in before and "review" not in after:
        out.append(
            f"Reviewing stops: {unfinished_reviews} review(s) not yet submitted can no "
            "longer be worked on."
        )
    if "review" in after and "review" not in before and current is not Phase.open:
        out.append("Reviewers can work on their unsubmitted reviews again.")
    if "read_feedback" in after and "read_feedback" not in before:
        out.append(
            f"Authors read the {submitted_reviews} submitted review(s) of their papers "
            "and rate how helpful each was."
        )
    if "read_feedback" in before and "read_feedback" not in after:
        out.append(
            f"Authors no longer see the {submitted_reviews} submitted review(s) of their "
            "papers until feedback is released again."
        )
    if target is Phase.closed:
        out.append("The assignment is closed: feedback and the stance report stay readable.")
    if is_step_back(current, target) and submitted_reviews:
        out.append(f"{submitted_reviews} submitted review(s) are kept as they are.")
    return out


def is_step_back(current: Phase, target: Phase) -> bool:
    return ORDER.index(target) < ORDER.index(current)


async def _enter(
    session: AsyncSession, assignment: Assignment, phase: Phase, *, now: datetime
) -> list[ReviewTask]:
    before = assignment.phase
    assignment.phase = phase
    assignment.version += 1
    assignment.updated_at = now
    session.add(assignment)
    await session.flush()
    assert assignment.id is not None
    made: list[ReviewTask] = []
    if phase is Phase.review:
        made = await allocation.start_allocation(session, assignment=assignment)
    if phase is Phase.feedback:
        await _tell_authors(session, assignment)
    await webhooks.phase_changed(session, assignment=assignment)
    # A phase closed: scores go to the course's LMS gradebook, if the instructor chose some.
    await lti_grades.phase_changed(session, assignment=assignment, before=before)
    await events.record(
        session,
        channel=events.assignment_channel(assignment.id),
        kind="phase.changed",
        assignment_id=assignment.id,
    )
    return made


async def _tell_authors(session: AsyncSession, assignment: Assignment) -> None:
    # Authors whose paper has submitted reviews hear that their feedback is ready (once per
    # paper, even if the phase goes back and forth).
    rows = await session.execute(
        select(Paper.id, Paper.author_id, sa.func.count())
        .join(ReviewTask, col(ReviewTask.paper_id) == col(Paper.id))
        .where(
            Paper.assignment_id == assignment.id,
            ReviewTask.status == TaskStatus.submitted,
        )
        .group_by(col(Paper.id), col(Paper.author_id))
        .order_by(col(Paper.id))
    )
    for paper_id, author_id, n in rows.all():
        await notifications.notify(
            session,
            user_id=author_id,
            kind=notifications.REVIEWS_RECEIVED,
            assignment_id=assignment.id,
            link=f"/assignments/{assignment.id}/feedback",
            message=(
                f"Your paper in “{assignment.title}” received "
                f"{'a review' if n == 1 else f'{n} reviews'}: read them on your feedback page."
            ),
            dedupe_key=f"reviews_received:{paper_id}",
        )


async def change_phase(
    session: AsyncSession,
    *,
    actor: Actor,
    assignment_id: int,
    phase: Phase,
    confirm: bool = False,
) -> tuple[Assignment, list[ReviewTask]]:
    """An instructor moves the assignment one phase forward or back; review allocates. A
    step back over submitted work needs `confirm` (see needs_confirmation)."""
    assignment = await policy.access_assignment(session, actor=actor, assignment_id=assignment_id)
    if not policy.can_change_phase(actor, assignment):
        raise NotFound("No such assignment.")
    # Two clicks (or the deadline job) at once must not both enter review and allocate twice.
    await lock(session, assignment)
    if phase is assignment.phase:
        return assignment, []
    if phase not in allowed_moves(assignment.phase):
        raise Invalid(
            problems=[
                Problem(
                    f"cannot move from {assignment.phase.value} to {phase.value}; "
                    f"allowed: {', '.join(p.value for p in allowed_moves(assignment.phase))}",
                    field="phase",
                )
            ]
        )
    details: dict[str, object] = {"phase": phase.value}
    if is_step_back(assignment.phase, phase):
        work = await impact(session, assignment_id=assignment_id)
        if needs_confirmation(assignment.phase, phase, work):
            if not confirm:
                said = consequences(
                    assignment.phase, phase, reviews_per_paper=assignment.reviews_per_paper,
                    submitted_reviews=work.submitted_reviews,
                    unfinished_reviews=work.unfinished_reviews,
                    submitted_papers=work.submitted_papers,
                )  # fmt: skip
                raise ConfirmationRequired(
                    f"Stepping back from {assignment.phase.value} to {phase.value} affects "
                    f"{work.submitted_papers} submitted paper(s) and {work.submitted_reviews} "
                    f"submitted review(s): {' '.join(said)} Confirm to go ahead.",
                    consequences=said,
                    field="confirm",
                )
            # The audit log keeps what the instructor confirmed they were stepping over.
            details["confirmed_over"] = {
                "submitted_papers": work.submitted_papers,
                "submitted_reviews": work.submitted_reviews,
            }
    made = await _enter(session, assignment, phase, now=utcnow())
    await audit.record(
        session,
        actor=actor,
        cohort_id=assignment.cohort_id,
        action="assignment.phase",
        target_type="assignment",
        target_id=assignment_id,
        details=details,
    )
    return assignment, made


async def advance_due(session: AsyncSession, *, now: datetime | None = None) -> list[int]:
    """Move every auto-advancing assignment whose deadline has passed (a periodic job)."""
    now = now or utcnow()
    moved: list[int] = []
    rows = await session.execute(
        select(Assignment)
        .where(
            col(Assignment.auto_advance).is_(True),
            col(Assignment.phase).in_([Phase.open, Phase.review]),
        )
        # Several app processes run this job: each row is taken by one of them (PostgreSQL;
        # SQLite's write lock already serializes them).
        .with_for_update(skip_locked=True)
    )
    for assignment in rows.scalars():
        due = (
            assignment.paper_due_at if assignment.phase is Phase.open else assignment.review_due_at
        )
        if due is not None and due <= now:
            target = Phase.review if assignment.phase is Phase.open else Phase.feedback
            await _enter(session, assignment, target, now=now)
            moved.append(assignment.id or 0)
    return moved
