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
        length=16,
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


class Phase(StrEnum):
    draft = "draft"
    open = "open"
    review = "review"
    feedback = "feedback"
    closed = "closed"


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


class AssignmentReference(SQLModel, table=True):
    __tablename__ = "assignment_references"
    __table_args__ = (sa.UniqueConstraint("assignment_id", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    assignment_id: int = Field(foreign_key="assignments.id", ondelete="CASCADE", index=True)
    position: int
    citation: str = Field(sa_type=sa.Text)
