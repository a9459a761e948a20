"""Shared pieces of the route authorization matrix (tests/web/test_route_policy.py and the
per-area tests/web/route_expectations_*.py modules)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.conftest import People, client_for

ROLES = ("anonymous", "outsider", "student", "moderator", "instructor", "administrator")


@dataclass
class World:
    """Cohort psy: ivo (instructor), mona (moderator), ada and ben (students); cohort other:
    zed (the outsider); root (administrator, in no cohort). Areas add their own objects to
    `extras` in their `setup` hook (tests/web/route_expectations_*.py)."""

    people: People
    assignment_id: int
    rule_id: int
    ben_id: int
    join_code: str
    sessions: Any = None
    extras: dict[str, Any] = field(default_factory=dict)

    async def client(self, role: str) -> httpx.AsyncClient:
        if role == "anonymous":
            client = client_for(self.people.asgi)
            self.people._clients.append(client)
            return client
        name = {"outsider": "zed", "student": "ada", "moderator": "mona",
                "instructor": "ivo", "administrator": "root"}[role]  # fmt: skip
        return await self.people.client(name, administrator=role == "administrator")


Request = tuple[str, str, dict[str, Any]]
Builder = Callable[[World, httpx.AsyncClient], Awaitable[Request]]


def get(path: str) -> Builder:
    async def build(world: World, client: httpx.AsyncClient) -> Request:
        return "GET", path.format(w=world), {}

    return build


def send(method: str, path: str, **kwargs: Any) -> Builder:
    async def build(world: World, client: httpx.AsyncClient) -> Request:
        filled = {k: _fill(v, world) for k, v in kwargs.items()}
        return method, path.format(w=world), filled

    return build


def _fill(value: Any, world: World) -> Any:
    if isinstance(value, str):
        return value.format(w=world)
    if isinstance(value, dict):
        return {k: _fill(v, world) for k, v in value.items()}
    return value


async def own_token(world: World, client: httpx.AsyncClient) -> Request:
    made = await client.post("/api/v1/tokens", json={"name": "policy test"})
    token_id = made.json()["id"] if made.status_code == 201 else 999_999
    return "DELETE", f"/api/v1/tokens/{token_id}", {}


ALL = dict.fromkeys(ROLES)


def expect(*codes: int) -> dict[str, int]:
    assert len(codes) == len(ROLES)
    return dict(zip(ROLES, codes, strict=True))


def same(code: int) -> dict[str, int]:
    return dict.fromkeys(ROLES, code)


STAFF_ONLY = (404, 404, 404)
PAGE_MEMBER = expect(303, 404, 200, 200, 200, 200)
API_MEMBER = expect(404, 404, 200, 200, 200, 200)
TEXT = {"content": "Title\n\nA question?\n", "headers": {"content-type": "text/plain"}}
