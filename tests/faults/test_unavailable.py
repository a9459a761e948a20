"""A database that is busy or down is not a bug (issue 15, items 3 and 7): the answer is 503
`unavailable` with Retry-After (problem details in the API, a page in the browser), nothing is
changed, and the same request succeeds once the database is back. Before, each was a 500.

Real faults only: a second connection holding SQLite's write lock past the busy timeout, a
PostgreSQL lock held past lock_timeout, a backend terminated mid-request (what a server
restart does to it), and a database nobody answers for."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import discussions, tokens
from services.db import Unavailable, transaction, unavailability
from tests.conftest import People, client_for, make_settings
from tests.discussion_support import build_forum
from tests.web.test_bad_input import _world
from web.app import create_app


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) > 0
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "unavailable"
    assert problem["status"] == 503


async def _reply_count(client: httpx.AsyncClient, thread: str) -> int:
    view = (await client.get(f"/api/v1/threads/{thread}")).json()
    return int(view["reply_count"]) if "reply_count" in view else len(view["replies"])


async def test_sqlite_locked_past_the_busy_timeout_is_503_and_nothing_changes(
    database_url: str, people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's write lock")
    w = await _world(people, sessions)
    ada, thread = w["ada"], w["thread"]
    before = (await ada.get(f"/api/v1/threads/{thread}")).json()
    path = make_url(database_url).database
    assert path is not None
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock past busy_timeout
    try:
        api = await ada.post(f"/api/v1/threads/{thread}/posts", json={"body": "waiting"})
        page = await ada.post(
            f"/threads/{thread}/posts",
            data={"body": "waiting", "csrf_token": ada.headers["X-CSRF-Token"]},
        )
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert_unavailable(api)
    assert page.status_code == 503
    assert page.headers["content-type"].startswith("text/html")
    assert "try again" in page.text
    assert int(page.headers["retry-after"]) > 0
    assert (await ada.get(f"/api/v1/threads/{thread}")).json() == before  # nothing changed
    again = await ada.post(f"/api/v1/threads/{thread}/posts", json={"body": "waiting"})
    assert again.status_code == 201


async def _token_world(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    async with transaction(sessions) as session:
        forum = await build_forum(session)
        ada = await forum.actor(session, "ada")
        raw, _ = await tokens.create_token(session, actor=ada, name="faults", expires_in_days=1)
        thread = await discussions.create_thread(
            session, actor=ada, question_id=forum.question_ids[0], title="T", body="Opening"
        )
    return {"token": raw, "thread": thread.public_id, "assignment": forum.assignment_id}


@asynccontextmanager
async def serving(database_url: str, token: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(database_url))
    async with LifespanManager(app) as manager, client_for(manager.app) as client:
        if token:
            client.headers["Authorization"] = f"Bearer {token}"
        yield client


def _dsn(database_url: str) -> str:
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


async def _admin() -> asyncpg.Connection:
    from tests.conftest import postgres_admin_dsn

    return await asyncpg.connect(postgres_admin_dsn())


async def test_postgres_lock_timeout_is_503_and_nothing_changes(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's lock_timeout")
    w = await _token_world(sessions)
    name = make_url(database_url).database
    admin = await _admin()
    await admin.execute(f"ALTER DATABASE \"{name}\" SET lock_timeout = '300ms'")
    blocker = await asyncpg.connect(_dsn(database_url))
    try:
        async with serving(database_url, w["token"]) as client:
            before = (await client.get(f"/api/v1/threads/{w['thread']}")).json()
            tx = blocker.transaction()
            await tx.start()
            await blocker.execute("LOCK TABLE posts IN EXCLUSIVE MODE")  # reads still go
            try:
                blocked = await client.post(
                    f"/api/v1/threads/{w['thread']}/posts", json={"body": "waiting"}
                )
            finally:
                await tx.rollback()
            assert_unavailable(blocked)
            assert (await client.get(f"/api/v1/threads/{w['thread']}")).json() == before
            again = await client.post(
                f"/api/v1/threads/{w['thread']}/posts", json={"body": "waiting"}
            )
            assert again.status_code == 201
    finally:
        await blocker.close()
        await admin.execute(f'ALTER DATABASE "{name}" RESET lock_timeout')
        await admin.close()


async def test_postgres_backend_terminated_mid_request_is_503(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """What a restart does to a request in flight: its backend ends (57P01)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL")
    w = await _token_world(sessions)
    blocker = await asyncpg.connect(_dsn(database_url))
    admin = await _admin()
    try:
        async with serving(database_url, w["token"]) as client:
            tx = blocker.transaction()
            await tx.start()
            await blocker.execute("LOCK TABLE posts IN EXCLUSIVE MODE")
            request = asyncio.create_task(
                client.post(f"/api/v1/threads/{w['thread']}/posts", json={"body": "in flight"})
            )
            waiting = 0
            # Only this test's database: other test workers (and anything else on the
            # server) may have their own backends waiting on locks.
            database = make_url(database_url).database
            for _ in range(100):  # until the request's backend waits for the lock
                waiting = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = 'peerboard' AND wait_event_type = 'Lock' "
                    "AND datname = $1",
                    database,
                )
                if waiting:
                    break
                await asyncio.sleep(0.05)
            assert waiting == 1
            response = await request
            await tx.rollback()
            assert_unavailable(response)
            # The pool hands out a fresh connection next time.
            again = await client.post(
                f"/api/v1/threads/{w['thread']}/posts", json={"body": "in flight"}
            )
            assert again.status_code == 201
    finally:
        await blocker.close()
        await admin.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_a_database_nobody_answers_for_is_503(backend: str, tmp_path: Any) -> None:
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/missing-directory/peerboard.db"
    else:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/peerboard"
    async with serving(url, "pbt_anything") as client:
        assert_unavailable(await client.get("/api/v1/assignments/1"))
        assert_unavailable(await client.post("/api/v1/cohorts", json={"slug": "a", "name": "A"}))
        client.headers.pop("Authorization")
        client.cookies.set("peerboard_session", "a-session-key")  # read by the middleware
        page = await client.get("/assignments/1")
        assert page.status_code == 503
        assert page.headers["content-type"].startswith("text/html")
        assert int(page.headers["retry-after"]) > 0
        client.cookies.clear()
        assert (await client.get("/healthz")).status_code == 200  # the process is up
        assert (await client.get("/readyz")).status_code == 503


async def test_statement_timeout_is_classified_busy(database_url: str) -> None:
    """A real query cancelled by statement_timeout (57014), as the engine's 15 s one does."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's statement_timeout")
    from sqlalchemy import text

    from services.db import make_engine

    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SET statement_timeout = 50"))
            with pytest.raises(Exception) as caught:
                await conn.execute(text("SELECT pg_sleep(2)"))
    finally:
        await engine.dispose()
    assert unavailability(caught.value) is Unavailable.busy


def test_a_bug_is_not_unavailability() -> None:
    try:
        sqlite3.connect(":memory:").execute("SELECT * FROM nowhere")
    except sqlite3.OperationalError as exc:
        assert unavailability(exc) is None
    assert unavailability(ValueError("no")) is None
    assert unavailability(FileNotFoundError("template.html")) is None
