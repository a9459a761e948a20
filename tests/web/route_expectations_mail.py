"""Authorization expectations for the mail routes, merged into test_route_policy.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services import mail, outbox
from services.db import transaction
from tests.conftest import TEST_SECRET
from tests.web.policy_support import expect, get, same, send

if TYPE_CHECKING:
    from tests.web.policy_support import World

SIGNED_IN_PAGE = expect(303, 200, 200, 200, 200, 200)
SIGNED_IN_API = expect(404, 200, 200, 200, 200, 200)

EXPECTATIONS: dict[tuple[str, str], tuple[Any, dict[str, int]]] = {
    ("mail:settings", "GET"): (get("/settings/notifications"), SIGNED_IN_PAGE),
    # Development-like environments only (the matrix runs in "test"); 404 in production.
    ("mail:dev", "GET"): (get("/dev/mail"), same(200)),
    # Anyone signed in saves their own choices; the anonymous visitor is sent to sign in.
    ("mail:settings:save", "POST"): (
        send("POST", "/settings/notifications", data={"reply": "digest"}),
        same(303),
    ),
    # The link is the capability: it works for whoever holds it, signed in or not.
    ("mail:unsubscribe", "GET"): (get("/mail/unsubscribe/{w.extras[unsubscribe]}"), same(200)),
    ("mail:unsubscribe:confirm", "POST"): (
        send("POST", "/mail/unsubscribe/{w.extras[unsubscribe]}"),
        same(200),
    ),
    ("api:notification-preferences", "GET"): (
        get("/api/v1/me/notification-preferences"),
        SIGNED_IN_API,
    ),
    ("api:notification-preferences:update", "PUT"): (
        send(
            "PUT",
            "/api/v1/me/notification-preferences",
            json={"preferences": {"reply": "never"}},
        ),
        SIGNED_IN_API,
    ),
}


async def setup(world: World) -> None:
    ada = world.people.users["ada"]
    assert ada.id is not None
    async with transaction(world.sessions) as session:
        key = await outbox.mail_key(session, user_id=ada.id)
    world.extras["unsubscribe"] = mail.unsubscribe_token(TEST_SECRET, key=key, kind="reply")
