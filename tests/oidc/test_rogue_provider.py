"""The rogue provider works as a provider, and each defect is real: the token it produces fails
the same checks Authlib's OpenID client makes (joserfc decoding against the JWKS with the
advertised algorithms, then Authlib's ``CodeIDToken`` claims validation), for the stated
reason."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.oidc.core import CodeIDToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
    UnsupportedAlgorithmError,
)
from joserfc.jwk import KeySet, KeySetSerialization, RSAKey
from joserfc.jws import JWSRegistry

from tests.oidc.compat import AsyncOAuth2Client, OAuthError
from tests.oidc.rogue import (
    DEFAULT_CLAIMS,
    DEFECTS,
    DISCOVERY_ISSUER_SUFFIX,
    RogueProvider,
    b64url,
    run_rogue_provider,
)

REDIRECT_URI = "http://127.0.0.1:9/auth/callback"


@pytest.fixture(scope="module")
def running() -> Iterator[RogueProvider]:
    with run_rogue_provider(redirect_uris=[REDIRECT_URI]) as provider:
        yield provider


@pytest.fixture
def provider(running: RogueProvider) -> Iterator[RogueProvider]:
    running.reset()
    yield running
    running.reset()


@pytest.fixture
async def rp(provider: RogueProvider) -> AsyncIterator[AsyncOAuth2Client]:
    async with AsyncOAuth2Client(
        client_id=provider.client_id,
        client_secret=provider.client_secret,
        scope="openid email profile",
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
    ) as client:
        yield client


@pytest.fixture
async def browser() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def _bytes(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _int(value: str) -> int:
    return int.from_bytes(_bytes(value), "big")


class SignIn:
    def __init__(self, token: dict[str, Any], nonce: str) -> None:
        self.token = token
        self.nonce = nonce

    @property
    def id_token(self) -> str:
        return str(self.token["id_token"])

    def header(self) -> dict[str, Any]:
        return dict(json.loads(_bytes(self.id_token.split(".")[0])))


async def sign_in(
    provider: RogueProvider, rp: AsyncOAuth2Client, browser: httpx.AsyncClient
) -> SignIn:
    verifier, nonce = generate_token(48), generate_token(20)
    url, state = rp.create_authorization_url(
        provider.authorization_endpoint, code_verifier=verifier, nonce=nonce
    )
    response = await browser.get(url)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    token = await rp.fetch_token(
        provider.token_endpoint,
        authorization_response=location,
        code_verifier=verifier,
        state=state,
    )
    return SignIn(dict(token), nonce)


def keyset(jwks: dict[str, Any]) -> KeySet:
    return KeySet.import_key_set(cast(KeySetSerialization, jwks))


def decode(id_token: str, jwks: dict[str, Any]) -> jwt.Token:
    """Signature check as Authlib's client does it: the JWKS, the advertised algorithms."""
    registry = JWSRegistry(algorithms=["RS256"], strict_check_header=False)
    return jwt.decode(id_token, key=keyset(jwks), registry=registry)


def validate(token: jwt.Token, *, issuer: str, client_id: str, nonce: str) -> None:
    """Claims check as Authlib's client does it, plus the audience."""
    options: dict[str, Any] = {
        "iss": {"essential": True, "values": [issuer]},
        "aud": {"essential": True, "values": [client_id]},
    }
    params = {"nonce": nonce, "client_id": client_id}
    CodeIDToken(token.claims, token.header, options, params).validate(leeway=120)


def verify(sign: SignIn, provider: RogueProvider, jwks: dict[str, Any] | None = None) -> jwt.Token:
    token = decode(sign.id_token, provider.jwks() if jwks is None else jwks)
    validate(token, issuer=provider.issuer, client_id=provider.client_id, nonce=sign.nonce)
    return token


async def test_discovery_and_jwks_are_served(
    provider: RogueProvider, browser: httpx.AsyncClient
) -> None:
    discovery = (await browser.get(provider.discovery_url)).json()
    assert discovery["issuer"] == provider.issuer
    assert discovery["jwks_uri"] == provider.jwks_uri
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert discovery["id_token_signing_alg_values_supported"] == ["RS256"]
    jwks = (await browser.get(discovery["jwks_uri"])).json()
    assert [key["kid"] for key in jwks["keys"]] == [provider.current_kid]
    assert "d" not in jwks["keys"][0]
    assert (provider.discovery_requests, provider.jwks_requests) == (1, 1)


