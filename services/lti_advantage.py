"""LTI Advantage service calls: an access token from the platform, then its REST services.

The token is an OAuth 2 client-credentials grant whose client authentication is a JWT
signed with the tool's current key (RFC 7523, `private_key_jwt`; the LTI Security Framework
§4.1): iss = sub = our client id, aud = the platform's token URL, a fresh jti, five minutes
of life. The platform checks it against our key set at /lti/jwks.json. Tokens are cached
per (platform registration, scopes) until shortly before they expire; a service that
answers 401 makes us drop the cached token and ask once more (the platform may have
revoked it early).

Every failure ends as a `ServiceError` with a plain sentence for the instructor and
whether trying again later can help:

    ServiceError
     ├── Unreachable      timeout, refused connection, DNS        (retry later)
     ├── PlatformFailed   the platform answered 5xx or 429        (retry later)
     ├── BadAnswer        an answer we cannot read (not JSON, no token, expired token)
     │                                                            (retry later)
     └── Refused          the platform said no: 4xx, a scope not granted, our client
                          assertion refused                       (fix the registration)
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey

from services import lti_keys

NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
AGS_LINEITEM_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
AGS_LINEITEM_READONLY_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
AGS_SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
AGS_RESULT_READONLY_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
TOOL_SCOPES = (NRPS_SCOPE, AGS_LINEITEM_SCOPE, AGS_LINEITEM_READONLY_SCOPE, AGS_SCORE_SCOPE,
               AGS_RESULT_READONLY_SCOPE)  # fmt: skip

MEMBERSHIPS_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
LINEITEM_TYPE = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEMS_TYPE = "application/vnd.ims.lis.v2.lineitemcontainer+json"
SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

TIMEOUT_SECONDS = 10.0
ASSERTION_LIFETIME_SECONDS = 300
DEFAULT_TOKEN_SECONDS = 300  # a token response without expires_in: assume it is short-lived
MAX_TOKEN_CHARS = 8192
MAX_PAGES = 200


class ServiceError(Exception):
    """A platform service call that did not work; `message` is for the instructor."""

    retryable = True

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Unreachable(ServiceError):
    pass


class PlatformFailed(ServiceError):
    pass


class BadAnswer(ServiceError):
    pass


class Refused(ServiceError):
    retryable = False


@dataclass(frozen=True)
class Registration:
    """What a service call needs of a platform registration and of our signing key."""

    platform_id: int
    client_id: str
    token_url: str
    kid: str
    key: RSAKey


async def registration_for(session: Any, *, platform: Any, secret: str) -> Registration:
    """The registration with our current signing key (made if there is none)."""
    row = await lti_keys.ensure_key(session, secret=secret)
    found = await lti_keys.signing_key(session, secret=secret)
    assert found is not None and row.kid == found[0].kid
    return Registration(
        platform_id=platform.id or 0, client_id=platform.client_id,
        token_url=platform.token_url, kid=found[0].kid, key=found[1],
    )  # fmt: skip


def client_assertion(registration: Registration, *, now: float | None = None) -> str:
    """The signed JWT that authenticates us at the platform's token endpoint (RFC 7523)."""
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": registration.client_id,
        "sub": registration.client_id,
        "aud": registration.token_url,
        "iat": issued,
        "exp": issued + ASSERTION_LIFETIME_SECONDS,
        "jti": secrets.token_urlsafe(24),
    }
    header = {"alg": lti_keys.ALGORITHM, "kid": registration.kid, "typ": "JWT"}
    return jwt.encode(header, claims, registration.key)


@dataclass
class _Token:
    value: str
    good_until: float  # monotonic


def _scope_key(scopes: Iterable[str]) -> str:
    return " ".join(sorted(set(scopes)))


def scores_url(lineitem_url: str) -> str:
    """The score service of a line item: its path + /scores, keeping any query (AGS §3.4)."""
    parts = urlsplit(lineitem_url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/scores"))


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.netloc) == (pb.scheme, pb.netloc)


