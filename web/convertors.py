"""Path convertors bounded to what the database can hold, so a path the database could not
even look up (an id beyond its INTEGER column, a NUL byte, a malformed public id) matches no
route and is answered 404 by the router, before any endpoint or query runs.

    {name:id}      a row id: decimal 0..2147483647 (INTEGER is int4 on PostgreSQL)
    {name:public}  an opaque public id (threads, posts, tasks, reviews, exemplars)
    {name:slug}    a cohort slug

Registered when this module is imported (web/openapi.py imports it, and every route table
imports that), and described in the OpenAPI document by `PATH_SCHEMAS`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from starlette.convertors import Convertor, register_url_convertor

from services.cohorts import SLUG_RE

ID_MAX = 2**31 - 1
PUBLIC_ID_PATTERN = "[A-Za-z0-9_-]{1,24}"  # secrets.token_urlsafe(9 or 12), or shorter
SLUG_PATTERN = SLUG_RE.pattern.removeprefix("^").removesuffix("$")


def decimal_at_most(limit: int) -> str:
    """A regular expression matching exactly the decimals 0..limit (no sign, no leading
    zeros): a regex, not a check in `convert`, because a convertor that raises is a 500."""
    digits = str(limit)
    options = ["0"]
    if len(digits) > 1:
        options.append(f"[1-9][0-9]{{0,{len(digits) - 2}}}")
    for i, char in enumerate(digits):
        low = 1 if i == 0 else 0
        if int(char) > low:
            rest = len(digits) - i - 1
            tail = f"[0-9]{{{rest}}}" if rest else ""
            options.append(f"{digits[:i]}[{low}-{int(char) - 1}]{tail}")
    options.append(digits)
    return "(?:" + "|".join(options) + ")"


class IdConvertor(Convertor[int]):
    regex: ClassVar[str] = decimal_at_most(ID_MAX)

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: Any) -> str:
        number = int(value)
        if not 0 <= number <= ID_MAX:
            raise ValueError(f"{number} is not a database id")
        return str(number)


class PublicIdConvertor(Convertor[str]):
    regex: ClassVar[str] = PUBLIC_ID_PATTERN

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: Any) -> str:
        return str(value)


class SlugConvertor(Convertor[str]):
    regex: ClassVar[str] = SLUG_PATTERN

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: Any) -> str:
        return str(value)


register_url_convertor("id", IdConvertor())
register_url_convertor("public", PublicIdConvertor())
register_url_convertor("slug", SlugConvertor())

# How each convertor's parameter is described in the OpenAPI document.
PATH_SCHEMAS: dict[type[Convertor[Any]], dict[str, Any]] = {
    IdConvertor: {"type": "integer", "minimum": 0, "maximum": ID_MAX},
    PublicIdConvertor: {"type": "string", "pattern": f"^{PUBLIC_ID_PATTERN}$"},
    SlugConvertor: {"type": "string", "pattern": SLUG_RE.pattern},
}
