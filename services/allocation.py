"""Reviewer allocation: who reviews which paper.

`plan()` is pure and fast (see bench/allocation_bench.py): when everyone in the pool
submitted, a seeded circulant gives 10,000 papers with k = 3 in a few tens of milliseconds;
otherwise a greedy pass over a heap, then balancing and pair-breaking.
It gives every paper k reviewers where that is possible at all
(never its author, never an excluded pair), keeps reviewers' loads within one of each other,
avoids A↔B reciprocal pairs when the cohort is large enough, and is reproducible: the same
seed, papers, pool and exclusions give the same plan.

It also heals an allocation that already exists: tasks that cannot move (started or
submitted, or placed by hand) are kept; movable tasks of reviewers who left the pool are
withdrawn; then every paper is topped up to k and loads are evened out, moving new tasks
first and otherwise only tasks nobody has opened yet.

The async functions below are the use cases around it (run, heal, assign or move by hand,
exclusions); authorization is asked of services.policy.
"""

from __future__ import annotations

import heapq
import random
import secrets
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from services import audit, events, notifications, policy
from services.errors import Conflict, Invalid, NotFound, Problem
from services.models import (
    Assignment,
    Membership,
    Paper,
    Phase,
    ReviewExclusion,
    ReviewTask,
    Role,
    TaskStatus,
    User,
)
from services.policy import Actor
from services.views import ExclusionView

ACTIVE = (TaskStatus.assigned, TaskStatus.started, TaskStatus.submitted)


# --- the pure planner ----------------------------------------------------------------------


@dataclass(frozen=True)
class PaperRef:
    paper: int
    author: int


@dataclass(frozen=True)
class TaskRef:
    paper: int
    reviewer: int
    movable: bool = True  # assigned (not opened) and not placed by hand


@dataclass
class Plan:
    """What to change: tasks to create and (paper, reviewer) tasks to withdraw."""

    create: list[tuple[int, int]] = field(default_factory=list)
    withdraw: list[tuple[int, int]] = field(default_factory=list)


class _State:
    def __init__(
        self,
        papers: Sequence[PaperRef],
        pool: Sequence[int],
        exclusions: Collection[tuple[int, int]],
    ) -> None:
        self.author = {p.paper: p.author for p in papers}
        self.paper_of: dict[int, list[int]] = defaultdict(list)  # author → papers
        for p in papers:
            self.paper_of[p.author].append(p.paper)
        self.pool = set(pool)
        self.excluded = set(exclusions)  # (reviewer, author)
        self.reviewers: dict[int, set[int]] = defaultdict(set)  # paper → reviewers
        self.load: dict[int, int] = dict.fromkeys(pool, 0)
        # (reviewer, author) pairs with a live task, for the reciprocity check.
        self.pairs: dict[tuple[int, int], int] = defaultdict(int)

    def eligible(self, reviewer: int, paper: int) -> bool:
        author = self.author[paper]
        return (
            reviewer != author
            and (reviewer, author) not in self.excluded
            and reviewer not in self.reviewers[paper]
        )

    def reciprocal(self, reviewer: int, paper: int) -> bool:
        return self.pairs.get((self.author[paper], reviewer), 0) > 0

    def add(self, reviewer: int, paper: int) -> None:
        self.reviewers[paper].add(reviewer)
        self.load[reviewer] = self.load.get(reviewer, 0) + 1
        self.pairs[(reviewer, self.author[paper])] += 1

    def remove(self, reviewer: int, paper: int) -> None:
        self.reviewers[paper].discard(reviewer)
        self.load[reviewer] -= 1
        self.pairs[(reviewer, self.author[paper])] -= 1


