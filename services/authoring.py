"""Authoring an assignment on pages: read an uploaded document, create the assignment from
the (edited) parse, edit and reorder its questions while it is a draft, edit its stance
rubric until reviews exist, and copy it to another cohort for the next term.

Reading never stores anything: the page carries the parsed fields in its form until the
instructor creates the assignment. Every change is checked whole before anything is
written (a refusal leaves nothing behind), is based on the version the editor read (a stale
one is a Conflict) and is audited.

The rubric's stance source is one of the assignment's references, picked by its position;
it is stored as the short citation reviewers are asked about ("Mikulincer & Shaver
(2019)"). A component may name the question it comes from.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services import assignments, audit, documents, importing, policy
from services.db import lock
from services.errors import Conflict, ImportRejected, Invalid, NotFound, Problem, StaleVersion
from services.importing import (
    MAX_QUESTION_CHARS,
    MAX_QUESTIONS,
    MAX_REFERENCES,
    MAX_RUBRIC_COMPONENTS,
    MAX_TITLE_CHARS,
    AssignmentDraft,
    QuestionDraft,
    RubricComponentDraft,
)
from services.markdown import render_markdown_bounded
from services.models import (
    Assignment,
    AssignmentReference,
    Attribution,
    Cohort,
    Exemplar,
    ExemplarStatus,
    Phase,
    Question,
    Review,
    ReviewTask,
    RubricComponent,
    Thread,
    utcnow,
)
from services.policy import Actor

MAX_LABEL_CHARS = 200
MAX_DESCRIPTION_CHARS = 2_000
MAX_REFERENCE_CHARS = 2_000
UPLOAD_KINDS = ".txt, .md, .docx, .json or .toml"


# --- reading a document --------------------------------------------------------------------


@dataclass(frozen=True)
class Parsed:
    """A document as read: its text (what line numbers point into), its format, and either
    the draft (with a proposed rubric when it had none) or the problems found."""

    source: str
    kind: str  # "text", "json" or "toml"
    draft: AssignmentDraft | None
    problems: tuple[Problem, ...] = ()


def _format_of(source: str, filename: str | None) -> str:
    name = (filename or "").strip().lower()
    if name.endswith(".json") or (not name.endswith(".toml") and source.lstrip().startswith("{")):
        return "json"
    if name.endswith(".toml"):
        return "toml"
    return "text"


def parse_source(source: str, kind: str) -> Parsed:
    """Parse (again) the text of a document, e.g. after the instructor fixed it on the page."""
    kind = kind if kind in ("text", "json", "toml") else "text"
    content_type = {"json": "application/json", "toml": "application/toml"}.get(kind)
    try:
        draft = importing.parse_assignment_document(source, content_type=content_type)
    except ImportRejected as rejected:
        return Parsed(source, kind, None, tuple(rejected.problems))
    return Parsed(source, kind, importing.propose_rubric(draft))


async def read_document(data: bytes, *, filename: str | None) -> Parsed:
    """An uploaded assignment document: the plain-text format (.txt, or .md read as plain
    text), structured .json/.toml, or a Word .docx (its text extracted as for papers). The
    kind comes from the bytes, and for text from the name's extension."""
    if not data:
        raise Invalid(problems=[Problem("is empty; choose the assignment document", field="file")])
    if data.startswith(b"PK") or data.startswith(documents.OLE_MAGIC):
        extracted = await documents.extract_bounded(data)
        if extracted.kind is not documents.DocumentKind.docx:  # pragma: no cover - sniffed
            raise Invalid(problems=[Problem(f"must be {UPLOAD_KINDS}", field="file")])
        return parse_source(extracted.text, "text")
    if data[:1024].lstrip().startswith(b"%PDF-"):
        raise Invalid(
            problems=[
                Problem(
                    f"is a PDF; upload the document it was made from ({UPLOAD_KINDS})",
                    field="file",
                )
            ]
        )
    try:
        source = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Invalid(
            problems=[
                Problem(
                    f"is not UTF-8 text or a Word document; save it as {UPLOAD_KINDS}",
                    field="file",
                )
            ]
        ) from None
    source = source.replace("\r\n", "\n").replace("\r", "\n")
    return parse_source(source, _format_of(source, filename))


