"""What a signed-in person sees about themselves."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.models import Cohort, Membership, User
from services.policy import Actor
from services.views import MeCohortView, MeUserView, MeView


async def me(session: AsyncSession, *, actor: Actor, user: User | None) -> MeView:
    """The person, their cohorts and roles; an anonymous visitor gets an empty view."""
    if user is None or user.id is None or actor.user_id != user.id:
        return MeView(user=None, cohorts=[], csrf_token=None)
    rows = await session.execute(
        select(Cohort, Membership.role)
        .join(Membership, col(Membership.cohort_id) == Cohort.id)
        .where(Membership.user_id == user.id)
        .order_by(col(Cohort.name))
    )
    return MeView(
        user=MeUserView(
            id=user.id,
            display_name=user.display_name,
            email=user.email,
            is_administrator=user.is_administrator,
        ),
        cohorts=[MeCohortView(slug=c.slug, name=c.name, role=role) for c, role in rows.all()],
        csrf_token=None,
    )
