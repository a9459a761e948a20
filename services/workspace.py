"""The moderator's workspace: where one assignment stands, in one view.

Participation per question (and who has not posted yet), the open flags, papers in and
late, review completion and overdue tasks, the stance analytics, and (for instructors) the
latest audit events. A fixed number of queries, whatever the cohort's size.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services import exports, policy, stance
from services.db import core_select
from services.errors import NotFound
from services.models import (
    Assignment,
    AuditEvent,
    Cohort,
    Flag,
    FlagReason,
    Membership,
    Paper,
    Post,
    Question,
    ReviewTask,
    Role,
    TaskStatus,
    Thread,
    User,
    utcnow,
)
from services.policy import Actor
from services.views import (
    AuditEntryView,
    FlaggedInWorkspaceView,
    QuestionParticipationView,
    WorkspaceView,
)

RECENT_AUDIT = 12
FLAGGED_SHOWN = 10


async def access(
    session: AsyncSession, *, actor: Actor, assignment_id: int
) -> tuple[Assignment, Cohort]:
    """The assignment and its cohort, for its moderators and instructors; NotFound otherwise
    (the workspace is not advertised to students)."""
    assignment = await policy.access_assignment(session, actor=actor, assignment_id=assignment_id)
    cohort = await session.get(Cohort, assignment.cohort_id)
    assert cohort is not None
    if not policy.can_manage_cohort(actor, cohort):
        raise NotFound("No such assignment.")
    return assignment, cohort


async def overview(session: AsyncSession, *, actor: Actor, assignment_id: int) -> WorkspaceView:
    """Moderators and instructors of the cohort see where the assignment stands."""
    assignment, cohort = await access(session, actor=actor, assignment_id=assignment_id)

    students = (
        await session.execute(
            select(User.id, User.display_name)
            .join(Membership, col(Membership.user_id) == User.id)
            .where(Membership.cohort_id == cohort.id, Membership.role == Role.student)
            .order_by(col(User.display_name))
        )
    ).all()
    questions = (
        await session.execute(
            select(Question.id, Question.position)
            .where(Question.assignment_id == assignment_id)
            .order_by(col(Question.position))
        )
    ).all()
    posted: dict[int, set[int]] = {}
    threads: dict[int, int] = {}
    posts: dict[int, int] = {}
    for qid, author, is_root, n in (
        await session.execute(
            core_select(
                col(Thread.question_id), col(Post.author_id), col(Post.parent_id).is_(None),
                sa.func.count(),
            )
            .join(Thread, col(Thread.id) == Post.thread_id)
            .join(Question, col(Question.id) == Thread.question_id)
            .where(Question.assignment_id == assignment_id, col(Post.deleted_at).is_(None))
            .group_by(Thread.question_id, Post.author_id, col(Post.parent_id).is_(None))
        )
    ).all():  # fmt: skip
        posted.setdefault(qid, set()).add(author)
        posts[qid] = posts.get(qid, 0) + n
        if is_root:
            threads[qid] = threads.get(qid, 0) + n
    participation = [
        QuestionParticipationView(
            question_id=qid,
            position=position,
            threads=threads.get(qid, 0),
            posts=posts.get(qid, 0),
            students_posted=sum(1 for uid, _ in students if uid in posted.get(qid, set())),
            not_yet_posted=[name for uid, name in students if uid not in posted.get(qid, set())],
        )
        for qid, position in questions
    ]
    flagged = await _flagged(session, assignment_id=assignment_id)
    submitted, late = (
        await session.execute(
            core_select(
                sa.func.count(col(Paper.submitted_at)),
                sa.func.coalesce(sa.func.sum(sa.case((col(Paper.late), 1), else_=0)), 0),
            ).where(Paper.assignment_id == assignment_id)
        )
    ).one()
    overdue = 0
    if assignment.review_due_at is not None and assignment.review_due_at <= utcnow():
        overdue = int(
            await session.scalar(
                core_select(sa.func.count()).where(
                    ReviewTask.assignment_id == assignment_id,
                    col(ReviewTask.status).in_([TaskStatus.assigned, TaskStatus.started]),
                )
            )
            or 0
        )
    report = await stance.stance_report(session, actor=actor, assignment_id=assignment_id)
    recent = None
    if policy.can_read_audit_log(actor, cohort):
        rows = (
            await session.execute(
                core_select(
                    col(AuditEvent.created_at), col(User.display_name), col(AuditEvent.action),
                    col(AuditEvent.target_type), col(AuditEvent.target_id),
                    col(AuditEvent.reason),
                )
                .outerjoin(User, col(User.id) == AuditEvent.actor_user_id)
                .where(AuditEvent.cohort_id == cohort.id)
                .order_by(col(AuditEvent.id).desc())
                .limit(RECENT_AUDIT)
            )
        ).all()  # fmt: skip
        recent = [
            AuditEntryView(at=at, actor=name or "system", action=action,
                           target=f"{ttype} {tid}", reason=reason)
            for at, name, action, ttype, tid, reason in rows
        ]  # fmt: skip
    return WorkspaceView(
        assignment_id=assignment_id,
        cohort=cohort.slug,
        title=assignment.title,
        phase=assignment.phase,
        students=len(students),
        participation=participation,
        open_flags=sum(f.open_flags for f in flagged),
        flagged=flagged[:FLAGGED_SHOWN],
        papers_submitted=int(submitted or 0),
        papers_late=int(late or 0),
        completion=report.completion,
        overdue_tasks=overdue,
        stance=report,
        recent_audit=recent,
        exports=[k for k in exports.KINDS if policy.can_take_export(actor, cohort, kind=k)],
    )


async def _flagged(session: AsyncSession, *, assignment_id: int) -> list[FlaggedInWorkspaceView]:
    """The assignment's posts with open flags, most flagged first (one query). Reporters are
    not named, here as on the cohort's flag page."""
    rows = (
        await session.execute(
            core_select(
                col(Post.public_id), col(Thread.public_id), col(Thread.title),
                col(Question.position), col(Post.hidden_at).is_not(None), col(Flag.reason),
                col(Flag.created_at),
            )
            .join(Post, col(Post.id) == Flag.post_id)
            .join(Thread, col(Thread.id) == Post.thread_id)
            .join(Question, col(Question.id) == Thread.question_id)
            .where(Question.assignment_id == assignment_id, col(Flag.resolved_at).is_(None))
            .order_by(col(Flag.id))
        )
    ).all()  # fmt: skip
    grouped: dict[str, list[Any]] = {}
    for row in rows:
        grouped.setdefault(row[0], []).append(row)
    out = []
    for post, flags in grouped.items():
        _, thread, title, position, hidden, _, first_at = flags[0]
        reasons = Counter(r.value if isinstance(r, FlagReason) else str(r) for *_, r, _ in flags)
        out.append(
            FlaggedInWorkspaceView(
                post=post, thread=thread, thread_title=title, question_position=position,
                open_flags=len(flags), reasons=[r for r, _ in reasons.most_common()],
                hidden=bool(hidden), first_flagged_at=first_at,
            )
        )  # fmt: skip
    out.sort(key=lambda f: (-f.open_flags, f.first_flagged_at))
    return out
