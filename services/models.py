"""SQLModel tables: the one description of the schema, mirrored by Alembic migrations.

Enums are stored as short strings (no native PostgreSQL enum types) so that adding a value
is a code change, not a type migration. Times are stored in UTC and always read back aware.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine.interfaces import Dialect
from sqlmodel import Field, SQLModel

import services.db  # noqa: F401  (sets the naming convention before any table is declared)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes on both backends (SQLite keeps no zone, so we add it back)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _enum(enum_cls: type[StrEnum]) -> sa.Enum:
    return sa.Enum(
        enum_cls,
        native_enum=False,
        create_constraint=False,
        length=max(16, *(len(m.value) for m in enum_cls)),
        values_callable=lambda cls: [member.value for member in cls],
        validate_strings=True,
    )


def _when(**kwargs: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kwargs)


class Role(StrEnum):
    student = "student"
    moderator = "moderator"
    instructor = "instructor"

    @property
    def is_staff(self) -> bool:
        return self is not Role.student


class MembershipSource(StrEnum):
    """How a person came to be in a cohort (group-claim memberships follow the claim)."""

    manual = "manual"
    join_code = "join_code"
    group = "group"
    grant = "grant"
    lti = "lti"  # follows the roles the course's LMS sends at each launch


class Phase(StrEnum):
    draft = "draft"
    open = "open"
    review = "review"
    feedback = "feedback"
    closed = "closed"


class LatePolicy(StrEnum):
    """What happens to a paper submitted after the deadline."""

    accept = "accept"  # accepted silently
    mark = "mark"  # accepted, marked late for the instructor
    refuse = "refuse"  # refused once the deadline has passed


class FlagReason(StrEnum):
    spam = "spam"
    offensive = "offensive"
    off_topic = "off_topic"
    reveals_identity = "reveals_identity"
    other = "other"


class TaskStatus(StrEnum):
    assigned = "assigned"  # allocated, not opened yet (may still be moved)
    started = "started"  # the reviewer saved a draft
    submitted = "submitted"  # locked until a moderator reopens it
    withdrawn = "withdrawn"  # moved to someone else, or the reviewer left


class Stance(StrEnum):
    """Overall stance of a paper toward the rubric's source, on an ordinal scale."""

    strongly_disagrees = "strongly_disagrees"
    mostly_disagrees = "mostly_disagrees"
    mixed = "mixed"
    mostly_agrees = "mostly_agrees"
    strongly_agrees = "strongly_agrees"
    does_not_engage = "does_not_engage"  # outside the scale

    @property
    def rank(self) -> int | None:
        return _STANCE_RANK.get(self)


_STANCE_RANK = {
    Stance.strongly_disagrees: 1,
    Stance.mostly_disagrees: 2,
    Stance.mixed: 3,
    Stance.mostly_agrees: 4,
    Stance.strongly_agrees: 5,
}


class MailMode(StrEnum):
    """How a person hears of one kind of notice by e-mail."""

    immediately = "immediately"
    digest = "digest"
    never = "never"


class ComponentStance(StrEnum):
    agrees = "agrees"
    disagrees = "disagrees"
    mixed = "mixed"
    not_addressed = "not_addressed"


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (sa.UniqueConstraint("issuer", "subject"),)

    id: int | None = Field(default=None, primary_key=True)
    # Identity is (issuer, subject) from the identity provider; email is only contact data.
    issuer: str = Field(max_length=255)
    subject: str = Field(max_length=255)
    display_name: str = Field(max_length=120)
    email: str | None = Field(default=None, max_length=320)
    is_administrator: bool = Field(default=False)
    created_at: datetime = _when(default_factory=utcnow)
    last_sign_in_at: datetime | None = _when(default=None, nullable=True)


class Cohort(SQLModel, table=True):
    __tablename__ = "cohorts"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    # Students join with this code; moderators rotate it. Null: joining by code is off.
    join_code: str | None = Field(default=None, max_length=32, unique=True)
    join_code_expires_at: datetime | None = _when(default=None, nullable=True)
    # IANA name (zoneinfo): deadlines are entered and shown in it; stored times stay UTC.
    time_zone: str = Field(default="UTC", max_length=64, sa_column_kwargs={"server_default": "UTC"})
    created_at: datetime = _when(default_factory=utcnow)


