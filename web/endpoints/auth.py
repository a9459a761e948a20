"""Sign-in through an institution's OpenID provider, and sign-out."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import httpx2
from authlib.integrations.base_client import OAuthError
from joserfc.errors import JoseError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from services import identity
from services.db import transaction
from services.demo import DEMO_PEOPLE
from services.identity import VerifiedIdentity
from web.context import session_state, sessions_of, settings_of, templates_of, unit_of_work
from web.endpoints.pages import safe_path
from web.errors import ApiError
from web.oidc import SignInRefused, StrictOpenIDApp
from web.ratelimit import SIGN_IN, rate_limits_of
from web.responses import json_response
from web.settings import OIDCProviderSettings

log = logging.getLogger("peerboard.auth")
NEXT_KEY = "signin_next"
PROVIDER_KEY = "signin_provider"


def _provider(request: Request) -> tuple[OIDCProviderSettings, StrictOpenIDApp]:
    name = request.path_params["provider"]
    provider = settings_of(request).provider(name)
    if provider is None:
        raise ApiError(404, "There is no such sign-in provider.")
    client: StrictOpenIDApp = request.app.state.oauth.create_client(name)
    return provider, client


def providers_view(request: Request) -> list[dict[str, Any]]:
    settings = settings_of(request)
    return [
        {
            "name": p.name,
            "label": p.display_label,
            "login_url": request.app.url_path_for("auth:login", provider=p.name),
            "demo": p.name == settings.demo_identity_provider,
        }
        for p in settings.oidc_providers
    ]


def demo_people(request: Request) -> list[dict[str, str]]:
    """Who is who in the demo (only with the demo identity provider): the name, the role in
    the demo cohort, and the button to pick on the provider's page."""
    if not settings_of(request).demo_identity_provider:
        return []
    return [
        {"name": p.display_name, "role": p.role.value, "choose": p.subject} for p in DEMO_PEOPLE
    ]


async def providers(request: Request) -> Response:
    return json_response(providers_view(request))


async def signin_page(request: Request) -> Response:
    state = session_state(request)
    next_path = safe_path(request.query_params.get("next"))
    return templates_of(request).TemplateResponse(
        request,
        "signin.html",
        {
            "providers": providers_view(request),
            "demo_people": demo_people(request),
            "next": next_path,
            "signed_in": bool(state and state.user_id),
        },
    )


async def login(request: Request) -> Response:
    await rate_limits_of(request).hit(request, SIGN_IN, person=None)
    provider, client = _provider(request)
    state = session_state(request)
    assert state is not None
    state.data[NEXT_KEY] = safe_path(request.query_params.get("next"))
    state.data[PROVIDER_KEY] = provider.name
    redirect_uri = settings_of(request).redirect_uri(provider.name)
    try:
        response: Response = await client.authorize_redirect(request, redirect_uri)
    except (SignInRefused, OAuthError, httpx.HTTPError, httpx2.HTTPError, ValueError) as exc:
        return _failed(request, exc, provider)
    return response


async def callback(request: Request) -> Response:
    await rate_limits_of(request).hit(request, SIGN_IN, person=None)
    provider, client = _provider(request)
    state = session_state(request)
    assert state is not None
    try:
        verified = await _verify(request, provider, client)
    except (SignInRefused, OAuthError, JoseError, httpx.HTTPError, httpx2.HTTPError,
            ValueError, KeyError) as exc:  # fmt: skip
        return _failed(request, exc, provider)
    async with transaction(sessions_of(request)) as session:
        user = await identity.sign_in(session, identity=verified)
        assert user.id is not None
    next_path = safe_path(state.data.pop(NEXT_KEY, "/"))
    state.data.pop(PROVIDER_KEY, None)
    state.login(user.id)
    log.info("sign-in: user %s via %s", user.id, provider.name)
    return RedirectResponse(next_path, status_code=303)


async def _verify(
    request: Request, provider: OIDCProviderSettings, client: StrictOpenIDApp
) -> VerifiedIdentity:
    if request.query_params.get("error"):
        raise OAuthError(
            error=request.query_params["error"],
            description=request.query_params.get("error_description", ""),
        )
    if not request.query_params.get("state") or not request.query_params.get("code"):
        raise SignInRefused("The sign-in answer is incomplete. Please start again.")
    token = await client.authorize_access_token(request)
    claims = token.get("userinfo")
    if not token.get("id_token") or claims is None:
        raise SignInRefused(
            "The identity provider did not say who you are (no ID token).",
            detail="token response without id_token",
        )
    claims = dict(claims)
    if not claims.get("email") or not claims.get("name"):
        # Some providers keep profile claims out of the id token; ask userinfo, and accept
        # it only for the same subject.
        metadata = await client.load_server_metadata()
        if metadata.get("userinfo_endpoint"):
            extra = dict(await client.userinfo(token=token))
            if extra.get("sub") != claims["sub"]:
                raise SignInRefused(
                    "The identity provider's answers did not agree about who you are.",
                    detail="userinfo sub differs from id token sub",
                )
            for key in ("email", "name", "preferred_username", provider.groups_claim or ""):
                if key and not claims.get(key) and extra.get(key):
                    claims[key] = extra[key]
    groups: list[str] = []
    if provider.groups_claim:
        raw = claims.get(provider.groups_claim) or []
        groups = [raw] if isinstance(raw, str) else [g for g in raw if isinstance(g, str)]
    email = claims.get("email")
    name = claims.get("name") or claims.get("preferred_username")
    return VerifiedIdentity(
        issuer=str(claims["iss"]),
        subject=str(claims["sub"]),
        name=name if isinstance(name, str) else None,
        email=email if isinstance(email, str) else None,
        groups=tuple(groups),
    )


def _failed(request: Request, exc: Exception, provider: OIDCProviderSettings) -> Response:
    if isinstance(exc, SignInRefused):
        reason = exc.reason
    elif isinstance(exc, OAuthError) and exc.error == "mismatching_state":
        reason = (
            "This sign-in link was already used or has expired (or cookies are blocked). "
            "Please start again."
        )
    elif isinstance(exc, OAuthError) and exc.error == "access_denied":
        reason = "Sign-in was cancelled at your institution's page."
    elif isinstance(exc, OAuthError):
        reason = "Your institution's sign-in service refused the request."
    elif isinstance(exc, (httpx.HTTPError, httpx2.HTTPError)):
        reason = "Peerboard could not reach your institution's sign-in service. Try again soon."
    else:
        reason = "Your institution's answer could not be verified, so you were not signed in."
    log.warning("sign-in via %s refused: %s: %s", provider.name, type(exc).__name__, exc)
    state = session_state(request)
    if state is not None:
        for key in [k for k in state.data if k.startswith("_state_")]:
            state.data.pop(key)
    return templates_of(request).TemplateResponse(
        request,
        "signin_failed.html",
        {"reason": reason, "provider": provider.display_label,
         "retry": request.app.url_path_for("auth:signin")},
        status_code=400,
    )  # fmt: skip


async def logout(request: Request) -> Response:
    form = await request.form()
    token = form.get("csrf_token")
    async with unit_of_work(request, form_csrf=token if isinstance(token, str) else None):
        pass
    state = session_state(request)
    if state is not None:
        state.logout()
    return RedirectResponse("/", status_code=303)
