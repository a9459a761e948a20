"""What is new to a reader (issue 12, item 7): when each person last read each thread, and
the count of posts by others they have not read, per question and per thread. Only what
the reader may read counts: never hidden or deleted posts, never threads "post first" still
withholds or whose opening post is hidden, never their own posts."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from services import assignments, discussions, moderation, question_threads, visits
from services.db import transaction
from services.models import Assignment, Post, Thread, ThreadVisit, utcnow
from services.policy import Actor
from tests.discussion_support import Forum, build_forum


@pytest.fixture
async def forum(session: AsyncSession) -> Forum:
    return await build_forum(session)


async def _assignment(session: AsyncSession, forum: Forum) -> Assignment:
    found = await session.get(Assignment, forum.assignment_id)
    assert found is not None
    return found


async def _by_question(session: AsyncSession, forum: Forum, actor: Actor) -> dict[int, int]:
    assignment = await _assignment(session, forum)
    return await visits.new_posts_by_question(session, actor=actor, assignment=assignment)


async def _thread(session: AsyncSession, forum: Forum, who: str, q: int = 0) -> Thread:
    actor = await forum.actor(session, who)
    return await discussions.create_thread(
        session, actor=actor, question_id=forum.question_ids[q], title=f"{who}'s", body="Hello"
    )


async def _reply(session: AsyncSession, forum: Forum, who: str, thread: Thread) -> str:
    actor = await forum.actor(session, who)
    post = await discussions.reply(session, actor=actor, thread_id=thread.public_id, body="Yes")
    return post.public_id


async def test_posts_by_others_are_new_until_the_reader_opens_their_thread(
    session: AsyncSession, forum: Forum
) -> None:
    ada = await forum.actor(session, "ada")
    q1, q2 = forum.question_ids
    thread = await _thread(session, forum, "ada")
    await _reply(session, forum, "ben", thread)
    await _reply(session, forum, "chen", thread)
    await _reply(session, forum, "ada", thread)  # her own: never new to her
    other = await _thread(session, forum, "ben", q=1)
    assert await _by_question(session, forum, ada) == {q1: 2, q2: 1}
    # Ben never opened Ada's thread: all of it by others is new to him.
    ben = await forum.actor(session, "ben")
    assert await _by_question(session, forum, ben) == {q1: 3}

    await visits.record_visit(session, actor=ada, thread_id=thread.public_id, read_at=utcnow())
    assert await _by_question(session, forum, ada) == {q2: 1}
    await _reply(session, forum, "ben", thread)
    assert await _by_question(session, forum, ada) == {q1: 1, q2: 1}
    # A question's page counts per thread, and in all.
    page = await question_threads.question_discussion(session, actor=ada, question_id=q1)
    assert [(t.id, t.new_posts) for t in page.threads] == [(thread.public_id, 1)]
    assert page.new_posts == 1
    page = await question_threads.question_discussion(session, actor=ada, question_id=q2)
    assert [(t.id, t.new_posts) for t in page.threads] == [(other.public_id, 1)]
    # The assignment's view carries the same numbers.
    detail = await assignments.get_assignment(session, actor=ada, assignment_id=forum.assignment_id)
    counts = await _by_question(session, forum, ada)
    view = assignments.present_assignment(detail, actor=ada, new_posts=counts)
    assert [(q.id, q.new_posts) for q in view.questions] == [(q1, 1), (q2, 1)]
    assert all(
        q.new_posts is None for q in assignments.present_assignment(detail, actor=ada).questions
    )


async def test_hidden_and_deleted_posts_never_count_nor_show_through_a_count(
    session: AsyncSession, forum: Forum
) -> None:
    ada = await forum.actor(session, "ada")
    mona = await forum.actor(session, "mona")
    q1 = forum.question_ids[0]
    thread = await _thread(session, forum, "ada")
    kept = await _reply(session, forum, "ben", thread)
    hidden = await _reply(session, forum, "ben", thread)
    deleted = await _reply(session, forum, "chen", thread)
    await moderation.moderate(session, actor=mona, action="hide", target=hidden, reason="Rude")
    chen = await forum.actor(session, "chen")
    await discussions.delete_post(session, actor=chen, post_id=deleted)
    assert kept
    assert await _by_question(session, forum, ada) == {q1: 1}
    # A thread whose opening post is hidden is not there for classmates: its replies add
    # nothing to their count, exactly as if the thread did not exist.
    secret = await _thread(session, forum, "ben")
    await _reply(session, forum, "chen", secret)
    opening_post = await session.scalar(
        select(Post.public_id).where(Post.thread_id == secret.id, col(Post.parent_id).is_(None))
    )
    assert opening_post is not None
    await moderation.moderate(session, actor=mona, action="hide", target=opening_post, reason="x")
    assert await _by_question(session, forum, ada) == {q1: 1}
    # Staff read the thread, so its reply (not hidden itself) is new to them.
    ivo = await forum.actor(session, "ivo")
    assert await _by_question(session, forum, ivo) == {q1: 3}  # kept, chen's reply, ada's opening


async def test_post_first_withholds_classmates_threads_from_the_count_until_one_posts(
    session: AsyncSession,
) -> None:
    forum = await build_forum(session, post_first=True)
    q1 = forum.question_ids[0]
    ada = await forum.actor(session, "ada")
    bens = await _thread(session, forum, "ben")
    await _reply(session, forum, "mona", bens)
    assert await _by_question(session, forum, ada) == {}
    mine = await _thread(session, forum, "ada")
    await _reply(session, forum, "ben", mine)
    # Now she has posted: Ben's thread (2 posts) and Ben's reply to hers.
    assert await _by_question(session, forum, ada) == {q1: 3}
    page = await question_threads.question_discussion(session, actor=ada, question_id=q1)
    assert sorted(t.new_posts for t in page.threads) == [1, 2]


async def test_a_visit_only_moves_forward_and_belongs_to_its_reader(
    session: AsyncSession, forum: Forum
) -> None:
    ada = await forum.actor(session, "ada")
    thread = await _thread(session, forum, "ben")
    later = utcnow()
    earlier = later - timedelta(minutes=5)
    await visits.record_visit(session, actor=ada, thread_id=thread.public_id, read_at=later)
    await visits.record_visit(session, actor=ada, thread_id=thread.public_id, read_at=earlier)
    rows = (await session.execute(select(ThreadVisit))).scalars().all()
    assert [(v.user_id, v.thread_id, v.read_at) for v in rows] == [
        (forum.users["ada"], thread.id, later)
    ]
    # A thread that is gone is simply not marked; nobody signed in marks nothing.
    await visits.record_visit(session, actor=ada, thread_id="no-such-thread", read_at=later)
    await visits.record_visit(
        session, actor=Actor.anonymous(), thread_id=thread.public_id, read_at=later
    )
    assert await session.scalar(select(sa.func.count()).select_from(ThreadVisit)) == 1


async def test_racing_visits_to_one_thread_both_succeed_and_keep_the_latest(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with transaction(sessions) as session:
        forum = await build_forum(session)
        thread = await _thread(session, forum, "ben")
    base = utcnow()
    stamps = [base + timedelta(seconds=i) for i in range(8)]

    async def visit(at: object) -> None:
        async with transaction(sessions) as session:
            ada = await forum.actor(session, "ada")
            await visits.record_visit(session, actor=ada, thread_id=thread.public_id, read_at=at)  # type: ignore[arg-type]

    await asyncio.gather(*(visit(at) for at in reversed(stamps)))
    async with transaction(sessions, write=False) as session:
        rows = (await session.execute(select(ThreadVisit.read_at))).scalars().all()
    assert rows == [stamps[-1]]


async def test_counting_costs_one_query_whatever_the_number_of_questions_and_posts(
    session: AsyncSession,
) -> None:
    async def statements(forum: Forum) -> int:
        ada = await forum.actor(session, "ada")
        assignment = await _assignment(session, forum)
        seen: list[str] = []

        def count(*args: object) -> None:
            seen.append(str(args[2]))

        engine = session.get_bind()
        event.listen(engine, "before_cursor_execute", count)
        try:
            await visits.new_posts_by_question(session, actor=ada, assignment=assignment)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(seen)

    small = await build_forum(session, slug="small")
    big = await build_forum(session, slug="big", post_first=True)
    for q in range(2):
        threads = [await _thread(session, big, who, q=q) for who in ("ben", "chen", "ada")]
        for thread in threads:
            for replier in ("ben", "chen", "mona"):
                await _reply(session, big, replier, thread)
    assert await statements(small) == await statements(big) == 1


async def test_rereading_a_thread_with_nothing_new_needs_no_mark(
    session: AsyncSession, forum: Forum
) -> None:
    """The read path writes a mark only when it would move: re-reading a thread with
    nothing new takes no write lock (a lecture hall refreshing one thread)."""
    ada = await forum.actor(session, "ada")
    thread = await _thread(session, forum, "ben")
    assert await visits.needs_mark(session, actor=ada, thread_id=thread.public_id)  # never read
    await visits.record_visit(session, actor=ada, thread_id=thread.public_id, read_at=utcnow())
    assert not await visits.needs_mark(session, actor=ada, thread_id=thread.public_id)
    await _reply(session, forum, "chen", thread)
    assert await visits.needs_mark(session, actor=ada, thread_id=thread.public_id)
    await visits.record_visit(session, actor=ada, thread_id=thread.public_id, read_at=utcnow())
    assert not await visits.needs_mark(session, actor=ada, thread_id=thread.public_id)
    # Someone not signed in has no mark to move.
    assert not await visits.needs_mark(session, actor=Actor.anonymous(), thread_id=thread.public_id)