class Membership(SQLModel, table=True):
    __tablename__ = "memberships"
    __table_args__ = (sa.UniqueConstraint("cohort_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    cohort_id: int = Field(foreign_key="cohorts.id", ondelete="CASCADE", index=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    role: Role = Field(sa_type=_enum(Role))
    source: MembershipSource = Field(
        default=MembershipSource.manual, sa_type=_enum(MembershipSource)
    )
    created_at: datetime = _when(default_factory=utcnow)


class GroupRule(SQLModel, table=True):
    """People whose identity provider puts `group` in their groups claim get `role` here."""

    __tablename__ = "cohort_group_rules"
    __table_args__ = (sa.UniqueConstraint("cohort_id", "issuer", "group_name"),)

    id: int | None = Field(default=None, primary_key=True)
    cohort_id: int = Field(foreign_key="cohorts.id", ondelete="CASCADE", index=True)
    issuer: str = Field(max_length=255)
    group_name: str = Field(max_length=255)
    role: Role = Field(sa_type=_enum(Role))
    created_at: datetime = _when(default_factory=utcnow)


class WebSession(SQLModel, table=True):
    """Server-side session state; the browser's cookie holds only a random key whose
    SHA-256 is stored here, so a database leak does not hand out live sessions."""

    __tablename__ = "web_sessions"

    id: int | None = Field(default=None, primary_key=True)
    key_hash: str = Field(max_length=64, unique=True)
    user_id: int | None = Field(
        default=None, foreign_key="users.id", ondelete="CASCADE", index=True, nullable=True
    )
    csrf_token: str = Field(max_length=64)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    created_at: datetime = _when(default_factory=utcnow)
    last_seen_at: datetime = _when(default_factory=utcnow)
    expires_at: datetime = _when(index=True)


class ApiToken(SQLModel, table=True):
    """A personal access token for programs, stored as a SHA-256 hash, shown once."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    name: str = Field(max_length=100)
    token_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=16)
    created_at: datetime = _when(default_factory=utcnow)
    expires_at: datetime | None = _when(default=None, nullable=True)
    last_used_at: datetime | None = _when(default=None, nullable=True)
    revoked_at: datetime | None = _when(default=None, nullable=True)


class AuditEvent(SQLModel, table=True):
    """Append-only record of moderator actions and identity reveals, hash-chained: each
    row's hash covers its content and the previous row's hash, so edits are detectable."""

    __tablename__ = "audit_events"

    id: int | None = Field(default=None, primary_key=True)
    # Plain ids, no foreign keys: deleting a person or cohort must not rewrite the log.
    cohort_id: int | None = Field(default=None, index=True, nullable=True)
    actor_user_id: int | None = Field(default=None, nullable=True)
    action: str = Field(max_length=64)
    target_type: str = Field(max_length=32)
    target_id: str = Field(max_length=64)
    reason: str = Field(default="", sa_type=sa.Text)
    details: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    created_at: datetime = _when(default_factory=utcnow)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)


class Assignment(SQLModel, table=True):
    __tablename__ = "assignments"

    id: int | None = Field(default=None, primary_key=True)
    cohort_id: int = Field(foreign_key="cohorts.id", ondelete="CASCADE", index=True)
    title: str = Field(max_length=200)
    instructions: str = Field(default="", sa_type=sa.Text)
    instructions_html: str = Field(default="", sa_type=sa.Text)
    phase: Phase = Field(default=Phase.draft, sa_type=_enum(Phase))
    paper_due_at: datetime | None = _when(default=None, nullable=True)
    review_due_at: datetime | None = _when(default=None, nullable=True)
    reviews_per_paper: int = Field(default=3)
    allow_anonymous_posts: bool = Field(default=True)
    late_policy: LatePolicy = Field(default=LatePolicy.mark, sa_type=_enum(LatePolicy))
    # Phases move on these deadlines when set (open → review at paper_due_at, review →
    # feedback at review_due_at); instructors can always move them by hand.
    auto_advance: bool = Field(default=False)
    # Allocation is reproducible: the same seed and the same papers give the same tasks.
    allocation_seed: str | None = Field(default=None, max_length=64)
    # The stance rubric's source ("Mikulincer & Shaver (2019)"); components are rows below.
    stance_source: str | None = Field(default=None, max_length=300)
    sample_paper: str | None = Field(default=None, sa_type=sa.Text)
    sample_paper_html: str | None = Field(default=None, sa_type=sa.Text)
    version: int = Field(default=1)
    created_at: datetime = _when(default_factory=utcnow)
    updated_at: datetime = _when(default_factory=utcnow)


class Question(SQLModel, table=True):
    __tablename__ = "questions"
    __table_args__ = (sa.UniqueConstraint("assignment_id", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    assignment_id: int = Field(foreign_key="assignments.id", ondelete="CASCADE", index=True)
    position: int
    prompt: str = Field(sa_type=sa.Text)
    prompt_html: str = Field(sa_type=sa.Text)
    # A student sees classmates' threads only after posting their own (staff are exempt).
    post_first: bool = Field(default=False)


class RubricComponent(SQLModel, table=True):
    __tablename__ = "rubric_components"
    __table_args__ = (
        sa.UniqueConstraint("assignment_id", "key"),
        sa.UniqueConstraint("assignment_id", "position"),
    )

    id: int | None = Field(default=None, primary_key=True)
    assignment_id: int = Field(foreign_key="assignments.id", ondelete="CASCADE", index=True)
    position: int
    key: str = Field(max_length=64)
    label: str = Field(max_length=200)
    description: str = Field(default="", sa_type=sa.Text)
    # The question this component comes from (what the paper answers there); optional.
    question_id: int | None = Field(
        default=None, foreign_key="questions.id", ondelete="SET NULL", nullable=True
    )


class AssignmentReference(SQLModel, table=True):
    __tablename__ = "assignment_references"
    __table_args__ = (sa.UniqueConstraint("assignment_id", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    assignment_id: int = Field(foreign_key="assignments.id", ondelete="CASCADE", index=True)
    position: int
    citation: str = Field(sa_type=sa.Text)


# --- discussions ---------------------------------------------------------------------------
# Public ids (random, opaque) appear in URLs and JSON; integer ids stay inside, so neither
# creation order nor volume can be read off an address.


class Alias(SQLModel, table=True):
    """A person's pseudonym within one assignment ("Anonymous Heron"): stable there,
    unlinkable to their pseudonym in any other assignment."""

    __tablename__ = "aliases"
    __table_args__ = (
        sa.UniqueConstraint("assignment_id", "user_id"),
        sa.UniqueConstraint("assignment_id", "name"),
    )

    id: int | None = Field(default=None, primary_key=True)
    assignment_id: int = Field(foreign_key="assignments.id", ondelete="CASCADE", index=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE")
    name: str = Field(max_length=64)


class Thread(SQLModel, table=True):
    __tablename__ = "threads"

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(max_length=24, unique=True)
    question_id: int = Field(foreign_key="questions.id", ondelete="CASCADE", index=True)
    author_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    anonymous: bool = Field(default=False)
    title: str = Field(max_length=200)
    pinned: bool = Field(default=False)
    locked: bool = Field(default=False)
    post_count: int = Field(default=1)
    created_at: datetime = _when(default_factory=utcnow)
    last_activity_at: datetime = _when(default_factory=utcnow, index=True)


class Post(SQLModel, table=True):
    """A thread's opening post (parent_id null) or a reply. `path` orders the tree: each
    level appends the post's zero-padded id, so one ORDER BY reads any thread in tree order."""

    __tablename__ = "posts"

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(max_length=24, unique=True)
    thread_id: int = Field(foreign_key="threads.id", ondelete="CASCADE", index=True)
    parent_id: int | None = Field(
        default=None, foreign_key="posts.id", ondelete="CASCADE", nullable=True, index=True
    )
    author_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    anonymous: bool = Field(default=False)
    depth: int = Field(default=0)
    path: str = Field(max_length=1024, index=True)
    body: str = Field(sa_type=sa.Text)
    body_html: str = Field(sa_type=sa.Text)
    version: int = Field(default=1)
    score: int = Field(default=0)
    flag_count: int = Field(default=0)
    created_at: datetime = _when(default_factory=utcnow)
    edited_at: datetime | None = _when(default=None, nullable=True)
    deleted_at: datetime | None = _when(default=None, nullable=True)
    hidden_at: datetime | None = _when(default=None, nullable=True)
    hidden_reason: str | None = Field(default=None, sa_type=sa.Text, nullable=True)


class PostRevision(SQLModel, table=True):
    """Each earlier version of an edited post (moderators read the history)."""

    __tablename__ = "post_revisions"
    __table_args__ = (sa.UniqueConstraint("post_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="posts.id", ondelete="CASCADE", index=True)
    version: int
    body: str = Field(sa_type=sa.Text)
    body_html: str = Field(sa_type=sa.Text)
    edited_by_id: int = Field(foreign_key="users.id", ondelete="CASCADE")
    created_at: datetime = _when(default_factory=utcnow)


class PostVote(SQLModel, table=True):
    __tablename__ = "post_votes"
    __table_args__ = (sa.UniqueConstraint("post_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="posts.id", ondelete="CASCADE", index=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE")
    created_at: datetime = _when(default_factory=utcnow)


class Flag(SQLModel, table=True):
    __tablename__ = "flags"
    __table_args__ = (sa.UniqueConstraint("post_id", "reporter_id"),)

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="posts.id", ondelete="CASCADE", index=True)
    reporter_id: int = Field(foreign_key="users.id", ondelete="CASCADE")
    reason: FlagReason = Field(sa_type=_enum(FlagReason))
    note: str = Field(default="", sa_type=sa.Text)
    created_at: datetime = _when(default_factory=utcnow)
    resolved_at: datetime | None = _when(default=None, nullable=True)
    resolved_by_id: int | None = Field(
        default=None, foreign_key="users.id", ondelete="SET NULL", nullable=True
    )
    resolution: str | None = Field(default=None, max_length=32, nullable=True)


class ThreadFollow(SQLModel, table=True):
    __tablename__ = "thread_follows"
    __table_args__ = (sa.UniqueConstraint("thread_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    thread_id: int = Field(foreign_key="threads.id", ondelete="CASCADE", index=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    created_at: datetime = _when(default_factory=utcnow)


class ThreadVisit(SQLModel, table=True):
    """When a person last read a thread: posts by others after it are "new" to them. Kept
    per thread, not per question, because a question's page lists titles only; a person
    has read a post when they opened its thread. Private to its owner: only their own
    counts and their own data export read it (services/visits.py)."""

    __tablename__ = "thread_visits"

    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", primary_key=True)
    thread_id: int = Field(
        foreign_key="threads.id", ondelete="CASCADE", primary_key=True, index=True
    )
    read_at: datetime = _when(default_factory=utcnow)


class Notification(SQLModel, table=True):
    """In-app notices. They point at things; what the reader sees is rendered per viewer at
    read time, so a notice never stores a name it may not show."""

    __tablename__ = "notifications"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    kind: str = Field(max_length=32)
    thread_id: int | None = Field(
        default=None, foreign_key="threads.id", ondelete="CASCADE", nullable=True
    )
    post_id: int | None = Field(
        default=None, foreign_key="posts.id", ondelete="CASCADE", nullable=True
    )
    assignment_id: int | None = Field(
        default=None, foreign_key="assignments.id", ondelete="CASCADE", nullable=True
    )
    message: str = Field(default="", sa_type=sa.Text)
    created_at: datetime = _when(default_factory=utcnow)
    read_at: datetime | None = _when(default=None, nullable=True, index=True)


class Event(SQLModel, table=True):
    """The live-update log: every change a subscriber may need, with a database id that
    clients resume from (Last-Event-ID). The broker only wakes subscribers up; the rows are
    the truth, and each subscriber renders them through its own presenter."""

    __tablename__ = "events"
    __table_args__ = (
        sa.Index("ix_events_channel_id", "channel", "id"),
        sa.Index("ix_events_assignment_id", "assignment_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=64)  # e.g. "thread:12", "assignment:3"
    kind: str = Field(max_length=32)
    # The assignment the change belongs to, whatever its channel: the moderator's workspace
    # follows every change of an assignment (posts, flags, papers, reviews) through it.
    assignment_id: int | None = Field(default=None, nullable=True)
    post_id: int | None = Field(default=None, nullable=True)
    thread_id: int | None = Field(default=None, nullable=True)
    task_id: int | None = Field(default=None, nullable=True)
    created_at: datetime = _when(default_factory=utcnow)


class IdempotencyRecord(SQLModel, table=True):
    """The first answer to a creating POST sent with an Idempotency-Key, replayed on retry."""

    __tablename__ = "idempotency_records"
    __table_args__ = (sa.UniqueConstraint("user_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE")
    key: str = Field(max_length=255)
    fingerprint: str = Field(max_length=64)  # method, path and body hash
    status_code: int
    body: str = Field(sa_type=sa.Text)
    location: str | None = Field(default=None, max_length=512, nullable=True)
    created_at: datetime = _when(default_factory=utcnow, index=True)


# --- peer review ---------------------------------------------------------------------------


class Paper(SQLModel, table=True):
    """A student's paper for an assignment. `code` is what reviewers see ("Paper K7Q2")."""

    __tablename__ = "papers"
    __table_args__ = (
        sa.UniqueConstraint("assignment_id", "author_id"),
        sa.UniqueConstraint("assignment_id", "code"),
    )

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(max_length=24, unique=True)
    assignment_id: int = Field(foreign_key="assignments.id", ondelete="CASCADE", index=True)
    author_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    code: str = Field(max_length=8)
    current_version: int = Field(default=1)
    submitted_at: datetime | None = _when(default=None, nullable=True)
    late: bool = Field(default=False)
    created_at: datetime = _when(default_factory=utcnow)
    updated_at: datetime = _when(default_factory=utcnow)


class PaperVersion(SQLModel, table=True):
    __tablename__ = "paper_versions"
    __table_args__ = (sa.UniqueConstraint("paper_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    paper_id: int = Field(foreign_key="papers.id", ondelete="CASCADE", index=True)
    version: int
    body: str = Field(sa_type=sa.Text)
    body_html: str = Field(sa_type=sa.Text)
    created_at: datetime = _when(default_factory=utcnow)


class ReviewExclusion(SQLModel, table=True):
    """A conflict of interest set by a moderator: this reviewer never gets this author."""

    __tablename__ = "review_exclusions"
    __table_args__ = (sa.UniqueConstraint("assignment_id", "reviewer_id", "author_id"),)

    id: int | None = Field(default=None, primary_key=True)
    assignment_id: int = Field(foreign_key="assignments.id", ondelete="CASCADE", index=True)
    reviewer_id: int = Field(foreign_key="users.id", ondelete="CASCADE")
    author_id: int = Field(foreign_key="users.id", ondelete="CASCADE")
    created_at: datetime = _when(default_factory=utcnow)


class ReviewTask(SQLModel, table=True):
    """One reviewer for one paper. `public_id` is opaque; `reviewer_number` is the author's
    "Reviewer 1/2/3", drawn at random per paper."""

    __tablename__ = "review_tasks"

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(max_length=24, unique=True)
    assignment_id: int = Field(foreign_key="assignments.id", ondelete="CASCADE", index=True)
    paper_id: int = Field(foreign_key="papers.id", ondelete="CASCADE", index=True)
    reviewer_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    reviewer_number: int
    status: TaskStatus = Field(default=TaskStatus.assigned, sa_type=_enum(TaskStatus))
    assigned_by_hand: bool = Field(default=False)
    created_at: datetime = _when(default_factory=utcnow)
    started_at: datetime | None = _when(default=None, nullable=True)
    submitted_at: datetime | None = _when(default=None, nullable=True)


class Review(SQLModel, table=True):
    """The stance judgment of one task: overall stance, rationale, suggestion."""

    __tablename__ = "reviews"

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(max_length=24, unique=True)
    task_id: int = Field(foreign_key="review_tasks.id", ondelete="CASCADE", unique=True)
    overall_stance: Stance | None = Field(default=None, sa_type=_enum(Stance), nullable=True)
    rationale: str = Field(default="", sa_type=sa.Text)
    suggestion: str = Field(default="", sa_type=sa.Text)
    paper_version: int = Field(default=1)
    version: int = Field(default=1)
    updated_at: datetime = _when(default_factory=utcnow)
    submitted_at: datetime | None = _when(default=None, nullable=True)


class ReviewComponent(SQLModel, table=True):
    """The stance a review takes on one rubric component."""

    __tablename__ = "review_components"
    __table_args__ = (sa.UniqueConstraint("review_id", "component_id"),)

    id: int | None = Field(default=None, primary_key=True)
    review_id: int = Field(foreign_key="reviews.id", ondelete="CASCADE", index=True)
    component_id: int = Field(foreign_key="rubric_components.id", ondelete="CASCADE")
    stance: ComponentStance = Field(sa_type=_enum(ComponentStance))


class EvidenceQuote(SQLModel, table=True):
    """An exact passage of the paper that supports a stance (component null: the overall
    stance). Offsets point into the reviewed paper version's text."""

    __tablename__ = "evidence_quotes"

    id: int | None = Field(default=None, primary_key=True)
    review_id: int = Field(foreign_key="reviews.id", ondelete="CASCADE", index=True)
    component_id: int | None = Field(
        default=None, foreign_key="rubric_components.id", ondelete="CASCADE", nullable=True
    )
    text: str = Field(sa_type=sa.Text)
    start: int
    end: int


class ReviewRating(SQLModel, table=True):
    """The author's helpfulness rating of one review (feedback on feedback)."""

    __tablename__ = "review_ratings"

    id: int | None = Field(default=None, primary_key=True)
    review_id: int = Field(foreign_key="reviews.id", ondelete="CASCADE", unique=True)
    rating: int
    comment: str = Field(default="", sa_type=sa.Text)
    created_at: datetime = _when(default_factory=utcnow)
    updated_at: datetime = _when(default_factory=utcnow)


# --- exemplars (issue 6) -------------------------------------------------------------------


class ExemplarKind(StrEnum):
    post = "post"
    paper = "paper"
    passage = "passage"  # a passage of a paper
    review = "review"  # a stance review, shown with its stances and evidence
    sample_paper = "sample_paper"  # the paper that came with the assignment document


class ExemplarStatus(StrEnum):
    draft = "draft"
    published = "published"


class Attribution(StrEnum):
    """The author's choice; until they choose, work is shown anonymously (the default)."""

    pending = "pending"
    anonymous = "anonymous"
    named = "named"
    declined = "declined"  # never shown
    assignment = "assignment"  # the sample paper: attributed to the assignment itself


class Exemplar(SQLModel, table=True):
    """A curated snapshot of a response, with the curator's note. The snapshot does not follow
    later edits of the original; curators see that the original changed and may refresh."""

    __tablename__ = "exemplars"

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(max_length=24, unique=True)
    assignment_id: int = Field(foreign_key="assignments.id", ondelete="CASCADE", index=True)
    question_id: int | None = Field(
        default=None, foreign_key="questions.id", ondelete="CASCADE", nullable=True, index=True
    )
    kind: ExemplarKind = Field(sa_type=_enum(ExemplarKind))
    source_post_id: int | None = Field(
        default=None, foreign_key="posts.id", ondelete="SET NULL", nullable=True
    )
    source_paper_id: int | None = Field(
        default=None, foreign_key="papers.id", ondelete="SET NULL", nullable=True
    )
    source_review_id: int | None = Field(
        default=None, foreign_key="reviews.id", ondelete="SET NULL", nullable=True
    )
    source_version: int = Field(default=1)
    author_id: int | None = Field(
        default=None, foreign_key="users.id", ondelete="CASCADE", nullable=True, index=True
    )
    title: str = Field(max_length=200)
    body: str = Field(sa_type=sa.Text)
    body_html: str = Field(sa_type=sa.Text)
    details: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    note: str = Field(default="", sa_type=sa.Text)
    note_html: str = Field(default="", sa_type=sa.Text)
    position: int = Field(default=0)
    status: ExemplarStatus = Field(default=ExemplarStatus.draft, sa_type=_enum(ExemplarStatus))
    attribution: Attribution = Field(default=Attribution.pending, sa_type=_enum(Attribution))
    attribution_at: datetime | None = _when(default=None, nullable=True)
    version: int = Field(default=1)
    created_by_id: int | None = Field(
        default=None, foreign_key="users.id", ondelete="SET NULL", nullable=True
    )
    created_at: datetime = _when(default_factory=utcnow)
    updated_at: datetime = _when(default_factory=utcnow)
    refreshed_at: datetime = _when(default_factory=utcnow)


# --- mail (issue 14) -----------------------------------------------------------------------


class OutboxMessage(SQLModel, table=True):
    """One e-mail to one person, written in the transaction of the change that causes it
    (the transactional outbox) and delivered later by a sender. Its text is what the
    recipient may see on the page, already presented; the address is read at send time.

    A "held" row waits for its recipient's daily digest, which then carries it ("digested",
    `digest_id` pointing at the digest's own row)."""

    __tablename__ = "mail_outbox"
    __table_args__ = (sa.Index("ix_mail_outbox_status_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    # Random: the Message-ID's local part, so no header carries a database id.
    public_id: str = Field(max_length=32, unique=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    kind: str = Field(max_length=32)
    status: str = Field(max_length=16)
    # Jobs that may run in several processes (reminders, digests) insert at most once.
    dedupe_key: str | None = Field(default=None, max_length=160, unique=True, nullable=True)
    subject: str = Field(max_length=300)
    body: str = Field(sa_type=sa.Text)
    link: str = Field(default="", max_length=512)  # a path under PEERBOARD_BASE_URL
    # Mails about one thread share References (the thread's public id, never a person's).
    thread_ref: str | None = Field(default=None, max_length=32, nullable=True)
    digest_id: int | None = Field(
        default=None, foreign_key="mail_outbox.id", ondelete="SET NULL", nullable=True
    )
    attempts: int = Field(default=0)
    next_attempt_at: datetime = _when(default_factory=utcnow)
    lease_until: datetime | None = _when(default=None, nullable=True)
    last_error: str = Field(default="", sa_type=sa.Text)
    created_at: datetime = _when(default_factory=utcnow)
    sent_at: datetime | None = _when(default=None, nullable=True)


class NotificationPreference(SQLModel, table=True):
    """How a person wants to hear about one kind of notice by e-mail: immediately, in the
    daily digest, or never. No row: the kind's default."""

    __tablename__ = "notification_preferences"
    __table_args__ = (sa.UniqueConstraint("user_id", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    kind: str = Field(max_length=32)
    mode: str = Field(max_length=16)
    updated_at: datetime = _when(default_factory=utcnow)


class MailRecipient(SQLModel, table=True):
    """A person's random mail key: unsubscribe links name it, never the person's id."""

    __tablename__ = "mail_recipients"

    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", primary_key=True)
    key: str = Field(max_length=32, unique=True)
    created_at: datetime = _when(default_factory=utcnow)


class WebhookEndpoint(SQLModel, table=True):
    """An instructor's HTTPS endpoint for one cohort's events (Standard Webhooks signed)."""

    __tablename__ = "webhook_endpoints"

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(max_length=24, unique=True)
    cohort_id: int = Field(foreign_key="cohorts.id", ondelete="CASCADE", index=True)
    url: str = Field(max_length=2048)
    secret: str = Field(max_length=80)  # "whsec_" + base64 of the key: it signs, so it is kept
    events: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    created_by_id: int | None = Field(
        default=None, foreign_key="users.id", ondelete="SET NULL", nullable=True
    )
    created_at: datetime = _when(default_factory=utcnow)


class WebhookDelivery(SQLModel, table=True):
    """One event for one endpoint: its exact signed body, its attempts and the last answer
    (the endpoint's delivery log). Claimed and leased like the mail outbox."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (sa.Index("ix_webhook_deliveries_status_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(max_length=40, unique=True)  # webhook-id, the same on every retry
    endpoint_id: int = Field(foreign_key="webhook_endpoints.id", ondelete="CASCADE", index=True)
    event_type: str = Field(max_length=48)
    payload: str = Field(sa_type=sa.Text)
    status: str = Field(max_length=16)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = _when(default_factory=utcnow)
    lease_until: datetime | None = _when(default=None, nullable=True)
    response_status: int | None = Field(default=None, nullable=True)
    last_error: str = Field(default="", sa_type=sa.Text)
    created_at: datetime = _when(default_factory=utcnow)
    delivered_at: datetime | None = _when(default=None, nullable=True)


# --- LTI 1.3: launches from a course's learning management system -------------------------


class LtiPlatform(SQLModel, table=True):
    """An LMS registered with Peerboard (one registration = issuer + the client id it gave
    us). Canvas uses one issuer for every institution, so the issuer alone is not unique."""

    __tablename__ = "lti_platforms"
    __table_args__ = (sa.UniqueConstraint("issuer", "client_id"),)

    id: int | None = Field(default=None, primary_key=True)
    issuer: str = Field(max_length=255)
    client_id: str = Field(max_length=255)
    name: str = Field(max_length=200)
    auth_login_url: str = Field(max_length=1000)
    token_url: str = Field(max_length=1000)
    jwks_url: str = Field(max_length=1000)
    # Origins allowed to frame Peerboard after a launch from this platform, beyond the
    # issuer's and the login URL's (Canvas: the institution's own domain).
    frame_origins: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    registered_by: str = Field(default="manual", max_length=16)  # manual | dynamic
    created_at: datetime = _when(default_factory=utcnow)


class LtiDeployment(SQLModel, table=True):
    """One installation of Peerboard in a platform (a whole LMS, an account, a course)."""

    __tablename__ = "lti_deployments"
    __table_args__ = (sa.UniqueConstraint("platform_id", "deployment_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform_id: int = Field(foreign_key="lti_platforms.id", ondelete="CASCADE", index=True)
    deployment_id: str = Field(max_length=255)
    created_at: datetime = _when(default_factory=utcnow)


class LtiToolKey(SQLModel, table=True):
    """Peerboard's own signing keys (JWKS at /lti/jwks.json). The private half is stored
    encrypted with a key derived from PEERBOARD_SECRET_KEY and is never served."""

    __tablename__ = "lti_tool_keys"

    id: int | None = Field(default=None, primary_key=True)
    kid: str = Field(max_length=64, unique=True)
    public_jwk: dict[str, Any] = Field(sa_type=sa.JSON)
    private_key_encrypted: str = Field(sa_type=sa.Text)
    created_at: datetime = _when(default_factory=utcnow)
    # Retired keys are still published for a while (platforms cache our JWKS).
    retired_at: datetime | None = _when(default=None, nullable=True)


class LtiLaunchState(SQLModel, table=True):
    """A login initiation waiting for its launch: single use, short-lived. Only hashes of
    the state and of the browser binding are kept; the nonce is compared with the token's."""

    __tablename__ = "lti_launch_states"

    id: int | None = Field(default=None, primary_key=True)
    state_hash: str = Field(max_length=64, unique=True)
    binding_hash: str = Field(max_length=64)
    nonce: str = Field(max_length=64)
    platform_id: int = Field(foreign_key="lti_platforms.id", ondelete="CASCADE")
    storage_target: str | None = Field(default=None, max_length=64, nullable=True)
    created_at: datetime = _when(default_factory=utcnow)
    expires_at: datetime = _when(index=True)


class LtiContext(SQLModel, table=True):
    """A course in the LMS, mapped to the cohort made at its first launch."""

    __tablename__ = "lti_contexts"
    __table_args__ = (sa.UniqueConstraint("deployment_id", "context_id"),)

    id: int | None = Field(default=None, primary_key=True)
    deployment_id: int = Field(foreign_key="lti_deployments.id", ondelete="CASCADE")
    context_id: str = Field(max_length=255)
    cohort_id: int = Field(foreign_key="cohorts.id", ondelete="CASCADE", index=True)
    created_at: datetime = _when(default_factory=utcnow)


class LtiResourceLink(SQLModel, table=True):
    """A placement of Peerboard in a course; it leads to one assignment once linked."""

    __tablename__ = "lti_resource_links"
    __table_args__ = (sa.UniqueConstraint("deployment_id", "resource_link_id"),)

    id: int | None = Field(default=None, primary_key=True)
    deployment_id: int = Field(foreign_key="lti_deployments.id", ondelete="CASCADE")
    resource_link_id: str = Field(max_length=255)
    context_pk: int = Field(foreign_key="lti_contexts.id", ondelete="CASCADE", index=True)
    title: str = Field(default="", max_length=200)
    assignment_id: int | None = Field(
        default=None, foreign_key="assignments.id", ondelete="SET NULL", nullable=True
    )
    created_at: datetime = _when(default_factory=utcnow)


# --- LTI Advantage: roster (NRPS) and grades (AGS) ------------------------------------------


class LtiContextServices(SQLModel, table=True):
    """The service endpoints a course's launches announced (NRPS memberships URL, AGS line
    items URL and scopes), and the state of its roster sync."""

    __tablename__ = "lti_context_services"

    id: int | None = Field(default=None, primary_key=True)
    context_pk: int = Field(foreign_key="lti_contexts.id", ondelete="CASCADE", unique=True)
    memberships_url: str | None = Field(default=None, max_length=1000, nullable=True)
    lineitems_url: str | None = Field(default=None, max_length=1000, nullable=True)
    ags_scopes: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    updated_at: datetime = _when(default_factory=utcnow)
    # A sync is wanted (a stale launch, the button): the roster job takes it from here.
    sync_requested_at: datetime | None = _when(default=None, nullable=True, index=True)
    # One sync per course at a time, whatever the number of processes.
    sync_lease_until: datetime | None = _when(default=None, nullable=True)
    last_sync_at: datetime | None = _when(default=None, nullable=True)
    last_sync_ok: bool | None = Field(default=None, nullable=True)
    last_sync_added: int = Field(default=0)
    last_sync_removed: int = Field(default=0)
    last_sync_changed: int = Field(default=0)
    last_sync_message: str = Field(default="", sa_type=sa.Text)


class LtiGradeSettings(SQLModel, table=True):
    """What of an assignment becomes a grade in the course's gradebook, with weights
    (measure key -> weight): "paper", "reviews", "helpfulness", "question:<id>"."""

    __tablename__ = "lti_grade_settings"

    id: int | None = Field(default=None, primary_key=True)
    assignment_id: int = Field(foreign_key="assignments.id", ondelete="CASCADE", unique=True)
    enabled: bool = Field(default=True)
    weights: dict[str, int] = Field(default_factory=dict, sa_type=sa.JSON)
    updated_at: datetime = _when(default_factory=utcnow)


class LtiLineItem(SQLModel, table=True):
    """The gradebook column of one assignment in one course; `url` once the platform made it."""

    __tablename__ = "lti_line_items"
    __table_args__ = (sa.UniqueConstraint("assignment_id", "context_pk"),)

    id: int | None = Field(default=None, primary_key=True)
    assignment_id: int = Field(foreign_key="assignments.id", ondelete="CASCADE", index=True)
    context_pk: int = Field(foreign_key="lti_contexts.id", ondelete="CASCADE")
    resource_id: str = Field(max_length=64)
    url: str | None = Field(default=None, max_length=1000, nullable=True)
    created_at: datetime = _when(default_factory=utcnow)


class LtiScorePost(SQLModel, table=True):
    """One score for one student to the platform: its exact body, its attempts and the
    platform's last answer (the gradebook page). Claimed and leased like the mail outbox."""

    __tablename__ = "lti_score_posts"
    __table_args__ = (sa.Index("ix_lti_score_posts_status_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    assignment_id: int = Field(foreign_key="assignments.id", ondelete="CASCADE", index=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    context_pk: int = Field(foreign_key="lti_contexts.id", ondelete="CASCADE")
    payload: str = Field(sa_type=sa.Text)
    score_given: float = Field(default=0)
    score_maximum: float = Field(default=100)
    reason: str = Field(max_length=16)
    status: str = Field(max_length=16)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = _when(default_factory=utcnow)
    lease_until: datetime | None = _when(default=None, nullable=True)
    response_status: int | None = Field(default=None, nullable=True)
    last_error: str = Field(default="", sa_type=sa.Text)
    created_at: datetime = _when(default_factory=utcnow)
    sent_at: datetime | None = _when(default=None, nullable=True)
