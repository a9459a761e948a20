"""Stance reviews: the reviewer's judgment of one paper, defined by the assignment's rubric.

A review has an overall stance toward the rubric's source (ordinal, or "does not engage"),
a stance per rubric component, evidence quotes (exact passages of the paper, matched
whitespace-tolerantly and stored with offsets), a rationale and a suggestion. Drafts save
as the reviewer goes (optimistic `version`); submitting checks completeness and locks the
review until a moderator reopens it. In the feedback phase the author reads the submitted
reviews as "Reviewer N" with the evidence highlighted in their text, and rates each.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services import allocation, audit, events, papers, policy, presenters, stance, webhooks
from services.db import lock
from services.errors import Conflict, Invalid, NotFound, Problem, StaleVersion
from services.models import (
    Assignment,
    ComponentStance,
    Event,
    EvidenceQuote,
    Paper,
    PaperVersion,
    Review,
    ReviewComponent,
    ReviewRating,
    ReviewTask,
    RubricComponent,
    Stance,
    TaskStatus,
    utcnow,
)
from services.policy import Actor
from services.views import (
    AllocationPaperView,
    AllocationTaskView,
    AllocationView,
    ComponentStanceView,
    DueItemView,
    EvidenceView,
    FeedbackReviewView,
    FeedbackView,
    RatingView,
    ReceivedRatingView,
    ReviewDraftView,
    RubricComponentView,
    TaskDetailView,
    TaskSummaryView,
)

MAX_TEXT = 20_000
MAX_QUOTES = 60
MAX_QUOTE_CHARS = 2_000


# --- input ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuoteInput:
    component: str | None  # rubric component key; None: the overall stance
    text: str


@dataclass(frozen=True)
class ReviewInput:
    overall_stance: Stance | None = None
    components: dict[str, ComponentStance] = field(default_factory=dict)
    evidence: Sequence[QuoteInput] = ()
    rationale: str = ""
    suggestion: str = ""


def find_passage(paper_text: str, quote: str) -> tuple[int, int] | None:
    """Where `quote` occurs in the paper, ignoring differences in whitespace (a selection
    in the browser joins lines and collapses runs of spaces)."""
    words = quote.split()
    if not words:
        return None
    pattern = r"\s+".join(re.escape(w) for w in words)
    match = re.search(pattern, paper_text)
    return (match.start(), match.end()) if match else None


# --- loading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskDetail:
    task: ReviewTask
    assignment: Assignment
    paper: Paper
    version: PaperVersion
    rubric: list[RubricComponent]
    review: Review | None
    components: list[ReviewComponent]
    quotes: list[EvidenceQuote]
    rating: ReviewRating | None


async def _rubric(session: AsyncSession, assignment_id: int) -> list[RubricComponent]:
    rows = await session.execute(
        select(RubricComponent)
        .where(RubricComponent.assignment_id == assignment_id)
        .order_by(col(RubricComponent.position))
    )
    return list(rows.scalars())


async def _review_parts(
    session: AsyncSession, review: Review | None
) -> tuple[list[ReviewComponent], list[EvidenceQuote], ReviewRating | None]:
    if review is None:
        return [], [], None
    comps = await session.execute(
        select(ReviewComponent).where(ReviewComponent.review_id == review.id)
    )
    quotes = await session.execute(
        select(EvidenceQuote)
        .where(EvidenceQuote.review_id == review.id)
        .order_by(col(EvidenceQuote.start), col(EvidenceQuote.id))
    )
    rating = await session.scalar(select(ReviewRating).where(ReviewRating.review_id == review.id))
    return list(comps.scalars()), list(quotes.scalars()), rating


async def _version(session: AsyncSession, paper: Paper, number: int) -> PaperVersion:
    version = await session.scalar(
        select(PaperVersion).where(
            PaperVersion.paper_id == paper.id, PaperVersion.version == number
        )
    )
    if version is None:  # pragma: no cover - versions are never deleted
        raise NotFound("No such paper.")
    return version


async def get_task(session: AsyncSession, *, actor: Actor, task_id: str) -> TaskDetail:
    """A review task, its paper (as the reviewer sees it) and the review so far."""
    task = await policy.access_task(session, actor=actor, public_id=task_id)
    assignment = await session.get(Assignment, task.assignment_id)
    paper = await session.get(Paper, task.paper_id)
    assert assignment is not None and paper is not None
    review = await session.scalar(select(Review).where(Review.task_id == task.id))
    # A review is of the version it was started on; a new task reads the current one.
    version = await _version(
        session, paper, review.paper_version if review else paper.current_version
    )
    comps, quotes, rating = await _review_parts(session, review)
    return TaskDetail(
        task=task,
        assignment=assignment,
        paper=paper,
        version=version,
        rubric=await _rubric(session, assignment.id or 0),
        review=review,
        components=comps,
        quotes=quotes,
        rating=rating,
    )


def _rating_view(rating: ReviewRating | None, assignment: Assignment) -> ReceivedRatingView | None:
    # Reviewers learn how they were rated only once feedback is released.
    if rating is None or not policy.phase_allows(assignment, "read_feedback"):
        return None
    return ReceivedRatingView(rating=rating.rating, comment=rating.comment)


def _draft_view(
    review: Review,
    comps: list[ReviewComponent],
    quotes: list[EvidenceQuote],
    rubric: list[RubricComponent],
) -> ReviewDraftView:
    key_of = {c.id: c.key for c in rubric}
    order = {c.id: c.position for c in rubric}
    return ReviewDraftView(
        id=review.public_id,
        overall_stance=review.overall_stance,
        components=[
            ComponentStanceView(key=key_of[c.component_id], stance=c.stance)
            for c in sorted(comps, key=lambda c: order.get(c.component_id, 0))
        ],
        evidence=_evidence(quotes, key_of),
        rationale=review.rationale,
        suggestion=review.suggestion,
        version=review.version,
        submitted=review.submitted_at is not None,
    )


def _evidence(quotes: list[EvidenceQuote], key_of: dict[int | None, str]) -> list[EvidenceView]:
    return [
        EvidenceView(
            component=key_of[q.component_id] if q.component_id is not None else None,
            text=q.text,
            start=q.start,
            end=q.end,
        )
        for q in quotes
    ]


def present_task(detail: TaskDetail, *, actor: Actor) -> TaskDetailView:
    review = detail.review
    return TaskDetailView(
        id=detail.task.public_id,
        assignment_id=detail.assignment.id or 0,
        paper=presenters.paper_label(detail.paper.code),
        paper_text=detail.version.body,
        status=detail.task.status,
        source=detail.assignment.stance_source,
        rubric=[
            RubricComponentView(key=c.key, label=c.label, description=c.description)
            for c in detail.rubric
        ],
        review=(
            _draft_view(review, detail.components, detail.quotes, detail.rubric)
            if review is not None
            else None
        ),
        can_edit=policy.can_edit_review(actor, detail.task, detail.assignment),
        rating=_rating_view(detail.rating, detail.assignment),
    )


async def list_my_tasks(
    session: AsyncSession, *, actor: Actor, assignment_id: int
) -> list[TaskSummaryView]:
    """The actor's own review tasks for an assignment (staff: theirs too, usually none)."""
    assignment = await policy.access_assignment(session, actor=actor, assignment_id=assignment_id)
    if actor.user_id is None:
        raise NotFound("No such assignment.")
    rows = await session.execute(
        select(ReviewTask, Paper.code, ReviewRating)
        .join(Paper, col(Paper.id) == ReviewTask.paper_id)
        .outerjoin(Review, col(Review.task_id) == ReviewTask.id)
        .outerjoin(ReviewRating, col(ReviewRating.review_id) == Review.id)
        .where(
            policy.visible_tasks(actor, assignment),
            col(ReviewTask.reviewer_id) == actor.user_id,
        )
        .order_by(col(Paper.code))
    )
    return [
        TaskSummaryView(
            id=task.public_id,
            paper=presenters.paper_label(code),
            status=task.status,
            rating=_rating_view(rating, assignment),
        )
        for task, code, rating in rows.all()
    ]


