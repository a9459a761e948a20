"""The demo's living cohort: what `make demo` shows, made through the real services."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.demo import seed_demo
from services.demo.living import seed_living_cohort
from services.models import (
    Assignment,
    Exemplar,
    Paper,
    Phase,
    Question,
    Review,
    ReviewRating,
    Thread,
)

ISSUER = "http://127.0.0.1:9400"


async def count(session: AsyncSession, query: object) -> int:
    return int(await session.scalar(query) or 0)  # type: ignore[call-overload]


async def test_the_demo_comes_alive_once(session: AsyncSession) -> None:
    assignment = await seed_demo(session, issuer=ISSUER)
    await seed_living_cohort(
        session, assignment=assignment, issuer=ISSUER, sample_paper=assignment.sample_paper or ""
    )
    await seed_living_cohort(  # a second start of the demo changes nothing
        session, assignment=assignment, issuer=ISSUER, sample_paper=assignment.sample_paper or ""
    )
    per_question = (
        await session.execute(
            select(Question.position, func.count(Thread.id))
            .join(Thread, Thread.question_id == Question.id)
            .where(Question.assignment_id == assignment.id)
            .group_by(Question.position)
        )
    ).all()
    assert sorted(p for p, n in per_question if n > 0) == [1, 2, 3, 4, 5]
    assert (
        await count(
            session,
            select(func.count()).select_from(Paper).where(Paper.assignment_id == assignment.id),
        )
        == 4
    )
    assert assignment.phase is Phase.review
    drafts = await count(
        session, select(func.count()).select_from(Review).where(Review.submitted_at.is_(None))
    )
    assert drafts >= 1  # a review in progress
    released = (
        (await session.execute(select(Assignment).where(Assignment.phase == Phase.feedback)))
        .scalars()
        .all()
    )
    assert len(released) == 1  # the sample round, with feedback released
    assert await count(session, select(func.count()).select_from(ReviewRating)) >= 1
    notes = (await session.execute(select(Exemplar.note))).scalars().all()
    assert len(notes) == 3 and all(notes)


async def test_demo_people_have_their_names_before_they_first_sign_in(
    session: AsyncSession,
) -> None:
    from services.models import User

    await seed_demo(session, issuer=ISSUER)
    names = set((await session.execute(select(User.display_name))).scalars())
    assert {"Ada Lindqvist", "Ivo Ivanov", "Mona Okafor"} <= names
