"""LTI 1.3: registered platforms, login states, and what a verified launch does.

The web adapter (web/lti.py) checks the id token's signature against the platform's keys;
everything after that is here: the claims a launch must carry, the single-use state and
nonce, signing the person in (a person is (platform issuer, sub), like any identity), the
course → cohort mapping, LIS roles → cohort roles, and the resource link → assignment.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services import allocation, audit, cohorts, identity, lti_keys, lti_roster
from services.db import insert_ignore
from services.errors import Invalid, NotFound, Problem
from services.identity import VerifiedIdentity
from services.models import (
    Assignment,
    Cohort,
    LtiContext,
    LtiDeployment,
    LtiLaunchState,
    LtiPlatform,
    LtiResourceLink,
    Membership,
    MembershipSource,
    Role,
    utcnow,
)
from services.policy import Actor

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
MESSAGE_TYPE = CLAIM + "message_type"
VERSION = CLAIM + "version"
DEPLOYMENT_ID = CLAIM + "deployment_id"
ROLES = CLAIM + "roles"
CONTEXT = CLAIM + "context"
RESOURCE_LINK = CLAIM + "resource_link"
CUSTOM = CLAIM + "custom"
TARGET_LINK_URI = CLAIM + "target_link_uri"
RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"
DEEP_LINKING_REQUEST = "LtiDeepLinkingRequest"
DEEP_LINKING_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
RESOURCE_LINK_TYPE = "ltiResourceLink"
MESSAGE_TYPES = (RESOURCE_LINK_REQUEST, DEEP_LINKING_REQUEST)
LTI_VERSION = "1.3.0"
# A custom parameter an instructor (or deep linking) sets on a placement to name its
# assignment: peerboard_assignment=$ID.
ASSIGNMENT_PARAMETER = "peerboard_assignment"

LIS = "http://purl.imsglobal.org/vocab/lis/v2/membership"
# Context roles, full URIs; the LTI 1.3 core also lets platforms send the short names.
_ROLE_MAP: dict[str, Role] = {
    f"{LIS}#Administrator": Role.instructor,
    f"{LIS}#ContentDeveloper": Role.instructor,
    f"{LIS}#Instructor": Role.instructor,
    f"{LIS}/Instructor#TeachingAssistant": Role.moderator,
    f"{LIS}#Mentor": Role.moderator,
    f"{LIS}#Learner": Role.student,
    "Instructor": Role.instructor,
    "TeachingAssistant": Role.moderator,
    "Mentor": Role.moderator,
    "Learner": Role.student,
}
_RANK = {Role.student: 0, Role.moderator: 1, Role.instructor: 2}

STATE_LIFETIME = timedelta(minutes=10)
CLOCK_SKEW_SECONDS = 60
MAX_TOKEN_AGE_SECONDS = 3600  # an id token older than this (by iat) is refused
REGISTRATION_KINDS = ("manual", "dynamic")
_SLUG_CHARS = re.compile(r"[^a-z0-9]+")


class LaunchRefused(Invalid):
    """A login or launch that cannot be trusted; `reason` is for the person in the LMS."""

    code = "lti_launch_refused"
    title = "The launch from your course could not be verified"

    def __init__(self, reason: str, *, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail or reason


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# --- registration ---------------------------------------------------------------------------


def check_url(value: str, *, field: str, allow_http_local: bool = True) -> str:
    value = value.strip()
    parts = urlsplit(value)
    local = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if (
        len(value) > 1000
        or not parts.hostname
        or parts.fragment
        or not (parts.scheme == "https" or (parts.scheme == "http" and local and allow_http_local))
    ):
        raise Invalid(problems=[Problem("must be an https URL (http only for localhost)", field)])
    return value


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class PlatformSpec:
    issuer: str
    client_id: str
    auth_login_url: str
    token_url: str
    jwks_url: str
    deployment_ids: Sequence[str] = ()
    name: str = ""
    frame_origins: Sequence[str] = ()
    registered_by: str = "manual"


def _check_spec(spec: PlatformSpec) -> PlatformSpec:
    problems: list[Problem] = []
    values: dict[str, str] = {}
    for field in ("issuer", "auth_login_url", "token_url", "jwks_url"):
        try:
            values[field] = check_url(getattr(spec, field), field=field)
        except Invalid as exc:
            problems += exc.problems
    client_id = spec.client_id.strip()
    if not client_id or len(client_id) > 255 or "\x00" in client_id:
        problems.append(Problem("must be 1-255 characters", field="client_id"))
    deployments = [d.strip() for d in spec.deployment_ids if d.strip()]
    if any(len(d) > 255 or "\x00" in d for d in deployments):
        problems.append(Problem("must be 1-255 characters each", field="deployment_id"))
    origins = []
    for origin in spec.frame_origins:
        try:
            origins.append(origin_of(check_url(origin, field="frame_origin")))
        except Invalid as exc:
            problems += exc.problems
    if spec.registered_by not in REGISTRATION_KINDS:
        problems.append(Problem("must be manual or dynamic", field="registered_by"))
    if problems:
        raise Invalid(problems=problems)
    name = spec.name.strip() or urlsplit(values["issuer"]).hostname or "LMS"
    return PlatformSpec(
        issuer=values["issuer"],
        client_id=client_id,
        auth_login_url=values["auth_login_url"],
        token_url=values["token_url"],
        jwks_url=values["jwks_url"],
        deployment_ids=tuple(dict.fromkeys(deployments)),
        name=cohorts.clean_name(name, field="name"),
        frame_origins=tuple(dict.fromkeys(origins)),
        registered_by=spec.registered_by,
    )


async def register_platform(
    session: AsyncSession, *, actor: Actor, spec: PlatformSpec, secret: str
) -> LtiPlatform:
    """Add a platform (or update the one with this issuer and client id) and its deployments.
    Administrators only (and the dynamic registration flow, which runs as the system)."""
    if not actor.is_administrator:
        raise NotFound("No such page.")
    spec = _check_spec(spec)
    platform = await session.scalar(
        select(LtiPlatform).where(
            LtiPlatform.issuer == spec.issuer, LtiPlatform.client_id == spec.client_id
        )
    )
    if platform is None:
        platform = LtiPlatform(issuer=spec.issuer, client_id=spec.client_id, name=spec.name,
                               auth_login_url="", token_url="", jwks_url="")  # fmt: skip
        session.add(platform)
    platform.name = spec.name
    platform.auth_login_url = spec.auth_login_url
    platform.token_url = spec.token_url
    platform.jwks_url = spec.jwks_url
    platform.frame_origins = sorted(set(platform.frame_origins or []) | set(spec.frame_origins))
    platform.registered_by = spec.registered_by
    await session.flush()
    assert platform.id is not None
    for deployment_id in spec.deployment_ids:
        await insert_ignore(
            session, LtiDeployment, platform_id=platform.id, deployment_id=deployment_id,
            created_at=utcnow(),
        )  # fmt: skip
    await audit.record(
        session, actor=actor, action="lti.platform.register", target_type="lti_platform",
        target_id=platform.id,
        details={"issuer": platform.issuer, "client_id": platform.client_id,
                 "deployments": list(spec.deployment_ids), "by": spec.registered_by},
    )  # fmt: skip
    # Platforms fetch our key set as soon as they know us: have one ready.
    await lti_keys.ensure_key(session, secret=secret)
    return platform


@dataclass(frozen=True)
class PlatformView:
    id: int
    name: str
    issuer: str
    client_id: str
    auth_login_url: str
    token_url: str
    jwks_url: str
    registered_by: str
    deployments: list[str]
    frame_origins: list[str]


async def list_platforms(session: AsyncSession, *, actor: Actor) -> list[PlatformView]:
    if not actor.is_administrator:
        raise NotFound("No such page.")
    platforms = (
        await session.execute(
            select(LtiPlatform).order_by(col(LtiPlatform.name), col(LtiPlatform.id))
        )
    ).scalars()
    deployments: dict[int, list[str]] = {}
    for row in (
        await session.execute(select(LtiDeployment).order_by(col(LtiDeployment.id)))
    ).scalars():
        deployments.setdefault(row.platform_id, []).append(row.deployment_id)
    return [
        PlatformView(
            id=p.id or 0,
            name=p.name,
            issuer=p.issuer,
            client_id=p.client_id,
            auth_login_url=p.auth_login_url,
            token_url=p.token_url,
            jwks_url=p.jwks_url,
            registered_by=p.registered_by,
            deployments=deployments.get(p.id or 0, []),
            frame_origins=list(p.frame_origins or []),
        )
        for p in platforms
    ]


async def find_platform(
    session: AsyncSession, *, issuer: str, client_id: str | None
) -> LtiPlatform | None:
    """The registration a login initiation names. Without a client id, only an issuer with a
    single registration is unambiguous."""
    query = select(LtiPlatform).where(LtiPlatform.issuer == issuer)
    if client_id:
        query = query.where(LtiPlatform.client_id == client_id)
    found = list((await session.execute(query.limit(2))).scalars())
    return found[0] if len(found) == 1 else None


def frame_origins(platform: LtiPlatform) -> list[str]:
    """Origins that may show Peerboard in a frame after this platform's launch."""
    return sorted(
        {origin_of(platform.issuer), origin_of(platform.auth_login_url),
         *(platform.frame_origins or [])}
    )  # fmt: skip


