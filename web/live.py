"""Server-Sent Events over the events table, fanned out once per process.

Each stream (a thread's posts, an assignment's review status, a workspace) describes itself
with a `Fanout`: how to read its events after an id, how to admit a viewer, and how to
render a batch for many viewers at once (once per audience, the per-viewer parts derived
from rows already read). In each process one `Feed` per stream reads each new batch once,
in one transaction, renders it for all its subscribers, encodes each distinct event's bytes
once, and pushes them to the subscribers' bounded queues. The database work per event is
therefore constant, whatever the number of subscribers (and on PostgreSQL a feed holds one
pooled connection only while it reads).

Each subscriber is a lean ASGI response (`EventStream`): it writes the bytes its queue
hands it, nothing more. Heartbeats come from the feed (one comment line to every queue
every HEARTBEAT_SECONDS, not a timer per subscriber); a task parked on `receive` ends the
stream when the client goes; a client that does not read (its queue fills, or one write
waits longer than SEND_TIMEOUT_SECONDS) is dropped.

The events table stays the truth: a subscriber that falls behind is dropped and its client
resumes with `Last-Event-ID`; one that joins late, or misses a batch while joining, reads
the gap itself. The broker only wakes feeds (`web/broker.py`); feeds also poll every few
seconds, so a broker outage costs latency, never data.

Opening a stream is one read transaction (who is asking, may they read it, where to start,
how they proved it). At most ADMISSION_SLOTS of those run at once per process, well below
the connection pool, so a lecture hall connecting at once queues instead of exhausting the
pool; one that waits longer than ADMISSION_WAIT_SECONDS gets a 503 with Retry-After.

Standing is re-checked for all subscribers of the process every RECHECK_SECONDS with a
handful of queries (tokens, browser sessions, roles): a revoked token, a sign-out or a
change of roles closes the stream, and the client's reconnection is admitted (or refused)
afresh. Visibility that a batch itself changes (a hidden thread, a lock) is decided per
viewer when the batch is rendered.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from services import events, policy, tokens, websessions
from services.db import transaction
from services.errors import Invalid
from services.models import Event
from services.policy import Actor
from web.broker import POLL_SECONDS, LocalBroker
from web.context import Caller, _bearer, broker_of, identify, session_state, sessions_of
from web.endpoints.parsing import whole_number
from web.errors import ApiError

log = logging.getLogger("peerboard.live")

HEARTBEAT_SECONDS = 15.0
SEND_TIMEOUT_SECONDS = 30.0
RECHECK_SECONDS = 5.0
# Batches waiting for one subscriber; a subscriber this far behind is dropped (it resumes
# from the events table with Last-Event-ID).
QUEUE_BATCHES = 256
# Stream openings (and catch-up reads) running at once in a process: below the connection
# pool (SQLAlchemy's default holds 5 + 10), leaving room for everything else.
ADMISSION_SLOTS = 4
ADMISSION_WAIT_SECONDS = 60.0
RETRY_AFTER_SECONDS = 5
# How long a client waits before reconnecting after the stream ends (the SSE `retry:`).
RECONNECT_MS = 2000
# A token's last use is recorded at most this often per process by stream openings.
TOUCH_EVERY_SECONDS = 60.0

# (event id, event name, JSON data)
Item = tuple[int, str, str]
# (event id, the event encoded for the wire)
Part = tuple[int, bytes]
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


@runtime_checkable
class Positioned(Protocol):
    """A fanout that can say where its stream stands now (read in the admission's own
    transaction, after `admit`), for clients that bring no Last-Event-ID."""

    async def latest(self, session: AsyncSession) -> int: ...


def last_event_id(request: Request) -> int:
    """The event to resume after, or -1 (start from now). The header is advisory: a value
    that is not an event id (not a whole number within the events table's INTEGER id, 0 to
    2147483647) is ignored rather than refused, as if the client had sent none."""
    raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    try:
        return whole_number((raw or "").strip(), field="Last-Event-ID", minimum=0)
    except Invalid:
        return -1


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def encode(item: Item) -> bytes:
    """One event in the text/event-stream format."""
    event_id, name, data = item
    lines = _LINE_BREAK.split(data) if ("\n" in data or "\r" in data) else (data,)
    payload = "".join(f"data: {line}\n" for line in lines)
    return f"id: {event_id}\nevent: {name}\n{payload}\n".encode()


def encode_all(items: Sequence[Item]) -> bytes:
    return b"".join(encode(i) for i in items)


@dataclass(frozen=True)
class Credential:
    """How a subscriber proved who they are, for the periodic re-check."""

    user_id: int | None
    token_id: int | None = None
    session_id: int | None = None


_CLOSE: Any = object()
_PING: Any = object()
_PING_BYTES = b":\n\n"
# Where PeerboardApp (web/app.py) puts the server's own ASGI `send` in the scope.
SERVER_SEND = "peerboard.server_send"
# Where it puts a list for a response to hand the rest of itself to: PeerboardApp runs
# what is there, with the server's receive and send, once the middleware has returned.
HANDOFF = "peerboard.handoff"


@dataclass(eq=False)
class Subscriber(Generic[V]):
    viewer: V
    actor: Actor
    credential: Credential
    queue: asyncio.Queue[Any] = field(default_factory=lambda: asyncio.Queue(QUEUE_BATCHES))
    closed: bool = False
    # The task writing this subscriber's response, and since when (loop time) its current
    # write has waited for the client; 0.0 when it is not writing.
    writer: asyncio.Task[Any] | None = None
    sending_since: float = 0.0
    dropped: bool = False
    # Set while the subscriber's task waits on an empty queue, having written everything up
    # to this event id: the feed may then write the next batch itself (`write_now`).
    parked_at: int | None = None
    # The server's own `send` (uvicorn's), when the stream may be written to directly.
    server_send: Any = None

    def push(self, after: int, upto: int, parts: Any, chunk: bytes | None = None) -> None:
        """Queue a batch: events (after, upto], as (id, bytes) parts and, when they are
        all new to this subscriber, `chunk`, the parts already joined."""
        if self.closed:
            return
        try:
            self.queue.put_nowait((after, upto, parts, chunk))
        except asyncio.QueueFull:
            self.close()  # too slow: it resumes from the events table

    def write_now(self, body: bytes) -> bool:
        """Write a batch from the feed, without waking this subscriber's task: True when it
        is written (or the subscriber dropped), False when it must be queued instead.

        Only where the server's send cannot wait: uvicorn's `send` awaits nothing unless
        its transport is paused for flow control, which is checked first; the coroutine then
        finishes on its first step. (A thousand task wake-ups per event were most of the
        fan-out's cost at lecture-hall scale: bench/sse_bench.py.)"""
        owner = getattr(self.server_send, "__self__", None)
        flow = getattr(owner, "flow", None)
        if (
            self.closed
            or flow is None
            or getattr(flow, "write_paused", True)
            or getattr(owner, "disconnected", True)
        ):
            return False
        step = self.server_send({"type": "http.response.body", "body": body, "more_body": True})
        try:
            step.send(None)
        except StopIteration:
            return True
        except Exception as exc:  # the connection is gone or broken: end this stream
            log.info("live: a direct write failed (%s); closing the stream", exc)
            self.close()
            return True
        step.close()  # it would have waited after all: drop it; the client resumes
        self.drop()
        return True

    def ping(self) -> None:
        if not self.closed and not self.queue.full():
            self.queue.put_nowait(_PING)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(_CLOSE)
        if self.sending_since:  # stuck writing to a client that does not read
            self.drop()

    def drop(self) -> None:
        """End the response at once, even in the middle of a write (the connection is
        closed; the client reconnects with Last-Event-ID)."""
        self.closed = True
        writer = self.writer
        if writer is not None and not writer.done() and not self.dropped:
            self.dropped = True
            writer.cancel()


class Feed(Generic[V]):
    """One channel's reader in this process."""

    def __init__(self, hub: Hub, fanout: Fanout[V], cursor: int) -> None:
        self.hub = hub
        self.fanout = fanout
        self.cursor = cursor
        self.subscribers: dict[Subscriber[V], None] = {}
        self._wakeups = hub.broker.subscribe(fanout.channel).__enter__()
        self._pinged = time.monotonic()
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
            now = time.monotonic()
            if now - self._pinged >= HEARTBEAT_SECONDS:
                self._pinged = now
                for subscriber in list(self.subscribers):
                    subscriber.ping()
            if not full:
                await self._wakeups.wait(min(POLL_SECONDS, HEARTBEAT_SECONDS))

    async def _round(self) -> bool:
        after = self.cursor
        # A fanout whose reads need not agree on one moment says so (`snapshot = False`):
        # on SQLite its round then opens no transaction, two thread trips fewer per batch.
        snapshot = getattr(self.fanout, "snapshot", True)
        # One whose reads are all small (a batch of events and what they name, by key) says
        # `inline = True`: on SQLite they run without thread trips (services/db.py).
        inline = getattr(self.fanout, "inline", False)
        async with transaction(
            self.hub.sessions, write=False, snapshot=snapshot, inline=inline
        ) as session:
            batch = await self.fanout.read(session, after)
            if not batch:
                return False
            viewers = list(self.subscribers)
            rendered = await self.fanout.render(session, batch, [s.viewer for s in viewers])
        upto = batch[-1].id or after
        self.cursor = upto
        # Viewers of one audience share their items' data strings: encode each distinct
        # event once, and join each distinct list of events once.
        encoded: dict[tuple[int, str, int], bytes] = {}
        joined: dict[tuple[tuple[int, str, int], ...], tuple[tuple[Part, ...], bytes]] = {}
        by_list: dict[int, tuple[tuple[Part, ...], bytes]] = {}
        for subscriber, items in zip(viewers, rendered, strict=True):
            found = by_list.get(id(items))  # the same list for a whole audience: once
            if found is not None:
                _deliver(subscriber, after, upto, found)
                continue
            key = tuple((i, name, id(data)) for i, name, data in items)
            found = joined.get(key)
            if found is None:
                parts = []
                for item, k in zip(items, key, strict=True):
                    data_bytes = encoded.get(k)
                    if data_bytes is None:
                        data_bytes = encoded[k] = encode(item)
                    parts.append((item[0], data_bytes))
                found = joined[key] = (tuple(parts), b"".join(p for _, p in parts))
            by_list[id(items)] = found  # `rendered` keeps every list alive: ids stay unique
            _deliver(subscriber, after, upto, found)
        # Anyone who joined while we read starts after `after` < upto: the gap check in
        # `_Rest.run` makes them read (after, upto] themselves.
        return len(batch) >= events.MAX_BATCH


def _deliver(
    subscriber: Subscriber[Any], after: int, upto: int, found: tuple[tuple[Part, ...], bytes]
) -> None:
    """Hand a batch (after, upto] to a subscriber: written at once when its task is parked
    exactly at `after` with nothing queued, else queued for its task."""
    parts, chunk = found
    if (
        subscriber.parked_at == after
        and subscriber.queue.empty()
        and (not chunk or subscriber.write_now(chunk))
    ):
        subscriber.parked_at = upto
        return
    subscriber.push(after, upto, parts, chunk)


class Hub:
    """A process's feeds, for one broker (one app lifespan)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], broker: LocalBroker) -> None:
        self.sessions = sessions
        self.broker = broker
        self.feeds: dict[str, Feed[Any]] = {}
        self.admissions = asyncio.Semaphore(ADMISSION_SLOTS)
        self.touched: dict[int, float] = {}
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
            self.drop_stuck()
            try:
                await self.recheck()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("live: re-checking subscribers failed; trying again later")

    def drop_stuck(self) -> None:
        """Drop every subscriber whose client has not taken a write for too long."""
        now = asyncio.get_running_loop().time()
        for feed in list(self.feeds.values()):
            for s in list(feed.subscribers):
                if s.sending_since and now - s.sending_since > SEND_TIMEOUT_SECONDS:
                    s.drop()

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

    async def admission_slot(self) -> None:
        """Wait for a free admission slot; a 503 with Retry-After when none frees in time."""
        try:
            async with asyncio.timeout(ADMISSION_WAIT_SECONDS):
                await self.admissions.acquire()
        except TimeoutError:
            raise ApiError(
                503,
                "Too many live streams are opening at once; try again in a few seconds.",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            ) from None


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


@dataclass(frozen=True)
class Admission(Generic[V]):
    caller: Caller
    viewer: V
    credential: Credential
    start_after: int


async def admit(request: Request, fanout: Fanout[V], start_after: int | None) -> Admission[V]:
    """Who is asking, whether they may follow this stream and from where: one read
    transaction, in one of the process's admission slots."""
    hub = hub_of(request)
    await hub.admission_slot()
    try:
        async with transaction(hub.sessions, write=False) as session:
            caller = await identify(request, session)
            viewer = await fanout.admit(session, caller.actor)
            credential = await _credential(request, session, caller)
            if start_after is None or start_after < 0:
                start_after = last_event_id(request)
            if start_after < 0:
                if not isinstance(fanout, Positioned):
                    raise TypeError(f"{type(fanout).__name__} needs a start (it has no latest)")
                start_after = await fanout.latest(session)
        await _touch(request, hub)
    finally:
        hub.admissions.release()
    return Admission(caller, viewer, credential, start_after)


async def _touch(request: Request, hub: Hub) -> None:
    """Record a token's use (what unit_of_work does for other requests), at most once a
    minute per token per process: a lecture hall opening streams with one token would
    otherwise queue a write transaction each."""
    token_id = getattr(request.state, "touch_token_id", None)
    if token_id is None:
        return
    now = time.monotonic()
    if now - hub.touched.get(token_id, -TOUCH_EVERY_SECONDS) < TOUCH_EVERY_SECONDS:
        return
    hub.touched[token_id] = now
    if len(hub.touched) > 10_000:
        hub.touched.clear()
    try:
        async with transaction(hub.sessions) as session:
            await tokens.touch(session, token_id=token_id)
    except Exception as exc:  # bookkeeping only: never fail the stream for it
        log.warning("live: could not record a token's use (%s)", exc)


async def _catch_up(
    hub: Hub,
    fanout: Fanout[V],
    viewer: V,
    after: int,
    until: int,
) -> AsyncIterator[list[Item]]:
    """Events (after, until] for one viewer, read by the subscriber itself."""
    while after < until:
        async with hub.admissions, transaction(hub.sessions, write=False) as session:
            batch = [e for e in await fanout.read(session, after) if (e.id or 0) <= until]
            if not batch:
                return
            (items,) = await fanout.render(session, batch, [viewer])
        after = batch[-1].id or until
        yield items


async def respond(
    request: Request, *, fanout: Fanout[Any], start_after: int | None = None
) -> Response:
    """The stream, or with `?poll=1` (clients that cannot hold a connection open, and tests)
    one round: what is pending after Last-Event-ID, then the response ends.

    Without `start_after` the stream starts at the client's Last-Event-ID, or else where
    the fanout stands now (it must then be `Positioned`)."""
    admission = await admit(request, fanout, start_after)
    if request.query_params.get("poll") != "1":
        return EventStream(hub_of(request), fanout, admission)
    hub = hub_of(request)
    async with hub.admissions, transaction(hub.sessions, write=False) as session:
        batch = await fanout.read(session, admission.start_after)
        (rendered,) = await fanout.render(session, batch, [admission.viewer]) if batch else ([],)
    return Response(
        encode_all(rendered),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store"},
    )


async def stream(request: Request, *, fanout: Fanout[V], start_after: int | None) -> Response:
    """An SSE response fed by this process's feed for `fanout`, from event `start_after`."""
    admission = await admit(request, fanout, start_after)
    return EventStream(hub_of(request), fanout, admission)


class EventStream(Response, Generic[V]):
    """A text/event-stream response fed by the process's feed: it writes the bytes its
    queue hands it. Registered with the feed only once the response runs, so a client gone
    before that leaves nothing behind.

    Its start goes through the middleware (security headers, the session cookie); the rest
    of the stream (`_Rest`) is handed to PeerboardApp (web/app.py), which runs it once
    every middleware has returned (`HANDOFF`), with the server's own receive and send. No
    middleware looks at a response after its start, and an open stream then holds ~7
    coroutines instead of ~26 and none of the request's objects: with thousands of streams
    open, that is what a full garbage collection walks (bench/sse_bench.py). Served
    without PeerboardApp, it runs the rest itself. (A middleware that rewrites bodies,
    e.g. compression, must not wrap streams: their body frames never pass through it.)"""

    media_type = "text/event-stream"

    def __init__(self, hub: Hub, fanout: Fanout[V], admission: Admission[V]) -> None:
        self.status_code = 200
        self.background = None
        self.init_headers({"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        self.hub = hub
        self.fanout = fanout
        self.admission = admission

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        admission = self.admission
        subscriber: Subscriber[V] = Subscriber(
            admission.viewer, admission.caller.actor, admission.credential
        )
        rest = _Rest(self.hub, self.fanout, admission.viewer, admission.start_after, subscriber)
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        handoff: list[Callable[[Receive, Send], Awaitable[None]]] | None = scope.get(HANDOFF)
        server_send = scope.get(SERVER_SEND)
        if handoff is not None and server_send is not None:
            handoff.append(rest.run)
            return
        # Body frames still go to the server directly when it is known: every middleware
        # passes them through unchanged, and eight wrappers per frame per subscriber were
        # most of a fan-out's cost.
        await rest.run(receive, server_send or send)


@dataclass(eq=False)
class _Rest(Generic[V]):
    """A stream after its start: what it needs, and nothing of the request."""

    hub: Hub
    fanout: Fanout[V]
    viewer: V
    start_after: int
    subscriber: Subscriber[V]

    async def run(self, receive: Receive, send: Send) -> None:
        """The stream's body, written with `send`, the server's own (its flow control
        lets the feed write to it directly: `Subscriber.write_now`)."""
        hub, fanout, viewer, subscriber = self.hub, self.fanout, self.viewer, self.subscriber
        subscriber.writer = asyncio.current_task()
        subscriber.server_send = send
        watcher = asyncio.create_task(_watch_disconnect(receive, subscriber))
        feed = hub.feed(fanout, self.start_after)
        horizon = feed.add(subscriber)
        loop = asyncio.get_running_loop()

        async def write(body: bytes) -> None:
            subscriber.sending_since = loop.time()
            await send({"type": "http.response.body", "body": body, "more_body": True})
            subscriber.sending_since = 0.0

        try:
            await write(f"retry: {RECONNECT_MS}\n\n".encode())
            cursor = self.start_after
            async for items in _catch_up(hub, fanout, viewer, cursor, horizon):
                if items:
                    await write(encode_all(items))
            cursor = max(cursor, horizon)
            while True:
                if subscriber.queue.empty():
                    subscriber.parked_at = cursor  # the feed may write from here on
                entry = await subscriber.queue.get()
                if subscriber.parked_at is not None:  # what the feed wrote meanwhile
                    cursor = max(cursor, subscriber.parked_at)
                    subscriber.parked_at = None
                if entry is _CLOSE:
                    break
                if entry is _PING:
                    await write(_PING_BYTES)
                    continue
                after, upto, parts, chunk = entry
                if upto <= cursor:
                    continue
                if after > cursor:  # joined while the feed was reading: read the gap
                    async for gap in _catch_up(hub, fanout, viewer, cursor, after):
                        if gap:
                            await write(encode_all(gap))
                    cursor = after
                if after < cursor:  # started ahead of the feed: only what is new
                    chunk = b"".join(p for i, p in parts if i > cursor)
                if chunk:
                    await write(chunk)
                cursor = upto
        except asyncio.CancelledError:
            if not subscriber.dropped:
                raise
            # Dropped while the client did not read: end here; the server closes the
            # connection and the client resumes with Last-Event-ID.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            log.info("live: dropped a subscriber that stopped reading (%s)", fanout.key)
            return
        finally:
            subscriber.closed = True
            watcher.cancel()
            feed.remove(subscriber)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _watch_disconnect(receive: Receive, subscriber: Subscriber[Any]) -> None:
    """End the stream when the client goes."""
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            subscriber.close()
            return
