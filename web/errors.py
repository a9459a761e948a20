"""The one place that turns errors into HTTP: RFC 9457 problem details for the API and
health routes, a readable page for people. Nothing here ever shows a stack trace.

A database that is busy (lock or statement timeout) or down (refused, restarting) is not a
bug: 503 `unavailable` with Retry-After, wherever it was met (an endpoint, or the session
middleware). Any other unhandled error is a 500 that says `Connection: close`, because the
server drops the connection after it (Starlette re-raises it) and a client keeping the
connection alive must know not to send its next request there."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.db import Unavailable, unavailability
from services.errors import (
    ConfirmationRequired,
    Conflict,
    DomainError,
    Invalid,
    NotFound,
    PermissionDenied,
    Problem,
    StaleVersion,
)

log = logging.getLogger("peerboard.web")

PROBLEM_TYPE = "urn:peerboard:problem:{code}"

_STATUS_FOR: list[tuple[type[DomainError], int]] = [
    (NotFound, 404),
    (PermissionDenied, 403),
    (Conflict, 409),
    (Invalid, 422),
]

_CODE_FOR_STATUS = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """An HTTP-level refusal raised by the web layer itself (bad JSON, wrong media type...)."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        code: str | None = None,
        problems: list[Problem] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code or _CODE_FOR_STATUS.get(status, "error")
        self.problems = problems or []
        self.headers = headers


class BodyTooLarge(Exception):
    """Raised while reading a request body that exceeds the configured limit."""

    def __init__(self, limit: int | None = None) -> None:
        super().__init__(limit)
        self.limit = limit


def wants_problem_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/api/") or path in ("/healthz", "/readyz")


def problem_response(
    request: Request,
    *,
    status: int,
    code: str,
    detail: str,
    problems: list[Problem] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    title = HTTPStatus(status).phrase
    if wants_problem_json(request):
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE.format(code=code),
            "title": title,
            "status": status,
            "detail": detail,
            "code": code,
            "instance": request.url.path,
        }
        if problems:
            body["errors"] = [p.as_dict() for p in problems]
        return Response(
            orjson.dumps(body),
            status_code=status,
            media_type="application/problem+json",
            headers=headers,
        )
    templates = request.app.state.templates
    return templates.TemplateResponse(  # type: ignore[no-any-return]
        request,
        "error.html",
        {"status": status, "title": title, "detail": detail, "problems": problems or []},
        status_code=status,
        headers=headers,
    )


def status_for(exc: DomainError) -> int:
    return next((s for cls, s in _STATUS_FOR if isinstance(exc, cls)), 400)


async def domain_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    status = status_for(exc)
    problems = exc.problems if isinstance(exc, Invalid) else None
    response = problem_response(
        request, status=status, code=exc.code, detail=exc.message, problems=problems
    )
    # Extension members (RFC 9457 §3.2): the version to reload, for a client's retry; what
    # a change asked to be confirmed would do.
    extra: dict[str, Any] = {}
    if isinstance(exc, StaleVersion):
        extra["current_version"] = exc.current_version
    if isinstance(exc, ConfirmationRequired):
        extra["consequences"] = exc.consequences
    if extra and wants_problem_json(request):
        body = orjson.loads(response.body)
        body.update(extra)
        return Response(
            orjson.dumps(body), status_code=status, media_type="application/problem+json"
        )
    return response


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return problem_response(
        request,
        status=exc.status,
        code=exc.code,
        detail=exc.detail,
        problems=exc.problems,
        headers=exc.headers,
    )


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if exc.status_code != 404 else "There is nothing at this address."
    return problem_response(
        request,
        status=exc.status_code,
        code=_CODE_FOR_STATUS.get(exc.status_code, "error"),
        detail=detail,
        headers=dict(exc.headers) if exc.headers else None,
    )


async def body_too_large_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BodyTooLarge)
    limit = exc.limit or request.app.state.settings.max_body_bytes
    return problem_response(
        request,
        status=413,
        code="payload_too_large",
        detail=f"The request body is larger than the limit of {limit:,} bytes.",
    )


RETRY_AFTER_SECONDS = {Unavailable.busy: 2, Unavailable.down: 5}
_UNAVAILABLE_DETAIL = {
    Unavailable.busy: "The service is busy right now and nothing was changed. "
    "Please try again in a moment.",
    Unavailable.down: "The service cannot reach its database right now and nothing was "
    "changed. Please try again in a moment.",
}
CLOSE = {"Connection": "close"}


def unavailable_response(
    request: Request, kind: Unavailable, *, extra_headers: dict[str, str] | None = None
) -> Response:
    return problem_response(
        request,
        status=503,
        code="unavailable",
        detail=_UNAVAILABLE_DETAIL[kind],
        headers={"Retry-After": str(RETRY_AFTER_SECONDS[kind]), **(extra_headers or {})},
    )


async def server_error_handler(request: Request, exc: Exception) -> Response:
    # Starlette re-raises after this answer and the server then closes the connection.
    kind = unavailability(exc)
    try:
        if kind is not None:
            log.warning("database %s on %s %s: %s", kind, request.method, request.url.path, exc)
            return unavailable_response(request, kind, extra_headers=CLOSE)
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            request,
            status=500,
            code="internal_error",
            detail="Something went wrong on our side. It has been logged; please try again.",
            headers=CLOSE,
        )
    except Exception:  # the error page itself failed: answer in plain text
        log.exception("error page failed")
        return HTMLResponse("Internal server error", status_code=500, headers=CLOSE)


class UnavailableMiddleware:
    """Answers 503 `unavailable` (with Retry-After) when the database is busy or down, and
    keeps the connection open: the request was fine, only the database could not serve it
    now. Sits outside the session middleware, which reads the database too. Anything else,
    or anything after the response started, goes on to the 500 handler."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            kind = unavailability(exc)
            if kind is None or started:
                raise
            request = Request(scope)
            log.warning("database %s on %s %s: %s", kind, request.method, request.url.path, exc)
            await unavailable_response(request, kind)(scope, receive, send)


EXCEPTION_HANDLERS = {
    DomainError: domain_error_handler,
    ApiError: api_error_handler,
    HTTPException: http_exception_handler,
    BodyTooLarge: body_too_large_handler,
    500: server_error_handler,
}