# --- login state ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginState:
    state: str
    nonce: str
    binding: str  # the browser's proof: in a cookie, or in the platform's storage


async def begin_login(
    session: AsyncSession, *, platform: LtiPlatform, storage_target: str | None
) -> LoginState:
    """Remember a login initiation for the launch that follows it."""
    assert platform.id is not None
    now = utcnow()
    await session.execute(delete(LtiLaunchState).where(col(LtiLaunchState.expires_at) < now))
    made = LoginState(
        state=secrets.token_urlsafe(32),
        nonce=secrets.token_urlsafe(32),
        binding=secrets.token_urlsafe(32),
    )
    target = storage_target if storage_target and len(storage_target) <= 64 else None
    session.add(
        LtiLaunchState(
            state_hash=digest(made.state), binding_hash=digest(made.binding), nonce=made.nonce,
            platform_id=platform.id, storage_target=target, created_at=now,
            expires_at=now + STATE_LIFETIME,
        )
    )  # fmt: skip
    await session.flush()
    return made


def state_label(state: str) -> str:
    """A short, non-secret name for a state (the cookie and storage key that hold its
    binding); lets several launches run at once in one browser."""
    return digest(state)[:16]


async def pending_state(session: AsyncSession, *, state: str) -> LtiLaunchState | None:
    if not state or len(state) > 200:
        return None
    row = await session.scalar(
        select(LtiLaunchState).where(LtiLaunchState.state_hash == digest(state))
    )
    if row is None or row.expires_at <= utcnow():
        return None
    return row


