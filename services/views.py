"""Per-viewer public shapes: what a viewer receives about each object, and nothing more.

These pydantic models are the JSON the API returns and the schemas its OpenAPI document
publishes; pages render from the same views, so templates never decide who may see what.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from services.models import Phase, Role


class View(BaseModel):
    model_config = ConfigDict(frozen=True)


class CohortView(View):
    slug: str
    name: str
    my_role: Role | None
    can_manage: bool


class QuestionView(View):
    id: int
    position: int
    prompt: str
    prompt_html: str


class RubricComponentView(View):
    key: str
    label: str
    description: str


class RubricView(View):
    source: str | None
    components: list[RubricComponentView]


class AssignmentSummaryView(View):
    id: int
    cohort: str
    title: str
    phase: Phase
    paper_due_at: datetime | None
    review_due_at: datetime | None
    question_count: int


class AssignmentView(View):
    id: int
    cohort: str
    title: str
    instructions: str
    instructions_html: str
    phase: Phase
    paper_due_at: datetime | None
    review_due_at: datetime | None
    reviews_per_paper: int
    allow_anonymous_posts: bool
    version: int
    questions: list[QuestionView]
    rubric: RubricView
    sample_paper: str | None
    sample_paper_html: str | None
    references: list[str]
    can_manage: bool


class TokenView(View):
    id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked: bool


class TokenCreatedView(TokenView):
    token: str


class MeCohortView(View):
    slug: str
    name: str
    role: Role


class MeUserView(View):
    id: int
    display_name: str
    email: str | None
    is_administrator: bool


class MeView(View):
    user: MeUserView | None
    cohorts: list[MeCohortView]
    csrf_token: str | None


class MemberView(View):
    user_id: int
    display_name: str
    email: str | None
    role: Role
    source: str
    joined_at: datetime


class JoinCodeView(View):
    join_code: str | None
    expires_at: datetime | None


class GroupRuleView(View):
    id: int
    issuer: str
    group: str
    role: Role


# === discussions (issue 4) ==================================================================


# === peer review (issue 5) ==================================================================
