"""The course's roster from its LMS (LTI Names and Role Provisioning Services 2.0).

A launch names the course's membership service (the `namesroleservice` claim) and its
gradebook service (the AGS `endpoint` claim); both are remembered per course. A roster sync
reads every page of the membership container and brings the cohort in line with it:

- an Active member with a course role joins with the mapped role (lti.cohort_role), as the
  person (platform issuer, user_id = the launch's `sub`); names and e-mails are stored like
  sign-in claims (identity.ensure_person);
- an LTI-sourced role follows the LMS; a role set by hand, a join code or a grant is left
  alone (as at launch);
- an LTI-sourced member who is Inactive, Deleted, without a course role, or absent leaves
  through the one leaver path (memberships.remove_memberships), so their review allocations
  heal. An answer with no members at all removes nobody (an LMS hiccup must not empty a
  course).

Syncs run on launch when the last one is stale (the launch only marks the course; the
roster job does the work), on a schedule, and from the "Sync roster now" button. One sync
per course at a time: a lease in one UPDATE whose row count decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from services import allocation, identity, lti, lti_advantage, memberships, policy
from services.db import insert_ignore, transaction
from services.errors import Invalid, NotFound
from services.identity import VerifiedIdentity
from services.lti_advantage import AdvantageClient, ServiceError
from services.models import (
    Cohort,
    LtiContext,
    LtiContextServices,
    LtiDeployment,
    LtiPlatform,
    Membership,
    MembershipSource,
    Role,
    User,
    utcnow,
)
from services.policy import Actor

NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
STALE_AFTER = timedelta(hours=1)  # a launch asks for a sync when the last one is older
LEASE = timedelta(minutes=5)
MAX_MEMBERS = 20000


def _url(value: object) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return lti.check_url(value, field="url")
    except Invalid:
        return None


async def remember_services(
    session: AsyncSession,
    *,
    context: LtiContext,
    claims: Mapping[str, Any],
    now: datetime | None = None,
) -> bool:
    """Keep the course's NRPS and AGS endpoints from a verified launch; mark a roster sync
    as wanted when the last one is stale. True when a sync was asked for."""
    assert context.id is not None
    now = now or utcnow()
    nrps = claims.get(NRPS_CLAIM)
    ags = claims.get(AGS_CLAIM)
    memberships_url = _url(nrps.get("context_memberships_url")) if isinstance(nrps, dict) else None
    lineitems_url = _url(ags.get("lineitems")) if isinstance(ags, dict) else None
    scopes = ags.get("scope") if isinstance(ags, dict) else None
    ags_scopes = (
        sorted({s for s in scopes if isinstance(s, str)})[:10] if isinstance(scopes, list) else []
    )
    if memberships_url is None and lineitems_url is None:
        return False
    await insert_ignore(session, LtiContextServices, context_pk=context.id, ags_scopes=[],
                        last_sync_added=0, last_sync_removed=0, last_sync_changed=0,
                        last_sync_message="", updated_at=now)  # fmt: skip
    row = await session.scalar(
        select(LtiContextServices).where(LtiContextServices.context_pk == context.id)
    )
    assert row is not None
    if memberships_url is not None:
        row.memberships_url = memberships_url
    if lineitems_url is not None:
        row.lineitems_url = lineitems_url
        row.ags_scopes = ags_scopes
    row.updated_at = now
    wanted = (
        row.memberships_url is not None
        and row.sync_requested_at is None
        and (row.last_sync_at is None or row.last_sync_at < now - STALE_AFTER)
    )
    if wanted:
        row.sync_requested_at = now
    await session.flush()
    return wanted


# --- applying a roster -------------------------------------------------------------------


@dataclass(frozen=True)
class RosterChange:
    added: int
    changed: int
    removed: int


def _member(raw: Mapping[str, Any]) -> tuple[str, Role, str | None, str | None] | None:
    """(user_id, role, name, email) of an active member with a course role, else None."""
    sub = raw.get("user_id")
    if not isinstance(sub, str) or not sub or len(sub) > 255 or "\x00" in sub:
        return None
    status = raw.get("status", "Active")
    if status != "Active":
        return None
    roles = raw.get("roles")
    role = lti.cohort_role(roles) if isinstance(roles, list) else None
    if role is None:
        return None
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        parts = [raw.get(k) for k in ("given_name", "family_name")]
        name = " ".join(p for p in parts if isinstance(p, str) and p.strip()) or None
    email = raw.get("email")
    return sub, role, name, email if isinstance(email, str) and "\x00" not in email else None


async def apply_roster(
    session: AsyncSession, *, cohort: Cohort, issuer: str, members: list[dict[str, Any]]
) -> RosterChange:
    """Bring the cohort's LTI-sourced memberships in line with the LMS's roster."""
    assert cohort.id is not None
    active: dict[str, tuple[Role, str | None, str | None]] = {}
    for raw in members[:MAX_MEMBERS]:
        found = _member(raw)
        if found is not None:
            sub, role, name, email = found
            active[sub] = (role, name, email)
    added = changed = 0
    pool_changed = False
    for sub, (role, name, email) in sorted(active.items()):
        user = await identity.ensure_person(
            session, identity=VerifiedIdentity(issuer=issuer, subject=sub, name=name, email=email)
        )
        assert user.id is not None
        inserted = await insert_ignore(
            session, Membership, cohort_id=cohort.id, user_id=user.id, role=role,
            source=MembershipSource.lti, created_at=utcnow(),
        )  # fmt: skip
        if inserted:
            added += 1
            pool_changed = pool_changed or role is Role.student
            continue
        # Set in SQL, and only on an LTI-sourced row: a role set by hand in between stays.
        result = await session.execute(
            sa.update(Membership)
            .where(
                col(Membership.cohort_id) == cohort.id,
                col(Membership.user_id) == user.id,
                col(Membership.source) == MembershipSource.lti,
                col(Membership.role) != role,
            )
            .values(role=role)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount:  # type: ignore[attr-defined]
            changed += 1
            pool_changed = True  # conservatively: in or out of the reviewer pool
    leaving: list[Membership] = []
    if members:
        leaving = list(
            (
                await session.execute(
                    select(Membership)
                    .join(User, col(User.id) == col(Membership.user_id))
                    .where(
                        Membership.cohort_id == cohort.id,
                        Membership.source == MembershipSource.lti,
                        User.issuer == issuer,
                        col(User.subject).not_in(list(active)),
                    )
                    .order_by(col(Membership.id))
                    .execution_options(populate_existing=True)
                )
            ).scalars()
        )
        if leaving:
            await memberships.remove_memberships(
                session, actor=Actor.system(), cohort=cohort, members=leaving,
                action="member.remove.lti_roster",
            )  # fmt: skip
    healed = any(m.role is Role.student for m in leaving)  # the leaver path healed
    if pool_changed and not healed:
        await allocation.heal_cohort(session, cohort_id=cohort.id)
    return RosterChange(added=added, changed=changed, removed=len(leaving))


# --- running a sync ----------------------------------------------------------------------


@dataclass(frozen=True)
class SyncOutcome:
    ok: bool
    added: int = 0
    changed: int = 0
    removed: int = 0
    message: str = ""
    busy: bool = False


async def _lease(session: AsyncSession, *, services_id: int, now: datetime) -> bool:
    result = await session.execute(
        sa.update(LtiContextServices)
        .where(
            col(LtiContextServices.id) == services_id,
            sa.or_(
                col(LtiContextServices.sync_lease_until).is_(None),
                col(LtiContextServices.sync_lease_until) < now,
            ),
        )
        .values(sync_lease_until=now + LEASE)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class _Target:
    services_id: int
    url: str
    cohort_id: int
    issuer: str
    registration: lti_advantage.Registration


async def _load(session: AsyncSession, *, services_id: int, secret: str) -> _Target | None:
    row = await session.get(LtiContextServices, services_id, populate_existing=True)
    if row is None or row.memberships_url is None:
        return None
    context = await session.get(LtiContext, row.context_pk)
    deployment = await session.get(LtiDeployment, context.deployment_id) if context else None
    platform = await session.get(LtiPlatform, deployment.platform_id) if deployment else None
    if context is None or platform is None:
        return None
    registration = await lti_advantage.registration_for(session, platform=platform, secret=secret)
    return _Target(services_id, row.memberships_url, context.cohort_id, platform.issuer,
                   registration)  # fmt: skip


async def _finish(
    session: AsyncSession, *, services_id: int, outcome: SyncOutcome, now: datetime
) -> None:
    await session.execute(
        sa.update(LtiContextServices)
        .where(col(LtiContextServices.id) == services_id)
        .values(
            sync_lease_until=None,
            sync_requested_at=None,
            last_sync_at=now,
            last_sync_ok=outcome.ok,
            last_sync_added=outcome.added,
            last_sync_changed=outcome.changed,
            last_sync_removed=outcome.removed,
            last_sync_message=outcome.message[:500],
        )
        .execution_options(synchronize_session=False)
    )


async def sync_course(
    sessions: async_sessionmaker[AsyncSession],
    client: AdvantageClient,
    *,
    services_id: int,
    secret: str,
) -> SyncOutcome:
    """One roster sync of one course: lease, read the roster over HTTP (outside any
    transaction), apply it in one transaction, record the outcome."""
    now = utcnow()
    async with transaction(sessions) as session:
        if not await _lease(session, services_id=services_id, now=now):
            return SyncOutcome(ok=False, busy=True, message="A roster sync is already running.")
        target = await _load(session, services_id=services_id, secret=secret)
    if target is None:
        outcome = SyncOutcome(ok=False, message="The course has no roster service.")
        async with transaction(sessions) as session:
            await _finish(session, services_id=services_id, outcome=outcome, now=now)
        return outcome
    try:
        members = await client.memberships(target.registration, target.url)
    except ServiceError as exc:
        outcome = SyncOutcome(ok=False, message=exc.message)
    else:
        async with transaction(sessions) as session:
            cohort = await session.get(Cohort, target.cohort_id)
            assert cohort is not None
            change = await apply_roster(
                session, cohort=cohort, issuer=target.issuer, members=members
            )
            outcome = SyncOutcome(
                ok=True, added=change.added, changed=change.changed, removed=change.removed,
                message="" if members else "The LMS sent an empty roster: nobody was removed.",
            )  # fmt: skip
            await _finish(session, services_id=services_id, outcome=outcome, now=utcnow())
        return outcome
    async with transaction(sessions) as session:
        await _finish(session, services_id=services_id, outcome=outcome, now=utcnow())
    return outcome


async def due_courses(
    session: AsyncSession, *, every: timedelta, now: datetime | None = None, limit: int = 5
) -> list[int]:
    """Courses whose roster should be read now: asked for (a stale launch), or not read
    for `every` (the schedule); none that another process is reading."""
    now = now or utcnow()
    rows = await session.execute(
        select(LtiContextServices.id)
        .where(
            col(LtiContextServices.memberships_url).is_not(None),
            sa.or_(
                col(LtiContextServices.sync_requested_at).is_not(None),
                col(LtiContextServices.last_sync_at).is_(None),
                col(LtiContextServices.last_sync_at) < now - every,
            ),
            sa.or_(
                col(LtiContextServices.sync_lease_until).is_(None),
                col(LtiContextServices.sync_lease_until) < now,
            ),
        )
        .order_by(col(LtiContextServices.sync_requested_at).is_(None), col(LtiContextServices.id))
        .limit(limit)
    )
    return [i for i in rows.scalars() if i is not None]


async def sync_due(
    sessions: async_sessionmaker[AsyncSession],
    client: AdvantageClient,
    *,
    secret: str,
    every: timedelta,
) -> list[SyncOutcome]:
    """The roster job's round: sync the courses that are due."""
    async with transaction(sessions, write=False) as session:
        due = await due_courses(session, every=every)
    return [
        await sync_course(sessions, client, services_id=services_id, secret=secret)
        for services_id in due
    ]


