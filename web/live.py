"""Server-Sent Events over the events table: resumable, per-viewer, broker-woken.

A stream sends what happened on a channel after the client's Last-Event-ID, rendering each
event through a presenter for this viewer; then it waits for a broker wake-up (or polls the
database every few seconds, so a broker outage only delays). sse-starlette sends comment
pings to keep idle connections open and drops clients that stop reading.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession
from sse_starlette.event import ServerSentEvent
from sse_starlette.sse import EventSourceResponse
from starlette.requests import Request
from starlette.responses import Response

from services import events
from services.db import transaction
from services.errors import Invalid
from services.models import Event
from services.policy import Actor
from web.broker import POLL_SECONDS
from web.context import broker_of, identify, sessions_of
from web.endpoints.parsing import whole_number

HEARTBEAT_SECONDS = 15
SEND_TIMEOUT_SECONDS = 30

# Turns a batch of events into what this viewer may see: (event id, event name, JSON data)
# triples. Events the viewer may not see are simply left out.
Render = Callable[[AsyncSession, Actor, Sequence[Event]], Awaitable[list[tuple[int, str, str]]]]
# Reads the next batch after an event id (default: the channel's own events).
Read = Callable[[AsyncSession, int], Awaitable[Sequence[Event]]]


def last_event_id(request: Request) -> int:
    """The event to resume after, or -1 (start from now). The header is advisory: a value
    that is not an event id (not a whole number within the events table's INTEGER id, 0 to
    2147483647) is ignored rather than refused, as if the client had sent none."""
    raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    try:
        return whole_number((raw or "").strip(), field="Last-Event-ID", minimum=0)
    except Invalid:
        return -1


async def respond(
    request: Request, *, channel: str, start_after: int, render: Render, read: Read | None = None
) -> Response:
    """The stream, or with `?poll=1` (clients that cannot hold a connection open, and tests)
    one round: what is pending after Last-Event-ID, then the response ends."""
    if request.query_params.get("poll") != "1":
        return stream(request, channel=channel, start_after=start_after, render=render, read=read)
    async with transaction(sessions_of(request), write=False) as session:
        caller = await identify(request, session)
        if read is None:
            batch = await events.since(session, channel=channel, after_id=start_after)
        else:
            batch = await read(session, start_after)
        rendered = await render(session, caller.actor, batch) if batch else []
    body = "".join(f"id: {i}\nevent: {name}\ndata: {data}\n\n" for i, name, data in rendered)
    return Response(body, media_type="text/event-stream", headers={"Cache-Control": "no-store"})


def stream(
    request: Request, *, channel: str, start_after: int, render: Render, read: Read | None = None
) -> EventSourceResponse:
    """An SSE response woken by `channel`, starting after event `start_after`; `read` picks
    the events (by default those recorded on `channel`)."""

    async def channel_events(session: AsyncSession, after_id: int) -> Sequence[Event]:
        return await events.since(session, channel=channel, after_id=after_id)

    next_batch = read or channel_events

    async def generate() -> AsyncIterator[ServerSentEvent]:
        cursor = start_after
        with broker_of(request).subscribe(channel) as wakeups:
            while True:
                async with transaction(sessions_of(request), write=False) as session:
                    # Re-identify each round: a member removed mid-stream stops receiving.
                    caller = await identify(request, session)
                    batch = await next_batch(session, cursor)
                    rendered = await render(session, caller.actor, batch) if batch else []
                if batch:
                    cursor = batch[-1].id or cursor
                for event_id, name, data in rendered:
                    yield ServerSentEvent(data=data, event=name, id=str(event_id))
                if batch and len(batch) >= events.MAX_BATCH:
                    continue
                await wakeups.wait(POLL_SECONDS)

    return EventSourceResponse(
        generate(),
        ping=HEARTBEAT_SECONDS,
        send_timeout=SEND_TIMEOUT_SECONDS,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