def plan(
    papers: Sequence[PaperRef],
    pool: Sequence[int],
    *,
    k: int,
    seed: str,
    exclusions: Collection[tuple[int, int]] = (),
    existing: Sequence[TaskRef] = (),
) -> Plan:
    """Give each paper k reviewers from the pool (fewer only when fewer are eligible)."""
    if k < 1:
        raise ValueError("k must be at least 1")
    # Seeded on purpose: the same seed must give the same allocation (not a secret).
    rng = random.Random(f"peerboard-allocation:{seed}")  # noqa: S311
    papers = sorted(papers, key=lambda p: p.paper)
    order = sorted(set(pool))
    rng.shuffle(order)
    circulant = _circulant(papers, order, k, exclusions) if not existing else None
    if circulant is not None:
        return Plan(create=circulant)
    rank = {r: i for i, r in enumerate(order)}
    state = _State(papers, order, exclusions)
    result = Plan()

    known = {p.paper for p in papers}
    movable: set[tuple[int, int]] = set()  # existing tasks nobody has opened
    for task in sorted(existing, key=lambda t: (t.paper, t.reviewer)):
        if task.paper not in known:
            continue
        if task.movable and task.reviewer not in state.pool:
            result.withdraw.append((task.paper, task.reviewer))
            continue
        state.add(task.reviewer, task.paper)
        if task.movable:
            movable.add((task.paper, task.reviewer))

    # Papers with the fewest eligible reviewers go first, the rest in seeded random order.
    paper_order = [p.paper for p in papers]
    rng.shuffle(paper_order)
    heap = [(state.load[r], rank[r], r) for r in order]
    heapq.heapify(heap)
    created: list[tuple[int, int]] = []
    for paper in paper_order:
        need = k - len(state.reviewers[paper])
        if need <= 0:
            continue
        chosen: list[tuple[int, int, int]] = []
        fallback: list[tuple[int, int, int]] = []
        held: list[tuple[int, int, int]] = []
        while heap and len(chosen) < need:
            entry = heapq.heappop(heap)
            load, _, reviewer = entry
            if load != state.load[reviewer]:  # stale entry
                continue
            held.append(entry)
            if not state.eligible(reviewer, paper):
                continue
            if state.reciprocal(reviewer, paper):
                fallback.append(entry)
                continue
            chosen.append(entry)
        chosen.extend(fallback[: need - len(chosen)])
        picked = {e[2] for e in chosen}
        for entry in held:
            reviewer = entry[2]
            if reviewer in picked:
                state.add(reviewer, paper)
                created.append((paper, reviewer))
                heapq.heappush(heap, (state.load[reviewer], entry[1], reviewer))
            else:
                heapq.heappush(heap, entry)

    created_set = set(created)
    moved = _balance(state, created_set, movable, rank)
    result.withdraw.extend(sorted(moved))
    _break_reciprocal_pairs(state, created_set, rank)
    result.create = sorted(created_set)
    return result


def _circulant(
    papers: Sequence[PaperRef],
    order: Sequence[int],
    k: int,
    exclusions: Collection[tuple[int, int]],
) -> list[tuple[int, int]] | None:
    """The common case in linear time: everyone in the pool submitted one paper and the
    cohort is larger than 2k. In the pool's seeded random cycle, each author is reviewed by
    the next k people: nobody reviews themselves or one paper twice, every load is exactly
    k, and there is no A↔B pair (that would need two offsets in 1..k summing to n > 2k).
    None when the case does not apply, or the cycle meets an exclusion (the general
    planner then works around it)."""
    n = len(order)
    if n <= 2 * k or len(papers) != n:
        return None
    paper_by_author = {p.author: p.paper for p in papers}
    if len(paper_by_author) != n or paper_by_author.keys() != set(order):
        return None
    excluded = set(exclusions)
    position = {author: i for i, author in enumerate(order)}
    ring = [*order, *order[:k]]  # the cycle, unrolled so that i + j needs no modulo
    created: list[tuple[int, int]] = []
    for p in papers:  # sorted by paper: the plan comes out sorted without a 30,000-item sort
        i = position[p.author]
        reviewers = sorted(ring[i + 1 : i + k + 1])
        if excluded and any((r, p.author) in excluded for r in reviewers):
            return None
        created.extend((p.paper, r) for r in reviewers)
    return created