# --- the instructors' side ---------------------------------------------------------------


@dataclass(frozen=True)
class RosterStatus:
    """What the members page says about the LMS roster of a cohort."""

    connected: bool  # the LMS announced a roster service
    can_sync: bool
    last_sync_at: datetime | None
    last_sync_ok: bool | None
    added: int
    changed: int
    removed: int
    message: str
    pending: bool


async def course_services(
    session: AsyncSession, *, cohort_id: int, having: Any
) -> list[LtiContextServices]:
    """The LMS courses of a cohort that offer a service (`having`: the service's URL
    column, e.g. LtiContextServices.memberships_url or .lineitems_url)."""
    return list(
        (
            await session.execute(
                select(LtiContextServices)
                .join(LtiContext, col(LtiContext.id) == col(LtiContextServices.context_pk))
                .where(LtiContext.cohort_id == cohort_id, col(having).is_not(None))
                .order_by(col(LtiContextServices.id))
            )
        ).scalars()
    )


async def roster_status(
    session: AsyncSession, *, actor: Actor, cohort: Cohort
) -> RosterStatus | None:
    """The cohort's LMS roster state, for those who manage members; None when the cohort
    did not come from an LMS with a roster service."""
    if not policy.can_manage_members(actor, cohort):
        return None
    rows = await course_services(
        session, cohort_id=cohort.id or 0, having=LtiContextServices.memberships_url
    )
    if not rows:
        return None
    row = rows[0]
    return RosterStatus(
        connected=True, can_sync=policy.can_sync_roster(actor, cohort),
        last_sync_at=row.last_sync_at, last_sync_ok=row.last_sync_ok,
        added=row.last_sync_added, changed=row.last_sync_changed,
        removed=row.last_sync_removed, message=row.last_sync_message,
        pending=row.sync_requested_at is not None,
    )  # fmt: skip


async def syncable_courses(session: AsyncSession, *, actor: Actor, slug: str) -> list[int]:
    """The courses behind a cohort that an instructor may sync now (NotFound otherwise)."""
    cohort = await policy.access_cohort(session, actor=actor, slug=slug)
    if not policy.can_sync_roster(actor, cohort):
        raise NotFound("No such cohort.")
    rows = await course_services(
        session, cohort_id=cohort.id or 0, having=LtiContextServices.memberships_url
    )
    if not rows:
        raise Invalid(
            "This cohort has no roster service from an LMS: launch it from the course first."
        )
    return [r.id for r in rows if r.id is not None]
