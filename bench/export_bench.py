"""Export memory benchmark: stream the posts export of 10,000 and 100,000 posts and report
time, rows/s and peak Python memory (tracemalloc). Bounded memory means the peak stays
nearly flat while the row count grows tenfold.

    .venv/bin/python bench/export_bench.py            (make bench runs it too)
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import migrations
from services import exports
from services.db import make_engine, make_sessionmaker, transaction
from services.policy import Actor

QUICK = "--quick" in sys.argv  # tiny sizes, seconds: run by the tests
BODY = ("Attachment theory frames the therapist as a secure base; " * 7)[:400]


async def build(path: Path, posts: int) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    await migrations.upgrade(engine)
    await engine.dispose()
    now = "2026-11-27 09:00:00"
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO cohorts (id, slug, name, created_at) VALUES (1, 'c', 'C', ?)", (now,)
        )
        db.execute(
            "INSERT INTO assignments (id, cohort_id, title, instructions, instructions_html, "
            "phase, reviews_per_paper, allow_anonymous_posts, version, created_at, updated_at, "
            "late_policy, auto_advance) "
            "VALUES (1, 1, 'A', '', '', 'open', 3, 1, 1, ?, ?, 'mark', 0)",
            (now, now),
        )
        db.execute(
            "INSERT INTO questions (id, assignment_id, position, prompt, prompt_html, post_first) "
            "VALUES (1, 1, 1, 'Q', '<p>Q</p>', 0)"
        )
        db.executemany(
            "INSERT INTO users (id, issuer, subject, display_name, email, is_administrator, "
            "created_at) VALUES (?, 'i', ?, ?, ?, 0, ?)",
            [(u, f"s{u}", f"Student {u}", f"s{u}@x.test", now) for u in range(1, 201)],
        )
        threads = max(1, posts // 100)
        db.executemany(
            "INSERT INTO threads (id, public_id, question_id, author_id, anonymous, title, "
            "pinned, locked, post_count, created_at, last_activity_at) "
            "VALUES (?, ?, 1, ?, 0, ?, 0, 0, 100, ?, ?)",
            [(t, f"t{t}", t % 200 + 1, f"Thread {t}", now, now) for t in range(1, threads + 1)],
        )
        db.executemany(
            "INSERT INTO posts (id, public_id, thread_id, parent_id, author_id, anonymous, depth, "
            "path, body, body_html, version, score, flag_count, created_at) "
            "VALUES (?, ?, ?, NULL, ?, ?, 0, ?, ?, ?, 1, 0, 0, ?)",
            [
                (
                    p,
                    f"p{p}",
                    (p - 1) // 100 + 1,
                    p % 200 + 1,
                    p % 3 == 0,
                    f"{p:010d}",
                    f"={p} {BODY}",
                    f"<p>{BODY}</p>",
                    now,
                )
                for p in range(1, posts + 1)
            ],
        )


async def export(path: Path) -> tuple[int, int, float, int]:
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with transaction(make_sessionmaker(engine), write=False) as session:
            plan = await exports.plan(session, actor=Actor.system(), assignment_id=1, kind="posts")
            tracemalloc.start()
            started = time.perf_counter()
            rows = size = 0

            async def counted():  # type: ignore[no-untyped-def]
                nonlocal rows
                async for row in exports.rows(session, plan):
                    rows += 1
                    yield row

            async for chunk in exports.as_csv(plan.columns, counted()):
                size += len(chunk)
            elapsed = time.perf_counter() - started
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            return rows, size, elapsed, peak
    finally:
        await engine.dispose()


async def main() -> None:
    print(f"{'posts':>8} {'csv MB':>8} {'seconds':>8} {'rows/s':>9} {'peak MiB':>9}")
    for posts in (200,) if QUICK else (10_000, 100_000):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.db"
            await build(path, posts)
            rows, size, elapsed, peak = await export(path)
            assert rows == posts
            print(
                f"{posts:>8} {size / 1e6:>8.1f} {elapsed:>8.2f} {rows / elapsed:>9.0f} "
                f"{peak / 2**20:>9.1f}"
            )


if __name__ == "__main__":
    asyncio.run(main())
