"""The moderator's workspace."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from services import discussions, events, identity, moderation, papers, phases, workspace
from services.errors import NotFound
from services.models import FlagReason, Phase, Post, Role
from services.policy import Actor
from tests.conftest import statements_of
from tests.exemplar_support import ISSUER, ExemplarWorld, build, sign_in_actor
from web.charts import bar_chart


@pytest.fixture
async def world(session: AsyncSession) -> ExemplarWorld:
    return await build(session)


async def test_participation_papers_and_who_has_not_posted(
    session: AsyncSession, world: ExemplarWorld
) -> None:
    view = await workspace.overview(
        session, actor=world.actors["mona"], assignment_id=world.assignment_id
    )
    assert view.students == 2 and view.papers_submitted == 1 and view.papers_late == 0
    first = view.participation[0]
    assert (first.position, first.threads, first.posts, first.students_posted) == (1, 1, 1, 1)
    assert first.not_yet_posted == ["Ben Canary"]
    assert view.participation[1].not_yet_posted == ["Ada Canary", "Ben Canary"]
    assert view.recent_audit is None  # the audit log is for instructors
    assert view.stance is not None and view.stance.completion is not None


async def test_instructors_see_recent_audit_and_students_nothing(
    session: AsyncSession, world: ExemplarWorld
) -> None:
    view = await workspace.overview(
        session, actor=world.actors["ivo"], assignment_id=world.assignment_id
    )
    assert view.recent_audit is not None
    assert {e.action for e in view.recent_audit} >= {"member.grant"}
    for who in ("ada", "zed"):
        with pytest.raises(NotFound):
            await workspace.overview(
                session, actor=world.actors[who], assignment_id=world.assignment_id
            )


def test_the_svg_chart_is_accessible_and_escapes_labels() -> None:
    svg = str(bar_chart([("agrees", 3), ("<script>", 1)], title="Stance & <b>"))
    assert svg.startswith('<svg class="chart" role="img"')
    assert "<title>Stance &amp; &lt;b&gt;</title>" in svg
    assert "<desc>agrees: 3; &lt;script&gt;: 1</desc>" in svg
    assert "<script>" not in svg
    assert "3 (75%)" in svg


async def test_every_change_of_the_assignment_is_an_event_for_the_workspace(
    session: AsyncSession, world: ExemplarWorld
) -> None:
    await phases.change_phase(
        session, actor=world.actors["ivo"], assignment_id=world.assignment_id, phase=Phase.review
    )
    seen = await events.for_assignment(session, assignment_id=world.assignment_id, after_id=0)
    kinds = [e.kind for e in seen]
    assert {"post_created", "paper_submitted", "phase.changed"} <= set(kinds)
    # Papers are staff business: their events live on the workspace channel only.
    paper = next(e for e in seen if e.kind == "paper_submitted")
    assert paper.channel == events.workspace_channel(world.assignment_id)
    assert await events.latest_for_assignment(session, assignment_id=world.assignment_id) == max(
        e.id or 0 for e in seen
    )
    # Another assignment's events stay out.
    assert (
        await events.for_assignment(session, assignment_id=world.assignment_id + 999, after_id=0)
        == []
    )


async def _overview_queries(session: AsyncSession, world: ExemplarWorld) -> int:
    with statements_of(session) as statements:
        await workspace.overview(
            session, actor=world.actors["ivo"], assignment_id=world.assignment_id
        )
    return len(statements)


async def test_the_overview_costs_the_same_queries_for_any_cohort_size(
    session: AsyncSession, world: ExemplarWorld
) -> None:
    """The live stream recomputes the overview after every batch of changes: its cost must
    not grow with students, posts, flags or papers."""
    small = await _overview_queries(session, world)
    newcomers = [f"s{i:02d}" for i in range(24)]
    previous = None
    for name in newcomers:
        await identity.grant(
            session, actor=Actor.system(), issuer=ISSUER, subject=f"s-{name}",
            role=Role.student, cohort_slug="psy",
        )  # fmt: skip
        actor = await sign_in_actor(session, name)
        for question_id in world.question_ids[:3]:
            thread = await discussions.create_thread(
                session, actor=actor, question_id=question_id, title=f"{name} on it", body="b"
            )
        await papers.save_paper(
            session, actor=actor, assignment_id=world.assignment_id, body="A paper.", submit=True
        )
        if previous is not None:  # flag the previous newcomer's latest post
            await moderation.flag_post(
                session, actor=actor, post_id=previous, reason=FlagReason.off_topic
            )
        opening = await session.scalar(select(Post.public_id).where(Post.thread_id == thread.id))
        previous = opening
    large = await _overview_queries(session, world)
    view = await workspace.overview(
        session, actor=world.actors["ivo"], assignment_id=world.assignment_id
    )
    assert view.students == 26 and view.papers_submitted == 25
    assert view.participation[0].posts == 1 + len(newcomers)
    assert view.open_flags == len(newcomers) - 1 and len(view.flagged) == 10
    assert large == small, (small, large)
