"""The platform-storage launch (cookies blocked in the iframe), third-party cookie
attributes, Peerboard's key set, dynamic and manual registration, and the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.db import transaction
from services.models import LtiDeployment, LtiPlatform, LtiToolKey
from tests.conftest import People, client_for, make_settings
from tests.lti.conftest import Browser, counts
from tests.lti.platform import LEARNER, fresh_sub
from tests.test_cli import peerboard
from web.settings import Settings


def storage_config(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="lti-storage"[^>]*>(.*?)</script>', html)
    assert found, html[:500]
    config: dict[str, Any] = json.loads(found.group(1))
    return config


async def test_the_platform_storage_path_when_cookies_are_blocked(
    browser: Browser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    p = browser.platform
    login = await browser.client.get(
        "/lti/login", params=p.login_params(lti_storage_target="_parent")
    )
    assert login.status_code == 200
    put = storage_config(login.text)
    assert put["target"] == "_parent" and put["origin"] == "https://lms.example.edu"
    assert put["next"].startswith("https://lms.example.edu/auth?")
    # The LMS may show this page in its frame.
    assert (
        "frame-ancestors 'self' https://lms.example.edu" in login.headers["content-security-policy"]
    )
    platform_storage = {put["key"]: put["value"]}  # what lti.put_data left with the LMS
    request = dict(part.split("=", 1) for part in put["next"].split("?", 1)[1].split("&"))
    from urllib.parse import unquote

    state, nonce = unquote(request["state"]), unquote(request["nonce"])
    browser.client.cookies.clear()  # the browser blocks the tool's cookies in the iframe
    token = p.sign(p.claims(nonce=nonce, sub=fresh_sub(), roles=[LEARNER]))
    first = await browser.launch(token, state)
    assert first.status_code == 200  # the page that asks the LMS's storage
    get = storage_config(first.text)
    assert get["key"] in platform_storage and get["origin"] == put["origin"]
    before = await counts(sessions)
    assert await counts(sessions) == before  # asking changed nothing
    wrong = await browser.launch(token, state, lti_binding="not-the-binding", storage_checked="1")
    assert wrong.status_code == 400
    # That attempt used the state up; a new login and the right binding go through.
    login = await browser.client.get(
        "/lti/login", params=p.login_params(lti_storage_target="_parent")
    )
    put = storage_config(login.text)
    request = dict(part.split("=", 1) for part in put["next"].split("?", 1)[1].split("&"))
    state, nonce = unquote(request["state"]), unquote(request["nonce"])
    browser.client.cookies.clear()
    token = p.sign(p.claims(nonce=nonce, sub=fresh_sub(), roles=[LEARNER]))
    ok = await browser.launch(token, state, lti_binding=put["value"], storage_checked="1")
    assert ok.status_code == 303, ok.text[:300]


async def test_storage_that_answers_nothing_is_refused(browser: Browser) -> None:
    p = browser.platform
    login = await browser.client.get(
        "/lti/login", params=p.login_params(lti_storage_target="_parent")
    )
    put = storage_config(login.text)
    from urllib.parse import parse_qs, urlsplit

    request = {k: v[0] for k, v in parse_qs(urlsplit(put["next"]).query).items()}
    browser.client.cookies.clear()
    token = p.sign(p.claims(nonce=request["nonce"], sub=fresh_sub(), roles=[LEARNER]))
    response = await browser.launch(token, request["state"], storage_checked="1")
    assert response.status_code == 400


class TestOverHttps:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return make_settings(database_url, PEERBOARD_BASE_URL="https://127.0.0.1:8000")

    async def test_cookies_survive_the_lms_iframe(self, browser: Browser) -> None:
        p = browser.platform
        params = p.login_params(target_link_uri="https://127.0.0.1:8000/lti/launch")
        login = await browser.client.get("/lti/login", params=params)
        assert login.status_code == 302
        cookie = login.headers["set-cookie"]
        assert cookie.startswith("__Host-lti-")
        for attribute in ("Secure", "SameSite=None", "Partitioned", "HttpOnly", "Path=/"):
            assert attribute in cookie
        from urllib.parse import parse_qs, urlsplit

        request = {k: v[0] for k, v in parse_qs(urlsplit(login.headers["location"]).query).items()}
        assert request["redirect_uri"] == "https://127.0.0.1:8000/lti/launch"
        name, value = cookie.split(";", 1)[0].split("=", 1)
        token = p.sign(p.claims(nonce=request["nonce"], sub=fresh_sub(), roles=[LEARNER]))
        launched = await browser.client.post(
            "/lti/launch", data={"id_token": token, "state": request["state"]},
            headers={"cookie": f"{name}={value}"},
        )  # fmt: skip
        assert launched.status_code == 303, launched.text[:300]
        session_cookie = next(
            c for c in launched.headers.get_list("set-cookie") if c.startswith("__Host-peerboard=")
        )
        assert "SameSite=None" in session_cookie and "Partitioned" in session_cookie


async def test_the_key_set_publishes_public_keys_and_rotates(
    browser: Browser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    first = (await browser.client.get("/lti/jwks.json")).json()["keys"]
    assert len(first) == 1 and first[0]["kty"] == "RSA" and "d" not in first[0]
    async with transaction(sessions, write=False) as session:
        row = (await session.execute(select(LtiToolKey))).scalars().one()
    assert "PRIVATE KEY" not in row.private_key_encrypted  # encrypted at rest
    from services import lti_keys
    from tests.conftest import TEST_SECRET

    async with transaction(sessions) as session:
        new = await lti_keys.rotate(session, secret=TEST_SECRET)
        assert (await lti_keys.signing_key(session, secret=TEST_SECRET)) is not None
        # Another secret opens none of them (a dump of the table signs nothing).
        assert (await lti_keys.signing_key(session, secret="x" * 40)) is None
    after = (await browser.client.get("/lti/jwks.json")).json()["keys"]
    assert [k["kid"] for k in after] == [new.kid, first[0]["kid"]]
    assert all(set(k) <= {"kty", "n", "e", "kid", "use", "alg"} for k in after)


async def test_dynamic_registration_against_the_platform(
    asgi: Any, app: Any, platform: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    from services import lti
    from tests.conftest import TEST_SECRET

    app.state.lti.transport = platform.transport()
    invite = lti.make_invite(secret=TEST_SECRET)
    config_url = f"{platform.issuer}/.well-known/openid-configuration"
    query = {"invite": invite, "registration_token": "reg-token-1",
             "openid_configuration": config_url}  # fmt: skip
    async with client_for(asgi) as client:
        page = await client.get(f"/lti/register?{urlencode(query)}")
        assert page.status_code == 200 and "Register Peerboard" in page.text
        done = await client.post("/lti/register", data=query)
        assert done.status_code == 200, done.text[:500]
        assert "org.imsglobal.lti.close" not in done.text  # in the static script, not inline
        bad = await client.get(f"/lti/register?{urlencode({**query, 'invite': '1.abc'})}")
        assert bad.status_code == 404
        elsewhere = {**query, "openid_configuration": "https://evil.example/.well-known/x"}
        assert (await client.post("/lti/register", data=elsewhere)).status_code == 422
    sent = platform.registrations[0]
    assert platform.registration_tokens == ["Bearer reg-token-1"]
    assert sent["initiate_login_uri"] == "http://127.0.0.1:8000/lti/login"
    assert sent["redirect_uris"] == ["http://127.0.0.1:8000/lti/launch"]
    assert sent["jwks_uri"] == "http://127.0.0.1:8000/lti/jwks.json"
    async with transaction(sessions, write=False) as session:
        stored = (await session.execute(select(LtiPlatform))).scalars().one()
        deployment = (await session.execute(select(LtiDeployment))).scalars().one()
    assert (stored.issuer, stored.client_id, stored.registered_by) == (
        platform.issuer, "dyn-client-7", "dynamic")  # fmt: skip
    assert stored.auth_login_url == f"{platform.issuer}/auth"
    assert deployment.deployment_id == "dyn-deployment-1"
    # The registered platform can launch at once.
    async with client_for(asgi) as client:
        platform.client_id, platform.deployment_id = "dyn-client-7", "dyn-deployment-1"
        launched = await Browser(client, platform).full_launch(sub=fresh_sub(), roles=[LEARNER])
        assert launched.status_code == 303


async def test_administrators_register_platforms_on_their_page(
    asgi: Any, sessions: async_sessionmaker[AsyncSession]
) -> None:
    people = People(asgi, sessions)
    root = await people.client("root", administrator=True)
    page = await root.get("/lti/platforms")
    assert page.status_code == 200 and "/lti/register?invite=" in page.text
    form = {"issuer": "https://moodle.example.org", "client_id": "abc",
            "deployment_ids": "1\n2", "auth_login_url": "https://moodle.example.org/mod/lti/auth.php",
            "token_url": "https://moodle.example.org/mod/lti/token.php",
            "jwks_url": "https://moodle.example.org/mod/lti/certs.php"}  # fmt: skip
    added = await root.post("/lti/platforms", data=form)
    assert added.status_code == 303
    assert "moodle.example.org" in (await root.get("/lti/platforms")).text
    broken = await root.post("/lti/platforms", data={**form, "jwks_url": "ftp://x"})
    assert broken.status_code == 422
    student = await people.client("ada")
    assert (await student.get("/lti/platforms")).status_code == 404
    assert (await student.post("/lti/platforms", data=form)).status_code == 404
    await people.close()


def test_lti_add_on_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "cli.db"
    peerboard("db", "upgrade", db=path)
    out = peerboard(
        "lti", "add", "--issuer", "https://canvas.instructure.com", "--client-id", "10000000000001",
        "--deployment-id", "1:abc", "--deployment-id", "2:def",
        "--auth-login-url", "https://sso.canvaslms.com/api/lti/authorize_redirect",
        "--token-url", "https://sso.canvaslms.com/login/oauth2/token",
        "--jwks-url", "https://sso.canvaslms.com/api/lti/security/jwks",
        "--frame-origin", "https://school.instructure.com", db=path,
    ).stdout  # fmt: skip
    assert "registered platform" in out and "/lti/jwks.json" in out
    listed = peerboard("lti", "list", db=path).stdout
    assert "1:abc, 2:def" in listed
    refused = peerboard("lti", "add", "--issuer", "http://evil.example", "--client-id", "x",
                        "--auth-login-url", "https://a.example", "--token-url", "https://a.example",
                        "--jwks-url", "https://a.example", db=path, check=False)  # fmt: skip
    assert refused.returncode != 0 and "issuer" in refused.stderr
    assert "/lti/register?invite=" in peerboard("lti", "registration-url", db=path).stdout
    assert "new signing key" in peerboard("lti", "rotate-key", db=path).stdout
