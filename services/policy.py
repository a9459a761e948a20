"""All authorization: who may see and do what. Every service asks here; nothing else decides.

- `can_*` predicates answer a yes/no for an actor and an object already loaded.
- `access_*` loaders fetch an object *and* check it, raising NotFound both when it is
  missing and when the actor may not see it, so existence never leaks.
- `visible_*` return the filter that list queries use; a test checks they agree with the
  single-object `can_*` check.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select

from services.errors import NotFound
from services.models import (
    Assignment,
    Cohort,
    Membership,
    Paper,
    Phase,
    ReviewTask,
    Role,
    TaskStatus,
)

_EMPTY: Mapping[int, Role] = MappingProxyType({})


@dataclass(frozen=True)
class Actor:
    """Who is asking: a signed-in person with their cohort roles, or nobody."""

    user_id: int | None
    is_administrator: bool = False
    roles: Mapping[int, Role] = field(default_factory=lambda: _EMPTY)
    # True only for the command line (an operator with shell access to the server).
    is_system: bool = False

    @classmethod
    def anonymous(cls) -> Actor:
        return cls(user_id=None)

    @classmethod
    def system(cls) -> Actor:
        return cls(user_id=None, is_administrator=True, is_system=True)

    @classmethod
    def local_operator(cls) -> Actor:
        """The pre-sign-in demo viewer: only ever built by a development-like web server."""
        return cls(user_id=None, is_administrator=True)

    def role_in(self, cohort_id: int) -> Role | None:
        return self.roles.get(cohort_id)


async def load_actor(session: AsyncSession, *, user_id: int, is_administrator: bool) -> Actor:
    """The actor for a signed-in person, with every cohort role they hold right now."""
    rows = await session.execute(
        select(Membership.cohort_id, Membership.role).where(Membership.user_id == user_id)
    )
    return actor_with_roles(user_id, is_administrator=is_administrator, held=rows.all())


def actor_with_roles(
    user_id: int, *, is_administrator: bool, held: Sequence[tuple[int, Any]]
) -> Actor:
    """The actor for a person from their memberships as read: (cohort id, role) pairs."""
    return Actor(
        user_id=user_id,
        is_administrator=is_administrator,
        roles=MappingProxyType({cohort_id: Role(role) for cohort_id, role in held}),
    )


async def load_actors(session: AsyncSession, *, user_ids: Collection[int]) -> dict[int, Actor]:
    """`load_actor` for many people at once (two queries); people who no longer exist are
    left out."""
    if not user_ids:
        return {}
    from services.models import User

    wanted = list(user_ids)
    admins = dict(
        (
            await session.execute(
                select(col(User.id), col(User.is_administrator)).where(col(User.id).in_(wanted))
            )
        ).all()
    )
    roles: dict[int, dict[int, Role]] = {uid: {} for uid in admins if uid is not None}
    rows = await session.execute(
        select(Membership.user_id, Membership.cohort_id, Membership.role).where(
            col(Membership.user_id).in_(wanted)
        )
    )
    for user_id, cohort_id, role in rows.all():
        if user_id in roles:
            roles[user_id][cohort_id] = Role(role)
    return {
        uid: Actor(
            user_id=uid,
            is_administrator=bool(admins[uid]),
            roles=MappingProxyType(held),
        )
        for uid, held in roles.items()
    }


# --- cohorts -------------------------------------------------------------------------------


def can_create_cohort(actor: Actor) -> bool:
    """Administrators, and people who already teach a cohort, create cohorts."""
    return actor.is_administrator or any(r is Role.instructor for r in actor.roles.values())


def can_view_cohort(actor: Actor, cohort: Cohort) -> bool:
    """Members of a cohort, and administrators, may see it."""
    return actor.is_administrator or (cohort.id is not None and cohort.id in actor.roles)


def can_manage_cohort(actor: Actor, cohort: Cohort) -> bool:
    """Moderators and instructors of a cohort (and administrators) manage its assignments."""
    if actor.is_administrator:
        return True
    role = actor.role_in(cohort.id) if cohort.id is not None else None
    return role is not None and role.is_staff


def can_set_time_zone(actor: Actor, cohort: Cohort) -> bool:
    """Instructors (and administrators) set the time zone a cohort's deadlines are in."""
    return actor.is_administrator or actor.role_in(cohort.id or 0) is Role.instructor


