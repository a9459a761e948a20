"""Reading request input: media type checked, JSON decoded safely, input validated.

Every id the database stores is an INTEGER column (int4 on PostgreSQL), so no integer the
API takes may leave that range: a JSON body's integers are checked here once, whatever the
model, and query or form numbers go through `whole_number`. No string taken from a request
may hold a NUL character (PostgreSQL cannot store one, and no text needs it)."""

from __future__ import annotations

import re
from typing import TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from services.errors import Invalid, Problem
from web.errors import ApiError

M = TypeVar("M", bound=BaseModel)

# The range of the database's INTEGER columns (32-bit on PostgreSQL; SQLite's are wider, but
# the API is the same on both).
INT_MIN = -(2**31)
INT_MAX = 2**31 - 1
_DIGITS = re.compile(r"-?[0-9]{1,10}")
NO_NUL = "must not contain NUL characters"


def whole_number(raw: str, *, field: str, minimum: int = INT_MIN, maximum: int = INT_MAX) -> int:
    """A decimal integer in [minimum, maximum] (ASCII digits, an optional minus sign, no
    spaces or underscores), or Invalid naming the field."""
    if not _DIGITS.fullmatch(raw) or not minimum <= int(raw) <= maximum:
        raise Invalid(
            problems=[Problem(f"must be a whole number from {minimum} to {maximum}", field=field)]
        )
    return int(raw)


def query_number(
    request: Request, name: str, default: int, *, minimum: int = INT_MIN, maximum: int = INT_MAX
) -> int:
    """An integer query parameter (absent or empty: the default)."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    return whole_number(raw, field=name, minimum=minimum, maximum=maximum)


def query_text(request: Request, name: str, default: str = "") -> str:
    """A text query parameter, refused (422) when it holds a NUL character."""
    raw = request.query_params.get(name, default)
    if "\x00" in raw:
        raise Invalid(problems=[Problem(NO_NUL, field=name)])
    return raw


def _field_path(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def out_of_bounds(data: object, path: tuple[str | int, ...] = ()) -> list[Problem]:
    """What no model of ours accepts in a decoded JSON value: a number (integer, or float
    that pydantic would take as one) outside the INTEGER range, a string or key with NUL."""
    where = _field_path(path) or None
    if isinstance(data, bool):
        return []
    if isinstance(data, int | float):
        if INT_MIN <= data <= INT_MAX:
            return []
        return [Problem(f"must be between {INT_MIN} and {INT_MAX}", field=where)]
    if isinstance(data, str):
        return [Problem(NO_NUL, field=where)] if "\x00" in data else []
    problems: list[Problem] = []
    if isinstance(data, list):
        for index, item in enumerate(data):
            problems += out_of_bounds(item, (*path, index))
    elif isinstance(data, dict):
        for key, value in data.items():
            if "\x00" in key:
                problems.append(Problem(NO_NUL, field=where))
            else:
                problems += out_of_bounds(value, (*path, key))
    return problems


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def problems_from_validation(exc: ValidationError) -> list[Problem]:
    return [
        Problem(error["msg"], field=_field_path(tuple(error["loc"])) or None)
        for error in exc.errors(include_url=False)
    ]


async def read_json(request: Request) -> object:
    kind = media_type(request)
    if kind != "application/json" and not kind.endswith("+json"):
        raise ApiError(415, "Send the body as application/json.")
    body = await request.body()
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        # orjson also refuses nesting deeper than 1024 levels, so deep JSON lands here.
        raise ApiError(400, f"The body is not valid JSON: {exc}") from None
    if problems := out_of_bounds(data):
        raise Invalid(problems=problems)
    return data


async def read_model(request: Request, model: type[M]) -> M:
    data = await read_json(request)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Invalid(problems=problems_from_validation(exc)) from None
