"""Identity reveals: review staff learn who wrote or who reviewed one paper, only by stating
a reason. The reveal and its reason go to the hash-chained audit log in the same transaction
(no log row, no names), and a staff member who is a party to the paper (its author or one
of its reviewers) is refused. Instructors read the log.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services import audit, policy, presenters
from services.errors import NotFound, PermissionDenied
from services.models import Assignment, AuditEvent, Paper, ReviewTask, TaskStatus, User
from services.policy import Actor
from services.views import AuditEventView, RevealedPersonView, RevealView

Target = Literal["author", "reviewers"]


async def reveal(
    session: AsyncSession,
    *,
    actor: Actor,
    assignment_id: int,
    paper_code: str,
    target: Target,
    reason: str,
) -> RevealView:
    """Show the author or the reviewers of one paper to a moderator who gave a reason and
    is not a party to the paper; the audit row is written before any name is read."""
    assignment = await policy.access_assignment(session, actor=actor, assignment_id=assignment_id)
    if not policy.can_manage_reviews(actor, assignment):
        raise NotFound("No such assignment.")
    code = paper_code.strip().upper().removeprefix("PAPER ").strip()
    paper = await session.scalar(
        select(Paper).where(Paper.assignment_id == assignment.id, Paper.code == code)
    )
    if paper is None:
        # The staff member may list the assignment's papers: a code typed wrong is a mistake
        # in that field, not a secret.
        raise NotFound(
            f"No paper of this assignment has the code {code or '(empty)'}.", field="paper"
        )
    cleaned = audit.clean_reason(reason)
    tasks = list(
        (
            await session.execute(
                select(ReviewTask)
                .where(ReviewTask.paper_id == paper.id, ReviewTask.status != TaskStatus.withdrawn)
                .order_by(col(ReviewTask.reviewer_number))
            )
        ).scalars()
    )
    parties = {paper.author_id, *(t.reviewer_id for t in tasks)}
    if not policy.can_reveal(actor, assignment, parties=parties):
        raise PermissionDenied(
            "You are the author or a reviewer of this paper, so you cannot reveal its people. "
            "Ask another moderator."
        )
    await audit.record(
        session,
        actor=actor,
        cohort_id=assignment.cohort_id,
        action=f"review.reveal.{target}",
        target_type="paper",
        target_id=paper.public_id,
        reason=cleaned,
        details={"paper": presenters.paper_label(paper.code)},
    )
    if target == "author":
        wanted = [(presenters.revealed_role(None), paper.author_id)]
    else:
        wanted = [(presenters.revealed_role(t.reviewer_number), t.reviewer_id) for t in tasks]
    people = []
    for role, user_id in wanted:
        user = await session.get(User, user_id)
        if user is not None:
            people.append(
                RevealedPersonView(role=role, display_name=user.display_name, email=user.email)
            )
    return RevealView(paper=presenters.paper_label(paper.code), reason=cleaned, people=people)


async def review_audit_log(
    session: AsyncSession, *, actor: Actor, assignment_id: int, limit: int = 200
) -> list[AuditEventView]:
    """Instructors read the cohort's audit log (reveals, reopenings, phase changes)."""
    assignment: Assignment = await policy.access_assignment(
        session, actor=actor, assignment_id=assignment_id
    )
    if not policy.can_read_review_audit(actor, assignment):
        raise NotFound("No such assignment.")
    events = await audit.list_events(session, cohort_id=assignment.cohort_id, limit=limit)
    names = {
        uid: name
        for uid, name in (
            await session.execute(
                select(User.id, User.display_name).where(
                    col(User.id).in_({e.actor_user_id for e in events if e.actor_user_id})
                )
            )
        ).all()
    }
    return [_event_view(e, names) for e in events]


def _event_view(event: AuditEvent, names: dict[int | None, str]) -> AuditEventView:
    return AuditEventView(
        id=event.id or 0,
        action=event.action,
        actor=names.get(event.actor_user_id) if event.actor_user_id else "system",
        target_type=event.target_type,
        target_id=event.target_id,
        reason=event.reason,
        details=dict(event.details),
        created_at=event.created_at,
    )
