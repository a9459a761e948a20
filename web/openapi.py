"""The OpenAPI 3.1 document, built from the same route table that serves the API.

Each API route carries an `Operation` (in `web/routes.py`); schemas come from the pydantic
views the endpoints actually return, so the document cannot drift from the code silently.
A test checks both directions: every API route is documented and every documented
operation is served, and real responses validate against their documented schemas.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema
from starlette.convertors import Convertor
from starlette.routing import Route

from web.convertors import PATH_SCHEMAS, PUBLIC_ID_PATTERN

# Every integer the API takes or gives is a database INTEGER (int4 on PostgreSQL); request
# bodies are held to this range by web/endpoints/parsing.py, whatever the model says.
INT32: dict[str, Any] = {"minimum": -(2**31), "maximum": 2**31 - 1}

REF = "#/components/schemas/{model}"
API = "/api/v1"


# A live stream's success response (Server-Sent Events).
SSE_SCHEMA: dict[str, Any] = {"type": "string", "description": "text/event-stream"}
SSE = ("text/event-stream",)


@dataclass(frozen=True)
class Param:
    """A query parameter or request header an operation reads."""

    name: str
    where: str  # "query" or "header"
    schema: dict[str, Any]
    description: str = ""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "in": self.where, "schema": self.schema}
        if self.description:
            out["description"] = self.description
        return out


PAGE = Param("page", "query", {"type": "integer", "minimum": 1, "maximum": 100_000})
PER_PAGE = Param("per_page", "query", {"type": "integer", "minimum": 1, "maximum": 200})
SORT = Param("sort", "query", {"type": "string", "enum": ["oldest", "newest", "top"]})
FOCUS = Param(
    "focus", "query", {"type": "string", "pattern": f"^{PUBLIC_ID_PATTERN}$"},
    "A post id: that post and its replies ('continue this thread').",
)  # fmt: skip
SEARCH_QUERY = Param(
    "q", "query", {"type": "string", "maxLength": 200},
    "Plain words; every word must match.",
)  # fmt: skip
EXPORT_VIEW = Param(
    "view", "query", {"type": "string", "enum": ["moderator", "student"]},
    "Staff: whose eyes the posts are read with (default moderator). Students always get the "
    "student view.",
)  # fmt: skip
EXEMPLAR_QUESTION = Param(
    "question", "query", {"type": "string", "pattern": "^(none|[0-9]{1,9})$"},
    "A question id, or `none` for the exemplars of the whole assignment.",
)  # fmt: skip
POLL = Param(
    "poll", "query", {"type": "string"},
    "`1`: answer what is pending after Last-Event-ID and end, instead of streaming.",
)  # fmt: skip
_RESUME = (
    "The id of the last event received: the stream resumes after it. Advisory: a value that "
    "is not an event id (not a whole number from 0 to 2147483647) is ignored, and the "
    "stream starts from now."
)
LAST_EVENT_ID = Param("Last-Event-ID", "header", {"type": "string"}, _RESUME)
LAST_EVENT_ID_QUERY = Param(
    "last_event_id", "query", {"type": "string"}, _RESUME + " The header wins when both are sent."
)
IDEMPOTENCY_KEY = Param(
    "Idempotency-Key", "header", {"type": "string", "minLength": 1, "maxLength": 255},
    "Printable characters. A retry with the same key (and the same body) replays the first "
    "answer instead of creating twice.",
)  # fmt: skip
STREAM = (POLL, LAST_EVENT_ID, LAST_EVENT_ID_QUERY)


@dataclass(frozen=True)
class Operation:
    summary: str
    tag: str
    # status → model (or list[model] / None for no body)
    responses: dict[int, Any]
    # media type → model, or a raw JSON schema dict
    request_body: dict[str, Any] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    description: str = ""
    # What the success responses are sent as (e.g. text/event-stream for a live stream).
    media_types: tuple[str, ...] = ("application/json",)
    # Query parameters and headers the endpoint reads.
    params: tuple[Param, ...] = ()
    # Path parameters whose schema is narrower than their convertor's (e.g. an enum).
    path_schemas: dict[str, dict[str, Any]] = field(default_factory=dict)


def _is_model(value: object) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _schema_for(annotation: Any, defs: dict[str, Any], mode: str) -> dict[str, Any]:
    if isinstance(annotation, dict):
        return annotation
    schema = TypeAdapter(annotation).json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
    defs.update(schema.pop("$defs", {}))
    return schema


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details with a stable `code`.",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["message"],
                "properties": {
                    "message": {"type": "string"},
                    "field": {"type": "string"},
                    "line": {"type": "integer"},
                },
            },
        },
        "current_version": {
            "type": "integer",
            "description": "`stale_version`: the version stored now, to reload and retry.",
        },
        "consequences": {
            "type": "array",
            "items": {"type": "string"},
            "description": "`confirmation_required`: what the change would do, in plain "
            "sentences; send it again with confirmation to go ahead.",
        },
    },
}


def error_statuses(method: str, op: Operation, *, has_path_params: bool) -> list[int]:
    """Every error status the operation can answer, its own and those any request can meet:
    401 (a bad or expired bearer token), 404 (a path that names nothing), 403 (unsafe methods
    without the CSRF token), 400/415/413/422 (bodies), 422 (query values), 500 and 503
    (the database busy or unreachable: retry after Retry-After)."""
    statuses = {*op.errors, 401, 500, 503}
    if has_path_params:
        statuses.add(404)
    if method != "get":
        statuses |= {403, 413}
    if op.request_body:
        statuses |= {400, 415, 422}
    if any(p.where == "query" for p in op.params):
        statuses.add(422)
    return sorted(statuses)


def bound_integers(schema: Any) -> None:
    """Give every integer schema without bounds the INTEGER column's range (in place)."""
    if isinstance(schema, dict):
        kind = schema.get("type")
        if kind == "integer" or (isinstance(kind, list) and "integer" in kind):
            for key, value in INT32.items():
                schema.setdefault(key, value)
        for value in schema.values():
            bound_integers(value)
    elif isinstance(schema, list):
        for item in schema:
            bound_integers(item)


