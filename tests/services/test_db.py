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
