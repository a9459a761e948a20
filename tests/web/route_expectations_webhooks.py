"""Authorization expectations for the webhook routes, merged into test_route_policy.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services import webhooks
from services.db import transaction
from services.policy import Actor
from tests.web.policy_support import expect, get, send

if TYPE_CHECKING:
    from tests.web.policy_support import World

INSTRUCTORS = (404, 404, 404, 404)  # anonymous (API) / outsider / student / moderator
PAGE = expect(303, 404, 404, 404, 200, 200)
FORM = expect(303, 404, 404, 404, 303, 303)
URL = "https://hooks.example.org/peerboard"
HOOK = "/api/v1/webhooks/{w.extras[webhook]}"

EXPECTATIONS: dict[tuple[str, str], tuple[Any, dict[str, int]]] = {
    ("webhooks:page", "GET"): (get("/cohorts/psy/webhooks"), PAGE),
    ("webhooks:create", "POST"): (
        send("POST", "/cohorts/psy/webhooks", data={"url": URL, "events": "phase.changed"}),
        PAGE,
    ),
    ("webhooks:test", "POST"): (
        send("POST", "/cohorts/psy/webhooks/{w.extras[webhook]}/test"),
        FORM,
    ),
    ("webhooks:delete", "POST"): (
        send("POST", "/cohorts/psy/webhooks/{w.extras[webhook]}/delete"),
        FORM,
    ),
    ("api:webhooks:list", "GET"): (
        get("/api/v1/cohorts/psy/webhooks"),
        expect(*INSTRUCTORS, 200, 200),
    ),
    ("api:webhooks:create", "POST"): (
        send(
            "POST", "/api/v1/cohorts/psy/webhooks", json={"url": URL, "events": ["phase.changed"]}
        ),
        expect(*INSTRUCTORS, 201, 201),
    ),
    ("api:webhooks:delete", "DELETE"): (send("DELETE", HOOK), expect(*INSTRUCTORS, 204, 204)),
    ("api:webhooks:test", "POST"): (send("POST", HOOK + "/test"), expect(*INSTRUCTORS, 202, 202)),
    ("api:webhooks:deliveries", "GET"): (
        get(HOOK + "/deliveries"),
        expect(*INSTRUCTORS, 200, 200),
    ),
}


async def setup(world: World) -> None:
    async with transaction(world.sessions) as session:
        made = await webhooks.register(
            session, actor=Actor.system(), cohort_slug="psy", url=URL,
            events=["phase.changed"], allow_private=False,
        )  # fmt: skip
    world.extras["webhook"] = made.id
