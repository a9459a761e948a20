"""Shared fixtures: a real database per test (SQLite always, PostgreSQL when configured),
schema from the Alembic migrations only, and the app served in-process.

PostgreSQL: set PEERBOARD_TEST_POSTGRES_URL to an admin URL (for example
postgresql://postgres@127.0.0.1:5432/postgres); the tests create their own databases.
PEERBOARD_REQUIRE_POSTGRES=1 (set by .ci/run) turns "not configured" into a failure.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette

import migrations
from services import identity, websessions
from services.db import (
    make_engine,
    make_sessionmaker,
    metadata,
    normalize_database_url,
    transaction,
)
from services.identity import VerifiedIdentity
from services.models import Role, User
from services.policy import Actor
from web.app import create_app
from web.settings import Settings

POSTGRES_ADMIN_URL = os.environ.get("PEERBOARD_TEST_POSTGRES_URL", "")
REQUIRE_POSTGRES = os.environ.get("PEERBOARD_REQUIRE_POSTGRES") == "1"
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"

T = TypeVar("T")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def postgres_admin_dsn() -> str:
    """An asyncpg DSN for the admin database, or skip (fail in CI) when there is none."""
    if not POSTGRES_ADMIN_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("PEERBOARD_REQUIRE_POSTGRES=1 but PEERBOARD_TEST_POSTGRES_URL is unset")
        pytest.skip("PostgreSQL not configured (set PEERBOARD_TEST_POSTGRES_URL)")
    url = make_url(normalize_database_url(POSTGRES_ADMIN_URL)).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


async def create_postgres_database(name: str) -> str:
    """Create an empty database and return its SQLAlchemy URL."""
    dsn = postgres_admin_dsn()
    try:
        conn = await asyncpg.connect(dsn)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL at {POSTGRES_ADMIN_URL} is unreachable: {exc}")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = make_url(normalize_database_url(POSTGRES_ADMIN_URL)).set(database=name)
    return url.render_as_string(hide_password=False)


async def drop_postgres_database(name: str) -> None:
    conn = await asyncpg.connect(postgres_admin_dsn())
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def migrated(url: str) -> None:
    engine = make_engine(url)
    try:
        await migrations.upgrade(engine)
    finally:
        await engine.dispose()


@contextmanager
def _on_statements(session: AsyncSession, callback: Any) -> Iterator[None]:
    """Call `callback` before each statement the session's engine runs inside the block."""
    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", callback)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", callback)


@contextmanager
def statements_of(session: AsyncSession) -> Iterator[list[str]]:
    """The SQL statements the session's engine runs inside the block (structural budgets)."""
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    with _on_statements(session, count):
        yield statements


@contextmanager
def compiled_in(session: AsyncSession) -> Iterator[list[str]]:
    """The statements SQLAlchemy compiled (rather than took from its statement cache) while
    the block ran. A statement built without a cache key (a multi-row VALUES, say) is
    compiled on every call, about a millisecond each time."""
    compiled: list[str] = []

    def check(_conn: object, _cursor: object, statement: str, *args: object) -> None:
        outcome = getattr(args[1], "cache_hit", None)  # the execution context's
        if outcome is None or statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "SET")):
            return
        if outcome.name != "CACHE_HIT":
            compiled.append(f"{outcome.name}: {' '.join(statement.split())[:120]}")

    with _on_statements(session, check):
        yield compiled


async def migrated_worlds(
    request: pytest.FixtureRequest, tmp_path: Path, *, backend: str, prefix: str
) -> AsyncIterator[list[str]]:
    """Two migrated databases (SQLite files, or PostgreSQL databases): their URLs, for
    differential tests that run the same scenario in two worlds; dropped afterwards."""
    urls, dropped = [], []
    for side in ("left", "right"):
        if backend == "sqlite":
            template: Path = request.getfixturevalue("sqlite_template")
            path = tmp_path / f"{side}.db"
            shutil.copyfile(template, path)
            urls.append(f"sqlite+aiosqlite:///{path}")
        else:
            name = f"{prefix}_{side}_{os.getpid()}"
            urls.append(await create_postgres_database(name))
            await migrated(urls[-1])
            dropped.append(name)
    try:
        yield urls
    finally:
        for name in dropped:
            await drop_postgres_database(name)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even inside the tests' event loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test gets a copy (much faster than migrating each)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    run_async(migrated(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    name = f"peerboard_test_{os.getpid()}"
    url = run_async(create_postgres_database(name))
    run_async(migrated(url))
    yield url
    run_async(drop_postgres_database(name))