def can_manage_members(actor: Actor, cohort: Cohort) -> bool:
    """Moderators and instructors manage a cohort's members, join code and group rules."""
    return can_manage_cohort(actor, cohort)


def can_change_member(
    actor: Actor, cohort: Cohort, *, target_user_id: int, current: Role, new: Role | None
) -> bool:
    """Instructors change anyone's role; moderators manage students and moderators but never
    touch an instructor or make one. Nobody changes their own role (no self-promotion and
    no locking oneself out); `new=None` means removal."""
    if not can_manage_members(actor, cohort) or target_user_id == actor.user_id:
        return False
    if actor.is_administrator or actor.role_in(cohort.id or 0) is Role.instructor:
        return True
    return current is not Role.instructor and new is not Role.instructor


def can_change_group_rule(actor: Actor, cohort: Cohort, *, role: Role) -> bool:
    """Moderators and instructors add and remove a cohort's group rules, but only
    instructors touch a rule that makes instructors (as with changing a member's role)."""
    if not can_manage_members(actor, cohort):
        return False
    if role is not Role.instructor:
        return True
    return actor.is_administrator or actor.role_in(cohort.id or 0) is Role.instructor


def can_read_audit_log(actor: Actor, cohort: Cohort) -> bool:
    """Instructors (and administrators) read a cohort's audit log."""
    return actor.is_administrator or actor.role_in(cohort.id or 0) is Role.instructor


def can_manage_webhooks(actor: Actor, cohort: Cohort) -> bool:
    """Instructors (and administrators) send a cohort's events to other tools."""
    return actor.is_administrator or actor.role_in(cohort.id or 0) is Role.instructor


def can_sync_roster(actor: Actor, cohort: Cohort) -> bool:
    """Instructors (and administrators) ask the course's LMS for its roster now."""
    return actor.is_administrator or actor.role_in(cohort.id or 0) is Role.instructor


def can_manage_grades(actor: Actor, cohort: Cohort) -> bool:
    """Instructors (and administrators) choose what goes to the LMS's gradebook, send it,
    and read what was sent."""
    return actor.is_administrator or actor.role_in(cohort.id or 0) is Role.instructor


def visible_cohorts(actor: Actor) -> ColumnElement[bool]:
    if actor.is_administrator:
        return sa.true()
    return col(Cohort.id).in_(list(actor.roles))


async def access_cohort(session: AsyncSession, *, actor: Actor, slug: str) -> Cohort:
    """Load a cohort the actor may see, or raise NotFound."""
    cohort = (await session.execute(select(Cohort).where(Cohort.slug == slug))).scalar_one_or_none()
    if cohort is None or not can_view_cohort(actor, cohort):
        raise NotFound("No such cohort.")
    return cohort


# --- assignments ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AssignmentState:
    """What the discussion rules read of an assignment (its cohort and phase), for checks
    made from a scope without loading the assignment (an ORM instance costs ~0.1 ms)."""

    cohort_id: int
    phase: Phase


def can_view_assignment(actor: Actor, assignment: Assignment | AssignmentState) -> bool:
    """Cohort staff see every assignment; students see it once it leaves the draft phase."""
    if actor.is_administrator:
        return True
    role = actor.role_in(assignment.cohort_id)
    if role is None:
        return False
    return role.is_staff or assignment.phase is not Phase.draft


def visible_assignments(actor: Actor) -> ColumnElement[bool]:
    if actor.is_administrator:
        return sa.true()
    staff = [cid for cid, role in actor.roles.items() if role.is_staff]
    students = [cid for cid, role in actor.roles.items() if not role.is_staff]
    return sa.or_(
        col(Assignment.cohort_id).in_(staff),
        sa.and_(col(Assignment.cohort_id).in_(students), col(Assignment.phase) != Phase.draft),
    )


