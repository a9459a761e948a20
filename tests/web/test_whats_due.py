"""What a student sees at a glance (issue 12, item 7), on the demo's three assignments: what
is due and when on the assignment page, the unread badge and search in the header, and
notifications that say when they happened and name the replier only as the reader may know
them (a named reply's author; an anonymous reply's alias, never the name)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import select

from services import websessions
from services.db import transaction
from services.demo import seed_demo
from services.demo.living import seed_living_cohort
from services.demo.reviews import TITLE as SAMPLE_ROUND
from services.demo.writing import TITLE as WRITING_ROUND
from services.models import Alias, Assignment, User
from tests.conftest import client_for

ISSUER = "http://127.0.0.1:9400"


async def _demo(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with transaction(sessions) as session:
        assignment = await seed_demo(session, issuer=ISSUER)
        await seed_living_cohort(
            session, assignment=assignment, issuer=ISSUER,
            sample_paper=assignment.sample_paper or "",
        )  # fmt: skip
        rows = (await session.execute(select(Assignment.title, Assignment.id))).all()
        ids = {title: int(i) for title, i in rows}
        ids["secure-base"] = int(assignment.id or 0)
        return ids


async def _client(asgi: Any, sessions: async_sessionmaker[AsyncSession], subject: str) -> Any:
    async with transaction(sessions) as session:
        user = await session.scalar(select(User).where(User.subject == subject))
        assert user is not None
        key, row = await websessions.create(
            session, policy=websessions.SessionPolicy(), user_id=user.id
        )
    client = client_for(asgi)
    client.cookies.set("peerboard_session", key)
    client.headers["X-CSRF-Token"] = row.csrf_token
    return client


def _due(html: str) -> str:
    found = re.search(r'<section aria-labelledby="due-heading".*?</section>', html, re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", found.group(0))) if found else ""


async def test_each_student_is_told_what_is_due_and_when(
    asgi: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ids = await _demo(sessions)
    ada = await _client(asgi, sessions, "ada-student")
    ben = await _client(asgi, sessions, "ben-student")
    ivo = await _client(asgi, sessions, "ivo-instructor")
    try:
        # Writing: Ada has a draft, Ben has not begun; both see the paper's deadline.
        page = await ada.get(f"/assignments/{ids[WRITING_ROUND]}")
        assert page.status_code == 200
        due = _due(page.text)
        assert "Finish and submit your paper (draft saved): due in 2 days," in due, due
        assert '<time datetime="' in page.text
        due = _due((await ben.get(f"/assignments/{ids[WRITING_ROUND]}")).text)
        assert "Write your paper: due in 2 days," in due, due

        # Review: Ada has one review not started and one drafted (her own tasks only).
        due = _due((await ada.get(f"/assignments/{ids['secure-base']}")).text)
        assert "1 review not started" in due and "1 review started, not submitted" in due, due
        assert "paper" not in due.lower().replace("your paper", "")  # hers is in
        # Ben has submitted all of his reviews: nothing due.
        page = await ben.get(f"/assignments/{ids['secure-base']}")
        assert _due(page.text) == ""
        assert "Nothing is due from you on this assignment right now." in page.text

        # Feedback: Ada rated one of her two reviews; Ben rated none.
        due = _due((await ada.get(f"/assignments/{ids[SAMPLE_ROUND]}")).text)
        assert due.strip() == "What you have to do Feedback to rate: 1 review of your paper", due
        due = _due((await ben.get(f"/assignments/{ids[SAMPLE_ROUND]}")).text)
        assert "Feedback to rate: 2 reviews of your paper" in due, due

        # Staff are not told to write papers.
        page = await ivo.get(f"/assignments/{ids[WRITING_ROUND]}")
        assert page.status_code == 200 and _due(page.text) == ""
        assert "Nothing is due from you" not in page.text
    finally:
        for c in (ada, ben, ivo):
            await c.aclose()


async def test_the_header_has_search_and_the_unread_badge(
    asgi: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ids = await _demo(sessions)
    ada = await _client(asgi, sessions, "ada-student")
    try:
        page = await ada.get(f"/assignments/{ids['secure-base']}")
        assert re.search(r'<form method="get" action="/search"[^>]*role="search"', page.text)
        unread = (await ada.get("/api/v1/notifications")).json()["unread"]
        assert unread >= 1
        assert re.search(rf'unread-badge">{unread}<span class="visually-hidden"> unread', page.text)
        await ada.post("/notifications/read", data={"csrf_token": ada.headers["X-CSRF-Token"]})
        page = await ada.get(f"/assignments/{ids['secure-base']}")
        assert "unread-badge" not in page.text
    finally:
        await ada.aclose()


async def _alias(sessions: async_sessionmaker[AsyncSession], subject: str, assignment: int) -> str:
    async with transaction(sessions) as session:
        alias = await session.scalar(
            select(Alias.name)
            .join(User, User.id == Alias.user_id)
            .where(User.subject == subject, Alias.assignment_id == assignment)
        )
        assert alias is not None
        return alias


async def test_notifications_name_a_named_replier_and_never_an_anonymous_one(
    asgi: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ids = await _demo(sessions)
    # In the demo, Dara replied anonymously to Chen; Ada replied by name to Dara; Ben replied
    # anonymously to Ada.
    chen = await _client(asgi, sessions, "chen-student")
    dara = await _client(asgi, sessions, "dara-student")
    ada = await _client(asgi, sessions, "ada-student")
    try:
        items = (await chen.get("/api/v1/notifications")).json()["items"]
        from_dara = [i for i in items if "Naming a pattern without shaming" in i["message"]]
        assert from_dara, items
        dara_alias = await _alias(sessions, "dara-student", ids["secure-base"])
        assert from_dara[0]["replier"] == dara_alias
        page = (await chen.get("/notifications")).text
        assert "Dara" not in page and "Müller" not in page
        assert "Dara" not in str(items)
        assert f"{dara_alias} replied to your post" in page
        assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:00Z"', page)

        items = (await dara.get("/api/v1/notifications")).json()["items"]
        named = [i for i in items if "Where the article felt idealized" in i["message"]]
        assert named and named[0]["replier"] == "Ada Lindqvist"
        page = (await dara.get("/notifications")).text
        assert "Ada Lindqvist replied to your post in" in page

        page = (await ada.get("/notifications")).text
        assert "Ben Haddad" not in page
    finally:
        for c in (chen, dara, ada):
            await c.aclose()


async def test_a_hidden_reply_names_nobody(
    asgi: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    from services.models import Notification, Post, utcnow

    await _demo(sessions)
    async with transaction(sessions) as session:
        dara = await session.scalar(select(User).where(User.subject == "dara-student"))
        assert dara is not None
        notice = await session.scalar(
            select(Notification).where(
                Notification.user_id == dara.id,
                Notification.post_id.is_not(None),  # type: ignore[union-attr]
            )
        )
        assert notice is not None
        post = await session.get(Post, notice.post_id)
        assert post is not None
        post.hidden_at = utcnow()
    client = await _client(asgi, sessions, "dara-student")
    try:
        items = (await client.get("/api/v1/notifications")).json()["items"]
        hidden = [i for i in items if i["id"] == str(notice.id)]
        assert hidden and hidden[0]["replier"] is None
        assert hidden[0]["message"].startswith("Someone replied")
    finally:
        await client.aclose()
