"""Exports for moderators and instructors: posts, reviews, participation, the audit log.

Rows stream from the database in pages of bounded size, so a 100,000-row export does not
sit in memory; every cell is neutralized against spreadsheet formula injection. The caller
owns the (read-only) transaction that the rows are streamed in.

Identity: the moderator view of posts names authors; the student view shows exactly what a
classmate sees (the alias behind an anonymous post) — the two differ only in the identity
columns. Review exports never name reviewers or authors: moderators reveal those one paper
at a time, with a reason (services/reveals.py).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services import policy
from services.db import core_select
from services.errors import Invalid, NotFound, Problem
from services.models import (
    Alias,
    Assignment,
    AuditEvent,
    Cohort,
    EvidenceQuote,
    Membership,
    Paper,
    Post,
    Question,
    Review,
    ReviewComponent,
    ReviewRating,
    ReviewTask,
    Role,
    RubricComponent,
    TaskStatus,
    Thread,
    User,
)
from services.policy import Actor

KINDS = ("posts", "reviews", "participation", "audit")
VIEWS = ("moderator", "student")
PAGE = 1000
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
IDENTITY_COLUMNS = {"posts": ("author", "author_email")}


def neutralize(value: object) -> str:
    """A cell a spreadsheet will not run: text starting with = + - @ tab or CR gets a '."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


@dataclass(frozen=True)
class ExportPlan:
    kind: str
    view: str
    assignment: Assignment
    cohort: Cohort
    columns: list[str]
    components: list[tuple[int, str]]
    question_positions: dict[int, int]


async def plan(
    session: AsyncSession, *, actor: Actor, assignment_id: int, kind: str, view: str = "moderator"
) -> ExportPlan:
    """Check that the actor may take this export, and describe its columns."""
    if kind not in KINDS:
        raise NotFound("No such export.")
    if view not in VIEWS:
        raise Invalid(problems=[Problem("must be moderator or student", field="view")])
    assignment = await policy.access_assignment(session, actor=actor, assignment_id=assignment_id)
    cohort = await session.get(Cohort, assignment.cohort_id)
    assert cohort is not None
    allowed = (
        policy.can_read_audit_log(actor, cohort)
        if kind == "audit"
        else policy.can_manage_cohort(actor, cohort)
    )
    if not allowed:
        raise NotFound("No such export.")
    components = [
        (cid or 0, label)
        for cid, label in (
            await session.execute(
                core_select(col(RubricComponent.id), col(RubricComponent.label))
                .where(RubricComponent.assignment_id == assignment_id)
                .order_by(col(RubricComponent.position))
            )
        ).all()
    ]
    questions = {
        qid or 0: pos
        for qid, pos in (
            await session.execute(
                core_select(col(Question.id), col(Question.position)).where(
                    Question.assignment_id == assignment_id
                )
            )
        ).all()
    }
    return ExportPlan(
        kind=kind,
        view=view,
        assignment=assignment,
        cohort=cohort,
        columns=_columns(kind, components, questions),
        components=components,
        question_positions=questions,
    )


def _columns(kind: str, components: list[tuple[int, str]], questions: dict[int, int]) -> list[str]:
    if kind == "posts":
        return ["question", "thread", "thread_title", "post", "parent", "author", "author_email",
                "anonymous", "created_at", "edited_at", "status", "score", "body"]  # fmt: skip
    if kind == "reviews":
        return ["paper", "reviewer", "status", "overall_stance",
                *[f"stance: {label}" for _, label in components],
                "evidence", "rationale", "suggestion", "helpfulness", "helpfulness_comment",
                "submitted_at"]  # fmt: skip
    if kind == "participation":
        return ["name", "email", "subject", "threads", "replies",
                *[f"posts q{pos}" for pos in sorted(questions.values())],
                "paper_submitted_at", "paper_late", "reviews_assigned", "reviews_submitted",
                "mean_helpfulness_received"]  # fmt: skip
    return ["id", "created_at", "actor", "action", "target_type", "target_id", "reason",
            "details", "hash"]  # fmt: skip


async def count(session: AsyncSession, export: ExportPlan) -> int:
    """How many rows the export will have (for progress bars)."""
    a = export.assignment.id
    if export.kind == "posts":
        query = (
            core_select(sa.func.count())
            .select_from(Post)
            .join(Thread, col(Thread.id) == Post.thread_id)
            .join(Question, col(Question.id) == Thread.question_id)
            .where(Question.assignment_id == a)
        )
    elif export.kind == "reviews":
        query = (
            core_select(sa.func.count())
            .select_from(ReviewTask)
            .where(ReviewTask.assignment_id == a, ReviewTask.status != TaskStatus.withdrawn)
        )
    elif export.kind == "participation":
        query = (
            core_select(sa.func.count())
            .select_from(Membership)
            .where(Membership.cohort_id == export.cohort.id, Membership.role == Role.student)
        )
    else:
        query = (
            core_select(sa.func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.cohort_id == export.cohort.id)
        )
    return int(await session.scalar(query) or 0)


