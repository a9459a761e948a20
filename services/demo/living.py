"""The demo's living cohort: discussion on every question, a paper from every student (one
of them the fixture's sample paper), reviews under way on the Secure Base assignment (most
submitted, so its workspace has stance charts; some drafted; some not started),
a finished sample round with released feedback, a writing round open for papers and
discussion (services/demo/writing.py), a few open flags, and exemplars with curator notes.

Everything goes through the same services people use; it runs once (the first exemplar
marks it done) after `seed_demo`.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services import discussions, exemplars, papers, phases, policy, reviews
from services.demo import DEMO_PEOPLE
from services.demo.discussions import seed_discussions
from services.demo.review_progress import seed_review_progress
from services.demo.reviews import PAPERS, seed_review_round
from services.demo.writing import seed_flags, seed_writing_round
from services.models import (
    Assignment,
    Exemplar,
    ExemplarKind,
    Phase,
    Post,
    Question,
    Review,
    ReviewTask,
    Thread,
    User,
)
from services.policy import Actor

# (question position, author, anonymous, title, body, (replier, anonymous, reply))
THREADS = (
    (2, "chen-student", False, "Naming a pattern without shaming",
     "I try to describe the pattern as something that once *protected* the client.",
     ("dara-student", True, "That reframing helps me too; it keeps the base secure.")),
    (3, "dara-student", True, "Where the article felt idealized",
     "I agreed with most of it, but it skips how hard attunement is on a bad day.",
     ("ada-student", False, "Same here. The therapist's own history is underplayed.")),
    (4, "ben-student", False, "Wallin's baby metaphor",
     "I read it as the early, preverbal part of us that still hopes to be held.",
     ("chen-student", False, "Yes: the metaphor is about states, not literal roles.")),
    (5, "ada-student", False, "My own attachment style in the room",
     "When clients withdraw I notice an urge to reassure too quickly.",
     ("ben-student", True, "Supervision is where I learned to notice that urge.")),
)  # fmt: skip


async def _actor(session: AsyncSession, issuer: str, subject: str) -> Actor:
    user = await session.scalar(select(User).where(User.issuer == issuer, User.subject == subject))
    assert user is not None and user.id is not None
    return await policy.load_actor(session, user_id=user.id, is_administrator=False)


async def seed_living_cohort(
    session: AsyncSession, *, assignment: Assignment, issuer: str, sample_paper: str
) -> None:
    """Bring the demo to life, once."""
    assert assignment.id is not None
    done = await session.scalar(
        select(Exemplar.id).where(Exemplar.assignment_id == assignment.id).limit(1)
    )
    if done is not None:
        return
    system = Actor.system()
    people = {p.subject: await _actor(session, issuer, p.subject) for p in DEMO_PEOPLE}
    await seed_discussions(session, assignment=assignment)
    questions = {
        q.position: q.id or 0
        for q in (
            await session.execute(select(Question).where(Question.assignment_id == assignment.id))
        ).scalars()
    }
    for position, author, anonymous, title, body, (replier, anon_reply, text) in THREADS:
        thread = await discussions.create_thread(
            session, actor=people[author], question_id=questions[position], title=title,
            body=body, anonymous=anonymous,
        )  # fmt: skip
        await discussions.reply(
            session, actor=people[replier], thread_id=thread.public_id, body=text,
            anonymous=anon_reply,
        )  # fmt: skip

    await seed_flags(session, assignment_id=assignment.id, people=people)

    # Papers: everyone submits; Dara's is the paper that came with the assignment.
    texts = dict(PAPERS)
    texts["dara-student"] = sample_paper
    for subject, text in texts.items():
        await papers.save_paper(
            session, actor=people[subject], assignment_id=assignment.id, body=text, submit=True
        )
    await phases.change_phase(
        session, actor=system, assignment_id=assignment.id, phase=Phase.review
    )
    # Reviews under way: most submitted, some drafted, some not started (Ada has one of each).
    await seed_review_progress(session, assignment_id=assignment.id, people=people)

    # Exemplars with notes: the sample paper, a discussion post, a review of the sample round.
    await exemplars.nominate(
        session, actor=system, assignment_id=assignment.id, kind=ExemplarKind.sample_paper,
        publish=True,
        note="Covers all five questions and takes a position on the article, with reasons.",
    )  # fmt: skip
    post = await session.scalar(
        select(Post)
        .join(Thread, col(Thread.id) == Post.thread_id)
        .where(col(Thread.question_id) == questions[2], col(Post.parent_id).is_(None))
        .limit(1)
    )
    if post is not None:
        await exemplars.nominate(
            session, actor=system, assignment_id=assignment.id, kind=ExemplarKind.post,
            source=post.public_id, question_id=questions[2], publish=True,
            note="Shows how to name a relational bias while keeping the client safe.",
        )  # fmt: skip
    sample_round = await seed_review_round(session, issuer=issuer)
    if sample_round is not None and sample_round.id is not None:
        # Feedback on feedback: Ada rates the first review of her paper in the sample round.
        feedback = await reviews.my_feedback(
            session, actor=people["ada-student"], assignment_id=sample_round.id
        )
        if feedback.reviews and feedback.can_rate:
            await reviews.rate_review(
                session, actor=people["ada-student"], review_id=feedback.reviews[0].id,
                rating=4, comment="The quotes made it easy to see what to change.",
            )  # fmt: skip
        review = await session.scalar(
            select(Review)
            .join(ReviewTask, col(ReviewTask.id) == Review.task_id)
            .where(
                ReviewTask.assignment_id == sample_round.id,
                col(Review.submitted_at).is_not(None),
            )
            .limit(1)
        )
        if review is not None:
            await exemplars.nominate(
                session, actor=system, assignment_id=sample_round.id, kind=ExemplarKind.review,
                source=review.public_id, publish=True,
                note="Every stance is backed by a quotation from the paper.",
            )  # fmt: skip
    # The third phase a student meets: an assignment open for writing and discussing.
    await seed_writing_round(session, people=people)
