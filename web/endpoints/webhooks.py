"""Webhooks of a cohort (instructors): the JSON API and the page with its "send test event"
button and delivery log."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from services import webhooks
from services.errors import Invalid
from web.context import settings_of, unit_of_work
from web.endpoints.pages import page_unit, redirect_with_flash, render_page, require_signed_in
from web.endpoints.parsing import read_model
from web.responses import json_response


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2048, description="An https:// URL that Peerboard POSTs to")
    events: list[str] = Field(
        min_length=1, max_length=10, description=f"Some of: {', '.join(webhooks.EVENTS)}"
    )


async def api_list(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        views = await webhooks.list_endpoints(
            session, actor=actor, cohort_slug=request.path_params["cohort"]
        )
        return json_response(views)


async def api_create(request: Request) -> Response:
    data = await read_model(request, EndpointCreate)
    async with unit_of_work(request) as (session, actor):
        view = await webhooks.register(
            session, actor=actor, cohort_slug=request.path_params["cohort"], url=data.url,
            events=data.events, allow_private=settings_of(request).webhooks_allow_private,
        )  # fmt: skip
    return json_response(view, status_code=201)


async def api_delete(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        await webhooks.remove(session, actor=actor, endpoint_id=request.path_params["webhook"])
    return Response(status_code=204)


async def api_test(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        view = await webhooks.send_test(
            session, actor=actor, endpoint_id=request.path_params["webhook"]
        )
    return json_response(view, status_code=202)


async def api_deliveries(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        views = await webhooks.deliveries(
            session, actor=actor, endpoint_id=request.path_params["webhook"]
        )
        return json_response(views)


def _page_path(request: Request) -> str:
    return str(request.app.url_path_for("webhooks:page", cohort=request.path_params["cohort"]))


async def page(request: Request) -> Response:
    async with page_unit(request) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        cohort, logs = await webhooks.overview(
            session, actor=caller.actor, cohort_slug=request.path_params["cohort"]
        )
    return render_page(
        request, "webhooks.html",
        {"cohort": cohort, "logs": logs, "events": webhooks.EVENTS, "created": None},
    )  # fmt: skip


async def create_form(request: Request) -> Response:
    form = await request.form()
    url = form.get("url")
    events = [e for e in form.getlist("events") if isinstance(e, str)]
    slug = request.path_params["cohort"]
    async with page_unit(request, form) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        error = None
        created = None
        try:
            async with session.begin_nested():
                created = await webhooks.register(
                    session, actor=caller.actor, cohort_slug=slug,
                    url=url if isinstance(url, str) else "", events=events,
                    allow_private=settings_of(request).webhooks_allow_private,
                )  # fmt: skip
        except Invalid as exc:
            error = exc
        cohort, logs = await webhooks.overview(session, actor=caller.actor, cohort_slug=slug)
    # Rendered, not redirected: the secret is shown this once.
    return render_page(
        request, "webhooks.html",
        {"cohort": cohort, "logs": logs, "events": webhooks.EVENTS, "created": created,
         "error": error},
        status=422 if error else 200,
    )  # fmt: skip


async def test_form(request: Request) -> Response:
    form = await request.form()
    async with page_unit(request, form) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        await webhooks.send_test(
            session, actor=caller.actor, endpoint_id=request.path_params["webhook"]
        )
    return redirect_with_flash(
        request, _page_path(request), "A test event is on its way: see the log below."
    )


async def delete_form(request: Request) -> Response:
    form = await request.form()
    async with page_unit(request, form) as (session, caller):
        if (redirect := require_signed_in(request, caller)) is not None:
            return redirect
        await webhooks.remove(
            session, actor=caller.actor, endpoint_id=request.path_params["webhook"]
        )
    return redirect_with_flash(request, _page_path(request), "The webhook is removed.")
