"""Server-Sent Events over the events table, fanned out once per process.

Each stream (a thread's posts, an assignment's review status, a workspace) describes itself
with a `Fanout`: how to read its events after an id, how to admit a viewer, and how to
render a batch for many viewers at once (once per audience, the per-viewer parts derived
from rows already read). In each process one `Feed` per stream reads each new batch once,
in one transaction, renders it for all its subscribers and pushes the result to their
bounded queues. The database work per event is therefore constant, whatever the number of
subscribers (and on PostgreSQL a feed holds one pooled connection only while it reads).

The events table stays the truth: a subscriber that falls behind (its queue fills) is
dropped and its client resumes with `Last-Event-ID`; one that joins late, or misses a batch
while joining, reads the gap itself. The broker only wakes feeds (`web/broker.py`); feeds
also poll every few seconds, so a broker outage costs latency, never data.

Standing is re-checked for all subscribers of the process every RECHECK_SECONDS with a
handful of queries (tokens, browser sessions, roles): a revoked token, a sign-out or a
change of roles closes the stream, and the client's reconnection is admitted (or refused)
afresh. Visibility that a batch itself changes (a hidden thread, a lock) is decided per
viewer when the batch is rendered.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sse_starlette.event import ServerSentEvent
from sse_starlette.sse import EventSourceResponse
from starlette.requests import Request
from starlette.responses import Response

from services import events, policy, tokens, websessions
from services.db import transaction
from services.errors import Invalid
from services.models import Event
from services.policy import Actor
from web.broker import POLL_SECONDS, LocalBroker
from web.context import Caller, _bearer, broker_of, identify, session_state, sessions_of
from web.endpoints.parsing import whole_number

log = logging.getLogger("peerboard.live")

HEARTBEAT_SECONDS = 15
SEND_TIMEOUT_SECONDS = 30
RECHECK_SECONDS = 5.0
# Batches waiting for one subscriber; a subscriber this far behind is dropped (it resumes
# from the events table with Last-Event-ID).
QUEUE_BATCHES = 256

# (event id, event name, JSON data)
Item = tuple[int, str, str]
V = TypeVar("V")


class Fanout(Protocol[V]):
    """One kind of stream over one channel. `V` is what admission learns about a viewer."""

    @property
    def key(self) -> str:
        """The feed's identity in this process (one feed per key)."""
        ...

    @property
    def channel(self) -> str:
        """The broker channel whose wake-ups mean "read again"."""
        ...

    async def read(self, session: AsyncSession, after_id: int) -> Sequence[Event]:
        """The next events after an id, oldest first (at most events.MAX_BATCH)."""
        ...

    async def admit(self, session: AsyncSession, actor: Actor) -> V:
        """The viewer's standing when the stream opens; raises NotFound to refuse."""
        ...

    async def render(
        self, session: AsyncSession, batch: Sequence[Event], viewers: Sequence[V]
    ) -> list[list[Item]]:
        """What each viewer may see of a batch (parallel to `viewers`), with a number of
        queries that does not grow with the number of viewers."""
        ...


def last_event_id(request: Request) -> int:
    """The event to resume after, or -1 (start from now). The header is advisory: a value
    that is not an event id (not a whole number within the events table's INTEGER id, 0 to
    2147483647) is ignored rather than refused, as if the client had sent none."""
    raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    try:
        return whole_number((raw or "").strip(), field="Last-Event-ID", minimum=0)
    except Invalid:
        return -1


@dataclass(frozen=True)
class Credential:
    """How a subscriber proved who they are, for the periodic re-check."""

    user_id: int | None
    token_id: int | None = None
    session_id: int | None = None


_CLOSE: Any = object()


@dataclass(eq=False)
class Subscriber(Generic[V]):
    viewer: V
    actor: Actor
    credential: Credential
    queue: asyncio.Queue[Any] = field(default_factory=lambda: asyncio.Queue(QUEUE_BATCHES))
    closed: bool = False

    def push(self, after: int, upto: int, items: list[Item]) -> None:
        if self.closed:
            return
        try:
            self.queue.put_nowait((after, upto, items))
        except asyncio.QueueFull:
            self.close()  # too slow: it resumes from the events table

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(_CLOSE)


