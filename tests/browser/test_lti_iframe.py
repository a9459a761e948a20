"""Launches inside an LMS's iframe, in Chromium with third-party cookies blocked.

The LMS (tests/lti/lms_server.py: lti1p3platform behind a course page) is served at
http://127.0.0.1:PORT; Peerboard at https://tool.test:PORT2 (a self-signed certificate, the
name mapped to loopback by --host-resolver-rules): two sites, so Peerboard in the course
page's iframe is a third-party frame, and with --test-third-party-cookie-phaseout Chromium
sends it no unpartitioned cookie. Covered: the cookie path (the login's binding cookie and
the session cookie, SameSite=None; Secure; Partitioned), the platform-storage path (the
browser loses its cookies between the login and the launch: the binding comes back from the
LMS through lti.put_data / lti.get_data), and deep linking in the frame (the picker, axe on
it, and the answer form posting to the LMS under the page's CSP form-action).
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from services import assignments, importing, lti, phases
from services.db import make_engine, make_sessionmaker, transaction
from services.models import Cohort, Phase
from services.policy import Actor
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, _require_browser
from tests.browser.test_accessibility import AXE, OVERFLOW, PHONE, RUN_AXE
from tests.conftest import TEST_SECRET, make_settings, migrated, run_async
from tests.lti.lms_server import INSTRUCTOR, LEARNER, Lms, Scenario, app_for, free_port, serve
from web.app import create_app

TOOL_HOST = "tool.test"


def _certificate(directory: Path) -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TOOL_HOST)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(TOOL_HOST)]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = directory / "tool.pem", directory / "tool.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption())
    )  # fmt: skip
    return str(cert_path), str(key_path)


@dataclass
class Site:
    tool: str
    lms: Lms
    database_url: str


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    _require_browser()
    url = f"sqlite+aiosqlite:///{tmp_path / 'lti.db'}"
    tool_port, lms_port = free_port(), free_port()
    tool = f"https://{TOOL_HOST}:{tool_port}"
    lms = Lms(base=f"http://127.0.0.1:{lms_port}", tool=tool)
    cert, key = _certificate(tmp_path)
    app = create_app(make_settings(url, PEERBOARD_BASE_URL=tool))
    run_async(_prepare(url, lms))
    with (
        serve(app, tool_port, ssl_certfile=cert, ssl_keyfile=key),
        serve(app_for(lms), lms_port),
    ):
        # The LMS's server cannot resolve tool.test (only the browser maps it): it gets the
        # tool's published key set here, to validate deep linking answers with.
        keys = httpx.get(f"https://127.0.0.1:{tool_port}/lti/jwks.json", verify=False)  # noqa: S501
        lms.tool_key_set = keys.json()
        yield Site(tool, lms, url)


async def _prepare(url: str, lms: Lms) -> None:
    await migrated(url)
    engine = make_engine(url)
    try:
        async with transaction(make_sessionmaker(engine)) as session:
            assert lms.client_id is not None
            await lti.register_platform(
                session, actor=Actor.system(), secret=TEST_SECRET,
                spec=lti.PlatformSpec(
                    issuer=lms.issuer, client_id=lms.client_id,
                    auth_login_url=f"{lms.base}/auth", token_url=f"{lms.base}/token",
                    jwks_url=f"{lms.base}/jwks", deployment_ids=[lms.deployment_id],
                ),
            )  # fmt: skip
    finally:
        await engine.dispose()


async def _add_open_assignment(url: str, title: str) -> int:
    engine = make_engine(url)
    try:
        async with transaction(make_sessionmaker(engine)) as session:
            from sqlalchemy import select

            cohort = (await session.execute(select(Cohort))).scalars().one()
            draft = importing.parse_assignment_text(f"{title}\n\nWhat is a secure base?\n")
            made = await assignments.import_assignment(
                session, actor=Actor.system(), cohort=cohort, draft=draft
            )
            assert made.id is not None
            await phases.change_phase(
                session, actor=Actor.system(), assignment_id=made.id, phase=Phase.open
            )
            return made.id
    finally:
        await engine.dispose()


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    """Chromium of its own: tool.test mapped to loopback, the self-signed certificate
    accepted, and third-party cookies blocked (partitioned cookies still allowed)."""
    _require_browser()
    from playwright.async_api import async_playwright

    args = [*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {TOOL_HOST} 127.0.0.1",
            "--ignore-certificate-errors", "--test-third-party-cookie-phaseout"]  # fmt: skip
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=args)
        yield browser
        await browser.close()


async def _open_course(browser: Any, site: Site, scenario: Scenario) -> tuple[Any, Any, list[str]]:
    context = await browser.new_context()
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    # (The LMS page has no favicon: that 404 is no problem of ours.)
    page.on("console", lambda m: problems.append(m.text)
            if m.type == "error" and "status of 404" not in m.text else None)  # fmt: skip
    hint = site.lms.start(scenario).rsplit("/", 1)[1]
    await page.goto(f"{site.lms.base}/course/{hint}")
    return context, page, problems


async def _tool_frame(page: Any, site: Site, path_prefix: str) -> Any:
    """The iframe once it shows Peerboard's page under `path_prefix`."""
    frame = page.frame(name="tool")
    assert frame is not None
    await frame.wait_for_url(f"{site.tool}{path_prefix}**", timeout=15_000)
    await frame.wait_for_load_state("load")
    return frame


