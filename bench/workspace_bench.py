"""Live workspace benchmark: what one refresh of the moderator's workspace costs, the work
its event stream does after each batch of changes (the overview's queries, then the page's
sections rendered through the same Jinja macros as the page).

A cohort of 200 students, one question, 1,000 / 10,000 / 100,000 posts, every student's
paper in, 1% of posts flagged. Reports the median and best of 15 refreshes and the query
count (which must not grow: tests/services/test_workspace.py holds it flat).

    .venv/bin/python bench/workspace_bench.py            (make bench runs it too)
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from export_bench import build  # the same seeded cohort of posts
from sqlalchemy import event
from starlette.requests import Request

from services import workspace
from services.db import make_engine, make_sessionmaker, transaction
from services.policy import Actor

QUICK = "--quick" in sys.argv  # tiny sizes, seconds: run by the tests
ROUNDS = 2 if QUICK else 15
SECRET = "bench-" + "x" * 40


def add_cohort_life(path: Path, posts: int) -> None:
    """Memberships, a paper per student, and flags on 1% of the posts."""
    now = "2026-11-27 09:00:00"
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO memberships (cohort_id, user_id, role, source, created_at) "
            "VALUES (1, ?, 'student', 'manual', ?)",
            [(u, now) for u in range(1, 201)],
        )
        db.executemany(
            "INSERT INTO papers (public_id, assignment_id, author_id, code, current_version, "
            "submitted_at, late, created_at, updated_at) VALUES (?, 1, ?, ?, 1, ?, ?, ?, ?)",
            [(f"pp{u}", u, f"C{u:04d}", now, u % 10 == 0, now, now) for u in range(1, 201)],
        )
        db.executemany(
            "INSERT INTO flags (post_id, reporter_id, reason, note, created_at) "
            "VALUES (?, ?, 'off_topic', '', ?)",
            [(p, (p + 7) % 200 + 1, now) for p in range(1, posts + 1, 100)],
        )


def request_for(app: Any) -> Request:
    return Request({"type": "http", "app": app, "method": "GET", "path": "/", "headers": []})


async def measure(path: Path) -> tuple[list[float], list[float], int]:
    os.environ["PEERBOARD_ENV"] = "test"
    os.environ["DATABASE_URL"] = f"sqlite+aiosqlite:///{path}"
    os.environ["PEERBOARD_SECRET_KEY"] = SECRET
    from web.app import create_app
    from web.endpoints.workspace import render_sections

    app = create_app()
    request = request_for(app)
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    sessions = make_sessionmaker(engine)
    queries = 0

    def count(*_: object) -> None:
        nonlocal queries
        queries += 1

    overview_s, render_s = [], []
    try:
        for _ in range(ROUNDS):
            async with transaction(sessions, write=False) as session:
                event.listen(session.get_bind(), "before_cursor_execute", count)
                queries = 0
                started = time.perf_counter()
                view = await workspace.overview(session, actor=Actor.system(), assignment_id=1)
                overview_s.append(time.perf_counter() - started)
                event.remove(session.get_bind(), "before_cursor_execute", count)
            started = time.perf_counter()
            sections = render_sections(request, view)
            render_s.append(time.perf_counter() - started)
            assert sections["participation"]
    finally:
        await engine.dispose()
    return overview_s, render_s, queries


async def main() -> None:
    logging.getLogger("alembic").setLevel(logging.WARNING)  # the app's logging says INFO
    print(f"{'posts':>8} {'queries':>8} {'overview ms (median/best)':>26} "
          f"{'render ms (median/best)':>24}")  # fmt: skip
    for posts in (200,) if QUICK else (1_000, 10_000, 100_000):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.db"
            await build(path, posts)
            add_cohort_life(path, posts)
            overview_s, render_s, queries = await measure(path)
            print(
                f"{posts:>8} {queries:>8} "
                f"{statistics.median(overview_s) * 1e3:>17.1f} / {min(overview_s) * 1e3:<6.1f} "
                f"{statistics.median(render_s) * 1e3:>15.1f} / {min(render_s) * 1e3:<6.1f}"
            )


if __name__ == "__main__":
    asyncio.run(main())