def _balance(
    state: _State,
    created: set[tuple[int, int]],
    movable: set[tuple[int, int]],
    rank: dict[int, int],
) -> set[tuple[int, int]]:
    """Move tasks from the busiest reviewers to the least busy ones until loads are within
    one (or no legal move is left). Tasks made in this run move first; an existing task
    moves only if nobody has opened it. Returns the existing tasks that moved away."""
    moved: set[tuple[int, int]] = set()
    if not state.pool:
        return moved
    by_reviewer: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for task in sorted(created):
        by_reviewer[task[1]].append(task)
    for task in sorted(movable):
        by_reviewer[task[1]].append(task)
    for _ in range(len(created) + len(movable) + 1):
        pool_loads = sorted(state.pool, key=lambda r: (state.load[r], rank[r]))
        low, high = pool_loads[0], pool_loads[-1]
        if state.load[high] - state.load[low] <= 1:
            return moved
        top, bottom = state.load[high], state.load[low]
        highs = [r for r in reversed(pool_loads) if state.load[r] == top]
        lows = [r for r in pool_loads if state.load[r] == bottom]
        moves = _find_move(state, highs, lows, by_reviewer)
        if not moves:
            return moved
        for giver, task, target in moves:
            paper = task[0]
            state.remove(giver, paper)
            state.add(target, paper)
            by_reviewer[giver].remove(task)
            by_reviewer[target].insert(0, (paper, target))
            if task in created:
                created.discard(task)
            else:
                moved.add(task)
            created.add((paper, target))
    return moved


def _find_move(
    state: _State,
    highs: list[int],
    lows: list[int],
    by_reviewer: dict[int, list[tuple[int, int]]],
) -> list[tuple[int, tuple[int, int], int]]:
    """One task from a busiest to a least busy reviewer; failing that, a chain of two
    (busiest → someone in between, who passes one of theirs to the least busy)."""
    for giver in highs:
        for task in by_reviewer[giver]:
            for target in sorted(lows, key=lambda r: state.reciprocal(r, task[0])):
                if state.eligible(target, task[0]):
                    return [(giver, task, target)]
    top = state.load[highs[0]]
    middle = [r for r in state.pool if state.load[r] < top and r not in lows]
    for giver in highs:
        for task in by_reviewer[giver]:
            for mid in middle:
                if not state.eligible(mid, task[0]):
                    continue
                for passed in by_reviewer[mid]:
                    if passed[0] == task[0]:
                        continue
                    for target in lows:
                        if state.eligible(target, passed[0]):
                            return [(mid, passed, target), (giver, task, mid)]
    return []


def _break_reciprocal_pairs(
    state: _State, created: set[tuple[int, int]], rank: dict[int, int]
) -> None:
    """Swap reviewers between two new tasks to undo A↔B pairs; loads stay as they are."""
    tasks = sorted(created, key=lambda t: (rank.get(t[1], 0), t[0]))
    for paper, reviewer in tasks:
        if (paper, reviewer) not in created or not state.reciprocal(reviewer, paper):
            continue
        for other_paper, other in tasks:
            if (other_paper, other) not in created or other == reviewer or other_paper == paper:
                continue
            state.remove(reviewer, paper)
            state.remove(other, other_paper)
            ok = (
                state.eligible(other, paper)
                and state.eligible(reviewer, other_paper)
                and not state.reciprocal(other, paper)
            )
            if ok:
                state.add(other, paper)
                ok = not state.reciprocal(reviewer, other_paper)
                if ok:
                    state.add(reviewer, other_paper)
                else:
                    state.remove(other, paper)
            if ok:
                created.difference_update({(paper, reviewer), (other_paper, other)})
                created.update({(paper, other), (other_paper, reviewer)})
                break
            state.add(reviewer, paper)
            state.add(other, other_paper)


def reciprocal_pairs(
    tasks: Iterable[tuple[int, int]], author_of: dict[int, int]
) -> set[frozenset[int]]:
    """The A↔B pairs in a set of (paper, reviewer) tasks (for tests and the dashboard)."""
    pairs = {(reviewer, author_of[paper]) for paper, reviewer in tasks}
    return {frozenset(p) for p in pairs if (p[1], p[0]) in pairs}


# --- use cases -----------------------------------------------------------------------------


async def _pool(session: AsyncSession, assignment: Assignment) -> list[int]:
    """The reviewer pool: the cohort's students right now."""
    rows = await session.execute(
        select(Membership.user_id).where(
            Membership.cohort_id == assignment.cohort_id, Membership.role == Role.student
        )
    )
    return [uid for (uid,) in rows.all()]


def _new_number(taken: set[int]) -> int:
    # The smallest free number; tasks are created in a shuffled order, so which reviewer is
    # "Reviewer 1" is random (never by id, name or time). Numbers of withdrawn tasks stay
    # taken, so an alias never changes hands.
    number = next(n for n in range(1, len(taken) + 2) if n not in taken)
    taken.add(number)
    return number


