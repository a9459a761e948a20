"""Shared helpers for the peer-review tests: a cohort with the Secure Base rubric, students
who submit papers, and reviews written through the real services."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import select

from services import assignments, cohorts, identity, papers, phases, policy, reviews
from services.db import transaction
from services.demo import secure_base_rubric
from services.importing import parse_assignment_text
from services.models import ComponentStance, Phase, ReviewTask, Role, Stance
from services.policy import Actor

ISSUER = "https://idp.review.test"


def paper_text(name: str) -> str:
    return (
        f"# On being a secure base ({name})\n\n"
        "A secure base is a   reliable presence\nfrom which the client explores.\n\n"
        "I disagree that the therapist's own history matters much.\n\n"
        f"Attunement means noticing when the client withdraws. Signed: nobody {name}.\n"
    )


@dataclass
class ReviewWorld:
    sessions: async_sessionmaker[AsyncSession]
    assignment_id: int
    users: dict[str, int] = field(default_factory=dict)

    async def actor(self, session: AsyncSession, name: str) -> Actor:
        if name == "system":
            return Actor.system()
        return await policy.load_actor(
            session, user_id=self.users[name], is_administrator=name == "root"
        )


async def make_world(
    sessions: async_sessionmaker[AsyncSession],
    *,
    students: tuple[str, ...] = ("ada", "ben", "chen", "dara"),
    k: int = 2,
    slug: str = "psy",
    subjects: dict[str, str] | None = None,
    names: dict[str, str] | None = None,
) -> ReviewWorld:
    names = names or {}
    system = Actor.system()
    subjects = subjects or {}
    async with transaction(sessions) as session:
        cohort = await cohorts.create_cohort(session, actor=system, slug=slug, name="PSY 612")
        source, rubric = secure_base_rubric()
        draft = replace(
            parse_assignment_text("Secure base\n\nWhat is a secure base?\n"),
            stance_source=source,
            rubric=rubric,
            reviews_per_paper=k,
        )
        made = await assignments.import_assignment(
            session, actor=system, cohort=cohort, draft=draft
        )
        assert made.id is not None
        world = ReviewWorld(sessions, made.id)
        staff = {"ivo": Role.instructor, "mona": Role.moderator}
        for name, role in [*staff.items(), *((s, Role.student) for s in students)]:
            user = await identity.grant(
                session,
                actor=system,
                issuer=ISSUER,
                subject=subjects.get(name, f"sub-{slug}-{name}"),
                role=role,
                cohort_slug=slug,
            )
            assert user.id is not None
            user.display_name = names.get(name, name.capitalize())
            user.email = f"{user.display_name.lower().replace(' ', '.')}@uni.test"
            world.users[name] = user.id
        await phases.change_phase(session, actor=system, assignment_id=made.id, phase=Phase.open)
    return world


async def submit_papers(world: ReviewWorld, names: tuple[str, ...]) -> None:
    for name in names:
        async with transaction(world.sessions) as session:
            await papers.save_paper(
                session,
                actor=await world.actor(session, name),
                assignment_id=world.assignment_id,
                body=paper_text(name),
                submit=True,
            )


async def set_phase(world: ReviewWorld, phase: Phase) -> None:
    """Test setup: the move, confirmed (the refusal of an unconfirmed step back over
    submitted work is tested in tests/services/test_phases.py)."""
    async with transaction(world.sessions) as session:
        await phases.change_phase(
            session, actor=Actor.system(), assignment_id=world.assignment_id, phase=phase,
            confirm=True,
        )  # fmt: skip


async def tasks_of(world: ReviewWorld, name: str) -> list[ReviewTask]:
    async with transaction(world.sessions, write=False) as session:
        rows = await session.execute(
            select(ReviewTask).where(
                ReviewTask.assignment_id == world.assignment_id,
                ReviewTask.reviewer_id == world.users[name],
            )
        )
        return list(rows.scalars())


COMPONENTS = (
    "secure-base",
    "exploring-biases-safely",
    "attunement",
    "therapist-attachment-history",
)


def full_review(stance: Stance = Stance.mostly_agrees) -> reviews.ReviewInput:
    return reviews.ReviewInput(
        overall_stance=stance,
        components={
            "secure-base": ComponentStance.agrees,
            "exploring-biases-safely": ComponentStance.not_addressed,
            "attunement": ComponentStance.agrees,
            "therapist-attachment-history": ComponentStance.disagrees,
        },
        evidence=(
            reviews.QuoteInput(None, "A secure base is a reliable presence from which"),
            reviews.QuoteInput("secure-base", "reliable presence"),
            reviews.QuoteInput("attunement", "noticing when the client withdraws"),
            reviews.QuoteInput("therapist-attachment-history", "I disagree that the therapist's"),
        ),
        rationale="It agrees on the secure base and attunement.",
        suggestion="Say more about exploring biases.",
    )


async def review_all(
    world: ReviewWorld, names: tuple[str, ...], stance_for: dict[str, Stance]
) -> None:
    """Each named student submits a full review of each of their tasks."""
    for name in names:
        for task in await tasks_of(world, name):
            async with transaction(world.sessions) as session:
                await reviews.save_review(
                    session,
                    actor=await world.actor(session, name),
                    task_id=task.public_id,
                    data=full_review(stance_for.get(name, Stance.mostly_agrees)),
                    expected_version=None,
                    submit=True,
                )


async def import_review_assignment(session: AsyncSession, *, slug: str, k: int) -> int:
    """A Secure Base assignment (with the demo rubric) in the cohort, open for papers."""
    system = Actor.system()
    cohort = await cohorts.get_cohort(session, actor=system, slug=slug)
    source, rubric = secure_base_rubric()
    draft = replace(
        parse_assignment_text("Secure base review\n\nWhat is a secure base?\n"),
        stance_source=source,
        rubric=rubric,
        reviews_per_paper=k,
    )
    made = await assignments.import_assignment(session, actor=system, cohort=cohort, draft=draft)
    assert made.id is not None
    await phases.change_phase(session, actor=system, assignment_id=made.id, phase=Phase.open)
    return made.id


async def run_review_round(
    sessions: async_sessionmaker[AsyncSession],
    *,
    slug: str,
    users: dict[str, int],
    k: int,
    until: Phase,
    text_for: dict[str, str] | None = None,
    review_for: dict[str, reviews.ReviewInput] | None = None,
) -> int:
    """Make an assignment, have every named student submit a paper, start review, and (for
    feedback) have every reviewer submit a full review. Returns the assignment id."""
    async with transaction(sessions) as session:
        assignment_id = await import_review_assignment(session, slug=slug, k=k)
    world = ReviewWorld(sessions, assignment_id, dict(users))
    for name in users:
        async with transaction(sessions) as session:
            await papers.save_paper(
                session,
                actor=await world.actor(session, name),
                assignment_id=assignment_id,
                body=(text_for or {}).get(name, paper_text(name)),
                submit=True,
            )
    await set_phase(world, Phase.review)
    if until in (Phase.feedback, Phase.closed):
        for name in users:
            for task in await tasks_of(world, name):
                async with transaction(sessions) as session:
                    await reviews.save_review(
                        session,
                        actor=await world.actor(session, name),
                        task_id=task.public_id,
                        data=(review_for or {}).get(name, full_review()),
                        expected_version=None,
                        submit=True,
                    )
        await set_phase(world, Phase.feedback)
    return assignment_id
