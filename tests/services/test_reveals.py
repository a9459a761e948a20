"""Reveals: a reason is required, parties are refused, each reveal is audited exactly once
in the same transaction, and the chain verifies."""

from __future__ import annotations

import pytest
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import select

from services import audit, reveals
from services.db import transaction
from services.errors import Invalid, NotFound, PermissionDenied
from services.models import AuditEvent, Paper, Phase, Role
from services.policy import Actor
from tests.review_support import ISSUER, make_world, set_phase, submit_papers

STUDENTS = ("ada", "ben", "chen", "dara")


async def reveal_count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with transaction(sessions, write=False) as session:
        return int(
            await session.scalar(
                select(func.count()).where(AuditEvent.action.startswith("review.reveal"))  # type: ignore[attr-defined]
            )
            or 0
        )


async def do_reveal(world, name: str, code: str, target: str, reason: str):  # type: ignore[no-untyped-def]
    async with transaction(world.sessions) as session:
        return await reveals.reveal(
            session,
            actor=await world.actor(session, name),
            assignment_id=world.assignment_id,
            paper_code=code,
            target=target,  # type: ignore[arg-type]
            reason=reason,
        )


async def paper_code(world, author: str) -> str:  # type: ignore[no-untyped-def]
    async with transaction(world.sessions, write=False) as session:
        paper = await session.scalar(select(Paper).where(Paper.author_id == world.users[author]))
        assert paper is not None
        return paper.code


async def test_reveal_rules(sessions: async_sessionmaker[AsyncSession]) -> None:
    world = await make_world(sessions, students=STUDENTS, k=2)
    await submit_papers(world, STUDENTS)
    await set_phase(world, Phase.review)
    code = await paper_code(world, "ada")
    reason = "Plagiarism report from the library needs checking"

    for blank in ("", "   ", "short"):
        with pytest.raises(Invalid):
            await do_reveal(world, "mona", code, "author", blank)
    with pytest.raises(NotFound):
        await do_reveal(world, "ada", code, "author", reason)
    with pytest.raises(NotFound):
        await do_reveal(world, "mona", "ZZZZ", "author", reason)
    assert await reveal_count(sessions) == 0

    shown = await do_reveal(world, "mona", code, "author", reason)
    assert [p.role for p in shown.people] == ["author"]
    assert shown.people[0].display_name == "Ada"
    assert await reveal_count(sessions) == 1
    reviewers = await do_reveal(world, "ivo", f"Paper {code}", "reviewers", reason)
    assert sorted(p.role for p in reviewers.people) == ["Reviewer 1", "Reviewer 2"]
    assert await reveal_count(sessions) == 2
    async with transaction(sessions, write=False) as session:
        assert await audit.verify_chain(session) is None
        log = await reveals.review_audit_log(
            session, actor=await world.actor(session, "ivo"), assignment_id=world.assignment_id
        )
        with pytest.raises(NotFound):  # moderators do not read the log
            await reveals.review_audit_log(
                session, actor=await world.actor(session, "mona"), assignment_id=world.assignment_id
            )
    reveal_rows = [e for e in log if e.action.startswith("review.reveal")]
    assert len(reveal_rows) == 2 and reveal_rows[-1].reason == reason


async def test_a_moderator_who_is_a_party_is_refused(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    from services import identity

    world = await make_world(sessions, students=STUDENTS, k=2)
    await submit_papers(world, STUDENTS)
    await set_phase(world, Phase.review)
    # Ben becomes a moderator while being an author and a reviewer in this assignment.
    async with transaction(sessions) as session:
        await identity.grant(
            session, actor=Actor.system(), issuer=ISSUER, subject="sub-psy-ben",
            role=Role.moderator, cohort_slug="psy",
        )  # fmt: skip
    own = await paper_code(world, "ben")
    with pytest.raises(PermissionDenied):
        await do_reveal(world, "ben", own, "reviewers", "I want to know who reviewed me")
    assert await reveal_count(sessions) == 0
