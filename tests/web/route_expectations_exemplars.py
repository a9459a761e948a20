"""Authorization expectations for the exemplar routes, merged into test_route_policy.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlmodel import select

from services import discussions, exemplars, policy
from services.db import transaction
from services.models import ExemplarKind, Post, Question
from services.policy import Actor
from tests.web.policy_support import API_MEMBER, PAGE_MEMBER, STAFF_ONLY, expect, get, send

if TYPE_CHECKING:
    from tests.web.policy_support import World

AUTHOR_ONLY_PAGE = expect(404, 404, 303, 404, 404, 404)
AUTHOR_ONLY = expect(404, 404, 200, 404, 404, 404)  # ada is the "student" role

EXPECTATIONS: dict[tuple[str, str], tuple[Any, dict[str, int]]] = {
    ("exemplars:gallery", "GET"): (get("/assignments/{w.assignment_id}/exemplars"), PAGE_MEMBER),
    ("exemplars:attribution", "POST"): (
        send(
            "POST", "/exemplars/{w.extras[ada_exemplar]}/attribution", data={"choice": "anonymous"}
        ),
        AUTHOR_ONLY_PAGE,
    ),
    ("api:exemplars:list", "GET"): (
        get("/api/v1/assignments/{w.assignment_id}/exemplars"),
        API_MEMBER,
    ),
    ("api:exemplars:create", "POST"): (
        send(
            "POST",
            "/api/v1/assignments/{w.assignment_id}/exemplars",
            json={"kind": "post", "source": "{w.extras[post]}", "note": "n"},
        ),
        expect(*STAFF_ONLY, 201, 201, 201),
    ),
    ("api:exemplars:detail", "GET"): (get("/api/v1/exemplars/{w.extras[published]}"), API_MEMBER),
    ("api:exemplars:update", "PATCH"): (
        send(
            "PATCH",
            "/api/v1/exemplars/{w.extras[published]}",
            json={"version": 1, "note": "better"},
        ),
        expect(*STAFF_ONLY, 200, 200, 200),
    ),
    ("api:exemplars:delete", "DELETE"): (
        send("DELETE", "/api/v1/exemplars/{w.extras[published]}"),
        expect(*STAFF_ONLY, 204, 204, 204),
    ),
    ("api:exemplars:refresh", "POST"): (
        send("POST", "/api/v1/exemplars/{w.extras[published]}/refresh"),
        expect(*STAFF_ONLY, 200, 200, 200),
    ),
    ("workspace", "GET"): (
        get("/assignments/{w.assignment_id}/workspace"),
        expect(303, 404, 404, 200, 200, 200),
    ),
    ("api:workspace:events", "GET"): (
        get("/api/v1/assignments/{w.assignment_id}/workspace/events?poll=1"),
        expect(*STAFF_ONLY, 200, 200, 200),
    ),
    ("api:workspace", "GET"): (
        get("/api/v1/assignments/{w.assignment_id}/workspace"),
        expect(*STAFF_ONLY, 200, 200, 200),
    ),
    ("exemplars:nominate", "POST"): (
        send(
            "POST",
            "/exemplars/nominate",
            data={
                "kind": "post",
                "source": "{w.extras[post]}",
                "question_id": "{w.extras[question]}",
                "note": "Clear and kind.",
            },
        ),
        expect(*STAFF_ONLY, 303, 303, 303),
    ),
    # Both exemplars are in the whole-assignment gallery: "published" comes second.
    ("exemplars:move", "POST"): (
        send(
            "POST",
            "/exemplars/{w.extras[published]}/move",
            data={"direction": "up", "version": "1", "neighbour": "{w.extras[ada_exemplar]}"},
        ),
        expect(*STAFF_ONLY, 303, 303, 303),
    ),
    ("exemplars:edit", "POST"): (
        send(
            "POST",
            "/exemplars/{w.extras[published]}/edit",
            data={"version": "1", "status": "draft"},
        ),
        expect(*STAFF_ONLY, 303, 303, 303),
    ),
    # Students take the posts export too (as they read the discussion); other kinds stay
    # staff-only (tests/services/test_exports.py).
    ("api:exports", "GET"): (
        get("/api/v1/assignments/{w.assignment_id}/exports/posts.csv"),
        API_MEMBER,
    ),
    ("api:exemplars:attribution", "PUT"): (
        send(
            "PUT",
            "/api/v1/exemplars/{w.extras[ada_exemplar]}/attribution",
            json={"choice": "named"},
        ),
        AUTHOR_ONLY,
    ),
}


async def setup(world: World) -> None:
    ada = world.people.users["ada"]
    assert ada.id is not None
    async with transaction(world.sessions) as session:
        ada_actor = await policy.load_actor(session, user_id=ada.id, is_administrator=False)
        question_id = await session.scalar(
            select(Question.id).where(Question.assignment_id == world.assignment_id)
        )
        assert question_id is not None
        thread = await discussions.create_thread(
            session, actor=ada_actor, question_id=question_id, title="A thread", body="Body"
        )
        post = (await session.execute(select(Post).where(Post.thread_id == thread.id))).scalar_one()
        system = Actor.system()
        ada_exemplar = await exemplars.nominate(
            session, actor=system, assignment_id=world.assignment_id, kind=ExemplarKind.post,
            source=post.public_id, publish=True,
        )  # fmt: skip
        published = await exemplars.nominate(
            session, actor=system, assignment_id=world.assignment_id, kind=ExemplarKind.post,
            source=post.public_id, publish=True, note="Second",
        )  # fmt: skip
    world.extras.update(
        post=post.public_id,
        ada_exemplar=ada_exemplar.public_id,
        published=published.public_id,
        question=question_id,
    )