async def access_assignment(
    session: AsyncSession, *, actor: Actor, assignment_id: int
) -> Assignment:
    """Load an assignment the actor may see, or raise NotFound."""
    assignment = await session.get(Assignment, assignment_id)
    if assignment is None or not can_view_assignment(actor, assignment):
        raise NotFound("No such assignment.")
    return assignment


# === discussions (issue 4) ==================================================================
# A discussion lives under a question of an assignment; who may read it is who may see the
# assignment. Staff (cohort moderators and instructors, and administrators) moderate, see
# real names behind aliases and are exempt from "post first".


@dataclass(frozen=True)
class DiscussionScope:
    """What every discussion decision needs: where the thing lives, and the asker's standing."""

    cohort_id: int
    assignment_id: int
    assignment_phase: Phase
    allow_anonymous: bool
    question_id: int
    post_first: bool
    # Has the actor opened a thread under this question? (post-first)
    has_posted: bool


def is_discussion_staff(actor: Actor, cohort_id: int) -> bool:
    """Cohort moderators and instructors, and administrators, run a cohort's discussions."""
    if actor.is_administrator:
        return True
    role = actor.role_in(cohort_id)
    return role is not None and role.is_staff


def can_read_discussion(actor: Actor, assignment: Assignment | AssignmentState) -> bool:
    """Whoever may see the assignment may read its questions' discussions."""
    return can_view_assignment(actor, assignment)


def can_see_others_threads(actor: Actor, scope: DiscussionScope) -> bool:
    """With "post first", a student sees classmates' threads only after opening their own."""
    return (not scope.post_first) or scope.has_posted or is_discussion_staff(actor, scope.cohort_id)


def can_view_thread(actor: Actor, scope: DiscussionScope, *, author_id: int, hidden: bool) -> bool:
    """A thread is visible to readers of the discussion, subject to post-first; a thread whose
    opening post is hidden is visible only to staff and its author."""
    if actor.user_id is not None and author_id == actor.user_id:
        return True
    if is_discussion_staff(actor, scope.cohort_id):
        return True
    return can_see_others_threads(actor, scope) and not hidden


def visible_threads(actor: Actor, scope: DiscussionScope) -> ColumnElement[bool]:
    """The list filter matching `can_view_thread` (threads joined to their opening post)."""
    from services.models import Post, Thread

    own = col(Thread.author_id) == (actor.user_id if actor.user_id is not None else -1)
    if is_discussion_staff(actor, scope.cohort_id):
        return sa.true()
    if not can_see_others_threads(actor, scope):
        return own
    return sa.or_(own, col(Post.hidden_at).is_(None))


def can_post(actor: Actor, scope: DiscussionScope) -> bool:
    """Signed-in readers of a discussion may open threads (not in a closed assignment)."""
    return actor.user_id is not None and scope.assignment_phase is not Phase.closed


def can_reply(actor: Actor, scope: DiscussionScope, *, locked: bool) -> bool:
    """Replies need posting rights and an unlocked thread (staff may still reply)."""
    if not can_post(actor, scope):
        return False
    return not locked or is_discussion_staff(actor, scope.cohort_id)


def can_post_anonymously(actor: Actor, scope: DiscussionScope) -> bool:
    """Students post anonymously to classmates where the assignment allows it."""
    return scope.allow_anonymous and not is_discussion_staff(actor, scope.cohort_id)


def can_see_author(
    actor: Actor, scope: DiscussionScope, *, author_id: int, anonymous: bool
) -> bool:
    """Names behind anonymous posts are for staff and the author only."""
    if not anonymous:
        return True
    if actor.user_id is not None and actor.user_id == author_id:
        return True
    return is_discussion_staff(actor, scope.cohort_id)


def can_edit_post(actor: Actor, *, author_id: int, deleted: bool) -> bool:
    """Only the author edits a post, and not once it is deleted."""
    return not deleted and actor.user_id is not None and actor.user_id == author_id


def can_delete_post(actor: Actor, scope: DiscussionScope, *, author_id: int) -> bool:
    """The author, or staff, delete a post."""
    own = actor.user_id is not None and actor.user_id == author_id
    return own or is_discussion_staff(actor, scope.cohort_id)


