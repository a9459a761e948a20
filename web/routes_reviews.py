"""Routes of the reviews area: pages, and the JSON API (documented by each ApiRoute's
Operation). Kept apart from web/routes.py so that areas grow without editing one shared list."""

from __future__ import annotations

from starlette.routing import BaseRoute

from web.openapi import ApiRoute


def page_routes() -> list[BaseRoute]:
    return []


def api_routes() -> list[ApiRoute]:
    return []
