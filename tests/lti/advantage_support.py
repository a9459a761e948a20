"""Fixtures for the LTI Advantage tests: the tool served by uvicorn on a loopback port (the
platform fetches its key set over HTTP), and an AdvantagePlatform registered with it."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from services import lti
from services.db import transaction
from services.lti_advantage import AdvantageClient
from services.lti_roster import SyncOutcome, sync_course
from services.models import Cohort, LtiContext, LtiContextServices
from services.policy import Actor
from tests.conftest import TEST_SECRET, make_settings
from tests.lti.advantage_platform import AGS, NRPS_SCOPE, AdvantagePlatform, serve_platform
from tests.lti.platform import INSTRUCTOR, FakePlatform, auth_request
from web.app import create_app

NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
COURSE = "course-adv-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Tool:
    url: str
    app: Starlette

    @property
    def client(self) -> AdvantageClient:
        client: AdvantageClient = self.app.state.lti_services
        return client


@pytest.fixture
def tool_settings() -> dict[str, Any]:
    """Overrides for the served tool's settings (a test may turn the LTI job on)."""
    return {"PEERBOARD_LTI_TICK_SECONDS": 0}


@pytest.fixture
async def tool(database_url: str, tool_settings: dict[str, Any]) -> AsyncIterator[Tool]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(make_settings(database_url, PEERBOARD_BASE_URL=url, **tool_settings))
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    try:
        yield Tool(url, app)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)


@pytest.fixture
async def lms(
    tool: Tool, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[AdvantagePlatform]:
    with serve_platform(f"{tool.url}/lti/jwks.json") as platform:
        async with transaction(sessions) as session:
            await lti.register_platform(
                session, actor=Actor.system(), secret=TEST_SECRET,
                spec=lti.PlatformSpec(
                    issuer=platform.issuer, client_id=platform.client_id,
                    auth_login_url=f"{platform.issuer}/auth",
                    token_url=f"{platform.issuer}/token", jwks_url=f"{platform.issuer}/jwks",
                    deployment_ids=[platform.deployment_id], name="Loopback LMS",
                ),
            )  # fmt: skip
        yield platform


def signer(lms: AdvantagePlatform) -> FakePlatform:
    """The launch side of the platform (claims, signatures) over the same keys."""
    return FakePlatform(
        issuer=lms.issuer, client_id=lms.client_id, deployment_id=lms.deployment_id,
        keys=lms.keys,
    )  # fmt: skip


def service_claims(lms: AdvantagePlatform, course: str = COURSE) -> dict[str, Any]:
    return {
        NRPS_CLAIM: {
            "context_memberships_url": lms.memberships_url(course),
            "service_versions": ["2.0"],
        },
        AGS_CLAIM: {
            "scope": [AGS + "lineitem", AGS + "result.readonly", AGS + "score"],
            "lineitems": lms.lineitems_url(course),
        },
    }


async def launch(
    client: httpx.AsyncClient, tool: Tool, lms: AdvantagePlatform, *, sub: str, roles: list[str],
    name: str = "Test Person", course: str = COURSE, services: bool = True, **claims: Any,
) -> httpx.Response:  # fmt: skip
    """A full LTI launch of `client` (a browser) into the served tool."""
    fake = signer(lms)
    login = await client.get(
        f"{tool.url}/lti/login",
        params=fake.login_params(target_link_uri=f"{tool.url}/lti/launch"),
    )
    assert login.status_code == 302, login.text[:300]
    request = auth_request(login.headers["location"])
    extra = {**(service_claims(lms, course) if services else {}), **claims}
    token = fake.sign(
        fake.claims(nonce=request["nonce"], sub=sub, roles=roles, name=name, context_id=course,
                    **extra)
    )  # fmt: skip
    return await client.post(
        f"{tool.url}/lti/launch", data={"id_token": token, "state": request["state"]}
    )


async def course_services(
    sessions: async_sessionmaker[AsyncSession], course: str = COURSE
) -> tuple[LtiContextServices, Cohort]:
    async with transaction(sessions, write=False) as session:
        context = await session.scalar(select(LtiContext).where(LtiContext.context_id == course))
        assert context is not None
        row = await session.scalar(
            select(LtiContextServices).where(LtiContextServices.context_pk == context.id)
        )
        cohort = await session.get(Cohort, context.cohort_id)
        assert row is not None and cohort is not None
        return row, cohort


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)


