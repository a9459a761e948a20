"""Authorization expectations for the discussions routes, merged into test_route_policy.py.

EXPECTATIONS maps (route name, method) to (request builder, {role: status}); the builders
(get, send, expect, same) and the roles are in tests/web/policy_support.py. `setup` adds this
area's objects to world.extras, made with the real services (use world.sessions)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlmodel import col, select

from services import discussions, policy
from services.db import transaction
from services.models import Question
from tests.web.policy_support import expect, get, same, send

if TYPE_CHECKING:
    from tests.web.policy_support import World

MEMBER_PAGE = expect(303, 404, 200, 200, 200, 200)
MEMBER_FORM = expect(303, 404, 303, 303, 303, 303)
MEMBER_API = expect(404, 404, 200, 200, 200, 200)
STAFF_API = expect(404, 404, 404, 200, 200, 200)
Q = "{w.extras[question]}"
T = "{w.extras[thread]}"
MINE = "{w.extras[ada_post]}"  # ada (the student) wrote it
BENS = "{w.extras[ben_post]}"

EXPECTATIONS: dict[tuple[str, str], tuple[Any, dict[str, int]]] = {
    ("discussions:question", "GET"): (get(f"/questions/{Q}"), MEMBER_PAGE),
    ("discussions:thread:create", "POST"): (
        send("POST", f"/questions/{Q}/threads", data={"title": "t", "body": "b"}),
        MEMBER_FORM,
    ),
    ("discussions:thread", "GET"): (get(f"/threads/{T}"), MEMBER_PAGE),
    ("discussions:reply", "POST"): (
        send("POST", f"/threads/{T}/posts", data={"body": "b"}),
        MEMBER_FORM,
    ),
    ("discussions:post:edit", "POST"): (
        send("POST", f"/posts/{MINE}/edit", data={"body": "new", "version": "1"}),
        expect(303, 404, 303, 403, 403, 403),
    ),
    ("discussions:post:delete", "POST"): (send("POST", f"/posts/{MINE}/delete"), MEMBER_FORM),
    ("discussions:post:flag", "POST"): (
        send("POST", f"/posts/{BENS}/flag", data={"reason": "spam"}),
        MEMBER_FORM,
    ),
    ("discussions:post:vote", "POST"): (
        send("POST", f"/posts/{BENS}/vote", data={"up": "1"}),
        MEMBER_FORM,
    ),
    ("discussions:moderate", "POST"): (
        send("POST", "/moderation", data={"action": "pin", "target": T, "back": "/"}),
        expect(303, 404, 404, 303, 303, 303),
    ),
    ("discussions:flags", "GET"): (get("/cohorts/psy/flags"), expect(303, 404, 404, 200, 200, 200)),
    ("discussions:notifications", "GET"): (
        get("/notifications"),
        expect(303, 200, 200, 200, 200, 200),
    ),
    ("discussions:notifications:read", "POST"): (
        send("POST", "/notifications/read"),
        expect(303, 303, 303, 303, 303, 303),
    ),
    ("discussions:search", "GET"): (get("/search?q=Opening"), expect(303, 200, 200, 200, 200, 200)),
    ("api:search", "GET"): (get("/api/v1/search?q=Opening"), same(200)),
    ("api:threads:list", "GET"): (get(f"/api/v1/questions/{Q}/threads"), MEMBER_API),
    ("api:questions:discussion", "PATCH"): (
        send("PATCH", f"/api/v1/questions/{Q}/discussion", json={"post_first": True}),
        STAFF_API,
    ),
    ("api:threads:create", "POST"): (
        send("POST", f"/api/v1/questions/{Q}/threads", json={"title": "t", "body": "b"}),
        expect(404, 404, 201, 201, 201, 201),
    ),
    ("api:threads:detail", "GET"): (get(f"/api/v1/threads/{T}"), MEMBER_API),
    ("api:threads:events", "GET"): (get(f"/api/v1/threads/{T}/events?poll=1"), MEMBER_API),
    ("api:posts:create", "POST"): (
        send("POST", f"/api/v1/threads/{T}/posts", json={"body": "b"}),
        expect(404, 404, 201, 201, 201, 201),
    ),
    ("api:threads:follow", "PUT"): (
        send("PUT", f"/api/v1/threads/{T}/follow", json={"following": True}),
        MEMBER_API,
    ),
    ("api:posts:edit", "PATCH"): (
        send("PATCH", f"/api/v1/posts/{MINE}", json={"body": "new", "version": 1}),
        expect(404, 404, 200, 403, 403, 403),
    ),
    ("api:posts:delete", "DELETE"): (
        send("DELETE", f"/api/v1/posts/{MINE}"),
        expect(404, 404, 204, 204, 204, 204),
    ),
    ("api:posts:revisions", "GET"): (get(f"/api/v1/posts/{MINE}/revisions"), MEMBER_API),
    ("api:posts:vote", "PUT"): (
        send("PUT", f"/api/v1/posts/{BENS}/vote", json={"up": True}),
        MEMBER_API,
    ),
    ("api:posts:flag", "POST"): (
        send("POST", f"/api/v1/posts/{BENS}/flags", json={"reason": "spam"}),
        expect(404, 404, 204, 204, 204, 204),
    ),
    ("api:moderation:act", "POST"): (
        send("POST", "/api/v1/moderation/actions", json={"action": "pin", "target": T}),
        STAFF_API,
    ),
    ("api:moderation:flags", "GET"): (get("/api/v1/cohorts/psy/flags"), STAFF_API),
    ("api:notifications:list", "GET"): (
        get("/api/v1/notifications"),
        expect(404, 200, 200, 200, 200, 200),
    ),
    ("api:notifications:read", "POST"): (
        send("POST", "/api/v1/notifications/read", json={}),
        expect(404, 200, 200, 200, 200, 200),
    ),
}


async def setup(world: World) -> None:
    """A thread by ben under the assignment's first question, with a reply by ada."""
    people = world.people
    async with transaction(world.sessions) as session:
        question_id = await session.scalar(
            select(col(Question.id)).where(Question.assignment_id == world.assignment_id).limit(1)
        )
        assert question_id is not None
        ben_id, ada_id = people.users["ben"].id, people.users["ada"].id
        assert ben_id is not None and ada_id is not None
        ben = await policy.load_actor(session, user_id=ben_id, is_administrator=False)
        ada = await policy.load_actor(session, user_id=ada_id, is_administrator=False)
        thread = await discussions.create_thread(
            session, actor=ben, question_id=question_id, title="Safe haven", body="Opening"
        )
        ben_post = await discussions.reply(session, actor=ben, thread_id=thread.public_id, body="b")
        ada_post = await discussions.reply(session, actor=ada, thread_id=thread.public_id, body="a")
    world.extras.update(
        question=question_id,
        thread=thread.public_id,
        ben_post=ben_post.public_id,
        ada_post=ada_post.public_id,
    )
