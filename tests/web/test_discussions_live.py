"""Live updates across processes: two app processes (uvicorn) on one Redis. A post made
through one reaches an SSE subscriber of the other; with Redis down, posting still works and
the subscriber catches up (the events table is the truth, the broker only a wake-up)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import discussions, tokens
from services.db import transaction
from tests.conftest import TEST_SECRET
from tests.discussion_support import build_forum

REDIS_SERVER = "/usr/bin/redis-server"
HAVE_REDIS = Path(REDIS_SERVER).exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


@contextlib.contextmanager
def redis_on(port: int) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [
            REDIS_SERVER,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(port)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.contextmanager
def app_process(database_url: str, redis_url: str) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "PEERBOARD_ENV": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "PEERBOARD_SECRET_KEY": TEST_SECRET,
        "PEERBOARD_BASE_URL": f"http://127.0.0.1:{port}",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "web.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=Path(__file__).parents[2],
    )
    try:
        _wait_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class Listener:
    """An SSE subscriber collecting (event name, data) pairs in the background."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.arrived = asyncio.Event()

    async def run(self, client: httpx.AsyncClient, url: str) -> None:
        name = ""
        async with client.stream("GET", url) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    self.events.append((name, line[6:]))
                    self.arrived.set()

    async def wait_for(self, text: str, within: float) -> float:
        started = time.monotonic()
        while not any(text in data for _, data in self.events):
            self.arrived.clear()
            remaining = within - (time.monotonic() - started)
            if remaining <= 0:
                raise AssertionError(f"{text!r} did not arrive in {within}s: {self.events}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), remaining)
        return time.monotonic() - started


@pytest.fixture
async def setup(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[dict[str, str]]:
    async with transaction(sessions) as session:
        forum = await build_forum(session)
        secrets_by_name = {}
        for name in ("ada", "ben"):
            actor = await forum.actor(session, name)
            raw, _ = await tokens.create_token(session, actor=actor, name="live", expires_in_days=1)
            secrets_by_name[name] = raw
        ada = await forum.actor(session, "ada")
        thread = await discussions.create_thread(
            session,
            actor=ada,
            question_id=forum.question_ids[0],
            title="Live",
            body="start",
            anonymous=True,
        )
    yield {"thread": thread.public_id, **secrets_by_name}


async def test_a_post_through_one_process_reaches_a_subscriber_of_the_other(
    database_url: str, setup: dict[str, str]
) -> None:
    if not HAVE_REDIS:
        pytest.skip("redis-server is not installed")
    redis_port = _free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    with (
        redis_on(redis_port) as redis,
        app_process(database_url, redis_url) as one,
        app_process(database_url, redis_url) as two,
    ):
        thread = setup["thread"]
        ben = httpx.AsyncClient(headers={"Authorization": f"Bearer {setup['ben']}"}, timeout=30)
        ada = httpx.AsyncClient(headers={"Authorization": f"Bearer {setup['ada']}"}, timeout=30)
        listener = Listener()
        task = asyncio.create_task(listener.run(ben, f"{two}/api/v1/threads/{thread}/events"))
        try:
            await asyncio.sleep(1.0)  # both processes subscribed to Redis, the stream open
            made = await ada.post(
                f"{one}/api/v1/threads/{thread}/posts",
                json={"body": "through redis", "anonymous": True},
            )
            assert made.status_code == 201
            # Well under the 5 s database poll: Redis carried the wake-up across processes.
            assert await listener.wait_for("through redis", 4.0) < 4.0
            assert not any("Ada" in data for _, data in listener.events)

            redis.terminate()
            redis.wait(timeout=10)
            down = await ada.post(
                f"{one}/api/v1/threads/{thread}/posts", json={"body": "while redis is down"}
            )
            assert down.status_code == 201  # writes never depend on the broker
            await listener.wait_for("while redis is down", 12.0)  # the poll catches up

            with redis_on(redis_port):
                await asyncio.sleep(12.0)  # the listeners reconnect (with backoff)
                back = await ada.post(
                    f"{one}/api/v1/threads/{thread}/posts", json={"body": "redis is back"}
                )
                assert back.status_code == 201
                await listener.wait_for("redis is back", 6.0)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await task
            await ben.aclose()
            await ada.aclose()
