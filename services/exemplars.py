"""Exemplars: curated snapshots of good responses, shown in a gallery per question and per
assignment, with the curator's note and the author's consent.

A nomination copies the work as it is (a snapshot), tells the author, and shows it as "A
classmate's" until they choose otherwise: under their name, or not at all (a decline removes
it from every gallery). An exemplar has an attribution of its own and never carries the
author's discussion alias, paper code or reviewer number (services/presenters.py): each
would link the gallery's copy to the same person's other work. For the same reason a post
written anonymously cannot be shown under its author's name (its text stands in the thread
under the alias). Curators see when the original has changed since and may refresh it.

Curators see the author of a post exemplar (staff see names in the discussion anyway), but
not of a paper, passage or review: those are blind to staff until an audited reveal
(services/reveals.py), unless the author consented to their name.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services import audit, notifications, papers, policy, presenters, webhooks
from services.db import lock
from services.errors import Conflict, Invalid, NotFound, Problem, StaleVersion
from services.markdown import render_markdown_bounded
from services.models import (
    Assignment,
    Attribution,
    Cohort,
    ComponentStance,
    EvidenceQuote,
    Exemplar,
    ExemplarKind,
    ExemplarStatus,
    Paper,
    PaperVersion,
    Post,
    Question,
    Review,
    ReviewComponent,
    ReviewTask,
    RubricComponent,
    Thread,
    User,
    utcnow,
)
from services.policy import Actor
from services.views import ExemplarView

MAX_NOTE_CHARS = 5_000
MAX_TITLE_CHARS = 200

Direction = Literal["up", "down"]
DIRECTIONS: tuple[Direction, ...] = ("up", "down")


@dataclass(frozen=True)
class Snapshot:
    title: str
    body: str
    body_html: str
    version: int
    author_id: int | None
    details: dict[str, Any]


async def _assignment_and_cohort(
    session: AsyncSession, *, actor: Actor, assignment_id: int
) -> tuple[Assignment, Cohort]:
    assignment = await policy.access_assignment(session, actor=actor, assignment_id=assignment_id)
    cohort = await session.get(Cohort, assignment.cohort_id)
    assert cohort is not None
    return assignment, cohort


async def _curated(
    session: AsyncSession, *, actor: Actor, assignment_id: int
) -> tuple[Assignment, Cohort]:
    assignment, cohort = await _assignment_and_cohort(
        session, actor=actor, assignment_id=assignment_id
    )
    if not policy.can_curate_exemplars(actor, cohort):
        raise NotFound("No such assignment.")
    return assignment, cohort


# --- snapshots of each kind of source ------------------------------------------------------


async def _snapshot_post(session: AsyncSession, assignment: Assignment, ref: str) -> Snapshot:
    row = (
        await session.execute(
            select(Post, Thread, Question)
            .join(Thread, col(Thread.id) == Post.thread_id)
            .join(Question, col(Question.id) == Thread.question_id)
            .where(Post.public_id == ref)
        )
    ).one_or_none()
    if row is None or row[2].assignment_id != assignment.id:
        raise NotFound("No such post in this assignment.")
    post, thread, _ = row
    if post.deleted_at is not None or post.hidden_at is not None:
        raise Invalid("A deleted or hidden post cannot be an exemplar.")
    return Snapshot(
        title=thread.title,
        body=post.body,
        body_html=post.body_html,
        version=post.version,
        author_id=post.author_id,
        # Whether its author may put their name on it (choose_attribution says why not).
        details={"question_id": thread.question_id, "anonymous": post.anonymous},
    )


async def _paper(
    session: AsyncSession, assignment: Assignment, ref: str
) -> tuple[Paper, PaperVersion]:
    paper = await session.scalar(select(Paper).where(Paper.public_id == ref))
    if paper is None or paper.assignment_id != assignment.id or paper.submitted_at is None:
        raise NotFound("No such submitted paper in this assignment.")
    version = await papers.current_version(session, paper)
    assert version is not None
    return paper, version


async def _snapshot_paper(
    session: AsyncSession,
    assignment: Assignment,
    ref: str,
    passage: tuple[int, int] | None,
) -> Snapshot:
    paper, version = await _paper(session, assignment, ref)
    if passage is None:
        return Snapshot(
            title="A paper",
            body=version.body,
            body_html=version.body_html,
            version=version.version,
            author_id=paper.author_id,
            details={},
        )
    start, end = passage
    if not 0 <= start < end <= len(version.body) or end - start > 20_000:
        raise Invalid(problems=[Problem("is not a passage of the paper", field="passage")])
    text = version.body[start:end]
    return Snapshot(
        title="A passage of a paper",
        body=text,
        body_html=await render_markdown_bounded(text, field="passage"),
        version=version.version,
        author_id=paper.author_id,
        details={"start": start, "end": end},
    )


async def _snapshot_review(session: AsyncSession, assignment: Assignment, ref: str) -> Snapshot:
    row = (
        await session.execute(
            select(Review, ReviewTask, Paper)
            .join(ReviewTask, col(ReviewTask.id) == Review.task_id)
            .join(Paper, col(Paper.id) == ReviewTask.paper_id)
            .where(Review.public_id == ref)
        )
    ).one_or_none()
    if row is None or row[2].assignment_id != assignment.id or row[0].submitted_at is None:
        raise NotFound("No such submitted review in this assignment.")
    review, task, _ = row
    components = (
        await session.execute(
            select(RubricComponent.id, RubricComponent.label, ReviewComponent.stance)
            .join(ReviewComponent, col(ReviewComponent.component_id) == RubricComponent.id)
            .where(ReviewComponent.review_id == review.id)
            .order_by(col(RubricComponent.position))
        )
    ).all()
    quotes = (
        await session.execute(
            select(EvidenceQuote.component_id, EvidenceQuote.text)
            .where(EvidenceQuote.review_id == review.id)
            .order_by(col(EvidenceQuote.start))
        )
    ).all()
    evidence: dict[str, list[str]] = {}
    for component_id, quote in quotes:
        evidence.setdefault(str(component_id or "overall"), []).append(quote)
    body = "\n\n".join(part for part in (review.rationale, review.suggestion) if part)
    return Snapshot(
        title="A review",
        body=body,
        body_html=await render_markdown_bounded(body or "", field="review"),
        version=review.version,
        author_id=task.reviewer_id,
        details={
            "source": assignment.stance_source,
            "overall_stance": review.overall_stance.value if review.overall_stance else None,
            "components": [
                {
                    "label": label,
                    "stance": ComponentStance(stance).value,
                    "evidence": evidence.get(str(cid), []),
                }
                for cid, label, stance in components
            ],
            "overall_evidence": evidence.get("overall", []),
        },
    )


def _snapshot_sample(assignment: Assignment) -> Snapshot:
    if not assignment.sample_paper or not assignment.sample_paper_html:
        raise Invalid("This assignment came without a sample paper.")
    return Snapshot(
        title="The sample paper",
        body=assignment.sample_paper,
        body_html=assignment.sample_paper_html,
        version=assignment.version,
        author_id=None,
        details={},
    )


async def _snapshot(
    session: AsyncSession,
    assignment: Assignment,
    *,
    kind: ExemplarKind,
    source: str | None,
    passage: tuple[int, int] | None,
) -> Snapshot:
    if kind is ExemplarKind.sample_paper:
        return _snapshot_sample(assignment)
    if not source:
        raise Invalid(problems=[Problem("is required for this kind", field="source")])
    if kind is ExemplarKind.post:
        return await _snapshot_post(session, assignment, source)
    if kind is ExemplarKind.review:
        return await _snapshot_review(session, assignment, source)
    if kind is ExemplarKind.passage and passage is None:
        raise Invalid(problems=[Problem("is required for a passage", field="passage")])
    return await _snapshot_paper(
        session, assignment, source, passage if kind is ExemplarKind.passage else None
    )


# --- curation ------------------------------------------------------------------------------


def _clean_note(note: str) -> str:
    if len(note) > MAX_NOTE_CHARS or "\x00" in note:
        raise Invalid(
            problems=[Problem(f"must be at most {MAX_NOTE_CHARS} characters", field="note")]
        )
    return note.strip()


async def nominate(
    session: AsyncSession,
    *,
    actor: Actor,
    assignment_id: int,
    kind: ExemplarKind,
    source: str | None = None,
    passage: tuple[int, int] | None = None,
    question_id: int | None = None,
    note: str = "",
    position: int | None = None,
    publish: bool = False,
) -> Exemplar:
    """A curator nominates a post, paper, passage, review or the sample paper as an exemplar
    for a question (or the whole assignment); the author is told and may decline."""
    assignment, cohort = await _curated(session, actor=actor, assignment_id=assignment_id)
    if question_id is not None:
        question = await session.get(Question, question_id)
        if question is None or question.assignment_id != assignment.id:
            raise Invalid(
                problems=[Problem("is not a question of this assignment", field="question_id")]
            )
    snapshot = await _snapshot(session, assignment, kind=kind, source=source, passage=passage)
    note = _clean_note(note)
    if position is None:
        last = await session.scalar(
            select(Exemplar.position)
            .where(Exemplar.assignment_id == assignment.id, Exemplar.question_id == question_id)
            .order_by(col(Exemplar.position).desc())
            .limit(1)
        )
        position = (last or 0) + 1
    exemplar = Exemplar(
        public_id=secrets.token_urlsafe(9),
        assignment_id=assignment.id or 0,
        question_id=question_id,
        kind=kind,
        source_post_id=None,
        source_version=snapshot.version,
        author_id=snapshot.author_id,
        title=snapshot.title[:MAX_TITLE_CHARS],
        body=snapshot.body,
        body_html=snapshot.body_html,
        details=snapshot.details,
        note=note,
        note_html=await render_markdown_bounded(note, field="note"),
        position=position,
        status=ExemplarStatus.published if publish else ExemplarStatus.draft,
        attribution=Attribution.assignment if snapshot.author_id is None else Attribution.pending,
        created_by_id=actor.user_id,
    )
    await _link_source(session, exemplar, kind=kind, source=source)
    session.add(exemplar)
    await session.flush()
    if publish:
        await webhooks.exemplar_published(
            session, assignment=assignment, exemplar_id=exemplar.public_id, title=exemplar.title
        )
    if snapshot.author_id is not None:
        await notifications.notify(
            session,
            user_id=snapshot.author_id,
            kind=notifications.EXEMPLAR,
            assignment_id=exemplar.assignment_id,
            link=f"/assignments/{exemplar.assignment_id}/exemplars",
            message=(
                f"Your work was nominated as an exemplar in “{assignment.title}”. "
                "It is shown as a classmate's, without your name, unless you choose "
                "otherwise; you can also decline."
            ),
        )
    await audit.record(
        session,
        actor=actor,
        cohort_id=cohort.id,
        action="exemplar.nominate",
        target_type="exemplar",
        target_id=exemplar.public_id,
        details={"kind": kind.value},
    )
    await session.flush()
    return exemplar


async def _link_source(
    session: AsyncSession, exemplar: Exemplar, *, kind: ExemplarKind, source: str | None
) -> None:
    if kind is ExemplarKind.post:
        exemplar.source_post_id = await session.scalar(
            select(Post.id).where(Post.public_id == source)
        )
    elif kind in (ExemplarKind.paper, ExemplarKind.passage):
        exemplar.source_paper_id = await session.scalar(
            select(Paper.id).where(Paper.public_id == source)
        )
    elif kind is ExemplarKind.review:
        exemplar.source_review_id = await session.scalar(
            select(Review.id).where(Review.public_id == source)
        )


async def _load(session: AsyncSession, *, public_id: str) -> Exemplar:
    exemplar = await session.scalar(select(Exemplar).where(Exemplar.public_id == public_id))
    if exemplar is None:
        raise NotFound("No such exemplar.")
    return exemplar


async def _curated_exemplar(
    session: AsyncSession, *, actor: Actor, public_id: str
) -> tuple[Exemplar, Cohort]:
    exemplar = await _load(session, public_id=public_id)
    assignment = await session.get(Assignment, exemplar.assignment_id)
    cohort = await session.get(Cohort, assignment.cohort_id) if assignment else None
    if cohort is None or not policy.can_curate_exemplars(actor, cohort):
        raise NotFound("No such exemplar.")
    return exemplar, cohort


async def update(
    session: AsyncSession,
    *,
    actor: Actor,
    public_id: str,
    version: int,
    note: str | None = None,
    position: int | None = None,
    status: ExemplarStatus | None = None,
    question_id: int | None = None,
    clear_question: bool = False,
) -> Exemplar:
    """Curators edit the note, order, visibility or question; stale versions get 409."""
    exemplar, cohort = await _curated_exemplar(session, actor=actor, public_id=public_id)
    await lock(session, exemplar)  # the version check and the write, as one step
    if version != exemplar.version:
        raise StaleVersion(exemplar.version, what="this exemplar")
    if note is not None and _clean_note(note) != exemplar.note:
        exemplar.note = _clean_note(note)
        exemplar.note_html = await render_markdown_bounded(exemplar.note, field="note")
        # What the cohort reads as the curator's judgement: who changed it is on record.
        await audit.record(
            session, actor=actor, cohort_id=cohort.id, action="exemplar.note",
            target_type="exemplar", target_id=exemplar.public_id,
        )  # fmt: skip
    if position is not None:
        exemplar.position = position
    if status is not None and status is not exemplar.status:
        exemplar.status = status
        if status is ExemplarStatus.published and exemplar.attribution is not Attribution.declined:
            shown_in = await session.get(Assignment, exemplar.assignment_id)
            assert shown_in is not None
            await webhooks.exemplar_published(
                session, assignment=shown_in, exemplar_id=exemplar.public_id, title=exemplar.title
            )
        await audit.record(
            session, actor=actor, cohort_id=cohort.id, action=f"exemplar.{status.value}",
            target_type="exemplar", target_id=exemplar.public_id,
        )  # fmt: skip
    if clear_question:
        exemplar.question_id = None
    elif question_id is not None:
        question = await session.get(Question, question_id)
        if question is None or question.assignment_id != exemplar.assignment_id:
            raise Invalid(
                problems=[Problem("is not a question of this assignment", field="question_id")]
            )
        exemplar.question_id = question_id
    exemplar.version += 1
    exemplar.updated_at = utcnow()
    await session.flush()
    return exemplar


async def move(
    session: AsyncSession,
    *,
    actor: Actor,
    public_id: str,
    direction: str,
    version: int | None = None,
    neighbour: str | None = None,
) -> Exemplar:
    """Curators move an exemplar one place up or down in its gallery (its question's, or the
    whole assignment's) by swapping places with its neighbour there. A form that saw another
    version of it, or another neighbour, is refused (409) rather than guessed at."""
    if direction not in DIRECTIONS:
        raise Invalid(problems=[Problem("must be up or down", field="direction")])
    exemplar, cohort = await _curated_exemplar(session, actor=actor, public_id=public_id)
    # Lock the whole group (PostgreSQL; SQLite has a single writer anyway) so that two moves
    # at once queue instead of both swapping from the same order; in id order, so that they
    # never deadlock. populate_existing: what we read before the lock may be stale by now.
    group = list(
        (
            await session.execute(
                select(Exemplar)
                .where(
                    Exemplar.assignment_id == exemplar.assignment_id,
                    Exemplar.question_id == exemplar.question_id,
                )
                .order_by(col(Exemplar.id))
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).scalars()
    )
    if not any(e.id == exemplar.id for e in group):  # moved to another gallery meanwhile
        raise Conflict("This exemplar changed meanwhile; reload the gallery and try again.")
    if version is not None and version != exemplar.version:
        raise StaleVersion(exemplar.version, what="this exemplar")
    order = sorted(group, key=lambda e: (e.position, e.id or 0))  # the gallery's order
    at = next(i for i, e in enumerate(order) if e.id == exemplar.id)
    there = at - 1 if direction == "up" else at + 1
    if not 0 <= there < len(order):
        where = "first" if direction == "up" else "last"
        raise Conflict(f"“{exemplar.title}” is already the {where} in its gallery.")
    other = order[there]
    if neighbour is not None and neighbour != other.public_id:
        raise Conflict(
            "The order of this gallery changed meanwhile, so nothing was moved; "
            "look at the order now and try again."
        )
    before = {e.id: e.position for e in order}
    if len(set(before.values())) < len(order):
        # Equal positions (set through the API) would make a swap change nothing, as ties
        # are shown in id order: number the group 1..n as it is shown, then swap.
        for number, e in enumerate(order, start=1):
            e.position = number
    exemplar.position, other.position = other.position, exemplar.position
    now = utcnow()
    for e in order:
        if e.position != before[e.id]:
            e.version += 1  # a PATCH that saw the old position is now stale (409)
            e.updated_at = now
    await audit.record(
        session, actor=actor, cohort_id=cohort.id, action="exemplar.move",
        target_type="exemplar", target_id=exemplar.public_id,
        details={"direction": direction, "swapped_with": other.public_id,
                 "position": exemplar.position},
    )  # fmt: skip
    await session.flush()
    return exemplar


@dataclass(frozen=True)
class CurationControls:
    """What a curator's gallery page needs to edit one exemplar in place: its note as
    written, the version its forms send back, and its neighbours in its own gallery (the
    public ids it would swap with; None at either end)."""

    note: str
    version: int
    above: str | None
    below: str | None


async def curation_controls(
    session: AsyncSession, *, actor: Actor, assignment_id: int
) -> dict[str, CurationControls]:
    """Curators get the controls of every exemplar of the assignment, everyone else none."""
    assignment, cohort = await _assignment_and_cohort(
        session, actor=actor, assignment_id=assignment_id
    )
    if not policy.can_curate_exemplars(actor, cohort):
        return {}
    rows = await session.execute(
        select(Exemplar.public_id, Exemplar.question_id, Exemplar.note, Exemplar.version)
        .where(Exemplar.assignment_id == assignment.id)
        .order_by(col(Exemplar.position), col(Exemplar.id))
    )
    groups: dict[int | None, list[tuple[str, str, int]]] = defaultdict(list)
    for public_id, question_id, note, version in rows.all():
        groups[question_id].append((public_id, note, version))
    controls = {}
    for group in groups.values():
        for i, (public_id, note, version) in enumerate(group):
            controls[public_id] = CurationControls(
                note=note,
                version=version,
                above=group[i - 1][0] if i > 0 else None,
                below=group[i + 1][0] if i + 1 < len(group) else None,
            )
    return controls


async def refresh(session: AsyncSession, *, actor: Actor, public_id: str) -> Exemplar:
    """Curators take a new snapshot of a changed original (the note and consent stay)."""
    exemplar, _ = await _curated_exemplar(session, actor=actor, public_id=public_id)
    assignment = await session.get(Assignment, exemplar.assignment_id)
    assert assignment is not None
    source = await _source_ref(session, exemplar)
    passage = None
    if exemplar.kind is ExemplarKind.passage:
        passage = (int(exemplar.details["start"]), int(exemplar.details["end"]))
    snapshot = await _snapshot(
        session, assignment, kind=exemplar.kind, source=source, passage=passage
    )
    exemplar.title, exemplar.body, exemplar.body_html = (
        snapshot.title[:MAX_TITLE_CHARS], snapshot.body, snapshot.body_html,
    )  # fmt: skip
    exemplar.details, exemplar.source_version = snapshot.details, snapshot.version
    exemplar.refreshed_at = exemplar.updated_at = utcnow()
    exemplar.version += 1
    await session.flush()
    return exemplar


async def _source_ref(session: AsyncSession, exemplar: Exemplar) -> str | None:
    if exemplar.source_post_id is not None:
        return await session.scalar(
            select(Post.public_id).where(Post.id == exemplar.source_post_id)
        )
    if exemplar.source_paper_id is not None:
        return await session.scalar(
            select(Paper.public_id).where(Paper.id == exemplar.source_paper_id)
        )
    if exemplar.source_review_id is not None:
        return await session.scalar(
            select(Review.public_id).where(Review.id == exemplar.source_review_id)
        )
    if exemplar.kind is ExemplarKind.sample_paper:
        return None
    raise Invalid("The original of this exemplar no longer exists.")


async def remove(session: AsyncSession, *, actor: Actor, public_id: str) -> None:
    exemplar, cohort = await _curated_exemplar(session, actor=actor, public_id=public_id)
    await session.delete(exemplar)
    await audit.record(
        session, actor=actor, cohort_id=cohort.id, action="exemplar.remove",
        target_type="exemplar", target_id=public_id,
    )  # fmt: skip
    await session.flush()


async def choose_attribution(
    session: AsyncSession, *, actor: Actor, public_id: str, choice: Attribution
) -> Exemplar:
    """Only the author chooses how their work is shown: anonymously, by name, or not at all."""
    exemplar = await _load(session, public_id=public_id)
    if actor.user_id is None or exemplar.author_id != actor.user_id:
        raise NotFound("No such exemplar.")
    if choice not in (Attribution.anonymous, Attribution.named, Attribution.declined):
        raise Invalid(problems=[Problem("must be anonymous, named or declined", field="choice")])
    if choice is Attribution.named and await _posted_anonymously(session, exemplar):
        # The same text stands in the thread under the alias: a name here would tell the
        # cohort who writes every one of the author's anonymous posts.
        raise Invalid(
            problems=[
                Problem(
                    "is not available: you posted this anonymously, and your name on it "
                    "would tell classmates which of the discussion's anonymous posts are "
                    "yours",
                    field="choice",
                )
            ]
        )
    exemplar.attribution = choice
    exemplar.attribution_at = utcnow()
    exemplar.version += 1
    await session.flush()
    return exemplar


async def _posted_anonymously(session: AsyncSession, exemplar: Exemplar) -> bool:
    if exemplar.kind is not ExemplarKind.post:
        return False
    if exemplar.source_post_id is None:  # the post is gone: nothing left to link it to
        return False
    return bool(
        await session.scalar(select(Post.anonymous).where(Post.id == exemplar.source_post_id))
    )


# --- the gallery ---------------------------------------------------------------------------


async def gallery(
    session: AsyncSession,
    *,
    actor: Actor,
    assignment_id: int,
    question_id: int | None = None,
    whole_assignment: bool = False,
) -> list[ExemplarView]:
    """Exemplars in curator order, as this viewer may see them (one query for the rows, one
    for current source versions)."""
    assignment, cohort = await _assignment_and_cohort(
        session, actor=actor, assignment_id=assignment_id
    )
    query = (
        select(Exemplar, User.display_name)
        .outerjoin(User, col(User.id) == Exemplar.author_id)
        .where(Exemplar.assignment_id == assignment.id)
        .order_by(col(Exemplar.position), col(Exemplar.id))
    )
    if question_id is not None:
        query = query.where(Exemplar.question_id == question_id)
    elif whole_assignment:
        query = query.where(col(Exemplar.question_id).is_(None))
    curator = policy.can_curate_exemplars(actor, cohort)
    if not curator:
        # The list agrees with can_see_exemplar: published and not declined, or one's own.
        mine = Exemplar.author_id == actor.user_id if actor.user_id is not None else None
        visible = (Exemplar.status == ExemplarStatus.published) & (
            Exemplar.attribution != Attribution.declined
        )
        query = query.where(visible | mine if mine is not None else visible)
    rows: list[tuple[Exemplar, str | None]] = [
        (e, name) for e, name in (await session.execute(query)).all()
    ]
    if not curator:
        withheld = await policy.post_first_withheld(
            session, actor=actor, assignment_id=assignment.id or 0, cohort_id=cohort.id or 0
        )
        rows = [
            (e, name) for e, name in rows
            if policy.can_see_exemplar(
                actor, cohort, published=e.status is ExemplarStatus.published,
                declined=e.attribution is Attribution.declined, author_id=e.author_id,
                withheld=_question_of(e) in withheld,
            )
        ]  # fmt: skip
    current = await _current_versions(session, [e for e, _ in rows]) if curator else {}
    return [
        present(e, actor=actor, curator=curator, name=name,
                source_version=current.get(e.id or 0))
        for e, name in rows
    ]  # fmt: skip


def _question_of(exemplar: Exemplar) -> int | None:
    """The question whose discussion the work answers (a post exemplar may sit in the whole
    assignment's gallery, but its "post first" rule is its question's)."""
    if exemplar.question_id is not None:
        return exemplar.question_id
    asked = exemplar.details.get("question_id") if exemplar.details else None
    return int(asked) if isinstance(asked, int) else None


async def _current_versions(session: AsyncSession, exemplars: Sequence[Exemplar]) -> dict[int, int]:
    posts = {e.source_post_id: e.id for e in exemplars if e.source_post_id}
    papers = {e.source_paper_id: e.id for e in exemplars if e.source_paper_id}
    reviews = {e.source_review_id: e.id for e in exemplars if e.source_review_id}
    out: dict[int, int] = {}
    if posts:
        for pid, v in (
            await session.execute(select(Post.id, Post.version).where(col(Post.id).in_(posts)))
        ).all():
            out[posts[pid] or 0] = v
    if papers:
        rows = await session.execute(
            select(Paper.id, Paper.current_version).where(col(Paper.id).in_(papers))
        )
        for pid, v in rows.all():
            out[papers[pid] or 0] = v
    if reviews:
        rows = await session.execute(
            select(Review.id, Review.version).where(col(Review.id).in_(reviews))
        )
        for rid, v in rows.all():
            out[reviews[rid] or 0] = v
    samples = [e for e in exemplars if e.kind is ExemplarKind.sample_paper]
    if samples:
        assignment = await session.get(Assignment, samples[0].assignment_id)
        for e in samples:
            out[e.id or 0] = assignment.version if assignment else e.source_version
    return out


def present(
    exemplar: Exemplar,
    *,
    actor: Actor,
    curator: bool,
    name: str | None,
    source_version: int | None = None,
) -> ExemplarView:
    """What this viewer sees: a name only with the author's consent; curators also see the
    author of a post exemplar (never of a paper or review: those are blind to staff)."""
    label = presenters.exemplar_attribution(exemplar.attribution, name)
    mine = actor.user_id is not None and actor.user_id == exemplar.author_id
    view = ExemplarView(
        id=exemplar.public_id,
        assignment_id=exemplar.assignment_id,
        question_id=exemplar.question_id,
        kind=exemplar.kind.value,
        title=exemplar.title,
        body_html=exemplar.body_html,
        note_html=exemplar.note_html,
        position=exemplar.position,
        attribution_label=label,
        details=exemplar.details,
        is_mine=mine,
    )
    if curator or mine:
        view = view.model_copy(
            update={"status": exemplar.status.value, "attribution": exemplar.attribution.value}
        )
    if curator:
        changed = source_version is not None and source_version != exemplar.source_version
        named = exemplar.kind is ExemplarKind.post or exemplar.attribution is Attribution.named
        view = view.model_copy(
            update={
                "author_name": name if named else None,
                "source_changed": changed,
                "version": exemplar.version,
            }
        )
    return view


async def get(session: AsyncSession, *, actor: Actor, public_id: str) -> ExemplarView:
    exemplar = await _load(session, public_id=public_id)
    assignment, cohort = await _assignment_and_cohort(
        session, actor=actor, assignment_id=exemplar.assignment_id
    )
    withheld = await policy.post_first_withheld(
        session, actor=actor, assignment_id=assignment.id or 0, cohort_id=cohort.id or 0
    )
    if not policy.can_see_exemplar(
        actor, cohort, published=exemplar.status is ExemplarStatus.published,
        declined=exemplar.attribution is Attribution.declined, author_id=exemplar.author_id,
        withheld=_question_of(exemplar) in withheld,
    ):  # fmt: skip
        raise NotFound("No such exemplar.")
    curator = policy.can_curate_exemplars(actor, cohort)
    name = None
    if exemplar.author_id is not None:
        user = await session.get(User, exemplar.author_id)
        name = user.display_name if user else None
    current = await _current_versions(session, [exemplar]) if curator else {}
    return present(
        exemplar, actor=actor, curator=curator, name=name,
        source_version=current.get(exemplar.id or 0),
    )  # fmt: skip