def can_read_post_body(
    actor: Actor, scope: DiscussionScope, *, author_id: int, hidden: bool
) -> bool:
    """A hidden post's text is for staff and its author; others see a placeholder."""
    if not hidden:
        return True
    own = actor.user_id is not None and actor.user_id == author_id
    return own or is_discussion_staff(actor, scope.cohort_id)


def can_read_revisions(actor: Actor, scope: DiscussionScope, *, author_id: int) -> bool:
    """Staff read any post's edit history; authors read their own."""
    own = actor.user_id is not None and actor.user_id == author_id
    return own or is_discussion_staff(actor, scope.cohort_id)


def can_vote(actor: Actor, scope: DiscussionScope, *, author_id: int) -> bool:
    """Readers who may post vote on other people's posts."""
    return can_post(actor, scope) and actor.user_id != author_id


def can_flag(actor: Actor, scope: DiscussionScope, *, author_id: int) -> bool:
    """Signed-in readers flag other people's posts."""
    return actor.user_id is not None and actor.user_id != author_id


def can_moderate(actor: Actor, cohort_id: int) -> bool:
    """Staff hide, unhide, lock, pin and work the flag queue."""
    return is_discussion_staff(actor, cohort_id)


def visible_discussion_assignments(actor: Actor) -> ColumnElement[bool]:
    """Assignments whose discussions the actor may read (search uses this)."""
    return visible_assignments(actor)


def with_discussion_scope(query: Any, question_id: Any) -> Any:
    """`query` joined to the question (by the column `question_id`) and its assignment,
    with the columns `discussion_scope_of` needs added last: a thread or post and its scope
    in one round trip."""
    from services.models import Question

    return (
        query.add_columns(
            col(Assignment.cohort_id),
            col(Assignment.id),
            col(Assignment.phase),
            col(Assignment.allow_anonymous_posts),
            col(Question.post_first),
        )
        .join(Question, col(Question.id) == question_id)
        .join(Assignment, col(Assignment.id) == col(Question.assignment_id))
    )


SCOPE_COLUMNS = 5  # how many columns with_discussion_scope adds


async def discussion_scope(
    session: AsyncSession, *, actor: Actor, question_id: int
) -> DiscussionScope:
    """Load the scope of a question's discussion the actor may read, or raise NotFound."""
    from services.models import Question

    row = (
        await session.execute(
            sa.select(
                col(Assignment.cohort_id),
                col(Assignment.id),
                col(Assignment.phase),
                col(Assignment.allow_anonymous_posts),
                col(Question.post_first),
            )
            .join(Assignment, col(Assignment.id) == col(Question.assignment_id))
            .where(col(Question.id) == question_id)
        )
    ).first()
    if row is None:
        raise NotFound("No such question.")
    return await discussion_scope_of(session, actor=actor, question_id=question_id, columns=row)


async def discussion_scope_of(
    session: AsyncSession, *, actor: Actor, question_id: int, columns: Sequence[Any]
) -> DiscussionScope:
    """The scope from the columns `with_discussion_scope` added, or NotFound when the actor
    may not read this discussion."""
    cohort_id, assignment_id, phase, allow_anonymous, post_first = columns
    assert assignment_id is not None
    if not can_read_discussion(actor, AssignmentState(cohort_id, Phase(phase))):
        raise NotFound("No such question.")
    has_posted = False
    if post_first and actor.user_id is not None and not is_discussion_staff(actor, cohort_id):
        from services.models import Thread

        has_posted = bool(
            await session.scalar(
                select(sa.func.count()).where(
                    col(Thread.question_id) == question_id, col(Thread.author_id) == actor.user_id
                )
            )
        )
    return DiscussionScope(
        cohort_id=cohort_id,
        assignment_id=assignment_id,
        assignment_phase=Phase(phase),
        allow_anonymous=bool(allow_anonymous),
        question_id=question_id,
        post_first=bool(post_first),
        has_posted=has_posted,
    )


