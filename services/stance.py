"""Stance analytics: where the cohort stands toward the rubric's source, and how far
reviewers agree.

Per paper: the distribution of overall stances, the median (on the ordinal scale), a
consensus label, the spread, and per-component agreement. Per assignment: the cohort's
distributions, Krippendorff's alpha for ordinal data with the number of pairable values
(`krippendorff_alpha` also does nominal and interval; it reproduces Krippendorff's own
worked example), the papers where reviewers disagree most, completion and each reviewer's
mean distance to their co-reviewers. Students get only the cohort-wide aggregates.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services import papers, policy, presenters
from services.errors import NotFound
from services.models import (
    Assignment,
    ComponentStance,
    Paper,
    Review,
    ReviewComponent,
    ReviewTask,
    RubricComponent,
    Stance,
    TaskStatus,
)
from services.policy import Actor
from services.views import (
    CompletionView,
    ComponentDistributionView,
    PaperStanceView,
    ReviewerAgreementView,
    StanceCountView,
    StanceView,
)

Metric = Literal["nominal", "ordinal", "interval"]
Value = float | int | str
SCALE = [s for s in Stance if s.rank is not None]
MOST_DISAGREEMENT = 5


# --- Krippendorff's alpha ------------------------------------------------------------------


@dataclass(frozen=True)
class Alpha:
    value: float | None  # None when there is nothing to compare (or no variation at all)
    pairable: int  # values in units with at least two values


def krippendorff_alpha(
    units: Sequence[Sequence[float | int | str | None]], *, metric: Metric = "ordinal"
) -> Alpha:
    """Krippendorff's alpha for any number of coders and missing values (None), from the
    coincidence matrix (Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability").
    Each unit lists the values the coders gave it."""
    coincidences: dict[tuple[Value, Value], float] = defaultdict(float)
    pairable = 0
    for unit in units:
        values = [v for v in unit if v is not None]
        m = len(values)
        if m < 2:
            continue
        pairable += m
        for i, a in enumerate(values):
            for j, b in enumerate(values):
                if i != j:
                    coincidences[(a, b)] += 1 / (m - 1)
    if pairable == 0:
        return Alpha(None, 0)
    totals: dict[Value, float] = defaultdict(float)
    for (a, _), weight in coincidences.items():
        totals[a] += weight
    labels = sorted(totals, key=lambda v: (isinstance(v, str), v))
    delta = _distance(labels, totals, metric)
    n = sum(totals.values())
    observed = sum(w * delta[(a, b)] for (a, b), w in coincidences.items())
    expected = sum(totals[a] * totals[b] * delta[(a, b)] for a in labels for b in labels)
    if expected == 0:
        return Alpha(None, pairable)
    return Alpha(1 - (n - 1) * observed / expected, pairable)


def _distance(
    labels: list[Value], totals: Mapping[Value, float], metric: Metric
) -> dict[tuple[Value, Value], float]:
    delta: dict[tuple[Value, Value], float] = {}
    for i, a in enumerate(labels):
        for j, b in enumerate(labels):
            if metric == "nominal":
                d = 0.0 if a == b else 1.0
            elif metric == "interval":
                d = (float(a) - float(b)) ** 2
            else:
                lo, hi = min(i, j), max(i, j)
                between = sum(totals[labels[g]] for g in range(lo, hi + 1))
                d = (between - (totals[a] + totals[b]) / 2) ** 2
            delta[(a, b)] = d
    return delta


# --- per paper -----------------------------------------------------------------------------


def consensus_label(stances: Sequence[Stance]) -> str:
    """ "consensus" (all the same), "close" (within one step), "majority" (more than half
    the same), "split", or "no reviews"."""
    if not stances:
        return "no reviews"
    counts = Counter(stances)
    if len(counts) == 1:
        return "consensus" if len(stances) > 1 else "single review"
    ranks = [s.rank for s in stances]
    if None not in ranks and max(ranks) - min(ranks) <= 1:  # type: ignore[type-var, operator]
        return "close"
    if counts.most_common(1)[0][1] * 2 > len(stances):
        return "majority"
    return "split"


def median_stance(stances: Sequence[Stance]) -> Stance | None:
    ranks = [s.rank for s in stances if s.rank is not None]
    if not ranks:
        return None
    low = statistics.median_low(ranks)
    return next(s for s in SCALE if s.rank == low)


def _counts(values: Sequence[str], scale: Sequence[str]) -> list[StanceCountView]:
    counter = Counter(values)
    return [StanceCountView(stance=s, count=counter.get(s, 0)) for s in scale]


def _pair_agreement(groups: Sequence[Sequence[str]]) -> float | None:
    agree = total = 0
    for group in groups:
        for a, b in combinations(group, 2):
            total += 1
            agree += a == b
    return agree / total if total else None


# --- loading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    paper_id: int
    code: str
    reviewer_id: int
    stance: Stance | None
    components: dict[int, ComponentStance]


async def _submitted(session: AsyncSession, assignment_id: int) -> list[_Row]:
    rows = await session.execute(
        select(Review.id, Review.overall_stance, ReviewTask.paper_id, ReviewTask.reviewer_id)
        .join(ReviewTask, col(ReviewTask.id) == Review.task_id)
        .where(
            ReviewTask.assignment_id == assignment_id,
            ReviewTask.status == TaskStatus.submitted,
        )
    )
    reviews = rows.all()
    codes: dict[int, str] = dict(
        (
            await session.execute(
                select(Paper.id, Paper.code).where(Paper.assignment_id == assignment_id)
            )
        ).all()
    )
    comps: dict[int, dict[int, ComponentStance]] = defaultdict(dict)
    if reviews:
        found = await session.execute(
            select(
                ReviewComponent.review_id, ReviewComponent.component_id, ReviewComponent.stance
            ).where(col(ReviewComponent.review_id).in_([r[0] for r in reviews]))
        )
        for review_id, component_id, stance in found.all():
            comps[review_id][component_id] = ComponentStance(stance)
    return [
        _Row(paper_id, codes[paper_id], reviewer_id, stance, comps[review_id])
        for review_id, stance, paper_id, reviewer_id in reviews
    ]


async def stance_report(session: AsyncSession, *, actor: Actor, assignment_id: int) -> StanceView:
    """The stance analytics the actor may see (staff: everything; students: aggregates)."""
    assignment = await policy.access_assignment(session, actor=actor, assignment_id=assignment_id)
    if not policy.can_read_stance(actor, assignment):
        raise NotFound("No stance analytics here yet.")
    staff = policy.can_manage_reviews(actor, assignment)
    rubric = list(
        (
            await session.execute(
                select(RubricComponent)
                .where(RubricComponent.assignment_id == assignment_id)
                .order_by(col(RubricComponent.position))
            )
        ).scalars()
    )
    rows = await _submitted(session, assignment_id)
    scale = [s.value for s in Stance]
    comp_scale = [c.value for c in ComponentStance]
    by_paper: dict[int, list[_Row]] = defaultdict(list)
    for row in rows:
        by_paper[row.paper_id].append(row)

    def components_for(group: Mapping[int, list[_Row]]) -> list[ComponentDistributionView]:
        return [
            ComponentDistributionView(
                key=c.key,
                label=c.label,
                counts=_counts(
                    [
                        r.components[c.id].value
                        for rs in group.values()
                        for r in rs
                        if c.id in r.components
                    ],
                    comp_scale,
                ),
                agreement=_pair_agreement(
                    [
                        [r.components[c.id].value for r in rs if c.id in r.components]
                        for rs in group.values()
                    ]
                ),
            )
            for c in rubric
            if c.id is not None
        ]

    alpha = krippendorff_alpha(
        [[r.stance.rank if r.stance else None for r in rs] for rs in by_paper.values()],
        metric="ordinal",
    )
    overall = _counts([r.stance.value for r in rows if r.stance], scale)
    if not staff:
        return StanceView(
            assignment_id=assignment_id,
            source=assignment.stance_source,
            scale=scale,
            overall=overall,
            components=components_for(by_paper),
            alpha_ordinal=alpha.value,
            pairable_values=alpha.pairable,
            completion=None,
            papers=None,
            most_disagreement=None,
            reviewers=None,
        )

    paper_views = []
    all_papers = await papers.list_papers(session, assignment_id=assignment_id)
    for paper in all_papers:
        if paper.submitted_at is None or paper.id is None:
            continue
        group = by_paper.get(paper.id, [])
        stances = [r.stance for r in group if r.stance is not None]
        ranks = [s.rank for s in stances if s.rank is not None]
        median = median_stance(stances)
        paper_views.append(
            PaperStanceView(
                paper=presenters.paper_label(paper.code),
                reviews=len(group),
                counts=_counts([s.value for s in stances], scale),
                median=median.value if median else None,
                consensus=consensus_label(stances),
                spread=max(ranks) - min(ranks) if ranks else None,
                components=components_for({paper.id: group}),
            )
        )
    disagreement = sorted(
        (p for p in paper_views if p.spread is not None and p.reviews > 1),
        key=lambda p: (-(p.spread or 0), p.consensus != "split", p.paper),
    )[:MOST_DISAGREEMENT]
    return StanceView(
        assignment_id=assignment_id,
        source=assignment.stance_source,
        scale=scale,
        overall=overall,
        components=components_for(by_paper),
        alpha_ordinal=alpha.value,
        pairable_values=alpha.pairable,
        completion=await completion(session, assignment_id=assignment_id),
        papers=paper_views,
        most_disagreement=disagreement,
        reviewers=_reviewer_agreement(assignment, by_paper),
    )


def _reviewer_agreement(
    assignment: Assignment, by_paper: Mapping[int, list[_Row]]
) -> list[ReviewerAgreementView]:
    distances: dict[int, list[int]] = defaultdict(list)
    counts: Counter[int] = Counter()
    for group in by_paper.values():
        for row in group:
            counts[row.reviewer_id] += 1
            if row.stance is None or row.stance.rank is None:
                continue
            for other in group:
                if other is row or other.stance is None or other.stance.rank is None:
                    continue
                distances[row.reviewer_id].append(abs(row.stance.rank - other.stance.rank))
    views = [
        ReviewerAgreementView(
            reviewer=presenters.reviewer_agreement(
                assignment.allocation_seed or str(assignment.id), reviewer
            ),
            reviews=counts[reviewer],
            mean_distance=(
                round(statistics.fmean(distances[reviewer]), 3) if distances[reviewer] else None
            ),
        )
        for reviewer in counts
    ]
    return sorted(views, key=lambda v: (-(v.mean_distance or 0), v.reviewer))


async def completion(session: AsyncSession, *, assignment_id: int) -> CompletionView:
    rows = await session.execute(
        select(ReviewTask.status).where(
            ReviewTask.assignment_id == assignment_id,
            ReviewTask.status != TaskStatus.withdrawn,
        )
    )
    statuses = Counter(s for (s,) in rows.all())
    paper_count = len(
        (
            await session.execute(
                select(Paper.id).where(
                    Paper.assignment_id == assignment_id, col(Paper.submitted_at).is_not(None)
                )
            )
        ).all()
    )
    return CompletionView(
        papers=paper_count,
        tasks=sum(statuses.values()),
        submitted=statuses[TaskStatus.submitted],
        started=statuses[TaskStatus.started],
        assigned=statuses[TaskStatus.assigned],
    )
