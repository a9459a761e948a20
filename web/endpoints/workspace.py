"""The moderator's workspace for one assignment: page and JSON."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from services import workspace
from web.charts import bar_chart
from web.context import unit_of_work
from web.endpoints.pages import page_unit, render_page
from web.responses import json_response


async def workspace_json(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        view = await workspace.overview(
            session, actor=actor, assignment_id=request.path_params["assignment"]
        )
    return json_response(view)


async def workspace_page(request: Request) -> Response:
    async with page_unit(request) as (session, caller):
        if caller.user is None:
            return RedirectResponse(f"/signin?next={request.url.path}", status_code=303)
        view = await workspace.overview(
            session, actor=caller.actor, assignment_id=request.path_params["assignment"]
        )
    charts = {}
    if view.stance is not None:
        charts["overall"] = bar_chart(
            [(c.stance.replace("_", " "), c.count) for c in view.stance.overall],
            title=f"Overall stance toward {view.stance.source or 'the source'}",
        )
        for component in view.stance.components:
            charts[component.key] = bar_chart(
                [(c.stance.replace("_", " "), c.count) for c in component.counts],
                title=f"Stance on {component.label}",
                colors=("#1f5fa8", "#b42318", "#8a8f98", "#c9ccd1"),
            )
    return render_page(request, "workspace.html", {"w": view, "charts": charts})
