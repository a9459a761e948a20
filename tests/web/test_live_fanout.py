"""Live fan-out (web/live.py): each batch is read once per process whatever the number of
subscribers, each audience sees exactly what it saw before (names for staff and the author,
the alias for classmates), late joiners catch up from the events table, and a revoked token,
a removed member or a slow reader ends the stream.

The app runs in this process under a real uvicorn server (streams need a socket), so the
test can count the statements the feed sends to the database."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import json
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request

from services import discussions, memberships, tokens
from services.db import transaction
from services.policy import Actor
from tests.conftest import make_settings
from tests.discussion_support import build_forum
from web import live
from web.app import create_app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def served(database_url: str) -> AsyncIterator[str]:
    port = _free_port()
    app = create_app(make_settings(database_url))
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)


@contextlib.contextmanager
def counting(fragment: str) -> Iterator[list[str]]:
    """Every SQL statement (on any engine) containing `fragment`."""
    seen: list[str] = []

    def listen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if fragment in statement:
            seen.append(statement)

    event.listen(Engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", listen)


class Listener:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []  # (id, event, data)
        self.arrived = asyncio.Event()
        self.ended = asyncio.Event()
        self.status = 0

    async def run(self, client: httpx.AsyncClient, url: str, last: str | None = None) -> None:
        fields: dict[str, str] = {}
        headers = {"Last-Event-ID": last} if last is not None else {}
        try:
            async with client.stream("GET", url, headers=headers) as response:
                self.status = response.status_code
                async for line in response.aiter_lines():
                    if not line:
                        if "data" in fields:
                            self.events.append((fields["id"], fields["event"], fields["data"]))
                            self.arrived.set()
                        fields = {}
                    elif not line.startswith(":"):
                        name, _, value = line.partition(": ")
                        fields[name] = value
        finally:
            self.ended.set()

    async def wait_for(self, text: str, within: float = 10.0) -> str:
        async def found() -> str:
            while True:
                for _, _, data in self.events:
                    if text in data:
                        return data
                self.arrived.clear()
                await self.arrived.wait()

        return await asyncio.wait_for(found(), within)


@pytest.fixture
async def forum_setup(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    async with transaction(sessions) as session:
        forum = await build_forum(session)
        secrets_by_name: dict[str, str] = {}
        token_ids: dict[str, int] = {}
        for name in ("ada", "ben", "chen", "mona"):
            actor = await forum.actor(session, name)
            raw, token = await tokens.create_token(
                session, actor=actor, name="live", expires_in_days=1
            )
            secrets_by_name[name] = raw
            token_ids[name] = token.id or 0
        ada = await forum.actor(session, "ada")
        thread = await discussions.create_thread(
            session,
            actor=ada,
            question_id=forum.question_ids[0],
            title="Fan-out",
            body="opening",
            anonymous=True,
        )
    return {
        "forum": forum,
        "thread": thread.public_id,
        "secrets": secrets_by_name,
        "token_ids": token_ids,
    }


def _client(secret: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(headers={"Authorization": f"Bearer {secret}"}, timeout=30)


async def test_each_batch_is_read_once_and_each_audience_sees_what_it_may(
    database_url: str, forum_setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    thread, secrets_by_name = forum_setup["thread"], forum_setup["secrets"]
    # Under uvicorn the feed writes each batch to parked subscribers itself (no task
    # wake-up per subscriber): count those writes.
    direct: list[bool] = []
    write_now = live.Subscriber.write_now

    def counted(self: live.Subscriber[Any], body: bytes) -> bool:
        direct.append(write_now(self, body))
        return direct[-1]

    monkeypatch.setattr(live.Subscriber, "write_now", counted)
    async with served(database_url) as base:
        url = f"{base}/api/v1/threads/{thread}/events"
        who = ["ben"] * 6 + ["chen", "mona", "ada"]
        clients = [_client(secrets_by_name[name]) for name in who]
        listeners = [Listener() for _ in who]
        tasks = [
            asyncio.create_task(lst.run(c, url)) for lst, c in zip(listeners, clients, strict=True)
        ]
        try:
            await asyncio.sleep(1.0)  # every stream open and registered
            with counting("FROM events") as reads:
                async with _client(secrets_by_name["ada"]) as ada:
                    made = await ada.post(
                        f"{base}/api/v1/threads/{thread}/posts",
                        json={"body": "a fanned-out reply", "anonymous": True},
                    )
                    assert made.status_code == 201, made.text
                datas = [await lst.wait_for("a fanned-out reply") for lst in listeners]
                await asyncio.sleep(0.3)
            # One feed read the batch for all nine subscribers (a stray poll may add one).
            assert 1 <= len(reads) <= 2, reads
            by_name = dict(zip(who, datas, strict=True))
            for name in ("ben", "chen"):
                post = json.loads(by_name[name])["post"]
                assert "Ada" not in by_name[name]
                assert post["author"]["anonymous"] and not post["author"]["is_you"]
                assert post["can_flag"] and not post["can_edit"]
            staff = json.loads(by_name["mona"])["post"]
            assert staff["author"]["name"] == "Ada" and staff["author"]["alias"]
            mine = json.loads(by_name["ada"])["post"]
            assert mine["author"]["is_you"] and mine["can_edit"] and not mine["can_flag"]
            assert mine["body"] == "a fanned-out reply"
            assert all(d == datas[0] for d in datas[:6]), "one audience, one rendering"
            assert direct.count(True) == len(who), direct
            # And the next batch follows on from where the direct writes left each stream.
            async with _client(secrets_by_name["ben"]) as ben:
                again = await ben.post(
                    f"{base}/api/v1/threads/{thread}/posts", json={"body": "and another"}
                )
                assert again.status_code == 201, again.text
            for lst in listeners:
                await lst.wait_for("and another")
            await asyncio.sleep(0.3)
            assert direct.count(True) == 2 * len(who), direct
            for lst in listeners:  # each event exactly once, in order
                ids = [int(i) for i, _, _ in lst.events]
                assert ids == sorted(set(ids)), ids
                assert sum("and another" in d for _, _, d in lst.events) == 1
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for c in clients:
                await c.aclose()


def _running_coroutines(path: str) -> set[str]:
    """The suspended coroutines serving requests for `path` (by their frame's `scope`)."""
    gc.collect()
    found = set()
    for o in gc.get_objects():
        if inspect.iscoroutine(o) and inspect.getcoroutinestate(o) == inspect.CORO_SUSPENDED:
            scope = o.cr_frame.f_locals.get("scope")
            if isinstance(scope, dict) and scope.get("path") == path:
                found.add(o.__qualname__)
    return found


MIDDLEWARE_AND_ENDPOINT = {
    "ServerErrorMiddleware.__call__",
    "SessionMiddleware.__call__",
    "SecurityHeadersMiddleware.__call__",
    "BodyLimitMiddleware.__call__",
    "ExceptionMiddleware.__call__",
    "Route.handle",
    "EventStream.__call__",
}


@pytest.mark.parametrize("handed_off", [True, False], ids=["handed-off", "without-handoff"])
async def test_an_open_stream_holds_no_middleware_frame_and_no_request(
    database_url: str,
    forum_setup: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    handed_off: bool,
) -> None:
    """Once started, a stream runs after the middleware and the endpoint have returned
    (PeerboardApp's HANDOFF): with thousands open, their frames, closures and requests
    would be most of what a full garbage collection walks. Its start still went through
    the middleware (security headers), and it still delivers. Without the handoff (an
    app that does not offer it) the stream runs inside the chain, and the test sees it."""
    if not handed_off:
        monkeypatch.setattr(live, "HANDOFF", "not offered")
    thread, secrets_by_name = forum_setup["thread"], forum_setup["secrets"]
    async with served(database_url) as base:
        path = f"/api/v1/threads/{thread}/events"
        async with _client(secrets_by_name["ben"]) as ben, ben.stream("GET", base + path) as opened:
            assert opened.status_code == 200
            assert opened.headers["x-content-type-options"] == "nosniff"
            assert "frame-ancestors 'none'" in opened.headers["content-security-policy"]
            lines = opened.aiter_lines()
            assert (await anext(lines)).startswith("retry: ")
            async with _client(secrets_by_name["ada"]) as ada:
                made = await ada.post(
                    base + path.replace("/events", "/posts"), json={"body": "held?"}
                )
                assert made.status_code == 201, made.text

            async def arrived() -> None:
                async for line in lines:
                    if "held?" in line:
                        return

            await asyncio.wait_for(arrived(), 10)
            running = _running_coroutines(path)
            assert "PeerboardApp.__call__" in running, running
            requests = [
                o
                for o in gc.get_objects()
                if isinstance(o, Request) and o.scope.get("path") == path
            ]
            if handed_off:
                assert not running & MIDDLEWARE_AND_ENDPOINT, running & MIDDLEWARE_AND_ENDPOINT
                assert requests == []
            else:
                assert running >= MIDDLEWARE_AND_ENDPOINT, MIDDLEWARE_AND_ENDPOINT - running
                assert requests


async def _until(check: Callable[[], bool], within: float = 10.0) -> None:
    for _ in range(int(within / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within {within} s")


async def test_a_client_that_goes_ends_its_stream_and_leaves_nothing_behind(
    database_url: str, forum_setup: dict[str, Any]
) -> None:
    """A client closing its connection ends the stream at once (the server's `receive`
    says so, outside the middleware too): the feed forgets it, and a feed without
    subscribers stops."""
    thread, secrets_by_name = forum_setup["thread"], forum_setup["secrets"]
    async with served(database_url) as base:
        path = f"/api/v1/threads/{thread}/events"

        def count() -> int:
            return sum(h.subscriber_count for h in live._HUBS.values())

        async with _client(secrets_by_name["ben"]) as ben, _client(secrets_by_name["chen"]) as chen:
            async with ben.stream("GET", base + path) as one, chen.stream("GET", base + path):
                assert one.status_code == 200
                await _until(lambda: count() == 2)
                async with ben.stream("GET", base + path):
                    await _until(lambda: count() == 3)
                await _until(lambda: count() == 2)  # that one went; two stay
                # This app's hub (an earlier test's may linger until collected).
                hub = next(h for h in live._HUBS.values() if h.subscriber_count)
                assert len(hub.feeds) == 1
            await _until(lambda: count() == 0)
            assert hub.feeds == {}
            assert _running_coroutines(path) == set()


async def test_a_late_joiner_catches_up_from_its_last_event_id(
    database_url: str, forum_setup: dict[str, Any]
) -> None:
    thread, secrets_by_name = forum_setup["thread"], forum_setup["secrets"]
    async with served(database_url) as base:
        url = f"{base}/api/v1/threads/{thread}/events"
        ada = _client(secrets_by_name["ada"])
        early, late = Listener(), Listener()
        ben, chen = _client(secrets_by_name["ben"]), _client(secrets_by_name["chen"])
        first = asyncio.create_task(early.run(ben, url))
        try:
            await asyncio.sleep(0.5)
            for n in range(3):
                made = await ada.post(
                    f"{base}/api/v1/threads/{thread}/posts", json={"body": f"reply {n}"}
                )
                assert made.status_code == 201
            await early.wait_for("reply 2")
            resume_from = early.events[0][0]  # as if the connection broke after "reply 0"
            second = asyncio.create_task(late.run(chen, url, last=resume_from))
            await late.wait_for("reply 2")
            assert [d for _, _, d in late.events if "reply 0" in d] == []
            assert any("reply 1" in d for _, _, d in late.events)
            second.cancel()
        finally:
            first.cancel()
            await asyncio.gather(first, return_exceptions=True)
            for c in (ada, ben, chen):
                await c.aclose()


async def test_a_revoked_token_and_a_removed_member_end_their_streams(
    database_url: str,
    forum_setup: dict[str, Any],
    sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(live, "RECHECK_SECONDS", 0.2)
    thread, secrets_by_name = forum_setup["thread"], forum_setup["secrets"]
    forum = forum_setup["forum"]
    async with served(database_url) as base:
        url = f"{base}/api/v1/threads/{thread}/events"
        ben, chen, mona = (_client(secrets_by_name[n]) for n in ("ben", "chen", "mona"))
        listeners = {n: Listener() for n in ("ben", "chen", "mona")}
        tasks = [
            asyncio.create_task(listeners[n].run(c, url))
            for n, c in (("ben", ben), ("chen", chen), ("mona", mona))
        ]
        try:
            await asyncio.sleep(0.8)
            async with transaction(sessions) as session:
                ben_actor = await forum.actor(session, "ben")
                await tokens.revoke_token(
                    session, actor=ben_actor, token_id=forum_setup["token_ids"]["ben"]
                )
            async with transaction(sessions) as session:
                await memberships.remove_member(
                    session, actor=Actor.system(), slug="psy", user_id=forum.users["chen"]
                )
            await asyncio.wait_for(listeners["ben"].ended.wait(), 10)
            await asyncio.wait_for(listeners["chen"].ended.wait(), 10)
            assert not listeners["mona"].ended.is_set()
            assert (await ben.get(url + "?poll=1")).status_code == 401
            assert (await chen.get(url + "?poll=1")).status_code == 404
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for c in (ben, chen, mona):
                await c.aclose()


async def test_a_subscriber_that_falls_behind_is_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(live, "QUEUE_BATCHES", 2)
    subscriber: live.Subscriber[None] = live.Subscriber(
        None, Actor.anonymous(), live.Credential(None)
    )
    subscriber.push(0, 1, [(1, "x", "{}")])
    subscriber.push(1, 2, [(2, "x", "{}")])
    assert not subscriber.closed
    subscriber.push(2, 3, [(3, "x", "{}")])  # the queue is full: dropped, backlog discarded
    assert subscriber.closed
    assert subscriber.queue.qsize() == 1
    subscriber.push(3, 4, [(4, "x", "{}")])  # nothing more is queued
    assert subscriber.queue.qsize() == 1


def _count_trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every function queued on a SQLite connection's thread, a statement with its SQL."""
    from services import sqlite_driver

    trips: list[str] = []
    original = sqlite_driver.OneTripConnection._execute

    async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        sql = args[1] if getattr(fn, "__name__", "") == "_run" else ""
        trips.append(f"{getattr(fn, '__name__', repr(fn))} {sql}".strip())
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(sqlite_driver.OneTripConnection, "_execute", counted)
    return trips


# A reply's tables and the feed's: none of their statements may take a trip.
_INLINE_TABLES = ("posts", "events", "threads", "notifications", "mail_outbox", "memberships")


def _tripped(trips: list[str]) -> list[str]:
    return [t for t in trips if any(f" {table}" in t for table in _INLINE_TABLES)]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_reply_from_the_page_sends_its_statements_inline(
    asgi: Any, forum_setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
    sessions: async_sessionmaker[AsyncSession],
) -> None:  # fmt: skip
    from services import websessions
    from tests.conftest import client_for

    forum = forum_setup["forum"]
    async with transaction(sessions) as session:
        key, row = await websessions.create(
            session, policy=websessions.SessionPolicy(), user_id=forum.users["ben"]
        )
    async with client_for(asgi) as client:
        client.cookies.set("peerboard_session", key)
        trips = _count_trips(monkeypatch)
        made = await client.post(
            f"/threads/{forum_setup['thread']}/posts",
            data={"body": "from the page", "csrf_token": row.csrf_token},
        )
        monkeypatch.undo()
    assert made.status_code == 303, made.text
    assert _tripped(trips) == [], trips
    # (a connection the pool opens first makes its own trips: its functions and PRAGMAs)
    assert "_run BEGIN IMMEDIATE" in trips and "commit" in trips, trips


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_reply_and_its_live_delivery_send_their_statements_inline(
    database_url: str, forum_setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite an API reply's statements and the thread feed's reads run on the event
    loop's thread (`transaction(inline=True)`): the only trips to a connection's thread
    are the reply's BEGIN IMMEDIATE and COMMIT (and the token's last-used touch, a unit of
    its own after it). Each trip is two thread wake-ups, the tail of live delivery."""
    thread, secrets_by_name = forum_setup["thread"], forum_setup["secrets"]
    async with served(database_url) as base:
        url = f"{base}/api/v1/threads/{thread}/events"
        listener = Listener()
        async with _client(secrets_by_name["ben"]) as ben, _client(secrets_by_name["ada"]) as ada:
            task = asyncio.create_task(listener.run(ben, url))
            try:
                await asyncio.sleep(1.0)  # the stream is open and registered
                trips = _count_trips(monkeypatch)
                with counting("FROM events") as reads:
                    made = await ada.post(
                        f"{base}/api/v1/threads/{thread}/posts", json={"body": "inline reply"}
                    )
                    assert made.status_code == 201, made.text
                    await listener.wait_for("inline reply")
                    await asyncio.sleep(0.3)
                monkeypatch.undo()
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
    assert reads, "the feed read the batch"
    # Other trips: the touch's own unit (api_tokens), and a new pooled connection's PRAGMAs.
    assert _tripped(trips) == [], trips
    assert trips[:2] == ["_run BEGIN IMMEDIATE", "commit"], trips  # the reply's unit
