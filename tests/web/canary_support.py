"""Shared pieces of the canary scans (SECURITY.md): random names, the route list a scan
must cover, and recording every byte a viewer receives from a plan of requests."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from types import ModuleType
from typing import Any

import httpx

# (route name, method, path template, request kwargs)
Step = tuple[str, str, str, dict[str, Any]]


def canary(prefix: str = "cn") -> str:
    """A name that occurs nowhere else: finding it in a response means it leaked there."""
    return prefix + secrets.token_hex(5)


def route_names(routes_module: ModuleType) -> set[tuple[str, str]]:
    """Every (route name, method) of an area, so a scan can prove it covered them all."""
    names = set()
    for route in [*routes_module.page_routes(), *routes_module.api_routes()]:
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD":
                names.add((route.name, method))
    return names


def filler(values: dict[str, Any]) -> Callable[[Any], Any]:
    """Fills `{name}` placeholders in paths and (nested) request bodies."""

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            return value.format(**values)
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return value

    return fill


async def record(client: httpx.AsyncClient, plan: list[Step], fill: Callable[[Any], Any]) -> bytes:
    """Everything the client receives for the plan: status, headers, body, and the page a
    redirect leads to; lower-cased, so a name is found whatever its case."""
    received = bytearray()
    for _name, method, path, kwargs in plan:
        response = await client.request(method, fill(path), **fill(kwargs))
        received += str(response.status_code).encode() + b"\n"
        for key, value in response.headers.items():
            received += f"{key}: {value}\n".encode()
        received += response.content
        if response.status_code == 303:
            received += (await client.get(response.headers["location"])).content
    return bytes(received).lower()
