"""Pure ASGI middleware: security headers with a per-request CSP nonce, body limits, and
no NUL characters in paths, queries or forms.

Pure ASGI (not BaseHTTPMiddleware) so streaming responses such as Server-Sent Events pass
through untouched.
"""

from __future__ import annotations

import re
import secrets

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.errors import Problem
from web.errors import BodyTooLarge, problem_response

# An origin as web/sessions.py or an LTI endpoint puts it in the scope: nothing that could
# end a CSP directive or add a source expression.
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")
FRAME_SCOPE_KEY = "peerboard.frame_ancestors"
# Origins this response's forms may post to besides its own (an LTI deep linking answer
# goes back to the LMS's return URL).
FORM_ACTION_SCOPE_KEY = "peerboard.form_action"


def _origins(scope: Scope, key: str) -> list[str]:
    origins = scope.get(key) or []
    return [o for o in origins if isinstance(o, str) and _ORIGIN.fullmatch(o)]


def _frame_ancestors(scope: Scope) -> list[str]:
    """Origins allowed to frame this response: none, unless an LTI launch from an LMS made
    this session (or this response) live in that LMS's iframe."""
    return _origins(scope, FRAME_SCOPE_KEY)


def content_security_policy(
    nonce: str, frame_ancestors: list[str] | None = None, form_targets: list[str] | None = None
) -> str:
    framers = " ".join(["'self'", *frame_ancestors]) if frame_ancestors else "'none'"
    form_action = " ".join(["'self'", *(form_targets or [])])
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'nonce-{nonce}' 'strict-dynamic'",
            f"style-src 'self' 'nonce-{nonce}'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            f"form-action {form_action}",
            f"frame-ancestors {framers}",
        ]
    )


class RequestStateMiddleware:
    """Each request gets its own copy of the lifespan state. The ASGI spec has servers copy
    it per request (uvicorn does), but not every runner does (asgi-lifespan's wrapper, used
    by the in-process tests, hands every request the same dict): without the copy, what
    one request writes there (the CSP nonce, the signed-in viewer the templates show) would
    be read by the next, a name shown to the wrong person."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope["state"] = dict(scope.get("state") or {})
        await self.app(scope, receive, send)


class SecurityHeadersMiddleware:
    """Every response gets nosniff, a referrer policy and a nonce-based CSP."""

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(18)
        scope.setdefault("state", {})["csp_nonce"] = nonce

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                framers = _frame_ancestors(scope)
                headers["Content-Security-Policy"] = content_security_policy(
                    nonce, framers, _origins(scope, FORM_ACTION_SCOPE_KEY)
                )
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "same-origin"
                if not framers:  # CSP frame-ancestors says who may; XFO cannot name them
                    headers["X-Frame-Options"] = "DENY"
                headers["Cross-Origin-Opener-Policy"] = "same-origin"
                headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
                if self.hsts:
                    headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimitMiddleware:
    """Refuse request bodies over the limit, whether announced by Content-Length or not.
    Paths matching `upload_paths` (papers sent as files) have their own, larger limit."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        upload_bytes: int | None = None,
        upload_paths: re.Pattern[str] | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.upload_bytes = upload_bytes
        self.upload_paths = upload_paths

    def _limit(self, scope: Scope) -> int:
        uploads, path = self.upload_paths, scope.get("path", "")
        if self.upload_bytes is not None and uploads is not None and uploads.fullmatch(path):
            return self.upload_bytes
        return self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    announced = int(value)
                except ValueError:
                    announced = -1
                if announced < 0 or announced > limit:
                    # Let the app's error handler speak (problem JSON or page), without
                    # reading a byte of the body.
                    async def refusing_receive() -> Message:
                        raise BodyTooLarge(limit)

                    await self.app(scope, refusing_receive, send)
                    return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counting_receive, send)


async def _refusing_receive() -> Message:
    raise BodyTooLarge


class NulGuardMiddleware:
    """No NUL character reaches an endpoint from the path, the query string or a
    url-encoded form: PostgreSQL cannot store or compare one, and no text needs it. A NUL
    in the path is 404 (no such thing); in the query or a form, 422 `invalid`.
    (JSON bodies are checked where they are decoded, in web/endpoints/parsing.py.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"]:
            await self._refuse(scope, receive, send, 404, "There is nothing at this address.")
            return
        if _has_nul(scope.get("query_string", b"")):
            await self._refuse(scope, receive, send, 422, "The query must not contain NUL.")
            return
        headers = dict(scope["headers"])
        kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if kind != b"application/x-www-form-urlencoded":
            await self.app(scope, receive, send)
            return
        # A form is small (BodyLimitMiddleware bounds it): read it whole, check, replay.
        chunks = []
        more = True
        try:
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunks.append(message.get("body", b""))
                more = message.get("more_body", False)
        except BodyTooLarge:  # the endpoint reading its form meets it, and answers 413
            await self.app(scope, _refusing_receive, send)
            return
        body = b"".join(chunks)
        if _has_nul(body):
            await self._refuse(scope, receive, send, 422, "The form must not contain NUL.")
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, status: int, detail: str
    ) -> None:
        request = Request(scope, receive)
        code = "not_found" if status == 404 else "invalid"
        problems = [Problem("must not contain NUL characters")] if status == 422 else None
        response = problem_response(
            request, status=status, code=code, detail=detail, problems=problems
        )
        await response(scope, receive, send)


def _has_nul(raw: bytes) -> bool:
    return b"\x00" in raw or b"%00" in raw
