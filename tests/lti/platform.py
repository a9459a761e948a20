"""A fake LTI 1.3 platform (an LMS), for driving the tool's real endpoints end to end.

It is an external system to Peerboard, so faking it is fair: it has its own RSA keys,
serves its JWKS, OpenID configuration and dynamic-registration endpoint through an httpx
MockTransport (the tool's outgoing calls), and signs launch id tokens the way the LTI 1.3
core and Security Framework describe them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey

from services import lti

ISSUER = "https://lms.example.edu"
CLIENT_ID = "peerboard-client-1"
DEPLOYMENT = "deployment-1"
TOOL = "http://127.0.0.1:8000"
LIS = "http://purl.imsglobal.org/vocab/lis/v2/membership"
INSTRUCTOR = f"{LIS}#Instructor"
LEARNER = f"{LIS}#Learner"
TA = f"{LIS}/Instructor#TeachingAssistant"
MENTOR = f"{LIS}#Mentor"


def new_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "alg": "RS256", "use": "sig"})


@dataclass
class FakePlatform:
    issuer: str = ISSUER
    client_id: str = CLIENT_ID
    deployment_id: str = DEPLOYMENT
    keys: list[RSAKey] = field(default_factory=lambda: [new_key("platform-key-1")])
    jwks_requests: int = 0
    registrations: list[dict[str, Any]] = field(default_factory=list)
    registration_tokens: list[str | None] = field(default_factory=list)

    @property
    def spec(self) -> lti.PlatformSpec:
        return lti.PlatformSpec(
            issuer=self.issuer, client_id=self.client_id,
            auth_login_url=f"{self.issuer}/auth", token_url=f"{self.issuer}/token",
            jwks_url=f"{self.issuer}/jwks", deployment_ids=[self.deployment_id],
            name="Example LMS",
        )  # fmt: skip

    def rotate(self, kid: str) -> RSAKey:
        key = new_key(kid)
        self.keys = [key]
        return key

    # --- what the platform serves -------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        if url == f"{self.issuer}/jwks":
            self.jwks_requests += 1
            return httpx.Response(
                200, json={"keys": [dict(k.as_dict(private=False)) for k in self.keys]}
            )
        if url == f"{self.issuer}/.well-known/openid-configuration":
            return httpx.Response(200, json=self.openid_configuration())
        if url == f"{self.issuer}/register" and request.method == "POST":
            body = json.loads(request.content)
            self.registrations.append(body)
            self.registration_tokens.append(request.headers.get("authorization"))
            config = body["https://purl.imsglobal.org/spec/lti-tool-configuration"]
            return httpx.Response(
                200,
                json={**body, "client_id": "dyn-client-7",
                      "https://purl.imsglobal.org/spec/lti-tool-configuration": {
                          **config, "deployment_id": "dyn-deployment-1"}},
            )  # fmt: skip
        return httpx.Response(404)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def openid_configuration(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/auth",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "registration_endpoint": f"{self.issuer}/register",
            "id_token_signing_alg_values_supported": ["RS256"],
            "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                "product_family_code": "example-lms", "version": "1.0",
                "messages_supported": [{"type": "LtiResourceLinkRequest"}],
            },
        }  # fmt: skip

    # --- launches -----------------------------------------------------------------------

    def login_params(self, **extra: str) -> dict[str, str]:
        return {
            "iss": self.issuer,
            "login_hint": "hint-123",
            "target_link_uri": f"{TOOL}/lti/launch",
            "lti_message_hint": "message-hint",
            "client_id": self.client_id,
            "lti_deployment_id": self.deployment_id,
            **extra,
        }

    def claims(
        self, *, nonce: str, sub: str, roles: list[str], context_id: str = "course-101",
        context_title: str = "PSY 101: Attachment", link_id: str = "link-1",
        custom: dict[str, str] | None = None, name: str = "Test Person", **overrides: Any,
    ) -> dict[str, Any]:  # fmt: skip
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id,
            "sub": sub,
            "exp": now + 300,
            "iat": now,
            "nonce": nonce,
            "name": name,
            "email": f"{sub}@example.edu",
            lti.MESSAGE_TYPE: "LtiResourceLinkRequest",
            lti.VERSION: "1.3.0",
            lti.DEPLOYMENT_ID: self.deployment_id,
            lti.TARGET_LINK_URI: f"{TOOL}/lti/launch",
            lti.ROLES: roles,
            lti.CONTEXT: {"id": context_id, "label": "PSY101", "title": context_title},
            lti.RESOURCE_LINK: {"id": link_id, "title": "Secure Base"},
        }
        if custom is not None:
            claims[lti.CUSTOM] = custom
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def deep_linking_claims(
        self, *, nonce: str, sub: str, roles: list[str], context_id: str = "course-101",
        accept_types: list[str] | None = None, data: Any = "platform-data-42",
        return_url: str | None = None, **overrides: Any,
    ) -> dict[str, Any]:  # fmt: skip
        """An LtiDeepLinkingRequest (LTI Deep Linking 2.0 §4.4): no resource link, the
        deep_linking_settings claim instead."""
        settings: dict[str, Any] = {
            "deep_link_return_url": return_url or f"{self.issuer}/deep-link-return",
            "accept_types": ["ltiResourceLink"] if accept_types is None else accept_types,
            "accept_presentation_document_targets": ["iframe", "window"],
            "accept_multiple": False,
            "auto_create": True,
            "title": "Week 3 activity",
        }
        if data is not None:
            settings["data"] = data
        return self.claims(
            nonce=nonce, sub=sub, roles=roles, context_id=context_id,
            **{lti.MESSAGE_TYPE: lti.DEEP_LINKING_REQUEST, lti.RESOURCE_LINK: None,
               lti.DEEP_LINKING_SETTINGS: settings, **overrides},
        )  # fmt: skip

    def sign(self, claims: dict[str, Any], *, key: RSAKey | None = None,
             header: dict[str, Any] | None = None) -> str:  # fmt: skip
        key = key or self.keys[0]
        return jwt.encode({"alg": "RS256", "kid": key.kid, **(header or {})}, claims, key)

    def sign_hs256(self, claims: dict[str, Any], secret: bytes) -> str:
        """The classic forgery: HMAC with the platform's public key as the secret (joserfc
        itself refuses to build that key, so the token is put together by hand)."""
        signing_input = f"{_part({'alg': 'HS256', 'kid': self.keys[0].kid})}.{_part(claims)}"
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def auth_request(location: str) -> dict[str, str]:
    """The authentication request the tool sent the browser to (query of the redirect)."""
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def _part(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def unsigned(claims: dict[str, Any]) -> str:
    return f"{_part({'alg': 'none', 'kid': 'platform-key-1'})}.{_part(claims)}."


def fresh_sub() -> str:
    return f"sub-{uuid.uuid4().hex[:12]}"
