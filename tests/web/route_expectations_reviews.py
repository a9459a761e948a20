"""Authorization expectations for the reviews routes, merged into test_route_policy.py.

EXPECTATIONS maps (route name, method) to (request builder, {role: status}); the builders
(get, send, expect, same) and the roles are in tests/web/policy_support.py. `setup` adds this
area's objects to world.extras, made with the real services (use world.sessions)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.web.policy_support import World

EXPECTATIONS: dict[tuple[str, str], tuple[Any, dict[str, int]]] = {}


async def setup(world: World) -> None:
    return None