async def consume_state(session: AsyncSession, *, state: str, binding: str) -> LtiLaunchState:
    """Use a login state up: it must exist, be fresh, and be presented by the browser that
    started the login (the binding). Deleted in one statement whose row count decides, so
    two launches racing with one state cannot both pass. Its nonce goes with it: a replayed
    id token finds no state, and a new login's state carries a different nonce."""
    row = await pending_state(session, state=state)
    if row is None:
        raise LaunchRefused(
            "This launch has expired or was already used. Open Peerboard again from your course.",
            detail="unknown, expired or used state",
        )
    result = await session.execute(delete(LtiLaunchState).where(col(LtiLaunchState.id) == row.id))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise LaunchRefused("This launch was already used.", detail="state raced")
    if not binding or not hmac.compare_digest(digest(binding), row.binding_hash):
        raise LaunchRefused(
            "This launch did not come back to the browser that started it. "
            "Open Peerboard again from your course.",
            detail="browser binding mismatch",
        )
    return row


# --- the launch -----------------------------------------------------------------------------


def check_claims(
    claims: Mapping[str, Any], *, platform: LtiPlatform, nonce: str, now: float | None = None
) -> None:
    """What the Security Framework and LTI core require of a launch's id token (a resource
    link launch, or a deep linking request), beyond its signature (checked by the caller
    against the platform's keys)."""
    now = time.time() if now is None else now
    if claims.get("iss") != platform.issuer:
        raise LaunchRefused("The launch came from an unexpected platform.", detail="iss")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if platform.client_id not in audiences:
        raise LaunchRefused("The launch was meant for another tool.", detail="aud")
    if len(audiences) > 1 and claims.get("azp") != platform.client_id:
        raise LaunchRefused("The launch was meant for another tool.", detail="azp")
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int | float) or exp + CLOCK_SKEW_SECONDS < now:
        raise LaunchRefused("The launch has expired. Open Peerboard again.", detail="exp")
    if not isinstance(iat, int | float) or iat - CLOCK_SKEW_SECONDS > now:
        raise LaunchRefused("The launch's time is wrong.", detail="iat in the future")
    if iat + MAX_TOKEN_AGE_SECONDS < now:
        raise LaunchRefused("The launch has expired. Open Peerboard again.", detail="iat old")
    token_nonce = claims.get("nonce")
    if not isinstance(token_nonce, str) or not hmac.compare_digest(
        token_nonce.encode(), nonce.encode()
    ):
        raise LaunchRefused("The launch did not match its login.", detail="nonce")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 255:
        raise LaunchRefused("The launch did not say who you are.", detail="sub")
    message_type = claims.get(MESSAGE_TYPE)
    if message_type not in MESSAGE_TYPES:
        raise LaunchRefused("Peerboard does not handle this kind of launch.", detail="type")
    if claims.get(VERSION) != LTI_VERSION:
        raise LaunchRefused("Peerboard speaks LTI 1.3.0 only.", detail="version")
    if not isinstance(claims.get(DEPLOYMENT_ID), str):
        raise LaunchRefused("The launch names no deployment.", detail="deployment_id")
    if not isinstance(claims.get(ROLES), list):
        raise LaunchRefused("The launch did not say what your role is.", detail="roles")
    if message_type == DEEP_LINKING_REQUEST:
        deep_linking_settings(claims)
    else:
        link = claims.get(RESOURCE_LINK)
        if not isinstance(link, dict) or not isinstance(link.get("id"), str) or not link["id"]:
            raise LaunchRefused("The launch names no resource link.", detail="resource_link")
    context = claims.get(CONTEXT)
    if not isinstance(context, dict) or not isinstance(context.get("id"), str):
        raise LaunchRefused(
            "Peerboard is launched from a course: this launch names none.", detail="context"
        )


