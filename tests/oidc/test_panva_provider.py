"""The Node provider is real and strict: a stand-in relying party (Authlib's httpx OAuth2 client,
not Peerboard) signs in with PKCE S256 + nonce, and every shortcut is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.common.security import generate_token
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.oidc.compat import AsyncOAuth2Client, OAuthError
from tests.oidc.panva import PanvaProvider, complete_login, provider_error, run_panva_provider

CLIENT_ID = "peerboard"
CLIENT_SECRET = "s3cret-s3cret-s3cret"
REDIRECT_URI = "http://127.0.0.1:9/auth/callback"
ACCOUNTS: dict[str, dict[str, Any]] = {
    "alice": {"email": "alice@example.edu", "name": "Alice Example", "groups": ["staff", "cs101"]},
    "bob": {"email": "bob@example.edu", "name": "Bob Example", "groups": []},
}


@pytest.fixture(scope="module")
def provider() -> Iterator[PanvaProvider]:
    clients = [
        {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": [REDIRECT_URI]}
    ]
    with run_panva_provider(clients=clients, accounts=ACCOUNTS) as running:
        yield running


@pytest.fixture
async def rp() -> AsyncIterator[AsyncOAuth2Client]:
    async with AsyncOAuth2Client(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        scope="openid email profile",
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
    ) as client:
        yield client


@pytest.fixture
async def browser() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def test_discovery_advertises_the_strict_policy(
    provider: PanvaProvider, browser: httpx.AsyncClient
) -> None:
    discovery = (await browser.get(provider.discovery_url)).json()
    assert discovery["issuer"] == provider.issuer
    assert discovery["response_types_supported"] == ["code"]
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert discovery["id_token_signing_alg_values_supported"] == ["RS256"]
    assert {"openid", "email", "profile", "groups"} <= set(discovery["scopes_supported"])
    assert discovery["userinfo_endpoint"] == provider.userinfo_endpoint


async def test_code_flow_with_pkce_and_nonce(
    provider: PanvaProvider, rp: AsyncOAuth2Client, browser: httpx.AsyncClient
) -> None:
    verifier, nonce = generate_token(48), generate_token(20)
    url, state = rp.create_authorization_url(
        provider.authorization_endpoint, code_verifier=verifier, nonce=nonce
    )

    location = await complete_login(browser, url, login="alice")

    assert location.startswith(REDIRECT_URI + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == [state]
    assert query["iss"] == [provider.issuer]
    token = await rp.fetch_token(
        provider.token_endpoint, authorization_response=location, code_verifier=verifier
    )

    keys = KeySet.import_key_set((await browser.get(provider.jwks_uri)).json())
    decoded = jwt.decode(token["id_token"], keys, algorithms=["RS256"])
    assert decoded.header["alg"] == "RS256"
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": provider.issuer},
        aud={"essential": True, "value": CLIENT_ID},
        nonce={"essential": True, "value": nonce},
        exp={"essential": True},
        iat={"essential": True},
    ).validate(decoded.claims)
    assert decoded.claims["sub"] == "alice"
    assert decoded.claims["email"] == "alice@example.edu"
    assert decoded.claims["email_verified"] is True
    assert decoded.claims["name"] == "Alice Example"
    assert decoded.claims["groups"] == ["staff", "cs101"]

    userinfo = (await rp.get(provider.userinfo_endpoint)).json()
    assert userinfo["sub"] == "alice"
    assert userinfo["groups"] == ["staff", "cs101"]


async def test_second_sign_in_reuses_the_provider_session(
    provider: PanvaProvider, rp: AsyncOAuth2Client, browser: httpx.AsyncClient
) -> None:
    verifier = generate_token(48)
    url, _ = rp.create_authorization_url(
        provider.authorization_endpoint, code_verifier=verifier, nonce=generate_token(20)
    )
    await complete_login(browser, url, login="bob")

    url, _ = rp.create_authorization_url(
        provider.authorization_endpoint, code_verifier=verifier, nonce=generate_token(20)
    )
    location = await complete_login(browser, url, login="ignored: already signed in")
    token = await rp.fetch_token(
        provider.token_endpoint, authorization_response=location, code_verifier=verifier
    )
    assert (
        jwt.decode(
            token["id_token"], KeySet.import_key_set((await browser.get(provider.jwks_uri)).json())
        ).claims["sub"]
        == "bob"
    )


async def test_unknown_account_is_refused(
    provider: PanvaProvider, rp: AsyncOAuth2Client, browser: httpx.AsyncClient
) -> None:
    url, _ = rp.create_authorization_url(
        provider.authorization_endpoint, code_verifier=generate_token(48), nonce="n"
    )
    with pytest.raises(AssertionError, match="unknown account: mallory"):
        await complete_login(browser, url, login="mallory")


async def test_request_without_code_challenge_is_refused(
    provider: PanvaProvider, browser: httpx.AsyncClient
) -> None:
    async with AsyncOAuth2Client(
        client_id=CLIENT_ID, scope="openid", redirect_uri=REDIRECT_URI
    ) as no_pkce:
        url, _ = no_pkce.create_authorization_url(provider.authorization_endpoint, nonce="n")
    assert "code_challenge" not in url

    error = await provider_error(browser, url)

    assert error.startswith("invalid_request")
    assert "PKCE" in error


async def test_plain_code_challenge_method_is_refused(
    provider: PanvaProvider, rp: AsyncOAuth2Client, browser: httpx.AsyncClient
) -> None:
    verifier = generate_token(48)
    url, _ = rp.create_authorization_url(
        provider.authorization_endpoint,
        nonce="n",
        code_challenge=verifier,
        code_challenge_method="plain",
    )

    error = await provider_error(browser, url)

    assert error.startswith("invalid_request")
    assert "code_challenge_method" in error


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:9/auth/elsewhere",
        REDIRECT_URI + "/",
        REDIRECT_URI + "?next=/admin",
        "http://localhost:9/auth/callback",
    ],
)
async def test_unregistered_redirect_uri_is_refused(
    provider: PanvaProvider, browser: httpx.AsyncClient, redirect_uri: str
) -> None:
    async with AsyncOAuth2Client(
        client_id=CLIENT_ID,
        scope="openid",
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
    ) as rogue_rp:
        url, _ = rogue_rp.create_authorization_url(
            provider.authorization_endpoint, code_verifier=generate_token(48), nonce="n"
        )

    error = await provider_error(browser, url)

    assert error.startswith("invalid_redirect_uri")


async def test_missing_redirect_uri_is_refused(
    provider: PanvaProvider, browser: httpx.AsyncClient
) -> None:
    async with AsyncOAuth2Client(
        client_id=CLIENT_ID, scope="openid", code_challenge_method="S256"
    ) as rp_without_redirect:
        url, _ = rp_without_redirect.create_authorization_url(
            provider.authorization_endpoint, code_verifier=generate_token(48), nonce="n"
        )
    assert "redirect_uri" not in url

    error = await provider_error(browser, url)

    assert error.startswith("invalid_request")


async def test_wrong_code_verifier_is_refused_at_the_token_endpoint(
    provider: PanvaProvider, rp: AsyncOAuth2Client, browser: httpx.AsyncClient
) -> None:
    url, _ = rp.create_authorization_url(
        provider.authorization_endpoint, code_verifier=generate_token(48), nonce="n"
    )
    location = await complete_login(browser, url, login="alice")

    with pytest.raises(OAuthError) as refused:
        await rp.fetch_token(
            provider.token_endpoint,
            authorization_response=location,
            code_verifier=generate_token(48),
        )

    assert refused.value.error == "invalid_grant"


async def test_wrong_client_secret_is_refused_at_the_token_endpoint(
    provider: PanvaProvider, rp: AsyncOAuth2Client, browser: httpx.AsyncClient
) -> None:
    verifier = generate_token(48)
    url, _ = rp.create_authorization_url(
        provider.authorization_endpoint, code_verifier=verifier, nonce="n"
    )
    location = await complete_login(browser, url, login="alice")
    rp.client_secret = "not-the-secret"

    with pytest.raises(OAuthError) as refused:
        await rp.fetch_token(
            provider.token_endpoint, authorization_response=location, code_verifier=verifier
        )

    assert refused.value.error == "invalid_client"
