"""LTI 1.3 browser endpoints: login initiation, launch, our key set, registration.

CSRF: the launch (`POST /lti/launch`) and the login initiation (`POST /lti/login`) are
cross-site form posts from the LMS by design (the OIDC third-party-initiated login and the
`form_post` response mode), so they cannot carry our CSRF token and do not go through the
session's CSRF check. What a CSRF token would prove is proved otherwise: the launch must
present a single-use state that this tool issued, bound to the browser that started the
login (a cookie, or the LMS's platform storage), and an id token signed by the registered
platform whose nonce is that state's. Neither endpoint acts for the session it arrives
with: the login changes no session, and the launch starts a new one. Pages for
administrators (platform list, manual registration, key rotation) keep the CSRF check.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from services import lti, lti_advantage, lti_deep_linking, lti_keys
from services.db import transaction
from services.errors import Invalid, NotFound, Problem
from services.lti import LaunchRefused, PlatformSpec
from services.lti_deep_linking import PendingDeepLink
from services.models import LtiPlatform
from services.policy import Actor
from web import lti_jobs
from web.context import sessions_of, settings_of, templates_of
from web.endpoints.pages import page_unit, redirect_with_flash, render_page, require_signed_in
from web.lti import LtiRuntime
from web.ratelimit import LTI_LAUNCH, rate_limits_of
from web.sessions import FRAME_SCOPE_KEY, STATE_KEY, SessionState

log = logging.getLogger("peerboard.lti")
COOKIE_LIFETIME_SECONDS = 600
STORAGE_KEY_PREFIX = "peerboard_"
LOGIN_FIELDS = ("iss", "login_hint", "target_link_uri", "lti_message_hint", "client_id",
                "lti_deployment_id", "lti_storage_target")  # fmt: skip
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
# The session's deep linking requests waiting for a choice (web/endpoints/lti_deep_linking).
DEEP_LINKS_KEY = "lti_deep_links"


def runtime_of(request: Request) -> LtiRuntime:
    runtime: LtiRuntime = request.app.state.lti
    return runtime


def _base(request: Request) -> str:
    return settings_of(request).base_url


def _binding_cookie_name(request: Request, label: str) -> str:
    prefix = "__Host-" if settings_of(request).is_https else ""
    return f"{prefix}lti-{label}"


def _binding_cookie(request: Request, label: str, value: str, *, max_age: int) -> str:
    if settings_of(request).is_https:
        # The launch is a cross-site POST into the LMS's iframe: only SameSite=None comes
        # back with it; Partitioned (CHIPS) keeps working where third-party cookies are off.
        attributes = "Path=/; HttpOnly; Secure; SameSite=None; Partitioned"
    else:  # plain-http development: browsers refuse SameSite=None without Secure
        attributes = "Path=/; HttpOnly; SameSite=Lax"
    name = _binding_cookie_name(request, label)
    return f"{name}={value}; Max-Age={max_age}; {attributes}"


def _refused(request: Request, exc: LaunchRefused, *, status: int = 400) -> Response:
    log.warning("LTI refused: %s", exc.detail)
    return templates_of(request).TemplateResponse(
        request, "lti_refused.html", {"reason": exc.reason}, status_code=status
    )


def _allow_framing(request: Request, platform: LtiPlatform) -> None:
    request.scope[FRAME_SCOPE_KEY] = lti.frame_origins(platform)


async def _params(request: Request) -> dict[str, str]:
    source: Any = request.query_params
    if request.method == "POST":
        source = await request.form()
    return {k: v for k in LOGIN_FIELDS if isinstance(v := source.get(k), str) and v}


async def login(request: Request) -> Response:
    """OIDC third-party-initiated login: the LMS names itself and the person; we answer with
    an authentication request to the platform, carrying a fresh state and nonce."""
    await rate_limits_of(request).hit(request, LTI_LAUNCH, person=None)
    params = await _params(request)
    if not all(params.get(k) for k in ("iss", "login_hint", "target_link_uri")):
        return _refused(request, LaunchRefused("The LMS's login request is incomplete."))
    base = _base(request)
    target = params["target_link_uri"]
    if not (target == base or target.startswith(base + "/")):
        return _refused(request, LaunchRefused("The LMS asked to open another site."))
    async with transaction(sessions_of(request)) as session:
        platform = await lti.find_platform(
            session, issuer=params["iss"], client_id=params.get("client_id")
        )
        if platform is None:
            return _refused(
                request,
                LaunchRefused(
                    "This LMS is not registered with Peerboard. Ask an administrator to add "
                    "it (see the README: Connecting an LMS).",
                    detail=f"unknown platform {params['iss'][:100]!r}",
                ),
            )
        made = await lti.begin_login(
            session, platform=platform, storage_target=params.get("lti_storage_target")
        )
        platform_origin = lti.origin_of(platform.auth_login_url)
        query = {
            "scope": "openid",
            "response_type": "id_token",
            "response_mode": "form_post",
            "prompt": "none",
            "client_id": platform.client_id,
            "redirect_uri": f"{base}/lti/launch",
            "login_hint": params["login_hint"],
            "state": made.state,
            "nonce": made.nonce,
        }
        if "lti_message_hint" in params:
            query["lti_message_hint"] = params["lti_message_hint"]
        separator = "&" if urlsplit(platform.auth_login_url).query else "?"
        auth_url = platform.auth_login_url + separator + urlencode(query)
        _allow_framing(request, platform)
    label = lti.state_label(made.state)
    cookie = _binding_cookie(request, label, made.binding, max_age=COOKIE_LIFETIME_SECONDS)
    response: Response
    if "lti_storage_target" in params:
        # Cookies may be blocked in the LMS's iframe: also leave the binding in the LMS's
        # own storage (LTI client-side postMessages), then go on to the platform.
        response = templates_of(request).TemplateResponse(
            request,
            "lti_storage.html",
            {
                "mode": "put",
                "config": {
                    "target": params["lti_storage_target"],
                    "origin": platform_origin,
                    "key": STORAGE_KEY_PREFIX + label,
                    "value": made.binding,
                    "next": auth_url,
                },
            },
        )
    else:
        response = RedirectResponse(auth_url, status_code=302)
    response.headers.append("set-cookie", cookie)
    response.headers["cache-control"] = "no-store"
    return response


async def launch(request: Request) -> Response:
    """The platform's form_post of the id token (see the module docstring about CSRF)."""
    await rate_limits_of(request).hit(request, LTI_LAUNCH, person=None)
    form = await request.form()
    state = _form_text(form, "state")
    id_token = _form_text(form, "id_token")
    if form.get("error"):
        return _refused(
            request,
            LaunchRefused(
                "Your LMS did not let the launch through. Open Peerboard again from the course.",
                detail=f"platform error {_form_text(form, 'error')[:60]!r}",
            ),
        )
    async with transaction(sessions_of(request), write=False) as session:
        pending = await lti.pending_state(session, state=state)
        platform = await session.get(LtiPlatform, pending.platform_id) if pending else None
    if pending is None or platform is None:
        return _refused(
            request,
            LaunchRefused(
                "This launch has expired or was already used. Open Peerboard again from "
                "your course.",
                detail="unknown state",
            ),
        )
    label = lti.state_label(state)
    binding = request.cookies.get(_binding_cookie_name(request, label)) or _form_text(
        form, "lti_binding"
    )
    if not binding and pending.storage_target and not form.get("storage_checked"):
        # No cookie came back (blocked in the iframe): fetch the binding from the LMS's
        # storage, then post the launch again with it.
        _allow_framing(request, platform)
        return templates_of(request).TemplateResponse(
            request,
            "lti_storage.html",
            {
                "mode": "get",
                "config": {
                    "target": pending.storage_target,
                    "origin": lti.origin_of(platform.auth_login_url),
                    "key": STORAGE_KEY_PREFIX + label,
                },
                "id_token": id_token,
                "state": state,
            },
            headers={"cache-control": "no-store"},
        )
    try:
        async with transaction(sessions_of(request)) as session:
            # Used up whatever follows: a refused launch cannot be retried with its state.
            row = await lti.consume_state(session, state=state, binding=binding)
        claims = await runtime_of(request).verify_id_token(platform, id_token)
        lti.check_claims(claims, platform=platform, nonce=row.nonce)
        async with transaction(sessions_of(request)) as session:
            result = await lti.complete_launch(session, platform=platform, claims=claims)
        lti_jobs.wake(request)  # a stale roster is read in the background (lti_roster)
    except LaunchRefused as exc:
        _allow_framing(request, platform)  # the refusal shows inside the LMS's frame
        response = _refused(request, exc, status=403 if exc.detail == "no role" else 400)
        response.headers.append("set-cookie", _binding_cookie(request, label, "", max_age=0))
        return response
    except httpx.HTTPError as exc:
        log.warning("LTI: platform keys unreachable: %s", exc)
        return _refused(
            request,
            LaunchRefused("Peerboard could not reach your LMS to check the launch. Try again."),
            status=502,
        )
    state_obj = request.scope.get(STATE_KEY)
    assert isinstance(state_obj, SessionState)
    deep_link: PendingDeepLink | None = None
    if result.deep_linking is not None:
        # The request waits in the instructor's session for their choice.
        deep_link = PendingDeepLink.start(platform=platform, result=result)
        kept = state_obj.data.get(DEEP_LINKS_KEY) if state_obj.user_id == result.user_id else None
        state_obj.data[DEEP_LINKS_KEY] = lti_deep_linking.remember(
            kept if isinstance(kept, dict) else {}, deep_link
        )
    state_obj.login(result.user_id, framed_by=lti.frame_origins(platform))
    log.info("LTI launch: user %s into %s as %s", result.user_id, result.cohort_slug,
             result.role.value)  # fmt: skip
    if deep_link is not None:
        where = request.app.url_path_for("lti:deep_link", request=deep_link.id)
    elif result.assignment_id is not None:
        where = request.app.url_path_for("assignments:detail", assignment=result.assignment_id)
    else:
        where = request.app.url_path_for("cohorts:detail", cohort=result.cohort_slug)
    response = RedirectResponse(str(where), status_code=303)
    response.headers.append("set-cookie", _binding_cookie(request, label, "", max_age=0))
    return response