# --- the rubric as edited ------------------------------------------------------------------


@dataclass(frozen=True)
class ComponentInput:
    label: str
    description: str = ""
    question: int | None = None  # the position (from 1) of the question it comes from
    key: str | None = None  # an existing component's key (kept); None: from the label


@dataclass(frozen=True)
class RubricInput:
    # The position (from 1) of the reference that is the stance source; None: no source,
    # unless `keep_source` keeps a source that is not one of the references (older imports).
    source_reference: int | None
    components: tuple[ComponentInput, ...] = ()
    keep_source: str | None = None


def source_reference_of(source: str | None, references: Sequence[str]) -> int | None:
    """Which reference a stored stance source is (its position), if any."""
    if not source:
        return None
    wanted = " ".join(source.split())
    for position, citation in enumerate(references, start=1):
        if wanted in (" ".join(citation.split()), importing.short_citation(citation)):
            return position
    return None


def rubric_input_of(draft: AssignmentDraft) -> RubricInput:
    """The draft's rubric (given, or proposed) as the editor's input."""
    position = source_reference_of(draft.stance_source, draft.references)
    return RubricInput(
        source_reference=position,
        keep_source=draft.stance_source if position is None else None,
        components=tuple(
            ComponentInput(c.label, c.description, c.question, None) for c in draft.rubric
        ),
    )


def _one_line(value: str) -> str:
    return " ".join(value.split())


def _check_rubric(
    rubric: RubricInput, *, references: Sequence[str], question_count: int, kept_keys: set[str]
) -> tuple[str | None, list[RubricComponentDraft]]:
    """The stance source and components to store, keys kept or derived; Invalid (every
    problem, each on its form field) otherwise."""
    problems: list[Problem] = []
    source: str | None = None
    if rubric.source_reference is not None:
        if 1 <= rubric.source_reference <= len(references):
            source = importing.short_citation(references[rubric.source_reference - 1])
        else:
            problems.append(Problem("pick one of the references", field="stance_source"))
    elif rubric.keep_source:
        source = _one_line(rubric.keep_source)[:300] or None
    if len(rubric.components) > MAX_RUBRIC_COMPONENTS:
        problems.append(
            Problem(f"at most {MAX_RUBRIC_COMPONENTS} components are allowed", field="components")
        )
    if rubric.components and source is None and not problems:
        problems.append(
            Problem(
                "pick the source the components are judged against (add references to the "
                "assignment if the list is empty)",
                field="stance_source",
            )
        )
    components: list[RubricComponentDraft] = []
    used: set[str] = set()
    for index, component in enumerate(rubric.components):
        where = f"components[{index}]"
        label = _one_line(component.label)
        description = component.description.strip()
        if not label:
            problems.append(Problem("give the component a label", field=f"{where}.label"))
        elif len(label) > MAX_LABEL_CHARS:
            problems.append(
                Problem(f"must be at most {MAX_LABEL_CHARS} characters", field=f"{where}.label")
            )
        if len(description) > MAX_DESCRIPTION_CHARS:
            problems.append(
                Problem(
                    f"must be at most {MAX_DESCRIPTION_CHARS:,} characters",
                    field=f"{where}.description",
                )
            )
        if component.question is not None and not 1 <= component.question <= question_count:
            problems.append(Problem("pick one of the questions", field=f"{where}.question"))
        if component.key and component.key in kept_keys and component.key not in used:
            key = component.key
        else:
            base = importing.slugify(label) or f"component-{index + 1}"
            key = importing.unique_key(base[:40].rstrip("-") or base, used | kept_keys)
        used.add(key)
        components.append(RubricComponentDraft(key, label, description, component.question))
    if problems:
        raise Invalid(problems=problems)
    return source, components