async def rows(session: AsyncSession, export: ExportPlan) -> AsyncIterator[list[Any]]:
    """The export's rows (raw values), streamed page by page."""
    producer = {
        "posts": _post_rows,
        "reviews": _review_rows,
        "participation": _participation_rows,
        "audit": _audit_rows,
    }[export.kind]
    async for row in producer(session, export):
        yield row


async def _pages(session: AsyncSession, query: Any, key: Any) -> AsyncIterator[Sequence[Any]]:
    """Keyset pagination on `key` (an integer id): memory stays bounded by PAGE."""
    after = -1
    while True:
        batch = (await session.execute(query.where(key > after).order_by(key).limit(PAGE))).all()
        if not batch:
            return
        yield batch
        after = batch[-1][0]


async def _post_rows(session: AsyncSession, export: ExportPlan) -> AsyncIterator[list[Any]]:
    parent = sa.orm.aliased(Post)
    query = (
        core_select(
            col(Post.id),
            col(Question.position),
            col(Thread.public_id),
            col(Thread.title),
            col(Post.public_id),
            parent.public_id,
            col(User.display_name),
            col(User.email),
            col(Alias.name),
            col(Post.anonymous),
            col(Post.created_at),
            col(Post.edited_at),
            col(Post.deleted_at),
            col(Post.hidden_at),
            col(Post.score),
            col(Post.body),
        )
        .join(Thread, col(Thread.id) == Post.thread_id)
        .join(Question, col(Question.id) == Thread.question_id)
        .join(User, col(User.id) == Post.author_id)
        .outerjoin(parent, parent.id == Post.parent_id)
        .outerjoin(
            Alias,
            (col(Alias.user_id) == Post.author_id)
            & (col(Alias.assignment_id) == Question.assignment_id),
        )
        .where(Question.assignment_id == export.assignment.id)
    )
    moderator = export.view == "moderator"
    async for batch in _pages(session, query, col(Post.id)):
        for (_, q, thread, title, post, parent_id, name, email, alias, anonymous, created,
             edited, deleted, hidden, score, body) in batch:  # fmt: skip
            if moderator:
                author, author_email = name, email
            else:  # what a classmate sees
                author, author_email = (alias or "Anonymous classmate") if anonymous else name, ""
            status = "deleted" if deleted else "hidden" if hidden else "visible"
            yield [q, thread, title, post, parent_id, author, author_email, anonymous, created,
                   edited, status, score, "" if deleted else body]  # fmt: skip


async def _review_rows(session: AsyncSession, export: ExportPlan) -> AsyncIterator[list[Any]]:
    query = (
        core_select(
            col(ReviewTask.id),
            col(Paper.code),
            col(ReviewTask.reviewer_number),
            col(ReviewTask.status),
            col(Review.id),
            col(Review.overall_stance),
            col(Review.rationale),
            col(Review.suggestion),
            col(Review.submitted_at),
            col(ReviewRating.rating),
            col(ReviewRating.comment),
        )
        .join(Paper, col(Paper.id) == ReviewTask.paper_id)
        .outerjoin(Review, col(Review.task_id) == ReviewTask.id)
        .outerjoin(ReviewRating, col(ReviewRating.review_id) == Review.id)
        .where(
            ReviewTask.assignment_id == export.assignment.id,
            ReviewTask.status != TaskStatus.withdrawn,
        )
    )
    labels = dict(export.components)
    async for batch in _pages(session, query, col(ReviewTask.id)):
        review_ids = [r[4] for r in batch if r[4] is not None]
        stances: dict[int, dict[int, str]] = {}
        evidence: dict[int, list[str]] = {}
        if review_ids:
            for rid, cid, stance in (
                await session.execute(
                    core_select(col(ReviewComponent.review_id), col(ReviewComponent.component_id),
                           col(ReviewComponent.stance))
                    .where(col(ReviewComponent.review_id).in_(review_ids))
                )
            ).all():  # fmt: skip
                stances.setdefault(rid, {})[cid] = stance.value
            for rid, cid, text in (
                await session.execute(
                    core_select(col(EvidenceQuote.review_id), col(EvidenceQuote.component_id),
                           col(EvidenceQuote.text))
                    .where(col(EvidenceQuote.review_id).in_(review_ids))
                    .order_by(col(EvidenceQuote.review_id), col(EvidenceQuote.start))
                )
            ).all():  # fmt: skip
                where = labels.get(cid, "overall") if cid else "overall"
                evidence.setdefault(rid, []).append(f"[{where}] {text}")
        for (_, code, number, status, rid, overall, rationale, suggestion, submitted, rating,
             comment) in batch:  # fmt: skip
            mine = stances.get(rid or 0, {})
            yield [
                f"Paper {code}", f"Reviewer {number}", status.value,
                overall.value if overall else "",
                *[mine.get(cid, "") for cid, _ in export.components],
                " | ".join(evidence.get(rid or 0, [])), rationale or "", suggestion or "",
                rating or "", comment or "", submitted,
            ]  # fmt: skip