def _form_text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


async def jwks(request: Request) -> Response:
    """Peerboard's public keys (current and recently retired); never a private part."""
    async with transaction(sessions_of(request), write=False) as session:
        document = await lti_keys.published_key_set(session)
    return JSONResponse(document, headers={"cache-control": "public, max-age=300"})


# --- administrators: platforms and keys -------------------------------------------------


def registration_url(request: Request) -> str:
    invite = lti.make_invite(secret=settings_of(request).secret_key)
    return f"{_base(request)}/lti/register?{urlencode({'invite': invite})}"


async def platforms_page(request: Request) -> Response:
    async with page_unit(request) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        platforms = await lti.list_platforms(session, actor=caller.actor)
    base = _base(request)
    return render_page(
        request,
        "lti_platforms.html",
        {
            "platforms": platforms,
            "registration_url": registration_url(request),
            "tool": {
                "login": f"{base}/lti/login",
                "launch": f"{base}/lti/launch",
                "jwks": f"{base}/lti/jwks.json",
                "register": f"{base}/lti/register",
            },
        },
    )


def _lines(form: FormData, name: str) -> list[str]:
    return [part.strip() for part in _form_text(form, name).replace(",", "\n").splitlines()]


async def add_platform(request: Request) -> Response:
    form = await request.form()
    async with page_unit(request, form) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        platform = await lti.register_platform(
            session,
            actor=caller.actor,
            secret=settings_of(request).secret_key,
            spec=PlatformSpec(
                issuer=_form_text(form, "issuer"),
                client_id=_form_text(form, "client_id"),
                auth_login_url=_form_text(form, "auth_login_url"),
                token_url=_form_text(form, "token_url"),
                jwks_url=_form_text(form, "jwks_url"),
                deployment_ids=_lines(form, "deployment_ids"),
                name=_form_text(form, "name"),
                frame_origins=[o for o in _lines(form, "frame_origins") if o],
            ),
        )
    return redirect_with_flash(
        request, str(request.app.url_path_for("lti:platforms")), f"{platform.name} is registered."
    )