@dataclass
class AdvantageClient:
    """One per app (or worker): the HTTP client settings and the token cache."""

    transport: httpx.AsyncBaseTransport | None = None
    timeout: float = TIMEOUT_SECONDS
    _tokens: dict[tuple[int, str, str], _Token] = field(default_factory=dict)
    _locks: dict[tuple[int, str, str], asyncio.Lock] = field(default_factory=dict)

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=self.transport, timeout=self.timeout, follow_redirects=False
        )

    def forget(self, registration: Registration, scopes: Iterable[str]) -> None:
        key = (registration.platform_id, registration.client_id, _scope_key(scopes))
        self._tokens.pop(key, None)

    async def token(self, registration: Registration, scopes: Iterable[str]) -> str:
        """An access token for these scopes, from the cache while it is good."""
        scope = _scope_key(scopes)
        key = (registration.platform_id, registration.client_id, scope)
        cached = self._tokens.get(key)
        if cached is not None and cached.good_until > time.monotonic():
            return cached.value
        # Concurrent callers wait for one token request rather than each making one.
        async with self._locks.setdefault(key, asyncio.Lock()):
            cached = self._tokens.get(key)
            if cached is not None and cached.good_until > time.monotonic():
                return cached.value
            value, lifetime = await self._request_token(registration, scope)
            # Stop using a token shortly before the platform does.
            margin = min(60.0, lifetime / 2)
            self._tokens[key] = _Token(value, time.monotonic() + lifetime - margin)
            return value

    async def _request_token(self, registration: Registration, scope: str) -> tuple[str, float]:
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion(registration),
            "scope": scope,
        }
        try:
            async with self._client() as client:
                response = await client.post(
                    registration.token_url,
                    content=urlencode(form),
                    headers={"Content-Type": "application/x-www-form-urlencoded",
                             "Accept": "application/json"},
                )  # fmt: skip
        except httpx.TimeoutException:
            raise Unreachable("The LMS did not answer the token request in time.") from None
        except httpx.HTTPError as exc:
            raise Unreachable(f"The LMS could not be reached ({type(exc).__name__}).") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise PlatformFailed(
                f"The LMS's token service failed (HTTP {response.status_code}).",
                status=response.status_code,
            )
        if response.status_code != 200:
            raise Refused(
                f"The LMS refused Peerboard an access token (HTTP {response.status_code}): "
                "check that Peerboard's registration has these services enabled.",
                status=response.status_code,
            )
        try:
            answer = response.json()
        except ValueError:
            raise BadAnswer("The LMS's token answer was not JSON.", status=200) from None
        if not isinstance(answer, dict):
            raise BadAnswer("The LMS's token answer was not a JSON object.", status=200)
        value = answer.get("access_token")
        kind = answer.get("token_type")
        if not isinstance(value, str) or not value or len(value) > MAX_TOKEN_CHARS:
            raise BadAnswer("The LMS's token answer carried no access token.", status=200)
        if not isinstance(kind, str) or kind.lower() != "bearer":
            raise BadAnswer("The LMS's token answer was not a bearer token.", status=200)
        lifetime = answer.get("expires_in", DEFAULT_TOKEN_SECONDS)
        if isinstance(lifetime, str) and lifetime.isdigit():
            lifetime = int(lifetime)
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
            raise BadAnswer("The LMS's token answer had already expired.", status=200)
        granted = answer.get("scope")
        if isinstance(granted, str):
            missing = set(scope.split()) - set(granted.split())
            if missing:
                raise Refused(
                    "The LMS did not grant Peerboard "
                    + ", ".join(sorted(m.rsplit("/", 1)[-1] for m in missing))
                    + ": enable that service for Peerboard in the LMS.",
                    status=200,
                )
        return value, float(min(lifetime, 24 * 3600))

    async def call(
        self,
        registration: Registration,
        scopes: Iterable[str],
        method: str,
        url: str,
        *,
        accept: str,
        body: bytes | None = None,
        content_type: str | None = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One service request with a bearer token; a 401 gets one fresh token."""
        scopes = tuple(scopes)
        for attempt in (1, 2):
            token = await self.token(registration, scopes)
            headers = {"Authorization": f"Bearer {token}", "Accept": accept}
            if content_type:
                headers["Content-Type"] = content_type
            try:
                async with self._client() as client:
                    response = await client.request(
                        method, url, content=body, headers=headers, params=params
                    )
            except httpx.TimeoutException:
                raise Unreachable("The LMS did not answer in time.") from None
            except httpx.HTTPError as exc:
                raise Unreachable(f"The LMS could not be reached ({type(exc).__name__}).") from None
            if response.status_code == 401 and attempt == 1:
                self.forget(registration, scopes)
                continue
            if 200 <= response.status_code < 300:
                return response
            if response.status_code >= 500 or response.status_code == 429:
                raise PlatformFailed(
                    f"The LMS failed (HTTP {response.status_code}).", status=response.status_code
                )
            raise Refused(
                f"The LMS refused the request (HTTP {response.status_code}).",
                status=response.status_code,
            )
        raise AssertionError("unreachable")  # pragma: no cover

    # --- Names and Role Provisioning Services ----------------------------------------------

    async def memberships(self, registration: Registration, url: str) -> list[dict[str, Any]]:
        """Every member of the course: all pages of the membership container (Link: next).
        Pages are only followed on the memberships URL's own origin (our bearer token goes
        with each request)."""
        members: list[dict[str, Any]] = []
        next_url: str | None = url
        pages = 0
        while next_url is not None:
            pages += 1
            if pages > MAX_PAGES:
                raise BadAnswer(f"The LMS's roster has more than {MAX_PAGES} pages.")
            response = await self.call(
                registration, (NRPS_SCOPE,), "GET", next_url, accept=MEMBERSHIPS_TYPE
            )
            page = _json_object(response, "roster")
            found = page.get("members")
            if not isinstance(found, list):
                raise BadAnswer("The LMS's roster had no members list.", status=200)
            members += [m for m in found if isinstance(m, dict)]
            link = response.links.get("next", {}).get("url")
            if link:
                link = str(httpx.URL(next_url).join(link))
                if not _same_origin(link, url):
                    raise BadAnswer("The LMS's roster pointed to another site.", status=200)
            next_url = link or None
        return members

    # --- Assignment and Grade Services -----------------------------------------------------

    async def find_line_item(
        self, registration: Registration, lineitems_url: str, *, resource_id: str, tag: str
    ) -> str | None:
        """The URL of our line item for this resource id, if the platform already has one."""
        response = await self.call(
            registration, (AGS_LINEITEM_SCOPE,), "GET", lineitems_url, accept=LINEITEMS_TYPE,
            params={"resource_id": resource_id, "tag": tag},
        )  # fmt: skip
        try:
            items = response.json()
        except ValueError:
            raise BadAnswer("The LMS's line items were not JSON.", status=200) from None
        if not isinstance(items, list):
            raise BadAnswer("The LMS's line items were not a list.", status=200)
        for item in items:
            if (
                isinstance(item, dict)
                and item.get("resourceId") == resource_id
                and isinstance(item.get("id"), str)
            ):
                return _line_item_url(str(item["id"]), lineitems_url)
        return None

    async def create_line_item(
        self, registration: Registration, lineitems_url: str, *, item: dict[str, Any]
    ) -> str:
        import json

        response = await self.call(
            registration, (AGS_LINEITEM_SCOPE,), "POST", lineitems_url, accept=LINEITEM_TYPE,
            body=json.dumps(item).encode(), content_type=LINEITEM_TYPE,
        )  # fmt: skip
        made = _json_object(response, "line item")
        if not isinstance(made.get("id"), str) or not made["id"]:
            raise BadAnswer("The LMS's new line item had no id.", status=response.status_code)
        return _line_item_url(str(made["id"]), lineitems_url)

    async def post_score(
        self, registration: Registration, lineitem_url: str, *, body: bytes
    ) -> httpx.Response:
        return await self.call(
            registration, (AGS_SCORE_SCOPE,), "POST", scores_url(lineitem_url),
            accept="application/json", body=body, content_type=SCORE_TYPE,
        )  # fmt: skip


def _line_item_url(url: str, lineitems_url: str) -> str:
    """A line item's URL, which must live beside the line items service: our bearer
    tokens go there with each score."""
    if len(url) > 1000 or not _same_origin(url, lineitems_url):
        raise BadAnswer("The LMS's line item points to another site.", status=200)
    return url


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        raise BadAnswer(f"The LMS's {what} was not JSON.", status=response.status_code) from None
    if not isinstance(value, dict):
        raise BadAnswer(f"The LMS's {what} was not a JSON object.", status=response.status_code)
    return value
