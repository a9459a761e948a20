"""Shared builders for the discussion tests: a cohort with an open assignment, its people
made through the real services, and actors for each of them."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from services import assignments, cohorts, identity, importing, policy
from services.models import Phase, Question, Role
from services.policy import Actor

ISSUER = "https://idp.disc.example"


@dataclass
class Forum:
    assignment_id: int
    question_ids: list[int]
    users: dict[str, int] = field(default_factory=dict)
    cohort_id: int = 0

    async def actor(self, session: AsyncSession, name: str) -> Actor:
        return await policy.load_actor(
            session, user_id=self.users[name], is_administrator=name == "root"
        )


async def build_forum(
    session: AsyncSession,
    *,
    slug: str = "psy",
    anonymous: bool = True,
    post_first: bool = False,
    phase: Phase = Phase.open,
    questions_count: int = 2,
    names: tuple[tuple[str, Role], ...] = (
        ("ivo", Role.instructor),
        ("mona", Role.moderator),
        ("ada", Role.student),
        ("ben", Role.student),
        ("chen", Role.student),
    ),
) -> Forum:
    system = Actor.system()
    cohort = await cohorts.create_cohort(session, actor=system, slug=slug, name=slug.upper())
    prompts = ["What is a secure base?", "And why?"]
    prompts += [f"Question {n}?" for n in range(3, questions_count + 1)]
    draft = importing.parse_assignment_text("Title\n\n" + "\n\n".join(prompts) + "\n")
    made = await assignments.import_assignment(session, actor=system, cohort=cohort, draft=draft)
    assert made.id is not None and cohort.id is not None
    made.allow_anonymous_posts = anonymous
    # Test data: straight to the wanted phase (phases.change_phase moves one step at a time).
    made.phase = phase
    detail = await assignments.get_assignment(session, actor=system, assignment_id=made.id)
    questions: list[Question] = detail.questions
    for q in questions:
        q.post_first = post_first
        session.add(q)
    forum = Forum(made.id, [q.id or 0 for q in questions], cohort_id=cohort.id)
    for name, role in names:
        user = await identity.grant(
            session,
            actor=system,
            issuer=ISSUER,
            subject=f"{slug}-{name}",
            role=role,
            cohort_slug=slug,
        )
        user.display_name = name.capitalize()
        assert user.id is not None
        forum.users[name] = user.id
    await session.flush()
    return forum