async def test_normal_flow_yields_a_verifiable_id_token(
    provider: RogueProvider, rp: AsyncOAuth2Client, browser: httpx.AsyncClient
) -> None:
    provider.next_subject = "bob"
    provider.claims = {**DEFAULT_CLAIMS, "email": "bob@example.edu", "groups": ["staff"]}

    sign = await sign_in(provider, rp, browser)

    jwks = (await browser.get(provider.jwks_uri)).json()
    token = verify(sign, provider, jwks)
    assert token.header["kid"] == provider.current_kid
    assert token.claims["sub"] == "bob"
    assert token.claims["email"] == "bob@example.edu"
    assert token.claims["name"] == "Alice Example"
    assert token.claims["groups"] == ["staff"]
    assert provider.token_requests == 1
    assert provider.last_authorization_request is not None
    assert provider.last_authorization_request["nonce"] == sign.nonce

    userinfo = (await rp.get(provider.userinfo_endpoint)).json()
    assert userinfo["sub"] == "bob"
    assert userinfo["email"] == "bob@example.edu"


async def test_client_secret_post_and_userinfo_overrides(browser: httpx.AsyncClient) -> None:
    with run_rogue_provider(
        client_id="other", client_secret="other-secret", redirect_uris=[REDIRECT_URI]
    ) as provider:
        async with AsyncOAuth2Client(
            client_id="other",
            client_secret="other-secret",
            token_endpoint_auth_method="client_secret_post",
            scope="openid",
            redirect_uri=REDIRECT_URI,
            code_challenge_method="S256",
        ) as rp:
            provider.userinfo_claims = {"sub": "mallory"}
            sign = await sign_in(provider, rp, browser)
            assert verify(sign, provider).claims["aud"] == "other"
            userinfo = (await rp.get(provider.userinfo_endpoint)).json()
    assert userinfo["sub"] == "mallory"
    assert userinfo["email"] == DEFAULT_CLAIMS["email"]


SIGNATURE_DEFECTS: dict[str, type[JoseError]] = {
    "alg_none": UnsupportedAlgorithmError,
    "hs256_with_public_key": UnsupportedAlgorithmError,
    "unknown_kid": InvalidKeyIdError,
    "bad_signature": BadSignatureError,
    "jwk_header": BadSignatureError,
}
CLAIM_DEFECTS: dict[str, tuple[type[ClaimError], str]] = {
    "wrong_issuer": (InvalidClaimError, "iss"),
    "wrong_audience": (InvalidClaimError, "aud"),
    "multiple_audiences_without_azp": (MissingClaimError, "azp"),
    "azp_mismatch": (InvalidClaimError, "azp"),
    "expired": (ExpiredTokenError, "exp"),
    "issued_in_future": (InvalidClaimError, "iat"),
    "nonce_mismatch": (InvalidClaimError, "nonce"),
    "missing_nonce": (MissingClaimError, "nonce"),
}
OTHER_DEFECTS = {"no_id_token", "discovery_issuer_mismatch", "no_email_in_id_token"}


def test_every_defect_has_a_self_test() -> None:
    assert set(SIGNATURE_DEFECTS) | set(CLAIM_DEFECTS) | OTHER_DEFECTS == DEFECTS


@pytest.mark.parametrize("defect", sorted(SIGNATURE_DEFECTS))
async def test_signature_defects_fail_signature_verification(
    provider: RogueProvider, rp: AsyncOAuth2Client, browser: httpx.AsyncClient, defect: Any
) -> None:
    provider.defect = defect
    sign = await sign_in(provider, rp, browser)
    jwks = (await browser.get(provider.jwks_uri)).json()

    with pytest.raises(SIGNATURE_DEFECTS[defect]):
        decode(sign.id_token, jwks)

    header = sign.header()
    assert len(sign.id_token.split(".")[0]) <= JWSRegistry.max_header_length
    if defect == "alg_none":
        assert header["alg"] == "none"
        assert sign.id_token.endswith(".")
    elif defect == "hs256_with_public_key":
        assert header["alg"] == "HS256"
    elif defect == "unknown_kid":
        assert header["kid"] not in {key["kid"] for key in jwks["keys"]}
    elif defect == "jwk_header":
        assert header["kid"] == provider.current_kid
        assert header["jwk"]["n"] != jwks["keys"][0]["n"]


