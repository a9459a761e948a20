"""An LTI Advantage platform (an LMS) on loopback, for the roster and grades tests.

A real HTTP server (Starlette on uvicorn, in a thread) written from the 1EdTech
specifications and their published JSON examples:

- `/jwks`: the platform's launch-signing keys;
- `/token` (LTI Security Framework §4.1, RFC 7523): client-credentials grant whose
  `client_assertion` is checked against the TOOL's key set, fetched over HTTP from the tool's
  /lti/jwks.json: RS256, iss = sub = client id, aud = this token URL, not expired, jti used
  once; returns a bearer token for the requested scopes it grants;
- `/courses/{course}/memberships` (NRPS 2.0): the membership container
  (`application/vnd.ims.lti-nrps.v2.membershipcontainer+json`; `{"id", "context",
  "members": [{"status", "name", "given_name", "family_name", "email", "user_id",
  "roles"}]}`), `page_size` members a page, `Link: <…>; rel="next"`;
- `/courses/{course}/lineitems` (AGS 2.0): GET (filters resource_id, tag; a line item
  container), POST (`application/vnd.ims.lis.v2.lineitem+json`: label, scoreMaximum,
  resourceId, tag); `/courses/{course}/lineitems/{n}/scores`: POST
  (`application/vnd.ims.lis.v1.score+json`: userId, scoreGiven, scoreMaximum, comment,
  timestamp, activityProgress, gradingProgress), validated like the spec says.

Every request is recorded (method, path, headers, body) for the canary scan. `script`
makes the next answers of one endpoint defective: an HTTP status, "timeout" (answers after
the tool gave up), or for the token endpoint "not-json", "no-token", "expired", "mac-token",
"scope-missing".
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import httpx
import uvicorn
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.lti.platform import new_key

LIS = "http://purl.imsglobal.org/vocab/lis/v2/membership"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
AGS = "https://purl.imsglobal.org/spec/lti-ags/scope/"
GRANTABLE = {NRPS_SCOPE, AGS + "lineitem", AGS + "lineitem.readonly", AGS + "score",
             AGS + "result.readonly"}  # fmt: skip
MEMBERSHIPS_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
LINEITEM_TYPE = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEMS_TYPE = "application/vnd.ims.lis.v2.lineitemcontainer+json"
SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"
ACTIVITY = {"Initialized", "Started", "InProgress", "Submitted", "Completed"}
GRADING = {"FullyGraded", "Pending", "PendingManual", "Failed", "NotReady"}
# A "timeout" answer comes after the tool gave up: tests that script one set the tool's
# client timeout to TOOL_TIMEOUT, well above what a loaded CI machine needs for an ordinary
# answer on loopback (1 s once timed out a plain HTTP 500 there) and well below this delay.
TOOL_TIMEOUT = 2.5
TIMEOUT_DELAY = 5.0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class AdvantagePlatform:
    tool_jwks_url: str
    client_id: str = "advantage-client-1"
    deployment_id: str = "deployment-adv"
    issuer: str = ""
    keys: list[Any] = field(default_factory=lambda: [new_key("adv-platform-key")])
    rosters: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    page_size: int = 2
    line_items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    scores: list[dict[str, Any]] = field(default_factory=list)
    requests: list[Seen] = field(default_factory=list)
    script: dict[str, list[Any]] = field(default_factory=dict)
    tokens: dict[str, tuple[set[str], float]] = field(default_factory=dict)
    token_requests: int = 0
    refused_assertions: list[str] = field(default_factory=list)
    _jtis: set[str] = field(default_factory=set)

    # --- helpers for the tests ------------------------------------------------------------

    def member(
        self, sub: str, name: str, role: str = "Learner", status: str = "Active"
    ) -> dict[str, Any]:
        given, _, family = name.partition(" ")
        return {
            "status": status, "name": name, "given_name": given, "family_name": family,
            "email": f"{sub}@lms.example", "user_id": sub, "roles": [f"{LIS}#{role}"],
        }  # fmt: skip

    def memberships_url(self, course: str) -> str:
        return f"{self.issuer}/courses/{course}/memberships"

    def lineitems_url(self, course: str) -> str:
        return f"{self.issuer}/courses/{course}/lineitems"

    def revoke_tokens(self) -> None:
        self.tokens.clear()

    def _next(self, endpoint: str) -> Any:
        queue = self.script.get(endpoint) or []
        return queue.pop(0) if queue else None

    def _authorized(self, request: Request, scope: str) -> bool:
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ")
        found = self.tokens.get(token)
        return bool(found and scope in found[0] and found[1] > time.time())

    # --- endpoints ------------------------------------------------------------------------

    async def _record(self, request: Request) -> bytes:
        body = await request.body()
        query = "?" + request.url.query if request.url.query else ""
        self.requests.append(
            Seen(request.method, request.url.path + query, dict(request.headers), body)
        )
        return body

    async def jwks(self, request: Request) -> Response:
        return JSONResponse({"keys": [dict(k.as_dict(private=False)) for k in self.keys]})

    async def token(self, request: Request) -> Response:
        body = await self._record(request)
        self.token_requests += 1
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        defect = self._next("token")
        if isinstance(defect, int):
            return JSONResponse({"error": "server_error"}, status_code=defect)
        if defect == "timeout":
            await asyncio.sleep(TIMEOUT_DELAY)
        if (
            form.get("grant_type") != "client_credentials"
            or form.get("client_assertion_type")
            != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        ):
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        problem = await self._check_assertion(form.get("client_assertion", ""))
        if problem:
            self.refused_assertions.append(problem)
            return JSONResponse({"error": "invalid_client", "detail": problem}, status_code=401)
        asked = set(form.get("scope", "").split())
        granted = asked & GRANTABLE
        if defect == "scope-missing":
            granted = set()
        value = secrets.token_urlsafe(24)
        if defect == "not-json":
            return Response("<html>login</html>", media_type="text/html")
        if defect == "no-token":
            return JSONResponse({"token_type": "Bearer", "expires_in": 3600})
        if defect == "mac-token":
            return JSONResponse({"access_token": value, "token_type": "mac", "expires_in": 60})
        if defect == "expired":
            return JSONResponse({"access_token": value, "token_type": "Bearer", "expires_in": 0})
        self.tokens[value] = (granted, time.time() + 3600)
        return JSONResponse(
            {"access_token": value, "token_type": "Bearer", "expires_in": 3600,
             "scope": " ".join(sorted(granted))}
        )  # fmt: skip

    async def _check_assertion(self, assertion: str) -> str:
        async with httpx.AsyncClient(timeout=5) as client:
            answer = await client.get(self.tool_jwks_url)
        keys = KeySet.import_key_set(answer.json())
        try:
            token = jwt.decode(assertion, keys, algorithms=["RS256"])
        except (JoseError, ValueError) as exc:
            return f"signature: {type(exc).__name__}"
        claims = token.claims
        now = time.time()
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud or []
        if claims.get("iss") != self.client_id or claims.get("sub") != self.client_id:
            return "iss/sub"
        if f"{self.issuer}/token" not in audiences:
            return "aud"
        if not isinstance(claims.get("exp"), int) or claims["exp"] < now:
            return "exp"
        if not isinstance(claims.get("iat"), int) or claims["iat"] > now + 60:
            return "iat"
        jti = claims.get("jti")
        if not isinstance(jti, str) or jti in self._jtis:
            return "jti"
        self._jtis.add(jti)
        return ""

    async def memberships(self, request: Request) -> Response:
        await self._record(request)
        if not self._authorized(request, NRPS_SCOPE):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        defect = self._next("memberships")
        if isinstance(defect, int):
            return JSONResponse({"error": "failed"}, status_code=defect)
        if defect == "timeout":
            await asyncio.sleep(TIMEOUT_DELAY)
        course = request.path_params["course"]
        members = self.rosters.get(course, [])
        page = int(request.query_params.get("page", "1"))
        chunk = members[(page - 1) * self.page_size : page * self.page_size]
        url = self.memberships_url(course)
        headers = {}
        if page * self.page_size < len(members):
            headers["link"] = f'<{url}?page={page + 1}>; rel="next"'
        return JSONResponse(
            {"id": url, "context": {"id": course, "label": "PSY101", "title": "PSY 101"},
             "members": chunk},
            headers=headers, media_type=MEMBERSHIPS_TYPE,
        )  # fmt: skip

    async def lineitems(self, request: Request) -> Response:
        body = await self._record(request)
        course = request.path_params["course"]
        items = self.line_items.setdefault(course, [])
        if request.method == "GET":
            if not (
                self._authorized(request, AGS + "lineitem")
                or self._authorized(request, AGS + "lineitem.readonly")
            ):
                return JSONResponse({"error": "unauthorized"}, status_code=401)
            wanted = request.query_params
            found = [
                i for i in items
                if all(i.get(key) == wanted[param] for param, key in
                       (("resource_id", "resourceId"), ("tag", "tag")) if param in wanted)
            ]  # fmt: skip
            return JSONResponse(found, media_type=LINEITEMS_TYPE)
        if not self._authorized(request, AGS + "lineitem"):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        defect = self._next("lineitems")
        if isinstance(defect, int):
            return JSONResponse({"error": "failed"}, status_code=defect)
        if request.headers.get("content-type") != LINEITEM_TYPE:
            return JSONResponse({"error": "content type"}, status_code=415)
        item = json.loads(body)
        if not isinstance(item.get("label"), str) or not item["label"]:
            return JSONResponse({"error": "label"}, status_code=400)
        if not isinstance(item.get("scoreMaximum"), int | float) or item["scoreMaximum"] <= 0:
            return JSONResponse({"error": "scoreMaximum"}, status_code=400)
        item["id"] = f"{self.lineitems_url(course)}/{len(items) + 1}"
        items.append(item)
        return JSONResponse(item, status_code=201, media_type=LINEITEM_TYPE)

    async def post_score(self, request: Request) -> Response:
        body = await self._record(request)
        if not self._authorized(request, AGS + "score"):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        defect = self._next("scores")
        if isinstance(defect, int):
            return JSONResponse({"error": "failed"}, status_code=defect)
        if defect == "timeout":
            await asyncio.sleep(TIMEOUT_DELAY)
        if request.headers.get("content-type") != SCORE_TYPE:
            return JSONResponse({"error": "content type"}, status_code=415)
        score = json.loads(body)
        course, number = request.path_params["course"], int(request.path_params["n"])
        items = self.line_items.get(course, [])
        if not 0 < number <= len(items):
            return JSONResponse({"error": "no such line item"}, status_code=404)
        problems = []
        if not isinstance(score.get("userId"), str):
            problems.append("userId")
        if score.get("activityProgress") not in ACTIVITY:
            problems.append("activityProgress")
        if score.get("gradingProgress") not in GRADING:
            problems.append("gradingProgress")
        if "scoreGiven" in score and (
            not isinstance(score.get("scoreMaximum"), int | float) or score["scoreMaximum"] <= 0
            or not isinstance(score["scoreGiven"], int | float) or score["scoreGiven"] < 0
        ):  # fmt: skip
            problems.append("scoreGiven/scoreMaximum")
        try:
            datetime.fromisoformat(score["timestamp"])
        except (KeyError, TypeError, ValueError):
            problems.append("timestamp")
        if problems:
            return JSONResponse({"error": ", ".join(problems)}, status_code=400)
        self.scores.append({"lineitem": items[number - 1]["id"], **score})
        return JSONResponse({"resultUrl": f"{items[number - 1]['id']}/results/{score['userId']}"})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/jwks", self.jwks),
                Route("/token", self.token, methods=["POST"]),
                Route("/courses/{course}/memberships", self.memberships),
                Route("/courses/{course}/lineitems", self.lineitems, methods=["GET", "POST"]),
                Route("/courses/{course}/lineitems/{n}/scores", self.post_score,
                      methods=["POST"]),
            ]
        )  # fmt: skip


@contextmanager
def serve_platform(tool_jwks_url: str) -> Iterator[AdvantagePlatform]:
    """An AdvantagePlatform on a free 127.0.0.1 port, in a thread, for the block."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
        platform = AdvantagePlatform(tool_jwks_url=tool_jwks_url, issuer=f"http://127.0.0.1:{port}")
        config = uvicorn.Config(
            platform.app(), log_level="warning", log_config=None, access_log=False,
            lifespan="off", ws="none", http="h11",
        )  # fmt: skip
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="lti-platform", daemon=True
        )
        thread.start()
        try:
            deadline = time.monotonic() + 10
            while not server.started:
                if time.monotonic() > deadline or not thread.is_alive():
                    raise RuntimeError("the LTI platform did not start")
                time.sleep(0.02)
            yield platform
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    finally:
        sock.close()
