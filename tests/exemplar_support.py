"""A small world for the exemplar tests, made through the real services: cohort psy with
ivo (instructor), mona (moderator), ada and ben (students); zed in another cohort; the
Secure Base assignment, open; a thread by ada and a submitted paper by ben."""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from services import assignments, cohorts, discussions, identity, papers, phases, policy
from services.demo import fixture_text, secure_base_rubric
from services.importing import parse_assignment_text
from services.models import Phase, Post, Role, Thread
from services.policy import Actor

ISSUER = "https://login.uni.example"
PAPER = (
    "Being a secure base means being reliable.\n\n"
    "I disagree that the article addresses the therapist's own history."
)


@dataclass
class ExemplarWorld:
    assignment_id: int
    question_ids: list[int]
    actors: dict[str, Actor]
    names: dict[str, str]
    thread: Thread
    post: Post
    paper_id: str


async def sign_in_actor(session: AsyncSession, name: str) -> Actor:
    user = await identity.sign_in(
        session,
        identity=identity.VerifiedIdentity(
            issuer=ISSUER,
            subject=f"s-{name}",
            name=f"{name.title()} Canary",
            email=f"{name}@x.test",
        ),
    )
    assert user.id is not None
    return await policy.load_actor(session, user_id=user.id, is_administrator=False)


async def build(session: AsyncSession) -> ExemplarWorld:
    system = Actor.system()
    await cohorts.create_cohort(session, actor=system, slug="psy", name="PSY")
    await cohorts.create_cohort(session, actor=system, slug="other", name="Other")
    roles = {"ivo": ("psy", Role.instructor), "mona": ("psy", Role.moderator),
             "ada": ("psy", Role.student), "ben": ("psy", Role.student),
             "zed": ("other", Role.student)}  # fmt: skip
    for name, (slug, role) in roles.items():
        await identity.grant(
            session, actor=system, issuer=ISSUER, subject=f"s-{name}", role=role, cohort_slug=slug
        )
    actors = {name: await sign_in_actor(session, name) for name in roles}
    cohort = await cohorts.get_cohort(session, actor=system, slug="psy")
    source, rubric = secure_base_rubric()
    draft = replace(parse_assignment_text(fixture_text()), stance_source=source, rubric=rubric)
    made = await assignments.import_assignment(session, actor=system, cohort=cohort, draft=draft)
    assert made.id is not None
    await phases.change_phase(session, actor=system, assignment_id=made.id, phase=Phase.open)
    detail = await assignments.get_assignment(session, actor=system, assignment_id=made.id)
    question_ids = [q.id or 0 for q in detail.questions]
    thread = await discussions.create_thread(
        session, actor=actors["ada"], question_id=question_ids[0],
        title="What the camera would see", body="I would lean in and *listen*.",
    )  # fmt: skip
    post = (await session.execute(select(Post).where(Post.thread_id == thread.id))).scalar_one()
    state = await papers.save_paper(
        session, actor=actors["ben"], assignment_id=made.id, body=PAPER, submit=True
    )
    assert state.paper is not None
    return ExemplarWorld(
        assignment_id=made.id,
        question_ids=question_ids,
        actors=actors,
        names={n: f"{n.title()} Canary" for n in roles},
        thread=thread,
        post=post,
        paper_id=state.paper.public_id,
    )
