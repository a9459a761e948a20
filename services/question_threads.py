"""A question's discussion page: its threads as one viewer may see them (with "post
first"), the composer and its who-sees-my-name notice, and the "post first" switch."""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services import policy, presenters, visits
from services.discussions import (
    _minute,
)
from services.errors import NotFound
from services.models import (
    Alias,
    Assignment,
    Cohort,
    Post,
    Question,
    Thread,
    User,
)
from services.policy import Actor, DiscussionScope
from services.thread_reading import identity_notice
from services.views import (
    ComposerView,
    QuestionDiscussionView,
    ThreadSummaryView,
)


async def question_discussion(
    session: AsyncSession, *, actor: Actor, question_id: int
) -> QuestionDiscussionView:
    """A question's discussion as this viewer may see it: threads (pinned first, then by
    latest activity), the post-first state, and what the composer should say."""
    scope = await policy.discussion_scope(session, actor=actor, question_id=question_id)
    question = await session.get(Question, question_id)
    assignment = await session.get(Assignment, scope.assignment_id)
    cohort_slug, cohort_name = (
        await session.execute(
            select(col(Cohort.slug), col(Cohort.name)).where(col(Cohort.id) == scope.cohort_id)
        )
    ).one()
    assert question is not None and assignment is not None
    unread = await visits.new_posts_by_thread(session, actor=actor, scope=scope)
    threads = await list_threads(session, actor=actor, scope=scope, new_posts=unread)
    anon = policy.can_post_anonymously(actor, scope)
    return QuestionDiscussionView(
        question=question_id,
        assignment=scope.assignment_id,
        assignment_title=assignment.title,
        cohort=cohort_slug,
        cohort_name=cohort_name,
        position=question.position,
        prompt_html=question.prompt_html,
        post_first=scope.post_first,
        has_posted=scope.has_posted,
        withheld=not policy.can_see_others_threads(actor, scope),
        threads=threads,
        composer=ComposerView(
            can_post=policy.can_post(actor, scope),
            can_post_anonymously=anon,
            identity_notice=identity_notice(actor, scope, anonymous=False),
            anonymous_notice=identity_notice(actor, scope, anonymous=True) if anon else None,
        ),
        can_moderate=policy.can_moderate(actor, scope.cohort_id),
        new_posts=sum(t.new_posts for t in threads),
    )


async def list_threads(
    session: AsyncSession,
    *,
    actor: Actor,
    scope: DiscussionScope,
    new_posts: Mapping[int, int] | None = None,
) -> list[ThreadSummaryView]:
    """The question's threads this viewer may see (the list form of can_view_thread), each
    with its count of posts new to them (`new_posts`, by thread id)."""
    unread = new_posts or {}
    opening = sa.and_(col(Post.thread_id) == col(Thread.id), col(Post.parent_id).is_(None))
    rows = await session.execute(
        select(Thread, col(Post.hidden_at), col(User.display_name), col(Alias.name))
        .join(Post, opening)
        .join(User, col(User.id) == col(Thread.author_id))
        .outerjoin(
            Alias,
            sa.and_(
                col(Alias.assignment_id) == scope.assignment_id,
                col(Alias.user_id) == col(Thread.author_id),
            ),
        )
        .where(Thread.question_id == scope.question_id, policy.visible_threads(actor, scope))
        .order_by(col(Thread.pinned).desc(), col(Thread.last_activity_at).desc(), col(Thread.id))
    )
    return [
        ThreadSummaryView(
            id=t.public_id,
            question=t.question_id,
            title=t.title,
            author=presenters.discussion_author(
                actor,
                scope,
                author_id=t.author_id,
                anonymous=t.anonymous,
                display_name=name,
                alias=alias,
            ),
            pinned=t.pinned,
            locked=t.locked,
            hidden=hidden_at is not None,
            post_count=t.post_count,
            created_at=_minute(t.created_at),
            last_activity_at=_minute(t.last_activity_at),
            new_posts=unread.get(t.id or 0, 0),
        )
        for t, hidden_at, name, alias in rows.all()
    ]


async def set_post_first(
    session: AsyncSession, *, actor: Actor, question_id: int, post_first: bool
) -> None:
    """Staff turn "post first" on or off for a question."""
    scope = await policy.discussion_scope(session, actor=actor, question_id=question_id)
    if not policy.can_moderate(actor, scope.cohort_id):
        raise NotFound("No such question.")
    question = await session.get(Question, question_id)
    assert question is not None
    question.post_first = post_first
    session.add(question)
    await session.flush()
