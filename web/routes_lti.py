"""Routes of the LTI 1.3 adapter (web/endpoints/lti.py): browser endpoints, not the API."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from web.endpoints import lti, lti_deep_linking


def page_routes() -> list[BaseRoute]:
    return [
        Route("/lti/login", lti.login, methods=["GET", "POST"], name="lti:login"),
        Route("/lti/launch", lti.launch, methods=["POST"], name="lti:launch"),
        Route("/lti/jwks.json", lti.jwks, name="lti:jwks"),
        Route("/lti/register", lti.register_page, name="lti:register"),
        Route("/lti/register", lti.register, methods=["POST"], name="lti:register:submit"),
        Route("/lti/platforms", lti.platforms_page, name="lti:platforms"),
        Route("/lti/platforms", lti.add_platform, methods=["POST"], name="lti:platforms:add"),
        Route("/lti/deep-link/{request}", lti_deep_linking.picker, name="lti:deep_link"),
        Route(
            "/lti/deep-link/{request}",
            lti_deep_linking.choose,
            methods=["POST"],
            name="lti:deep_link:choose",
        ),
        Route("/lti/keys/rotate", lti.rotate_keys, methods=["POST"], name="lti:keys:rotate"),
    ]
