"""Response helpers shared by the API endpoints."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import BaseModel
from starlette.responses import Response


class ORJSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=_default)


def _default(value: object) -> object:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"cannot serialize {type(value).__name__}")


def json_response(
    content: Any, *, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> ORJSONResponse:
    if isinstance(content, BaseModel):
        content = content.model_dump(mode="json")
    elif isinstance(content, list):
        content = [c.model_dump(mode="json") if isinstance(c, BaseModel) else c for c in content]
    return ORJSONResponse(content, status_code=status_code, headers=headers)
