"""JSON API endpoints: parse, build the actor, one service call in one transaction, render."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from services import (
    accounts,
    assignments,
    cohorts,
    importing,
    memberships,
    people,
    policy,
    tokens,
)
from services.errors import Invalid, Problem
from services.models import LatePolicy, Role
from services.policy import Actor
from services.views import TokenCreatedView
from web.context import session_state, unit_of_work, unit_of_work_caller
from web.endpoints.parsing import media_type, read_model
from web.errors import ApiError
from web.ratelimit import JOIN, TOKEN, limited_view, rate_limits_of
from web.responses import json_response

ASSIGNMENT_MEDIA_TYPES = ("application/json", "text/plain", "application/toml")


class CohortCreate(BaseModel):
    slug: str = Field(max_length=64, description="URL name: lowercase letters, digits, hyphens")
    name: str = Field(max_length=400)


async def list_cohorts(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        rows = await cohorts.list_cohorts(session, actor=actor)
        return json_response([cohorts.present_cohort(c, actor=actor) for c in rows])


async def create_cohort(request: Request) -> Response:
    data = await read_model(request, CohortCreate)
    async with unit_of_work(request) as (session, actor):
        cohort = await cohorts.create_cohort(session, actor=actor, slug=data.slug, name=data.name)
        view = cohorts.present_cohort(cohort, actor=actor)
    location = request.url_for("api:cohorts:detail", cohort=view.slug).path
    return json_response(view, status_code=201, headers={"Location": location})


async def cohort_detail(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        cohort = await cohorts.get_cohort(session, actor=actor, slug=request.path_params["cohort"])
        return json_response(cohorts.present_cohort(cohort, actor=actor))


async def list_assignments(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        cohort = await cohorts.get_cohort(session, actor=actor, slug=request.path_params["cohort"])
        return json_response(
            await assignments.list_assignments(session, actor=actor, cohort=cohort)
        )


async def create_assignment(request: Request) -> Response:
    kind = media_type(request)
    if kind not in ASSIGNMENT_MEDIA_TYPES:
        raise ApiError(
            415,
            "Send the assignment as application/json (structured), application/toml, "
            "or text/plain (the plain-text assignment format).",
        )
    body = await request.body()
    async with unit_of_work(request) as (session, actor):
        # Existence and permission first, so a stranger learns nothing from parse errors.
        cohort = await cohorts.get_cohort(session, actor=actor, slug=request.path_params["cohort"])
        draft = importing.parse_assignment_document(body, content_type=kind)
        assignment = await assignments.import_assignment(
            session, actor=actor, cohort=cohort, draft=draft
        )
        assert assignment.id is not None
        detail = await assignments.get_assignment(session, actor=actor, assignment_id=assignment.id)
        view = await assignments.assignment_view(session, actor=actor, detail=detail)
    location = request.url_for("api:assignments:detail", assignment=str(view.id)).path
    return json_response(view, status_code=201, headers={"Location": location})


async def assignment_detail(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        detail = await assignments.get_assignment(
            session, actor=actor, assignment_id=request.path_params["assignment"]
        )
        return json_response(await assignments.assignment_view(session, actor=actor, detail=detail))


class AssignmentSettings(BaseModel):
    version: int = Field(description="The version you edited (409 when stale)")
    title: str | None = Field(default=None, max_length=400)
    instructions: str | None = Field(default=None, max_length=100_000)
    paper_due_at: datetime | None = Field(default=None, description="null with clear_* to remove")
    review_due_at: datetime | None = None
    clear_paper_due_at: bool = False
    clear_review_due_at: bool = False
    auto_advance: bool | None = Field(default=None, description="Move phases at the deadlines")
    late_policy: LatePolicy | None = None
    reviews_per_paper: int | None = None
    allow_anonymous_posts: bool | None = None
    stance_source: str | None = Field(default=None, max_length=400)


async def update_assignment(request: Request) -> Response:
    data = await read_model(request, AssignmentSettings)
    for name in ("paper_due_at", "review_due_at"):
        value = getattr(data, name)
        if value is not None and value.tzinfo is None:
            raise Invalid(problems=[Problem("needs a time zone (e.g. ...Z)", field=name)])
    change = assignments.SettingsChange(**data.model_dump(exclude={"version"}))
    async with unit_of_work(request) as (session, actor):
        await assignments.update_settings(
            session, actor=actor, assignment_id=request.path_params["assignment"],
            version=data.version, change=change,
        )  # fmt: skip
        detail = await assignments.get_assignment(
            session, actor=actor, assignment_id=request.path_params["assignment"]
        )
        return json_response(await assignments.assignment_view(session, actor=actor, detail=detail))


async def openapi_document(request: Request) -> Response:
    return json_response(request.app.state.openapi)


# --- me, tokens ---------------------------------------------------------------------------


class TokenCreate(BaseModel):
    name: str = Field(max_length=200, description="What the token is for")
    expires_in_days: int | None = Field(default=None, description="1-366; omit for no expiry")


async def me(request: Request) -> Response:
    async with unit_of_work_caller(request) as (session, caller):
        view = await accounts.me(session, actor=caller.actor, user=caller.user)
    state = session_state(request)
    csrf = state.csrf_token if state is not None and caller.via == "session" else None
    return json_response(view.model_copy(update={"csrf_token": csrf}))


async def my_data(request: Request) -> Response:
    """Everything the service holds about the signed-in person, as a JSON download."""
    async with unit_of_work(request) as (session, actor):
        _signed_in(actor)
        data = await people.export_person(session, actor=actor)
    return json_response(
        data,
        headers={
            "Content-Disposition": 'attachment; filename="peerboard-my-data.json"',
            "Cache-Control": "no-store",
        },
    )


async def list_tokens(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        _signed_in(actor)
        rows = await tokens.list_tokens(session, actor=actor)
        return json_response([tokens.present_token(t) for t in rows])


async def create_token(request: Request) -> Response:
    data = await read_model(request, TokenCreate)
    async with unit_of_work(request) as (session, actor):
        _signed_in(actor)
        await rate_limits_of(request).hit(request, TOKEN, person=actor.user_id)
        raw, token = await tokens.create_token(
            session, actor=actor, name=data.name, expires_in_days=data.expires_in_days
        )
        view = TokenCreatedView(**tokens.present_token(token).model_dump(), token=raw)
    return json_response(view, status_code=201, headers={"Cache-Control": "no-store"})


async def revoke_token(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        _signed_in(actor)
        await tokens.revoke_token(session, actor=actor, token_id=request.path_params["token"])
    return Response(status_code=204)


def _signed_in(actor: Actor) -> None:
    if actor.user_id is None:
        raise ApiError(
            401, "Sign in first.", code="unauthenticated", headers={"WWW-Authenticate": "Bearer"}
        )


# --- joining and members ------------------------------------------------------------------


class JoinRequest(BaseModel):
    code: str = Field(max_length=64)


class RoleChange(BaseModel):
    role: Role


class JoinCodeChange(BaseModel):
    expires_at: datetime | None = Field(default=None, description="When the new code stops working")
    disable: bool = Field(default=False, description="Turn joining by code off instead")


class GroupRuleCreate(BaseModel):
    issuer: str = Field(max_length=255, description="The identity provider's issuer URL")
    group: str = Field(max_length=255, description="A value of the provider's groups claim")
    role: Role


async def join(request: Request) -> Response:
    data = await read_model(request, JoinRequest)
    async with unit_of_work(request) as (session, actor):
        _signed_in(actor)
        await rate_limits_of(request).hit(request, JOIN, person=actor.user_id)
        cohort = await memberships.join_with_code(session, actor=actor, code=data.code)
        view = cohorts.present_cohort(cohort, actor=await _refreshed(session, actor))
    return json_response(view)


async def _refreshed(session: AsyncSession, actor: Actor) -> Actor:
    assert actor.user_id is not None
    return await policy.load_actor(
        session, user_id=actor.user_id, is_administrator=actor.is_administrator
    )


async def list_members(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        rows = await memberships.list_members(
            session, actor=actor, slug=request.path_params["cohort"]
        )
        return json_response(rows)


async def rate_limited(request: Request) -> Response:
    """Who in the cohort met a rate limit lately (staff: the roster's readers)."""
    async with unit_of_work(request) as (session, actor):
        rows = await memberships.list_members(
            session, actor=actor, slug=request.path_params["cohort"]
        )
    names = {m.user_id: m.display_name for m in rows}
    hits = await rate_limits_of(request).limited_people(list(names))
    return json_response([limited_view(hit, names[hit.person]) for hit in hits])


async def set_member_role(request: Request) -> Response:
    data = await read_model(request, RoleChange)
    async with unit_of_work(request) as (session, actor):
        view = await memberships.set_member_role(
            session,
            actor=actor,
            slug=request.path_params["cohort"],
            user_id=request.path_params["user"],
            role=data.role,
        )
    return json_response(view)


async def remove_member(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        await memberships.remove_member(
            session,
            actor=actor,
            slug=request.path_params["cohort"],
            user_id=request.path_params["user"],
        )
    return Response(status_code=204)


async def join_code(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        view = await memberships.get_join_code(
            session, actor=actor, slug=request.path_params["cohort"]
        )
        return json_response(view)


async def rotate_join_code(request: Request) -> Response:
    data = await read_model(request, JoinCodeChange)
    async with unit_of_work(request) as (session, actor):
        view = await memberships.rotate_join_code(
            session,
            actor=actor,
            slug=request.path_params["cohort"],
            expires_at=data.expires_at,
            disable=data.disable,
        )
    return json_response(view)


async def list_group_rules(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        rows = await memberships.list_group_rules(
            session, actor=actor, slug=request.path_params["cohort"]
        )
        return json_response(rows)


async def create_group_rule(request: Request) -> Response:
    data = await read_model(request, GroupRuleCreate)
    async with unit_of_work(request) as (session, actor):
        view = await memberships.add_group_rule(
            session,
            actor=actor,
            slug=request.path_params["cohort"],
            issuer=data.issuer,
            group=data.group,
            role=data.role,
        )
    return json_response(view, status_code=201)


async def delete_group_rule(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        await memberships.delete_group_rule(
            session,
            actor=actor,
            slug=request.path_params["cohort"],
            rule_id=request.path_params["rule"],
        )
    return Response(status_code=204)
