"""Browser tests: Debian's chromium driven by Playwright against a real uvicorn server.

Playwright never downloads a browser here; it launches /usr/bin/chromium. When chromium is
missing the tests skip with the reason, except under PEERBOARD_REQUIRE_BROWSER=1 (CI).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from services.db import make_engine, make_sessionmaker, transaction
from services.demo import seed_demo
from tests.conftest import make_settings, migrated, run_async
from web.app import create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.path):
            item.add_marker(pytest.mark.browser)


def _require_browser() -> None:
    if CHROMIUM.exists():
        return
    reason = "Debian's chromium is not installed (make test installs it when it can: apt-get)"
    if os.environ.get("PEERBOARD_REQUIRE_BROWSER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _seed(url: str) -> int:
    await migrated(url)
    engine = make_engine(url)
    try:
        async with transaction(make_sessionmaker(engine)) as session:
            assignment = await seed_demo(session)
            assert assignment.id is not None
            return assignment.id
    finally:
        await engine.dispose()


class LiveServer:
    def __init__(self, base_url: str, assignment_id: int) -> None:
        self.base_url = base_url
        self.assignment_id = assignment_id


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The demo, seeded and served by uvicorn on a free loopback port."""
    _require_browser()
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('live') / 'demo.db'}"
    assignment_id = run_async(_seed(url))
    port = _free_port()
    settings = make_settings(url, PEERBOARD_BASE_URL=f"http://127.0.0.1:{port}")
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the live server did not start")
        time.sleep(0.05)
    yield LiveServer(f"http://127.0.0.1:{port}", assignment_id)
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    _require_browser()
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    context = await browser.new_context()
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda msg: errors.append(msg.text) if msg.type == "error" else None,
    )
    yield page
    await context.close()
    assert errors == [], f"the page reported errors: {errors}"
