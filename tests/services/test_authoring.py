"""Authoring: reading a document (with a proposed rubric), creating from the edited parse,
editing questions while a draft, editing the rubric until reviews exist, copying to another
cohort. Each change: the refusals first (nothing changes), then the effects."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from services import (
    assignments,
    authoring,
    cohorts,
    discussions,
    exemplars,
    identity,
    phases,
    policy,
)
from services.db import transaction
from services.errors import Conflict, Invalid, NotFound, StaleVersion
from services.importing import AssignmentDraft, QuestionDraft
from services.models import (
    Assignment,
    Attribution,
    AuditEvent,
    Exemplar,
    ExemplarKind,
    Phase,
    Post,
    Role,
)
from services.policy import Actor
from tests.document_support import make_docx
from tests.review_support import run_review_round

SYSTEM = Actor.system()
ISSUER = "https://idp.authoring.test"


async def _people(session: AsyncSession) -> dict[str, Actor]:
    for slug in ("psy", "next"):
        await cohorts.create_cohort(session, actor=SYSTEM, slug=slug, name=slug.upper())
    grants = [("ivo", "psy", Role.instructor), ("ivo", "next", Role.instructor),
              ("mona", "psy", Role.moderator), ("ada", "psy", Role.student)]  # fmt: skip
    ids: dict[str, int] = {}
    for name, slug, role in grants:
        user = await identity.grant(
            session, actor=SYSTEM, issuer=ISSUER, subject=name, role=role, cohort_slug=slug
        )
        assert user.id is not None
        ids[name] = user.id
    return {
        name: await policy.load_actor(session, user_id=uid, is_administrator=False)
        for name, uid in ids.items()
    }


async def _create(session: AsyncSession, actor: Actor, fixture_text: str) -> Assignment:
    parsed = authoring.parse_source(fixture_text, "text")
    assert parsed.draft is not None
    cohort = await cohorts.get_cohort(session, actor=actor, slug="psy")
    return await authoring.create_assignment(
        session, actor=actor, cohort=cohort, draft=parsed.draft,
        rubric=authoring.rubric_input_of(parsed.draft),
    )  # fmt: skip


# --- reading -------------------------------------------------------------------------------


async def test_the_secure_base_document_reads_with_a_proposed_rubric(fixture_text: str) -> None:
    parsed = await authoring.read_document(fixture_text.encode(), filename="secure-base.txt")
    assert parsed.problems == () and parsed.draft is not None
    draft = parsed.draft
    assert draft.title == "Reflect On The Ways You Have Been A Secure Base For Your Clients"
    assert len(draft.questions) == 5 and len(draft.references) == 10
    assert draft.sample_paper and draft.sample_paper.startswith("The role of the therapist")
    # The first reference is the source; the Wallin question (about another reference) is
    # not proposed as a component; each component links to its question.
    assert draft.stance_source == "Mikulincer & Shaver (2019)"
    assert [c.question for c in draft.rubric] == [1, 2, 3, 5]
    assert draft.rubric[0].label.startswith('Reflect on the ways you have been a "secure base"')
    assert authoring.rubric_input_of(draft).source_reference == 1


async def test_a_word_document_reads_like_the_plain_text(fixture_text: str) -> None:
    paragraphs = [line for line in fixture_text.split("\n") if line.strip()]
    parsed = await authoring.read_document(make_docx(paragraphs), filename="whatever.bin")
    assert parsed.draft is not None, parsed.problems
    assert len(parsed.draft.questions) == 5 and len(parsed.draft.references) == 10
    assert parsed.draft.stance_source == "Mikulincer & Shaver (2019)"


async def test_markdown_maps_onto_the_plain_text_format() -> None:
    source = "# Secure base\n\nWhat is a *secure base*?\n\n## References\n\n- Bowlby, J. (1988). A secure base. Basic Books.\n"  # noqa: E501
    parsed = await authoring.read_document(source.encode(), filename="a.md")
    assert parsed.draft is not None, parsed.problems
    assert parsed.draft.title == "Secure base"
    assert parsed.draft.stance_source == "Bowlby (1988)"


async def test_what_cannot_be_parsed_is_reported_at_its_line() -> None:
    parsed = await authoring.read_document(b"Title\n\nA question?\n\nbad\x01line\n", filename=None)
    assert parsed.draft is None
    assert [(p.line, "control character" in p.message) for p in parsed.problems] == [(5, True)]
    structured = authoring.parse_source('{"title": "T",\n "questions": [}', "json")
    assert structured.draft is None and structured.problems[0].line == 2


@pytest.mark.parametrize(
    ("data", "says"),
    [(b"", "is empty"), (b"%PDF-1.7 ...", "is a PDF"), (b"\xff\xfe\x00bad", "not UTF-8")],
)
async def test_files_that_are_not_documents_are_refused(data: bytes, says: str) -> None:
    with pytest.raises(Invalid) as refused:
        await authoring.read_document(data, filename="x.txt")
    assert refused.value.problems[0].field == "file" and says in refused.value.problems[0].message


# --- creating ------------------------------------------------------------------------------


async def test_creating_is_refused_to_students_and_for_mistakes(
    session: AsyncSession, fixture_text: str
) -> None:
    actors = await _people(session)
    with pytest.raises(NotFound):
        await _create(session, actors["ada"], fixture_text)
    cohort = await cohorts.get_cohort(session, actor=actors["ivo"], slug="psy")
    draft = AssignmentDraft(
        title="  ",
        instructions="",
        questions=(QuestionDraft(" "),),
        sample_paper=None,
        references=("Bowlby, J. (1988). A secure base.",),
    )
    rubric = authoring.RubricInput(
        source_reference=3, components=(authoring.ComponentInput(" ", question=2),)
    )
    with pytest.raises(Invalid) as refused:
        await authoring.create_assignment(
            session, actor=actors["ivo"], cohort=cohort, draft=draft, rubric=rubric
        )
    assert {p.field for p in refused.value.problems} == {
        "title", "questions", "stance_source", "components[0].label", "components[0].question",
    }  # fmt: skip
    assert (await session.execute(select(Assignment))).first() is None


async def test_creating_stores_the_edited_parse_with_its_rubric_and_audits(
    session: AsyncSession, fixture_text: str
) -> None:
    actors = await _people(session)
    made = await _create(session, actors["ivo"], fixture_text)
    assert made.id is not None and made.phase is Phase.draft
    view = assignments.present_assignment(
        await assignments.get_assignment(session, actor=actors["ivo"], assignment_id=made.id),
        actor=actors["ivo"],
    )
    assert view.rubric.source == "Mikulincer & Shaver (2019)"
    assert [c.question for c in view.rubric.components] == [1, 2, 3, 5]
    event = (
        (
            await session.execute(
                select(AuditEvent).where(col(AuditEvent.action).startswith("assignment."))
            )
        )
        .scalars()
        .one()
    )
    assert event.action == "assignment.create" and event.target_id == str(made.id)


# --- questions -----------------------------------------------------------------------------


async def test_questions_are_fixed_once_open_and_on_a_stale_version(
    session: AsyncSession, fixture_text: str
) -> None:
    actors = await _people(session)
    made = await _create(session, actors["ivo"], fixture_text)
    assert made.id is not None
    edit = [authoring.QuestionInput(None, "Only this?")]
    with pytest.raises(StaleVersion, match="since you loaded it"):
        await authoring.update_questions(
            session, actor=actors["ivo"], assignment_id=made.id, version=made.version - 1,
            questions=edit,
        )  # fmt: skip
    with pytest.raises(NotFound):
        await authoring.update_questions(
            session, actor=actors["ada"], assignment_id=made.id, version=made.version,
            questions=edit,
        )  # fmt: skip
    await phases.change_phase(session, actor=SYSTEM, assignment_id=made.id, phase=Phase.open)
    with pytest.raises(Conflict, match="questions are fixed: the assignment is open"):
        await authoring.update_questions(
            session, actor=actors["ivo"], assignment_id=made.id, version=made.version,
            questions=edit,
        )  # fmt: skip
    detail = await assignments.get_assignment(session, actor=SYSTEM, assignment_id=made.id)
    assert len(detail.questions) == 5


async def test_questions_are_edited_reordered_added_and_removed_in_draft(
    session: AsyncSession, fixture_text: str
) -> None:
    actors = await _people(session)
    made = await _create(session, actors["ivo"], fixture_text)
    assert made.id is not None
    before = await assignments.get_assignment(session, actor=SYSTEM, assignment_id=made.id)
    q = before.questions
    new_order = [
        authoring.QuestionInput(q[4].id, q[4].prompt),
        authoring.QuestionInput(q[0].id, "Reflect, **briefly**, on being a secure base."),
        authoring.QuestionInput(q[1].id, q[1].prompt),
        authoring.QuestionInput(None, "A new question?"),
        authoring.QuestionInput(q[2].id, " "),  # emptied: removed
    ]
    await authoring.update_questions(
        session, actor=actors["ivo"], assignment_id=made.id, version=made.version,
        questions=new_order,
    )  # fmt: skip
    after = await assignments.get_assignment(session, actor=SYSTEM, assignment_id=made.id)
    assert [x.prompt[:12] for x in after.questions] == [
        q[4].prompt[:12], "Reflect, **b", q[1].prompt[:12], "A new questi",
    ]  # fmt: skip
    assert "<strong>briefly</strong>" in after.questions[1].prompt_html
    view = assignments.present_assignment(after, actor=SYSTEM)
    # Components follow their question; the removed question's component loses its link.
    assert [c.question for c in view.rubric.components] == [2, 3, None, 1]
    assert made.version == 2  # created at 1; this edit made it 2


# --- rubric --------------------------------------------------------------------------------


async def test_the_rubric_is_edited_with_kept_keys_a_picked_source_and_an_audit(
    session: AsyncSession, fixture_text: str
) -> None:
    actors = await _people(session)
    made = await _create(session, actors["mona"], fixture_text)
    assert made.id is not None
    view = assignments.present_assignment(
        await assignments.get_assignment(session, actor=SYSTEM, assignment_id=made.id),
        actor=SYSTEM,
    )
    old = view.rubric.components
    rubric = authoring.RubricInput(
        source_reference=5,  # Bowlby (1988)
        components=(
            authoring.ComponentInput("New: the client's safety", "", 1, None),
            authoring.ComponentInput("Renamed", "Why", 4, old[2].key),
            authoring.ComponentInput(old[0].label, old[0].description, 1, old[0].key),
        ),
    )
    with pytest.raises(Conflict):
        await authoring.update_rubric(
            session, actor=actors["ivo"], assignment_id=made.id, version=99, rubric=rubric
        )
    await authoring.update_rubric(
        session, actor=actors["ivo"], assignment_id=made.id, version=made.version, rubric=rubric
    )
    after = assignments.present_assignment(
        await assignments.get_assignment(session, actor=SYSTEM, assignment_id=made.id),
        actor=SYSTEM,
    )
    assert after.rubric.source == "Bowlby (1988)"
    assert [(c.key, c.label, c.question) for c in after.rubric.components] == [
        ("new-the-client-s-safety", "New: the client's safety", 1),
        (old[2].key, "Renamed", 4),
        (old[0].key, old[0].label, 1),
    ]
    actions = (
        (
            await session.execute(
                select(AuditEvent.action).where(col(AuditEvent.action).startswith("assignment."))
            )
        )
        .scalars()
        .all()
    )
    assert actions == ["assignment.create", "assignment.rubric"]


async def test_the_rubric_is_fixed_once_a_review_exists(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with transaction(sessions) as session:
        await cohorts.create_cohort(session, actor=SYSTEM, slug="psy", name="PSY")
        users = {}
        for name in ("ada", "ben", "chen"):
            user = await identity.grant(
                session, actor=SYSTEM, issuer=ISSUER, subject=name, role=Role.student,
                cohort_slug="psy",
            )  # fmt: skip
            users[name] = user.id or 0
    assignment_id = await run_review_round(
        sessions, slug="psy", users=users, k=1, until=Phase.feedback
    )
    async with transaction(sessions) as session:
        made = await session.get(Assignment, assignment_id)
        assert made is not None
        with pytest.raises(Conflict, match=r"rubric is fixed: 3 reviews have been started"):
            await authoring.update_rubric(
                session, actor=SYSTEM, assignment_id=assignment_id, version=made.version,
                rubric=authoring.RubricInput(source_reference=None),
            )  # fmt: skip


# --- copying -------------------------------------------------------------------------------


async def test_copying_needs_a_cohort_the_actor_manages(
    session: AsyncSession, fixture_text: str
) -> None:
    actors = await _people(session)
    made = await _create(session, actors["ivo"], fixture_text)
    assert made.id is not None
    with pytest.raises(NotFound):  # mona does not teach "next"
        await authoring.copy_assignment(
            session, actor=actors["mona"], assignment_id=made.id, cohort_slug="next"
        )
    with pytest.raises(Invalid):
        await authoring.copy_assignment(
            session, actor=actors["ivo"], assignment_id=made.id, cohort_slug="psy"
        )
    targets = await authoring.copy_targets(session, actor=actors["ivo"], assignment=made)
    assert [c.slug for c in targets] == ["next"]


async def test_a_copy_takes_rubric_settings_and_consented_published_exemplars(
    session: AsyncSession, fixture_text: str
) -> None:
    actors = await _people(session)
    made = await _create(session, actors["ivo"], fixture_text)
    assert made.id is not None
    made.reviews_per_paper, made.allow_anonymous_posts = 2, False
    await phases.change_phase(session, actor=SYSTEM, assignment_id=made.id, phase=Phase.open)
    sample = await exemplars.nominate(
        session, actor=actors["ivo"], assignment_id=made.id, kind=ExemplarKind.sample_paper,
        note="A model answer", publish=True,
    )  # fmt: skip
    assert sample.attribution is Attribution.assignment
    copy = await authoring.copy_assignment(
        session, actor=actors["ivo"], assignment_id=made.id, cohort_slug="next"
    )
    assert copy.id is not None and copy.id != made.id
    assert copy.phase is Phase.draft and copy.paper_due_at is None
    assert (copy.reviews_per_paper, copy.allow_anonymous_posts) == (2, False)
    original = assignments.present_assignment(
        await assignments.get_assignment(session, actor=SYSTEM, assignment_id=made.id),
        actor=SYSTEM,
    )
    copied = assignments.present_assignment(
        await assignments.get_assignment(session, actor=SYSTEM, assignment_id=copy.id),
        actor=SYSTEM,
    )
    assert copied.cohort == "next"
    assert [q.prompt for q in copied.questions] == [q.prompt for q in original.questions]
    assert copied.rubric == original.rubric and copied.references == original.references
    rows = (
        await session.execute(select(Exemplar).where(col(Exemplar.assignment_id) == copy.id))
    ).scalars().all()  # fmt: skip
    assert [(e.kind, e.note, e.author_id) for e in rows] == [
        (ExemplarKind.sample_paper, "A model answer", None)
    ]


async def test_a_copy_leaves_out_exemplars_without_the_authors_consent(
    session: AsyncSession, fixture_text: str
) -> None:
    actors = await _people(session)
    made = await _create(session, actors["ivo"], fixture_text)
    assert made.id is not None
    await phases.change_phase(session, actor=SYSTEM, assignment_id=made.id, phase=Phase.open)
    detail = await assignments.get_assignment(session, actor=SYSTEM, assignment_id=made.id)
    thread = await discussions.create_thread(
        session, actor=actors["ada"], question_id=detail.questions[0].id or 0,
        title="Listening", body="I would listen.",
    )  # fmt: skip
    post = (await session.execute(select(Post).where(Post.thread_id == thread.id))).scalar_one()
    pending = await exemplars.nominate(
        session, actor=actors["ivo"], assignment_id=made.id, kind=ExemplarKind.post,
        source=post.public_id, publish=True,
    )  # fmt: skip
    assert pending.attribution is Attribution.pending
    copy = await authoring.copy_assignment(
        session, actor=actors["ivo"], assignment_id=made.id, cohort_slug="next"
    )
    rows = (
        await session.execute(select(Exemplar).where(col(Exemplar.assignment_id) == copy.id))
    ).scalars().all()  # fmt: skip
    assert rows == []
    await exemplars.choose_attribution(
        session, actor=actors["ada"], public_id=pending.public_id, choice=Attribution.named
    )
    again = await authoring.copy_assignment(
        session, actor=actors["ivo"], assignment_id=made.id, cohort_slug="next"
    )
    rows = (
        await session.execute(select(Exemplar).where(col(Exemplar.assignment_id) == again.id))
    ).scalars().all()  # fmt: skip
    # Named in the old cohort; a snapshot without its author in the new one.
    assert [(e.attribution, e.author_id) for e in rows] == [(Attribution.anonymous, None)]


def test_draft_replace_keeps_the_dataclass_frozen() -> None:
    draft = AssignmentDraft("T", "", (QuestionDraft("Q?"),), None, ())
    assert replace(draft, title="U").title == "U"
