from dataclasses import replace

import pytest
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from services import assignments, cohorts, phases, policy
from services.demo import secure_base_rubric, seed_demo
from services.errors import Invalid, NotFound
from services.importing import AssignmentDraft, QuestionDraft, parse_assignment_text
from services.models import Assignment, Cohort, Membership, Phase, Question, Role
from services.policy import Actor

ADMIN = Actor.system()


async def _cohort(session: AsyncSession, slug: str = "psy") -> Cohort:
    return await cohorts.create_cohort(session, actor=ADMIN, slug=slug, name=slug.upper())


async def test_importing_the_fixture_stores_title_questions_paper_references_and_rubric(
    session: AsyncSession, fixture_text: str
) -> None:
    cohort = await _cohort(session)
    source, rubric = secure_base_rubric()
    draft = replace(parse_assignment_text(fixture_text), stance_source=source, rubric=rubric)

    made = await assignments.import_assignment(session, actor=ADMIN, cohort=cohort, draft=draft)
    assert made.id is not None
    detail = await assignments.get_assignment(session, actor=ADMIN, assignment_id=made.id)
    view = assignments.present_assignment(detail, actor=ADMIN)

    assert view.title == "Reflect On The Ways You Have Been A Secure Base For Your Clients"
    assert view.phase is Phase.draft
    assert [q.position for q in view.questions] == [1, 2, 3, 4, 5]
    assert view.questions[0].prompt.startswith('Reflect on the ways you have been a "secure base"')
    assert view.questions[4].prompt.startswith("Discuss how a therapist's own attachment pattern")
    assert "<p>" in view.questions[1].prompt_html
    assert view.sample_paper is not None
    assert view.sample_paper.startswith("The role of the therapist as a secure base")
    assert view.sample_paper_html and view.sample_paper_html.count("<p>") == 6
    assert len(view.references) == 10
    assert view.references[0].startswith("Mikulincer, M., & Shaver, P. R. (2019).")
    assert view.rubric.source == "Mikulincer & Shaver (2019)"
    assert [c.key for c in view.rubric.components] == [
        "secure-base",
        "exploring-biases-safely",
        "attunement",
        "therapist-attachment-history",
    ]


async def test_prompt_markdown_is_sanitized_when_stored(session: AsyncSession) -> None:
    cohort = await _cohort(session)
    draft = AssignmentDraft(
        title="Hostile",
        instructions="",
        questions=(
            QuestionDraft("Click [me](javascript:alert(1)) <script>alert(2)</script> {{7*7}}"),
        ),
        sample_paper=None,
        references=(),
    )
    made = await assignments.import_assignment(session, actor=ADMIN, cohort=cohort, draft=draft)
    question = (
        await session.execute(select(Question).where(Question.assignment_id == made.id))
    ).scalar_one()
    assert "href" not in question.prompt_html  # the link is refused, its text stays
    assert "<script>" not in question.prompt_html
    assert "{{7*7}}" in question.prompt_html


@pytest.mark.parametrize("role", [Role.student, None])
async def test_only_cohort_staff_import(
    session: AsyncSession, fixture_text: str, role: Role | None
) -> None:
    cohort = await _cohort(session)
    assert cohort.id is not None
    actor = Actor(user_id=3, roles={cohort.id: role} if role else {})
    with pytest.raises(NotFound):
        await assignments.import_assignment(
            session, actor=actor, cohort=cohort, draft=parse_assignment_text(fixture_text)
        )
    assert await session.scalar(select(func.count()).select_from(Assignment)) == 0


@pytest.mark.parametrize("role", [Role.moderator, Role.instructor])
async def test_moderators_and_instructors_import(
    session: AsyncSession, fixture_text: str, role: Role
) -> None:
    cohort = await _cohort(session)
    assert cohort.id is not None
    actor = Actor(user_id=3, roles={cohort.id: role})
    made = await assignments.import_assignment(
        session, actor=actor, cohort=cohort, draft=parse_assignment_text(fixture_text)
    )
    assert made.cohort_id == cohort.id


async def test_an_unrenderable_question_imports_nothing(session: AsyncSession) -> None:
    cohort = await _cohort(session)
    draft = AssignmentDraft(
        title="Too long",
        instructions="",
        questions=(QuestionDraft("fine"), QuestionDraft("x" * 200_000)),
        sample_paper=None,
        references=(),
    )
    with pytest.raises(Invalid) as caught:
        await assignments.import_assignment(session, actor=ADMIN, cohort=cohort, draft=draft)
    assert caught.value.problems[0].field == "questions[1].prompt"
    assert await session.scalar(select(func.count()).select_from(Assignment)) == 0


async def test_students_do_not_see_draft_assignments_and_lists_agree_with_checks(
    session: AsyncSession, fixture_text: str
) -> None:
    cohort = await _cohort(session)
    other = await _cohort(session, "other")
    assert cohort.id is not None and other.id is not None
    draft = parse_assignment_text(fixture_text)
    hidden = await assignments.import_assignment(session, actor=ADMIN, cohort=cohort, draft=draft)
    shown = await assignments.import_assignment(session, actor=ADMIN, cohort=cohort, draft=draft)
    assert shown.id is not None and hidden.id is not None
    await phases.change_phase(session, actor=ADMIN, assignment_id=shown.id, phase=Phase.open)

    ada = Actor(user_id=1, roles={cohort.id: Role.student})
    mona = Actor(user_id=2, roles={cohort.id: Role.moderator})
    zed = Actor(user_id=3, roles={other.id: Role.student})

    assert [
        a.id for a in await assignments.list_assignments(session, actor=ada, cohort=cohort)
    ] == [shown.id]
    with pytest.raises(NotFound):
        await assignments.get_assignment(session, actor=ada, assignment_id=hidden.id)
    with pytest.raises(NotFound):
        await assignments.get_assignment(session, actor=zed, assignment_id=shown.id)
    assert len(await assignments.list_assignments(session, actor=mona, cohort=cohort)) == 2

    everything = list((await session.execute(select(Assignment))).scalars())
    for actor in (ada, mona, zed, ADMIN, Actor.anonymous()):
        listed = {
            row.id
            for c in (cohort, other)
            for row in await assignments.list_assignments(session, actor=actor, cohort=c)
        }
        assert listed == {a.id for a in everything if policy.can_view_assignment(actor, a)}


async def test_students_cannot_move_phases(session: AsyncSession, fixture_text: str) -> None:
    cohort = await _cohort(session)
    assert cohort.id is not None
    made = await assignments.import_assignment(
        session, actor=ADMIN, cohort=cohort, draft=parse_assignment_text(fixture_text)
    )
    assert made.id is not None
    await phases.change_phase(session, actor=ADMIN, assignment_id=made.id, phase=Phase.open)
    ada = Actor(user_id=1, roles={cohort.id: Role.student})
    with pytest.raises(NotFound):
        await phases.change_phase(session, actor=ada, assignment_id=made.id, phase=Phase.review)


async def test_demo_seed_is_idempotent(session: AsyncSession) -> None:
    first = await seed_demo(session, issuer="http://127.0.0.1:9400")
    second = await seed_demo(session, issuer="http://127.0.0.1:9400")
    assert first.id == second.id
    assert first.phase is Phase.open
    assert await session.scalar(select(func.count()).select_from(Assignment)) == 1
    roles = (await session.execute(select(Membership.role))).scalars().all()
    assert sorted(r.value for r in roles) == [
        "instructor", "moderator", "student", "student", "student", "student"
    ]  # fmt: skip
