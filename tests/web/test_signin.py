"""Sign-in through real OpenID providers on loopback.

The strict provider is panva's `oidc-provider` (Node): it enforces PKCE and registered
redirect URIs, like an institution's provider would. The rogue provider (tests/oidc/rogue.py)
is a real provider whose tokens we can make defective, to prove each check refuses them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select

from services import cohorts, memberships
from services.db import make_engine, make_sessionmaker, transaction
from services.models import Role, User
from services.policy import Actor
from tests.conftest import client_for, make_settings
from tests.oidc.panva import complete_login, run_panva_provider
from tests.oidc.rogue import RogueProvider, run_rogue_provider
from web.app import create_app

BASE = "http://127.0.0.1:8000"
SECRET = "peerboard-test-client-secret"


def providers_json(name: str, issuer: str) -> str:
    return json.dumps(
        [{"name": name, "issuer": issuer, "client_id": "peerboard", "client_secret": SECRET,
          "groups_claim": "groups", "label": f"{name} login"}]
    )  # fmt: skip


@dataclass
class Site:
    asgi: Any
    database_url: str

    def browser(self) -> httpx.AsyncClient:
        return client_for(self.asgi)

    async def count_users(self) -> int:
        engine = make_engine(self.database_url)
        try:
            async with transaction(make_sessionmaker(engine), write=False) as session:
                return int(await session.scalar(select(func.count()).select_from(User)) or 0)
        finally:
            await engine.dispose()

    async def setup_cohort(self, issuer: str) -> None:
        """A cohort whose 'psy-students' group members join as students at sign-in."""
        engine = make_engine(self.database_url)
        try:
            async with transaction(make_sessionmaker(engine)) as session:
                await cohorts.create_cohort(session, actor=Actor.system(), slug="psy", name="PSY")
                await memberships.add_group_rule(
                    session, actor=Actor.system(), slug="psy", issuer=issuer,
                    group="psy-students", role=Role.student,
                )  # fmt: skip
        finally:
            await engine.dispose()


@asynccontextmanager
async def site(database_url: str, name: str, issuer: str) -> AsyncIterator[Site]:
    settings = make_settings(database_url, PEERBOARD_OIDC_PROVIDERS=providers_json(name, issuer))
    async with LifespanManager(create_app(settings)) as manager:
        yield Site(manager.app, database_url)


async def me(browser: httpx.AsyncClient) -> dict[str, Any]:
    return (await browser.get("/api/v1/me")).json()  # type: ignore[no-any-return]


# --- the strict provider ---------------------------------------------------------------------


@pytest.fixture
def panva() -> Iterator[Any]:
    with run_panva_provider(
        clients=[{"client_id": "peerboard", "client_secret": SECRET,
                  "redirect_uris": [f"{BASE}/auth/uni/callback"]}],
        accounts={
            "ada-0001": {"email": "ada@uni.example", "name": "Ada Lovelace",
                         "groups": ["psy-students"]},
        },
    ) as provider:  # fmt: skip
        yield provider


async def test_full_sign_in_against_a_strict_provider(database_url: str, panva: Any) -> None:
    async with (
        site(database_url, "uni", panva.issuer) as s,
        s.browser() as browser,
        httpx.AsyncClient() as at_provider,
    ):
        await s.setup_cohort(panva.issuer)
        start = await browser.get("/auth/uni/login?next=/cohorts/psy")
        assert start.status_code == 302
        authorize = start.headers["location"]
        query = parse_qs(urlsplit(authorize).query)
        assert query["code_challenge_method"] == ["S256"]
        assert query["redirect_uri"] == [f"{BASE}/auth/uni/callback"]
        assert query["nonce"] and query["state"] and query["code_challenge"]
        pre_login_cookie = browser.cookies["peerboard_session"]

        callback = await complete_login(at_provider, authorize, login="ada-0001")
        done = await browser.get(callback)
        assert done.status_code == 303, done.text
        assert done.headers["location"] == "/cohorts/psy"
        # A new session id at sign-in: the pre-login key is dead.
        assert browser.cookies["peerboard_session"] != pre_login_cookie

        who = await me(browser)
        assert who["user"]["display_name"] == "Ada Lovelace"
        assert who["user"]["email"] == "ada@uni.example"
        assert who["cohorts"] == [{"slug": "psy", "name": "PSY", "role": "student"}]
        page = await browser.get("/cohorts/psy")
        assert 'Signed in as <strong dir="auto">Ada Lovelace</strong>' in page.text

        # The callback URL again (a replayed state) signs nobody in.
        async with s.browser() as thief:
            replay = await thief.get(callback)
            assert replay.status_code == 400
            assert "already used or has expired" in replay.text
            assert (await me(thief))["user"] is None

        # Signing in again is the same person (issuer + subject), not a new account.
        again = await browser.get("/auth/uni/login")
        await browser.get(
            await complete_login(at_provider, again.headers["location"], login="ada-0001")
        )
        assert await s.count_users() == 1


async def test_the_strict_provider_refuses_an_unregistered_redirect_uri(
    database_url: str, panva: Any
) -> None:
    from tests.oidc.panva import provider_error

    # This app thinks it lives elsewhere, so its redirect URI is not the registered one.
    settings = make_settings(
        database_url,
        PEERBOARD_OIDC_PROVIDERS=providers_json("uni", panva.issuer),
        PEERBOARD_BASE_URL="http://127.0.0.1:9999",
    )
    async with LifespanManager(create_app(settings)) as manager, client_for(manager.app) as b:
        start = await b.get("/auth/uni/login")
        async with httpx.AsyncClient() as at_provider:
            error = await provider_error(at_provider, start.headers["location"])
    assert "redirect_uri" in error


# --- the rogue provider: every defect is refused, and no session is created ------------------


@pytest.fixture
def rogue() -> Iterator[RogueProvider]:
    with run_rogue_provider(
        client_secret=SECRET, redirect_uris=[f"{BASE}/auth/rogue/callback"]
    ) as provider:
        yield provider


async def attempt(s: Site, *, next_path: str = "/") -> httpx.Response:
    """One sign-in in a fresh browser, through the rogue provider; returns the callback's
    answer, with the browser's /api/v1/me afterwards on `response.extensions['me']`."""
    async with s.browser() as browser, httpx.AsyncClient() as at_provider:
        start = await browser.get("/auth/rogue/login", params={"next": next_path})
        assert start.status_code == 302, start.text
        back = await at_provider.get(start.headers["location"])
        assert back.status_code == 302, back.text
        response = await browser.get(back.headers["location"])
        response.extensions["me"] = await me(browser)
        return response