async def test_hs256_token_is_a_real_confusion_attack(
    provider: RogueProvider, rp: AsyncOAuth2Client, browser: httpx.AsyncClient
) -> None:
    """A verifier that let the header pick HS256 and used the published key's PEM as the HMAC
    secret would accept it: the token is properly signed for that mistake."""
    provider.defect = "hs256_with_public_key"
    sign = await sign_in(provider, rp, browser)
    published = keyset(provider.jwks()).keys[0]
    assert isinstance(published, RSAKey)
    signing_input, _, signature = sign.id_token.rpartition(".")

    mac = hmac.new(published.as_pem(private=False), signing_input.encode(), hashlib.sha256)

    assert b64url(mac.digest()) == signature


async def test_jwk_header_token_verifies_with_its_embedded_key(
    provider: RogueProvider, rp: AsyncOAuth2Client, browser: httpx.AsyncClient
) -> None:
    provider.defect = "jwk_header"
    sign = await sign_in(provider, rp, browser)
    embedded = sign.header()["jwk"]
    public_key = rsa.RSAPublicNumbers(_int(embedded["e"]), _int(embedded["n"])).public_key()
    signing_input, _, signature = sign.id_token.rpartition(".")

    public_key.verify(  # raises InvalidSignature if the attacker's signature were not real
        _bytes(signature), signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
    )


@pytest.mark.parametrize("defect", sorted(CLAIM_DEFECTS))
async def test_claim_defects_fail_claims_validation(
    provider: RogueProvider, rp: AsyncOAuth2Client, browser: httpx.AsyncClient, defect: Any
) -> None:
    provider.defect = defect
    sign = await sign_in(provider, rp, browser)
    token = decode(sign.id_token, (await browser.get(provider.jwks_uri)).json())
    error, claim = CLAIM_DEFECTS[defect]

    with pytest.raises(error) as failed:
        validate(token, issuer=provider.issuer, client_id=provider.client_id, nonce=sign.nonce)

    assert failed.value.claim == claim


async def test_no_id_token(
    provider: RogueProvider, rp: AsyncOAuth2Client, browser: httpx.AsyncClient
) -> None:
    provider.defect = "no_id_token"
    verifier = generate_token(48)
    url, _ = rp.create_authorization_url(
        provider.authorization_endpoint, code_verifier=verifier, nonce="n"
    )
    location = (await browser.get(url)).headers["location"]
    token = await rp.fetch_token(
        provider.token_endpoint, authorization_response=location, code_verifier=verifier
    )
    assert "access_token" in token
    assert "id_token" not in token


async def test_discovery_issuer_mismatch(
    provider: RogueProvider, rp: AsyncOAuth2Client, browser: httpx.AsyncClient
) -> None:
    provider.defect = "discovery_issuer_mismatch"
    discovery = (await browser.get(provider.discovery_url)).json()
    assert discovery["issuer"] == provider.issuer + DISCOVERY_ISSUER_SUFFIX
    assert provider.discovery_url.startswith(provider.issuer + "/")

    sign = await sign_in(provider, rp, browser)
    token = decode(sign.id_token, provider.jwks())
    # Consistent with its own discovery document...
    validate(token, issuer=discovery["issuer"], client_id=provider.client_id, nonce=sign.nonce)
    # ...so only the configured issuer gives it away.
    with pytest.raises(InvalidClaimError, match="iss"):
        validate(token, issuer=provider.issuer, client_id=provider.client_id, nonce=sign.nonce)


async def test_no_email_in_id_token_is_supplied_by_userinfo(
    provider: RogueProvider, rp: AsyncOAuth2Client, browser: httpx.AsyncClient
) -> None:
    provider.defect = "no_email_in_id_token"
    sign = await sign_in(provider, rp, browser)

    claims = verify(sign, provider).claims
    assert not {"email", "email_verified", "name", "groups"} & set(claims)
    userinfo = (await rp.get(provider.userinfo_endpoint)).json()
    assert userinfo == {"sub": "alice", **DEFAULT_CLAIMS}


