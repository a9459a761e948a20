"""Demo peer review: a finished sample round beside the open Secure Base assignment, so the
demo shows feedback, ratings and stance analytics without anyone writing a paper first.

Call `seed_review_round(session, issuer=...)` after `seed_demo` (the lead wires it into the
demo); it is idempotent and uses the same services as everyone else.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from services import assignments, identity, papers, phases, policy, reviews
from services.demo import DEMO_COHORT_SLUG, DEMO_PEOPLE, fixture_text, secure_base_rubric
from services.importing import parse_assignment_text
from services.models import (
    Assignment,
    Cohort,
    ComponentStance,
    Phase,
    ReviewTask,
    Role,
    Stance,
)
from services.policy import Actor

TITLE = "Sample round: peer review of Secure Base papers"

PAPERS = {
    "ada-student": (
        "Being a secure base means being reliable, available and responsive, so that the "
        "client can explore painful memories without fear.\n\n"
        "I agree with Mikulincer and Shaver that exploring relational biases only works once "
        "the client feels safe; I name patterns gently and check in often.\n\n"
        "My own attachment history matters: when a client withdraws I notice my urge to "
        "reassure them too quickly."
    ),
    "ben-student": (
        "I am not convinced that the therapist should be a secure base at all. Clients need "
        "to build their own resources rather than lean on the therapist.\n\n"
        "Pointing out failed relational strategies is the core of the work, and safety "
        "follows from honesty more than from warmth."
    ),
    "chen-student": (
        "Attunement is central: I adapt my pace to avoidant clients and offer more structure "
        "to anxious ones.\n\nThe article's claim that the therapist is a secure base fits my "
        "experience in practicum, although I disagree that the therapist's own attachment "
        "history is decisive."
    ),
    "dara-student": (
        "A film of my sessions would show me keeping a steady tone, summarising what I hear "
        "and returning to the client's goals.\n\nI mostly agree with the article, but it "
        "says little about cultural differences in how safety is expressed."
    ),
}
STANCES = {
    "ada-student": Stance.mostly_agrees,
    "ben-student": Stance.mixed,
    "chen-student": Stance.strongly_agrees,
    "dara-student": Stance.mostly_disagrees,
}


async def seed_review_round(session: AsyncSession, *, issuer: str) -> Assignment | None:
    """A sample assignment in the feedback phase: four papers, two reviews each."""
    system = Actor.system()
    cohort = await session.scalar(select(Cohort).where(Cohort.slug == DEMO_COHORT_SLUG))
    if cohort is None:
        return None
    existing = await session.scalar(
        select(Assignment).where(Assignment.cohort_id == cohort.id, Assignment.title == TITLE)
    )
    if existing is not None:
        return existing
    source, rubric = secure_base_rubric()
    base = parse_assignment_text(fixture_text())
    draft = replace(base, title=TITLE, stance_source=source, rubric=rubric, reviews_per_paper=2)
    made = await assignments.import_assignment(session, actor=system, cohort=cohort, draft=draft)
    assert made.id is not None
    await phases.change_phase(session, actor=system, assignment_id=made.id, phase=Phase.open)
    users = {}
    for person in DEMO_PEOPLE:
        if person.role is Role.student:
            user = await identity.find_user(session, issuer=issuer, subject=person.subject)
            if user is not None and user.id is not None:
                users[person.subject] = user.id
    actors = {
        s: await policy.load_actor(session, user_id=uid, is_administrator=False)
        for s, uid in users.items()
    }
    for subject, actor in actors.items():
        await papers.save_paper(
            session, actor=actor, assignment_id=made.id, body=PAPERS[subject], submit=True
        )
    await phases.change_phase(session, actor=system, assignment_id=made.id, phase=Phase.review)
    for subject, actor in actors.items():
        tasks = await session.execute(
            select(ReviewTask).where(
                ReviewTask.assignment_id == made.id, ReviewTask.reviewer_id == users[subject]
            )
        )
        for task in list(tasks.scalars()):
            detail = await reviews.get_task(session, actor=actor, task_id=task.public_id)
            first = detail.version.body.split(".")[0]
            await reviews.save_review(
                session,
                actor=actor,
                task_id=task.public_id,
                data=reviews.ReviewInput(
                    overall_stance=STANCES[subject],
                    components={c.key: ComponentStance.not_addressed for c in detail.rubric}
                    | {rubric[0].key: ComponentStance.mixed},
                    evidence=[
                        reviews.QuoteInput(None, first),
                        reviews.QuoteInput(rubric[0].key, first),
                    ],
                    rationale="The opening paragraph states the paper's position on the source.",
                    suggestion="Quote Mikulincer & Shaver directly where you agree or disagree.",
                ),
                expected_version=None,
                submit=True,
            )
    await phases.change_phase(session, actor=system, assignment_id=made.id, phase=Phase.feedback)
    return made
