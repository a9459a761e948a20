"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import Response

from web.context import sessions_of
from web.errors import problem_response
from web.responses import json_response

READY_TIMEOUT_SECONDS = 3.0


async def healthz(request: Request) -> Response:
    """The process is up and serving."""
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    """The process can reach its database."""
    try:
        async with sessions_of(request)() as session:
            await asyncio.wait_for(session.execute(text("SELECT 1")), READY_TIMEOUT_SECONDS)
    except Exception:
        return problem_response(
            request,
            status=503,
            code="database_unavailable",
            detail="The database is not reachable.",
        )
    return json_response({"status": "ready", "database": "ok"})
