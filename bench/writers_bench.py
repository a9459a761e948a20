"""Concurrent writers: 50 students reply to one thread at once through `peerboard serve`
(SQLite by default, or PostgreSQL with --database), each reply carrying an Idempotency-Key;
5 % of the requests have their connection dropped by the client right after sending, and
are retried with the same key, as a flaky network would. Afterwards the database is read
back and compared with what the server acknowledged:

    acknowledged  replies the server answered 2xx to (once per key)
    stored        replies in the database (once per key)
    lost          acknowledged but not stored          -- must be 0
    duplicates    keys stored more than once           -- must be 0
    count drift   thread.post_count minus the rows     -- must be 0

with the latency of acknowledged requests (p50/p95/p99) and every status seen (a 503
`unavailable` under lock contention is an honest answer; a 500 is not).

Run: .venv/bin/python bench/writers_bench.py [--writers 50] [--posts 20]
         [--database postgresql://postgres@127.0.0.1:5432/postgres]
     .venv/bin/python bench/writers_bench.py --quick   (tiny sizes, seconds: run by the tests)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from databases import scratch_database  # noqa: E402
from thread_bench import SECRET, _free_port, _start  # noqa: E402

DROP_RATE = 0.05


async def seed(url: str, writers: int) -> tuple[str, list[str]]:
    """A cohort, an open assignment, one thread, and a token per writer."""
    import migrations
    from services import (
        assignments,
        cohorts,
        discussions,
        identity,
        importing,
        phases,
        policy,
        tokens,
    )
    from services.db import make_engine, make_sessionmaker, transaction
    from services.models import Phase, Role
    from services.policy import Actor

    engine = make_engine(url)
    await migrations.upgrade(engine)
    system = Actor.system()
    keys = []
    async with transaction(make_sessionmaker(engine)) as session:
        cohort = await cohorts.create_cohort(session, actor=system, slug="bench", name="Bench")
        draft = importing.parse_assignment_text("Bench\n\nWhat is a secure base?\n")
        made = await assignments.import_assignment(
            session, actor=system, cohort=cohort, draft=draft
        )
        assert made.id is not None
        await phases.change_phase(session, actor=system, assignment_id=made.id, phase=Phase.open)
        detail = await assignments.get_assignment(session, actor=system, assignment_id=made.id)
        question = detail.questions[0].id
        assert question is not None
        for i in range(writers):
            user = await identity.grant(
                session, actor=system, issuer="https://bench", subject=f"w{i}",
                role=Role.student, cohort_slug="bench",
            )  # fmt: skip
            assert user.id is not None
            actor = await policy.load_actor(session, user_id=user.id, is_administrator=False)
            raw, _ = await tokens.create_token(session, actor=actor, name="w", expires_in_days=1)
            keys.append(raw)
            if i == 0:
                thread = await discussions.create_thread(
                    session, actor=actor, question_id=question, title="Busy", body="Go."
                )
                thread_id = thread.public_id
    await engine.dispose()
    return thread_id, keys


async def post_once(
    port: int, token: str, thread: str, body: str, key: str, *, drop: bool
) -> tuple[int, float]:
    """One reply over a fresh connection: (status, seconds), or (-1, …) when this client
    dropped the connection after sending (the server may or may not have stored it)."""
    payload = json.dumps({"body": body}).encode()
    request = (
        f"POST /api/v1/threads/{thread}/posts HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nIdempotency-Key: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + payload
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    if drop:
        writer.transport.abort()
        return -1, time.perf_counter() - started
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    await reader.read()
    writer.close()
    return status, time.perf_counter() - started


async def writer_loop(
    port: int, token: str, thread: str, posts: int, rng: random.Random, out: dict[str, list]
) -> None:
    for _ in range(posts):
        key = uuid.uuid4().hex
        body = f"reply {key}"
        drop = rng.random() < DROP_RATE
        for attempt in range(10):  # a dropped or refused request is retried with its key
            status, seconds = await post_once(port, token, thread, body, key, drop=drop)
            out["statuses"].append(status)
            drop = False
            if 200 <= status < 300:
                out["acked"].append(key)
                out["latency"].append(seconds)
                break
            # 503: the database was busy; 429: limited; 409: the dropped attempt with this
            # key is still being handled — ask again, and get its answer replayed.
            if status in (503, 429, 409):
                await asyncio.sleep(0.2 * (attempt + 1))
                continue
            if status != -1:
                break


async def read_back(url: str, thread: str) -> tuple[Counter[str], int, int]:
    import sqlalchemy as sa

    from services.db import make_engine

    engine = make_engine(url)
    async with engine.connect() as conn:
        tid, count = (
            await conn.execute(
                sa.text("SELECT id, post_count FROM threads WHERE public_id = :p"), {"p": thread}
            )
        ).one()
        bodies = (
            await conn.execute(
                sa.text("SELECT body FROM posts WHERE thread_id = :t AND deleted_at IS NULL"),
                {"t": tid},
            )
        ).scalars()
        stored = Counter(b.removeprefix("reply ") for b in bodies if b.startswith("reply "))
        rows = (
            await conn.execute(
                sa.text("SELECT count(*) FROM posts WHERE thread_id = :t AND deleted_at IS NULL"),
                {"t": tid},
            )
        ).scalar_one()
    await engine.dispose()
    return stored, int(count), int(rows)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=50)
    parser.add_argument("--posts", type=int, default=20, help="replies per writer")
    parser.add_argument("--database", default="", help="a PostgreSQL admin URL (default SQLite)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a few seconds")
    args = parser.parse_args()
    if args.quick:
        args.writers, args.posts = 5, 3
    with (
        tempfile.TemporaryDirectory() as tmp,
        scratch_database(args.database, tmp, "writers") as url,
    ):
        thread, keys = asyncio.run(seed(url, args.writers))
        port = _free_port()
        env = {
            **os.environ, "PEERBOARD_ENV": "test", "DATABASE_URL": url,
            "PEERBOARD_SECRET_KEY": SECRET, "PEERBOARD_BASE_URL": f"http://127.0.0.1:{port}",
            "PEERBOARD_PHASE_TICK_SECONDS": "0",
            # Scripts are what the limits stop; this measures the write path itself.
            "PEERBOARD_RATE_LIMITS": json.dumps({"post": ["100000 per minute"] * 2}),
        }  # fmt: skip
        env.pop("REDIS_URL", None)
        serve = "from web.cli import main; main()"
        server = _start(
            [sys.executable, "-c", serve, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env, port,
        )  # fmt: skip
        try:
            out: dict[str, list] = {"statuses": [], "acked": [], "latency": []}
            rng = random.Random(11)
            started = time.perf_counter()

            async def everyone() -> None:
                await asyncio.gather(
                    *(writer_loop(port, k, thread, args.posts, rng, out) for k in keys)
                )

            asyncio.run(everyone())
            took = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(timeout=30)
        stored, post_count, rows = asyncio.run(read_back(url, thread))
    acked = set(out["acked"])
    lost = len(acked - set(stored))
    duplicates = sum(1 for n in stored.values() if n > 1)
    statuses = Counter(out["statuses"])
    print(
        f"{args.writers} writers x {args.posts} replies, {DROP_RATE:.0%} of connections "
        f"dropped after sending and retried with the same Idempotency-Key, "
        f"{'PostgreSQL' if args.database else 'SQLite'}, one `peerboard serve` process\n"
    )
    print(f"acknowledged {len(acked)}  stored {len(stored)}  lost {lost}  "
          f"duplicates {duplicates}  count drift {post_count - rows}")  # fmt: skip
    print(f"latency of acknowledged replies: p50 {pct(out['latency'], 0.5):.0f} ms, "
          f"p95 {pct(out['latency'], 0.95):.0f} ms, p99 {pct(out['latency'], 0.99):.0f} ms; "
          f"{len(acked) / took:.0f} replies/s")  # fmt: skip
    print("statuses (-1: dropped by the client):", dict(sorted(statuses.items())))
    if lost or duplicates or post_count != rows or 500 in statuses:
        raise SystemExit("data was lost, doubled or miscounted, or the server answered 500")


if __name__ == "__main__":
    main()
