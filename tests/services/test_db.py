from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.db import SQLITE_BUSY_TIMEOUT_MS


async def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(
    engine: AsyncEngine,
) -> None:
    if engine.dialect.name != "sqlite":
        async with engine.connect() as conn:
            timeout = (await conn.execute(text("SHOW statement_timeout"))).scalar_one()
        assert timeout == "15s"
        assert engine.pool._pre_ping  # type: ignore[attr-defined]
        return
    async with engine.connect() as conn:
        assert (await conn.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
        assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar_one() == (
            SQLITE_BUSY_TIMEOUT_MS
        )
        assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1


async def test_foreign_keys_are_enforced(engine: AsyncEngine) -> None:
    from sqlalchemy.exc import IntegrityError

    async with engine.connect() as conn:
        try:
            await conn.execute(
                text(
                    "INSERT INTO memberships (cohort_id, user_id, role, created_at) "
                    "VALUES (999, 999, 'student', CURRENT_TIMESTAMP)"
                )
            )
        except IntegrityError:
            await conn.rollback()
        else:  # pragma: no cover - the assertion message is the point
            raise AssertionError("a membership of a missing cohort was accepted")


async def test_concurrent_read_then_write_transactions_all_commit(engine: AsyncEngine) -> None:
    """On SQLite a deferred transaction that reads, then writes after another writer
    committed, fails at once; write units therefore start with BEGIN IMMEDIATE."""
    import asyncio

    from services.db import make_sessionmaker, transaction

    sessions = make_sessionmaker(engine)

    async def writer(i: int) -> None:
        async with transaction(sessions) as session:
            seen = (await session.execute(text("SELECT count(*) FROM cohorts"))).scalar_one()
            await asyncio.sleep(0.005)
            await session.execute(
                text(
                    "INSERT INTO cohorts (slug, name, created_at) "
                    "VALUES (:slug, 'c', CURRENT_TIMESTAMP)"
                ),
                {"slug": f"c{i}-{seen}"},
            )

    await asyncio.gather(*(writer(i) for i in range(12)))
    async with transaction(sessions, write=False) as session:
        assert (await session.execute(text("SELECT count(*) FROM cohorts"))).scalar_one() == 12
