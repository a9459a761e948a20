"""The moderator's workspace for one assignment: page, JSON, and its live stream."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from services import events, policy, workspace
from services.errors import NotFound
from services.models import Event
from services.policy import Actor
from services.views import WorkspaceView
from web import live
from web.charts import bar_chart
from web.context import templates_of, unit_of_work
from web.endpoints.pages import page_unit, render_page, signin_redirect
from web.responses import json_response

# The page's live sections, each a macro of _workspace.html.
SECTIONS = ("summary", "participation", "flags", "completion", "stance", "audit")


def _charts(view: WorkspaceView) -> dict[str, Markup]:
    charts: dict[str, Markup] = {}
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
    return charts


def render_sections(request: Request, view: WorkspaceView) -> dict[str, str]:
    """The workspace's sections as HTML, through the same macros as the page."""

    def path_for(name: str, /, **params: Any) -> str:
        return str(request.app.url_path_for(name, **params))

    template = templates_of(request).env.get_template("_workspace.html")
    module: Any = template.make_module({"path_for": path_for})
    charts = _charts(view)
    return {name: str(getattr(module, name)(view, charts)).strip() for name in SECTIONS}


async def workspace_json(request: Request) -> Response:
    async with unit_of_work(request) as (session, actor):
        view = await workspace.overview(
            session, actor=actor, assignment_id=request.path_params["assignment"]
        )
    return json_response(view)


async def workspace_page(request: Request) -> Response:
    async with page_unit(request) as (session, caller):
        if caller.user is None:
            return signin_redirect(request)
        view = await workspace.overview(
            session, actor=caller.actor, assignment_id=request.path_params["assignment"]
        )
        cohort = await policy.access_cohort(session, actor=caller.actor, slug=view.cohort)
    return render_page(
        request, "workspace.html", {"w": view, "cohort": cohort, "charts": _charts(view)}
    )


class WorkspaceFanout:
    """After any change in the assignment (posts, flags, papers, reviews, phase), one
    `workspace` event carrying the re-rendered sections. A batch of changes is one event,
    rendered once per audience (moderators; instructors, who also see the audit log)."""

    def __init__(self, request: Request, assignment_id: int) -> None:
        self.request = request  # for the app's templates and routes only
        self.assignment_id = assignment_id
        self.channel = self.key = events.workspace_channel(assignment_id)

    async def read(self, session: AsyncSession, after_id: int) -> Sequence[Event]:
        return await events.for_assignment(
            session, assignment_id=self.assignment_id, after_id=after_id
        )

    async def admit(self, session: AsyncSession, actor: Actor) -> Actor:
        await workspace.access(session, actor=actor, assignment_id=self.assignment_id)
        return actor

    async def render(
        self, session: AsyncSession, batch: Sequence[Event], viewers: Sequence[Actor]
    ) -> list[list[tuple[int, str, str]]]:
        made: dict[tuple[Any, ...], str | None] = {}
        out: list[list[tuple[int, str, str]]] = []
        for actor in viewers:
            # Only roles shape the workspace: one rendering per distinct standing.
            audience = (actor.is_administrator, tuple(sorted(actor.roles.items())))
            if audience not in made:
                try:
                    view = await workspace.overview(
                        session, actor=actor, assignment_id=self.assignment_id
                    )
                except NotFound:
                    made[audience] = None
                else:
                    sections = render_sections(self.request, view)
                    made[audience] = orjson.dumps({"sections": sections}).decode()
            data = made[audience]
            out.append([] if data is None else [(batch[-1].id or 0, "workspace", data)])
        return out


async def workspace_events(request: Request) -> Response:
    """Server-Sent Events for the workspace (see WorkspaceFanout); the viewer's standing is
    re-checked as the stream goes, so a moderator who loses the role stops receiving."""
    assignment_id: int = request.path_params["assignment"]
    async with unit_of_work(request) as (session, actor):
        await workspace.access(session, actor=actor, assignment_id=assignment_id)
        start = live.last_event_id(request)
        if start < 0:
            start = await events.latest_for_assignment(session, assignment_id=assignment_id)
    fanout = WorkspaceFanout(request, assignment_id)
    return await live.respond(request, fanout=fanout, start_after=start)
