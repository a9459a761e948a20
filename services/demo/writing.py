"""The demo's writing round: a third assignment, open for writing and discussing, beside the
Secure Base assignment (in review) and the sample round (in feedback), so every phase a
student meets is there to try. Ada has a draft paper; the others have not begun. A few
posts in the demo carry open flags for the moderator's queue.

Idempotent (found by title); everything goes through the services people use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services import assignments, discussions, moderation, papers, phases
from services.demo import DEMO_COHORT_SLUG, fixture_text, secure_base_rubric
from services.importing import parse_assignment_text
from services.models import (
    Assignment,
    Cohort,
    FlagReason,
    Phase,
    Post,
    Question,
    Thread,
    utcnow,
)
from services.policy import Actor

TITLE = "Writing week: the secure base in your own practice"
PAPER_DUE_IN = timedelta(days=3)
REVIEW_DUE_IN = timedelta(days=10)

ADA_DRAFT = (
    "In my practicum I notice that clients test whether I stay the same from week to week. "
    "Draft: add an example about exploration."
)
THREAD = (
    "chen-student",
    "Which session should we write about?",
    "Is it fine to write about a role-play from class rather than a real client?",
)
REPLY = ("ben-student", True, "I asked last term: role-plays were fine if you say so.")

# (flagger, author of the flagged post): the first post by that author in the Secure Base
# assignment's discussion. Below the auto-hide threshold, so the posts stay up and the flags
# wait in the moderator's queue.
FLAGS = (
    ("ada-student", "ben-student", FlagReason.off_topic),
    ("chen-student", "dara-student", FlagReason.other),
)


async def seed_writing_round(
    session: AsyncSession, *, people: Mapping[str, Actor]
) -> Assignment | None:
    """The open assignment, once: deadlines ahead, a thread with an anonymous reply, and
    Ada's draft paper."""
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
    draft = replace(
        parse_assignment_text(fixture_text()), title=TITLE, stance_source=source, rubric=rubric
    )
    made = await assignments.import_assignment(session, actor=system, cohort=cohort, draft=draft)
    assert made.id is not None
    now = utcnow()
    made.paper_due_at = now + PAPER_DUE_IN
    made.review_due_at = now + REVIEW_DUE_IN
    session.add(made)
    await session.flush()
    opened, _ = await phases.change_phase(
        session, actor=system, assignment_id=made.id, phase=Phase.open
    )
    question_id = await session.scalar(
        select(col(Question.id))
        .where(Question.assignment_id == made.id)
        .order_by(col(Question.position))
        .limit(1)
    )
    assert question_id is not None
    author, title, body = THREAD
    thread = await discussions.create_thread(
        session, actor=people[author], question_id=question_id, title=title, body=body,
        anonymous=False,
    )  # fmt: skip
    replier, anonymous, text = REPLY
    await discussions.reply(
        session, actor=people[replier], thread_id=thread.public_id, body=text,
        anonymous=anonymous,
    )  # fmt: skip
    await papers.save_paper(
        session, actor=people["ada-student"], assignment_id=made.id, body=ADA_DRAFT, submit=False
    )
    return opened


async def seed_flags(
    session: AsyncSession, *, assignment_id: int, people: Mapping[str, Actor]
) -> None:
    """A few open flags on the Secure Base discussion (call once)."""
    for flagger, author, reason in FLAGS:
        post = await session.scalar(
            select(Post)
            .join(Thread, col(Thread.id) == Post.thread_id)
            .join(Question, col(Question.id) == Thread.question_id)
            .where(
                Question.assignment_id == assignment_id,
                Post.author_id == people[author].user_id,
            )
            .order_by(col(Post.id))
            .limit(1)
        )
        if post is None:
            continue
        await moderation.flag_post(
            session, actor=people[flagger], post_id=post.public_id, reason=reason,
            note="Seeded by the demo: a flag waiting for the moderator.",
        )  # fmt: skip
