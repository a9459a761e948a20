"""services/sqlite_driver.py: SQLite statements in one trip to the connection's thread,
behaving as aiosqlite's own cursor does for everything SQLAlchemy reads."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from services import sqlite_driver
from services.db import make_engine


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    made = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    async with made.begin() as conn:
        await conn.exec_driver_sql(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE, n INTEGER)"
        )
    yield made
    await made.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every function queued on a connection's thread."""
    made: list[str] = []
    original = sqlite_driver.OneTripConnection._execute

    async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        made.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(sqlite_driver.OneTripConnection, "_execute", counted)
    return made


async def test_peerboards_sqlite_engines_use_the_one_trip_connection(engine: AsyncEngine) -> None:
    assert sqlite_driver.available()
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.driver_connection, sqlite_driver.OneTripConnection)


async def test_a_statement_takes_one_trip_and_answers_like_a_cursor(
    engine: AsyncEngine, trips: list[str]
) -> None:
    async with engine.begin() as conn:
        trips.clear()
        inserted = await conn.execute(sa.text("INSERT INTO t (v, n) VALUES ('a', 1)"))
        assert trips == ["_run"]
        assert inserted.lastrowid == 1 and inserted.rowcount == 1
        returned = await conn.execute(sa.text("INSERT INTO t (v, n) VALUES ('b', 2) RETURNING id"))
        assert returned.scalar_one() == 2
        many = await conn.execute(
            sa.text("INSERT INTO t (v, n) VALUES (:v, :n)"),
            [{"v": "c", "n": 3}, {"v": "d", "n": 4}],
        )
        assert many.rowcount == 2
        updated = await conn.execute(sa.text("UPDATE t SET n = n + 10 WHERE n > 1"))
        assert updated.rowcount == 3
        trips.clear()
        rows = await conn.execute(sa.text("SELECT v, n FROM t ORDER BY id"))
        assert list(rows.keys()) == ["v", "n"]
        assert rows.fetchone() == ("a", 1)
        assert rows.fetchmany(2) == [("b", 12), ("c", 13)]
        assert rows.fetchall() == [("d", 14)]
        assert trips == ["_run"]  # execute, fetch and close: one trip


async def test_errors_reach_sqlalchemy_as_the_dbapi_raised_them(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.text("INSERT INTO t (v) VALUES ('same')"))
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(sa.text("INSERT INTO t (v) VALUES ('same')"))
    async with engine.connect() as conn:  # the failed unit rolled back; the pool is fine
        assert (await conn.execute(sa.text("SELECT count(*) FROM t"))).scalar_one() == 1


async def test_the_pool_takes_back_a_finished_connection_without_a_trip(
    engine: AsyncEngine, trips: list[str]
) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.text("INSERT INTO t (v) VALUES ('x')"))
    trips.clear()
    async with engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))
        await conn.commit()
    # BEGIN, SELECT and COMMIT; the pool's reset finds no transaction to roll back.
    assert len(trips) == 3, trips
    # An open transaction is still rolled back when its connection goes back to the pool.
    async with engine.connect() as conn:
        await conn.execute(sa.text("INSERT INTO t (v) VALUES ('dropped')"))
    async with engine.connect() as conn:
        found = await conn.execute(sa.text("SELECT count(*) FROM t WHERE v = 'dropped'"))
        assert found.scalar_one() == 0


async def test_an_in_memory_database_works_too() -> None:
    memory = make_engine("sqlite+aiosqlite://")
    try:
        async with memory.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE m (x INTEGER)")
            await conn.execute(sa.text("INSERT INTO m VALUES (7)"))
            assert (await conn.execute(sa.text("SELECT x FROM m"))).scalar_one() == 7
    finally:
        await memory.dispose()


