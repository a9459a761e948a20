"""All authorization: who may see and do what. Every service asks here; nothing else decides.

- `can_*` predicates answer a yes/no for an actor and an object already loaded.
- `access_*` loaders fetch an object *and* check it, raising NotFound both when it is
  missing and when the actor may not see it, so existence never leaks.
- `visible_*` return the filter that list queries use; a test checks they agree with the
  single-object `can_*` check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select

from services.errors import NotFound
from services.models import Assignment, Cohort, Membership, Phase, Role

_EMPTY: Mapping[int, Role] = MappingProxyType({})


@dataclass(frozen=True)
class Actor:
    """Who is asking: a signed-in person with their cohort roles, or nobody."""

    user_id: int | None
    is_administrator: bool = False
    roles: Mapping[int, Role] = field(default_factory=lambda: _EMPTY)
    # True only for the command line (an operator with shell access to the server).
    is_system: bool = False

    @classmethod
    def anonymous(cls) -> Actor:
        return cls(user_id=None)

    @classmethod
    def system(cls) -> Actor:
        return cls(user_id=None, is_administrator=True, is_system=True)

    @classmethod
    def local_operator(cls) -> Actor:
        """The pre-sign-in demo viewer: only ever built by a development-like web server."""
        return cls(user_id=None, is_administrator=True)

    def role_in(self, cohort_id: int) -> Role | None:
        return self.roles.get(cohort_id)


async def load_actor(session: AsyncSession, *, user_id: int, is_administrator: bool) -> Actor:
    """The actor for a signed-in person, with every cohort role they hold right now."""
    rows = await session.execute(
        select(Membership.cohort_id, Membership.role).where(Membership.user_id == user_id)
    )
    return Actor(
        user_id=user_id,
        is_administrator=is_administrator,
        roles=MappingProxyType({cohort_id: Role(role) for cohort_id, role in rows.all()}),
    )


# --- cohorts -------------------------------------------------------------------------------


def can_create_cohort(actor: Actor) -> bool:
    """Administrators, and people who already teach a cohort, create cohorts."""
    return actor.is_administrator or any(r is Role.instructor for r in actor.roles.values())


def can_view_cohort(actor: Actor, cohort: Cohort) -> bool:
    """Members of a cohort, and administrators, may see it."""
    return actor.is_administrator or (cohort.id is not None and cohort.id in actor.roles)


def can_manage_cohort(actor: Actor, cohort: Cohort) -> bool:
    """Moderators and instructors of a cohort (and administrators) manage its assignments."""
    if actor.is_administrator:
        return True
    role = actor.role_in(cohort.id) if cohort.id is not None else None
    return role is not None and role.is_staff


def can_manage_members(actor: Actor, cohort: Cohort) -> bool:
    """Moderators and instructors manage a cohort's members, join code and group rules."""
    return can_manage_cohort(actor, cohort)


def can_change_member(
    actor: Actor, cohort: Cohort, *, target_user_id: int, current: Role, new: Role | None
) -> bool:
    """Instructors change anyone's role; moderators manage students and moderators but never
    touch an instructor or make one. Nobody changes their own role (no self-promotion and
    no locking oneself out); `new=None` means removal."""
    if not can_manage_members(actor, cohort) or target_user_id == actor.user_id:
        return False
    if actor.is_administrator or actor.role_in(cohort.id or 0) is Role.instructor:
        return True
    return current is not Role.instructor and new is not Role.instructor


def can_read_audit_log(actor: Actor, cohort: Cohort) -> bool:
    """Instructors (and administrators) read a cohort's audit log."""
    return actor.is_administrator or actor.role_in(cohort.id or 0) is Role.instructor


def visible_cohorts(actor: Actor) -> ColumnElement[bool]:
    if actor.is_administrator:
        return sa.true()
    return col(Cohort.id).in_(list(actor.roles))


async def access_cohort(session: AsyncSession, *, actor: Actor, slug: str) -> Cohort:
    """Load a cohort the actor may see, or raise NotFound."""
    cohort = (await session.execute(select(Cohort).where(Cohort.slug == slug))).scalar_one_or_none()
    if cohort is None or not can_view_cohort(actor, cohort):
        raise NotFound("No such cohort.")
    return cohort


# --- assignments ---------------------------------------------------------------------------


def can_view_assignment(actor: Actor, assignment: Assignment) -> bool:
    """Cohort staff see every assignment; students see it once it leaves the draft phase."""
    if actor.is_administrator:
        return True
    role = actor.role_in(assignment.cohort_id)
    if role is None:
        return False
    return role.is_staff or assignment.phase is not Phase.draft


def visible_assignments(actor: Actor) -> ColumnElement[bool]:
    if actor.is_administrator:
        return sa.true()
    staff = [cid for cid, role in actor.roles.items() if role.is_staff]
    students = [cid for cid, role in actor.roles.items() if not role.is_staff]
    return sa.or_(
        col(Assignment.cohort_id).in_(staff),
        sa.and_(col(Assignment.cohort_id).in_(students), col(Assignment.phase) != Phase.draft),
    )


async def access_assignment(
    session: AsyncSession, *, actor: Actor, assignment_id: int
) -> Assignment:
    """Load an assignment the actor may see, or raise NotFound."""
    assignment = await session.get(Assignment, assignment_id)
    if assignment is None or not can_view_assignment(actor, assignment):
        raise NotFound("No such assignment.")
    return assignment


# === discussions (issue 4) ==================================================================


# === peer review (issue 5) ==================================================================