async def rotate_keys(request: Request) -> Response:
    form = await request.form()
    async with page_unit(request, form) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        if not caller.actor.is_administrator:
            raise NotFound("No such page.")
        key = await lti_keys.rotate(session, secret=settings_of(request).secret_key)
    return redirect_with_flash(
        request,
        str(request.app.url_path_for("lti:platforms")),
        f"New signing key {key.kid}; the previous one stays published for two days.",
    )


# --- LTI Dynamic Registration -----------------------------------------------------------


def tool_configuration(base: str) -> dict[str, Any]:
    """What Peerboard asks a platform to register (LTI Dynamic Registration, client
    metadata with the LTI tool configuration)."""
    host = urlsplit(base).netloc
    return {
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": f"{base}/lti/login",
        "redirect_uris": [f"{base}/lti/launch"],
        "client_name": "Peerboard",
        "jwks_uri": f"{base}/lti/jwks.json",
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": " ".join(lti_advantage.TOOL_SCOPES),  # roster and grades (LTI Advantage)
        TOOL_CONFIGURATION: {
            "domain": host,
            "target_link_uri": f"{base}/lti/launch",
            "claims": ["iss", "sub", "name", "given_name", "family_name", "email"],
            "messages": [
                {"type": lti.RESOURCE_LINK_REQUEST},
                {
                    "type": lti.DEEP_LINKING_REQUEST,
                    "target_link_uri": f"{base}/lti/launch",
                    "label": "Peerboard assignment",
                    "placements": ["ContentArea"],
                    "supported_types": [lti.RESOURCE_LINK_TYPE],
                },
            ],
            "description": "Threaded discussion and anonymous peer review for a course.",
        },
    }