def new_public_id() -> str:
    return secrets.token_urlsafe(12)


async def apply_plan(
    session: AsyncSession, *, assignment: Assignment, result: Plan, by_hand: bool = False
) -> list[ReviewTask]:
    """Write a plan: withdraw, then create tasks with random per-paper reviewer numbers."""
    assert assignment.id is not None
    made: list[ReviewTask] = []
    if result.withdraw:
        rows = await session.execute(
            select(ReviewTask).where(
                ReviewTask.assignment_id == assignment.id,
                col(ReviewTask.status).in_([TaskStatus.assigned, TaskStatus.started]),
            )
        )
        gone = set(result.withdraw)
        for task in rows.scalars():
            if (task.paper_id, task.reviewer_id) in gone:
                task.status = TaskStatus.withdrawn
                session.add(task)
                await events.record(
                    session,
                    channel=events.assignment_channel(assignment.id),
                    assignment_id=assignment.id,
                    kind="task.withdrawn",
                    task_id=task.id,
                )
    numbers: dict[int, set[int]] = defaultdict(set)
    if result.create:
        rows2 = await session.execute(
            select(ReviewTask.paper_id, ReviewTask.reviewer_number).where(
                ReviewTask.assignment_id == assignment.id
            )
        )
        for paper_id, number in rows2.all():
            numbers[paper_id].add(number)
    # Shuffle creation order so ids say nothing about who was picked first.
    ordered = list(result.create)
    secrets.SystemRandom().shuffle(ordered)
    for paper_id, reviewer_id in ordered:
        task = ReviewTask(
            public_id=new_public_id(),
            assignment_id=assignment.id,
            paper_id=paper_id,
            reviewer_id=reviewer_id,
            reviewer_number=_new_number(numbers[paper_id]),
            assigned_by_hand=by_hand,
        )
        session.add(task)
        made.append(task)
    await session.flush()
    for task in made:
        await events.record(
            session,
            channel=events.assignment_channel(assignment.id),
            assignment_id=assignment.id,
            kind="task.assigned",
            task_id=task.id,
        )
    await _tell_reviewers(session, assignment=assignment, made=made)
    return made


async def _tell_reviewers(
    session: AsyncSession, *, assignment: Assignment, made: list[ReviewTask]
) -> None:
    # One notice per reviewer, however many papers they got; it names no paper or author.
    counts: dict[int, int] = defaultdict(int)
    for task in made:
        counts[task.reviewer_id] += 1
    for reviewer_id in sorted(counts):
        n = counts[reviewer_id]
        await notifications.notify(
            session,
            user_id=reviewer_id,
            kind=notifications.REVIEW_ASSIGNED,
            assignment_id=assignment.id,
            link=f"/assignments/{assignment.id}/review-tasks",
            message=(
                f"You have {'a new paper' if n == 1 else f'{n} new papers'} to review "
                f"in “{assignment.title}”."
            ),
        )


async def _inputs(
    session: AsyncSession, assignment: Assignment
) -> tuple[list[PaperRef], list[int], set[tuple[int, int]], list[TaskRef]]:
    papers = await session.execute(
        select(Paper.id, Paper.author_id).where(
            Paper.assignment_id == assignment.id, col(Paper.submitted_at).is_not(None)
        )
    )
    refs = [PaperRef(pid, aid) for pid, aid in papers.all()]
    excl = await session.execute(
        select(ReviewExclusion.reviewer_id, ReviewExclusion.author_id).where(
            ReviewExclusion.assignment_id == assignment.id
        )
    )
    tasks = await session.execute(
        select(
            ReviewTask.paper_id,
            ReviewTask.reviewer_id,
            ReviewTask.status,
            ReviewTask.assigned_by_hand,
        ).where(ReviewTask.assignment_id == assignment.id, col(ReviewTask.status).in_(ACTIVE))
    )
    pool = await _pool(session, assignment)
    members = set(pool)
    # A started draft of someone who left can never be finished: it moves too.
    existing = [
        TaskRef(
            pid,
            rid,
            movable=(status is TaskStatus.assigned and not by_hand)
            or (rid not in members and status is not TaskStatus.submitted),
        )
        for pid, rid, status, by_hand in tasks.all()
    ]
    return refs, pool, {(r, a) for r, a in excl.all()}, existing


