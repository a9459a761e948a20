"""The moderator's workspace."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from services import workspace
from services.errors import NotFound
from tests.exemplar_support import ExemplarWorld, build
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
    from services import events, phases
    from services.models import Phase

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
