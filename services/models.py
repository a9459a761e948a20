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


class Cohort(SQLModel, table=True):
    __tablename__ = "cohorts"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    created_at: datetime = _when(default_factory=utcnow)


class Membership(SQLModel, table=True):
    __tablename__ = "memberships"
    __table_args__ = (sa.UniqueConstraint("cohort_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    cohort_id: int = Field(foreign_key="cohorts.id", ondelete="CASCADE", index=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    role: Role = Field(sa_type=_enum(Role))
    created_at: datetime = _when(default_factory=utcnow)


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