@dataclass(frozen=True)
class DeepLinkingSettings:
    """What a deep linking request asks for (LTI Deep Linking 2.0, deep_linking_settings)."""

    return_url: str
    accept_types: tuple[str, ...]
    accept_multiple: bool
    title: str
    # Opaque to the tool and echoed in the response when present: a string by the spec,
    # though some platforms send a JSON object; either goes back as it came.
    data: Any


def deep_linking_settings(claims: Mapping[str, Any]) -> DeepLinkingSettings:
    """The request's settings, or a refusal that says what is wrong with them."""
    raw = claims.get(DEEP_LINKING_SETTINGS)
    if not isinstance(raw, dict):
        raise LaunchRefused(
            "The LMS asked to add an activity but did not say where to return it.",
            detail="deep_linking_settings",
        )
    return_url = raw.get("deep_link_return_url")
    try:
        if not isinstance(return_url, str):
            raise Invalid("no return url")
        return_url = check_url(return_url, field="deep_link_return_url")
    except Invalid:
        raise LaunchRefused(
            "The LMS asked to add an activity but gave no usable address to return it to.",
            detail="deep_link_return_url",
        ) from None
    accept_types = raw.get("accept_types")
    if not isinstance(accept_types, list) or RESOURCE_LINK_TYPE not in accept_types:
        raise LaunchRefused(
            "The LMS asked for a kind of content Peerboard cannot give: Peerboard adds its "
            "assignments as LTI resource links (ltiResourceLink), and this request does not "
            "accept them. Add Peerboard as an external tool activity instead.",
            detail="accept_types",
        )
    data = raw.get("data")
    if data is not None and len(json.dumps(data)) > 4096:
        raise LaunchRefused("The LMS's deep linking request is malformed.", detail="dl data")
    return DeepLinkingSettings(
        return_url=return_url,
        accept_types=tuple(t for t in accept_types if isinstance(t, str)),
        accept_multiple=raw.get("accept_multiple") is True,
        title=_text(raw.get("title"), 200),
        data=data,
    )


def cohort_role(roles: Iterable[object]) -> Role | None:
    """The highest cohort role the LIS context roles give (institution roles give none)."""
    best: Role | None = None
    for value in roles:
        role = _ROLE_MAP.get(value) if isinstance(value, str) else None
        if role is not None and (best is None or _RANK[role] > _RANK[best]):
            best = role
    return best


