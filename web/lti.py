"""The LTI adapter's outward side: HTTP to platforms, their key sets, and id token signatures.

- Platform key sets are fetched from the registered JWKS URL (never from a `jku`/`jwk`/`x5u`
  header of the token itself) and cached per platform; a token with an unknown `kid`
  refetches once (the platform rotated its keys), at most once a minute per platform.
- Signatures: asymmetric algorithms only (never `none`, never HS* with a public key).
- One `LtiRuntime` per app (app.state.lti); tests give it a transport that reaches their
  fake platform.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from services.lti import LaunchRefused
from services.models import LtiPlatform

ALLOWED_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
                      "ES512", "EdDSA")  # fmt: skip
JWKS_REFRESH_INTERVAL_SECONDS = 60.0
JWKS_MAX_AGE_SECONDS = 3600.0
HTTP_TIMEOUT_SECONDS = 10.0
MAX_TOKEN_BYTES = 64 * 1024


@dataclass
class _CachedKeys:
    keys: KeySet
    fetched_at: float


@dataclass
class LtiRuntime:
    transport: httpx.AsyncBaseTransport | None = None
    _keys: dict[tuple[str, str], _CachedKeys] = field(default_factory=dict)
    _last_forced: dict[tuple[str, str], float] = field(default_factory=dict)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=self.transport, timeout=HTTP_TIMEOUT_SECONDS, follow_redirects=False
        )

    async def get_json(self, url: str, *, headers: dict[str, str] | None = None) -> Any:
        async with self.client() as client:
            response = await client.get(
                url, headers={"Accept": "application/json", **(headers or {})}
            )
        response.raise_for_status()
        return response.json()

    async def _fetch_keys(self, platform: LtiPlatform) -> KeySet:
        document = await self.get_json(platform.jwks_url)
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise LaunchRefused("The platform's keys could not be read.", detail="bad JWKS")
        # Only public, signing keys of asymmetric types: an "oct" key in a platform's JWKS
        # must never become an HMAC secret for an HS256 forgery.
        usable = [
            k for k in document["keys"]
            if isinstance(k, dict) and k.get("kty") in ("RSA", "EC", "OKP")
            and k.get("use", "sig") == "sig" and "d" not in k
        ]  # fmt: skip
        return KeySet.import_key_set({"keys": usable})

    async def platform_keys(self, platform: LtiPlatform, *, force: bool = False) -> KeySet:
        cache_key = (platform.issuer, platform.jwks_url)
        cached = self._keys.get(cache_key)
        now = time.monotonic()
        if cached is None or force or now - cached.fetched_at > JWKS_MAX_AGE_SECONDS:
            cached = _CachedKeys(await self._fetch_keys(platform), now)
            self._keys[cache_key] = cached
        return cached.keys

    async def verify_id_token(self, platform: LtiPlatform, raw: str) -> dict[str, Any]:
        """The token's claims once its signature verifies with one of the platform's keys.
        The claims themselves are checked by services.lti.check_claims."""
        if not raw or len(raw) > MAX_TOKEN_BYTES or raw.count(".") != 2:
            raise LaunchRefused("The launch carried no valid token.", detail="malformed")
        header = _unverified_header(raw)
        if header.get("alg") not in ALLOWED_ALGORITHMS:
            raise LaunchRefused("The launch's signature is not acceptable.", detail="alg")
        if {"jwk", "jku", "x5u", "x5c"} & set(header):
            raise LaunchRefused("The launch's signature is not acceptable.", detail="key hdr")
        if not isinstance(header.get("kid"), str):
            raise LaunchRefused("The launch's signature names no key.", detail="no kid")
        registry = JWSRegistry(algorithms=list(ALLOWED_ALGORITHMS))
        try:
            try:
                decoded = jwt.decode(raw, await self.platform_keys(platform), registry=registry)
            except InvalidKeyIdError:
                # The platform may have rotated its keys: look again, but rate-limited, so
                # tokens with made-up key ids cannot make us hammer the platform.
                cache_key = (platform.issuer, platform.jwks_url)
                now = time.monotonic()
                if now - self._last_forced.get(cache_key, -1e9) < JWKS_REFRESH_INTERVAL_SECONDS:
                    raise
                self._last_forced[cache_key] = now
                keys = await self.platform_keys(platform, force=True)
                decoded = jwt.decode(raw, keys, registry=registry)
        except InvalidKeyIdError:
            raise LaunchRefused(
                "The launch was signed with a key the platform does not publish.",
                detail="unknown kid",
            ) from None
        except (JoseError, ValueError) as exc:
            raise LaunchRefused(
                "The launch's signature did not verify.", detail=f"{type(exc).__name__}"
            ) from None
        return dict(decoded.claims)


def _unverified_header(raw: str) -> dict[str, Any]:
    import base64

    segment = raw.split(".", 1)[0]
    try:
        padded = segment + "=" * (-len(segment) % 4)
        header = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError):
        raise LaunchRefused("The launch carried no valid token.", detail="header") from None
    if not isinstance(header, dict):
        raise LaunchRefused("The launch carried no valid token.", detail="header")
    return header