Documented = tuple[str, str, str, Operation, dict[str, Convertor[Any]]]


def build_document(operations: list[Documented], *, title: str, version: str) -> dict[str, Any]:
    """operations: (path, method, operation id, Operation, the path's convertors)."""
    defs: dict[str, Any] = {}
    # Request bodies are described as what we accept (validation mode), responses as what
    # we send (serialization mode).
    inputs = {m for *_, op, _ in operations for m in op.request_body.values() if _is_model(m)}
    outputs = {m for *_, op, _ in operations for m in op.responses.values() if _is_model(m)}
    if inputs | outputs:
        _, top = models_json_schema(
            [(m, "validation") for m in sorted(inputs, key=lambda m: m.__name__)]
            + [(m, "serialization") for m in sorted(outputs, key=lambda m: m.__name__)],
            ref_template=REF,
        )
        defs.update(top.get("$defs", {}))
    paths: dict[str, dict[str, Any]] = {}
    for path, method, operation_id, op, convertors in operations:
        responses: dict[str, Any] = {}
        for status, model in op.responses.items():
            if model is None:
                responses[str(status)] = {"description": "No content"}
            else:
                responses[str(status)] = {
                    "description": "Success",
                    "content": {
                        media: {"schema": _schema_for(model, defs, "serialization")}
                        for media in op.media_types
                    },
                }
        names = _path_params(path)
        for status in error_statuses(method, op, has_path_params=bool(names)):
            responses[str(status)] = {"$ref": f"#/components/responses/{_error_response(status)}"}
        entry: dict[str, Any] = {
            "operationId": operation_id,
            "summary": op.summary,
            "tags": [op.tag],
            "responses": responses,
        }
        if op.description:
            entry["description"] = op.description
        params = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": op.path_schemas.get(name) or _path_schema(convertors.get(name)),
            }
            for name in names
        ] + [param.as_dict() for param in op.params]
        if params:
            entry["parameters"] = params
        if op.request_body:
            entry["requestBody"] = {
                "required": True,
                "content": {
                    media: {"schema": _schema_for(model, defs, "validation")}
                    for media, model in op.request_body.items()
                },
            }
        paths.setdefault(path, {})[method] = entry
    bound_integers(defs)
    bound_integers(paths)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "paths": paths,
        # Either credential works; unsigned requests are answered as an anonymous visitor.
        "security": [{"personalAccessToken": []}, {"browserSession": []}, {}],
        "components": {
            "securitySchemes": {
                "personalAccessToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A personal access token from POST /api/v1/tokens.",
                },
                "browserSession": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "peerboard_session",
                    "description": "The browser session (named __Host-peerboard over https); "
                    "unsafe methods also need the X-CSRF-Token header from GET /api/v1/me.",
                },
            },
            "schemas": {**defs, "Problem": PROBLEM_SCHEMA},
            "responses": {
                "Problem": PROBLEM_RESPONSE,
                "Unavailable": {
                    **PROBLEM_RESPONSE,
                    "description": "The database is busy or unreachable (code `unavailable`): "
                    "nothing was changed; retry after the Retry-After seconds",
                    "headers": {"Retry-After": {"required": True, "schema": {"type": "string"}}},
                },
                "RateLimited": {
                    **PROBLEM_RESPONSE,
                    "description": "Over a rate limit (code `rate_limited`): nothing was "
                    "changed; try again after the Retry-After seconds",
                    "headers": {"Retry-After": {"required": True, "schema": {"type": "string"}}},
                },
                "ServerError": {
                    **PROBLEM_RESPONSE,
                    "description": "A fault of ours, logged; the connection is closed after it",
                    "headers": {"Connection": {"schema": {"type": "string", "enum": ["close"]}}},
                },
            },
        },
    }


PROBLEM_RESPONSE: dict[str, Any] = {
    "description": "An error, as RFC 9457 problem details",
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}


def _path_schema(convertor: Convertor[Any] | None) -> dict[str, Any]:
    found = PATH_SCHEMAS.get(type(convertor)) if convertor is not None else None
    return found or {"type": "string"}


def _error_response(status: int) -> str:
    return {503: "Unavailable", 500: "ServerError", 429: "RateLimited"}.get(status, "Problem")


def _path_params(path: str) -> list[str]:
    return re.findall(r"\{([^}:]+)(?::[^}]*)?\}", path)


class ApiRoute(Route):
    """A route of the JSON API, documented by its Operation."""

    def __init__(
        self, path: str, endpoint: object, *, methods: list[str], name: str, operation: Operation
    ) -> None:
        super().__init__(API + path, endpoint, methods=methods, name=name)  # type: ignore[arg-type]
        self.operation = operation