# --- saving --------------------------------------------------------------------------------


def _clean_text(value: str, field_name: str, problems: list[Problem]) -> str:
    if "\x00" in value:
        problems.append(Problem("must not contain NUL characters", field=field_name))
    if len(value) > MAX_TEXT:
        problems.append(Problem(f"must be at most {MAX_TEXT:,} characters", field=field_name))
    return value.replace("\r\n", "\n").strip()


async def save_review(
    session: AsyncSession,
    *,
    actor: Actor,
    task_id: str,
    data: ReviewInput,
    expected_version: int | None,
    submit: bool = False,
) -> TaskDetail:
    """The reviewer saves their draft (every quote must be a passage of the paper) and, with
    `submit`, submits it once complete, which locks it. `expected_version` is the version
    the reviewer last saw: a stale one is refused (409) so two tabs never overwrite."""
    detail = await get_task(session, actor=actor, task_id=task_id)
    # One save of a task at a time (PostgreSQL): two first saves would both insert a review.
    await lock(session, detail.task)
    detail = await get_task(session, actor=actor, task_id=task_id)
    task, assignment, rubric = detail.task, detail.assignment, detail.rubric
    if not policy.can_edit_review(actor, task, assignment):
        raise Conflict(
            "This review cannot be changed now (it is submitted, or review is not open)."
        )
    problems: list[Problem] = []
    by_key = {c.key: c for c in rubric}
    for key in data.components:
        if key not in by_key:
            problems.append(Problem("is not a component of this rubric", field=f"components.{key}"))
    rationale = _clean_text(data.rationale, "rationale", problems)
    suggestion = _clean_text(data.suggestion, "suggestion", problems)
    if len(data.evidence) > MAX_QUOTES:
        problems.append(Problem(f"at most {MAX_QUOTES} quotes", field="evidence"))
    paper_text = detail.version.body
    located: list[tuple[int | None, str, int, int]] = []
    for i, quote in enumerate(data.evidence[:MAX_QUOTES]):
        where = f"evidence[{i}]"
        if quote.component is not None and quote.component not in by_key:
            problems.append(
                Problem("names no component of this rubric", field=f"{where}.component")
            )
            continue
        if len(quote.text) > MAX_QUOTE_CHARS:
            problems.append(Problem("is too long for a quote", field=f"{where}.text"))
            continue
        span = find_passage(paper_text, quote.text)
        if span is None:
            problems.append(
                Problem("is not a passage of the paper (quote it exactly)", field=f"{where}.text")
            )
            continue
        comp_id = by_key[quote.component].id if quote.component is not None else None
        located.append((comp_id, paper_text[span[0] : span[1]], span[0], span[1]))
    if submit and not problems:
        problems.extend(_completeness(data, rubric, located))
    if problems:
        raise Invalid(problems=problems)

    review = detail.review
    now = utcnow()
    if review is None:
        if expected_version not in (None, 0):
            raise StaleVersion(0, what="this review")
        review = Review(
            public_id=allocation.new_public_id(),
            task_id=task.id or 0,
            paper_version=detail.version.version,
            version=1,
        )
        session.add(review)
        await session.flush()
    else:
        if expected_version is not None and expected_version != review.version:
            raise StaleVersion(review.version, what="this review")
        # Optimistic lock in the database as well: the row must still be at our version.
        updated = await session.execute(
            sa.update(Review)
            .where(col(Review.id) == review.id, col(Review.version) == review.version)
            .values(version=review.version + 1)
        )
        if updated.rowcount != 1:  # type: ignore[attr-defined]
            raise StaleVersion(review.version + 1, what="this review")
        await session.refresh(review)
    review.overall_stance = data.overall_stance
    review.rationale = rationale
    review.suggestion = suggestion
    review.updated_at = now
    await session.execute(
        sa.delete(ReviewComponent).where(col(ReviewComponent.review_id) == review.id)
    )
    await session.execute(sa.delete(EvidenceQuote).where(col(EvidenceQuote.review_id) == review.id))
    assert review.id is not None
    session.add_all(
        ReviewComponent(review_id=review.id, component_id=by_key[key].id or 0, stance=stance)
        for key, stance in data.components.items()
    )
    session.add_all(
        EvidenceQuote(review_id=review.id, component_id=cid, text=text, start=start, end=end)
        for cid, text, start, end in located
    )
    if task.status is TaskStatus.assigned:
        task.status = TaskStatus.started
        task.started_at = now
    if submit:
        review.submitted_at = now
        task.status = TaskStatus.submitted
        task.submitted_at = now
    session.add_all([review, task])
    await session.flush()
    if submit or detail.review is None:
        await events.record(
            session,
            channel=events.assignment_channel(assignment.id or 0),
            assignment_id=assignment.id or 0,
            kind="task.submitted" if submit else "task.started",
            task_id=task.id,
        )
    if submit:
        await webhooks.review_submitted(session, assignment=assignment)
    return await get_task(session, actor=actor, task_id=task_id)