# --- creating from a draft -----------------------------------------------------------------


def _check_draft(draft: AssignmentDraft) -> AssignmentDraft:
    """The edited draft, trimmed; Invalid with a problem per form field otherwise."""
    problems: list[Problem] = []
    title = _one_line(draft.title)
    if not title:
        problems.append(Problem("give the assignment a title", field="title"))
    elif len(title) > MAX_TITLE_CHARS:
        problems.append(Problem(f"must be at most {MAX_TITLE_CHARS} characters", field="title"))
    questions = [QuestionDraft(q.prompt.strip()) for q in draft.questions if q.prompt.strip()]
    if not questions:
        problems.append(Problem("add at least one question", field="questions"))
    elif len(questions) > MAX_QUESTIONS:
        problems.append(Problem(f"at most {MAX_QUESTIONS} questions are allowed", "questions"))
    for index, question in enumerate(questions):
        if len(question.prompt) > MAX_QUESTION_CHARS:
            problems.append(
                Problem(
                    f"must be at most {MAX_QUESTION_CHARS:,} characters",
                    field=f"questions[{index}]",
                )
            )
    references = [_one_line(r) for r in draft.references if r.strip()]
    if len(references) > MAX_REFERENCES:
        problems.append(Problem(f"at most {MAX_REFERENCES} references", field="references"))
    long = [i + 1 for i, r in enumerate(references) if len(r) > MAX_REFERENCE_CHARS]
    if long:
        problems.append(
            Problem(
                f"reference {long[0]} is longer than {MAX_REFERENCE_CHARS:,} characters",
                field="references",
            )
        )
    if not 1 <= draft.reviews_per_paper <= 10:
        problems.append(Problem("must be between 1 and 10", field="reviews_per_paper"))
    if problems:
        raise Invalid(problems=problems)
    return replace(
        draft,
        title=title,
        instructions=draft.instructions.strip(),
        questions=tuple(questions),
        sample_paper=(draft.sample_paper or "").strip() or None,
        references=tuple(references),
    )


async def create_assignment(
    session: AsyncSession,
    *,
    actor: Actor,
    cohort: Cohort,
    draft: AssignmentDraft,
    rubric: RubricInput,
) -> Assignment:
    """Cohort staff create an assignment (phase draft) from the edited parse and rubric."""
    if not policy.can_manage_cohort(actor, cohort):
        raise NotFound("No such cohort.")
    problems: list[Problem] = []
    try:
        draft = _check_draft(draft)
    except Invalid as error:
        problems.extend(error.problems)
    try:
        source, components = _check_rubric(
            rubric,
            references=draft.references,
            question_count=len(draft.questions),
            kept_keys=set(),
        )
    except Invalid as error:
        problems.extend(error.problems)
    if problems:
        raise Invalid(problems=problems)
    made = await assignments.import_assignment(
        session,
        actor=actor,
        cohort=cohort,
        draft=replace(draft, stance_source=source, rubric=tuple(components)),
    )
    await audit.record(
        session,
        actor=actor,
        cohort_id=cohort.id,
        action="assignment.create",
        target_type="assignment",
        target_id=made.id or 0,
        details={
            "title": made.title,
            "questions": len(draft.questions),
            "rubric": [c.key for c in components],
            "source": source,
        },
    )
    return made


# --- editing an existing assignment --------------------------------------------------------


async def _managed(
    session: AsyncSession, *, actor: Actor, assignment_id: int
) -> tuple[Assignment, Cohort]:
    assignment = await policy.access_assignment(session, actor=actor, assignment_id=assignment_id)
    cohort = await session.get(Cohort, assignment.cohort_id)
    if cohort is None or not policy.can_manage_cohort(actor, cohort):
        raise NotFound("No such assignment.")
    return assignment, cohort


def _check_version(assignment: Assignment, version: int) -> None:
    if version != assignment.version:
        raise StaleVersion(assignment.version, what="this assignment")