async def test_a_well_behaved_provider_signs_in(database_url: str, rogue: RogueProvider) -> None:
    async with site(database_url, "rogue", rogue.issuer) as s:
        response = await attempt(s, next_path="/cohorts/x")
        assert response.status_code == 303
        assert response.headers["location"] == "/cohorts/x"
        assert response.extensions["me"]["user"]["display_name"] == "Alice Example"


REFUSED = [
    "wrong_issuer", "wrong_audience", "multiple_audiences_without_azp", "azp_mismatch",
    "expired", "issued_in_future", "alg_none", "hs256_with_public_key", "unknown_kid",
    "bad_signature", "nonce_mismatch", "missing_nonce", "no_id_token",
    "discovery_issuer_mismatch", "jwk_header",
]  # fmt: skip


@pytest.mark.parametrize("defect", REFUSED)
async def test_a_defective_answer_is_refused_with_no_session(
    database_url: str, rogue: RogueProvider, defect: Any
) -> None:
    rogue.defect = defect
    async with site(database_url, "rogue", rogue.issuer) as s:
        if defect == "discovery_issuer_mismatch":
            # Refused before the browser is even sent to the provider.
            async with s.browser() as browser:
                start = await browser.get("/auth/rogue/login")
                assert start.status_code == 400
                assert "different address" in start.text
                assert (await me(browser))["user"] is None
        else:
            response = await attempt(s)
            assert response.status_code == 400, (defect, response.headers, response.text[:300])
            assert "Sign-in did not work" in response.text
            assert "Traceback" not in response.text
            assert response.extensions["me"]["user"] is None
        assert await s.count_users() == 0


