"""Streaming CSV/JSON exports: everything for moderators and instructors, the posts as they
read the discussion for students (services/exports.py decides)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from services import exports
from services.db import transaction
from web.context import sessions_of, unit_of_work
from web.errors import ApiError
from web.ratelimit import EXPORT, rate_limits_of

MEDIA = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


async def export(request: Request) -> Response:
    kind, fmt = request.path_params["kind"], request.path_params["format"]
    if fmt not in MEDIA:
        raise ApiError(404, "Exports come as .csv or .json.")
    # Absent: the asker's own default (staff: moderator; students: the only view they have).
    view = request.query_params.get("view")
    async with unit_of_work(request) as (session, actor):
        await rate_limits_of(request).hit(request, EXPORT, person=actor.user_id)
        plan = await exports.plan(
            session, actor=actor, assignment_id=request.path_params["assignment"], kind=kind,
            view=view,
        )  # fmt: skip
    sessions = sessions_of(request)

    async def body() -> AsyncIterator[bytes]:
        # Its own read transaction, open while the rows stream out.
        async with transaction(sessions, write=False) as session:
            encode = exports.as_csv if fmt == "csv" else exports.as_json
            async for chunk in encode(plan.columns, exports.rows(session, plan)):
                yield chunk

    name = f"peerboard-{plan.cohort.slug}-{plan.assignment.id}-{kind}"
    if plan.view != "moderator":
        name += f"-{plan.view}"
    return StreamingResponse(
        body(),
        media_type=MEDIA[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="{name}.{fmt}"',
            "Cache-Control": "no-store",
        },
    )
