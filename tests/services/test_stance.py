"""Stance analytics, and Krippendorff's alpha against his own worked example."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import stance
from services.db import transaction
from services.errors import NotFound
from services.models import Phase, Stance
from tests.review_support import make_world, review_all, set_phase, submit_papers

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C:
# 4 observers x 12 units, missing values as None.
OBSERVERS = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]
UNITS = [list(unit) for unit in zip(*OBSERVERS, strict=True)]


@pytest.mark.parametrize(
    ("metric", "expected"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)]
)
def test_alpha_matches_krippendorff_s_worked_example(metric: str, expected: float) -> None:
    result = stance.krippendorff_alpha(UNITS, metric=metric)  # type: ignore[arg-type]
    assert result.value == pytest.approx(expected, abs=0.0005)
    assert result.pairable == 40  # unit 12 has a single value: not pairable


def test_alpha_edge_cases() -> None:
    assert stance.krippendorff_alpha([[1], [2]]).value is None
    assert stance.krippendorff_alpha([[1], [2]]).pairable == 0
    assert stance.krippendorff_alpha([[3, 3], [3, 3]]).value is None  # no variation
    assert stance.krippendorff_alpha([[1, 1], [5, 5], [2, 2]]).value == pytest.approx(1.0)


def test_consensus_and_median() -> None:
    s = Stance
    assert stance.consensus_label([]) == "no reviews"
    assert stance.consensus_label([s.mixed, s.mixed]) == "consensus"
    assert stance.consensus_label([s.mixed, s.mostly_agrees]) == "close"
    assert stance.consensus_label([s.strongly_agrees] * 2 + [s.strongly_disagrees]) == "majority"
    assert stance.consensus_label([s.strongly_agrees, s.strongly_disagrees]) == "split"
    assert stance.median_stance([s.strongly_agrees, s.mixed, s.does_not_engage]) is s.mixed
    assert stance.median_stance([s.does_not_engage]) is None


async def test_report_staff_see_detail_students_only_aggregates(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    students = ("ada", "ben", "chen", "dara")
    world = await make_world(sessions, students=students, k=2)
    await submit_papers(world, students)
    await set_phase(world, Phase.review)
    await review_all(
        world,
        students,
        {"ada": Stance.strongly_agrees, "ben": Stance.strongly_disagrees, "chen": Stance.mixed},
    )
    async with transaction(sessions, write=False) as session:
        report = await stance.stance_report(
            session, actor=await world.actor(session, "mona"), assignment_id=world.assignment_id
        )
        with pytest.raises(NotFound):  # students wait for feedback
            await stance.stance_report(
                session, actor=await world.actor(session, "ada"), assignment_id=world.assignment_id
            )
    assert sum(c.count for c in report.overall) == 8
    assert report.pairable_values == 8 and report.alpha_ordinal is not None
    assert report.completion is not None and report.completion.submitted == 8
    assert report.papers is not None and len(report.papers) == 4
    assert report.most_disagreement and report.most_disagreement[0].spread is not None
    assert report.reviewers is not None and len(report.reviewers) == 4
    assert all(r.reviewer.startswith("Reviewer ") for r in report.reviewers)
    comp = {c.key: c for c in report.components}
    assert comp["secure-base"].agreement == 1.0
    await set_phase(world, Phase.feedback)
    async with transaction(sessions, write=False) as session:
        student = await stance.stance_report(
            session, actor=await world.actor(session, "ada"), assignment_id=world.assignment_id
        )
    assert student.papers is None and student.reviewers is None and student.completion is None
    assert student.overall == report.overall
