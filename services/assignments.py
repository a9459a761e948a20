"""Assignments: created by importing a document, read by the cohort."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services import audit, policy
from services.cohorts import clean_name
from services.db import lock
from services.errors import Invalid, NotFound, Problem, StaleVersion
from services.importing import AssignmentDraft
from services.markdown import render_markdown_bounded
from services.models import (
    Assignment,
    AssignmentReference,
    Cohort,
    LatePolicy,
    Phase,
    Question,
    RubricComponent,
    utcnow,
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
    questions = [
        Question(assignment_id=assignment.id, position=i + 1, prompt=q.prompt, prompt_html=html)
        for i, (q, html) in enumerate(zip(draft.questions, prompts_html, strict=True))
    ]
    session.add_all(questions)
    if any(c.question is not None for c in draft.rubric):
        await session.flush()  # the questions' ids, for the components that name one
    session.add_all(
        RubricComponent(
            assignment_id=assignment.id,
            position=i + 1,
            key=c.key,
            label=c.label,
            description=c.description,
            question_id=(
                questions[c.question - 1].id
                if c.question is not None and 1 <= c.question <= len(questions)
                else None
            ),
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


def present_assignment(
    detail: AssignmentDetail, *, actor: Actor, new_posts: Mapping[int, int] | None = None
) -> AssignmentView:
    """The assignment as the actor sees it; with `new_posts` (services/visits.py), each
    question says how many posts there are new to them."""
    a = detail.assignment
    assert a.id is not None
    position_of = {q.id: q.position for q in detail.questions}
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
        auto_advance=a.auto_advance,
        late_policy=a.late_policy,
        stance_source=a.stance_source,
        allow_anonymous_posts=a.allow_anonymous_posts,
        version=a.version,
        questions=[
            QuestionView(
                id=q.id or 0,
                position=q.position,
                prompt=q.prompt,
                prompt_html=q.prompt_html,
                new_posts=None if new_posts is None else new_posts.get(q.id or 0, 0),
            )
            for q in detail.questions
        ],
        rubric=RubricView(
            source=a.stance_source,
            components=[
                RubricComponentView(
                    key=c.key,
                    label=c.label,
                    description=c.description,
                    question=position_of.get(c.question_id),
                )
                for c in detail.rubric
            ],
        ),
        sample_paper=a.sample_paper,
        sample_paper_html=a.sample_paper_html,
        references=[r.citation for r in detail.references],
        can_manage=policy.can_manage_cohort(actor, detail.cohort),
        can_export_posts=policy.can_take_export(actor, detail.cohort, kind="posts"),
    )


async def assignment_view(
    session: AsyncSession, *, actor: Actor, detail: AssignmentDetail
) -> AssignmentView:
    """The assignment as the actor reads it, with each question's count of posts new to
    them (one query more, whatever the size)."""
    from services import visits

    unread = await visits.new_posts_by_question(session, actor=actor, assignment=detail.assignment)
    return present_assignment(detail, actor=actor, new_posts=unread)


@dataclass(frozen=True)
class SettingsChange:
    """Fields to change; None leaves a field as it is (clear_* empties a deadline)."""

    title: str | None = None
    instructions: str | None = None
    paper_due_at: datetime | None = None
    review_due_at: datetime | None = None
    clear_paper_due_at: bool = False
    clear_review_due_at: bool = False
    auto_advance: bool | None = None
    late_policy: LatePolicy | None = None
    reviews_per_paper: int | None = None
    allow_anonymous_posts: bool | None = None
    stance_source: str | None = None


async def update_settings(
    session: AsyncSession, *, actor: Actor, assignment_id: int, version: int, change: SettingsChange
) -> Assignment:
    """Cohort staff edit an assignment's title, instructions, deadlines and review settings;
    an edit based on a stale version is refused. Reviews per paper is fixed once review
    has started (the allocation depends on it)."""
    assignment = await policy.access_assignment(session, actor=actor, assignment_id=assignment_id)
    cohort = await session.get(Cohort, assignment.cohort_id)
    if cohort is None or not policy.can_manage_cohort(actor, cohort):
        raise NotFound("No such assignment.")
    await lock(session, assignment)  # the version check and the write, as one step
    if version != assignment.version:
        raise StaleVersion(assignment.version, what="this assignment")
    problems: list[Problem] = []
    if change.title is not None:
        assignment.title = clean_name(change.title, field="title", limit=200)
    if change.instructions is not None:
        assignment.instructions = change.instructions.strip()
        assignment.instructions_html = await render_markdown_bounded(
            assignment.instructions, field="instructions"
        )
    if change.paper_due_at is not None or change.clear_paper_due_at:
        assignment.paper_due_at = None if change.clear_paper_due_at else change.paper_due_at
    if change.review_due_at is not None or change.clear_review_due_at:
        assignment.review_due_at = None if change.clear_review_due_at else change.review_due_at
    if (
        assignment.paper_due_at is not None
        and assignment.review_due_at is not None
        and assignment.review_due_at <= assignment.paper_due_at
    ):
        problems.append(Problem("must be after the paper deadline", field="review_due_at"))
    if change.reviews_per_paper is not None:
        if not 1 <= change.reviews_per_paper <= 10:
            problems.append(Problem("must be between 1 and 10", field="reviews_per_paper"))
        elif change.reviews_per_paper != assignment.reviews_per_paper and assignment.phase not in (
            Phase.draft,
            Phase.open,
        ):
            problems.append(
                Problem("cannot change once review has started", field="reviews_per_paper")
            )
        else:
            assignment.reviews_per_paper = change.reviews_per_paper
    if change.stance_source is not None:
        source = " ".join(change.stance_source.split())
        if len(source) > 300:
            problems.append(Problem("must be at most 300 characters", field="stance_source"))
        assignment.stance_source = source or None
    for name in ("auto_advance", "late_policy", "allow_anonymous_posts"):
        value = getattr(change, name)
        if value is not None:
            setattr(assignment, name, value)
    if problems:
        raise Invalid(problems=problems)
    assignment.version += 1
    assignment.updated_at = utcnow()
    await audit.record(
        session,
        actor=actor,
        cohort_id=cohort.id,
        action="assignment.settings",
        target_type="assignment",
        target_id=assignment_id,
        details={k: str(v) for k, v in vars(change).items() if v not in (None, False)},
    )
    await session.flush()
    return assignment
