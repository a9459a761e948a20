"""Exports: posts, reviews, participation, the audit log.

Rows stream from the database in pages of bounded size, so a 100,000-row export does not
sit in memory; every cell is neutralized against spreadsheet formula injection. The caller
owns the (read-only) transaction that the rows are streamed in.

Who takes what (policy.can_take_export): moderators and instructors take every export (the
audit log: instructors only); students take the posts export of their cohort's assignments,
always in the student view, and nothing else (NotFound, as for a missing export).

The moderator view of posts names authors (name, email, exact times). The student view is
the discussion as one student reads it, row for row, with the discussion's own rules:

- rows: the threads the question's thread list shows them (policy.visible_threads: in a
  "post first" question they have not posted in, only their own; a thread whose opening
  post is hidden, only if it is theirs); then only posts whose text they may read
  (policy.can_read_post_body: other people's posts hidden by a moderator or by flags drop
  out); a deleted post only where the thread page keeps it, as a placeholder without author
  or text: the opening post, and replies with a reply below them that is not deleted;
- identity: presenters.discussion_name, the rule of the thread pages: the author's alias on other
  people's anonymous posts, the name elsewhere (their own name on their own posts); never
  an email; times to the minute, as the pages give them (an exact time links an anonymous
  post to whoever was seen writing it).

A student who asks for `view=moderator` still gets the student view: names are not theirs
to export. Staff asking for `?view=student` get what a classmate sees who has posted in
every question (so "post first" hides nothing) and wrote none of the posts: no hidden
posts, aliases on every anonymous post. Where nothing is hidden or deleted the two views
hold the same rows and differ only in IDENTITY_COLUMNS.

Review exports never name reviewers or authors: moderators reveal those one paper at a
time, with a reason (services/reveals.py). Nor can the two staff sheets be joined into who
reviewed whom: the participation sheet gives, per named student, what graders need (posts,
paper submitted and late, reviews assigned and submitted, mean helpfulness received); the
reviews export gives only submitted reviews, by "Paper K7Q2" and "Reviewer N", with no
status, time or rating that would line up with a person's row.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services import policy, presenters
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
from services.policy import Actor, DiscussionScope

KINDS = ("posts", "reviews", "participation", "audit")
VIEWS = ("moderator", "student")
PAGE = 1000
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# The columns the student view of posts changes: who wrote it, and when to the second.
IDENTITY_COLUMNS = {"posts": ("author", "author_email", "created_at", "edited_at")}


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
    # The student view of posts: whose eyes the discussion is read with, and the scope of
    # each question's discussion (question id -> scope) for that reader.
    reader: Actor | None = None
    scopes: Mapping[int, DiscussionScope] = field(default_factory=dict)


async def plan(
    session: AsyncSession,
    *,
    actor: Actor,
    assignment_id: int,
    kind: str,
    view: str | None = None,
) -> ExportPlan:
    """Check that the actor may take this export, and describe its columns and, for the
    student view of posts, who reads the discussion (staff: moderator view by default;
    everyone else: the student view, whatever they ask for)."""
    if kind not in KINDS:
        raise NotFound("No such export.")
    if view is not None and view not in VIEWS:
        raise Invalid(problems=[Problem("must be moderator or student", field="view")])
    assignment = await policy.access_assignment(session, actor=actor, assignment_id=assignment_id)
    cohort = await session.get(Cohort, assignment.cohort_id)
    assert cohort is not None
    if not policy.can_take_export(actor, cohort, kind=kind):
        raise NotFound("No such export.")
    named = policy.can_export_names(actor, cohort)
    view = (view or "moderator") if named else "student"
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
    reader: Actor | None = None
    scopes: dict[int, DiscussionScope] = {}
    if kind == "posts" and view == "student":
        # Each question's scope says whether post-first has opened for this reader.
        for question_id in sorted(questions):
            scopes[question_id] = await policy.discussion_scope(
                session, actor=actor, question_id=question_id
            )
        reader = actor
        if named:
            reader = _classmate(cohort)
            scopes = {q: replace(scope, has_posted=True) for q, scope in scopes.items()}
    return ExportPlan(
        kind=kind,
        view=view,
        assignment=assignment,
        cohort=cohort,
        columns=_columns(kind, components, questions),
        components=components,
        question_positions=questions,
        reader=reader,
        scopes=MappingProxyType(scopes),
    )


def _classmate(cohort: Cohort) -> Actor:
    """Staff's "as students see it": a student of the cohort who wrote none of the posts (and,
    through the scopes, has posted in every question)."""
    assert cohort.id is not None
    return Actor(user_id=None, roles=MappingProxyType({cohort.id: Role.student}))


def _minute(value: datetime | None) -> datetime | None:
    # The discussion pages give times to the minute: an exact time links an anonymous post to
    # whoever was seen writing it.
    return value.replace(second=0, microsecond=0) if value is not None else None


def _columns(kind: str, components: list[tuple[int, str]], questions: dict[int, int]) -> list[str]:
    if kind == "posts":
        return ["question", "thread", "thread_title", "post", "parent", "author", "author_email",
                "anonymous", "created_at", "edited_at", "status", "score", "body"]  # fmt: skip
    if kind == "reviews":
        # Submitted reviews only, and nothing per review that the named participation sheet
        # also holds per person (status, times, helpfulness): joined, those would say who
        # reviewed whom without a reveal.
        return ["paper", "reviewer", "overall_stance",
                *[f"stance: {label}" for _, label in components],
                "evidence", "rationale", "suggestion"]  # fmt: skip
    if kind == "participation":
        return ["name", "email", "subject", "threads", "replies",
                *[f"posts q{pos}" for pos in sorted(questions.values())],
                "paper_submitted_at", "paper_late", "reviews_assigned", "reviews_submitted",
                "mean_helpfulness_received"]  # fmt: skip
    return ["id", "created_at", "actor", "action", "target_type", "target_id", "reason",
            "details", "hash"]  # fmt: skip


async def count(session: AsyncSession, export: ExportPlan) -> int:
    """How many rows the export will have (for progress bars; in the student view of posts
    an upper bound, since hidden posts the reader may not read drop out as rows stream)."""
    a = export.assignment.id
    if export.kind == "posts":
        query = _readable_posts(core_select(sa.func.count()).select_from(Post), export)
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


def _readable_posts(query: Any, export: ExportPlan) -> Any:
    """The export's posts: all of the assignment's, or in the student view the threads its
    reader may see (policy.visible_threads), without deleted posts the thread page leaves
    out. Hidden posts are left to `_post_rows`, which asks policy.can_read_post_body."""
    query = (
        query.join(Thread, col(Thread.id) == Post.thread_id)
        .join(Question, col(Question.id) == Thread.question_id)
        .where(Question.assignment_id == export.assignment.id)
    )
    if export.reader is None:
        return query
    # visible_threads filters threads joined to their opening post: here the opening post is
    # looked up beside each row's thread (correlated on the thread only, so the database
    # still walks the posts in id order, page by page), under each question's own scope.
    thread_visible = (
        sa.exists()
        .where(
            col(Post.thread_id) == Thread.id,
            col(Post.parent_id).is_(None),
            sa.or_(
                sa.false(),
                *[
                    (col(Thread.question_id) == question_id)
                    & policy.visible_threads(export.reader, scope)
                    for question_id, scope in export.scopes.items()
                ],
            ),
        )
        .correlate(Thread)
    )
    # As in thread_reading._render_thread: a deleted reply stays (as a placeholder) only while
    # some post below it is not deleted; the opening post always stays.
    below = sa.orm.aliased(Post)
    living_reply = sa.exists().where(
        col(below.thread_id) == Post.thread_id,
        col(below.path).like(col(Post.path) + "/%"),
        col(below.deleted_at).is_(None),
    )
    return query.where(
        thread_visible,
        col(Post.deleted_at).is_(None) | col(Post.parent_id).is_(None) | living_reply,
    )


async def _post_rows(session: AsyncSession, export: ExportPlan) -> AsyncIterator[list[Any]]:
    parent = sa.orm.aliased(Post)
    query = _readable_posts(
        core_select(
            col(Post.id),
            col(Thread.question_id),
            col(Question.position),
            col(Thread.public_id),
            col(Thread.title),
            col(Post.public_id),
            parent.public_id,
            col(Post.author_id),
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
        ).select_from(Post),
        export,
    )
    query = (
        query.join(User, col(User.id) == Post.author_id)
        .outerjoin(parent, parent.id == Post.parent_id)
        .outerjoin(
            Alias,
            (col(Alias.user_id) == Post.author_id)
            & (col(Alias.assignment_id) == Question.assignment_id),
        )
    )
    reader = export.reader
    async for batch in _pages(session, query, col(Post.id)):
        for (_, question_id, q, thread, title, post, parent_id, author_id, name, email, alias,
             anonymous, created, edited, deleted, hidden, score, body) in batch:  # fmt: skip
            if reader is None:  # staff, by name
                author, author_email = name, email
            else:  # what the reader's thread pages show them
                scope = export.scopes[question_id]
                if not policy.can_read_post_body(
                    reader, scope, author_id=author_id, hidden=hidden is not None
                ):
                    continue
                # A deleted post shows no author to anyone but staff (never the reader here).
                author = "" if deleted else presenters.discussion_name(
                    reader, scope, author_id=author_id, anonymous=anonymous,
                    display_name=name, alias=alias,
                )  # fmt: skip
                author_email = ""
                created, edited = _minute(created), _minute(edited)
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
        )
        .join(Paper, col(Paper.id) == ReviewTask.paper_id)
        .join(Review, col(Review.task_id) == ReviewTask.id)
        .where(
            ReviewTask.assignment_id == export.assignment.id,
            ReviewTask.status == TaskStatus.submitted,
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
        for _, code, number, _, rid, overall, rationale, suggestion in batch:
            mine = stances.get(rid or 0, {})
            yield [
                presenters.paper_label(code), presenters.reviewer_label(number),
                overall.value if overall else "",
                *[mine.get(cid, "") for cid, _ in export.components],
                " | ".join(evidence.get(rid or 0, [])), rationale or "", suggestion or "",
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
