"""LTI Deep Linking 2.0: an instructor, sent by the LMS's "add an activity" flow, picks (or
creates) a Peerboard assignment, and the LMS gets back a signed resource link to it.

A deep linking request is verified like any launch (services.lti.check_claims); what it asks
for (services.lti.DeepLinkingSettings) waits in the instructor's session as a
`PendingDeepLink` until they choose. The answer is an `LtiDeepLinkingResponse` JWT signed
with the tool's current key (services.lti_keys), naming one `ltiResourceLink` whose custom
parameter `peerboard_assignment` the resource link launch already honours.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any

from joserfc import jwt
from sqlalchemy.ext.asyncio import AsyncSession

from services import cohorts, lti, lti_keys
from services.errors import NotFound
from services.models import Assignment, Cohort, LtiPlatform
from services.policy import Actor, can_manage_cohort

DEEP_LINKING_RESPONSE = "LtiDeepLinkingResponse"
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
CONTENT_ITEMS = DL + "content_items"
DATA = DL + "data"
MESSAGE = DL + "msg"
RESPONSE_LIFETIME_SECONDS = 300
# How long an instructor may take to choose; and how many choices one session keeps open.
PENDING_LIFETIME_SECONDS = 3600
MAX_PENDING = 8


@dataclass(frozen=True)
class PendingDeepLink:
    """A verified deep linking request waiting for the instructor's choice (kept in their
    session: JSON-able, and nothing in it the instructor may not know)."""

    id: str
    platform_id: int
    deployment_id: str
    cohort_slug: str
    return_url: str
    title: str
    data: Any
    created_at: float

    @classmethod
    def start(
        cls, *, platform: LtiPlatform, result: lti.LaunchResult, now: float | None = None
    ) -> PendingDeepLink:
        settings = result.deep_linking
        assert settings is not None and platform.id is not None
        return cls(
            id=secrets.token_urlsafe(12), platform_id=platform.id,
            deployment_id=result.deployment_id, cohort_slug=result.cohort_slug,
            return_url=settings.return_url, title=settings.title, data=settings.data,
            created_at=time.time() if now is None else now,
        )  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: object, *, now: float | None = None) -> PendingDeepLink | None:
        """The stored request, or None when it is malformed or too old."""
        if not isinstance(raw, dict):
            return None
        try:
            made = cls(**raw)
        except TypeError:
            return None
        fresh = made.created_at + PENDING_LIFETIME_SECONDS > (time.time() if now is None else now)
        return made if fresh else None


def remember(store: dict[str, Any], pending: PendingDeepLink) -> dict[str, Any]:
    """The session's pending requests with this one added (the oldest beyond the limit, and
    the expired, dropped)."""
    kept = {k: v for k, v in store.items() if PendingDeepLink.from_dict(v) is not None}
    kept[pending.id] = pending.as_dict()
    return dict(sorted(kept.items(), key=lambda kv: kv[1]["created_at"])[-MAX_PENDING:])


async def cohort_for(session: AsyncSession, *, actor: Actor, pending: PendingDeepLink) -> Cohort:
    """The request's cohort, for someone who still manages it (else as if there were none)."""
    cohort = await cohorts.get_cohort(session, actor=actor, slug=pending.cohort_slug)
    if not can_manage_cohort(actor, cohort):
        raise NotFound("No such cohort.")
    return cohort


async def respond(
    session: AsyncSession,
    *,
    actor: Actor,
    pending: PendingDeepLink,
    assignment_id: int,
    launch_url: str,
    secret: str,
    now: float | None = None,
) -> tuple[str, Assignment]:
    """The signed LtiDeepLinkingResponse that places `assignment_id` in the course."""
    cohort = await cohort_for(session, actor=actor, pending=pending)
    assignment = await session.get(Assignment, assignment_id)
    if assignment is None or assignment.cohort_id != cohort.id:
        raise NotFound("No such assignment in this course's cohort.")
    platform = await session.get(LtiPlatform, pending.platform_id)
    if platform is None:
        raise NotFound("This LMS is no longer registered with Peerboard.")
    claims = response_claims(
        platform=platform, pending=pending, assignment=assignment, launch_url=launch_url,
        now=now,
    )  # fmt: skip
    key = await lti_keys.ensure_key(session, secret=secret)
    signing = await lti_keys.signing_key(session, secret=secret)
    assert signing is not None and signing[0].id == key.id
    row, private = signing
    token = jwt.encode({"alg": lti_keys.ALGORITHM, "kid": row.kid, "typ": "JWT"}, claims, private)
    return token, assignment


def response_claims(
    *,
    platform: LtiPlatform,
    pending: PendingDeepLink,
    assignment: Assignment,
    launch_url: str,
    now: float | None = None,
) -> dict[str, Any]:
    """The response's claims (LTI Deep Linking 2.0 §4.2): from the tool (iss = our client
    id) to the platform (aud = its issuer), one resource link whose custom parameter names
    the assignment. Its title is the assignment's title, which every member sees anyway."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": platform.client_id,
        "aud": platform.issuer,
        "iat": issued,
        "exp": issued + RESPONSE_LIFETIME_SECONDS,
        "nonce": secrets.token_urlsafe(24),
        lti.DEPLOYMENT_ID: pending.deployment_id,
        lti.MESSAGE_TYPE: DEEP_LINKING_RESPONSE,
        lti.VERSION: lti.LTI_VERSION,
        CONTENT_ITEMS: [
            {
                "type": lti.RESOURCE_LINK_TYPE,
                "title": assignment.title,
                "url": launch_url,
                "custom": {lti.ASSIGNMENT_PARAMETER: str(assignment.id)},
            }
        ],
        MESSAGE: f"Peerboard: {assignment.title} is added to the course.",
    }
    if pending.data is not None:
        claims[DATA] = pending.data
    return claims