@dataclass(frozen=True)
class LaunchResult:
    user_id: int
    cohort_slug: str
    role: Role
    assignment_id: int | None
    cohort_created: bool
    deployment_id: str = ""
    # Set for a deep linking request: the instructor picks what to return to the LMS.
    deep_linking: DeepLinkingSettings | None = None


def _text(value: object, limit: int) -> str:
    return " ".join(value.split())[:limit] if isinstance(value, str) else ""


def _slug_for(title: str) -> str:
    base = _SLUG_CHARS.sub("-", title.lower()).strip("-")[:48].strip("-") or "course"
    return f"{base}-{secrets.token_hex(3)}"


async def complete_launch(
    session: AsyncSession, *, platform: LtiPlatform, claims: Mapping[str, Any]
) -> LaunchResult:
    """A verified launch: sign the person in, find or make the course's cohort, give them
    their role there, and find the placement's assignment."""
    assert platform.id is not None
    deployment = await session.scalar(
        select(LtiDeployment).where(
            LtiDeployment.platform_id == platform.id,
            LtiDeployment.deployment_id == claims[DEPLOYMENT_ID],
        )
    )
    if deployment is None or deployment.id is None:
        raise LaunchRefused(
            "Peerboard is not installed for this part of your LMS (unknown deployment). "
            "Ask your LMS administrator to register it.",
            detail="unknown deployment",
        )
    role = cohort_role(claims[ROLES])
    if role is None:
        raise LaunchRefused(
            "Your role in this course does not give access to Peerboard.", detail="no role"
        )
    deep_linking: DeepLinkingSettings | None = None
    if claims[MESSAGE_TYPE] == DEEP_LINKING_REQUEST:
        deep_linking = deep_linking_settings(claims)
        if role is not Role.instructor:
            raise LaunchRefused(
                "Only the course's instructors can add Peerboard assignments to the course. "
                "Ask an instructor to add the activity.",
                detail="no role",
            )
    name = claims.get("name") or " ".join(
        str(claims[k]) for k in ("given_name", "family_name") if isinstance(claims.get(k), str)
    )
    email = claims.get("email")
    user = await identity.sign_in(
        session,
        identity=VerifiedIdentity(
            issuer=platform.issuer,
            subject=str(claims["sub"]),
            name=name if isinstance(name, str) and name.strip() else None,
            email=email if isinstance(email, str) else None,
        ),
    )
    assert user.id is not None
    context = claims[CONTEXT]
    cohort, created = await _cohort_for(session, deployment=deployment, context=context)
    assert cohort.id is not None
    await _give_role(session, cohort=cohort, user_id=user.id, role=role)
    # LTI Advantage: remember the course's roster and gradebook services (lti_roster).
    context_row = await _context_row(
        session, deployment=deployment, context_id=str(context["id"])[:255]
    )
    assert context_row is not None
    await lti_roster.remember_services(session, context=context_row, claims=claims)
    assignment_id = None
    if deep_linking is None:
        assignment_id = await _resource_link(
            session, deployment=deployment, cohort=cohort, context_id=str(context["id"]),
            link=claims[RESOURCE_LINK], custom=claims.get(CUSTOM),
        )  # fmt: skip
    return LaunchResult(
        user_id=user.id, cohort_slug=cohort.slug, role=role, assignment_id=assignment_id,
        cohort_created=created, deployment_id=deployment.deployment_id,
        deep_linking=deep_linking,
    )  # fmt: skip


async def _context_row(
    session: AsyncSession, *, deployment: LtiDeployment, context_id: str
) -> LtiContext | None:
    return await session.scalar(
        select(LtiContext).where(
            LtiContext.deployment_id == deployment.id, LtiContext.context_id == context_id
        )
    )


