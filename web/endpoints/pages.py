"""HTML pages for people. Same service calls and views as the API; templates only place them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from services import assignments, cohorts
from web.context import templates_of, unit_of_work


async def home(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        rows = await cohorts.list_cohorts(session, actor=actor)
        views = [cohorts.present_cohort(c, actor=actor) for c in rows]
        signed_in = actor.user_id is not None or actor.is_administrator
    return templates_of(request).TemplateResponse(
        request, "home.html", {"cohorts": views, "signed_in": signed_in}
    )


async def cohort_page(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        cohort = await cohorts.get_cohort(session, actor=actor, slug=request.path_params["cohort"])
        items = await assignments.list_assignments(session, actor=actor, cohort=cohort)
        view = cohorts.present_cohort(cohort, actor=actor)
    return templates_of(request).TemplateResponse(
        request, "cohort.html", {"cohort": view, "assignments": items}
    )


async def assignment_page(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        detail = await assignments.get_assignment(
            session, actor=actor, assignment_id=request.path_params["assignment"]
        )
        view = assignments.present_assignment(detail, actor=actor)
        cohort = cohorts.present_cohort(detail.cohort, actor=actor)
    return templates_of(request).TemplateResponse(
        request, "assignment.html", {"assignment": view, "cohort": cohort}
    )