async def test_an_aiosqlite_of_another_shape_gets_the_plain_driver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should a later aiosqlite drop the private hook, Peerboard still runs, on aiosqlite's
    own cursor."""
    monkeypatch.delattr(sqlite_driver.aiosqlite.Connection, "_execute")
    assert not sqlite_driver.available()
    monkeypatch.undo()
    assert sqlite_driver.available()
    monkeypatch.setattr(sqlite_driver, "available", lambda: False)
    plain = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'plain.db'}")
    try:
        async with plain.begin() as conn:
            raw = await conn.get_raw_connection()
            assert not isinstance(raw.driver_connection, sqlite_driver.OneTripConnection)
            assert (await conn.execute(sa.text("SELECT 41 + 1"))).scalar_one() == 42
    finally:
        await plain.dispose()


async def test_a_unit_without_a_snapshot_reads_in_one_trip_per_statement_and_no_more(
    engine: AsyncEngine, trips: list[str]
) -> None:
    """`transaction(write=False, snapshot=False)` opens no transaction on SQLite: no BEGIN,
    and its commit finds nothing to end (no trip). Each statement sees the latest commit:
    a row committed between its two reads shows up in the second."""
    from services.db import make_sessionmaker, transaction

    sessions = make_sessionmaker(engine)
    trips.clear()
    async with transaction(sessions, write=False, snapshot=False) as session:
        before = (await session.execute(sa.text("SELECT count(*) FROM t"))).scalar_one()
        assert trips == ["_run"], trips  # the read alone: no BEGIN before it
        async with engine.begin() as other:
            await other.execute(sa.text("INSERT INTO t (v) VALUES ('meanwhile')"))
        trips.clear()
        after = (await session.execute(sa.text("SELECT count(*) FROM t"))).scalar_one()
    assert after == before + 1
    assert trips == ["_run"], trips  # the second read; the commit made no trip
    # With a snapshot (the default) the same two reads agree on one moment.
    async with transaction(sessions, write=False) as session:
        before = (await session.execute(sa.text("SELECT count(*) FROM t"))).scalar_one()
        async with engine.begin() as other:
            await other.execute(sa.text("INSERT INTO t (v) VALUES ('unseen')"))
        after = (await session.execute(sa.text("SELECT count(*) FROM t"))).scalar_one()
    assert after == before
    with pytest.raises(ValueError):
        async with transaction(sessions, write=True, snapshot=False):
            pass


async def _statement_thread(session: Any) -> int:
    """The id of the thread that ran this statement (a function of the connection's)."""
    raw = (await (await session.connection()).get_raw_connection()).driver_connection
    await raw.create_function("ran_on", 0, threading.get_ident)
    return int((await session.execute(sa.text("SELECT ran_on()"))).scalar_one())


async def test_an_inline_unit_runs_its_statements_on_the_event_loops_thread(
    engine: AsyncEngine, trips: list[str]
) -> None:
    """`transaction(inline=True)`: its statements make no trip, and run on the calling
    thread; its BEGIN IMMEDIATE and its COMMIT still make theirs. Without it, statements
    run on the connection's own thread."""
    from services.db import make_sessionmaker, transaction

    sessions = make_sessionmaker(engine)
    here = threading.get_ident()
    trips.clear()
    async with transaction(sessions, inline=True) as session:
        assert trips == ["_run"], trips  # BEGIN IMMEDIATE, on the connection's thread
        trips.clear()
        assert await _statement_thread(session) == here
        await session.execute(sa.text("INSERT INTO t (v, n) VALUES ('inline', 1)"))
        assert trips == ["create_function"], trips  # the test's own call; no statement
        trips.clear()
    assert trips == ["commit"], trips
    async with transaction(sessions, write=False) as session:
        assert (await session.execute(sa.text("SELECT n FROM t WHERE v = 'inline'"))).scalar() == 1
        assert await _statement_thread(session) != here
    # A failing statement inline rolls the unit back as any other does.
    with pytest.raises(IntegrityError):
        async with transaction(sessions, inline=True) as session:
            await session.execute(sa.text("INSERT INTO t (v, n) VALUES ('kept?', 2)"))
            await session.execute(sa.text("INSERT INTO t (v, n) VALUES ('inline', 3)"))
    async with transaction(sessions, write=False) as session:
        assert (await session.execute(sa.text("SELECT count(*) FROM t"))).scalar_one() == 1
        # And the next unit on that connection is not inline: the flag ended with its unit.
        assert await _statement_thread(session) != here


async def test_an_inline_unit_sends_a_large_statement_to_the_connections_thread(
    engine: AsyncEngine, trips: list[str]
) -> None:
    """Inside an inline unit, a statement past the size bounds (rows of an executemany, or
    bound parameters) still takes its trip: its cost grows with it, and the event loop
    serves others meanwhile. One at the bounds runs inline."""
    from services.db import make_sessionmaker, transaction

    sessions = make_sessionmaker(engine)
    rows = sqlite_driver.INLINE_MAX_ROWS
    async with transaction(sessions, inline=True) as session:
        insert = sa.text("INSERT INTO t (v, n) VALUES (:v, :n)")
        trips.clear()
        await session.execute(insert, [{"v": f"small {i}", "n": i} for i in range(rows)])
        assert trips == [], trips
        await session.execute(insert, [{"v": f"large {i}", "n": i} for i in range(rows + 1)])
        assert trips == ["_run"], trips
        trips.clear()
        limit = sqlite_driver.INLINE_MAX_PARAMETERS
        at_bound = (
            sa.select(sa.func.count())
            .select_from(sa.table("t", sa.column("n")))
            .where(sa.column("n").in_(sa.bindparam("ns", expanding=True)))
        )
        assert (
            await session.execute(at_bound, {"ns": list(range(limit))})
        ).scalar() == 2 * rows + 1
        assert trips == [], trips
        assert (
            await session.execute(at_bound, {"ns": list(range(limit + 1))})
        ).scalar() == 2 * rows + 1
        assert trips == ["_run"], trips
    async with transaction(sessions, write=False) as session:
        assert (
            await session.execute(sa.text("SELECT count(*) FROM t"))
        ).scalar_one() == 2 * rows + 1


async def test_an_inline_unit_waiting_for_the_write_lock_does_not_stall_the_event_loop(
    engine: AsyncEngine,
) -> None:
    """The BEGIN IMMEDIATE of an inline unit waits for the write lock on the connection's
    thread: while another connection holds the lock, the event loop goes on running."""
    from services.db import make_sessionmaker, transaction

    sessions = make_sessionmaker(engine)
    ticks = 0
    waited = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not waited.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    async with engine.connect() as holder:
        # Its write takes the lock (the connection began its transaction on first use).
        await holder.execute(sa.text("INSERT INTO t (v, n) VALUES ('first', 1)"))

        async def unit() -> int:
            async with transaction(sessions, inline=True) as session:
                waited.set()
                return int((await session.execute(sa.text("SELECT count(*) FROM t"))).scalar_one())

        ticking = asyncio.create_task(ticker())
        waiting = asyncio.create_task(unit())
        await asyncio.sleep(0.3)
        assert not waiting.done() and ticks >= 10, ticks  # the loop ran while it waited
        await holder.commit()
        assert await asyncio.wait_for(waiting, 10) == 1  # and it read what was committed
        await ticking
