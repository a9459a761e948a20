"""A fresh database for one benchmark run: a SQLite file in a temporary folder, or, given a
PostgreSQL admin URL, a new database beside it, dropped afterwards."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def scratch_database(admin_url: str, folder: str, name: str) -> Iterator[str]:
    """Yields the database URL Peerboard takes. `admin_url` empty: SQLite in `folder`."""
    if not admin_url:
        yield f"sqlite+aiosqlite:///{folder}/{name}.db"
        return
    import asyncpg

    from services.db import normalize_database_url

    database = f"peerboard_{name}_{os.getpid()}"

    async def run(statement: str) -> None:
        conn = await asyncpg.connect(admin_url.replace("+asyncpg", ""))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            if statement:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{database}"'))
    try:
        yield normalize_database_url(admin_url.rsplit("/", 1)[0] + f"/{database}")
    finally:
        asyncio.run(run(""))