def _completeness(
    data: ReviewInput,
    rubric: list[RubricComponent],
    located: list[tuple[int | None, str, int, int]],
) -> list[Problem]:
    problems = []
    quoted = {cid for cid, *_ in located}
    if data.overall_stance is None:
        problems.append(Problem("choose the paper's overall stance", field="overall_stance"))
    elif data.overall_stance is not Stance.does_not_engage and None not in quoted:
        problems.append(
            Problem("quote at least one passage for the overall stance", field="evidence")
        )
    for c in rubric:
        stance = data.components.get(c.key)
        if stance is None:
            problems.append(Problem("choose a stance", field=f"components.{c.key}"))
        elif stance is not ComponentStance.not_addressed and c.id not in quoted:
            problems.append(
                Problem("quote at least one passage for this stance", field=f"components.{c.key}")
            )
    if not data.rationale.strip():
        problems.append(Problem("explain your judgment", field="rationale"))
    return problems


async def reopen_review(session: AsyncSession, *, actor: Actor, task_id: str) -> TaskDetail:
    """Review staff reopen a submitted review so its reviewer can change it."""
    task = await policy.access_task(session, actor=actor, public_id=task_id)
    assignment = await session.get(Assignment, task.assignment_id)
    assert assignment is not None
    if not policy.can_manage_reviews(actor, assignment):
        raise NotFound("No such review task.")
    if task.status is not TaskStatus.submitted:
        raise Conflict("Only a submitted review can be reopened.")
    review = await session.scalar(select(Review).where(Review.task_id == task.id))
    assert review is not None
    review.submitted_at = None
    review.version += 1
    task.status = TaskStatus.started
    task.submitted_at = None
    session.add_all([review, task])
    await audit.record(
        session,
        actor=actor,
        cohort_id=assignment.cohort_id,
        action="review.reopen",
        target_type="review_task",
        target_id=task.public_id,
    )
    await events.record(
        session,
        channel=events.assignment_channel(assignment.id or 0),
        assignment_id=assignment.id or 0,
        kind="task.reopened",
        task_id=task.id,
    )
    return await get_task(session, actor=actor, task_id=task_id)


