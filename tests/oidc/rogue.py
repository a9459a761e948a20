"""A real OpenID provider whose tokens can be made defective on purpose.

It serves a Starlette app with uvicorn on a free 127.0.0.1 port, in a background thread, so the
relying party talks to it over real HTTP exactly as to a production provider. It has no login
form: ``/authorize`` validates the request and immediately redirects back with a code for
``provider.next_subject``. Set ``provider.defect`` to one of :data:`DEFECTS` to make the
following responses defective; it stays in force until changed or :meth:`RogueProvider.reset`.

Endpoints (all under the issuer ``http://127.0.0.1:<port>``):

- ``/.well-known/openid-configuration`` and ``/jwks`` (every published RS256 key);
- ``/authorize``: ``client_id`` and an exactly registered ``redirect_uri`` (else a 400 page,
  no redirect), ``response_type=code``, ``scope`` with ``openid``, ``code_challenge`` with
  ``code_challenge_method=S256`` (else a redirect with ``error=``); remembers ``nonce``,
  ``state`` and the challenge, then 302s to ``redirect_uri?code=...&state=...``;
- ``/token``: ``client_secret_basic`` or ``client_secret_post``; checks the code (single use,
  60 s), the client, ``redirect_uri`` and the PKCE verifier; returns ``access_token`` and
  ``id_token``;
- ``/userinfo``: ``Authorization: Bearer <access_token>`` gives
  ``{"sub": ..., **claims, **userinfo_claims}`` (``claims`` as they were at ``/authorize``,
  ``userinfo_claims`` as they are now, so it can override ``sub`` too).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, get_args
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

import uvicorn
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

Defect = Literal[
    "wrong_issuer",
    "wrong_audience",
    "multiple_audiences_without_azp",
    "azp_mismatch",
    "expired",
    "issued_in_future",
    "alg_none",
    "hs256_with_public_key",
    "unknown_kid",
    "bad_signature",
    "nonce_mismatch",
    "missing_nonce",
    "no_id_token",
    "discovery_issuer_mismatch",
    "jwk_header",
    "no_email_in_id_token",
]
#: Every defect. All but ``no_email_in_id_token`` (a positive case: the ID token carries only
#: protocol claims, /userinfo supplies the rest) must make a relying party refuse the sign-in.
DEFECTS: frozenset[str] = frozenset(get_args(Defect))

#: The audience used by the audience defects: a client that is not ours.
OTHER_AUDIENCE = "some-other-client"
#: The issuer put in ID tokens by ``wrong_issuer``.
WRONG_ISSUER = "https://wrong-issuer.invalid"
#: ``discovery_issuer_mismatch`` advertises ``issuer + DISCOVERY_ISSUER_SUFFIX`` (and signs its
#: ID tokens with that issuer too, a consistent liar: only comparing discovery's issuer with the
#: configured one catches it).
DISCOVERY_ISSUER_SUFFIX = "/elsewhere"

DEFAULT_SUBJECT = "alice"
DEFAULT_CLAIMS: dict[str, Any] = {
    "email": "alice@example.edu",
    "email_verified": True,
    "name": "Alice Example",
    "groups": ["students"],
}
PROTOCOL_CLAIMS = frozenset(
    {"iss", "sub", "aud", "exp", "iat", "nbf", "auth_time", "nonce", "azp", "acr", "amr", "at_hash"}
)
ID_TOKEN_LIFETIME = 300
CODE_LIFETIME = 60
START_TIMEOUT = 15.0


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def _uint(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class SigningKey:
    """An RSA key with its ``kid``."""

    kid: str
    private_key: rsa.RSAPrivateKey = field(repr=False)

    @classmethod
    def generate(cls, kid: str, key_size: int = 2048) -> SigningKey:
        return cls(kid, rsa.generate_private_key(public_exponent=65537, key_size=key_size))

    def public_jwk(self) -> dict[str, str]:
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "kid": self.kid,
            "use": "sig",
            "alg": "RS256",
            "n": _uint(numbers.n),
            "e": _uint(numbers.e),
        }

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign_rs256(self, header: dict[str, Any], claims: dict[str, Any]) -> str:
        signing_input = f"{_b64url_json(header)}.{_b64url_json(claims)}"
        signature = self.private_key.sign(
            signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
        )
        return f"{signing_input}.{b64url(signature)}"


@dataclass
class _Grant:
    subject: str
    claims: dict[str, Any]
    redirect_uri: str
    code_challenge: str
    nonce: str | None
    scope: str
    issued_at: float


def _add_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit(parts._replace(query=query))


@dataclass(eq=False)
class RogueProvider:
    """The provider's knobs and counters. Change them from the test; the server reads them at
    each request."""

    issuer: str
    client_id: str
    client_secret: str
    redirect_uris: list[str]
    next_subject: str = DEFAULT_SUBJECT
    claims: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(DEFAULT_CLAIMS))
    userinfo_claims: dict[str, Any] = field(default_factory=dict)
    defect: Defect | None = None
    discovery_requests: int = 0
    authorize_requests: int = 0
    token_requests: int = 0
    jwks_requests: int = 0
    userinfo_requests: int = 0
    #: The query parameters of the last /authorize request.
    last_authorization_request: dict[str, str] | None = None
    #: Every ID token issued, oldest first.
    issued_id_tokens: list[str] = field(default_factory=list)
    _keys: list[SigningKey] = field(default_factory=list, repr=False)
    _grants: dict[str, _Grant] = field(default_factory=dict, repr=False)
    _access_tokens: dict[str, _Grant] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self._keys:
            self._keys.append(SigningKey.generate("key-1"))

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "defect" and value is not None and value not in DEFECTS:
            raise ValueError(f"unknown defect {value!r}; choose from {sorted(DEFECTS)}")
        super().__setattr__(name, value)

    # --- test API -------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to a well-behaved provider: default subject and claims, no defect, counters at
        zero. Keys (including rotations) and issued codes/tokens are kept."""
        self.next_subject = DEFAULT_SUBJECT
        self.claims = copy.deepcopy(DEFAULT_CLAIMS)
        self.userinfo_claims = {}
        self.defect = None
        self.discovery_requests = 0
        self.authorize_requests = 0
        self.token_requests = 0
        self.jwks_requests = 0
        self.userinfo_requests = 0
        self.last_authorization_request = None
        self.issued_id_tokens.clear()

    def rotate_key(self) -> str:
        """Sign from now on with a new key (new ``kid``), published in the JWKS from now on next
        to the old ones. Returns the new ``kid``."""
        key = SigningKey.generate(f"key-{len(self._keys) + 1}")
        self._keys.append(key)
        return key.kid

    @property
    def current_kid(self) -> str:
        return self._keys[-1].kid

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The published key set."""
        return {"keys": [key.public_jwk() for key in self._keys]}

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def authorization_endpoint(self) -> str:
        return f"{self.issuer}/authorize"

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/token"

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}/jwks"

    @property
    def userinfo_endpoint(self) -> str:
        return f"{self.issuer}/userinfo"

    def discovery(self) -> dict[str, Any]:
        issuer = self.issuer
        if self.defect == "discovery_issuer_mismatch":
            issuer += DISCOVERY_ISSUER_SUFFIX
        return {
            "issuer": issuer,
            "authorization_endpoint": self.authorization_endpoint,
            "token_endpoint": self.token_endpoint,
            "userinfo_endpoint": self.userinfo_endpoint,
            "jwks_uri": self.jwks_uri,
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile", "groups"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "email", "email_verified", "name", "groups"],
        }

    # --- tokens ---------------------------------------------------------------------------

    def make_id_token(self, grant: _Grant) -> str:
        """The ID token for ``grant``, with the current defect applied."""
        defect = self.defect
        now = int(time.time())
        profile = {k: v for k, v in grant.claims.items() if k not in PROTOCOL_CLAIMS}
        if defect == "no_email_in_id_token":
            profile = {}
        claims: dict[str, Any] = {
            **profile,
            "iss": self.issuer,
            "sub": grant.subject,
            "aud": self.client_id,
            "iat": now,
            "exp": now + ID_TOKEN_LIFETIME,
            "auth_time": now,
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        if defect == "wrong_issuer":
            claims["iss"] = WRONG_ISSUER
        elif defect == "discovery_issuer_mismatch":
            claims["iss"] = self.issuer + DISCOVERY_ISSUER_SUFFIX
        elif defect == "wrong_audience":
            claims["aud"] = OTHER_AUDIENCE
        elif defect == "multiple_audiences_without_azp":
            claims["aud"] = [self.client_id, OTHER_AUDIENCE]
        elif defect == "azp_mismatch":
            claims["aud"] = [self.client_id, OTHER_AUDIENCE]
            claims["azp"] = OTHER_AUDIENCE
        elif defect == "expired":
            claims["iat"] = claims["auth_time"] = now - 3 * ID_TOKEN_LIFETIME
            claims["exp"] = now - 2 * ID_TOKEN_LIFETIME
        elif defect == "issued_in_future":
            claims["iat"] = claims["auth_time"] = now + 3600
            claims["exp"] = now + 3600 + ID_TOKEN_LIFETIME
        elif defect == "nonce_mismatch":
            claims["nonce"] = "not-" + (grant.nonce or secrets.token_urlsafe(8))
        elif defect == "missing_nonce":
            claims.pop("nonce", None)
        return self._sign(claims, defect)

    def _sign(self, claims: dict[str, Any], defect: str | None) -> str:
        key = self._keys[-1]
        header: dict[str, Any] = {"alg": "RS256", "typ": "JWT", "kid": key.kid}
        if defect == "alg_none":
            return f"{_b64url_json({'alg': 'none', 'typ': 'JWT'})}.{_b64url_json(claims)}."
        if defect == "hs256_with_public_key":
            header["alg"] = "HS256"
            signing_input = f"{_b64url_json(header)}.{_b64url_json(claims)}"
            mac = hmac.new(key.public_pem(), signing_input.encode("ascii"), hashlib.sha256)
            return f"{signing_input}.{b64url(mac.digest())}"
        if defect == "unknown_kid":
            stranger = SigningKey.generate(f"unknown-{secrets.token_hex(4)}")
            return stranger.sign_rs256({**header, "kid": stranger.kid}, claims)
        if defect == "jwk_header":
            # 1024 bits keeps the header under the 512 bytes that joserfc (so Authlib) accepts:
            # the token must be refused for trusting the wrong key, not for its size.
            attacker = SigningKey.generate(key.kid, key_size=1024)
            embedded = {k: v for k, v in attacker.public_jwk().items() if k in {"kty", "n", "e"}}
            return attacker.sign_rs256({**header, "jwk": embedded}, claims)
        token = key.sign_rs256(header, claims)
        if defect == "bad_signature":
            signing_input, _, signature = token.rpartition(".")
            raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
            raw[len(raw) // 2] ^= 0x01
            token = f"{signing_input}.{b64url(bytes(raw))}"
        return token

    # --- HTTP -----------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self._discovery),
                Route("/jwks", self._jwks),
                Route("/authorize", self._authorize),
                Route("/token", self._token, methods=["POST"]),
                Route("/userinfo", self._userinfo, methods=["GET", "POST"]),
            ]
        )

    async def _discovery(self, request: Request) -> Response:
        self.discovery_requests += 1
        return JSONResponse(self.discovery())

    async def _jwks(self, request: Request) -> Response:
        self.jwks_requests += 1
        return JSONResponse(self.jwks())

    async def _authorize(self, request: Request) -> Response:
        self.authorize_requests += 1
        params = dict(request.query_params)
        self.last_authorization_request = params
        if params.get("client_id") != self.client_id:
            return PlainTextResponse("invalid_client: unknown client_id", status_code=400)
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in self.redirect_uris:
            return PlainTextResponse(
                "invalid_redirect_uri: redirect_uri is not registered", status_code=400
            )

        state = params.get("state")

        def refuse(error: str, description: str) -> Response:
            answer = {"error": error, "error_description": description}
            if state is not None:
                answer["state"] = state
            return RedirectResponse(_add_query(redirect_uri, answer), status_code=302)

        if params.get("response_type") != "code":
            return refuse("unsupported_response_type", "only response_type=code")
        if "openid" not in params.get("scope", "").split():
            return refuse("invalid_scope", "scope must include openid")
        if not params.get("code_challenge"):
            return refuse("invalid_request", "code_challenge (PKCE) is required")
        if params.get("code_challenge_method") != "S256":
            return refuse("invalid_request", "code_challenge_method must be S256")

        code = secrets.token_urlsafe(24)
        self._grants[code] = _Grant(
            subject=self.next_subject,
            claims=copy.deepcopy(self.claims),
            redirect_uri=redirect_uri,
            code_challenge=params["code_challenge"],
            nonce=params.get("nonce"),
            scope=params["scope"],
            issued_at=time.monotonic(),
        )
        answer = {"code": code}
        if state is not None:
            answer["state"] = state
        return RedirectResponse(_add_query(redirect_uri, answer), status_code=302)

    def _client_authenticated(self, request: Request, form: dict[str, str]) -> bool:
        authorization = request.headers.get("authorization", "")
        if authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:], validate=True).decode()
            except ValueError:
                return False
            client_id, _, client_secret = decoded.partition(":")
            client_id, client_secret = unquote(client_id), unquote(client_secret)
        else:
            client_id = form.get("client_id", "")
            client_secret = form.get("client_secret", "")
        return hmac.compare_digest(client_id, self.client_id) and hmac.compare_digest(
            client_secret.encode(), self.client_secret.encode()
        )

    async def _token(self, request: Request) -> Response:
        self.token_requests += 1
        form = {key: str(value) for key, value in (await request.form()).items()}
        headers = {"Cache-Control": "no-store"}

        def error(code: str, description: str, status: int = 400) -> Response:
            answer = {"error": code, "error_description": description}
            return JSONResponse(answer, status_code=status, headers=headers)

        if not self._client_authenticated(request, form):
            return error("invalid_client", "client authentication failed", 401)
        if form.get("grant_type") != "authorization_code":
            return error("unsupported_grant_type", "only authorization_code")
        grant = self._grants.pop(form.get("code", ""), None)
        if grant is None or time.monotonic() - grant.issued_at > CODE_LIFETIME:
            return error("invalid_grant", "unknown, used or expired code")
        if form.get("redirect_uri") != grant.redirect_uri:
            return error("invalid_grant", "redirect_uri does not match the authorization request")
        verifier = form.get("code_verifier", "")
        challenge = b64url(hashlib.sha256(verifier.encode("ascii", "replace")).digest())
        if not verifier or not hmac.compare_digest(challenge, grant.code_challenge):
            return error("invalid_grant", "PKCE verification failed")

        access_token = secrets.token_urlsafe(32)
        self._access_tokens[access_token] = grant
        answer: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": ID_TOKEN_LIFETIME,
            "scope": grant.scope,
        }
        if self.defect != "no_id_token":
            id_token = self.make_id_token(grant)
            self.issued_id_tokens.append(id_token)
            answer["id_token"] = id_token
        return JSONResponse(answer, headers=headers)

    async def _userinfo(self, request: Request) -> Response:
        self.userinfo_requests += 1
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        grant = self._access_tokens.get(token) if scheme.lower() == "bearer" else None
        if grant is None:
            return JSONResponse(
                {"error": "invalid_token"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return JSONResponse({"sub": grant.subject, **grant.claims, **self.userinfo_claims})


@contextmanager
def run_rogue_provider(
    *,
    client_id: str = "peerboard",
    client_secret: str = "s3cret",  # noqa: S107 (a test provider's well-known secret)
    redirect_uris: list[str],
) -> Iterator[RogueProvider]:
    """Serve a :class:`RogueProvider` on a free 127.0.0.1 port for the duration of the block."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
        provider = RogueProvider(
            issuer=f"http://127.0.0.1:{port}",
            client_id=client_id,
            client_secret=client_secret,
            redirect_uris=list(redirect_uris),
        )
        config = uvicorn.Config(
            provider.app(),
            log_level="warning",
            log_config=None,
            access_log=False,
            lifespan="off",
            ws="none",
            http="h11",
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="rogue-oidc", daemon=True
        )
        thread.start()
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not server.started:
                if time.monotonic() > deadline or not thread.is_alive():
                    raise RuntimeError("the rogue OpenID provider did not start")
                time.sleep(0.02)
            yield provider
        finally:
            server.should_exit = True
            thread.join(timeout=START_TIMEOUT)
    finally:
        sock.close()
