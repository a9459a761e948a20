"""OpenID Connect sign-in with Authlib's Starlette client, made strict.

Authlib does the authorization code flow (state, nonce, PKCE S256 when asked). On top of it:
- the discovery document's issuer must equal the configured issuer exactly;
- id tokens are verified with an allow-list of asymmetric algorithms (never `none`, never
  HS* with a provider's public key), with iss, aud, azp, exp, iat and nonce checked; tokens
  that carry their own key (`jwk`/`jku` headers) are refused;
- an unknown `kid` refetches the provider's keys at most once a minute;
- a token response without an id token is refused (Authlib would silently skip checking).
"""

from __future__ import annotations

import time
from typing import Any

from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App
from authlib.oidc.core import CodeIDToken, UserInfo
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from web.settings import OIDCProviderSettings, Settings

ALLOWED_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
                      "ES512", "EdDSA")  # fmt: skip
JWKS_REFRESH_INTERVAL_SECONDS = 60.0
CLOCK_SKEW_SECONDS = 60
HTTP_TIMEOUT_SECONDS = 10.0


class SignInRefused(Exception):
    """The provider's answer cannot be trusted; `reason` is for the person signing in."""

    def __init__(self, reason: str, *, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class StrictOpenIDApp(StarletteOAuth2App):  # type: ignore[misc]
    configured_issuer: str
    _last_jwks_refresh: float = 0.0

    async def load_server_metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = await super().load_server_metadata()
        if metadata.get("issuer") != self.configured_issuer:
            # Forget it, so a corrected provider is picked up on the next attempt.
            self.server_metadata.pop("_loaded_at", None)
            raise SignInRefused(
                "The identity provider describes itself with a different address than the "
                "one configured for it.",
                detail=f"discovery issuer {metadata.get('issuer')!r}",
            )
        return metadata

    async def parse_id_token(
        self,
        token: dict[str, Any],
        nonce: str | None,
        claims_options: Any = None,
        claims_cls: Any = None,
        leeway: int = CLOCK_SKEW_SECONDS,
    ) -> UserInfo:
        metadata = await self.load_server_metadata()
        advertised = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = [a for a in advertised if a in ALLOWED_ALGORITHMS]
        if not algorithms:
            raise SignInRefused(
                "The identity provider signs its tokens in a way Peerboard does not accept.",
                detail=f"advertised algorithms {advertised!r}",
            )
        raw = token["id_token"]
        registry = JWSRegistry(algorithms=algorithms)
        try:
            decoded = jwt.decode(
                raw, KeySet.import_key_set(await self.fetch_jwk_set()), registry=registry
            )
        except InvalidKeyIdError:
            # The provider may have rotated its keys: look again, but not on every request.
            now = time.monotonic()
            if now - self._last_jwks_refresh < JWKS_REFRESH_INTERVAL_SECONDS:
                raise
            self._last_jwks_refresh = now
            keys = KeySet.import_key_set(await self.fetch_jwk_set(force=True))
            decoded = jwt.decode(raw, keys, registry=registry)
        if {"jwk", "jku", "x5u"} & set(decoded.header):
            raise SignInRefused(
                "The identity provider's answer could not be verified.",
                detail="token names its own verification key",
            )
        claims = CodeIDToken(
            decoded.claims,
            decoded.header,
            {
                "iss": {"essential": True, "value": self.configured_issuer},
                "aud": {"essential": True, "value": self.client_id},
                "sub": {"essential": True},
            },
            {
                "nonce": nonce,
                "client_id": self.client_id,
                "access_token": token.get("access_token"),
            },
        )
        claims.validate(leeway=leeway)
        if not nonce or claims.get("nonce") != nonce:
            raise SignInRefused(
                "The sign-in answer did not match this sign-in attempt. Please start again.",
                detail="nonce mismatch",
            )
        return UserInfo(claims)


def make_oauth(settings: Settings) -> OAuth:
    """One Authlib registry per app (never global), with every configured provider."""
    oauth = OAuth()
    for provider in settings.oidc_providers:
        register(oauth, provider)
    return oauth


def register(oauth: OAuth, provider: OIDCProviderSettings) -> None:
    oauth.register(
        provider.name,
        client_id=provider.client_id,
        client_secret=provider.client_secret.get_secret_value(),
        server_metadata_url=provider.issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs={
            "scope": provider.scopes,
            # Authlib only does PKCE when told to.
            "code_challenge_method": "S256",
            "timeout": HTTP_TIMEOUT_SECONDS,
        },
        client_cls=StrictOpenIDApp,
    )
    client = oauth.create_client(provider.name)
    client.configured_issuer = provider.issuer
