"""Papers: a student writes, revises and submits their paper for an assignment.

Every save keeps a version. Reviewers see the paper only as "Paper K7Q2" (a random code
per assignment); nothing stored with the text names the author. A submission after the
paper deadline is taken, marked or refused per the assignment's late policy; a late paper
submitted while review is on gets its reviewers at once (allocation heals).

A paper may also arrive as a file (.docx, .pdf, .md, .txt): `services.documents` extracts
its text, and the text is saved exactly as a typed paper. The file itself is not kept, so
nothing of it but its text (no metadata, comments or tracked changes) can reach anyone.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services import allocation, documents, events, policy
from services.db import lock
from services.errors import Invalid, NotFound, Problem
from services.markdown import MAX_MARKDOWN_CHARS, render_markdown_bounded
from services.models import Assignment, LatePolicy, Paper, PaperVersion, Phase, utcnow
from services.policy import Actor
from services.views import MyPaperView

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 4


@dataclass(frozen=True)
class PaperState:
    assignment: Assignment
    paper: Paper | None
    version: PaperVersion | None


async def _new_code(session: AsyncSession, assignment_id: int) -> str:
    taken = set(
        (await session.execute(select(Paper.code).where(Paper.assignment_id == assignment_id)))
        .scalars()
        .all()
    )
    length = CODE_LENGTH
    while True:
        for _ in range(20):
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))
            if code not in taken:
                return code
        length += 1  # pragma: no cover - only with hundreds of thousands of papers


async def current_version(session: AsyncSession, paper: Paper) -> PaperVersion | None:
    row: PaperVersion | None = await session.scalar(
        select(PaperVersion).where(
            PaperVersion.paper_id == paper.id, PaperVersion.version == paper.current_version
        )
    )
    return row


async def _mine(session: AsyncSession, *, actor: Actor, assignment_id: int) -> PaperState:
    assignment = await policy.access_assignment(session, actor=actor, assignment_id=assignment_id)
    if not policy.is_student_of(actor, assignment.cohort_id):
        # Staff and strangers have no paper here; same answer as a missing page.
        raise NotFound("You have no paper in this assignment.")
    paper = await session.scalar(
        select(Paper).where(Paper.assignment_id == assignment.id, Paper.author_id == actor.user_id)
    )
    version = await current_version(session, paper) if paper is not None else None
    return PaperState(assignment, paper, version)


async def get_my_paper(session: AsyncSession, *, actor: Actor, assignment_id: int) -> PaperState:
    """A student's own paper (or none yet)."""
    return await _mine(session, actor=actor, assignment_id=assignment_id)


def present_my_paper(state: PaperState, *, actor: Actor) -> MyPaperView:
    paper, version = state.paper, state.version
    submitted = paper is not None and paper.submitted_at is not None
    return MyPaperView(
        assignment_id=state.assignment.id or 0,
        status="none" if paper is None else ("submitted" if submitted else "draft"),
        body=version.body if version else "",
        body_html=version.body_html if version else "",
        version=paper.current_version if paper else 0,
        submitted_at=paper.submitted_at if paper else None,
        late=paper.late if paper else False,
        can_edit=policy.can_write_paper(actor, state.assignment, has_submitted=submitted),
    )


def _is_late(assignment: Assignment, now: datetime) -> bool:
    return assignment.paper_due_at is not None and now > assignment.paper_due_at


async def save_paper(
    session: AsyncSession,
    *,
    actor: Actor,
    assignment_id: int,
    body: str,
    submit: bool = False,
    now: datetime | None = None,
) -> PaperState:
    """A student saves a new version of their paper, and submits it when `submit` is set.
    Refused outside the phases that take papers, and after the deadline under the refuse
    policy; a submission during review gets reviewers at once."""
    now = now or utcnow()
    state = await _mine(session, actor=actor, assignment_id=assignment_id)
    # Saves of one assignment's papers queue on its row (PostgreSQL): two first saves at once
    # would each create the paper, and two later ones would number the same version. Read
    # the paper again under the lock.
    await lock(session, state.assignment)
    state = await _mine(session, actor=actor, assignment_id=assignment_id)
    assignment, paper = state.assignment, state.paper
    if paper is not None:
        await session.refresh(paper)
    submitted = paper is not None and paper.submitted_at is not None
    if not policy.can_write_paper(actor, assignment, has_submitted=submitted):
        raise Invalid(
            problems=[Problem("papers cannot be written or changed in this phase", field="phase")]
        )
    late = _is_late(assignment, now) or assignment.phase is Phase.review
    if late and assignment.late_policy is LatePolicy.refuse and (submit or submitted):
        raise Invalid(problems=[Problem("the deadline has passed; late papers are refused")])
    text = body.replace("\r\n", "\n")
    if "\x00" in text:
        raise Invalid(problems=[Problem("must not contain NUL characters", field="body")])
    if not text.strip():
        raise Invalid(problems=[Problem("must not be empty", field="body")])
    if len(text) > MAX_MARKDOWN_CHARS:
        raise Invalid(
            problems=[Problem(f"is longer than {MAX_MARKDOWN_CHARS:,} characters", field="body")]
        )
    html = await render_markdown_bounded(text, field="body")
    assert assignment.id is not None and actor.user_id is not None
    if paper is None:
        paper = Paper(
            public_id=allocation.new_public_id(),
            assignment_id=assignment.id,
            author_id=actor.user_id,
            code=await _new_code(session, assignment.id),
            current_version=0,
        )
        session.add(paper)
        await session.flush()
    assert paper.id is not None
    paper.current_version += 1
    paper.updated_at = now
    version = PaperVersion(
        paper_id=paper.id, version=paper.current_version, body=text, body_html=html
    )
    session.add(version)
    newly_submitted = submit and paper.submitted_at is None
    if newly_submitted:
        paper.submitted_at = now
        paper.late = late and assignment.late_policy is LatePolicy.mark
    session.add(paper)
    await session.flush()
    if newly_submitted:
        # Papers are nobody's business but staff's: the workspace channel only.
        await events.record(
            session,
            channel=events.workspace_channel(assignment.id),
            kind="paper_submitted",
            assignment_id=assignment.id,
        )
        if policy.allocation_open(assignment):
            await allocation.heal(session, assignment=assignment)
    return PaperState(assignment, paper, version)


async def save_paper_file(
    session: AsyncSession,
    *,
    actor: Actor,
    assignment_id: int,
    data: bytes,
    submit: bool = False,
    now: datetime | None = None,
) -> tuple[PaperState, documents.Extracted]:
    """A student saves a new version of their paper from a file: its extracted text becomes
    the version's body, under the same rules as a typed paper."""
    state = await _mine(session, actor=actor, assignment_id=assignment_id)
    submitted = state.paper is not None and state.paper.submitted_at is not None
    # Refuse before reading the file: extraction is the expensive part.
    if not policy.can_write_paper(actor, state.assignment, has_submitted=submitted):
        raise Invalid(
            problems=[Problem("papers cannot be written or changed in this phase", field="phase")]
        )
    extracted = await documents.extract_bounded(data)
    saved = await save_paper(
        session,
        actor=actor,
        assignment_id=assignment_id,
        body=extracted.text,
        submit=submit,
        now=now,
    )
    return saved, extracted


async def list_papers(session: AsyncSession, *, assignment_id: int) -> list[Paper]:
    rows = await session.execute(
        select(Paper).where(Paper.assignment_id == assignment_id).order_by(col(Paper.code))
    )
    return list(rows.scalars())