async def test_missing_email_and_name_are_taken_from_userinfo(
    database_url: str, rogue: RogueProvider
) -> None:
    rogue.defect = "no_email_in_id_token"
    async with site(database_url, "rogue", rogue.issuer) as s:
        response = await attempt(s)
        assert response.status_code == 303
        user = response.extensions["me"]["user"]
        assert (user["display_name"], user["email"]) == ("Alice Example", "alice@example.edu")
        assert rogue.userinfo_requests == 1


async def test_rotated_keys_are_fetched_again_once(database_url: str, rogue: RogueProvider) -> None:
    async with site(database_url, "rogue", rogue.issuer) as s:
        assert (await attempt(s)).status_code == 303
        before = rogue.jwks_requests
        rogue.rotate_key()
        assert (await attempt(s)).status_code == 303  # new kid: keys refetched, accepted
        assert rogue.jwks_requests == before + 1
        rogue.defect = "unknown_kid"
        assert (await attempt(s)).status_code == 400
        # No second refetch within the rate limit: an attacker cannot make us hammer the IdP.
        assert rogue.jwks_requests == before + 1


@pytest.mark.parametrize(
    "state", [None, "", "forged-state-value"], ids=["missing", "empty", "wrong"]
)
async def test_a_callback_without_the_right_state_is_refused(
    database_url: str, rogue: RogueProvider, state: str | None
) -> None:
    async with site(database_url, "rogue", rogue.issuer) as s, s.browser() as browser:
        start = await browser.get("/auth/rogue/login")
        async with httpx.AsyncClient() as at_provider:
            back = await at_provider.get(start.headers["location"])
        query = parse_qs(urlsplit(back.headers["location"]).query)
        params = {"code": query["code"][0]}
        if state is not None:
            params["state"] = state
        response = await browser.get("/auth/rogue/callback", params=params)
        assert response.status_code == 400
        assert (await me(browser))["user"] is None
        assert await s.count_users() == 0


async def test_a_provider_error_is_explained(database_url: str, rogue: RogueProvider) -> None:
    async with site(database_url, "rogue", rogue.issuer) as s, s.browser() as browser:
        await browser.get("/auth/rogue/login")
        response = await browser.get(
            "/auth/rogue/callback", params={"error": "access_denied", "state": "x"}
        )
        assert response.status_code == 400
        assert "cancelled" in response.text


@pytest.mark.parametrize(
    "next_path",
    ["//evil.example/", "/\\evil.example", "https://evil.example/", "javascript:alert(1)",
     "/%0d%0aLocation:%20https://evil.example", "evil.example"],
)  # fmt: skip
async def test_next_only_goes_to_local_paths(
    database_url: str, rogue: RogueProvider, next_path: str
) -> None:
    async with site(database_url, "rogue", rogue.issuer) as s:
        response = await attempt(s, next_path=next_path)
        assert response.status_code == 303
        location = response.headers["location"]
        parts = urlsplit(location)
        assert location.startswith("/") and not location.startswith(("//", "/\\"))
        assert (parts.scheme, parts.netloc) == ("", "")
        assert "\r" not in location and "\n" not in location


async def test_unknown_provider_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/auth/nope/login")
    assert response.status_code == 404


async def test_the_sign_in_page_lists_the_providers(database_url: str) -> None:
    async with site(database_url, "uni", "https://login.uni.example") as s, s.browser() as b:
        page = await b.get("/signin?next=/cohorts/psy")
        assert 'href="/auth/uni/login?next=/cohorts/psy"' in page.text
        assert "uni login" in page.text
        listed = (await b.get("/auth/providers")).json()
        assert listed == [
            {"name": "uni", "label": "uni login", "login_url": "/auth/uni/login", "demo": False}
        ]