def questions_locked_reason(assignment: Assignment) -> str | None:
    """Why the questions can no longer change, or None while the assignment is a draft."""
    if assignment.phase is Phase.draft:
        return None
    return (
        f"The questions are fixed: the assignment is {assignment.phase.value}, so students "
        "may already be writing and discussing against them. Move it back to draft to change "
        "them."
        if assignment.phase is Phase.open
        else f"The questions are fixed: the assignment is in {assignment.phase.value}, and "
        "papers and reviews answer them as they are."
    )


async def review_count(session: AsyncSession, *, assignment_id: int) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Review)
        .join(ReviewTask, col(ReviewTask.id) == col(Review.task_id))
        .where(ReviewTask.assignment_id == assignment_id)
    )
    return int(count or 0)


async def rubric_locked_reason(session: AsyncSession, *, assignment_id: int) -> str | None:
    """Why the rubric can no longer change (reviews are written against it), or None."""
    count = await review_count(session, assignment_id=assignment_id)
    if not count:
        return None
    return (
        f"The rubric is fixed: {count} review{'s' if count != 1 else ''} "
        f"{'have' if count != 1 else 'has'} been started against it, and changing a "
        "component would change what those reviewers answered."
    )


@dataclass(frozen=True)
class QuestionInput:
    id: int | None  # an existing question, or None for a new one
    prompt: str


async def _renumber(
    session: AsyncSession, model: type[Question] | type[RubricComponent], assignment_id: int
) -> None:
    # Positions are unique per assignment: move every row out of the way first.
    await session.execute(
        update(model)
        .where(col(model.assignment_id) == assignment_id)
        .values(position=-col(model.position) - 1000)
    )


async def update_questions(
    session: AsyncSession,
    *,
    actor: Actor,
    assignment_id: int,
    version: int,
    questions: Sequence[QuestionInput],
) -> Assignment:
    """Replace the questions with `questions`, in that order: prompts edited, questions
    added, and removed when nobody has started a thread under them. Only while the
    assignment is a draft."""
    assignment, cohort = await _managed(session, actor=actor, assignment_id=assignment_id)
    await lock(session, assignment)  # the checks and the write, as one step
    if (reason := questions_locked_reason(assignment)) is not None:
        raise Conflict(reason)
    _check_version(assignment, version)
    existing = {
        q.id: q
        for q in (
            await session.execute(select(Question).where(Question.assignment_id == assignment_id))
        ).scalars()
    }
    problems: list[Problem] = []
    kept = [q for q in questions if q.prompt.strip()]
    if not kept:
        problems.append(Problem("keep at least one question", field="questions"))
    if len(kept) > MAX_QUESTIONS:
        problems.append(Problem(f"at most {MAX_QUESTIONS} questions", field="questions"))
    seen: set[int] = set()
    for index, question in enumerate(questions):
        if question.id is not None and (question.id not in existing or question.id in seen):
            problems.append(Problem("is not a question of this assignment", f"questions[{index}]"))
        if question.id is not None:
            seen.add(question.id)
        if len(question.prompt.strip()) > MAX_QUESTION_CHARS:
            problems.append(
                Problem(f"must be at most {MAX_QUESTION_CHARS:,} characters", f"questions[{index}]")
            )
    removed = [qid for qid in existing if qid not in {q.id for q in kept}]
    if removed:
        threads = await session.scalar(
            select(func.count()).select_from(Thread).where(col(Thread.question_id).in_(removed))
        )
        if threads:
            problems.append(
                Problem(
                    "a question with discussion threads cannot be removed; edit it instead",
                    field="questions",
                )
            )
    if problems:
        raise Invalid(problems=problems)
    rendered = [
        await render_markdown_bounded(q.prompt.strip(), field=f"questions[{i}]")
        for i, q in enumerate(kept)
    ]
    if removed:
        await session.execute(
            update(RubricComponent)
            .where(col(RubricComponent.question_id).in_(removed))
            .values(question_id=None)
        )
        for qid in removed:
            await session.delete(existing[qid])
    await session.flush()
    await _renumber(session, Question, assignment_id)
    for position, (question, html) in enumerate(zip(kept, rendered, strict=True), start=1):
        row = existing[question.id] if question.id is not None else None
        if row is None:
            row = Question(
                assignment_id=assignment_id, position=position, prompt="", prompt_html=""
            )
            session.add(row)
        else:
            await session.refresh(row, ["position"])
        row.position, row.prompt, row.prompt_html = position, question.prompt.strip(), html
    assignment.version += 1
    assignment.updated_at = utcnow()
    await audit.record(
        session,
        actor=actor,
        cohort_id=cohort.id,
        action="assignment.questions",
        target_type="assignment",
        target_id=assignment_id,
        details={"questions": len(kept), "removed": len(removed), "version": assignment.version},
    )
    await session.flush()
    return assignment


