"""Cohorts: the group of people who work through assignments together."""

from __future__ import annotations

import re
from functools import cache
from zoneinfo import available_timezones

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services import audit, policy
from services.errors import AlreadyExists, Invalid, NotFound, PermissionDenied, Problem
from services.models import Cohort, Membership, Role
from services.policy import Actor
from services.views import CohortView

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
MAX_NAME_CHARS = 200


def clean_name(value: str, *, field: str, limit: int = MAX_NAME_CHARS) -> str:
    """Names are single-line, trimmed, non-empty and bounded."""
    cleaned = " ".join(value.split())
    problems = []
    if not cleaned:
        problems.append(Problem("must not be empty", field=field))
    elif len(cleaned) > limit:
        problems.append(Problem(f"must be at most {limit} characters", field=field))
    if "\x00" in value:
        problems.append(Problem("must not contain NUL characters", field=field))
    if problems:
        raise Invalid(problems=problems)
    return cleaned


async def create_cohort(session: AsyncSession, *, actor: Actor, slug: str, name: str) -> Cohort:
    """Administrators and instructors create cohorts (and teach them); the slug is unique,
    lowercase and URL-safe."""
    if not policy.can_create_cohort(actor):
        raise NotFound("No such page.")
    if not SLUG_RE.fullmatch(slug):
        raise Invalid(
            problems=[
                Problem(
                    "must be 1-64 lowercase letters, digits or hyphens, "
                    "starting and ending with a letter or digit",
                    field="slug",
                )
            ]
        )
    name = clean_name(name, field="name")
    taken = await session.scalar(select(func.count()).where(Cohort.slug == slug))
    if taken:
        raise AlreadyExists(f"A cohort with the slug {slug!r} already exists.")
    cohort = Cohort(slug=slug, name=name)
    session.add(cohort)
    await session.flush()
    if actor.user_id is not None:
        assert cohort.id is not None
        session.add(Membership(cohort_id=cohort.id, user_id=actor.user_id, role=Role.instructor))
        await session.flush()
    return cohort


async def list_cohorts(session: AsyncSession, *, actor: Actor) -> list[Cohort]:
    """The cohorts the actor belongs to (every cohort, for administrators)."""
    result = await session.execute(
        select(Cohort).where(policy.visible_cohorts(actor)).order_by(col(Cohort.name))
    )
    return list(result.scalars())


async def get_cohort(session: AsyncSession, *, actor: Actor, slug: str) -> Cohort:
    """A cohort the actor may see."""
    return await policy.access_cohort(session, actor=actor, slug=slug)


def present_cohort(cohort: Cohort, *, actor: Actor) -> CohortView:
    assert cohort.id is not None
    return CohortView(
        slug=cohort.slug,
        name=cohort.name,
        my_role=actor.role_in(cohort.id),
        can_manage=policy.can_manage_cohort(actor, cohort),
        time_zone=cohort.time_zone,
        can_set_time_zone=policy.can_set_time_zone(actor, cohort),
    )


@cache
def time_zone_names() -> tuple[str, ...]:
    """Every IANA time zone name Peerboard accepts, sorted (read once: it scans files)."""
    return tuple(sorted(available_timezones() | {"UTC"}))


async def set_time_zone(
    session: AsyncSession, *, actor: Actor, slug: str, time_zone: str
) -> Cohort:
    """An instructor sets the IANA time zone the cohort's deadlines are entered and shown in;
    audited. Stored deadlines (UTC) do not move."""
    cohort = await policy.access_cohort(session, actor=actor, slug=slug)
    if not policy.can_set_time_zone(actor, cohort):
        raise PermissionDenied("Only the cohort's instructors set its time zone.")
    name = time_zone.strip()
    if name not in time_zone_names():
        raise Invalid(
            problems=[
                Problem(
                    "is not a time zone name such as Europe/Berlin or America/New_York",
                    field="time_zone",
                )
            ]
        )
    if name != cohort.time_zone:
        await audit.record(
            session, actor=actor, action="cohort.time_zone", target_type="cohort",
            target_id=cohort.id or 0, cohort_id=cohort.id,
            details={"from": cohort.time_zone, "to": name},
        )  # fmt: skip
        cohort.time_zone = name
        session.add(cohort)
        await session.flush()
    return cohort