def _registration_inputs(source: Any) -> tuple[str, str, str]:
    def text(name: str) -> str:
        value = source.get(name)
        return value if isinstance(value, str) else ""

    return text("invite"), text("openid_configuration"), text("registration_token")


async def register_page(request: Request) -> Response:
    """Where the LMS administrator lands with the platform's openid_configuration: a page
    that says what will be registered, with one button (nothing changes on this GET)."""
    invite, config_url, token = _registration_inputs(request.query_params)
    settings = settings_of(request)
    if not lti.check_invite(invite, secret=settings.secret_key):
        raise NotFound("This registration link is not valid (or has expired). Ask for a new one.")
    lti.check_url(config_url, field="openid_configuration")
    return render_page(
        request,
        "lti_register.html",
        {"invite": invite, "config_url": config_url, "registration_token": token,
         "origin": lti.origin_of(config_url)},
    )  # fmt: skip


async def register(request: Request) -> Response:
    form = await request.form()
    invite, config_url, token = _registration_inputs(form)
    settings = settings_of(request)
    if not lti.check_invite(invite, secret=settings.secret_key):
        raise NotFound("This registration link is not valid (or has expired). Ask for a new one.")
    lti.check_url(config_url, field="openid_configuration")
    runtime = runtime_of(request)
    try:
        config = await runtime.get_json(config_url)
        spec_fields = _platform_fields(config, config_url)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with runtime.client() as client:
            answer = await client.post(
                spec_fields["registration_endpoint"],
                json=tool_configuration(settings.base_url),
                headers={"Accept": "application/json", **headers},
            )
        answer.raise_for_status()
        registered = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("LTI dynamic registration failed: %s", exc)
        raise Invalid("The LMS did not accept the registration. Try again from the LMS.") from None
    client_id = registered.get("client_id") if isinstance(registered, dict) else None
    tool_config = registered.get(TOOL_CONFIGURATION) if isinstance(registered, dict) else None
    deployment = tool_config.get("deployment_id") if isinstance(tool_config, dict) else None
    if not isinstance(client_id, str) or not client_id:
        raise Invalid("The LMS's answer to the registration had no client id.")
    platform_name = config.get("https://purl.imsglobal.org/spec/lti-platform-configuration")
    product = platform_name.get("product_family_code") if isinstance(platform_name, dict) else ""
    async with transaction(sessions_of(request)) as session:
        platform = await lti.register_platform(
            session,
            actor=Actor.system(),  # the signed invite is the administrator's consent
            secret=settings.secret_key,
            spec=PlatformSpec(
                issuer=spec_fields["issuer"],
                client_id=client_id,
                auth_login_url=spec_fields["authorization_endpoint"],
                token_url=spec_fields["token_endpoint"],
                jwks_url=spec_fields["jwks_uri"],
                deployment_ids=[deployment] if isinstance(deployment, str) else [],
                name=product if isinstance(product, str) and product else "",
                registered_by="dynamic",
            ),
        )
    return render_page(
        request,
        "lti_registered.html",
        {"platform": platform.name, "issuer": platform.issuer, "client_id": platform.client_id},
    )


def _platform_fields(config: object, config_url: str) -> dict[str, str]:
    if not isinstance(config, dict):
        raise Invalid("The LMS's configuration could not be read.")
    out: dict[str, str] = {}
    problems = []
    for name in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri",
                 "registration_endpoint"):  # fmt: skip
        value = config.get(name)
        if not isinstance(value, str):
            problems.append(Problem("is missing", field=name))
            continue
        out[name] = lti.check_url(value, field=name)
    if problems:
        raise Invalid(problems=problems)
    # The configuration must come from under its own issuer: a configuration served from
    # elsewhere cannot speak for that issuer.
    if not config_url.startswith(out["issuer"].rstrip("/") + "/"):
        raise Invalid(
            problems=[Problem("is not under the platform's issuer", field="openid_configuration")]
        )
    return out
