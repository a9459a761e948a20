"""Authorization expectations for the LTI routes, merged into test_route_policy.py.

The launch flow's own checks (state, nonce, signature, roles) are tested end to end in
tests/lti/; here, every kind of visitor gets the same refusal from the LMS-facing endpoints
when it brings no valid launch, and only administrators reach the platforms page."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.web.policy_support import expect, get, same, send

if TYPE_CHECKING:
    from tests.web.policy_support import World

ADMIN_PAGE = expect(303, 404, 404, 404, 404, 200)
ADMIN_FORM = expect(303, 404, 404, 404, 404, 303)
SIGNED_IN_404 = expect(303, 404, 404, 404, 404, 404)
PLATFORM = {
    "issuer": "https://lms.example.edu", "client_id": "c1", "deployment_ids": "d1",
    "auth_login_url": "https://lms.example.edu/auth", "token_url": "https://lms.example.edu/token",
    "jwks_url": "https://lms.example.edu/jwks",
}  # fmt: skip

EXPECTATIONS: dict[tuple[str, str], tuple[Any, dict[str, int]]] = {
    # A login initiation without iss/login_hint/target_link_uri is refused alike.
    ("lti:login", "GET"): (get("/lti/login"), same(400)),
    ("lti:login", "POST"): (send("POST", "/lti/login", data={"iss": "x"}), same(400)),
    ("lti:launch", "POST"): (send("POST", "/lti/launch", data={"state": "s"}), same(400)),
    ("lti:jwks", "GET"): (get("/lti/jwks.json"), same(200)),
    # Without a valid invite, registration answers like a missing page.
    ("lti:register", "GET"): (get("/lti/register?invite=1.x"), same(404)),
    ("lti:register:submit", "POST"): (
        send("POST", "/lti/register", data={"invite": "1.x"}),
        same(404),
    ),
    ("lti:platforms", "GET"): (get("/lti/platforms"), ADMIN_PAGE),
    ("lti:platforms:add", "POST"): (send("POST", "/lti/platforms", data=PLATFORM), ADMIN_FORM),
    ("lti:keys:rotate", "POST"): (send("POST", "/lti/keys/rotate"), ADMIN_FORM),
    # A deep linking picker exists only in the session of the instructor whose LMS asked
    # for it (tests/lti/test_deep_linking.py): anyone else is sent to sign in, or finds none.
    ("lti:deep_link", "GET"): (get("/lti/deep-link/no-such-request"), SIGNED_IN_404),
    ("lti:deep_link:choose", "POST"): (
        send("POST", "/lti/deep-link/no-such-request", data={"assignment": "1"}),
        SIGNED_IN_404,
    ),
}


async def setup(world: World) -> None:
    """Nothing to add: the LTI routes need no objects of the shared world."""
