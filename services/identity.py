"""People: who they are (issuer + subject from their identity provider) and how they arrive.

Email is contact data only; two accounts with the same email at two providers are two
people. Sign-in refreshes the name and email and brings group-claim memberships in line
with the identity provider's groups.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services import allocation, audit
from services.cohorts import clean_name
from services.db import insert_ignore
from services.errors import Invalid, NotFound, Problem
from services.models import Cohort, GroupRule, Membership, MembershipSource, Role, User, utcnow
from services.policy import Actor

ROLE_RANK = {Role.student: 0, Role.moderator: 1, Role.instructor: 2}
MAX_GROUPS = 500


@dataclass(frozen=True)
class VerifiedIdentity:
    """Claims from an id token whose signature, issuer, audience, expiry and nonce the web
    layer has checked (or from that provider's userinfo endpoint)."""

    issuer: str
    subject: str
    name: str | None = None
    email: str | None = None
    groups: Sequence[str] = field(default_factory=tuple)


def display_name_for(identity: VerifiedIdentity) -> str:
    for candidate in (identity.name, identity.email.split("@")[0] if identity.email else None):
        if candidate and candidate.strip():
            return " ".join(candidate.split())[:120]
    # No name at all: a stable, meaningless label rather than the subject itself.
    digest = hashlib.sha256(f"{identity.issuer}\n{identity.subject}".encode()).hexdigest()
    return f"Member {digest[:6]}"


def _check_identity(identity: VerifiedIdentity) -> None:
    problems = []
    if not identity.issuer or len(identity.issuer) > 255:
        problems.append(Problem("must be 1-255 characters", field="iss"))
    if not identity.subject or len(identity.subject) > 255 or "\x00" in identity.subject:
        problems.append(Problem("must be 1-255 characters without NUL", field="sub"))
    if problems:
        raise Invalid(problems=problems)


async def find_user(session: AsyncSession, *, issuer: str, subject: str) -> User | None:
    return await session.scalar(select(User).where(User.issuer == issuer, User.subject == subject))


async def ensure_person(session: AsyncSession, *, identity: VerifiedIdentity) -> User:
    """Create or refresh the person (issuer, subject) from verified claims: a sign-in, or a
    course roster from the LMS (whose names and emails are stored like sign-in claims).
    Created in one statement, so two arrivals of one new person make one row."""
    _check_identity(identity)
    name = display_name_for(identity)
    email = identity.email if identity.email and len(identity.email) <= 320 else None
    await insert_ignore(
        session, User, issuer=identity.issuer, subject=identity.subject, display_name=name,
        email=email, is_administrator=False, created_at=utcnow(),
    )  # fmt: skip
    user = await find_user(session, issuer=identity.issuer, subject=identity.subject)
    assert user is not None
    if identity.name or identity.email or user.display_name == user.subject:
        user.display_name = name
    if email:
        user.email = email
    await session.flush()
    return user


async def sign_in(session: AsyncSession, *, identity: VerifiedIdentity) -> User:
    """Record a verified sign-in: create or refresh the person, then sync group memberships."""
    user = await ensure_person(session, identity=identity)
    user.last_sign_in_at = utcnow()
    await session.flush()
    await _sync_group_memberships(session, user=user, groups=identity.groups)
    return user


async def _sync_group_memberships(
    session: AsyncSession, *, user: User, groups: Sequence[str]
) -> None:
    """Group-sourced memberships follow the groups claim; other memberships are left alone."""
    assert user.id is not None
    wanted_groups = {g for g in list(groups)[:MAX_GROUPS] if isinstance(g, str)}
    rules = (
        await session.execute(
            select(GroupRule).where(
                GroupRule.issuer == user.issuer, col(GroupRule.group_name).in_(wanted_groups)
            )
        )
    ).scalars()
    target: dict[int, Role] = {}
    for rule in rules:
        best = target.get(rule.cohort_id)
        if best is None or ROLE_RANK[rule.role] > ROLE_RANK[best]:
            target[rule.cohort_id] = rule.role
    current = {
        m.cohort_id: m
        for m in (
            await session.execute(select(Membership).where(Membership.user_id == user.id))
        ).scalars()
    }
    changed: set[int] = set()
    for cohort_id, role in target.items():
        membership = current.get(cohort_id)
        if membership is None:
            session.add(
                Membership(
                    cohort_id=cohort_id, user_id=user.id, role=role, source=MembershipSource.group
                )
            )
            changed.add(cohort_id)
        elif membership.source is MembershipSource.group and membership.role is not role:
            membership.role = role
            changed.add(cohort_id)
    for cohort_id, membership in current.items():
        if membership.source is MembershipSource.group and cohort_id not in target:
            await session.delete(membership)
            changed.add(cohort_id)
    await session.flush()
    for cohort_id in sorted(changed):
        # Joining or leaving a cohort's reviewer pool re-balances its open reviews.
        await allocation.heal_cohort(session, cohort_id=cohort_id)


async def grant(
    session: AsyncSession,
    *,
    actor: Actor,
    issuer: str,
    subject: str,
    role: Role | None,
    cohort_slug: str | None = None,
    administrator: bool = False,
) -> User:
    """Operators (the command line, or administrators) give a person a role before or after
    they first sign in: a cohort role, or service-wide administration."""
    if not actor.is_administrator:
        raise NotFound("No such page.")
    identity = VerifiedIdentity(issuer=issuer.strip(), subject=subject.strip())
    _check_identity(identity)
    if administrator == (role is not None):
        raise Invalid("Give either a cohort role (with a cohort) or administrator.")
    user = await find_user(session, issuer=identity.issuer, subject=identity.subject)
    if user is None:
        # Their real name arrives with their first sign-in.
        user = User(
            issuer=identity.issuer,
            subject=identity.subject,
            display_name=clean_name(display_name_for(identity), field="subject", limit=120),
        )
        session.add(user)
        await session.flush()
    assert user.id is not None
    if administrator:
        user.is_administrator = True
        await audit.record(
            session, actor=actor, action="admin.grant", target_type="user", target_id=user.id
        )
        await session.flush()
        return user
    if not cohort_slug:
        raise Invalid(problems=[Problem("is required with a cohort role", field="cohort")])
    cohort = await session.scalar(select(Cohort).where(Cohort.slug == cohort_slug))
    if cohort is None:
        raise NotFound(f"No such cohort: {cohort_slug}.")
    assert role is not None and cohort.id is not None
    membership = await session.scalar(
        select(Membership).where(Membership.cohort_id == cohort.id, Membership.user_id == user.id)
    )
    if membership is None:
        session.add(
            Membership(
                cohort_id=cohort.id, user_id=user.id, role=role, source=MembershipSource.grant
            )
        )
    elif membership.role is role:
        return user  # nothing changes, nothing to audit
    else:
        membership.role = role
        membership.source = MembershipSource.grant
    await audit.record(
        session,
        actor=actor,
        cohort_id=cohort.id,
        action="member.grant",
        target_type="user",
        target_id=user.id,
        details={"role": role.value},
    )
    await session.flush()
    return user