async def heal(session: AsyncSession, *, assignment: Assignment) -> list[ReviewTask]:
    """Top every submitted paper up to k reviewers and move the unstarted tasks of people
    who left the pool; started and submitted reviews are never touched. A no-op unless the
    review phase is on (allocation runs when it starts)."""
    if assignment.allocation_seed is None:
        return []
    papers, pool, exclusions, existing = await _inputs(session, assignment)
    result = plan(
        papers,
        pool,
        k=assignment.reviews_per_paper,
        seed=assignment.allocation_seed,
        exclusions=exclusions,
        existing=existing,
    )
    return await apply_plan(session, assignment=assignment, result=result)


async def heal_cohort(session: AsyncSession, *, cohort_id: int) -> list[ReviewTask]:
    """After someone joins, leaves or changes role: heal every assignment of the cohort that
    is in review, so their unstarted tasks move and every paper still reaches k."""
    rows = await session.execute(
        select(Assignment).where(
            Assignment.cohort_id == cohort_id, Assignment.phase == Phase.review
        )
    )
    made: list[ReviewTask] = []
    for assignment in rows.scalars():
        made += await heal(session, assignment=assignment)
    return made


async def start_allocation(session: AsyncSession, *, assignment: Assignment) -> list[ReviewTask]:
    """Draw and store the seed (once), then allocate; called when review opens."""
    if assignment.allocation_seed is None:
        assignment.allocation_seed = secrets.token_hex(16)
        session.add(assignment)
    return await heal(session, assignment=assignment)


async def _managed_assignment(
    session: AsyncSession, *, actor: Actor, assignment_id: int
) -> Assignment:
    assignment = await policy.access_assignment(session, actor=actor, assignment_id=assignment_id)
    if not policy.can_manage_reviews(actor, assignment):
        raise NotFound("No such assignment.")
    return assignment


async def run_allocation(
    session: AsyncSession, *, actor: Actor, assignment_id: int
) -> list[ReviewTask]:
    """Moderators (re)run allocation during review: it only fills gaps, never reshuffles."""
    assignment = await _managed_assignment(session, actor=actor, assignment_id=assignment_id)
    if not policy.allocation_open(assignment):
        raise Conflict("Reviewers are allocated once the review phase has started.")
    return await start_allocation(session, assignment=assignment)


async def _student(
    session: AsyncSession, assignment: Assignment, user_id: int, field: str = "reviewer"
) -> User:
    member = await session.scalar(
        select(Membership).where(
            Membership.cohort_id == assignment.cohort_id,
            Membership.user_id == user_id,
            Membership.role == Role.student,
        )
    )
    user = await session.get(User, user_id) if member is not None else None
    if user is None:
        raise Invalid(problems=[Problem("is not a student of this cohort", field=field)])
    return user


async def _audit_by_hand(
    session: AsyncSession, actor: Actor, assignment: Assignment, action: str, paper: Paper | None
) -> None:
    """By-hand allocation changes are moderator actions, so they are audited; the entry names
    the paper's code but not the reviewer, so the audit log (which instructors read) never
    links a reviewer to a paper: that takes a reveal, with a reason."""
    await audit.record(
        session,
        actor=actor,
        cohort_id=assignment.cohort_id,
        action=action,
        target_type="paper" if paper is not None else "assignment",
        target_id=paper.code if paper is not None else assignment.id or 0,
        details={"assignment": assignment.id},
    )


async def assign_by_hand(
    session: AsyncSession,
    *,
    actor: Actor,
    assignment_id: int,
    paper_public_id: str,
    reviewer_id: int | None = None,
) -> ReviewTask:
    """A moderator adds a reviewer to a paper (never its author, an excluded pair, or twice).
    Without a named reviewer the least-loaded eligible student is chosen, which tells the
    moderator nothing about who wrote or reviews the paper. A named reviewer can (a refusal
    says why), so the web layer calls `announce_named_choice` first."""
    assignment = await _managed_assignment(session, actor=actor, assignment_id=assignment_id)
    paper = await session.scalar(
        select(Paper).where(
            Paper.public_id == paper_public_id, Paper.assignment_id == assignment.id
        )
    )
    if paper is None:
        raise NotFound("No such paper.")
    if reviewer_id is None:
        reviewer_id = await _pick_reviewer(session, assignment, paper)
    else:
        await _student(session, assignment, reviewer_id)
        await _check_pair(session, assignment, paper, reviewer_id)
    if assignment.allocation_seed is None:
        assignment.allocation_seed = secrets.token_hex(16)
    assert paper.id is not None
    (task,) = await apply_plan(
        session, assignment=assignment, result=Plan(create=[(paper.id, reviewer_id)]), by_hand=True
    )
    await _audit_by_hand(session, actor, assignment, "review.assign", paper)
    return task