async def update_rubric(
    session: AsyncSession, *, actor: Actor, assignment_id: int, version: int, rubric: RubricInput
) -> Assignment:
    """Replace the stance source and components (kept keys stay, so links to them hold);
    refused once a review has been started against the rubric."""
    assignment, cohort = await _managed(session, actor=actor, assignment_id=assignment_id)
    await lock(session, assignment)  # the checks and the write, as one step
    if (reason := await rubric_locked_reason(session, assignment_id=assignment_id)) is not None:
        raise Conflict(reason)
    _check_version(assignment, version)
    references = [
        r.citation
        for r in (
            await session.execute(
                select(AssignmentReference)
                .where(AssignmentReference.assignment_id == assignment_id)
                .order_by(col(AssignmentReference.position))
            )
        ).scalars()
    ]
    questions = list(
        (
            await session.execute(
                select(Question)
                .where(Question.assignment_id == assignment_id)
                .order_by(col(Question.position))
            )
        ).scalars()
    )
    current = {
        c.key: c
        for c in (
            await session.execute(
                select(RubricComponent).where(RubricComponent.assignment_id == assignment_id)
            )
        ).scalars()
    }
    source, components = _check_rubric(
        rubric, references=references, question_count=len(questions), kept_keys=set(current)
    )
    wanted = {c.key for c in components}
    for key, gone in current.items():
        if key not in wanted:
            await session.delete(gone)
    await session.flush()
    await _renumber(session, RubricComponent, assignment_id)
    for position, component in enumerate(components, start=1):
        question_id = questions[component.question - 1].id if component.question else None
        row = current.get(component.key)
        if row is None:
            row = RubricComponent(
                assignment_id=assignment_id, position=position, key=component.key, label=""
            )
            session.add(row)
        else:
            await session.refresh(row, ["position"])
        row.position, row.label = position, component.label
        row.description, row.question_id = component.description, question_id
    assignment.stance_source = source
    assignment.version += 1
    assignment.updated_at = utcnow()
    await audit.record(
        session,
        actor=actor,
        cohort_id=cohort.id,
        action="assignment.rubric",
        target_type="assignment",
        target_id=assignment_id,
        details={
            "source": source,
            "components": [c.key for c in components],
            "version": assignment.version,
        },
    )
    await session.flush()
    return assignment


# --- copying to another cohort -------------------------------------------------------------


async def copy_targets(
    session: AsyncSession, *, actor: Actor, assignment: Assignment
) -> list[Cohort]:
    """The other cohorts the actor may copy this assignment into (those they manage)."""
    query = select(Cohort).where(Cohort.id != assignment.cohort_id)
    if not actor.is_administrator:
        staff = [cid for cid, role in actor.roles.items() if role.is_staff]
        query = query.where(col(Cohort.id).in_(staff))
    rows = await session.execute(query.order_by(col(Cohort.name)).limit(200))
    return [c for c in rows.scalars() if policy.can_manage_cohort(actor, c)]


# Consent given by the author: copied (shown as "A classmate"); pending and declined are not.
_COPIED_ATTRIBUTIONS = (Attribution.anonymous, Attribution.named, Attribution.assignment)


