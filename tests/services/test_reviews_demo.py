"""The demo's sample review round seeds through the real services, once."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import stance
from services.db import transaction
from services.demo import seed_demo
from services.demo.reviews import seed_review_round
from services.models import Phase
from services.policy import Actor

ISSUER = "https://demo-idp.test"


async def test_sample_round_is_in_feedback_with_two_reviews_per_paper(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with transaction(sessions) as session:
        await seed_demo(session, issuer=ISSUER)
        made = await seed_review_round(session, issuer=ISSUER)
        assert made is not None and made.phase is Phase.feedback
        again = await seed_review_round(session, issuer=ISSUER)
        assert again is not None and again.id == made.id
        report = await stance.stance_report(
            session, actor=Actor.system(), assignment_id=made.id or 0
        )
    assert report.completion is not None
    assert report.completion.papers == 4 and report.completion.submitted == 8
    assert report.pairable_values == 8