async def test_rotated_key_is_unknown_to_a_stale_jwks_until_refetched(
    provider: RogueProvider, rp: AsyncOAuth2Client, browser: httpx.AsyncClient
) -> None:
    stale = (await browser.get(provider.jwks_uri)).json()
    old_kid = provider.current_kid

    new_kid = provider.rotate_key()
    sign = await sign_in(provider, rp, browser)

    assert new_kid != old_kid
    assert sign.header()["kid"] == new_kid
    with pytest.raises(InvalidKeyIdError):
        decode(sign.id_token, stale)
    fresh = (await browser.get(provider.jwks_uri)).json()
    assert {key["kid"] for key in fresh["keys"]} == {old_kid, new_kid}
    verify(sign, provider, fresh)
    assert provider.jwks_requests == 2


def test_unknown_defect_is_rejected(provider: RogueProvider) -> None:
    with pytest.raises(ValueError, match="unknown defect"):
        provider.defect = "typo"  # type: ignore[assignment]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "email"}, "invalid_scope"),
    ],
)
async def test_authorize_refuses_by_redirect(
    provider: RogueProvider, browser: httpx.AsyncClient, change: dict[str, Any], error: str
) -> None:
    params = {
        "client_id": provider.client_id,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": "openid",
        "state": "st",
        "code_challenge": "x" * 43,
        "code_challenge_method": "S256",
        **change,
    }
    query = {key: value for key, value in params.items() if value is not None}
    response = await browser.get(provider.authorization_endpoint, params=query)
    assert response.status_code == 302
    location = httpx.URL(response.headers["location"])
    assert location.params["error"] == error
    assert location.params["state"] == "st"
    assert "code" not in location.params


@pytest.mark.parametrize(
    ("client_id", "redirect_uri"),
    [("peerboard", REDIRECT_URI + "/"), ("peerboard", None), ("stranger", REDIRECT_URI)],
)
async def test_authorize_refuses_without_redirect(
    provider: RogueProvider, browser: httpx.AsyncClient, client_id: str, redirect_uri: str | None
) -> None:
    params = {"client_id": client_id, "response_type": "code", "scope": "openid"}
    if redirect_uri is not None:
        params["redirect_uri"] = redirect_uri
    response = await browser.get(provider.authorization_endpoint, params=params)
    assert response.status_code == 400
    assert "location" not in response.headers


async def test_token_endpoint_checks_verifier_code_reuse_and_secret(
    provider: RogueProvider, rp: AsyncOAuth2Client, browser: httpx.AsyncClient
) -> None:
    verifier = generate_token(48)
    url, _ = rp.create_authorization_url(
        provider.authorization_endpoint, code_verifier=verifier, nonce="n"
    )
    location = (await browser.get(url)).headers["location"]

    with pytest.raises(OAuthError) as wrong_verifier:
        await rp.fetch_token(
            provider.token_endpoint,
            authorization_response=location,
            code_verifier=generate_token(48),
        )
    assert wrong_verifier.value.error == "invalid_grant"
    with pytest.raises(OAuthError) as reused:  # the failed attempt spent the code
        await rp.fetch_token(
            provider.token_endpoint, authorization_response=location, code_verifier=verifier
        )
    assert reused.value.error == "invalid_grant"

    url, _ = rp.create_authorization_url(
        provider.authorization_endpoint, code_verifier=verifier, nonce="n"
    )
    location = (await browser.get(url)).headers["location"]
    rp.client_secret = "wrong"
    with pytest.raises(OAuthError) as bad_secret:
        await rp.fetch_token(
            provider.token_endpoint, authorization_response=location, code_verifier=verifier
        )
    assert bad_secret.value.error == "invalid_client"
    assert provider.token_requests == 3


async def test_userinfo_requires_a_valid_bearer_token(
    provider: RogueProvider, browser: httpx.AsyncClient
) -> None:
    response = await browser.get(
        provider.userinfo_endpoint, headers={"Authorization": "Bearer nope"}
    )
    assert response.status_code == 401
    assert "invalid_token" in response.headers["www-authenticate"]
