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
from services.demo.living import seed_living_cohort
from tests.conftest import migrated, run_async
from tests.lti.advantage_support import seed_lms_course
from web.app import create_app
from web.demo import demo_settings, run_demo_identity_provider

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


async def _seed(url: str, issuer: str, *, living: bool = False) -> int:
    await migrated(url)
    engine = make_engine(url)
    try:
        async with transaction(make_sessionmaker(engine)) as session:
            assignment = await seed_demo(session, issuer=issuer)
            assert assignment.id is not None
            if living:  # everything `make demo` seeds
                await seed_living_cohort(
                    session, assignment=assignment, issuer=issuer,
                    sample_paper=assignment.sample_paper or "",
                )  # fmt: skip
                # The cohort came from an LMS: its roster and gradebook parts show.
                await seed_lms_course(session, assignment_id=assignment.id)
            return assignment.id
    finally:
        await engine.dispose()


class LiveServer:
    def __init__(self, base_url: str, assignment_id: int) -> None:
        self.base_url = base_url
        self.assignment_id = assignment_id


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The demo cohort with the Secure Base assignment open (and nothing else) behind the
    demo identity provider, served by uvicorn on free loopback ports."""
    yield from _serve(tmp_path_factory, living=False)


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """What `make demo` runs: the living demo (discussion, reviews under way, feedback,
    flags, exemplars). Tests that change it change only what no other test reads."""
    yield from _serve(tmp_path_factory, living=True)


def _serve(factory: pytest.TempPathFactory, *, living: bool) -> Iterator[LiveServer]:
    _require_browser()
    url = f"sqlite+aiosqlite:///{factory.mktemp('live') / 'demo.db'}"
    port = _free_port()
    with run_demo_identity_provider(_free_port()) as issuer:
        assignment_id = run_async(_seed(url, issuer, living=living))
        settings = demo_settings(host="127.0.0.1", port=port, database_url=url, issuer=issuer)
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


async def new_page(
    browser: Any, live_server: LiveServer, **options: Any
) -> tuple[Any, Any, list[str]]:
    """A fresh browser context; errors on Peerboard's own pages are collected."""
    context = await browser.new_context(**options)
    # The demo identity provider's page links a stylesheet on a CDN; there is no network here.
    await context.route("https://cdn.jsdelivr.net/**", lambda route: route.abort())
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def on_console(msg: Any) -> None:
        if msg.type == "error" and page.url.startswith(live_server.base_url):
            errors.append(f"{page.url}: {msg.text}")

    page.on("console", on_console)
    return context, page, errors


@pytest.fixture
async def page(browser: Any, live_server: LiveServer) -> AsyncIterator[Any]:
    context, page, errors = await new_page(browser, live_server)
    yield page
    await context.close()
    assert errors == [], f"the page reported errors: {errors}"


async def sign_in_as(page: Any, live_server: LiveServer, subject: str) -> None:
    """Sign in through the demo identity provider, as a person would."""
    await page.goto(live_server.base_url + "/")
    await page.get_by_role("link", name="Sign in with your institution").click()
    await page.get_by_role("link", name="Demo sign-in: choose one of the demo people").click()
    await page.get_by_role("button", name=subject, exact=True).click()
    await page.wait_for_url(live_server.base_url + "/**")
