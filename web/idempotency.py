"""The HTTP side of idempotency keys: `Idempotency-Key` on a creating POST.

Used inside the endpoint's unit of work, so the stored answer commits (or rolls back) with
the thing the request created."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from services import idempotency
from services.policy import Actor

HEADER = "idempotency-key"


async def once(
    request: Request,
    session: AsyncSession,
    actor: Actor,
    create: Callable[[], Awaitable[Response]],
) -> Response:
    """Run `create` unless this key already has an answer; replay that answer if so."""
    raw = request.headers.get(HEADER)
    if raw is None or actor.user_id is None:
        return await create()
    key = idempotency.check_key(raw)
    fp = idempotency.fingerprint(request.method, request.url.path, await request.body())
    found = await idempotency.find(session, user_id=actor.user_id, key=key, fingerprint=fp)
    if found is not None:
        headers = {"Idempotent-Replayed": "true"}
        if found.location:
            headers["Location"] = found.location
        return Response(
            found.body,
            status_code=found.status_code,
            media_type="application/json",
            headers=headers,
        )
    response = await create()
    if 200 <= response.status_code < 300:
        await idempotency.remember(
            session,
            user_id=actor.user_id,
            key=key,
            fingerprint=fp,
            status_code=response.status_code,
            body=bytes(response.body).decode(),
            location=response.headers.get("location"),
        )
    return response
