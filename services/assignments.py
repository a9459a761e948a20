"""Assignments: created by importing a document, read by the cohort."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services import policy
from services.errors import NotFound
from services.importing import AssignmentDraft
from services.markdown import render_markdown_bounded
from services.models import (
    Assignment,
    AssignmentReference,
    Cohort,
    Phase,
    Question,
    RubricComponent,
)
from services.policy import Actor
from services.views import (
    AssignmentSummaryView,
    AssignmentView,
    QuestionView,
    RubricComponentView,
    RubricView,
)


@dataclass(frozen=True)
class AssignmentDetail:
    assignment: Assignment
    cohort: Cohort
    questions: list[Question]
    rubric: list[RubricComponent]
    references: list[AssignmentReference]


async def import_assignment(
    session: AsyncSession, *, actor: Actor, cohort: Cohort, draft: AssignmentDraft
) -> Assignment:
    """Cohort staff create an assignment from a parsed document; it starts as a draft."""
    if not policy.can_manage_cohort(actor, cohort):
        raise NotFound("No such cohort.")
    assert cohort.id is not None
    # Render everything before touching the database: a refusal then leaves nothing behind.
    instructions_html = await render_markdown_bounded(draft.instructions, field="instructions")
    prompts_html = [
        await render_markdown_bounded(q.prompt, field=f"questions[{i}].prompt")
        for i, q in enumerate(draft.questions)
    ]
    sample_html = (
        await render_markdown_bounded(draft.sample_paper, field="sample_paper")
        if draft.sample_paper
        else None
    )
    assignment = Assignment(
        cohort_id=cohort.id,
        title=draft.title,
        instructions=draft.instructions,
        instructions_html=instructions_html,
        reviews_per_paper=draft.reviews_per_paper,
        allow_anonymous_posts=draft.allow_anonymous_posts,
        stance_source=draft.stance_source,
        sample_paper=draft.sample_paper,
        sample_paper_html=sample_html,
    )
    session.add(assignment)
    await session.flush()
    assert assignment.id is not None
    session.add_all(
        Question(assignment_id=assignment.id, position=i + 1, prompt=q.prompt, prompt_html=html)
        for i, (q, html) in enumerate(zip(draft.questions, prompts_html, strict=True))
    )
    session.add_all(
        RubricComponent(
            assignment_id=assignment.id,
            position=i + 1,
            key=c.key,
            label=c.label,
            description=c.description,
        )
        for i, c in enumerate(draft.rubric)
    )
    session.add_all(
        AssignmentReference(assignment_id=assignment.id, position=i + 1, citation=citation)
        for i, citation in enumerate(draft.references)
    )
    await session.flush()
    return assignment


async def list_assignments(
    session: AsyncSession, *, actor: Actor, cohort: Cohort
) -> list[AssignmentSummaryView]:
    """The cohort's assignments the actor may see, newest first, with question counts."""
    question_count = (
        select(func.count())
        .where(Question.assignment_id == Assignment.id)
        .correlate(Assignment)
        .scalar_subquery()
    )
    rows = await session.execute(
        select(Assignment, question_count)
        .where(Assignment.cohort_id == cohort.id, policy.visible_assignments(actor))
        .order_by(col(Assignment.created_at).desc(), col(Assignment.id).desc())
    )
    return [
        AssignmentSummaryView(
            id=a.id or 0,
            cohort=cohort.slug,
            title=a.title,
            phase=a.phase,
            paper_due_at=a.paper_due_at,
            review_due_at=a.review_due_at,
            question_count=count,
        )
        for a, count in rows.all()
    ]


async def get_assignment(
    session: AsyncSession, *, actor: Actor, assignment_id: int
) -> AssignmentDetail:
    """An assignment with its questions, rubric and references, if the actor may see it."""
    assignment = await policy.access_assignment(session, actor=actor, assignment_id=assignment_id)
    cohort = await session.get(Cohort, assignment.cohort_id)
    if cohort is None:  # pragma: no cover - foreign key guarantees it
        raise NotFound("No such assignment.")

    questions = await session.execute(
        select(Question)
        .where(Question.assignment_id == assignment_id)
        .order_by(col(Question.position))
    )
    rubric = await session.execute(
        select(RubricComponent)
        .where(RubricComponent.assignment_id == assignment_id)
        .order_by(col(RubricComponent.position))
    )
    references = await session.execute(
        select(AssignmentReference)
        .where(AssignmentReference.assignment_id == assignment_id)
        .order_by(col(AssignmentReference.position))
    )
    return AssignmentDetail(
        assignment=assignment,
        cohort=cohort,
        questions=list(questions.scalars()),
        rubric=list(rubric.scalars()),
        references=list(references.scalars()),
    )


def present_assignment(detail: AssignmentDetail, *, actor: Actor) -> AssignmentView:
    a = detail.assignment
    assert a.id is not None
    return AssignmentView(
        id=a.id,
        cohort=detail.cohort.slug,
        title=a.title,
        instructions=a.instructions,
        instructions_html=a.instructions_html,
        phase=a.phase,
        paper_due_at=a.paper_due_at,
        review_due_at=a.review_due_at,
        reviews_per_paper=a.reviews_per_paper,
        allow_anonymous_posts=a.allow_anonymous_posts,
        version=a.version,
        questions=[
            QuestionView(
                id=q.id or 0, position=q.position, prompt=q.prompt, prompt_html=q.prompt_html
            )
            for q in detail.questions
        ],
        rubric=RubricView(
            source=a.stance_source,
            components=[
                RubricComponentView(key=c.key, label=c.label, description=c.description)
                for c in detail.rubric
            ],
        ),
        sample_paper=a.sample_paper,
        sample_paper_html=a.sample_paper_html,
        references=[r.citation for r in detail.references],
        can_manage=policy.can_manage_cohort(actor, detail.cohort),
    )


async def set_phase(
    session: AsyncSession, *, actor: Actor, assignment_id: int, phase: Phase
) -> Assignment:
    """Cohort staff move an assignment between phases."""
    assignment = await policy.access_assignment(session, actor=actor, assignment_id=assignment_id)
    cohort = await session.get(Cohort, assignment.cohort_id)
    if cohort is None or not policy.can_manage_cohort(actor, cohort):
        raise NotFound("No such assignment.")
    assignment.phase = phase
    assignment.version += 1
    session.add(assignment)
    await session.flush()
    return assignment