async def truncate_all(url: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "peerboard.db"
        shutil.copyfile(template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    url: str = request.getfixturevalue("postgres_template")
    yield url
    run_async(truncate_all(url))  # isolation on PostgreSQL: empty every table after the test


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessionmaker(engine)


@pytest.fixture
async def session(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose work is committed when the test body ends without error."""
    async with transaction(sessions) as session:
        yield session


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "PEERBOARD_ENV": "test",
        "DATABASE_URL": database_url,
        "PEERBOARD_SECRET_KEY": TEST_SECRET,
        "PEERBOARD_BASE_URL": "http://127.0.0.1:8000",
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
def app(settings: Settings) -> Starlette:
    return create_app(settings)


@pytest.fixture
async def asgi(app: Starlette) -> AsyncIterator[Any]:
    """The app with its lifespan running (engine open), as an ASGI callable."""
    async with LifespanManager(app) as manager:
        yield manager.app


def client_for(app: Any, host: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 51000))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000")


TEST_ISSUER = "https://idp.test.example"


class People:
    """The test personas, signed in through the real services: each `client(name)` is a
    browser holding a real server-side session (cookie + CSRF header), made the way a
    successful OIDC callback makes one. The sign-in flow itself is tested in tests/web/auth.
    """

    def __init__(self, asgi: Any, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.asgi = asgi
        self.sessions = sessions
        self.users: dict[str, User] = {}
        self._clients: list[httpx.AsyncClient] = []

    async def user(self, name: str, *, administrator: bool = False) -> User:
        if name not in self.users:
            async with transaction(self.sessions) as session:
                user = await identity.sign_in(
                    session,
                    identity=VerifiedIdentity(
                        issuer=TEST_ISSUER,
                        subject=f"sub-{name}",
                        name=name.capitalize(),
                        email=f"{name}@uni.test",
                    ),
                )
                user.is_administrator = administrator
            self.users[name] = user
        return self.users[name]

    async def client(self, name: str, *, administrator: bool = False) -> httpx.AsyncClient:
        user = await self.user(name, administrator=administrator)
        async with transaction(self.sessions) as session:
            key, row = await websessions.create(
                session, policy=websessions.SessionPolicy(), user_id=user.id
            )
        client = client_for(self.asgi)
        client.cookies.set("peerboard_session", key)
        client.headers["X-CSRF-Token"] = row.csrf_token
        self._clients.append(client)
        return client

    async def member(self, name: str, cohort_slug: str, role: Role) -> httpx.AsyncClient:
        user = await self.user(name)
        async with transaction(self.sessions) as session:
            await identity.grant(
                session,
                actor=Actor.system(),
                issuer=user.issuer,
                subject=user.subject,
                role=role,
                cohort_slug=cohort_slug,
            )
        return await self.client(name)

    async def close(self) -> None:
        for client in self._clients:
            await client.aclose()


@pytest.fixture
async def people(asgi: Any, sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[People]:
    people = People(asgi, sessions)
    yield people
    await people.close()


@pytest.fixture
async def client(people: People) -> httpx.AsyncClient:
    """An administrator's browser (creates cohorts, imports assignments)."""
    return await people.client("root", administrator=True)


@pytest.fixture
async def stranger(asgi: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Someone who has not signed in."""
    async with client_for(asgi, host="203.0.113.9") as client:
        yield client


@pytest.fixture
def fixture_text() -> str:
    from services.demo import fixture_text

    return fixture_text()