async def _check_pair(
    session: AsyncSession, assignment: Assignment, paper: Paper, reviewer_id: int
) -> None:
    if reviewer_id == paper.author_id:
        raise Invalid(problems=[Problem("may not review their own paper", field="reviewer")])
    excluded = await session.scalar(
        select(ReviewExclusion.id).where(
            ReviewExclusion.assignment_id == assignment.id,
            ReviewExclusion.reviewer_id == reviewer_id,
            ReviewExclusion.author_id == paper.author_id,
        )
    )
    if excluded is not None:
        raise Invalid(problems=[Problem("is excluded from this paper", field="reviewer")])
    dup = await session.scalar(
        select(ReviewTask.id).where(
            ReviewTask.paper_id == paper.id,
            ReviewTask.reviewer_id == reviewer_id,
            col(ReviewTask.status).in_(ACTIVE),
        )
    )
    if dup is not None:
        raise Conflict("That person already reviews this paper.")


async def _pick_reviewer(session: AsyncSession, assignment: Assignment, paper: Paper) -> int:
    """The least-loaded student who may review this paper (not its author, not already one
    of its reviewers, not kept apart from its author); ties are broken at random."""
    pool = set(await _pool(session, assignment))
    taken = set(
        (
            await session.execute(
                select(ReviewTask.reviewer_id).where(
                    ReviewTask.paper_id == paper.id, col(ReviewTask.status).in_(ACTIVE)
                )
            )
        ).scalars()
    )
    kept_apart = set(
        (
            await session.execute(
                select(ReviewExclusion.reviewer_id).where(
                    ReviewExclusion.assignment_id == assignment.id,
                    ReviewExclusion.author_id == paper.author_id,
                )
            )
        ).scalars()
    )
    eligible = pool - taken - kept_apart - {paper.author_id}
    if not eligible:
        raise Conflict(
            "No other student can take a review of this paper: all of them already review it, "
            "wrote it, or are kept apart from its author.",
            field="paper",
        )
    loads = dict(
        (
            await session.execute(
                select(ReviewTask.reviewer_id, sa.func.count())
                .where(
                    ReviewTask.assignment_id == assignment.id, col(ReviewTask.status).in_(ACTIVE)
                )
                .group_by(col(ReviewTask.reviewer_id))
            )
        ).all()
    )
    lightest = min(loads.get(uid, 0) for uid in eligible)
    return secrets.choice(sorted(uid for uid in eligible if loads.get(uid, 0) == lightest))


async def announce_named_choice(
    session: AsyncSession,
    *,
    actor: Actor,
    assignment_id: int,
    reason: str,
    paper_public_id: str | None = None,
    task_public_id: str | None = None,
) -> None:
    """Naming the reviewer of a paper can tell a moderator who wrote it or who reviews it
    (the refusals say so), so, like a reveal, it takes a reason and is audited first: the
    caller commits this before the attempt, so a refused probe is on record too. The entry
    names the paper, never the reviewer."""
    if task_public_id is not None:
        task = await session.scalar(
            select(ReviewTask).where(ReviewTask.public_id == task_public_id)
        )
        if task is None:
            raise NotFound("No such review task.")
        assignment = await _managed_assignment(
            session, actor=actor, assignment_id=task.assignment_id
        )
        paper = await session.get(Paper, task.paper_id)
        action = "review.move.named"
    else:
        assignment = await _managed_assignment(session, actor=actor, assignment_id=assignment_id)
        paper = await session.scalar(
            select(Paper).where(
                Paper.public_id == paper_public_id, Paper.assignment_id == assignment.id
            )
        )
        action = "review.assign.named"
    if paper is None:
        raise NotFound("No such paper.")
    cleaned = audit.clean_reason(reason)
    await audit.record(
        session,
        actor=actor,
        cohort_id=assignment.cohort_id,
        action=action,
        target_type="paper",
        target_id=paper.code,
        reason=cleaned,
        details={"assignment": assignment.id},
    )