async def copy_assignment(
    session: AsyncSession, *, actor: Actor, assignment_id: int, cohort_slug: str
) -> Assignment:
    """A copy for another cohort's next term: title, instructions, questions, sample paper,
    references, rubric (with its links to questions) and settings; a draft without
    deadlines. Published exemplars come along as snapshots without their author (the new
    cohort never learns who wrote them): those the author agreed to show, and the sample
    paper's."""
    source, _ = await _managed(session, actor=actor, assignment_id=assignment_id)
    target = await policy.access_cohort(session, actor=actor, slug=cohort_slug)
    if not policy.can_manage_cohort(actor, target):
        raise NotFound("No such cohort.")
    if target.id == source.cohort_id:
        raise Invalid(problems=[Problem("pick another cohort than this one", field="cohort")])
    assert target.id is not None and source.id is not None
    copy = Assignment(
        cohort_id=target.id,
        title=source.title,
        instructions=source.instructions,
        instructions_html=source.instructions_html,
        reviews_per_paper=source.reviews_per_paper,
        allow_anonymous_posts=source.allow_anonymous_posts,
        late_policy=source.late_policy,
        auto_advance=source.auto_advance,
        stance_source=source.stance_source,
        sample_paper=source.sample_paper,
        sample_paper_html=source.sample_paper_html,
    )
    session.add(copy)
    await session.flush()
    assert copy.id is not None
    question_map: dict[int | None, int | None] = {None: None}
    for q in (
        await session.execute(
            select(Question)
            .where(Question.assignment_id == source.id)
            .order_by(col(Question.position))
        )
    ).scalars():
        new_q = Question(
            assignment_id=copy.id,
            position=q.position,
            prompt=q.prompt,
            prompt_html=q.prompt_html,
            post_first=q.post_first,
        )
        session.add(new_q)
        await session.flush()
        question_map[q.id] = new_q.id
    for c in (
        await session.execute(
            select(RubricComponent).where(RubricComponent.assignment_id == source.id)
        )
    ).scalars():
        session.add(
            RubricComponent(
                assignment_id=copy.id,
                position=c.position,
                key=c.key,
                label=c.label,
                description=c.description,
                question_id=question_map.get(c.question_id),
            )
        )
    for r in (
        await session.execute(
            select(AssignmentReference).where(AssignmentReference.assignment_id == source.id)
        )
    ).scalars():
        session.add(
            AssignmentReference(assignment_id=copy.id, position=r.position, citation=r.citation)
        )
    exemplars = (
        (
            await session.execute(
                select(Exemplar)
                .where(
                    Exemplar.assignment_id == source.id,
                    Exemplar.status == ExemplarStatus.published,
                    col(Exemplar.attribution).in_(_COPIED_ATTRIBUTIONS),
                )
                .order_by(col(Exemplar.position), col(Exemplar.id))
            )
        )
        .scalars()
        .all()
    )
    for e in exemplars:
        session.add(
            Exemplar(
                public_id=secrets.token_urlsafe(9),
                assignment_id=copy.id,
                question_id=question_map.get(e.question_id),
                kind=e.kind,
                title=e.title,
                body=e.body,
                body_html=e.body_html,
                details=dict(e.details),
                note=e.note,
                note_html=e.note_html,
                position=e.position,
                status=ExemplarStatus.published,
                attribution=(
                    Attribution.assignment
                    if e.attribution is Attribution.assignment
                    else Attribution.anonymous
                ),
                attribution_at=utcnow(),
                created_by_id=actor.user_id,
            )
        )
    await audit.record(
        session,
        actor=actor,
        cohort_id=target.id,
        action="assignment.copy",
        target_type="assignment",
        target_id=copy.id,
        details={
            "from_assignment": source.id,
            "from_cohort": source.cohort_id,
            "exemplars": len(exemplars),
        },
    )
    await session.flush()
    return copy
