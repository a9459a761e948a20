"""SQLite through aiosqlite in one thread trip per statement.

aiosqlite runs each sqlite3 call on the connection's own thread, and SQLAlchemy's adapter
makes four such calls per statement: create a cursor, execute, fetch the rows, close the
cursor. Each trip is a queue put, a thread wake-up and a cross-thread call back into the
event loop: about 85 µs on these machines, against a few µs for a small statement itself.
A reply to a thread runs about twenty statements, so the trips alone cost it ~7 ms.

This connection hands SQLAlchemy a cursor that does all four in one trip: it executes,
fetches every row and closes the sqlite3 cursor on the connection's thread, then answers
`fetchall`, `description`, `rowcount` and `lastrowid` from what it kept. SQLAlchemy sees an
aiosqlite connection (it is one: a subclass, created through `create_async_engine`'s
documented `async_creator` hook); commits, rollbacks and everything else are aiosqlite's
own. Results are always fetched whole, which is what SQLAlchemy's adapter does for
client-side cursors anyway.

A unit of work whose statements are few, small and cannot wait for a lock may run them on
the event loop's own thread instead (`inline()`): no trip at all. Each trip is two thread
wake-ups, and on these virtual machines an idle virtual CPU halts and a wake-up can take
milliseconds: the live feed's tail was made of such waits, a few per reply. It is for
statements that take tens of microseconds (indexed reads and writes of a few rows, under a
write lock already held or reading WAL without one); BEGIN, COMMIT and ROLLBACK are never
sent inline (they are not sent through a cursor): a BEGIN IMMEDIATE may wait for the write
lock, a COMMIT may checkpoint. sqlite3 lets go of the GIL while a statement runs, either
way. A statement with many rows or parameters (an `executemany` of a notice per follower,
a multi-row INSERT) takes its trip even inside such a unit: its cost grows with its size, and
on the connection's thread the loop serves other requests meanwhile.

It leans on one private aiosqlite method, `Connection._execute` (queue a function on the
connection's thread), and on the constructor's shape, both unchanged from aiosqlite 0.17
through 0.22. `available()` checks both; otherwise Peerboard uses the plain driver.
"""

from __future__ import annotations

import inspect
import sqlite3
from collections.abc import Awaitable, Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import aiosqlite

_Result = tuple[Any, int, int | None, list[Any]]


def available() -> bool:
    """Whether this aiosqlite is shaped as this module expects: the `_execute` hook, and a
    constructor taking the sqlite3 connector and a chunk size (0.17 through 0.22)."""
    try:
        parameters = inspect.signature(aiosqlite.Connection.__init__).parameters
    except (TypeError, ValueError):
        return False
    return callable(getattr(aiosqlite.Connection, "_execute", None)) and (
        list(parameters)[1:3] == ["connector", "iter_chunk_size"]
    )


_INLINE: ContextVar[bool] = ContextVar("peerboard_sqlite_inline", default=False)

# An inline unit still sends a statement to the connection's thread past these sizes: rows of
# an `executemany`, or bound parameters of one statement. A reply's notices to a thread's few
# followers stay inline; a lecture hall's worth does not.
INLINE_MAX_ROWS = 16
INLINE_MAX_PARAMETERS = 256


@contextmanager
def inline() -> Iterator[None]:
    """Statements this task sends through a one-trip cursor inside the block run on the
    event loop's thread (see the module's docstring for which statements may)."""
    token = _INLINE.set(True)
    try:
        yield
    finally:
        _INLINE.reset(token)


def _run(
    raw: sqlite3.Connection, sql: str, parameters: Any, many: bool
) -> _Result:  # on the connection's thread
    cursor = raw.cursor()
    try:
        if many:
            cursor.executemany(sql, parameters)
        elif parameters is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, parameters)
        rows = cursor.fetchall() if cursor.description else []
        # rowcount after the fetch: for INSERT/UPDATE … RETURNING it counts the rows read.
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


def _small(parameters: Any, many: bool) -> bool:
    """Whether a statement is small enough to run inline, by its rows or parameters."""
    if parameters is None:
        return True
    try:
        size = len(parameters)
    except TypeError:  # an iterator of rows: its size is unknown
        return False
    return size <= (INLINE_MAX_ROWS if many else INLINE_MAX_PARAMETERS)


class OneTripCursor:
    """The aiosqlite cursor interface SQLAlchemy's adapter uses, one trip per statement."""

    arraysize = 1

    def __init__(self, connection: OneTripConnection) -> None:
        self._connection = connection
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: list[Any] = []

    # `await connection.cursor()` and `async with connection.cursor()` both work, as with
    # aiosqlite; neither leaves the event loop's thread.
    def __await__(self) -> Generator[Any, None, OneTripCursor]:
        return self._itself().__await__()

    async def _itself(self) -> OneTripCursor:
        return self

    async def __aenter__(self) -> OneTripCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._rows = []

    async def _trip(self, sql: str, parameters: Any, many: bool) -> OneTripCursor:
        connection = self._connection
        if _INLINE.get() and _small(parameters, many):
            # SQLAlchemy awaits each statement of a connection before the next, so the
            # connection's own thread has nothing of this connection in hand meanwhile.
            result = _run(connection._conn, sql, parameters, many)
        else:
            run: Callable[..., Awaitable[_Result]] = connection._execute  # aiosqlite's, untyped
            result = await run(_run, connection._conn, sql, parameters, many)
        self.description, self.rowcount, self.lastrowid, self._rows = result
        return self

    async def execute(self, sql: str, parameters: Any = None) -> OneTripCursor:
        return await self._trip(sql, parameters, False)

    async def executemany(self, sql: str, parameters: Any) -> OneTripCursor:
        return await self._trip(sql, parameters, True)

    async def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows

    async def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    async def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        size = self.arraysize if size is None else size
        rows, self._rows = self._rows[:size], self._rows[size:]
        return rows

    async def close(self) -> None:
        self._rows = []  # the sqlite3 cursor was closed on the connection's thread


class OneTripConnection(aiosqlite.Connection):
    """An aiosqlite connection whose cursors take one thread trip per statement."""

    def cursor(self) -> OneTripCursor:  # type: ignore[override]
        return OneTripCursor(self)

    def _idle(self) -> bool:
        try:
            return not self._conn.in_transaction  # a flag read; safe from any thread
        except (sqlite3.ProgrammingError, ValueError):  # same-thread-only, or closed
            return False

    async def rollback(self) -> None:
        """As aiosqlite's, but no trip when there is nothing to roll back: the pool rolls
        back every connection it takes back, after our commit has already ended it."""
        if not self._idle():
            await super().rollback()

    async def commit(self) -> None:
        """As aiosqlite's, but no trip when no transaction is open (a unit that read
        without one, `transaction(snapshot=False)`)."""
        if not self._idle():
            await super().commit()


def connector(connect: Callable[[], sqlite3.Connection]) -> OneTripConnection:
    """A not-yet-started connection (SQLAlchemy awaits it, which starts its thread)."""
    connection = OneTripConnection(connect, 64)
    connection._thread.daemon = True  # as SQLAlchemy does for aiosqlite's own connections
    return connection