# === peer review (issue 5) ==================================================================
# Peer review. Reviewers see papers as "Paper K7Q2", authors see "Reviewer N"; who may do
# what depends on the assignment's phase (PHASE_ACTIONS), and everything a student may not
# see answers NotFound exactly like something that does not exist.

PHASE_ACTIONS: Mapping[Phase, frozenset[str]] = MappingProxyType(
    {
        Phase.draft: frozenset(),
        Phase.open: frozenset({"write_paper"}),
        # Late papers are still taken in review (per the late policy) and get reviewers.
        Phase.review: frozenset({"write_late_paper", "review", "allocate"}),
        Phase.feedback: frozenset({"read_feedback", "rate", "read_stance"}),
        Phase.closed: frozenset({"read_feedback", "read_stance"}),
    }
)


def phase_allows(assignment: Assignment, action: str) -> bool:
    """What the assignment's phase lets students (and the allocator) do right now."""
    return action in PHASE_ACTIONS[assignment.phase]


def allocation_open(assignment: Assignment) -> bool:
    """Reviewers are allocated once review starts (and late papers still get them)."""
    return phase_allows(assignment, "allocate")


def is_student_of(actor: Actor, cohort_id: int) -> bool:
    return actor.user_id is not None and actor.role_in(cohort_id) is Role.student


def can_manage_reviews(actor: Actor, assignment: Assignment) -> bool:
    """Cohort moderators and instructors (and administrators) run the peer review."""
    if actor.is_administrator:
        return True
    role = actor.role_in(assignment.cohort_id)
    return role is not None and role.is_staff


def can_change_phase(actor: Actor, assignment: Assignment) -> bool:
    """Instructors (and administrators) move an assignment through its phases."""
    return actor.is_administrator or actor.role_in(assignment.cohort_id) is Role.instructor


def can_write_paper(actor: Actor, assignment: Assignment, *, has_submitted: bool) -> bool:
    """Students write, revise and submit their paper while the assignment is open; once
    review has started only a paper not yet submitted may still come in (late)."""
    if not is_student_of(actor, assignment.cohort_id):
        return False
    if phase_allows(assignment, "write_paper"):
        return True
    return phase_allows(assignment, "write_late_paper") and not has_submitted


def can_view_task(actor: Actor, task: ReviewTask, assignment: Assignment) -> bool:
    """A reviewer sees their own live tasks (students only while the assignment is past
    draft); review staff see every task."""
    if can_manage_reviews(actor, assignment):
        return True
    return (
        actor.user_id is not None
        and task.reviewer_id == actor.user_id
        and task.status is not TaskStatus.withdrawn
        and is_student_of(actor, assignment.cohort_id)
        and assignment.phase is not Phase.draft
    )


def can_edit_review(actor: Actor, task: ReviewTask, assignment: Assignment) -> bool:
    """Only the task's reviewer writes the review, during review, until it is submitted."""
    return (
        actor.user_id is not None
        and task.reviewer_id == actor.user_id
        and task.status in (TaskStatus.assigned, TaskStatus.started)
        and is_student_of(actor, assignment.cohort_id)
        and phase_allows(assignment, "review")
    )


def visible_tasks(actor: Actor, assignment: Assignment) -> ColumnElement[bool]:
    """The list-query twin of can_view_task (a test checks that they agree)."""
    same = col(ReviewTask.assignment_id) == assignment.id
    if can_manage_reviews(actor, assignment):
        return same
    if (
        actor.user_id is None
        or not is_student_of(actor, assignment.cohort_id)
        or assignment.phase is Phase.draft
    ):
        return sa.false()
    return sa.and_(
        same,
        col(ReviewTask.reviewer_id) == actor.user_id,
        col(ReviewTask.status) != TaskStatus.withdrawn,
    )


def can_read_feedback(actor: Actor, paper: Paper, assignment: Assignment) -> bool:
    """Authors read the submitted reviews of their own paper once feedback is released."""
    return (
        actor.user_id is not None
        and paper.author_id == actor.user_id
        and phase_allows(assignment, "read_feedback")
    )