class Feed(Generic[V]):
    """One channel's reader in this process."""

    def __init__(self, hub: Hub, fanout: Fanout[V], cursor: int) -> None:
        self.hub = hub
        self.fanout = fanout
        self.cursor = cursor
        self.subscribers: dict[Subscriber[V], None] = {}
        self._wakeups = hub.broker.subscribe(fanout.channel).__enter__()
        self._task = asyncio.create_task(self._run(), name=f"live-feed {fanout.key}")

    def add(self, subscriber: Subscriber[V]) -> int:
        """Register; returns the id up to which the feed has read (the subscriber reads
        anything before it itself)."""
        self.subscribers[subscriber] = None
        return self.cursor

    def remove(self, subscriber: Subscriber[V]) -> None:
        self.subscribers.pop(subscriber, None)
        if not self.subscribers:
            self.stop()

    def stop(self) -> None:
        if self.hub.feeds.get(self.fanout.key) is self:
            del self.hub.feeds[self.fanout.key]
        self._wakeups.__exit__()
        self._task.cancel()

    async def _run(self) -> None:
        while True:
            try:
                full = await self._round()
            except asyncio.CancelledError:
                raise
            except Exception:  # a database hiccup: log, wait, read again (nothing is lost)
                log.exception("live feed %s failed to read; retrying", self.fanout.key)
                full = False
            if not full:
                await self._wakeups.wait(POLL_SECONDS)

    async def _round(self) -> bool:
        after = self.cursor
        async with transaction(self.hub.sessions, write=False) as session:
            batch = await self.fanout.read(session, after)
            if not batch:
                return False
            viewers = list(self.subscribers)
            rendered = await self.fanout.render(session, batch, [s.viewer for s in viewers])
        upto = batch[-1].id or after
        self.cursor = upto
        for subscriber, items in zip(viewers, rendered, strict=True):
            subscriber.push(after, upto, items)
        # Anyone who joined while we read starts after `after` < upto: the gap check in
        # `Hub.stream` makes them read (after, upto] themselves.
        return len(batch) >= events.MAX_BATCH


