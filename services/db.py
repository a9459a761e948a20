"""Engines and sessions. No module globals: the app (or CLI, or test) makes its own engine.

The caller owns the transaction: services receive an `AsyncSession`, flush when they need
ids, and never commit. `transaction()` is the one place that commits or rolls back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, MetaData, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import SQLModel

from services import sqlite_driver

# Deterministic constraint names, so Alembic autogenerate and batch mode on SQLite agree.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION
metadata: MetaData = SQLModel.metadata

SQLITE_BUSY_TIMEOUT_MS = 5000
WRITE_OPTION = "peerboard_write"
SNAPSHOT_OPTION = "peerboard_snapshot"
POSTGRES_STATEMENT_TIMEOUT_MS = 15000


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # Set per connection: WAL lets readers run beside the writer, busy_timeout waits for the
    # write lock instead of failing, and SQLite leaves foreign keys off unless told.
    # isolation_level=None stops the driver's own implicit BEGIN; _sqlite_begin emits ours.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    # A transaction that will write takes the write lock up front (BEGIN IMMEDIATE): a
    # deferred transaction that reads and then writes fails at once with SQLITE_BUSY when
    # another writer committed in between, and busy_timeout cannot help it.
    options = connection.get_execution_options()
    if options.get(WRITE_OPTION):
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif options.get(SNAPSHOT_OPTION, True):
        connection.exec_driver_sql("BEGIN")
    # else: no transaction at all, each statement reads the latest commit (`snapshot=False`)


def normalize_database_url(url: str) -> str:
    """Accept plain `sqlite:///` and `postgresql://` URLs and pick the async drivers."""
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError("DATABASE_URL must look like sqlite:///path.db or postgresql://host/db")
    base, _, driver = scheme.partition("+")
    if base == "sqlite":
        if driver not in ("", "aiosqlite"):
            raise ValueError(f"unsupported SQLite driver {driver!r}; use sqlite+aiosqlite")
        return f"sqlite+aiosqlite://{rest}"
    if base in ("postgresql", "postgres"):
        if driver not in ("", "asyncpg", "psycopg2", "psycopg"):
            raise ValueError(f"unsupported PostgreSQL driver {driver!r}; use postgresql+asyncpg")
        return f"postgresql+asyncpg://{rest}"
    raise ValueError(f"unsupported database {base!r}: Peerboard runs on SQLite or PostgreSQL")


def make_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An async engine with the connection settings each backend needs."""
    kwargs: dict[str, Any] = {"echo": echo}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    elif url.startswith("postgresql"):
        kwargs["pool_pre_ping"] = True
        kwargs["pool_recycle"] = 1800
        kwargs["connect_args"] = {
            "server_settings": {
                "statement_timeout": str(POSTGRES_STATEMENT_TIMEOUT_MS),
                "application_name": "peerboard",
            }
        }
    if url.startswith("sqlite") and sqlite_driver.available():
        kwargs["async_creator"] = _one_trip_creator(url)
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


def _one_trip_creator(url: str) -> Callable[[], Awaitable[Any]]:
    """Connections for `url` through services.sqlite_driver (one thread trip per statement),
    opened with the arguments SQLAlchemy's own SQLite dialect derives from the URL."""
    from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite

    args, options = SQLiteDialect_aiosqlite().create_connect_args(sa.make_url(url))
    options = {**options, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}

    async def creator() -> Any:
        return await sqlite_driver.connector(lambda: sqlite3.connect(args[0], **options))

    return creator


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def transaction(
    sessions: async_sessionmaker[AsyncSession],
    *,
    write: bool = True,
    snapshot: bool = True,
    inline: bool = False,
) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit when the block ends normally, roll back on any exception.

    `write=False` marks a read-only unit (GET requests): on SQLite it does not take the
    write lock, so readers never wait for each other. A read-only unit whose reads need not
    agree on one moment may also say `snapshot=False`: on SQLite it then opens no
    transaction (no BEGIN and no COMMIT, two trips to the connection's thread), and each
    statement reads the latest commit. PostgreSQL ignores it.

    `inline=True` marks a unit whose statements are few and small (indexed, a few rows
    each): on SQLite they run on the event loop's thread, without a trip to the
    connection's thread (services/sqlite_driver.py). Its BEGIN (which may wait for the write
    lock) and its COMMIT (which may checkpoint) still make theirs. PostgreSQL ignores it."""
    if write and not snapshot:
        raise ValueError("a writing unit is always one transaction")
    async with sessions() as session, session.begin():
        await session.connection(execution_options={WRITE_OPTION: write, SNAPSHOT_OPTION: snapshot})
        if inline:
            with sqlite_driver.inline():
                yield session
        else:
            yield session


def core_select(*columns: Any) -> Any:
    """A plain SQLAlchemy Core select for wide or aggregate rows. SQLModel's `select` is typed
    for at most four columns and SQLAlchemy's stubs reject model attributes in expressions,
    so these queries are checked by tests rather than by mypy."""
    return sa.select(*columns)


def table_of(model: type[SQLModel]) -> sa.Table:
    """A model's Core table: INSERTs with many parameter sets against it take SQLAlchemy's
    plain executemany path, not the ORM's bulk one."""
    table: sa.Table = model.__table__  # type: ignore[attr-defined]
    return table


