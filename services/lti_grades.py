"""Grades to the course's LMS gradebook (LTI Assignment and Grade Services 2.0).

Per assignment the instructor chooses what becomes a grade, with weights: papers submitted,
reviews completed (of the reviews each student was asked for), helpfulness received (the
mean rating authors gave the student's reviews: per reviewer, never per review), and
participation per question (posted in that question's discussion). A student's score is
the weighted mean of those fractions, out of 100; a measure that cannot apply yet (no
rating received) is left out of that student's mean.

Scores go out when a phase closes (services/phases.py) and when the instructor asks, as
rows of a durable queue (LtiScorePost: written in the transaction that decides them, then
POSTed with retries and backoff like the mail outbox and webhooks). Before the first score
of an assignment in a course, its line item is found by our resourceId (made if missing),
so a retry or a second process never makes a second gradebook column.

What the platform receives is about the student alone: the line item's label is the
assignment's title, the score's comment counts the student's own work; no reviewer, author,
paper or review is named or numbered (tests/lti/test_grades.py scans every request).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from services import audit, lti_advantage, lti_roster, outbox, policy
from services.db import insert_ignore, lease_due, transaction
from services.errors import Invalid, NotFound, Problem
from services.lti_advantage import AdvantageClient, Registration, ServiceError
from services.models import (
    Assignment,
    Cohort,
    LtiContext,
    LtiContextServices,
    LtiDeployment,
    LtiGradeSettings,
    LtiLineItem,
    LtiPlatform,
    LtiScorePost,
    Membership,
    Paper,
    Phase,
    Post,
    Question,
    Review,
    ReviewRating,
    ReviewTask,
    Role,
    TaskStatus,
    Thread,
    User,
    utcnow,
)
from services.policy import Actor

PAPER = "paper"
REVIEWS = "reviews"
HELPFULNESS = "helpfulness"
QUESTION = "question:"
SCORE_MAXIMUM = 100
MAX_WEIGHT = 100
TAG = "peerboard"
MAX_RATING = 5
MAX_ATTEMPTS = outbox.MAX_ATTEMPTS


# --- views ---------------------------------------------------------------------------------


class MeasureView(BaseModel):
    key: str
    label: str
    weight: int


class GradingView(BaseModel):
    assignment_id: int
    enabled: bool
    measures: list[MeasureView]
    connected: bool  # the course's LMS announced a gradebook service
    score_maximum: int = SCORE_MAXIMUM
    editable: bool = True  # instructors; moderators read the gradebook only


class GradebookRow(BaseModel):
    user_id: int
    name: str
    from_lms: bool  # only people who came from the course's LMS can get a score there
    score_given: float | None
    score_maximum: float | None
    reason: str | None
    status: str | None
    attempts: int
    queued_at: datetime | None
    sent_at: datetime | None
    response_status: int | None
    last_error: str


class SendResult(BaseModel):
    queued: int
    not_from_lms: int


# --- settings ------------------------------------------------------------------------------


async def _managed(
    session: AsyncSession, *, actor: Actor, assignment_id: int, read: bool = False
) -> tuple[Assignment, Cohort]:
    assignment = await policy.access_assignment(session, actor=actor, assignment_id=assignment_id)
    cohort = await session.get(Cohort, assignment.cohort_id)
    allowed = policy.can_manage_cohort if read else policy.can_manage_grades
    if cohort is None or not allowed(actor, cohort):
        raise NotFound("No such assignment.")
    return assignment, cohort


async def _measures(session: AsyncSession, assignment: Assignment) -> list[tuple[str, str]]:
    questions = (
        await session.execute(
            select(Question.id, Question.position)
            .where(Question.assignment_id == assignment.id)
            .order_by(col(Question.position))
        )
    ).all()
    return [
        (PAPER, "Paper submitted"),
        (REVIEWS, f"Reviews completed (of {assignment.reviews_per_paper} asked of each)"),
        (HELPFULNESS, "Helpfulness of their reviews, as the authors rated them"),
        *((f"{QUESTION}{qid}", f"Took part in the discussion of question {pos}")
          for qid, pos in questions),
    ]  # fmt: skip


async def _settings(session: AsyncSession, assignment_id: int) -> LtiGradeSettings | None:
    return await session.scalar(
        select(LtiGradeSettings)
        .where(LtiGradeSettings.assignment_id == assignment_id)
        .execution_options(populate_existing=True)  # updated in SQL by save_grading
    )


async def _gradebooks(session: AsyncSession, cohort_id: int) -> list[LtiContextServices]:
    return await lti_roster.course_services(
        session, cohort_id=cohort_id, having=LtiContextServices.lineitems_url
    )


async def _view(session: AsyncSession, assignment: Assignment) -> GradingView:
    assert assignment.id is not None
    row = await _settings(session, assignment.id)
    weights = row.weights if row is not None else {}
    return GradingView(
        assignment_id=assignment.id,
        enabled=row.enabled if row is not None else False,
        measures=[
            MeasureView(key=k, label=label, weight=int(weights.get(k, 0)))
            for k, label in await _measures(session, assignment)
        ],
        connected=bool(await _gradebooks(session, assignment.cohort_id)),
    )


async def grading(session: AsyncSession, *, actor: Actor, assignment_id: int) -> GradingView:
    """Instructors read what of the assignment becomes a grade."""
    assignment, _ = await _managed(session, actor=actor, assignment_id=assignment_id)
    return await _view(session, assignment)


async def save_grading(
    session: AsyncSession,
    *,
    actor: Actor,
    assignment_id: int,
    weights: dict[str, int],
    enabled: bool,
) -> GradingView:
    """Instructors choose the measures and weights (whole numbers 0-100) that make the
    assignment's grade; at least one weight when grades are on."""
    assignment, cohort = await _managed(session, actor=actor, assignment_id=assignment_id)
    known = dict(await _measures(session, assignment))
    problems = [
        Problem("is not a measure of this assignment", field=key)
        for key in weights
        if key not in known
    ]
    problems += [
        Problem(f"must be a whole number from 0 to {MAX_WEIGHT}", field=key)
        for key, value in weights.items()
        if key in known and (isinstance(value, bool) or not isinstance(value, int)
                             or not 0 <= value <= MAX_WEIGHT)
    ]  # fmt: skip
    if not problems and enabled and not any(weights.values()):
        problems.append(Problem("give at least one measure a weight", field="weights"))
    if problems:
        raise Invalid(problems=problems)
    kept = {k: int(v) for k, v in weights.items() if v}
    await insert_ignore(
        session, LtiGradeSettings, assignment_id=assignment_id, enabled=enabled, weights=kept,
        updated_at=utcnow(),
    )  # fmt: skip
    await session.execute(
        sa.update(LtiGradeSettings)
        .where(col(LtiGradeSettings.assignment_id) == assignment_id)
        .values(enabled=enabled, weights=kept, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    await audit.record(
        session, actor=actor, cohort_id=cohort.id, action="lti.grades.settings",
        target_type="assignment", target_id=assignment_id,
        details={"enabled": enabled, "weights": kept},
    )  # fmt: skip
    return await _view(session, assignment)


# --- scores --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    paper: bool
    reviews_submitted: int
    mean_rating: float | None
    questions: frozenset[int]  # questions the student posted under


async def measure(
    session: AsyncSession, *, assignment: Assignment, user_ids: list[int]
) -> dict[int, Measured]:
    """Each student's own work in the assignment (the participation export's numbers)."""
    a = assignment.id
    papers = set(
        (
            await session.execute(
                select(Paper.author_id).where(
                    Paper.assignment_id == a,
                    col(Paper.submitted_at).is_not(None),
                    col(Paper.author_id).in_(user_ids),
                )
            )
        ).scalars()
    )
    submitted = dict(
        (
            await session.execute(
                select(ReviewTask.reviewer_id, sa.func.count())
                .where(
                    ReviewTask.assignment_id == a,
                    ReviewTask.status == TaskStatus.submitted,
                    col(ReviewTask.reviewer_id).in_(user_ids),
                )
                .group_by(col(ReviewTask.reviewer_id))
            )
        ).all()
    )
    ratings = dict(
        (
            await session.execute(
                select(ReviewTask.reviewer_id, sa.func.avg(ReviewRating.rating))
                .join(Review, col(Review.task_id) == col(ReviewTask.id))
                .join(ReviewRating, col(ReviewRating.review_id) == col(Review.id))
                .where(ReviewTask.assignment_id == a, col(ReviewTask.reviewer_id).in_(user_ids))
                .group_by(col(ReviewTask.reviewer_id))
            )
        ).all()
    )
    posted: dict[int, set[int]] = {}
    for author, qid in (
        await session.execute(
            select(Post.author_id, Thread.question_id)
            .join(Thread, col(Thread.id) == col(Post.thread_id))
            .join(Question, col(Question.id) == col(Thread.question_id))
            .where(
                Question.assignment_id == a,
                col(Post.deleted_at).is_(None),
                col(Post.author_id).in_(user_ids),
            )
            .distinct()
        )
    ).all():
        posted.setdefault(author, set()).add(qid)
    return {
        uid: Measured(
            paper=uid in papers,
            reviews_submitted=int(submitted.get(uid, 0)),
            mean_rating=float(ratings[uid]) if ratings.get(uid) is not None else None,
            questions=frozenset(posted.get(uid, ())),
        )
        for uid in user_ids
    }


def score_of(
    m: Measured, *, weights: dict[str, int], reviews_per_paper: int
) -> tuple[float, str, str]:
    """(score out of 100, activityProgress, the comment) of one student."""
    fractions: dict[str, float | None] = {}
    notes: list[str] = []
    asked = max(reviews_per_paper, 1)
    for key in weights:
        if key == PAPER:
            fractions[key] = 1.0 if m.paper else 0.0
            notes.append(f"paper submitted: {'yes' if m.paper else 'no'}")
        elif key == REVIEWS:
            fractions[key] = min(m.reviews_submitted, asked) / asked
            notes.append(f"reviews completed: {min(m.reviews_submitted, asked)} of {asked}")
        elif key == HELPFULNESS:
            fractions[key] = None if m.mean_rating is None else m.mean_rating / MAX_RATING
            notes.append(
                "helpfulness of your reviews: not rated yet" if m.mean_rating is None
                else f"helpfulness of your reviews: {m.mean_rating:.1f} of {MAX_RATING}"
            )  # fmt: skip
        elif key.startswith(QUESTION):
            fractions[key] = 1.0 if int(key.removeprefix(QUESTION)) in m.questions else 0.0
    questions = [k for k in weights if k.startswith(QUESTION)]
    if questions:
        took_part = sum(1 for k in questions if fractions[k])
        notes.append(f"discussions taken part in: {took_part} of {len(questions)}")
    counted = {k: v for k, v in fractions.items() if v is not None and weights[k] > 0}
    total = sum(weights[k] for k in counted)
    score = (
        round(SCORE_MAXIMUM * sum(weights[k] * v for k, v in counted.items()) / total, 2)
        if total
        else 0.0
    )
    if counted and all(v >= 1 for v in counted.values()):
        progress = "Completed"
    elif m.paper:
        progress = "Submitted"
    elif score > 0:
        progress = "InProgress"
    else:
        progress = "Initialized"
    comment = "Peerboard: " + "; ".join(notes) + "." if notes else ""
    return score, progress, comment[:1000]


async def _lti_students(session: AsyncSession, *, cohort_id: int) -> list[tuple[int, str, str]]:
    """(user id, issuer, subject) of the cohort's students."""
    return [
        (uid, issuer, subject)
        for uid, issuer, subject in (
            await session.execute(
                select(User.id, User.issuer, User.subject)
                .join(Membership, col(Membership.user_id) == col(User.id))
                .where(Membership.cohort_id == cohort_id, Membership.role == Role.student)
                .order_by(col(User.id))
            )
        ).all()
        if uid is not None
    ]


async def _issuer_of_context(session: AsyncSession, context_pk: int) -> str | None:
    return await session.scalar(
        select(LtiPlatform.issuer)
        .join(LtiDeployment, col(LtiDeployment.platform_id) == col(LtiPlatform.id))
        .join(LtiContext, col(LtiContext.deployment_id) == col(LtiDeployment.id))
        .where(LtiContext.id == context_pk)
    )


async def queue_scores(session: AsyncSession, *, assignment: Assignment, reason: str) -> SendResult:
    """Write each student's current score as a delivery to each of the cohort's LMS
    gradebooks, in the caller's transaction. A score not yet sent for the same student is
    replaced (the newer one says more)."""
    assert assignment.id is not None
    row = await _settings(session, assignment.id)
    books = await _gradebooks(session, assignment.cohort_id)
    if row is None or not row.enabled or not any(row.weights.values()) or not books:
        return SendResult(queued=0, not_from_lms=0)
    students = await _lti_students(session, cohort_id=assignment.cohort_id)
    measured = await measure(session, assignment=assignment, user_ids=[s[0] for s in students])
    now = utcnow()
    stamp = now.isoformat(timespec="milliseconds")
    queued = 0
    from_lms: set[int] = set()
    for book in books:
        issuer = await _issuer_of_context(session, book.context_pk)
        mine = [(uid, subject) for uid, iss, subject in students if iss == issuer]
        from_lms |= {uid for uid, _ in mine}
        if not mine:
            continue
        await session.execute(
            sa.delete(LtiScorePost)
            .where(
                col(LtiScorePost.assignment_id) == assignment.id,
                col(LtiScorePost.context_pk) == book.context_pk,
                col(LtiScorePost.status) == "pending",
                col(LtiScorePost.attempts) == 0,
                col(LtiScorePost.user_id).in_([uid for uid, _ in mine]),
            )
            .execution_options(synchronize_session=False)
        )
        for uid, subject in mine:
            score, progress, comment = score_of(
                measured[uid], weights=row.weights, reviews_per_paper=assignment.reviews_per_paper
            )
            body = {
                "userId": subject,
                "scoreGiven": score,
                "scoreMaximum": SCORE_MAXIMUM,
                "comment": comment,
                "timestamp": stamp,
                "activityProgress": progress,
                "gradingProgress": "FullyGraded",
            }
            session.add(
                LtiScorePost(
                    assignment_id=assignment.id,
                    user_id=uid,
                    context_pk=book.context_pk,
                    payload=json.dumps(body),
                    score_given=score,
                    score_maximum=SCORE_MAXIMUM,
                    reason=reason,
                    status="pending",
                    next_attempt_at=now,
                    created_at=now,
                )
            )
            queued += 1
    await session.flush()
    return SendResult(queued=queued, not_from_lms=len(students) - len(from_lms))


async def phase_changed(session: AsyncSession, *, assignment: Assignment, before: Phase) -> None:
    """A phase closed (a step forward out of open, review or feedback): scores go out."""
    order = list(Phase)
    if before is not Phase.draft and order.index(assignment.phase) > order.index(before):
        await queue_scores(session, assignment=assignment, reason=f"{before.value} closed")


async def send_now(session: AsyncSession, *, actor: Actor, assignment_id: int) -> SendResult:
    """Instructors send every student's current score to the LMS now."""
    assignment, cohort = await _managed(session, actor=actor, assignment_id=assignment_id)
    if not await _gradebooks(session, cohort.id or 0):
        raise Invalid(
            "This cohort's course has not offered Peerboard its gradebook: enable grades "
            "(Assignment and Grade Services) for Peerboard in the LMS, then launch it once."
        )
    row = await _settings(session, assignment_id)
    if row is None or not row.enabled or not any(row.weights.values()):
        raise Invalid(problems=[Problem("choose what becomes a grade first", field="weights")])
    result = await queue_scores(session, assignment=assignment, reason="sent by hand")
    await audit.record(
        session, actor=actor, cohort_id=cohort.id, action="lti.grades.send",
        target_type="assignment", target_id=assignment_id, details={"queued": result.queued},
    )  # fmt: skip
    return result


async def gradebook(
    session: AsyncSession, *, actor: Actor, assignment_id: int
) -> tuple[Assignment, Cohort, GradingView, list[GradebookRow]]:
    """Per student, the last score sent (or being sent) to the LMS and its answer; cohort
    staff read it (the participation export's numbers), instructors also change it."""
    assignment, cohort = await _managed(
        session, actor=actor, assignment_id=assignment_id, read=True
    )
    view = (await _view(session, assignment)).model_copy(
        update={"editable": policy.can_manage_grades(actor, cohort)}
    )
    books = await _gradebooks(session, cohort.id or 0)
    issuers = {await _issuer_of_context(session, b.context_pk) for b in books}
    latest: dict[int, LtiScorePost] = {}
    for sent in (
        await session.execute(
            select(LtiScorePost)
            .where(LtiScorePost.assignment_id == assignment_id)
            .order_by(col(LtiScorePost.id))
        )
    ).scalars():
        latest[sent.user_id] = sent
    rows = []
    for uid, name, issuer in (
        await session.execute(
            select(User.id, User.display_name, User.issuer)
            .join(Membership, col(Membership.user_id) == col(User.id))
            .where(Membership.cohort_id == cohort.id, Membership.role == Role.student)
            .order_by(col(User.display_name), col(User.id))
        )
    ).all():
        post = latest.get(uid or 0)
        rows.append(
            GradebookRow(
                user_id=uid or 0,
                name=name,
                from_lms=issuer in issuers,
                score_given=post.score_given if post else None,
                score_maximum=post.score_maximum if post else None,
                reason=post.reason if post else None,
                status=post.status if post else None,
                attempts=post.attempts if post else 0,
                queued_at=post.created_at if post else None,
                sent_at=post.sent_at if post else None,
                response_status=post.response_status if post else None,
                last_error=post.last_error if post else "",
            )
        )
    return assignment, cohort, view, rows


# --- delivering ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Claimed:
    id: int
    assignment_id: int
    context_pk: int
    payload: str
    attempts: int


@dataclass(frozen=True)
class _Book:
    registration: Registration
    lineitems_url: str
    label: str
    resource_id: str
    line_item_url: str | None


async def _book(
    session: AsyncSession, *, assignment_id: int, context_pk: int, secret: str
) -> _Book | None:
    services = await session.scalar(
        select(LtiContextServices).where(LtiContextServices.context_pk == context_pk)
    )
    assignment = await session.get(Assignment, assignment_id)
    context = await session.get(LtiContext, context_pk)
    deployment = await session.get(LtiDeployment, context.deployment_id) if context else None
    platform = await session.get(LtiPlatform, deployment.platform_id) if deployment else None
    if services is None or services.lineitems_url is None or assignment is None or platform is None:
        return None
    item = await session.scalar(
        select(LtiLineItem).where(
            LtiLineItem.assignment_id == assignment_id, LtiLineItem.context_pk == context_pk
        )
    )
    return _Book(
        registration=await lti_advantage.registration_for(
            session, platform=platform, secret=secret
        ),
        lineitems_url=services.lineitems_url,
        label=f"{assignment.title} (Peerboard)"[:200],
        resource_id=f"peerboard-assignment-{assignment_id}",
        line_item_url=item.url if item is not None else None,
    )


async def _record(
    session: AsyncSession, claimed: _Claimed, *, ok: bool, status_code: int | None, error: str,
    now: datetime, permanent: bool = False,
) -> str:  # fmt: skip
    return await outbox.settle(
        session, LtiScorePost, row_id=claimed.id, attempts=claimed.attempts, ok=ok,
        permanent=permanent, done=("sent", "sent_at"),
        status_code=status_code, error=error, now=now,
    )  # fmt: skip


@dataclass
class ScoreSender:
    """Posts due scores; one per app process (see web/lti_jobs.py)."""

    client: AdvantageClient
    secret: str
    batch: int = 50

    async def deliver_due(
        self, sessions: async_sessionmaker[AsyncSession], *, now: datetime | None = None
    ) -> dict[str, int]:
        now = now or utcnow()
        async with transaction(sessions) as session:
            ids = await lease_due(session, LtiScorePost, now=now, limit=self.batch,
                                  lease=outbox.LEASE)  # fmt: skip
            rows = (
                list(
                    (
                        await session.execute(
                            select(LtiScorePost)
                            .where(col(LtiScorePost.id).in_(ids))
                            .order_by(col(LtiScorePost.id))
                            .execution_options(populate_existing=True)
                        )
                    ).scalars()
                )
                if ids
                else []
            )
            claimed = [
                _Claimed(r.id or 0, r.assignment_id, r.context_pk, r.payload, r.attempts)
                for r in rows
            ]
            books: dict[tuple[int, int], _Book | None] = {}
            for c in claimed:
                key = (c.assignment_id, c.context_pk)
                if key not in books:
                    books[key] = await _book(
                        session, assignment_id=c.assignment_id, context_pk=c.context_pk,
                        secret=self.secret,
                    )  # fmt: skip
        counts = {"sent": 0, "pending": 0, "failed": 0}
        urls: dict[tuple[int, int], str | ServiceError] = {}
        for item in claimed:
            key = (item.assignment_id, item.context_pk)
            book = books.get(key)
            ok, code, error, permanent = False, None, "", False
            if book is None:
                error, permanent = "The course no longer offers a gradebook service.", True
            else:
                if key not in urls:
                    urls[key] = await self._line_item(sessions, book, *key)
                url = urls[key]
                if isinstance(url, ServiceError):
                    error, code, permanent = url.message, url.status, not url.retryable
                else:
                    try:
                        response = await self.client.post_score(
                            book.registration, url, body=item.payload.encode()
                        )
                        ok, code = True, response.status_code
                    except ServiceError as exc:
                        error, code, permanent = exc.message, exc.status, not exc.retryable
            async with transaction(sessions) as session:
                status = await _record(
                    session, item, ok=ok, status_code=code, error=error, now=utcnow(),
                    permanent=permanent,
                )  # fmt: skip
            counts[status] = counts.get(status, 0) + 1
        return counts

    async def _line_item(
        self,
        sessions: async_sessionmaker[AsyncSession],
        book: _Book,
        assignment_id: int,
        context_pk: int,
    ) -> str | ServiceError:
        """The assignment's line item in the course: known, found by our resourceId, or
        made; remembered once (two processes racing keep the first)."""
        if book.line_item_url:
            return book.line_item_url
        try:
            url = await self.client.find_line_item(
                book.registration, book.lineitems_url, resource_id=book.resource_id, tag=TAG
            )
            if url is None:
                url = await self.client.create_line_item(
                    book.registration, book.lineitems_url,
                    item={"scoreMaximum": SCORE_MAXIMUM, "label": book.label,
                          "resourceId": book.resource_id, "tag": TAG},
                )  # fmt: skip
        except ServiceError as exc:
            return exc
        async with transaction(sessions) as session:
            await insert_ignore(
                session, LtiLineItem, assignment_id=assignment_id, context_pk=context_pk,
                resource_id=book.resource_id, url=url, created_at=utcnow(),
            )  # fmt: skip
            kept = await session.scalar(
                select(LtiLineItem.url).where(
                    LtiLineItem.assignment_id == assignment_id,
                    LtiLineItem.context_pk == context_pk,
                )
            )
        return kept or url


def payload_of(post: LtiScorePost) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(post.payload)
    return value