async def _cohort_for(
    session: AsyncSession, *, deployment: LtiDeployment, context: Mapping[str, Any]
) -> tuple[Cohort, bool]:
    """The course's cohort, made at its first launch and named from the course title. Two
    first launches racing: one insert of the mapping wins; the loser's cohort is dropped."""
    context_id = str(context["id"])[:255]
    row = await _context_row(session, deployment=deployment, context_id=context_id)
    if row is not None:
        cohort = await session.get(Cohort, row.cohort_id)
        assert cohort is not None
        return cohort, False
    title = _text(context.get("title"), 200) or _text(context.get("label"), 200) or "Course"
    cohort = await cohorts.create_cohort(
        session, actor=Actor.system(), slug=_slug_for(title), name=title
    )
    assert cohort.id is not None and deployment.id is not None
    inserted = await insert_ignore(
        session, LtiContext, deployment_id=deployment.id, context_id=context_id,
        cohort_id=cohort.id, created_at=utcnow(),
    )  # fmt: skip
    if not inserted:
        await session.delete(cohort)
        await session.flush()
        row = await _context_row(session, deployment=deployment, context_id=context_id)
        assert row is not None
        existing = await session.get(Cohort, row.cohort_id)
        assert existing is not None
        return existing, False
    await audit.record(
        session, actor=Actor.system(), cohort_id=cohort.id, action="lti.cohort.create",
        target_type="cohort", target_id=cohort.slug, details={"context": context_id},
    )  # fmt: skip
    return cohort, True


async def _give_role(session: AsyncSession, *, cohort: Cohort, user_id: int, role: Role) -> None:
    """The LMS decides LTI-sourced roles at every launch; a role an instructor set by hand
    (or a grant) is left alone."""
    assert cohort.id is not None
    membership = await session.scalar(
        select(Membership).where(Membership.cohort_id == cohort.id, Membership.user_id == user_id)
    )
    if membership is None:
        inserted = await insert_ignore(
            session, Membership, cohort_id=cohort.id, user_id=user_id, role=role,
            source=MembershipSource.lti, created_at=utcnow(),
        )  # fmt: skip
        changed_pool = inserted and role is Role.student
    elif membership.source is MembershipSource.lti and membership.role is not role:
        changed_pool = (membership.role is Role.student) != (role is Role.student)
        membership.role = role
        await session.flush()
    else:
        changed_pool = False
    if changed_pool:
        await allocation.heal_cohort(session, cohort_id=cohort.id)


async def _resource_link(
    session: AsyncSession,
    *,
    deployment: LtiDeployment,
    cohort: Cohort,
    context_id: str,
    link: Mapping[str, Any],
    custom: object,
) -> int | None:
    assert deployment.id is not None
    context = await _context_row(session, deployment=deployment, context_id=context_id[:255])
    assert context is not None and context.id is not None
    link_id = str(link["id"])[:255]
    await insert_ignore(
        session, LtiResourceLink, deployment_id=deployment.id, resource_link_id=link_id,
        context_pk=context.id, title=_text(link.get("title"), 200), created_at=utcnow(),
    )  # fmt: skip
    row = await session.scalar(
        select(LtiResourceLink).where(
            LtiResourceLink.deployment_id == deployment.id,
            LtiResourceLink.resource_link_id == link_id,
        )
    )
    assert row is not None
    if row.context_pk != context.id:
        # A placement id reused in another course: never lead into the other cohort.
        return None
    if row.assignment_id is None and isinstance(custom, dict):
        wanted = custom.get(ASSIGNMENT_PARAMETER)
        if isinstance(wanted, str | int) and str(wanted).isdigit():
            assignment = await session.get(Assignment, int(wanted))
            if assignment is not None and assignment.cohort_id == cohort.id:
                row.assignment_id = assignment.id
                await session.flush()
    if row.assignment_id is not None:
        assignment = await session.get(Assignment, row.assignment_id)
        if assignment is None or assignment.cohort_id != cohort.id:
            return None
    return row.assignment_id


# --- dynamic registration invitations -------------------------------------------------------

INVITE_LIFETIME = timedelta(days=7)


def make_invite(*, secret: str, now: float | None = None) -> str:
    """The token in the registration URL an administrator hands to an LMS administrator.
    Anyone holding it can register a platform until it expires, so it is signed (HMAC with
    the service's secret) and short-lived; no platform can register without one."""
    expires = int((time.time() if now is None else now) + INVITE_LIFETIME.total_seconds())
    return f"{expires}.{_invite_mac(secret, expires)}"


def check_invite(token: str, *, secret: str, now: float | None = None) -> bool:
    expires_text, _, mac = token.partition(".")
    if not expires_text.isdigit() or len(expires_text) > 12 or not mac:
        return False
    expires = int(expires_text)
    if expires < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(mac.encode(), _invite_mac(secret, expires).encode())


def _invite_mac(secret: str, expires: int) -> str:
    return hmac.new(secret.encode(), f"lti-register:{expires}".encode(), "sha256").hexdigest()[:40]
