"""Who is in a cohort and with which role: join codes, member management, group rules."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services import allocation, audit, policy
from services.errors import AlreadyExists, Invalid, NotFound, PermissionDenied, Problem
from services.models import (
    Cohort,
    GroupRule,
    Membership,
    MembershipSource,
    Role,
    User,
    utcnow,
)
from services.policy import Actor
from services.views import GroupRuleView, JoinCodeView, MemberView

# No 0/O, 1/I/L: codes are read aloud in class and typed on phones.
JOIN_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
JOIN_CODE_LENGTH = 8


def normalize_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


async def _manageable_cohort(session: AsyncSession, *, actor: Actor, slug: str) -> Cohort:
    cohort = await policy.access_cohort(session, actor=actor, slug=slug)
    if not policy.can_manage_members(actor, cohort):
        raise NotFound("No such cohort.")
    return cohort


async def join_with_code(session: AsyncSession, *, actor: Actor, code: str) -> Cohort:
    """A signed-in person joins the cohort whose live join code they were given, as a student.
    Unknown and expired codes get the same answer."""
    if actor.user_id is None:
        raise NotFound("No such page.")
    normalized = normalize_code(code)
    cohort = (
        await session.scalar(select(Cohort).where(Cohort.join_code == normalized))
        if normalized
        else None
    )
    if cohort is None or (
        cohort.join_code_expires_at is not None and cohort.join_code_expires_at <= utcnow()
    ):
        raise Invalid(
            problems=[
                Problem("is not a valid join code (check it, or ask for a new one)", field="code")
            ]
        )
    assert cohort.id is not None
    existing = await session.scalar(
        select(Membership).where(
            Membership.cohort_id == cohort.id, Membership.user_id == actor.user_id
        )
    )
    if existing is None:
        session.add(
            Membership(
                cohort_id=cohort.id,
                user_id=actor.user_id,
                role=Role.student,
                source=MembershipSource.join_code,
            )
        )
        await session.flush()
    return cohort


async def rotate_join_code(
    session: AsyncSession,
    *,
    actor: Actor,
    slug: str,
    expires_at: datetime | None = None,
    disable: bool = False,
) -> JoinCodeView:
    """Moderators issue a new join code (the old one stops working) or turn joining off."""
    cohort = await _manageable_cohort(session, actor=actor, slug=slug)
    if expires_at is not None and expires_at <= utcnow():
        raise Invalid(problems=[Problem("must be in the future", field="expires_at")])
    if disable:
        cohort.join_code, cohort.join_code_expires_at = None, None
    else:
        cohort.join_code = "".join(
            secrets.choice(JOIN_CODE_ALPHABET) for _ in range(JOIN_CODE_LENGTH)
        )
        cohort.join_code_expires_at = expires_at
    await audit.record(
        session,
        actor=actor,
        cohort_id=cohort.id,
        action="cohort.join_code.disable" if disable else "cohort.join_code.rotate",
        target_type="cohort",
        target_id=cohort.slug,
    )
    await session.flush()
    return JoinCodeView(join_code=cohort.join_code, expires_at=cohort.join_code_expires_at)


async def get_join_code(session: AsyncSession, *, actor: Actor, slug: str) -> JoinCodeView:
    """Moderators see the current join code."""
    cohort = await _manageable_cohort(session, actor=actor, slug=slug)
    return JoinCodeView(join_code=cohort.join_code, expires_at=cohort.join_code_expires_at)


async def list_members(session: AsyncSession, *, actor: Actor, slug: str) -> list[MemberView]:
    """Moderators and instructors see the roster; students do not (names stay with staff)."""
    cohort = await _manageable_cohort(session, actor=actor, slug=slug)
    rows = await session.execute(
        select(Membership, User)
        .join(User, col(User.id) == Membership.user_id)
        .where(Membership.cohort_id == cohort.id)
        .order_by(col(Membership.role).desc(), col(User.display_name), col(User.id))
    )
    return [_member_view(m, u) for m, u in rows.all()]


def _member_view(membership: Membership, user: User) -> MemberView:
    assert user.id is not None
    return MemberView(
        user_id=user.id,
        display_name=user.display_name,
        email=user.email,
        role=membership.role,
        source=membership.source.value,
        joined_at=membership.created_at,
    )


async def _membership(session: AsyncSession, *, cohort: Cohort, user_id: int) -> Membership:
    membership = await session.scalar(
        select(Membership).where(Membership.cohort_id == cohort.id, Membership.user_id == user_id)
    )
    if membership is None:
        raise NotFound("No such member.")
    return membership


async def set_member_role(
    session: AsyncSession, *, actor: Actor, slug: str, user_id: int, role: Role
) -> MemberView:
    """Change a member's role, within what policy allows the actor; audited."""
    cohort = await _manageable_cohort(session, actor=actor, slug=slug)
    membership = await _membership(session, cohort=cohort, user_id=user_id)
    if not policy.can_change_member(
        actor, cohort, target_user_id=user_id, current=membership.role, new=role
    ):
        raise Invalid("You cannot give that role to this member.")
    before = membership.role
    membership.role = role
    # A manual change pins the role: the group claim no longer moves it.
    membership.source = MembershipSource.manual
    await audit.record(
        session,
        actor=actor,
        cohort_id=cohort.id,
        action="member.role",
        target_type="user",
        target_id=user_id,
        details={"from": before.value, "to": role.value},
    )
    await session.flush()
    if (before is Role.student) != (role is Role.student):
        # In or out of the reviewer pool: open reviews are re-balanced at once.
        await allocation.heal_cohort(session, cohort_id=cohort.id or 0)
    user = await session.get(User, user_id)
    assert user is not None
    return _member_view(membership, user)