async def insert_ignore(session: AsyncSession, model: type[SQLModel], **values: Any) -> bool:
    """Insert a row unless one with the same unique key exists; True when this call inserted
    it. Done in one statement (ON CONFLICT DO NOTHING), so two requests racing to insert the
    same row cannot both pass a check and then collide on the constraint."""
    table = model.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement: Any = pg_insert(table).values(**values).on_conflict_do_nothing()
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(table).values(**values).on_conflict_do_nothing()
    result = await session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def lock(session: AsyncSession, instance: object) -> None:
    """Re-read a loaded row under a row lock (SELECT … FOR UPDATE on PostgreSQL) before a
    check-then-write on it, so a concurrent writer's change is seen, not overwritten. On
    SQLite every writing unit already holds the database's write lock (BEGIN IMMEDIATE).
    Pending changes are flushed first, so the re-read does not discard them."""
    await session.flush()
    await session.refresh(instance, with_for_update=True)


async def lease_due(
    session: AsyncSession, model: Any, *, now: Any, limit: int, lease: Any
) -> list[int]:
    """Lease up to `limit` due rows of a delivery queue (a table with status,
    next_attempt_at, lease_until and attempts) to this worker, and return their ids: rows
    "pending" whose time has come, and rows "sending" whose worker died (its lease ran out).
    SKIP LOCKED on PostgreSQL lets several processes share the queue, each row to one of
    them; SQLite's write lock serializes them."""
    due = sa.or_(
        sa.and_(model.status == "pending", model.next_attempt_at <= now),
        sa.and_(model.status == "sending", model.lease_until < now),
    )
    ids = list(
        (
            await session.execute(
                sa.select(model.id)
                .where(due)
                .order_by(model.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).scalars()
    )
    if ids:
        await session.execute(
            sa.update(model)
            .where(model.id.in_(ids))
            .values(status="sending", lease_until=now + lease, attempts=model.attempts + 1)
            .execution_options(synchronize_session=False)
        )
    return ids


class Unavailable(StrEnum):
    """Why the database could not serve a request that was itself fine: nothing was
    changed (the unit of work rolled back), and the same request may succeed later."""

    busy = "busy"  # a lock or statement timeout, a serialization failure, pool exhausted
    down = "down"  # unreachable, refusing connections, shutting down or starting up


# SQLSTATEs: 55P03 lock_not_available, 57014 query_canceled (statement_timeout),
# 40001 serialization_failure, 40P01 deadlock_detected.
_BUSY_SQLSTATES = frozenset({"55P03", "57014", "40001", "40P01"})
# Classes 08 (connection exception), 53 (insufficient resources: too many connections,
# disk full) and 57P (admin/crash shutdown, cannot connect now: the server is restarting).
_DOWN_SQLSTATE_PREFIXES = ("08", "53", "57P")
_SQLITE_BUSY = ("database is locked", "database table is locked", "database schema is locked")
_SQLITE_DOWN = ("unable to open database file", "disk i/o error")
_DRIVER_MODULES = ("asyncpg", "aiosqlite", "sqlalchemy", "sqlite3")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [getattr(current, "orig", None), current.__cause__, current.__context__]
        if isinstance(current, BaseExceptionGroup):
            todo += current.exceptions


def _raised_in_driver(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if module.split(".")[0] in _DRIVER_MODULES:
            return True
        tb = tb.tb_next
    return False


def unavailability(exc: BaseException) -> Unavailable | None:
    """Whether `exc` means the database is busy or down (so: 503, try again), rather than
    a bug. Looks through SQLAlchemy's wrapper and the exception's causes."""
    for error in _chain(exc):
        if isinstance(error, sa.exc.TimeoutError):  # the connection pool stayed exhausted
            return Unavailable.busy
        if isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated:
            return Unavailable.down
        state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
        if isinstance(state, str):
            if state in _BUSY_SQLSTATES:
                return Unavailable.busy
            if state.startswith(_DOWN_SQLSTATE_PREFIXES):
                return Unavailable.down
        if isinstance(error, sqlite3.OperationalError):
            message = str(error).lower()
            if message.startswith(_SQLITE_BUSY):
                return Unavailable.busy
            if message.startswith(_SQLITE_DOWN):
                return Unavailable.down
        # Connection refused or reset, no route, a connect timeout: raised by the driver.
        if isinstance(error, OSError | TimeoutError) and _raised_in_driver(error):
            return Unavailable.down
    return None
