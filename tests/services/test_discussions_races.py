"""Concurrent writers on one thread: counts stay true, deletions never take other people's
posts with them, and racing first replies or votes do not collide (issue 15, items 1 and 2).

Each writer runs its own transaction on its own connection, as concurrent requests do; on
PostgreSQL they truly interleave, on SQLite they queue on the write lock."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from services import discussions
from services.db import Unavailable, transaction, unavailability
from services.errors import NotFound
from services.models import Post, PostVote, Role, Thread, ThreadFollow
from tests.discussion_support import Forum, build_forum

WRITERS = 12
# At most this many writers at once: enough to interleave on PostgreSQL, few enough that on
# a loaded CI machine none waits out SQLite's busy timeout (its writers queue on one lock).
AT_ONCE = asyncio.Semaphore(6)
BUSY_RETRIES = 5
NAMES = (*((f"s{i}", Role.student) for i in range(WRITERS)), ("mona", Role.moderator))


@pytest.fixture
async def forum(sessions: async_sessionmaker[AsyncSession]) -> Forum:
    async with transaction(sessions) as session:
        return await build_forum(session, names=NAMES)


async def _open_thread(sessions: async_sessionmaker[AsyncSession], forum: Forum) -> str:
    async with transaction(sessions) as session:
        actor = await forum.actor(session, "s0")
        thread = await discussions.create_thread(
            session, actor=actor, question_id=forum.question_ids[0], title="T", body="Opening"
        )
        return thread.public_id


async def _reply(
    sessions: async_sessionmaker[AsyncSession], forum: Forum, who: str, thread_id: str, n: int
) -> str:
    # As a client does after a 503 `unavailable` (busy): try again, a bounded number of
    # times. On a loaded machine SQLite's writers can wait out its busy timeout; a reply
    # that was refused that way was not stored (the count check below would see it).
    for attempt in range(BUSY_RETRIES):
        try:
            async with AT_ONCE, transaction(sessions) as session:
                actor = await forum.actor(session, who)
                post = await discussions.reply(
                    session, actor=actor, thread_id=thread_id, body=f"r{n}"
                )
                return post.public_id
        except Exception as exc:
            if unavailability(exc) is not Unavailable.busy or attempt == BUSY_RETRIES - 1:
                raise
            await asyncio.sleep(0.2)
    raise AssertionError("unreachable")


async def _count_and_rows(
    sessions: async_sessionmaker[AsyncSession], thread_id: str
) -> tuple[int, int]:
    async with transaction(sessions, write=False) as session:
        thread = await session.scalar(select(Thread).where(Thread.public_id == thread_id))
        assert thread is not None
        live = await session.scalar(
            select(sa.func.count())
            .select_from(Post)
            .where(Post.thread_id == thread.id, col(Post.deleted_at).is_(None))
        )
        return thread.post_count, live or 0


async def test_concurrent_replies_are_all_counted(
    sessions: async_sessionmaker[AsyncSession], forum: Forum
) -> None:
    thread_id = await _open_thread(sessions, forum)
    await asyncio.gather(
        *(_reply(sessions, forum, f"s{i % WRITERS}", thread_id, i) for i in range(3 * WRITERS))
    )
    assert await _count_and_rows(sessions, thread_id) == (1 + 3 * WRITERS, 1 + 3 * WRITERS)


async def test_concurrent_first_replies_all_follow_the_thread_once(
    sessions: async_sessionmaker[AsyncSession], forum: Forum
) -> None:
    thread_id = await _open_thread(sessions, forum)
    # Each writer replies twice at once: both replies try to make the first follow.
    await asyncio.gather(
        *(_reply(sessions, forum, f"s{i}", thread_id, i) for i in range(1, WRITERS)),
        *(_reply(sessions, forum, f"s{i}", thread_id, -i) for i in range(1, WRITERS)),
    )
    async with transaction(sessions, write=False) as session:
        followers = (
            await session.execute(
                select(ThreadFollow.user_id)
                .join(Thread, col(Thread.id) == ThreadFollow.thread_id)
                .where(Thread.public_id == thread_id)
            )
        ).scalars()
        assert sorted(followers) == sorted(forum.users[f"s{i}"] for i in range(WRITERS))


async def test_deleting_the_opening_post_after_a_burst_of_replies_keeps_every_reply(
    sessions: async_sessionmaker[AsyncSession], forum: Forum
) -> None:
    thread_id = await _open_thread(sessions, forum)
    # A count that drifted low (as the Python read-modify-write once left it) must not make
    # the opening post's deletion take the thread and its live replies with it.
    replies = [await _reply(sessions, forum, "s1", thread_id, i) for i in range(3)]
    async with transaction(sessions) as session:
        await session.execute(
            sa.update(Thread).where(col(Thread.public_id) == thread_id).values(post_count=1)
        )
    async with transaction(sessions) as session:
        opening = await session.scalar(
            select(Post.public_id)
            .join(Thread, col(Thread.id) == Post.thread_id)
            .where(Thread.public_id == thread_id, col(Post.parent_id).is_(None))
        )
        actor = await forum.actor(session, "s0")
        assert opening is not None
        removed = await discussions.delete_post(session, actor=actor, post_id=opening)
    assert removed is False
    async with transaction(sessions, write=False) as session:
        live = (
            await session.execute(
                select(Post.public_id).where(
                    col(Post.public_id).in_(replies), col(Post.deleted_at).is_(None)
                )
            )
        ).scalars()
        assert sorted(live) == sorted(replies)


async def test_a_reply_racing_the_opening_posts_deletion_is_kept_or_refused_never_lost(
    sessions: async_sessionmaker[AsyncSession], forum: Forum
) -> None:
    for _ in range(4):
        thread_id = await _open_thread(sessions, forum)
        async with transaction(sessions, write=False) as session:
            opening = await session.scalar(
                select(Post.public_id)
                .join(Thread, col(Thread.id) == Post.thread_id)
                .where(Thread.public_id == thread_id)
            )
        assert opening is not None

        async def delete(opening: str = opening) -> bool:
            async with transaction(sessions) as session:
                actor = await forum.actor(session, "s0")
                return await discussions.delete_post(session, actor=actor, post_id=opening)

        async def reply(thread_id: str = thread_id) -> str | None:
            try:
                return await _reply(sessions, forum, "s1", thread_id, 0)
            except NotFound:  # the thread was gone by the time the reply got to it
                return None

        thread_removed, reply_id = await asyncio.gather(delete(), reply())
        async with transaction(sessions, write=False) as session:
            stored = await session.scalar(select(Post.id).where(Post.public_id == reply_id))
        # Exactly one of: the reply was refused and the thread went, or both stay.
        if reply_id is None:
            assert thread_removed is True
        else:
            assert thread_removed is False and stored is not None


async def test_identical_votes_at_once_count_once(
    sessions: async_sessionmaker[AsyncSession], forum: Forum
) -> None:
    thread_id = await _open_thread(sessions, forum)
    post_id = await _reply(sessions, forum, "s1", thread_id, 0)

    async def vote(up: bool) -> None:
        async with transaction(sessions) as session:
            actor = await forum.actor(session, "s2")
            await discussions.vote(session, actor=actor, post_id=post_id, up=up)

    await asyncio.gather(*(vote(True) for _ in range(6)))
    async with transaction(sessions, write=False) as session:
        post = await session.scalar(select(Post).where(Post.public_id == post_id))
        votes = await session.scalar(
            select(sa.func.count()).select_from(PostVote).where(PostVote.post_id == post.id)
        )
        assert (post.score, votes) == (1, 1)  # type: ignore[union-attr]
    await asyncio.gather(*(vote(False) for _ in range(6)))
    async with transaction(sessions, write=False) as session:
        score = await session.scalar(select(Post.score).where(Post.public_id == post_id))
    assert score == 0


async def test_a_reply_deleted_twice_at_once_is_taken_off_the_count_once(
    sessions: async_sessionmaker[AsyncSession], forum: Forum
) -> None:
    thread_id = await _open_thread(sessions, forum)
    post_id = await _reply(sessions, forum, "s1", thread_id, 0)
    await _reply(sessions, forum, "s2", thread_id, 1)

    async def delete(who: str) -> None:
        async with transaction(sessions) as session:
            actor = await forum.actor(session, who)
            await discussions.delete_post(session, actor=actor, post_id=post_id)

    await asyncio.gather(delete("s1"), delete("mona"), delete("s1"))
    assert await _count_and_rows(sessions, thread_id) == (2, 2)


async def test_a_threads_events_commit_in_the_order_of_their_ids(
    sessions: async_sessionmaker[AsyncSession], forum: Forum
) -> None:
    """A live reader moves its cursor past the ids it has seen: an event of the thread
    committed after a later-numbered one would never reach it. So a second writer of the
    thread's events waits for the first to commit (PostgreSQL: the thread's row lock;
    SQLite: its write lock)."""
    from services import events

    public_id = await _open_thread(sessions, forum)
    async with transaction(sessions, write=False) as session:
        thread_id = await session.scalar(select(Thread.id).where(Thread.public_id == public_id))
    assert thread_id is not None
    channel = events.thread_channel(thread_id)
    recorded, release = asyncio.Event(), asyncio.Event()

    async def first() -> int:
        async with transaction(sessions) as session:
            event_id = await events.record(
                session, channel=channel, kind="post_edited", thread_id=thread_id
            )
            recorded.set()
            await release.wait()
            return event_id

    async def second() -> int:
        await recorded.wait()
        async with transaction(sessions) as session:
            return await events.record(
                session, channel=channel, kind="post_edited", thread_id=thread_id
            )

    one, two = asyncio.create_task(first()), asyncio.create_task(second())
    await recorded.wait()
    done, _ = await asyncio.wait({two}, timeout=1.0)
    assert not done, "the second writer committed while the first's event was uncommitted"
    release.set()
    first_id, second_id = await asyncio.gather(one, two)
    assert first_id < second_id
