"""The assignment page tells each reader how many posts are new to them per question
(issue 12, item 7): opening a thread (page or API) marks it read, the API's assignment and
question views carry the same `new_posts`, the page costs the same number of queries
whatever the number of questions and posts, and the record of who read what is the
reader's alone (in their own data export, erased with them, shown to nobody else)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import select

from services import discussions, people, websessions
from services.db import transaction
from services.models import Thread, ThreadVisit
from services.policy import Actor
from tests.conftest import client_for
from tests.discussion_support import ISSUER, Forum, build_forum


async def _client(asgi: Any, sessions: async_sessionmaker[AsyncSession], uid: int) -> Any:
    async with transaction(sessions) as session:
        key, row = await websessions.create(
            session, policy=websessions.SessionPolicy(), user_id=uid
        )
    client = client_for(asgi)
    client.cookies.set("peerboard_session", key)
    client.headers["X-CSRF-Token"] = row.csrf_token
    return client


async def _forum(sessions: async_sessionmaker[AsyncSession], **kwargs: Any) -> Forum:
    async with transaction(sessions) as session:
        return await build_forum(session, **kwargs)


async def _thread(
    sessions: async_sessionmaker[AsyncSession], forum: Forum, who: str, q: int = 0
) -> str:
    async with transaction(sessions) as session:
        actor = await forum.actor(session, who)
        thread = await discussions.create_thread(
            session, actor=actor, question_id=forum.question_ids[q], title="On safety",
            body="A secure base is reliable.",
        )  # fmt: skip
        return thread.public_id


async def _reply(
    sessions: async_sessionmaker[AsyncSession], forum: Forum, who: str, thread_id: str
) -> None:
    async with transaction(sessions) as session:
        actor = await forum.actor(session, who)
        await discussions.reply(session, actor=actor, thread_id=thread_id, body="Agreed.")


def _badges(html: str) -> dict[int, str]:
    """Question number → the text of its "N new" badge, from the assignment page."""
    found: dict[int, str] = {}
    for number, item in re.findall(r'id="question-(\d+)">(.*?)</li>', html, re.S):
        badge = re.search(r'class="new-posts badge">(.*?)</span></span>', item, re.S)
        if badge:
            found[int(number)] = re.sub(r"<[^>]+>", "", badge.group(1))
    return found


async def test_the_assignment_page_counts_new_posts_per_question_until_the_thread_is_read(
    asgi: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    forum = await _forum(sessions)
    a, (q1, q2) = forum.assignment_id, forum.question_ids
    thread = await _thread(sessions, forum, "ben")
    await _reply(sessions, forum, "chen", thread)
    await _reply(sessions, forum, "ada", thread)  # her own: not new to her
    ada = await _client(asgi, sessions, forum.users["ada"])
    try:
        page = await ada.get(f"/assignments/{a}")
        assert page.status_code == 200
        assert _badges(page.text) == {1: "2 new posts since you last read"}
        api = (await ada.get(f"/api/v1/assignments/{a}")).json()
        assert [(q["id"], q["new_posts"]) for q in api["questions"]] == [(q1, 2), (q2, 0)]
        listing = (await ada.get(f"/api/v1/questions/{q1}/threads")).json()
        assert listing["new_posts"] == 2 and listing["threads"][0]["new_posts"] == 2
        question_page = await ada.get(f"/questions/{q1}")
        assert "2 new" in question_page.text

        # Reading the thread's page marks it read; the counts drop to nothing.
        assert (await ada.get(f"/threads/{thread}")).status_code == 200
        page = await ada.get(f"/assignments/{a}")
        assert _badges(page.text) == {}
        assert "new-posts" not in (await ada.get(f"/questions/{q1}")).text
        # A new reply is new again; reading the thread through the API marks it too.
        await _reply(sessions, forum, "ben", thread)
        api = (await ada.get(f"/api/v1/assignments/{a}")).json()
        assert api["questions"][0]["new_posts"] == 1
        assert _badges((await ada.get(f"/assignments/{a}")).text) == {
            1: "1 new post since you last read"
        }
        assert (await ada.get(f"/api/v1/threads/{thread}")).status_code == 200
        api = (await ada.get(f"/api/v1/assignments/{a}")).json()
        assert api["questions"][0]["new_posts"] == 0
        # A thread she may not read marks nothing and answers 404 as before.
        assert (await ada.get("/threads/AAAAAAAAAAAA")).status_code == 404
    finally:
        await ada.aclose()


@contextlib.contextmanager
def _statements() -> Iterator[list[str]]:
    seen: list[str] = []

    def listen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", listen)


async def _page_statements(
    asgi: Any, sessions: async_sessionmaker[AsyncSession], forum: Forum
) -> int:
    client = await _client(asgi, sessions, forum.users["ada"])
    try:
        await client.get(f"/assignments/{forum.assignment_id}")  # warm caches alike
        with _statements() as seen:
            page = await client.get(f"/assignments/{forum.assignment_id}")
        assert page.status_code == 200
        return len(seen)
    finally:
        await client.aclose()


async def test_the_assignment_page_costs_the_same_queries_whatever_its_size(
    asgi: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    small = await _forum(sessions, slug="small")
    big = await _forum(sessions, slug="big", questions_count=6, post_first=True)
    for q in range(6):
        threads = [await _thread(sessions, big, who, q=q) for who in ("ben", "chen")]
        for thread in threads:
            for who in ("ben", "chen", "mona"):
                await _reply(sessions, big, who, thread)
    # Some read, some not: the visits join must not cost a query per thread either.
    reader = await _client(asgi, sessions, big.users["ada"])
    await reader.get(f"/threads/{threads[0]}")
    await reader.aclose()
    few = await _page_statements(asgi, sessions, small)
    many = await _page_statements(asgi, sessions, big)
    assert few == many, (few, many)


async def test_who_read_what_is_in_the_readers_own_export_only_and_erased_with_them(
    asgi: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    forum = await _forum(sessions)
    thread = await _thread(sessions, forum, "ben")
    ada = await _client(asgi, sessions, forum.users["ada"])
    ivo = await _client(asgi, sessions, forum.users["ivo"])
    ben = await _client(asgi, sessions, forum.users["ben"])
    try:
        assert (await ada.get(f"/threads/{thread}")).status_code == 200
        mine = (await ada.get("/api/v1/me/data")).json()["threads_read"]
        assert [(t["thread"], t["thread_title"]) for t in mine] == [(thread, "On safety")]
        assert mine[0]["last_read_at"]
        # Not in anyone else's data, nor on what staff and the thread's author read.
        assert (await ben.get("/api/v1/me/data")).json()["threads_read"] == []
        received = b""
        a = forum.assignment_id
        for client, paths in (
            (ben, [f"/threads/{thread}", f"/api/v1/threads/{thread}", f"/assignments/{a}"]),
            (ivo, [f"/assignments/{a}/workspace", f"/api/v1/assignments/{a}/exports/posts.json",
                   f"/api/v1/assignments/{a}/exports/participation.csv"]),
        ):  # fmt: skip
            for path in paths:
                response = await client.get(path)
                assert response.status_code == 200, (path, response.text[:200])
                received += response.content
        assert b"last_read" not in received and b"threads_read" not in received
    finally:
        for client in (ada, ivo, ben):
            await client.aclose()
    async with transaction(sessions) as session:
        await people.erase_person(session, actor=Actor.system(), issuer=ISSUER, subject="psy-ada")
    async with transaction(sessions, write=False) as session:
        left = (await session.execute(select(ThreadVisit.user_id))).scalars().all()
        assert forum.users["ada"] not in left
        assert await session.scalar(select(Thread.id).where(Thread.public_id == thread))
        # Ben read his own thread by opening it: his mark stays.
        assert left == [forum.users["ben"]]