class Hub:
    """A process's feeds, for one broker (one app lifespan)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], broker: LocalBroker) -> None:
        self.sessions = sessions
        self.broker = broker
        self.feeds: dict[str, Feed[Any]] = {}
        self._recheck: asyncio.Task[None] | None = None

    def feed(self, fanout: Fanout[V], cursor: int) -> Feed[V]:
        found = self.feeds.get(fanout.key)
        if found is None:
            found = Feed(self, fanout, cursor)
            self.feeds[fanout.key] = found
        if self._recheck is None or self._recheck.done():
            self._recheck = asyncio.create_task(self._recheck_forever(), name="live-recheck")
        return found

    @property
    def subscriber_count(self) -> int:
        return sum(len(f.subscribers) for f in self.feeds.values())

    async def _recheck_forever(self) -> None:
        while self.feeds:
            await asyncio.sleep(RECHECK_SECONDS)
            try:
                await self.recheck()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("live: re-checking subscribers failed; trying again later")

    async def recheck(self) -> None:
        """Close every stream whose token or browser session ended, or whose person's roles
        changed (the client reconnects and is admitted, or refused, afresh)."""
        subscribers = [s for f in list(self.feeds.values()) for s in f.subscribers]
        if not subscribers:
            return
        creds = [s.credential for s in subscribers]
        async with transaction(self.sessions, write=False) as session:
            live_tokens = await tokens.live_token_ids(
                session, ids={c.token_id for c in creds if c.token_id is not None}
            )
            live_sessions = await websessions.live_ids(
                session, ids={c.session_id for c in creds if c.session_id is not None}
            )
            actors = await policy.load_actors(
                session, user_ids={c.user_id for c in creds if c.user_id is not None}
            )
        for s in subscribers:
            c = s.credential
            if c.user_id is None:
                continue
            now = actors.get(c.user_id)
            ended = (c.token_id is not None and c.token_id not in live_tokens) or (
                c.session_id is not None and c.session_id not in live_sessions
            )
            changed = now is None or (
                now.is_administrator != s.actor.is_administrator
                or dict(now.roles) != dict(s.actor.roles)
            )
            if ended or changed:
                s.close()


_HUBS: weakref.WeakKeyDictionary[LocalBroker, Hub] = weakref.WeakKeyDictionary()


def hub_of(request: Request) -> Hub:
    broker = broker_of(request)
    hub = _HUBS.get(broker)
    if hub is None:
        hub = _HUBS[broker] = Hub(sessions_of(request), broker)
    return hub


async def _credential(request: Request, session: AsyncSession, caller: Caller) -> Credential:
    user_id = caller.user.id if caller.user is not None else None
    if caller.via == "token":
        raw = _bearer(request)
        found = await tokens.authenticate(session, raw=raw) if raw else None
        return Credential(user_id, token_id=found[1].id if found else -1)
    if caller.via == "session":
        state = session_state(request)
        return Credential(user_id, session_id=state.session_id if state else -1)
    return Credential(user_id)


async def _catch_up(
    sessions: async_sessionmaker[AsyncSession],
    fanout: Fanout[V],
    viewer: V,
    after: int,
    until: int,
) -> AsyncIterator[list[Item]]:
    """Events (after, until] for one viewer, read by the subscriber itself."""
    while after < until:
        async with transaction(sessions, write=False) as session:
            batch = [e for e in await fanout.read(session, after) if (e.id or 0) <= until]
            if not batch:
                return
            (items,) = await fanout.render(session, batch, [viewer])
        after = batch[-1].id or until
        yield items


async def respond(request: Request, *, fanout: Fanout[Any], start_after: int) -> Response:
    """The stream, or with `?poll=1` (clients that cannot hold a connection open, and tests)
    one round: what is pending after Last-Event-ID, then the response ends."""
    if request.query_params.get("poll") != "1":
        return await stream(request, fanout=fanout, start_after=start_after)
    async with transaction(sessions_of(request), write=False) as session:
        caller = await identify(request, session)
        viewer = await fanout.admit(session, caller.actor)
        batch = await fanout.read(session, start_after)
        (rendered,) = await fanout.render(session, batch, [viewer]) if batch else ([],)
    body = "".join(f"id: {i}\nevent: {name}\ndata: {data}\n\n" for i, name, data in rendered)
    return Response(body, media_type="text/event-stream", headers={"Cache-Control": "no-store"})


async def stream(request: Request, *, fanout: Fanout[V], start_after: int) -> Response:
    """An SSE response fed by this process's feed for `fanout`, from event `start_after`."""
    sessions = sessions_of(request)
    async with transaction(sessions, write=False) as session:
        caller = await identify(request, session)
        viewer = await fanout.admit(session, caller.actor)
        credential = await _credential(request, session, caller)
    hub = hub_of(request)

    async def generate() -> AsyncIterator[ServerSentEvent]:
        # Registered only once the response runs, so a client gone before that leaves
        # nothing behind.
        subscriber: Subscriber[V] = Subscriber(viewer, caller.actor, credential)
        feed = hub.feed(fanout, start_after)
        horizon = feed.add(subscriber)
        cursor = start_after
        try:
            async for items in _catch_up(sessions, fanout, viewer, cursor, horizon):
                for event_id, name, data in items:
                    yield ServerSentEvent(data=data, event=name, id=str(event_id))
                    cursor = max(cursor, event_id)
            cursor = max(cursor, horizon)
            while True:
                entry = await subscriber.queue.get()
                if entry is _CLOSE:
                    return
                after, upto, items = entry
                if upto <= cursor:
                    continue
                if after > cursor:  # joined while the feed was reading: read the gap
                    async for gap in _catch_up(sessions, fanout, viewer, cursor, after):
                        for event_id, name, data in gap:
                            yield ServerSentEvent(data=data, event=name, id=str(event_id))
                for event_id, name, data in items:
                    if event_id > cursor:
                        yield ServerSentEvent(data=data, event=name, id=str(event_id))
                cursor = upto
        finally:
            feed.remove(subscriber)

    return EventSourceResponse(
        generate(),
        ping=HEARTBEAT_SECONDS,
        send_timeout=SEND_TIMEOUT_SECONDS,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
