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
from starlette.routing import Route

REF = "#/components/schemas/{model}"
API = "/api/v1"


# A live stream's success response (Server-Sent Events).
SSE_SCHEMA: dict[str, Any] = {"type": "string", "description": "text/event-stream"}
SSE = ("text/event-stream",)


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
    },
}


def build_document(
    operations: list[tuple[str, str, str, Operation]], *, title: str, version: str
) -> dict[str, Any]:
    """operations: (path, method, operation id, Operation)."""
    defs: dict[str, Any] = {}
    # Request bodies are described as what we accept (validation mode), responses as what
    # we send (serialization mode).
    inputs = {m for _, _, _, op in operations for m in op.request_body.values() if _is_model(m)}
    outputs = {m for _, _, _, op in operations for m in op.responses.values() if _is_model(m)}
    if inputs | outputs:
        _, top = models_json_schema(
            [(m, "validation") for m in sorted(inputs, key=lambda m: m.__name__)]
            + [(m, "serialization") for m in sorted(outputs, key=lambda m: m.__name__)],
            ref_template=REF,
        )
        defs.update(top.get("$defs", {}))
    paths: dict[str, dict[str, Any]] = {}
    for path, method, operation_id, op in operations:
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
        for status in (*op.errors, 413, 500):
            if method == "get" and status == 413:
                continue
            responses[str(status)] = {"$ref": "#/components/responses/Problem"}
        entry: dict[str, Any] = {
            "operationId": operation_id,
            "summary": op.summary,
            "tags": [op.tag],
            "responses": responses,
        }
        if op.description:
            entry["description"] = op.description
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _path_params(path)
        ]
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
                "Problem": {
                    "description": "An error, as RFC 9457 problem details",
                    "content": {
                        "application/problem+json": {
                            "schema": {"$ref": "#/components/schemas/Problem"}
                        }
                    },
                }
            },
        },
    }


def _path_params(path: str) -> list[str]:
    return re.findall(r"\{([^}:]+)(?::[^}]*)?\}", path)


class ApiRoute(Route):
    """A route of the JSON API, documented by its Operation."""

    def __init__(
        self, path: str, endpoint: object, *, methods: list[str], name: str, operation: Operation
    ) -> None:
        super().__init__(API + path, endpoint, methods=methods, name=name)  # type: ignore[arg-type]
        self.operation = operation
