"""JSON API endpoints: parse, build the actor, one service call in one transaction, render."""

from __future__ import annotations

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from services import assignments, cohorts, importing
from web.context import unit_of_work
from web.endpoints.parsing import media_type, read_model
from web.errors import ApiError
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
        view = assignments.present_assignment(detail, actor=actor)
    location = request.url_for("api:assignments:detail", assignment=str(view.id)).path
    return json_response(view, status_code=201, headers={"Location": location})


async def assignment_detail(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        detail = await assignments.get_assignment(
            session, actor=actor, assignment_id=request.path_params["assignment"]
        )
        return json_response(assignments.present_assignment(detail, actor=actor))


async def openapi_document(request: Request) -> Response:
    return json_response(request.app.state.openapi)
