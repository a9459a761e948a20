"""The canary scan: every test person has a unique random name, email and subject; every byte
each viewer receives from every discussion route (HTML, JSON, SSE, headers) is recorded, and
the scan fails if the anonymous author's canary reaches anyone who may not know it."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from services import discussions, moderation, phases, policy
from services.db import transaction
from services.models import FlagReason, Phase, Question, Role
from services.policy import Actor
from tests.conftest import People, client_for
from tests.web.canary_support import Step, canary, filler, record, route_names
from web import routes_discussions

ROLES = ("anonymous", "outsider", "peer", "moderator", "instructor", "administrator")
MAY_KNOW_AUTHOR = {"moderator", "instructor", "administrator"}


async def test_no_discussion_route_leaks_an_anonymous_author(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    names = {role: canary() for role in ("author", *ROLES[1:])}
    admin = await people.client(names["administrator"], administrator=True)
    await admin.post("/api/v1/cohorts", json={"slug": "psy", "name": "PSY"})
    await admin.post("/api/v1/cohorts", json={"slug": "other", "name": "Other"})
    made = await admin.post(
        "/api/v1/cohorts/psy/assignments",
        content=b"Title\n\nWhat is a secure base?\n",
        headers={"content-type": "text/plain"},
    )
    assignment_id = made.json()["id"]
    clients: dict[str, httpx.AsyncClient] = {"administrator": admin}
    author = await people.member(names["author"], "psy", Role.student)
    clients["peer"] = await people.member(names["peer"], "psy", Role.student)
    clients["moderator"] = await people.member(names["moderator"], "psy", Role.moderator)
    clients["instructor"] = await people.member(names["instructor"], "psy", Role.instructor)
    clients["outsider"] = await people.member(names["outsider"], "other", Role.student)
    clients["anonymous"] = client_for(people.asgi)
    people._clients.append(clients["anonymous"])
    system = Actor.system()
    async with transaction(sessions) as session:
        await phases.change_phase(
            session, actor=system, assignment_id=assignment_id, phase=Phase.open
        )
        question = await session.scalar(
            select(col(Question.id)).where(Question.assignment_id == assignment_id)
        )
    assert question is not None

    # The author writes anonymously everywhere they can: thread, replies, an edit.
    thread = (
        await author.post(
            f"/api/v1/questions/{question}/threads",
            json={"title": "Safe", "body": "opening", "anonymous": True},
        )
    ).json()
    tid, opening = thread["id"], thread["opening"]["id"]
    peer_post = (
        await clients["peer"].post(f"/api/v1/threads/{tid}/posts", json={"body": "peer says"})
    ).json()["id"]
    reply = (
        await author.post(
            f"/api/v1/threads/{tid}/posts",
            json={"body": "anon reply", "parent": peer_post, "anonymous": True},
        )
    ).json()
    await author.patch(f"/api/v1/posts/{reply['id']}", json={"body": "edited", "version": 1})
    async with transaction(sessions) as session:
        peer_actor = await policy.load_actor(
            session, user_id=people.users[names["peer"]].id or 0, is_administrator=False
        )
        await moderation.flag_post(
            session, actor=peer_actor, post_id=reply["id"], reason=FlagReason.reveals_identity
        )
        author_actor = await policy.load_actor(
            session, user_id=people.users[names["author"]].id or 0, is_administrator=False
        )
        extra = await discussions.reply(
            session, actor=author_actor, thread_id=tid, body="to delete", anonymous=True
        )

    w: dict[str, Any] = {
        "q": question,
        "t": tid,
        "p": reply["id"],
        "o": opening,
        "peer": peer_post,
        "x": extra.public_id,
    }
    requests: list[Step] = [
        ("discussions:question", "GET", "/questions/{q}", {}),
        ("discussions:thread", "GET", "/threads/{t}", {}),
        ("discussions:flags", "GET", "/cohorts/psy/flags", {}),
        ("discussions:notifications", "GET", "/notifications", {}),
        ("discussions:search", "GET", "/search?q=reply", {}),
        ("api:threads:list", "GET", "/api/v1/questions/{q}/threads", {}),
        ("api:threads:detail", "GET", "/api/v1/threads/{t}?sort=top", {}),
        ("api:threads:events", "GET", "/api/v1/threads/{t}/events?poll=1&last_event_id=0", {}),
        ("api:posts:revisions", "GET", "/api/v1/posts/{p}/revisions", {}),
        ("api:moderation:flags", "GET", "/api/v1/cohorts/psy/flags", {}),
        ("api:search", "GET", "/api/v1/search?q=edited", {}),
        ("api:notifications:list", "GET", "/api/v1/notifications", {}),
        ("api:threads:follow", "PUT", "/api/v1/threads/{t}/follow", {"json": {"following": True}}),
        ("api:posts:create", "POST", "/api/v1/threads/{t}/posts",
         {"json": {"body": "hi", "parent": "{p}"}}),
        ("api:posts:vote", "PUT", "/api/v1/posts/{p}/vote", {"json": {"up": True}}),
        ("api:posts:flag", "POST", "/api/v1/posts/{o}/flags", {"json": {"reason": "other"}}),
        ("api:posts:edit", "PATCH", "/api/v1/posts/{p}", {"json": {"body": "x", "version": 2}}),
        ("api:threads:create", "POST", "/api/v1/questions/{q}/threads",
         {"json": {"title": "mine", "body": "mine"}}),
        ("api:questions:discussion", "PATCH", "/api/v1/questions/{q}/discussion",
         {"json": {"post_first": False}}),
        ("api:moderation:act", "POST", "/api/v1/moderation/actions",
         {"json": {"action": "pin", "target": "{t}"}}),
        ("api:notifications:read", "POST", "/api/v1/notifications/read", {"json": {}}),
        ("discussions:reply", "POST", "/threads/{t}/posts",
         {"data": {"body": "r", "parent": "{p}"}}),
        ("discussions:thread:create", "POST", "/questions/{q}/threads",
         {"data": {"title": "t", "body": "b"}}),
        ("discussions:post:vote", "POST", "/posts/{p}/vote", {"data": {"up": "1"}}),
        ("discussions:post:flag", "POST", "/posts/{o}/flag", {"data": {"reason": "spam"}}),
        ("discussions:post:edit", "POST", "/posts/{p}/edit",
         {"data": {"body": "e", "version": "2"}}),
        ("discussions:moderate", "POST", "/moderation",
         {"data": {"action": "unpin", "target": "{t}", "back": "/threads/{t}"}}),
        ("discussions:notifications:read", "POST", "/notifications/read", {}),
        ("discussions:post:delete", "POST", "/posts/{x}/delete", {}),
        ("api:posts:delete", "DELETE", "/api/v1/posts/{x}", {}),
    ]  # fmt: skip
    assert {(name, method) for name, method, _, _ in requests} == route_names(routes_discussions)

    fill = filler(w)
    secret = names["author"].encode()
    for role in ROLES:
        received = await record(clients[role], requests, fill)
        leaked = secret in received
        if role in MAY_KNOW_AUTHOR:
            assert leaked, f"{role} should see the author's name somewhere"
        else:
            assert not leaked, f"the anonymous author's identity reached {role}"
