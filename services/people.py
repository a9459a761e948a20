"""People's own data: everything the service holds about a person, on request, and erasure.

The export is the person's own record and nobody else's: their profile, memberships, their
discussion aliases, the posts they wrote (with the alias each anonymous one carried), their
papers, the reviews they wrote, the ratings they gave, their notifications, when they last
read each thread, exemplars of their work and the audit entries about them. It names nobody
they may not know: reviews of their paper appear as "Reviewer N", as on their feedback page.

Erasure (an administrator, or the command line) removes the person's name, e-mail and
identity-provider subject, their memberships (allocations heal as for any leaver),
sessions, tokens, notifications and thread visits. What they wrote stays where others rely
on it: named posts read "Former member", anonymous ones keep their alias (never the two
together: the alias is not shown on named content and "Former member" is shared by
everyone erased), reviews stay anonymous. A consented name on an exemplar falls back to
"A classmate". The audit log keeps a tombstone entry.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services import allocation, audit, presenters, websessions
from services.errors import NotFound
from services.models import (
    Alias,
    ApiToken,
    Assignment,
    Attribution,
    AuditEvent,
    Cohort,
    Exemplar,
    IdempotencyRecord,
    Membership,
    Notification,
    Paper,
    PaperVersion,
    Post,
    Question,
    Review,
    ReviewRating,
    ReviewTask,
    Role,
    Thread,
    ThreadFollow,
    ThreadVisit,
    User,
)
from services.policy import Actor

EXPORT_FORMAT = "peerboard.person-export.v1"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def export_person(session: AsyncSession, *, actor: Actor) -> dict[str, Any]:
    """A signed-in person downloads everything the service holds about them."""
    if actor.user_id is None:
        raise NotFound("Sign in to download your data.")
    user = await session.get(User, actor.user_id)
    if user is None:
        raise NotFound("Sign in to download your data.")
    uid = actor.user_id
    memberships = (
        await session.execute(
            select(Cohort.slug, Cohort.name, Membership.role, Membership.created_at)
            .join(Cohort, col(Cohort.id) == Membership.cohort_id)
            .where(Membership.user_id == uid)
            .order_by(col(Cohort.slug))
        )
    ).all()
    aliases = (
        await session.execute(
            select(Assignment.id, Assignment.title, Alias.name)
            .join(Assignment, col(Assignment.id) == Alias.assignment_id)
            .where(Alias.user_id == uid)
            .order_by(col(Assignment.id))
        )
    ).all()
    alias_of = {assignment_id: name for assignment_id, _, name in aliases}
    posts = (
        await session.execute(
            select(Post, Thread.title, Thread.public_id, Question.assignment_id)
            .join(Thread, col(Thread.id) == Post.thread_id)
            .join(Question, col(Question.id) == Thread.question_id)
            .where(Post.author_id == uid)
            .order_by(col(Post.id))
        )
    ).all()
    papers = (
        await session.execute(
            select(Paper, Assignment.title)
            .join(Assignment, col(Assignment.id) == Paper.assignment_id)
            .where(Paper.author_id == uid)
            .order_by(col(Paper.id))
        )
    ).all()
    versions: dict[int, list[PaperVersion]] = {}
    if papers:
        for version in (
            await session.execute(
                select(PaperVersion)
                .where(col(PaperVersion.paper_id).in_([p.id for p, _ in papers]))
                .order_by(col(PaperVersion.paper_id), col(PaperVersion.version))
            )
        ).scalars():
            versions.setdefault(version.paper_id, []).append(version)
    written = (
        await session.execute(
            select(Review, ReviewTask.reviewer_number, Paper.code, Assignment.title)
            .join(ReviewTask, col(ReviewTask.id) == Review.task_id)
            .join(Paper, col(Paper.id) == ReviewTask.paper_id)
            .join(Assignment, col(Assignment.id) == Paper.assignment_id)
            .where(ReviewTask.reviewer_id == uid)
            .order_by(col(Review.id))
        )
    ).all()
    ratings = (
        await session.execute(
            select(ReviewRating, ReviewTask.reviewer_number, Assignment.title)
            .join(Review, col(Review.id) == ReviewRating.review_id)
            .join(ReviewTask, col(ReviewTask.id) == Review.task_id)
            .join(Paper, col(Paper.id) == ReviewTask.paper_id)
            .join(Assignment, col(Assignment.id) == Paper.assignment_id)
            .where(Paper.author_id == uid)
            .order_by(col(ReviewRating.id))
        )
    ).all()
    notices = (
        await session.execute(
            select(Notification).where(Notification.user_id == uid).order_by(col(Notification.id))
        )
    ).scalars()
    exemplars = (
        await session.execute(
            select(Exemplar).where(Exemplar.author_id == uid).order_by(col(Exemplar.id))
        )
    ).scalars()
    audits = (
        await session.execute(
            select(AuditEvent)
            .where(
                (col(AuditEvent.actor_user_id) == uid)
                | (
                    (col(AuditEvent.target_type) == "user")
                    & (col(AuditEvent.target_id) == str(uid))
                )
            )
            .order_by(col(AuditEvent.id))
        )
    ).scalars()
    # When they last read each thread ("N new"): theirs alone, so it is here and nowhere else.
    visits = (
        await session.execute(
            select(Thread.public_id, Thread.title, ThreadVisit.read_at)
            .join(Thread, col(Thread.id) == ThreadVisit.thread_id)
            .where(ThreadVisit.user_id == uid)
            .order_by(col(ThreadVisit.read_at), col(Thread.id))
        )
    ).all()
    tokens = (
        await session.execute(
            select(ApiToken).where(ApiToken.user_id == uid).order_by(col(ApiToken.id))
        )
    ).scalars()
    return {
        "format": EXPORT_FORMAT,
        "profile": {
            "issuer": user.issuer,
            "subject": user.subject,
            "display_name": user.display_name,
            "email": user.email,
            "administrator": user.is_administrator,
            "created_at": _iso(user.created_at),
            "last_sign_in_at": _iso(user.last_sign_in_at),
        },
        "memberships": [
            {"cohort": slug, "cohort_name": name, "role": Role(role).value, "since": _iso(at)}
            for slug, name, role, at in memberships
        ],
        "aliases": [{"assignment": title, "alias": name} for _, title, name in aliases],
        "posts": [
            {
                "thread": thread_id,
                "thread_title": title,
                "anonymous": post.anonymous,
                # The alias classmates saw on it; named posts carried the name only.
                "shown_as": alias_of.get(assignment_id) if post.anonymous else user.display_name,
                "body": post.body,
                "created_at": _iso(post.created_at),
                "edited_at": _iso(post.edited_at),
                "deleted": post.deleted_at is not None,
            }
            for post, title, thread_id, assignment_id in posts
        ],
        "papers": [
            {
                "assignment": title,
                "submitted_at": _iso(paper.submitted_at),
                "late": paper.late,
                "versions": [
                    {"version": v.version, "body": v.body, "saved_at": _iso(v.created_at)}
                    for v in versions.get(paper.id or 0, [])
                ],
            }
            for paper, title in papers
        ],
        "reviews_written": [
            {
                "assignment": title,
                "paper": presenters.paper_label(code),
                "overall_stance": review.overall_stance.value if review.overall_stance else None,
                "rationale": review.rationale,
                "suggestion": review.suggestion,
                "submitted_at": _iso(review.submitted_at),
            }
            for review, _, code, title in written
        ],
        "ratings_given": [
            {
                "assignment": title,
                "review_by": presenters.reviewer_label(number),
                "rating": rating.rating,
                "comment": rating.comment,
            }
            for rating, number, title in ratings
        ],
        "notifications": [
            {
                "kind": n.kind,
                "message": n.message,
                "created_at": _iso(n.created_at),
                "read": n.read_at is not None,
            }
            for n in notices
        ],
        "exemplars_of_my_work": [
            {
                "title": e.title,
                "kind": e.kind.value,
                "attribution": e.attribution.value,
                "status": e.status.value,
            }
            for e in exemplars
        ],
        "audit_entries": [
            {
                "action": a.action,
                "target_type": a.target_type,
                "by_me": a.actor_user_id == uid,
                "reason": a.reason,
                "at": _iso(a.created_at),
            }
            for a in audits
        ],
        "threads_read": [
            {"thread": thread_id, "thread_title": title, "last_read_at": _iso(at)}
            for thread_id, title, at in visits
        ],
        "api_tokens": [
            {"name": t.name, "created_at": _iso(t.created_at), "revoked": t.revoked_at is not None}
            for t in tokens
        ],
    }


@dataclass(frozen=True)
class Erasure:
    user_id: int
    memberships_removed: int
    posts_kept: int


async def erase_person(
    session: AsyncSession, *, actor: Actor, issuer: str, subject: str
) -> Erasure:
    """Administrators erase a person: name, e-mail and subject go; their work stays under
    "Former member" or its alias; the audit log keeps a tombstone."""
    if not actor.is_administrator:
        raise NotFound("No such person.")
    user = await session.scalar(select(User).where(User.issuer == issuer, User.subject == subject))
    if user is None or user.id is None:
        raise NotFound("No such person.")
    uid = user.id
    cohorts_left = list(
        (
            await session.execute(
                select(Membership.cohort_id, Membership.role).where(Membership.user_id == uid)
            )
        ).all()
    )
    await session.execute(sa.delete(Membership).where(col(Membership.user_id) == uid))
    await websessions.end_all_for_user(session, user_id=uid)
    for model in (ApiToken, Notification, ThreadFollow, ThreadVisit, IdempotencyRecord):
        await session.execute(sa.delete(model).where(col(model.user_id) == uid))
    await session.execute(
        sa.update(Exemplar)
        .where(col(Exemplar.author_id) == uid, col(Exemplar.attribution) == Attribution.named)
        .values(attribution=Attribution.anonymous)
    )
    user.display_name = presenters.FORMER_MEMBER
    user.email = None
    user.is_administrator = False
    # A random subject: the provider's subject no longer leads here, and a later sign-in
    # with it makes a new, unrelated account.
    user.subject = f"erased:{secrets.token_urlsafe(16)}"
    session.add(user)
    await session.flush()
    for cohort_id, role in cohorts_left:
        if Role(role) is Role.student:
            await allocation.heal_cohort(session, cohort_id=cohort_id)
    await audit.record(
        session, actor=actor, action="person.erase", target_type="user", target_id=uid
    )
    kept = await session.scalar(
        select(sa.func.count()).select_from(Post).where(Post.author_id == uid)
    )
    return Erasure(user_id=uid, memberships_removed=len(cohorts_left), posts_kept=kept or 0)
