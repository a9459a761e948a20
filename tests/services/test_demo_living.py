"""The demo's living cohort: what `make demo` shows, made through the real services."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services import stance
from services.demo import seed_demo
from services.demo.living import seed_living_cohort
from services.models import (
    Assignment,
    ComponentStance,
    EvidenceQuote,
    Exemplar,
    Paper,
    PaperVersion,
    Phase,
    Question,
    Review,
    ReviewComponent,
    ReviewRating,
    ReviewTask,
    TaskStatus,
    Thread,
    User,
)
from services.policy import Actor

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


async def test_the_secure_base_workspace_has_stance_charts_and_ada_has_reviews_to_do(
    session: AsyncSession,
) -> None:
    assignment = await seed_demo(session, issuer=ISSUER)
    assert assignment.id is not None
    await seed_living_cohort(
        session, assignment=assignment, issuer=ISSUER, sample_paper=assignment.sample_paper or ""
    )
    report = await stance.stance_report(session, actor=Actor.system(), assignment_id=assignment.id)
    done = report.completion
    assert done is not None and done.papers == 4
    # Most reviews are in, some are drafts, some not started.
    assert done.submitted > done.tasks / 2 and done.started >= 1 and done.assigned >= 1
    assert len([c for c in report.overall if c.count]) >= 2  # submitted, in varied stances
    assert sum(c.count for c in report.overall) == done.submitted
    assert report.alpha_ordinal is not None and report.pairable_values >= 4
    assert report.most_disagreement  # papers with more than one review, most split first
    for_components = (
        (
            await session.execute(
                select(ReviewComponent.stance)
                .join(Review, Review.id == ReviewComponent.review_id)
                .join(ReviewTask, ReviewTask.id == Review.task_id)
                .where(
                    ReviewTask.assignment_id == assignment.id,
                    ReviewTask.status == TaskStatus.submitted,
                )
            )
        )
        .scalars()
        .all()
    )
    assert {ComponentStance(s) for s in for_components} >= {
        ComponentStance.agrees,
        ComponentStance.mixed,
        ComponentStance.disagrees,
    }

    # Ada, the person the demo is usually tried as, still has a review to write.
    ada = await session.scalar(select(User).where(User.subject == "ada-student"))
    assert ada is not None and ada.id is not None
    mine = (
        (
            await session.execute(
                select(ReviewTask.status).where(
                    ReviewTask.assignment_id == assignment.id, ReviewTask.reviewer_id == ada.id
                )
            )
        )
        .scalars()
        .all()
    )
    assert TaskStatus.submitted in mine
    assert TaskStatus.started in mine and TaskStatus.assigned in mine

    # The evidence is real: passages of the papers the reviews are of.
    quotes = (
        await session.execute(
            select(EvidenceQuote, PaperVersion.body)
            .join(Review, Review.id == EvidenceQuote.review_id)
            .join(ReviewTask, ReviewTask.id == Review.task_id)
            .join(
                PaperVersion,
                (PaperVersion.paper_id == ReviewTask.paper_id)
                & (PaperVersion.version == Review.paper_version),
            )
            .where(ReviewTask.assignment_id == assignment.id)
        )
    ).all()
    assert len(quotes) >= 2 * done.submitted
    for quote, body in quotes:
        assert body[quote.start : quote.end] == quote.text


async def test_demo_people_have_their_names_before_they_first_sign_in(
    session: AsyncSession,
) -> None:
    await seed_demo(session, issuer=ISSUER)
    names = set((await session.execute(select(User.display_name))).scalars())
    assert {"Ada Lindqvist", "Ivo Ivanov", "Mona Okafor"} <= names


async def test_the_demo_has_one_assignment_per_phase_and_open_flags(
    session: AsyncSession,
) -> None:
    from services.demo.writing import TITLE
    from services.models import Flag, Post

    assignment = await seed_demo(session, issuer=ISSUER)
    await seed_living_cohort(
        session, assignment=assignment, issuer=ISSUER, sample_paper=assignment.sample_paper or ""
    )
    rows = (await session.execute(select(Assignment.title, Assignment.phase))).all()
    phases = {title: phase for title, phase in rows}
    assert sorted(phases.values()) == sorted([Phase.open, Phase.review, Phase.feedback])
    assert phases[TITLE] is Phase.open
    writing = await session.scalar(select(Assignment).where(Assignment.title == TITLE))
    assert writing is not None and writing.paper_due_at is not None
    # Open for discussing: a thread with a reply; for writing: Ada's draft, nobody submitted.
    threads = await count(
        session,
        select(func.count())
        .select_from(Thread)
        .join(Question, Question.id == Thread.question_id)
        .where(Question.assignment_id == writing.id),
    )
    assert threads == 1
    drafts = (
        (await session.execute(select(Paper.submitted_at).where(Paper.assignment_id == writing.id)))
        .scalars()
        .all()
    )
    assert drafts and all(d is None for d in drafts)
    # A few open flags, none of them enough to hide a post.
    open_flags = await count(
        session, select(func.count()).select_from(Flag).where(Flag.resolved_at.is_(None))
    )
    assert open_flags >= 2
    hidden = await count(
        session, select(func.count()).select_from(Post).where(Post.hidden_at.is_not(None))
    )
    assert hidden == 0