STUDENTS = {"s-ada": "Ada Lovelace", "s-ben": "Ben Okri", "s-chen": "Chen Wei",
            "s-dara": "Dara Ni", "s-eli": "Eli Roth", "s-fay": "Fay Wu"}  # fmt: skip


async def sync(tool: Tool, sessions: async_sessionmaker[AsyncSession]) -> SyncOutcome:
    row, _ = await course_services(sessions)
    assert row.id is not None
    return await sync_course(sessions, tool.client, services_id=row.id, secret=TEST_SECRET)


async def start_course(
    tool: Tool, lms: AdvantagePlatform, sessions: async_sessionmaker[AsyncSession]
) -> tuple[httpx.AsyncClient, int]:
    """The instructor launches (the cohort is made); the LMS's roster has everyone."""
    lms.rosters[COURSE] = [lms.member("t-ivo", "Ivo Teacher", "Instructor")] + [
        lms.member(sub, name) for sub, name in STUDENTS.items()
    ]
    browser = httpx.AsyncClient()
    response = await launch(browser, tool, lms, sub="t-ivo", roles=[INSTRUCTOR], name="Ivo Teacher")
    assert response.status_code == 303, response.text[:500]
    _, cohort = await course_services(sessions)
    assert cohort.id is not None
    return browser, cohort.id


__all__ = ["AGS", "NRPS_SCOPE"]


async def seed_lms_course(session: AsyncSession, *, assignment_id: int) -> None:
    """Make the assignment's cohort an LMS course with a read roster and sent scores, so
    the pages show their LTI parts (the accessibility test's demo uses it)."""
    from services import lti_grades
    from services.models import Assignment, LtiDeployment, LtiScorePost, Membership, Role, utcnow

    assignment = await session.get(Assignment, assignment_id)
    assert assignment is not None
    issuer = "https://lms.demo.example"
    platform = await lti.register_platform(
        session, actor=Actor.system(), secret=TEST_SECRET,
        spec=lti.PlatformSpec(
            issuer=issuer, client_id="demo", auth_login_url=f"{issuer}/auth",
            token_url=f"{issuer}/token", jwks_url=f"{issuer}/jwks", deployment_ids=["d"],
        ),
    )  # fmt: skip
    deployment = await session.scalar(
        select(LtiDeployment).where(LtiDeployment.platform_id == platform.id)
    )
    assert deployment is not None and deployment.id is not None
    context = LtiContext(deployment_id=deployment.id, context_id="demo-course",
                         cohort_id=assignment.cohort_id)  # fmt: skip
    session.add(context)
    await session.flush()
    assert context.id is not None
    now = utcnow()
    session.add(
        LtiContextServices(
            context_pk=context.id,
            memberships_url=f"{issuer}/memberships",
            lineitems_url=f"{issuer}/lineitems",
            updated_at=now,
            last_sync_at=now,
            last_sync_ok=True,
            last_sync_added=3,
            last_sync_removed=1,
        )
    )
    await lti_grades.save_grading(
        session, actor=Actor.system(), assignment_id=assignment_id,
        weights={"paper": 60, "reviews": 40}, enabled=True,
    )  # fmt: skip
    students = (
        await session.execute(
            select(Membership.user_id).where(
                Membership.cohort_id == assignment.cohort_id, Membership.role == Role.student
            )
        )
    ).scalars()
    for i, user_id in enumerate(students):
        session.add(
            LtiScorePost(
                assignment_id=assignment_id,
                user_id=user_id,
                context_pk=context.id,
                payload="{}",
                score_given=60.0,
                score_maximum=100,
                reason="open closed",
                status="sent" if i % 2 == 0 else "pending",
                attempts=1 + i % 2,
                response_status=200 if i % 2 == 0 else 500,
                last_error="" if i % 2 == 0 else "The LMS failed (HTTP 500).",
                sent_at=now if i % 2 == 0 else None,
                created_at=now,
                next_attempt_at=now,
            )
        )
    await session.flush()
