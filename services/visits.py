"""What is new to a reader: when each person last read each thread, and how many posts by
others they have not read yet, per question (the assignment page) and per thread (a
question's page).

A visit is kept per (person, thread), not per (person, question): a question's page lists
thread titles only, so opening it reads no post; opening a thread does. A thread never
opened counts all of its posts by others as new.

What counts is what the reader could read: posts in threads they may see under the
discussion's own rule (policy.visible_threads: "post first", threads whose opening post is
hidden), never hidden or deleted posts (a count must not let anyone infer a post they cannot
read), never their own. The visit record is the owner's alone: nothing shows one person
another's visits; it is in their own data export (services/people.py) and erased with them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from services import policy
from services.db import core_select
from services.models import Assignment, Post, Question, Thread, ThreadVisit, UTCDateTime
from services.policy import Actor, DiscussionScope


async def record_visit(
    session: AsyncSession, *, actor: Actor, thread_id: str, read_at: datetime
) -> None:
    """Opening a thread marks what was in it at `read_at` as read, for the reader only.

    One statement (INSERT … SELECT … ON CONFLICT DO UPDATE), so two tabs opening the same
    thread at once cannot both insert; a visit never moves back in time (an older request
    finishing last keeps the newer mark). The caller has already let the actor read the
    thread; a thread gone since is simply not marked."""
    if actor.user_id is None:
        return
    table = ThreadVisit.__table__  # type: ignore[attr-defined]
    source = sa.select(
        sa.literal(actor.user_id, sa.Integer),
        col(Thread.id),
        sa.literal(read_at, UTCDateTime()),
    ).where(col(Thread.public_id) == thread_id)
    statement: Any
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement = pg_insert(table)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(table)
    statement = statement.from_select(["user_id", "thread_id", "read_at"], source)
    later = sa.case(
        (statement.excluded.read_at > table.c.read_at, statement.excluded.read_at),
        else_=table.c.read_at,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["user_id", "thread_id"], set_={"read_at": later}
        )
    )


async def needs_mark(session: AsyncSession, *, actor: Actor, thread_id: str) -> bool:
    """Whether reading this thread now would move the reader's mark: never read, or a post
    came in after their last read. Asked in the read unit, so a reader re-reading a thread
    with nothing new takes no write lock at all (one indexed read instead)."""
    if actor.user_id is None:
        return False
    stale = await session.scalar(
        sa.select(sa.literal(True))
        .select_from(Thread)
        .outerjoin(
            ThreadVisit,
            sa.and_(
                col(ThreadVisit.thread_id) == col(Thread.id),
                col(ThreadVisit.user_id) == actor.user_id,
            ),
        )
        .where(
            col(Thread.public_id) == thread_id,
            sa.or_(
                col(ThreadVisit.read_at).is_(None),
                col(ThreadVisit.read_at) < col(Thread.last_activity_at),
            ),
        )
    )
    return bool(stale)


# Aliases made once: a fresh aliased() entity costs ~0.7 ms to adapt its columns on first
# use, every time a query is built with one.
_OPENING = aliased(Post, name="opening_post")
_VISIT = aliased(ThreadVisit, name="visit")
_THEIRS = aliased(Thread, name="their_thread")


def _unread(actor: Actor, *, cohort_id: int, group: Any) -> Any:
    """Posts new to the actor, counted per `group`, before the filter on where they live:
    by others, neither hidden nor deleted, in threads the actor may see, after their visit."""
    uid = actor.user_id if actor.user_id is not None else -1
    opening, visit = _OPENING, _VISIT
    query = (
        core_select(group, sa.func.count(col(Post.id)))
        .select_from(Post)
        .join(Thread, col(Thread.id) == col(Post.thread_id))
        .join(Question, col(Question.id) == col(Thread.question_id))
        .join(
            opening,
            sa.and_(col(opening.thread_id) == col(Thread.id), col(opening.parent_id).is_(None)),
        )
        .outerjoin(
            visit, sa.and_(col(visit.thread_id) == col(Thread.id), col(visit.user_id) == uid)
        )
        .where(
            col(Post.author_id) != uid,
            col(Post.hidden_at).is_(None),
            col(Post.deleted_at).is_(None),
            sa.or_(col(visit.read_at).is_(None), col(Post.created_at) > col(visit.read_at)),
        )
        .group_by(group)
    )
    if policy.is_discussion_staff(actor, cohort_id):
        return query
    # The list form of policy.can_view_thread, for every question at once: one's own
    # threads; others' whose opening post is not hidden, unless "post first" still
    # withholds them (the reader has not opened a thread of their own there).
    theirs = _THEIRS
    mine = (
        sa.select(col(theirs.id))
        .where(col(theirs.question_id) == col(Question.id), col(theirs.author_id) == uid)
        .correlate(Question)
    )
    may_see_others = sa.or_(sa.not_(col(Question.post_first)), mine.exists())
    own = col(Thread.author_id) == uid
    visible = sa.or_(own, sa.and_(col(opening.hidden_at).is_(None), may_see_others))
    return query.where(visible)


async def new_posts_by_question(
    session: AsyncSession, *, actor: Actor, assignment: Assignment
) -> dict[int, int]:
    """For an assignment the actor may see: each question's count of posts new to them
    (question id → count; a question with none is absent). One query, whatever the size."""
    if actor.user_id is None:
        return {}
    query = _unread(actor, cohort_id=assignment.cohort_id, group=col(Question.id)).where(
        col(Question.assignment_id) == assignment.id
    )
    return {int(q): int(n) for q, n in (await session.execute(query)).all()}


async def new_posts_by_thread(
    session: AsyncSession, *, actor: Actor, scope: DiscussionScope
) -> dict[int, int]:
    """For a question's discussion the actor may read: each thread's count of posts new to
    them (thread id → count; a thread with none is absent). One query."""
    if actor.user_id is None:
        return {}
    query = _unread(actor, cohort_id=scope.cohort_id, group=col(Thread.id)).where(
        col(Thread.question_id) == scope.question_id
    )
    return {int(t): int(n) for t, n in (await session.execute(query)).all()}