async def _participation_rows(
    session: AsyncSession, export: ExportPlan
) -> AsyncIterator[list[Any]]:
    a = export.assignment.id
    students = (
        await session.execute(
            core_select(col(User.id), col(User.display_name), col(User.email), col(User.subject))
            .join(Membership, col(Membership.user_id) == User.id)
            .where(Membership.cohort_id == export.cohort.id, Membership.role == Role.student)
            .order_by(col(User.display_name), col(User.id))
        )
    ).all()
    per_question: dict[tuple[int, int], int] = {}
    threads: dict[int, int] = {}
    replies: dict[int, int] = {}
    for author, qid, is_root, n in (
        await session.execute(
            core_select(col(Post.author_id), col(Thread.question_id), col(Post.parent_id).is_(None),
                   sa.func.count())
            .join(Thread, col(Thread.id) == Post.thread_id)
            .join(Question, col(Question.id) == Thread.question_id)
            .where(Question.assignment_id == a, col(Post.deleted_at).is_(None))
            .group_by(Post.author_id, Thread.question_id, col(Post.parent_id).is_(None))
        )
    ).all():  # fmt: skip
        per_question[(author, qid)] = per_question.get((author, qid), 0) + n
        bucket = threads if is_root else replies
        bucket[author] = bucket.get(author, 0) + n
    papers = {
        author: (submitted, late)
        for author, submitted, late in (
            await session.execute(
                core_select(col(Paper.author_id), col(Paper.submitted_at), col(Paper.late)).where(
                    Paper.assignment_id == a
                )
            )
        ).all()
    }
    assigned: dict[int, int] = {}
    submitted_reviews: dict[int, int] = {}
    for reviewer, status, n in (
        await session.execute(
            core_select(col(ReviewTask.reviewer_id), col(ReviewTask.status), sa.func.count())
            .where(ReviewTask.assignment_id == a, ReviewTask.status != TaskStatus.withdrawn)
            .group_by(ReviewTask.reviewer_id, ReviewTask.status)
        )
    ).all():
        assigned[reviewer] = assigned.get(reviewer, 0) + n
        if status is TaskStatus.submitted:
            submitted_reviews[reviewer] = submitted_reviews.get(reviewer, 0) + n
    helpfulness = {
        reviewer: mean
        for reviewer, mean in (
            await session.execute(
                core_select(col(ReviewTask.reviewer_id), sa.func.avg(ReviewRating.rating))
                .join(Review, col(Review.task_id) == ReviewTask.id)
                .join(ReviewRating, col(ReviewRating.review_id) == Review.id)
                .where(ReviewTask.assignment_id == a)
                .group_by(ReviewTask.reviewer_id)
            )
        ).all()
    }
    order = sorted(export.question_positions.items(), key=lambda item: item[1])
    for uid, name, email, subject in students:
        paper = papers.get(uid)
        mean = helpfulness.get(uid)
        yield [
            name, email or "", subject, threads.get(uid, 0), replies.get(uid, 0),
            *[per_question.get((uid, qid), 0) for qid, _ in order],
            paper[0] if paper else "", paper[1] if paper else "",
            assigned.get(uid, 0), submitted_reviews.get(uid, 0),
            round(float(mean), 2) if mean is not None else "",
        ]  # fmt: skip


async def _audit_rows(session: AsyncSession, export: ExportPlan) -> AsyncIterator[list[Any]]:
    query = (
        core_select(
            col(AuditEvent.id),
            col(AuditEvent.created_at),
            col(User.display_name),
            col(AuditEvent.action),
            col(AuditEvent.target_type),
            col(AuditEvent.target_id),
            col(AuditEvent.reason),
            col(AuditEvent.details),
            col(AuditEvent.hash),
        )
        .outerjoin(User, col(User.id) == AuditEvent.actor_user_id)
        .where(AuditEvent.cohort_id == export.cohort.id)
    )
    async for batch in _pages(session, query, col(AuditEvent.id)):
        for event_id, at, actor, action, ttype, tid, reason, details, digest in batch:
            yield [event_id, at, actor or "system", action, ttype, tid, reason,
                   json.dumps(details, sort_keys=True, ensure_ascii=False), digest]  # fmt: skip


# --- encodings -----------------------------------------------------------------------------


async def as_csv(columns: list[str], source: AsyncIterator[list[Any]]) -> AsyncIterator[bytes]:
    """UTF-8 CSV with a header row; neutralized cells; flushed every few hundred rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([neutralize(c) for c in columns])
    pending = 1
    async for row in source:
        writer.writerow([neutralize(v) for v in row])
        pending += 1
        if pending >= 500:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue().encode()


async def as_json(columns: list[str], source: AsyncIterator[list[Any]]) -> AsyncIterator[bytes]:
    """A JSON array of objects keyed by the column names, streamed; values neutralized too,
    since JSON exports end up in spreadsheets as well."""
    yield b"["
    first = True
    async for row in source:
        item = dict(zip(columns, (neutralize(v) for v in row), strict=True))
        yield (b"" if first else b",") + b"\n" + json.dumps(item, ensure_ascii=False).encode()
        first = False
    yield b"\n]\n"
