"""Alembic environment (async). Shared by the CLI, the tests and `alembic` itself."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from alembic import context
from sqlalchemy import Connection

import services.models  # noqa: F401  (registers every table on the metadata)
from services.db import make_engine, metadata

config = context.config


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # Migrations must not import application code that may change later: spell our
    # TypeDecorator as the plain type it stores.
    from services.models import UTCDateTime

    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    # Full-text search objects are dialect-specific and made by hand in migrations
    # (SQLite FTS5 tables and their shadow tables, PostgreSQL expression indexes).
    return not (name or "").startswith(("posts_fts", "threads_fts", "search_"))


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
        render_item=_render_item,
        include_object=_include_object,
    )


def _run_sync(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL", "")
    if not url:
        raise RuntimeError("set DATABASE_URL (or pass a connection) to run migrations")
    from services.db import normalize_database_url  # only when run as plain `alembic`

    return normalize_database_url(url)


async def _run_online() -> None:
    engine = make_engine(_url())
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run_sync)
    finally:
        await engine.dispose()


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_sync(connection)
    elif context.is_offline_mode():
        context.configure(
            url=_url(), target_metadata=metadata, literal_binds=True, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(_run_online())


run()