def can_rate_review(actor: Actor, paper: Paper, assignment: Assignment) -> bool:
    """Authors rate the reviews of their paper during the feedback phase."""
    return (
        actor.user_id is not None
        and paper.author_id == actor.user_id
        and phase_allows(assignment, "rate")
    )


def can_read_stance(actor: Actor, assignment: Assignment) -> bool:
    """Staff read the full analytics at any time; students see the cohort's aggregates
    (never per paper or per reviewer) once feedback is released."""
    if can_manage_reviews(actor, assignment):
        return True
    return is_student_of(actor, assignment.cohort_id) and phase_allows(assignment, "read_stance")


def can_reveal(actor: Actor, assignment: Assignment, *, parties: Collection[int]) -> bool:
    """Review staff may reveal who wrote or reviewed a paper, unless they are a party to it
    (its author or one of its reviewers)."""
    if not can_manage_reviews(actor, assignment) or actor.is_system:
        return False
    return actor.user_id is None or actor.user_id not in parties


def can_read_review_audit(actor: Actor, assignment: Assignment) -> bool:
    """Instructors (and administrators) read the reveal log."""
    return actor.is_administrator or actor.role_in(assignment.cohort_id) is Role.instructor


async def access_task(session: AsyncSession, *, actor: Actor, public_id: str) -> ReviewTask:
    """Load a review task the actor may see, or raise NotFound."""
    task = (
        await session.execute(select(ReviewTask).where(ReviewTask.public_id == public_id))
    ).scalar_one_or_none()
    assignment = await session.get(Assignment, task.assignment_id) if task is not None else None
    if task is None or assignment is None or not can_view_task(actor, task, assignment):
        raise NotFound("No such review task.")
    return task


# === exemplars (issue 6) ====================================================================


def can_curate_exemplars(actor: Actor, cohort: Cohort) -> bool:
    """Moderators and instructors of the cohort (and administrators) curate exemplars."""
    return can_manage_cohort(actor, cohort)


def can_see_exemplar(
    actor: Actor,
    cohort: Cohort,
    *,
    published: bool,
    declined: bool,
    author_id: int | None,
    withheld: bool = False,
) -> bool:
    """Curators see every exemplar; the author sees their own nomination (to choose how it is
    shown); other members see published exemplars the author has not declined, except those
    of a "post first" question they have not posted in yet (`withheld`), as in its threads."""
    if can_curate_exemplars(actor, cohort):
        return True
    if actor.user_id is not None and actor.user_id == author_id:
        return True
    return can_view_cohort(actor, cohort) and published and not declined and not withheld


async def post_first_withheld(
    session: AsyncSession, *, actor: Actor, assignment_id: int, cohort_id: int
) -> frozenset[int]:
    """The "post first" questions of an assignment whose classmates' work this actor may not
    read yet, because they have not opened a thread there (never any for staff)."""
    from services.models import Question, Thread

    if is_discussion_staff(actor, cohort_id):
        return frozenset()
    query = select(col(Question.id)).where(
        col(Question.assignment_id) == assignment_id, col(Question.post_first)
    )
    if actor.user_id is not None:
        posted = select(col(Thread.question_id)).where(col(Thread.author_id) == actor.user_id)
        query = query.where(col(Question.id).not_in(posted))
    return frozenset(q for q in (await session.execute(query)).scalars() if q is not None)


# Exports (services/exports.py). The posts export follows the discussion's own rules: a
# student's export holds what the thread pages show them (can_see_author decides whose name
# they may know; services/presenters.py says how it reads).


def can_take_export(actor: Actor, cohort: Cohort, *, kind: str) -> bool:
    """Staff take every export of their cohort's assignments (the audit log: instructors
    only); students take the posts export, as they see the discussion, and nothing else."""
    if kind == "audit":
        return can_read_audit_log(actor, cohort)
    if can_manage_cohort(actor, cohort):
        return True
    return kind == "posts" and is_student_of(actor, cohort.id or 0)


def can_export_names(actor: Actor, cohort: Cohort) -> bool:
    """Only staff export posts with their authors' names and emails; everyone else gets the
    export as a classmate sees the discussion."""
    return can_manage_cohort(actor, cohort)