# --- feedback ------------------------------------------------------------------------------


def highlight(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """The paper's text as HTML (escaped, paragraphs kept) with each span in <mark>."""
    marks = sorted(spans)
    merged: list[list[int]] = []
    for start, end in marks:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, pos = [], 0
    for start, end in merged:
        out.append(html.escape(text[pos:start]))
        out.append(f'<mark class="evidence">{html.escape(text[start:end])}</mark>')
        pos = end
    out.append(html.escape(text[pos:]))
    return "".join(out)


async def _my_submitted_paper(
    session: AsyncSession, *, actor: Actor, assignment_id: int
) -> tuple[Assignment, Paper]:
    state = await papers.get_my_paper(session, actor=actor, assignment_id=assignment_id)
    paper = state.paper
    if paper is None or paper.submitted_at is None:
        raise NotFound("You have no submitted paper in this assignment.")
    if not policy.can_read_feedback(actor, paper, state.assignment):
        raise NotFound("Feedback is not released yet.")
    return state.assignment, paper


async def my_feedback(session: AsyncSession, *, actor: Actor, assignment_id: int) -> FeedbackView:
    """The submitted reviews of the actor's paper, as "Reviewer N", with evidence marked."""
    assignment, paper = await _my_submitted_paper(session, actor=actor, assignment_id=assignment_id)
    rubric = await _rubric(session, assignment.id or 0)
    key_of: dict[int | None, str] = {c.id: c.key for c in rubric}
    rows = await session.execute(
        select(Review, ReviewTask.reviewer_number)
        .join(ReviewTask, col(ReviewTask.id) == Review.task_id)
        .where(
            ReviewTask.paper_id == paper.id,
            ReviewTask.status == TaskStatus.submitted,
            col(Review.submitted_at).is_not(None),
        )
        .order_by(col(ReviewTask.reviewer_number))
    )
    version = await _version(session, paper, paper.current_version)
    spans: list[tuple[int, int]] = []
    reviews = []
    for review, number in rows.all():
        comps, quotes, rating = await _review_parts(session, review)
        if review.paper_version == version.version:
            spans.extend((q.start, q.end) for q in quotes)
        draft = _draft_view(review, comps, quotes, rubric)
        reviews.append(
            FeedbackReviewView(
                id=review.public_id,
                reviewer=presenters.reviewer_label(number),
                overall_stance=review.overall_stance,
                components=draft.components,
                evidence=_evidence(quotes, key_of),
                rationale=review.rationale,
                suggestion=review.suggestion,
                my_rating=(
                    ReceivedRatingView(rating=rating.rating, comment=rating.comment)
                    if rating
                    else None
                ),
            )
        )
    return FeedbackView(
        assignment_id=assignment.id or 0,
        paper_html=highlight(version.body, spans),
        reviews=reviews,
        can_rate=policy.can_rate_review(actor, paper, assignment),
    )


async def rate_review(
    session: AsyncSession, *, actor: Actor, review_id: str, rating: int, comment: str = ""
) -> RatingView:
    """The author rates how helpful one review of their paper was (1-5, optional comment)."""
    row = (
        await session.execute(
            select(Review, ReviewTask, Paper, Assignment)
            .join(ReviewTask, col(ReviewTask.id) == Review.task_id)
            .join(Paper, col(Paper.id) == ReviewTask.paper_id)
            .join(Assignment, col(Assignment.id) == Paper.assignment_id)
            .where(Review.public_id == review_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFound("No such review.")
    review, task, paper, assignment = row
    visible = (
        policy.can_view_assignment(actor, assignment)
        and policy.can_read_feedback(actor, paper, assignment)
        and review.submitted_at is not None
        and task.status is TaskStatus.submitted
    )
    if not visible:
        raise NotFound("No such review.")
    if not policy.can_rate_review(actor, paper, assignment):
        raise Conflict("Reviews can be rated only during the feedback phase.")
    problems = []
    if not 1 <= rating <= 5:
        problems.append(Problem("must be a whole number from 1 to 5", field="rating"))
    comment = _clean_text(comment, "comment", problems)
    if problems:
        raise Invalid(problems=problems)
    existing = await session.scalar(select(ReviewRating).where(ReviewRating.review_id == review.id))
    now = utcnow()
    if existing is None:
        existing = ReviewRating(review_id=review.id or 0, rating=rating, comment=comment)
    else:
        existing.rating, existing.comment, existing.updated_at = rating, comment, now
    session.add(existing)
    await session.flush()
    return RatingView(review=review.public_id, rating=rating, comment=comment)


async def allocation_view(
    session: AsyncSession, *, actor: Actor, assignment_id: int
) -> AllocationView:
    """The allocation as staff see it: papers by code, reviewers by number, no names. No
    late mark either: the participation sheet says whose paper was late, and the two
    together would name the paper's author without a reveal."""
    assignment = await policy.access_assignment(session, actor=actor, assignment_id=assignment_id)
    if not policy.can_manage_reviews(actor, assignment):
        raise NotFound("No such assignment.")
    rows = await session.execute(
        select(ReviewTask)
        .where(ReviewTask.assignment_id == assignment_id)
        .order_by(col(ReviewTask.reviewer_number))
    )
    by_paper: dict[int, list[ReviewTask]] = {}
    for task in rows.scalars():
        by_paper.setdefault(task.paper_id, []).append(task)
    views = [
        AllocationPaperView(
            id=p.public_id,
            paper=presenters.paper_label(p.code),
            submitted=p.submitted_at is not None,
            tasks=[
                AllocationTaskView(
                    id=t.public_id,
                    reviewer=presenters.reviewer_label(t.reviewer_number),
                    status=t.status,
                    by_hand=t.assigned_by_hand,
                )
                for t in by_paper.get(p.id or 0, [])
            ],
        )
        for p in await papers.list_papers(session, assignment_id=assignment_id)
    ]
    return AllocationView(
        assignment_id=assignment_id,
        phase=assignment.phase,
        reviews_per_paper=assignment.reviews_per_paper,
        papers=views,
        completion=await stance.completion(session, assignment_id=assignment_id),
    )


async def live_review_events(
    session: AsyncSession, *, assignment_id: int, batch: Sequence[Event], viewers: Sequence[Actor]
) -> list[list[tuple[int, str, str]]]:
    """One batch of an assignment's review events as each listener may see it, as (event id,
    event name, JSON) triples: staff get completion counts; a reviewer gets only their own
    tasks' changes (never a count or event that ticks when someone else works). A batch
    costs the assignment, the completion (once, if staff listen), the batch's tasks, and the
    task list of each reviewer whose task changed: not a query per listener."""
    assignment = await session.get(Assignment, assignment_id)
    if assignment is None:
        return [[] for _ in viewers]
    completion: str | None = None
    phase = orjson.dumps({"phase": assignment.phase.value}).decode()
    ids = {e.task_id for e in batch if e.task_id is not None}
    owners: dict[int, tuple[str, int]] = {}
    if ids:
        rows = await session.execute(
            select(ReviewTask.id, ReviewTask.public_id, ReviewTask.reviewer_id).where(
                col(ReviewTask.id).in_(ids)
            )
        )
        owners = {tid: (pub, reviewer) for tid, pub, reviewer in rows.all() if tid}
    reviewers = {reviewer for _, reviewer in owners.values()}
    tasks_of: dict[int, dict[str, TaskSummaryView]] = {}
    out: list[list[tuple[int, str, str]]] = []
    for actor in viewers:
        items: list[tuple[int, str, str]] = []
        out.append(items)
        if not policy.can_view_assignment(actor, assignment):
            continue
        if policy.can_manage_reviews(actor, assignment):
            if completion is None:
                done = await stance.completion(session, assignment_id=assignment_id)
                payload = {"kind": "completion", "completion": done.model_dump()}
                completion = orjson.dumps(payload).decode()
            items.append((batch[-1].id or 0, "completion", completion))
            continue
        me = actor.user_id
        if me is not None and me in reviewers and me not in tasks_of:
            mine = await list_my_tasks(session, actor=actor, assignment_id=assignment_id)
            tasks_of[me] = {t.id: t for t in mine}
        tasks = tasks_of.get(me or -1, {})
        for event in batch:
            if event.kind == "phase.changed":
                items.append((event.id or 0, "phase", phase))
                continue
            owner = owners.get(event.task_id or 0)
            task = tasks.get(owner[0]) if owner is not None and owner[1] == me else None
            if task is None:
                continue
            items.append((event.id or 0, "task", task.model_dump_json()))
    return out


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


async def whats_due(
    session: AsyncSession, *, actor: Actor, assignment: Assignment
) -> list[DueItemView]:
    """What this student has to do on the assignment now, and by when: write (or finish)
    their paper, the reviews they have not started or not finished, the reviews of their
    paper they have not rated yet. Only the student's own work is counted, never anyone
    else's (a count must not let one infer an author); staff get an empty list."""
    if actor.user_id is None or not policy.is_student_of(actor, assignment.cohort_id):
        return []
    assert assignment.id is not None
    items: list[DueItemView] = []
    paper = await session.scalar(
        select(Paper).where(Paper.assignment_id == assignment.id, Paper.author_id == actor.user_id)
    )
    may_write = policy.phase_allows(assignment, "write_paper") or (
        policy.phase_allows(assignment, "write_late_paper") and paper is None
    )
    if may_write and (paper is None or paper.submitted_at is None):
        text = "Write your paper" if paper is None else "Finish and submit your paper (draft saved)"
        items.append(DueItemView(kind="paper", text=text, due_at=assignment.paper_due_at))
    if policy.phase_allows(assignment, "review"):
        rows = (
            await session.execute(
                select(ReviewTask.status, sa.func.count())
                .where(
                    ReviewTask.assignment_id == assignment.id,
                    ReviewTask.reviewer_id == actor.user_id,
                    col(ReviewTask.status).in_((TaskStatus.assigned, TaskStatus.started)),
                )
                .group_by(ReviewTask.status)
            )
        ).all()
        counts = {TaskStatus(status): int(n) for status, n in rows}
        for status, words in (
            (TaskStatus.assigned, "not started"),
            (TaskStatus.started, "started, not submitted"),
        ):
            if n := counts.get(status, 0):
                items.append(
                    DueItemView(
                        kind="reviews",
                        text=f"{_plural(n, 'review')} {words}",
                        count=n,
                        due_at=assignment.review_due_at,
                    )
                )
    if paper is not None and policy.can_rate_review(actor, paper, assignment):
        unrated = await session.scalar(
            select(sa.func.count())
            .select_from(Review)
            .join(ReviewTask, col(ReviewTask.id) == Review.task_id)
            .outerjoin(ReviewRating, col(ReviewRating.review_id) == Review.id)
            .where(
                ReviewTask.paper_id == paper.id,
                ReviewTask.status == TaskStatus.submitted,
                col(Review.submitted_at).is_not(None),
                col(ReviewRating.id).is_(None),
            )
        )
        if unrated:
            items.append(
                DueItemView(
                    kind="feedback",
                    text=f"Feedback to rate: {_plural(unrated, 'review')} of your paper",
                    count=unrated,
                )
            )
    return items