async def remove_member(session: AsyncSession, *, actor: Actor, slug: str, user_id: int) -> None:
    """Remove someone from a cohort; they lose access with their next request."""
    cohort = await _manageable_cohort(session, actor=actor, slug=slug)
    membership = await _membership(session, cohort=cohort, user_id=user_id)
    if not policy.can_change_member(
        actor, cohort, target_user_id=user_id, current=membership.role, new=None
    ):
        raise Invalid("You cannot remove this member.")
    await remove_memberships(session, actor=actor, cohort=cohort, members=[membership])


async def remove_memberships(
    session: AsyncSession,
    *,
    actor: Actor,
    cohort: Cohort,
    members: list[Membership],
    action: str = "member.remove",
) -> None:
    """The one way out of a cohort (a moderator's removal, the LMS's roster): the
    memberships go, each is audited, and if a student left, open reviews are re-balanced
    (their allocations heal) once for all of them. The caller has checked the permission."""
    for membership in members:
        await session.delete(membership)
        await audit.record(
            session,
            actor=actor,
            cohort_id=cohort.id,
            action=action,
            target_type="user",
            target_id=membership.user_id,
            details={"role": membership.role.value},
        )
    await session.flush()
    if any(m.role is Role.student for m in members):
        await allocation.heal_cohort(session, cohort_id=cohort.id or 0)


async def list_group_rules(
    session: AsyncSession, *, actor: Actor, slug: str
) -> list[GroupRuleView]:
    cohort = await _manageable_cohort(session, actor=actor, slug=slug)
    rows = await session.execute(
        select(GroupRule).where(GroupRule.cohort_id == cohort.id).order_by(col(GroupRule.id))
    )
    return [_rule_view(r) for r in rows.scalars()]


def _rule_view(rule: GroupRule) -> GroupRuleView:
    assert rule.id is not None
    return GroupRuleView(id=rule.id, issuer=rule.issuer, group=rule.group_name, role=rule.role)


async def add_group_rule(
    session: AsyncSession, *, actor: Actor, slug: str, issuer: str, group: str, role: Role
) -> GroupRuleView:
    """People whose provider (issuer) lists `group` get `role` at their next sign-in.
    Only instructors may map a group to the instructor role."""
    cohort = await _manageable_cohort(session, actor=actor, slug=slug)
    problems = [
        Problem("must be 1-255 characters", field=name)
        for name, value in (("issuer", issuer), ("group", group))
        if not value.strip() or len(value) > 255 or "\x00" in value
    ]
    if problems:
        raise Invalid(problems=problems)
    if not policy.can_change_group_rule(actor, cohort, role=role):
        raise Invalid(problems=[Problem("only instructors may grant this role", field="role")])
    exists = await session.scalar(
        select(GroupRule).where(
            GroupRule.cohort_id == cohort.id,
            GroupRule.issuer == issuer.strip(),
            GroupRule.group_name == group.strip(),
        )
    )
    if exists is not None:
        raise AlreadyExists("That group already has a rule in this cohort.")
    assert cohort.id is not None
    rule = GroupRule(
        cohort_id=cohort.id, issuer=issuer.strip(), group_name=group.strip(), role=role
    )
    session.add(rule)
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        cohort_id=cohort.id,
        action="cohort.group_rule.add",
        target_type="group_rule",
        target_id=rule.id or 0,
        details={"issuer": rule.issuer, "group": rule.group_name, "role": role.value},
    )
    return _rule_view(rule)


async def delete_group_rule(
    session: AsyncSession, *, actor: Actor, slug: str, rule_id: int
) -> None:
    cohort = await _manageable_cohort(session, actor=actor, slug=slug)
    rule = await session.get(GroupRule, rule_id)
    if rule is None or rule.cohort_id != cohort.id:
        raise NotFound("No such rule.")
    if not policy.can_change_group_rule(actor, cohort, role=Role(rule.role)):
        # Removing it and adding the group back as moderators would demote an instructor.
        raise PermissionDenied("Only instructors may remove a rule that makes instructors.")
    await session.delete(rule)
    await audit.record(
        session,
        actor=actor,
        cohort_id=cohort.id,
        action="cohort.group_rule.delete",
        target_type="group_rule",
        target_id=rule_id,
    )
    await session.flush()