async def move_task(
    session: AsyncSession, *, actor: Actor, task_public_id: str, reviewer_id: int | None = None
) -> ReviewTask:
    """A moderator moves an unsubmitted task to another student (named, or else the
    least-loaded eligible one); the old task is withdrawn."""
    task = await session.scalar(select(ReviewTask).where(ReviewTask.public_id == task_public_id))
    if task is None:
        raise NotFound("No such review task.")
    assignment = await _managed_assignment(session, actor=actor, assignment_id=task.assignment_id)
    if task.status not in (TaskStatus.assigned, TaskStatus.started):
        raise Conflict("Only a task that is not submitted can move.")
    paper = await session.get(Paper, task.paper_id)
    assert paper is not None
    if reviewer_id is None:
        reviewer_id = await _pick_reviewer(session, assignment, paper)
    else:
        await _student(session, assignment, reviewer_id)
        await _check_pair(session, assignment, paper, reviewer_id)
    task.status = TaskStatus.withdrawn
    session.add(task)
    (new,) = await apply_plan(
        session,
        assignment=assignment,
        result=Plan(create=[(task.paper_id, reviewer_id)]),
        by_hand=True,
    )
    await _audit_by_hand(session, actor, assignment, "review.move", paper)
    return new


async def exclude_pair(
    session: AsyncSession, *, actor: Actor, assignment_id: int, reviewer_id: int, author_id: int
) -> ReviewExclusion:
    """A moderator records a conflict of interest: this reviewer never gets this author's
    paper in any later allocation (a review already allocated stays; move it by hand).
    Recording the same pair twice is not an error."""
    assignment = await _managed_assignment(session, actor=actor, assignment_id=assignment_id)
    if reviewer_id == author_id:
        raise Invalid(problems=[Problem("must be two different people", field="author")])
    await _student(session, assignment, reviewer_id, "reviewer")
    await _student(session, assignment, author_id, "author")
    existing = await session.scalar(
        select(ReviewExclusion).where(
            ReviewExclusion.assignment_id == assignment.id,
            ReviewExclusion.reviewer_id == reviewer_id,
            ReviewExclusion.author_id == author_id,
        )
    )
    if existing is not None:
        return existing
    row = ReviewExclusion(
        assignment_id=assignment.id or 0, reviewer_id=reviewer_id, author_id=author_id
    )
    session.add(row)
    await session.flush()
    await _audit_by_hand(session, actor, assignment, "review.exclude", None)
    return row


async def list_exclusions(
    session: AsyncSession, *, actor: Actor, assignment_id: int
) -> list[ExclusionView]:
    """The assignment's conflicts of interest, for its staff, by reviewer name."""
    assignment = await _managed_assignment(session, actor=actor, assignment_id=assignment_id)
    reviewer, author = aliased(User), aliased(User)
    rows = await session.execute(
        select(
            col(ReviewExclusion.id), reviewer.display_name, author.display_name,
            col(ReviewExclusion.created_at),
        )
        .join(reviewer, col(reviewer.id) == col(ReviewExclusion.reviewer_id))
        .join(author, col(author.id) == col(ReviewExclusion.author_id))
        .where(ReviewExclusion.assignment_id == assignment.id)
        .order_by(reviewer.display_name, author.display_name)
    )  # fmt: skip
    return [
        ExclusionView(id=i, reviewer=r, author=a, created_at=at)
        for i, r, a, at in rows.all()
        if i is not None
    ]


async def remove_exclusion(
    session: AsyncSession, *, actor: Actor, assignment_id: int, exclusion_id: int
) -> None:
    """Staff lift a conflict of interest (later allocations may pair them again); audited."""
    assignment = await _managed_assignment(session, actor=actor, assignment_id=assignment_id)
    row = await session.get(ReviewExclusion, exclusion_id)
    if row is None or row.assignment_id != assignment.id:
        raise NotFound("No such conflict of interest.")
    await session.delete(row)
    await session.flush()
    await _audit_by_hand(session, actor, assignment, "review.exclude.lift", None)
