"""Fixtures for the LTI tests: a fake platform registered with a real app and database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from services import lti
from services.db import transaction
from services.models import Membership, User, WebSession
from services.policy import Actor
from tests.conftest import TEST_SECRET, client_for
from tests.lti.platform import FakePlatform, auth_request


@pytest.fixture
def platform() -> FakePlatform:
    return FakePlatform()


@pytest.fixture
async def registered(
    app: Starlette, platform: FakePlatform, sessions: async_sessionmaker[AsyncSession]
) -> FakePlatform:
    app.state.lti.transport = platform.transport()
    async with transaction(sessions) as session:
        await lti.register_platform(
            session, actor=Actor.system(), spec=platform.spec, secret=TEST_SECRET
        )
    return platform


@dataclass
class Browser:
    """One browser in the LMS's iframe: it follows the login, the platform signs."""

    client: httpx.AsyncClient
    platform: FakePlatform

    async def login(self, **extra: str) -> dict[str, str]:
        response = await self.client.get("/lti/login", params=self.platform.login_params(**extra))
        assert response.status_code == 302, response.text[:300]
        return auth_request(response.headers["location"])

    async def launch(self, token: str, state: str, **fields: str) -> httpx.Response:
        return await self.client.post(
            "/lti/launch", data={"id_token": token, "state": state, **fields}
        )

    async def full_launch(self, *, sub: str, roles: list[str], **claims: Any) -> httpx.Response:
        request = await self.login()
        token = self.platform.sign(
            self.platform.claims(nonce=request["nonce"], sub=sub, roles=roles, **claims)
        )
        return await self.launch(token, request["state"])


@pytest.fixture
async def browser(asgi: Any, registered: FakePlatform) -> AsyncIterator[Browser]:
    async with client_for(asgi) as client:
        yield Browser(client, registered)


async def counts(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with transaction(sessions, write=False) as session:
        return {
            "users": await session.scalar(select(func.count()).select_from(User)) or 0,
            "signed_in": await session.scalar(
                select(func.count()).select_from(WebSession).where(WebSession.user_id.is_not(None))  # type: ignore[union-attr]
            )
            or 0,
            "members": await session.scalar(select(func.count()).select_from(Membership)) or 0,
        }


# LTI Advantage (roster, grades): the served tool and a platform on loopback.
from tests.lti.advantage_support import lms, tool, tool_settings  # noqa: E402, F401
