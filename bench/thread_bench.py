"""Thread benchmark: a thread of 500 posts of ~400 characters, Peerboard's thread JSON and
HTML page beside a separate minimal Starlette app (bench/bare_app.py, its own uvicorn
process on uvloop + httptools) serving the same rows of the same database with SQLAlchemy
Core + orjson, and with Core + Jinja2. Peerboard runs exactly as `peerboard serve` does.

Targets alternate round by round and every figure is a ratio to the bare JSON endpoint
measured in the same round (absolute numbers drift 25-45 % between runs on these machines).
The load generator is a light asyncio raw-socket HTTP/1.1 client with keep-alive
connections. CPU per request is read from each server process's /proc stat.

Run: .venv/bin/python bench/thread_bench.py [--rounds 3] [--seconds 5] [--concurrency 16]
     .venv/bin/python bench/thread_bench.py --quick   (tiny sizes, seconds: run by the tests)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

POSTS = 500
# A throwaway key for the throwaway server this script starts and stops.
SECRET = "bench-" + "x" * 40
WORDS = (
    "secure", "base", "attachment", "therapist", "client", "safe", "haven", "exploration",
    "attunement", "relational", "bias", "rupture", "repair", "mentalizing", "proximity",
    "comfort", "autonomy", "trust", "history", "pattern",
)  # fmt: skip


# --- seeding -------------------------------------------------------------------------------


def _text(rng: random.Random) -> str:
    words = []
    while sum(len(w) + 1 for w in words) < 400:
        words.append(rng.choice(WORDS))
    return " ".join(words).capitalize() + "."


async def seed(url: str, posts: int) -> tuple[str, str]:
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
    from services.markdown import render_markdown
    from services.models import Phase, Post, Role
    from services.policy import Actor

    engine = make_engine(url)
    await migrations.upgrade(engine)
    rng = random.Random(7)
    system = Actor.system()
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
        users = []
        for i in range(20):
            user = await identity.grant(
                session,
                actor=system,
                issuer="https://bench",
                subject=f"s{i}",
                role=Role.student,
                cohort_slug="bench",
            )
            assert user.id is not None
            users.append(user.id)
        actors = [
            await policy.load_actor(session, user_id=u, is_administrator=False) for u in users
        ]
        thread = await discussions.create_thread(
            session,
            actor=actors[0],
            question_id=question,
            title="Bench thread",
            body=_text(rng),
            anonymous=True,
        )
        # Replies through the service for a realistic tree, then the bulk in one go.
        made_posts = []
        for i in range(min(40, posts - 1)):
            parent = rng.choice(made_posts).public_id if made_posts and rng.random() < 0.6 else None
            made_posts.append(
                await discussions.reply(
                    session,
                    actor=actors[i % 20],
                    thread_id=thread.public_id,
                    body=_text(rng),
                    parent_id=parent,
                    anonymous=i % 3 == 0,
                )
            )
        assert thread.id is not None
        for i in range(posts - 1 - len(made_posts)):
            parent_post = rng.choice(made_posts)
            body = _text(rng)
            post = Post(
                public_id=discussions.new_public_id(),
                thread_id=thread.id,
                parent_id=parent_post.id,
                author_id=users[i % 20],
                anonymous=i % 3 == 0,
                depth=parent_post.depth + 1,
                path="",
                body=body,
                body_html=render_markdown(body),
            )
            session.add(post)
            await session.flush()
            assert post.id is not None
            post.path = f"{parent_post.path}/{post.id:010d}"
        thread.post_count = posts
        raw, _ = await tokens.create_token(
            session, actor=actors[5], name="bench", expires_in_days=1
        )
        public_id = thread.public_id
    await engine.dispose()
    return public_id, raw


# --- load generator ------------------------------------------------------------------------


async def _request_loop(
    port: int, request: bytes, until: float, latencies: list[float], errors: list[str]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < until:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            if status != 200:
                errors.append(str(status))
            latencies.append(time.perf_counter() - started)
    finally:
        writer.close()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(
    port: int, path: str, token: str, seconds: float, concurrency: int, pid: int
) -> dict[str, float]:
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: */*\r\n\r\n"
    ).encode()
    latencies: list[float] = []
    errors: list[str] = []
    cpu_before = _cpu_seconds(pid)
    started = time.perf_counter()
    until = started + seconds
    await asyncio.gather(
        *(_request_loop(port, request, until, latencies, errors) for _ in range(concurrency))
    )
    elapsed = time.perf_counter() - started
    cpu = _cpu_seconds(pid) - cpu_before
    if errors:
        raise RuntimeError(f"{path}: {len(errors)} errors, e.g. {errors[:3]}")
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "cpu_ms": cpu / max(1, len(latencies)) * 1000,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(command: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(command, env=env, cwd=ROOT)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return server
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise RuntimeError(f"the server did not start: {command}") from None
            time.sleep(0.1)


def _size(port: int, path: str, token: str) -> int:
    async def get() -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {token}\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0]
        if b" 200 " not in status:
            raise RuntimeError(f"{path}: {status!r}")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        writer.close()
        return length

    return asyncio.run(get())


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--posts", type=int, default=POSTS)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a few seconds")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.seconds, args.concurrency, args.posts = 1, 0.3, 2, 30

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        thread, token = asyncio.run(seed(url, args.posts))
        port, bare_port = _free_port(), _free_port()
        env = {
            **os.environ,
            "PEERBOARD_ENV": "test",
            "DATABASE_URL": url,
            "PEERBOARD_SECRET_KEY": SECRET,
            "PEERBOARD_BASE_URL": f"http://127.0.0.1:{port}",
            "PEERBOARD_PHASE_TICK_SECONDS": "0",
        }
        env.pop("REDIS_URL", None)
        serve = "from web.cli import main; main()"
        server = _start(
            [sys.executable, "-c", serve, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env,
            port,
        )
        uvicorn = [sys.executable, "-m", "uvicorn", "bare_app:make_app", "--factory"]
        uvicorn += ["--app-dir", str(ROOT / "bench"), "--host", "127.0.0.1"]
        uvicorn += ["--port", str(bare_port), "--loop", "uvloop", "--http", "httptools"]
        uvicorn += ["--no-access-log", "--log-level", "warning"]
        try:
            bare = _start(uvicorn, env, bare_port)
        except BaseException:
            server.terminate()
            raise
        try:
            per_page = min(args.posts, 200)
            targets = {
                "bare Core + orjson": (bare_port, bare.pid, f"/json/{thread}"),
                "bare Core + Jinja2": (bare_port, bare.pid, f"/html/{thread}"),
                "thread JSON (API)": (
                    port,
                    server.pid,
                    f"/api/v1/threads/{thread}?per_page={per_page}",
                ),
                "thread HTML page": (port, server.pid, f"/threads/{thread}?per_page={per_page}"),
            }
            for p, _, path in targets.values():  # warm up every target
                asyncio.run(measure(p, path, token, min(1.0, args.seconds), 4, bare.pid))
            sizes = {name: _size(p, path, token) for name, (p, _, path) in targets.items()}
            print(
                f"{args.posts} posts of ~400 chars, concurrency {args.concurrency}, "
                f"{args.seconds:g}s per target per round, one process each, SQLite\n"
            )
            header = f"{'round':>5}  {'target':<20} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
            header += f"{'CPU ms/req':>10} {'KB':>6} {'ratio':>6}"
            print(header)
            print("-" * len(header))
            ratios: dict[str, list[float]] = {name: [] for name in targets}
            for round_ in range(1, args.rounds + 1):
                order = list(targets.items())
                if round_ % 2 == 0:
                    order = order[::-1]
                results = {}
                for name, (p, pid, path) in order:
                    results[name] = asyncio.run(
                        measure(p, path, token, args.seconds, args.concurrency, pid)
                    )
                base = results["bare Core + orjson"]["rps"]
                for name in targets:
                    r = results[name]
                    ratio = r["rps"] / base
                    ratios[name].append(ratio)
                    print(
                        f"{round_:>5}  {name:<20} {r['rps']:>8.1f} {r['p50']:>8.1f} "
                        f"{r['p99']:>8.1f} {r['cpu_ms']:>10.2f} {sizes[name] / 1024:>6.0f} "
                        f"{ratio:>6.2f}"
                    )
            print()
            for name, values in ratios.items():
                print(f"median ratio {name:<20} {statistics.median(values):.2f}")
            json_ratio = statistics.median(ratios["thread JSON (API)"])
            html_ratio = statistics.median(ratios["thread HTML page"])
            print(
                f"\nthread JSON {json_ratio:.2f}x the bare JSON endpoint (goal >= 0.6); HTML page "
                f"{html_ratio:.2f}x (goal >= 0.25), {sizes['thread HTML page'] / 1024:.0f} KB "
                "(goal <= 600 KB)"
            )
        finally:
            for proc in (server, bare):
                proc.terminate()
                proc.wait(timeout=10)


if __name__ == "__main__":
    main()