async def test_the_cookie_path_in_a_cross_site_iframe(chromium: Any, site: Site) -> None:
    from playwright.async_api import expect

    context, page, problems = await _open_course(
        chromium, site, Scenario("iframe-teacher", [INSTRUCTOR])
    )
    frame = await _tool_frame(page, site, "/cohorts/")
    await expect(
        frame.get_by_role("heading", name="PSY 210: Attachment in therapy")
    ).to_be_visible()
    # Signed in inside the frame: the header names the person.
    await expect(frame.get_by_text("Pat Example")).to_be_visible()
    session_cookie = next(c for c in await context.cookies(site.tool)
                          if c["name"] == "__Host-peerboard")  # fmt: skip
    assert session_cookie["secure"] and session_cookie["sameSite"] == "None"
    # Partitioned: kept under the LMS's site, the only kind a blocked third party may keep.
    assert session_cookie.get("partitionKey") == "http://127.0.0.1", session_cookie
    assert problems == [], problems
    await context.close()


async def test_the_platform_storage_path_when_the_cookies_are_gone(
    chromium: Any, site: Site
) -> None:
    from playwright.async_api import expect

    site.lms.hold_launches = True
    context, page, problems = await _open_course(
        chromium, site, Scenario("iframe-student", [LEARNER], storage=True)
    )
    frame = page.frame(name="tool")
    assert frame is not None
    # The login left its binding in the LMS's storage, then went on to the LMS's auth page,
    # which holds the signed launch until the browser has lost its cookies.
    await frame.get_by_role("button", name="Launch").wait_for(timeout=15_000)
    await context.clear_cookies()
    await frame.get_by_role("button", name="Launch").click()
    frame = await _tool_frame(page, site, "/cohorts/")
    await expect(frame.get_by_text("Pat Example")).to_be_visible()
    log = await page.evaluate("window.storageLog")
    assert [entry[:2] for entry in log] == [["put", site.tool], ["get", site.tool]], log
    assert log[0][2] == log[1][2] and log[0][2].startswith("peerboard_")
    assert problems == [], problems
    await context.close()


async def _axe_in_frame(page: Any, frame: Any) -> list[str]:
    """axe-core in the frame at desktop and phone width (run through the DevTools protocol,
    which the page's CSP does not govern, so the real CSP stays on)."""
    await frame.evaluate(AXE.read_text())
    found = []
    for size in ({"width": 1280, "height": 900}, PHONE):
        await page.set_viewport_size(size)
        for v in await frame.evaluate(RUN_AXE):
            found.append(f"{size['width']}px {v['impact']} {v['id']}: {v['help']} {v['nodes']}")
        if size is PHONE:
            found += [f"{e} is wider than the screen" for e in await frame.evaluate(OVERFLOW)]
    return found


async def test_deep_linking_inside_the_lms_frame(chromium: Any, site: Site) -> None:
    from playwright.async_api import expect

    if not AXE.exists():
        pytest.skip("axe-core is not installed: run scripts/ensure-axe-core")
    # The course's first launch makes its cohort; then it has an assignment to offer.
    context, page, _ = await _open_course(chromium, site, Scenario("dl-teacher", [INSTRUCTOR]))
    await _tool_frame(page, site, "/cohorts/")
    await context.close()
    made = await _add_open_assignment(site.database_url, "Secure Base")
    context, page, problems = await _open_course(
        chromium, site, Scenario("dl-teacher", [INSTRUCTOR], kind="deep_link")
    )
    frame = await _tool_frame(page, site, "/lti/deep-link/")
    await expect(frame.get_by_role("heading", name="Add a Peerboard assignment")).to_be_visible()
    assert await _axe_in_frame(page, frame) == []
    await frame.get_by_role("radio", name="Secure Base").check()
    await frame.get_by_role("button", name="Add to the course").click()
    # The answer page posts itself to the LMS (its CSP's form-action names the LMS).
    for _ in range(100):
        if site.lms.deep_link_answers:
            break
        await asyncio.sleep(0.1)
    (answer,) = site.lms.deep_link_answers
    assert answer["items"][0]["custom"] == {"peerboard_assignment": str(made)}
    assert [p for p in problems if "Content Security Policy" in p] == []
    await context.close()
    # A student opens the placed link from the course page.
    context, page, problems = await _open_course(
        chromium, site, Scenario("dl-student", [LEARNER], link_id=answer["links"][0])
    )
    frame = await _tool_frame(page, site, f"/assignments/{made}")
    await expect(frame.get_by_role("heading", name="Secure Base")).to_be_visible()
    await context.close()
